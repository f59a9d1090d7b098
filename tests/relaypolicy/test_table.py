from __future__ import annotations

import pytest

from relaypolicy.effectfile import parse_effect
from relaypolicy.table import (
    BANNER,
    Owner,
    Part,
    Row,
    RowKind,
    Table,
    parse_table,
    render_table,
    table_from_effect,
)

HARDENED = "#<> default\n#blank false\n'LAN\n192.168.1.0/24 default\n*.*.*.* norelay\n"


def test_render_puts_banner_header_rows_and_norelay_last() -> None:
    table = Table(rows=(Row(RowKind.RULE, "192.168.1.0/24", "default", comment="LAN"),))
    rendered = render_table(table)
    assert rendered.lines == (
        BANNER,
        "#<> default",
        "#blank false",
        "'LAN",
        "192.168.1.0/24 default",
        "*.*.*.* norelay",
    )
    assert rendered.owners == (
        Owner(Part.BANNER),
        Owner(Part.HEADER, 0),
        Owner(Part.HEADER, 1),
        Owner(Part.ROW, 0),
        Owner(Part.ROW, 0),
        Owner(Part.TERMINATOR),
    )


def test_terminator_off_writes_no_final_line() -> None:
    assert render_table(Table(terminator="")).lines == (BANNER, "#<> default", "#blank false")


def test_import_splits_header_rows_and_terminator() -> None:
    table, findings = parse_table(HARDENED)
    assert findings == []
    assert table == Table(
        header=("#<> default", "#blank false"),
        rows=(Row(RowKind.RULE, "192.168.1.0/24", "default", comment="LAN"),),
        terminator="norelay",
        terminator_pattern="*.*.*.*",
    )


def test_import_then_render_writes_the_same_lines_after_the_banner() -> None:
    text = (
        "#<> default\n#blank false\n\n' LAN segment\n"
        "192.168.1.0/24 DEFAULT\n10.0.0.5  true\n garbage?\n?!bad line\n* norelay,2\n"
    )
    table, _findings = parse_table(text)
    assert render_table(table).lines[1:] == tuple(text.splitlines())


def test_previous_banner_is_dropped_and_comments_before_the_header_are_kept() -> None:
    text = f"{BANNER}\n'site notes\n#<> default\n#blank false\n10.1.1.1 default\n"
    table, _ = parse_table(text)
    assert table.header == ("#<> default", "#blank false")
    # The comment now sits right above the first rule: it renders to the same lines.
    assert table.rows == (Row(RowKind.RULE, "10.1.1.1", "default", comment="site notes"),)
    assert table.terminator == ""


@pytest.mark.parametrize(
    ("last", "terminator", "pattern"),
    [
        ("*.*.*.* norelay", "norelay", "*.*.*.*"),
        ("* norelay,0", "norelay,0", "*"),
        ("*.*.*.* false", "false", "*.*.*.*"),
        ("*.*.*.* default", "", "*.*.*.*"),
        ("*.*.*.* NORELAY", "norelay", "*.*.*.*"),
        ("*.*.*.*  norelay", "", "*.*.*.*"),
    ],
)
def test_only_a_canonical_catch_all_terminator_is_taken_as_the_terminator(
    last: str, terminator: str, pattern: str
) -> None:
    table, _ = parse_table(f"#<> default\n#blank false\n{last}\n")
    assert (table.terminator, table.terminator_pattern) == (terminator, pattern)
    assert len(table.rows) == (0 if terminator else 1)


def test_comments_after_the_terminator_are_moved_above_it_and_reported() -> None:
    table, findings = table_from_effect(
        parse_effect("#<> default\n#blank false\n*.*.*.* norelay\n\n'end of file\n")
    )
    assert table.rows == (Row(RowKind.COMMENT, text="'end of file"),)
    assert table.terminator == "norelay"
    assert [(f.code, f.line) for f in findings] == [("relay.I101", 5)]


def test_lines_the_daemon_appended_after_the_terminator_are_moved_above_it() -> None:
    # Spec §2: the daemon appends "<client IP> false" below the final line, where it never
    # takes effect; the import keeps them where they work and still finds the terminator.
    table, findings = parse_table(
        "#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* norelay\n"
        "203.0.113.7 false\n198.51.100.2 false\n"
    )
    assert table.terminator == "norelay"
    assert table.rows == (
        Row(RowKind.RULE, "192.168.1.0/24", "default"),
        Row(RowKind.RULE, "203.0.113.7", "false"),
        Row(RowKind.RULE, "198.51.100.2", "false"),
    )
    assert [(f.code, f.line) for f in findings] == [("relay.I102", 5)]


def test_other_rules_after_the_catch_all_leave_the_terminator_off() -> None:
    # cli.md: only a last rule line that is a catch-all becomes the terminator.
    table, _ = parse_table("#<> default\n#blank false\n*.*.*.* norelay\n10.0.0.0/8 default\n")
    assert table.terminator == ""
    assert table.rows == (
        Row(RowKind.RULE, "*.*.*.*", "norelay"),
        Row(RowKind.RULE, "10.0.0.0/8", "default"),
    )


def test_an_upper_case_terminator_is_taken_and_reported() -> None:
    table, findings = parse_table("#<> default\n#blank false\n*.*.*.* NORELAY\n")
    assert (table.terminator, table.rows) == ("norelay", ())
    assert [(f.code, f.line) for f in findings] == [("relay.I103", 3)]
