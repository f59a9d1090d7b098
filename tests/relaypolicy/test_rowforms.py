"""relaypolicy.rowforms: a row of the マシンごとの中継 table."""

from __future__ import annotations

import pytest
from django.utils import translation

from relaypolicy.rowforms import RuleRowForm, kept_text
from relaypolicy.table import Row, RowKind


def _row(**data: str) -> RuleRowForm:
    form = RuleRowForm(data={"kind": "rule", "modifier": "default", **data})
    assert form.is_valid(), form.errors
    return form


def test_a_rule_row_becomes_a_canonical_rule() -> None:
    assert _row(pattern=" 192.168.1.0/24 ", comment=" LAN").row() == Row(
        RowKind.RULE, "192.168.1.0/24", "default", comment=" LAN"
    )


def test_an_imported_line_is_kept_as_written_until_it_is_edited() -> None:
    unchanged = _row(pattern="10.0.0.5", modifier="true", text="10.0.0.5  true")
    edited = _row(pattern="10.0.0.6", modifier="true", text="10.0.0.5  true")
    assert (unchanged.row().text, edited.row().text) == ("10.0.0.5  true", "")


@pytest.mark.parametrize(
    ("text", "pattern", "modifier", "kept"),
    [
        ("192.168.1.0/24 DEFAULT", "192.168.1.0/24", "default", True),
        ("192.168.1.0/24 DEFAULT", "192.168.1.0/24", "norelay", False),
        ("10.0.0.1 bogus", "10.0.0.1", "bogus", True),
        ("", "10.0.0.1", "default", False),
        ("'comment", "10.0.0.1", "default", False),
    ],
)
def test_kept_text(text: str, pattern: str, modifier: str, kept: bool) -> None:
    assert kept_text(text, pattern, modifier) == (text if kept else "")


def test_an_unknown_modifier_stays_selectable_and_is_explained() -> None:
    with translation.override("ja"):  # the label is built when the form is
        form = RuleRowForm(initial={"kind": "rule", "pattern": "10.0.0.1", "modifier": "bogus"})
    choices = dict(form.fields["modifier"].choices)  # type: ignore[attr-defined]
    assert choices["bogus"] == "bogus: 不明な修飾子 (default と同じ動作)"


def test_a_comment_row_is_written_with_its_apostrophe() -> None:
    form = RuleRowForm(data={"kind": "comment", "comment": "office LAN", "text": ""})
    assert form.is_valid()
    assert form.row() == Row(RowKind.COMMENT, text="'office LAN")


def test_a_pattern_with_spaces_is_refused() -> None:
    form = RuleRowForm(data={"kind": "rule", "pattern": "10.0.0.1 true", "modifier": ""})
    assert [e.code for e in form.errors.as_data()["pattern"]] == ["space"]


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"kind": "comment", "text": " x\n*.*.*.* true"}, "text", "control"),
        ({"kind": "comment", "comment": "x\r*.*.*.* true"}, "comment", "control"),
        (
            {"kind": "rule", "pattern": "10.0.0.1", "text": "10.0.0.1 default\u2028* true"},
            "text",
            "control",
        ),
        (
            {"kind": "rule", "pattern": "10.0.0.1", "modifier": "default\n*.*.*.* true"},
            "modifier",
            "invalid_choice",
        ),
        ({"kind": "blank", "text": "*.*.*.* true"}, "__all__", "tampered"),
        ({"kind": "comment", "text": "*.*.*.* true"}, "__all__", "tampered"),
        ({"kind": "verbatim", "text": ""}, "__all__", "tampered"),
        (
            {"kind": "rule", "pattern": "10.0.0.1", "modifier": "bogus"},
            "modifier",
            "invalid_choice",
        ),
        (
            {"kind": "rule", "pattern": "10.0.0.2", "modifier": "bogus", "text": "10.0.0.1 bogus"},
            "modifier",
            "unknown",
        ),
    ],
)
def test_a_row_can_never_smuggle_a_second_line_or_an_unknown_modifier(
    data: dict[str, str], field: str, code: str
) -> None:
    form = RuleRowForm(data={"modifier": "default", **data})
    assert form.is_valid() is False
    assert code in [error.code for error in form.errors.as_data()[field]]


def test_an_imported_unknown_modifier_is_kept_while_its_line_is_unchanged() -> None:
    form = RuleRowForm(
        data={"kind": "rule", "pattern": "10.0.0.1", "modifier": "bogus", "text": "10.0.0.1 bogus"}
    )
    assert form.is_valid(), form.errors
    assert form.row() == Row(RowKind.RULE, "10.0.0.1", "bogus", text="10.0.0.1 bogus")
