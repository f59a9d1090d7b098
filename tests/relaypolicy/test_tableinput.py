"""relaypolicy.tableinput: what may be stored in the relay table."""

from __future__ import annotations

import pytest

from relaypolicy.table import (
    Row,
    RowKind,
    Table,
    render_table,
)
from relaypolicy.tableinput import (
    MAX_COMMENT,
    MAX_HEADER,
    MAX_MODIFIER,
    MAX_PATTERN,
    MAX_TEXT,
    clean_effect_text,
    line_control_character,
    read_effect_bytes,
    sanitize_table,
    table_field_findings,
)

HARDENED = "#<> default\n#blank false\n'LAN\n192.168.1.0/24 default\n*.*.*.* norelay\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.0/24 default", None),
        ("192.168.1.0/24\tdefault", None),  # the daemon ignores the modifier: the lint says so
        ("192.168.1.0/24 default\t", None),  # trailing whitespace
        ("'a\tcomment", None),
        ("\t", None),
        ("#<> default\t*.*.*.* true", "\t"),
        ("#<> default\x0b*.*.*.* true", "\x0b"),
        ("#<> default\x0c*.*.*.* true", "\x0c"),
        ("#<> default\x1c*.*.*.* true", "\x1c"),
        ("10.0.0.1\x00 default", "\x00"),
        ("10.0.0.1 default\r*.*.*.* true", "\r"),
        ("'comment\u2028*.*.*.* true", "\u2028"),
    ],
)
def test_line_control_character_allows_a_tab_only_where_the_daemon_reads_one(
    text: str, expected: str | None
) -> None:
    assert line_control_character(text) == expected


def test_clean_text_strips_line_ending_crs_and_shows_other_control_characters() -> None:
    text = "#<> default\n#blank false\r\n10.0.0.1 default\x0b*.*.*.* true\n"
    cleaned, findings = clean_effect_text(text)
    assert cleaned == "#<> default\n#blank false\n10.0.0.1 default\u240b*.*.*.* true\n"
    assert [(f.code, f.line) for f in findings] == [("relay.E040", 3), ("relay.I104", 2)]
    assert findings[0].render() == (
        "Line 3 contains the control character U+000B (VT). An effect.dat line is plain text: "
        "the daemon's reading of this line is unknown, so it is not stored."
    )


def test_clean_text_refuses_cr_only_line_endings_as_one_finding() -> None:
    cleaned, findings = clean_effect_text("#<> default\r*.*.*.* norelay\r")
    assert cleaned == "#<> default\u240d*.*.*.* norelay\u240d"
    assert [(f.code, f.line) for f in findings] == [("relay.E041", 1)]


def test_clean_text_reports_twenty_control_lines_then_a_summary() -> None:
    _cleaned, findings = clean_effect_text("\x01\n" * 25)
    assert [f.code for f in findings] == ["relay.E040"] * 20 + ["relay.E043"]
    assert dict(findings[-1].params)["count"] == 5


def test_read_bytes_refuses_utf16_and_nul() -> None:
    _text, findings = read_effect_bytes("#<> default\n".encode("utf-16"))
    assert findings[0].code == "relay.E042"
    _text, findings = read_effect_bytes(b"10.0.0.1 default\x00\n")
    assert [(f.code, f.line) for f in findings] == [("relay.E042", 1), ("relay.E040", 1)]


def test_field_findings_number_every_stored_string_by_its_line() -> None:
    table = Table(
        header=("#<> default\x0b*.*.*.* true", "#blank false"),
        rows=(
            Row(RowKind.RULE, "10.0.0.1", "m" * 33, comment="c" * 256, text="10.0.0.1 " + "m" * 33),
        ),
    )
    rendered = render_table(sanitize_table(table))
    assert [(f.code, f.line) for f in table_field_findings(table, rendered)] == [
        ("relay.E040", 2),
        ("relay.E044", 4),  # the comment line
        ("relay.E044", 5),  # the modifier, on the rule line
    ]


def test_the_checked_sizes_are_the_database_columns() -> None:
    from relaypolicy.models import RelayPolicy, RelayRule

    sizes = {f.name: f.max_length for f in RelayRule._meta.fields if f.max_length}
    assert (sizes["pattern"], sizes["modifier"], sizes["comment"], sizes["text"]) == (
        MAX_PATTERN,
        MAX_MODIFIER,
        MAX_COMMENT,
        MAX_TEXT,
    )
    assert RelayPolicy._meta.get_field("header_null").max_length == MAX_HEADER


def test_clean_text_refuses_a_character_effect_dat_cannot_hold() -> None:
    _cleaned, findings = clean_effect_text("'本社LAN\n'LAN \U0001f600\n")
    assert [(f.code, f.line) for f in findings] == [("relay.E045", 2)]
    assert dict(findings[0].params)["character"] == "'\U0001f600' (U+1F600)"
