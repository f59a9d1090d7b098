"""The マシンごとの中継 page as forms: the pinned header and final line (:class:`PolicyForm`) and
the page as a whole (:class:`RelayTableForm`), one row form per row of the page's window."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from controlcenter.findings import Finding, Level
from relaypolicy.effectfile import parse_line
from relaypolicy.models import TerminatorChoice
from relaypolicy.rowforms import (
    LINE_BREAKS,
    MODIFIER_CHOICES,
    BaseRuleRowFormSet,
    RuleRowForm,
    RuleRowFormSet,
    kept_text,
    one_line,
    row_initial,
    with_written,
    written_modifier,
)
from relaypolicy.services import RelayReport
from relaypolicy.table import Owner, Part, Table
from relaypolicy.tableinput import line_control_character
from relaypolicy.window import Window, apply_window

MISSING = "__missing__"


def _header_choices(keyword: str) -> list[tuple[str, Any]]:
    return [
        (MISSING, _("(line missing)")),
        *[(value, f"{keyword} {value}".strip()) for value, _label in MODIFIER_CHOICES],
    ]


class PolicyForm(forms.Form):
    # The choices are effect.dat keywords: not for translation (nor for the browser's).
    header_null = forms.ChoiceField(
        label="#<>", choices=_header_choices("#<>"), widget=forms.Select(attrs={"translate": "no"})
    )
    header_blank = forms.ChoiceField(
        label="#blank",
        choices=_header_choices("#blank"),
        widget=forms.Select(attrs={"translate": "no"}),
    )
    terminator = forms.ChoiceField(
        label=_("Final line"),
        choices=TerminatorChoice.choices,
        required=False,
        widget=forms.Select(attrs={"translate": "no"}),  # each choice starts with its keyword
    )
    terminator_pattern = forms.ChoiceField(
        label=_("Final line pattern"), choices=[("*.*.*.*", "*.*.*.*"), ("*", "*")]
    )
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    header_null_text = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    header_blank_text = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    # The window of the table the page shows (a long table is edited a page at a time). Left
    # out by a client that posts the whole table: then the page is every row.
    start = forms.IntegerField(widget=forms.HiddenInput, min_value=0, required=False)
    count = forms.IntegerField(widget=forms.HiddenInput, min_value=0, required=False)

    def clean_header_null_text(self) -> str:
        return _header_text(self.cleaned_data["header_null_text"], "#<>")

    def clean_header_blank_text(self) -> str:
        return _header_text(self.cleaned_data["header_blank_text"], "#blank")

    def header(self) -> tuple[str, ...]:
        lines = []
        for keyword, name in (("#<>", "header_null"), ("#blank", "header_blank")):
            modifier = self.cleaned_data[name]
            if modifier == MISSING:
                continue
            kept = kept_text(self.cleaned_data[f"{name}_text"], keyword, modifier)
            lines.append(kept or f"{keyword} {modifier}".rstrip())
        return tuple(lines)


def _header_text(text: str, keyword: str) -> str:
    """The hidden text of a header line: one line, and a ``keyword`` rule (it is never typed)."""
    one_line(text)
    if text and (parse_line(text).pattern != keyword or line_control_character(text)):
        raise ValidationError(
            _("This row was changed outside the editor; reload the page."), code="tampered"
        )
    return text


def policy_initial(table: Table, version: int, window: Window) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "header_null": MISSING,
        "header_blank": MISSING,
        "terminator": table.terminator,
        "terminator_pattern": table.terminator_pattern,
        "version": version,
        "start": window.start,
        "count": window.count,
    }
    for text in table.header:
        line = parse_line(text)
        name = "header_null" if line.pattern == "#<>" else "header_blank"
        initial[name] = line.modifier.value if line.modifier is not None else line.modifier_text
        initial[f"{name}_text"] = text
    return initial


class RelayTableForm:
    """The マシンごとの中継 page: the pinned parts and one form per row of the page's window,
    saved together. A table longer than a page is edited a window at a time
    (:mod:`relaypolicy.window`); the rows outside the window are kept as stored."""

    def __init__(
        self,
        data: Any = None,
        *,
        table: Table | None = None,
        version: int = 0,
        window: Window | None = None,
    ) -> None:
        if data is None:
            assert table is not None
            total = len(table.rows)
            window = window or Window(start=0, count=total, total=total)
            self.policy = PolicyForm(initial=policy_initial(table, version, window))
            shown = table.rows[window.start : window.start + window.count]
            initial = [row_initial(row) for row in shown]
            self.rows: BaseRuleRowFormSet = RuleRowFormSet(initial=initial)  # type: ignore[assignment]
            self.window = window
        else:
            self.policy = PolicyForm(data)
            self.rows = RuleRowFormSet(data)  # type: ignore[assignment]
            self.window = Window(start=0, count=0, total=0)  # placed by place()
        self.rows.offset = self.window.start
        for name in ("header_null", "header_blank"):
            if data is None:
                written = self.policy.initial[name]
            else:
                # As for a row: only a modifier the header's imported line really carries may be
                # outside the list (never whatever the hidden field was made to say).
                text = str(data.get(f"{name}_text", ""))
                written = written_modifier(text) if LINE_BREAKS.search(text) is None else ""
            field = self.policy.fields[name]
            field.choices = with_written(list(field.choices), written)  # type: ignore[attr-defined]
        self.row_forms: list[RuleRowForm] = []
        self.row_index: list[int] = []  # the table index of each of row_forms
        self.findings: list[Finding] = []
        self.table_findings: list[Finding] = []
        self.elsewhere: list[tuple[int, Finding]] = []  # (row position, finding) off this page
        self.header_findings: list[Finding] = []
        self.terminator_findings: list[Finding] = []

    def is_valid(self) -> bool:
        return self.policy.is_valid() and self.rows.is_valid()

    def place(self, total: int) -> Window:
        """For a posted page: the window it was cut from, in a stored table of ``total`` rows
        (a client that posts the whole table sends no window)."""
        data = self.policy.data
        start, count = _posted_int(data, "start"), _posted_int(data, "count")
        if count is None:
            start, count = 0, total
        start = min(start or 0, total)
        self.window = Window(start=start, count=min(count, total - start), total=total)
        self.rows.offset = self.window.start
        return self.window

    @property
    def version(self) -> int:
        return int(self.policy.cleaned_data["version"])

    def table(self, stored: Table) -> Table:
        """The table as submitted: the page's rows in their new order, deleted and empty rows
        left out, put in place of the window they were cut from in ``stored``."""
        kept = [
            form
            for form in self.rows.forms
            if form.cleaned_data  # an extra row left untouched is not validated: no data
            and not form.cleaned_data.get("DELETE")
            and not form.is_empty_rule
        ]
        window = self.place(len(stored.rows))
        rows, landed = apply_window(
            stored.rows,
            window.start,
            window.count,
            [(form.cleaned_data.get("ORDER"), form.row()) for form in kept],
        )
        self.row_forms, self.row_index = kept, landed
        return Table(
            header=self.policy.header(),
            rows=tuple(rows),
            terminator=self.policy.cleaned_data["terminator"],
            terminator_pattern=self.policy.cleaned_data["terminator_pattern"],
        )

    def attach(
        self, report: RelayReport, *, block: bool, refused: list[Finding] | None = None
    ) -> None:
        """Show findings on the rows they concern; with ``block``, the ``refused`` errors (all
        errors if not given) become form errors. Every finding is shown once: on its row
        when the row is on this page, else in the list above the table with a link."""
        self.findings = report.findings
        by_owner: dict[Owner | None, list[Finding]] = {}
        for finding in report.findings:
            owner = report.rendered.owner(finding.line) if finding.line else None
            by_owner.setdefault(owner, []).append(finding)
        lines: dict[int, list[int]] = {}
        for number, owner in enumerate(report.rendered.owners, start=1):
            if owner.part is Part.ROW:
                lines.setdefault(owner.index, []).append(number)
        shown: set[int] = set()
        for form, index in zip(self.row_forms, self.row_index, strict=True):
            shown.add(index)
            form.findings = by_owner.get(Owner(Part.ROW, index), [])
            form.lines = lines.get(index, [])
            form.position = index + 1
            if block:
                for finding in form.findings:
                    if finding.level is Level.ERROR and (refused is None or finding in refused):
                        form.add_error(
                            None, ValidationError(finding.render(gettext), code=finding.code)
                        )
        window = self.window
        header = [
            *by_owner.get(Owner(Part.HEADER, 0), []),
            *by_owner.get(Owner(Part.HEADER, 1), []),
        ]
        terminator = by_owner.get(Owner(Part.TERMINATOR), [])
        self.header_findings = header if window.is_first else []
        self.terminator_findings = terminator if window.is_last else []
        self.table_findings = [
            *by_owner.get(None, []),
            *by_owner.get(Owner(Part.BANNER), []),
            *([] if window.is_first else header),
            *([] if window.is_last else terminator),
        ]
        self.elsewhere = sorted(
            (
                (owner.index + 1, finding)
                for owner, found in by_owner.items()
                if owner is not None and owner.part is Part.ROW and owner.index not in shown
                for finding in found
            ),
            key=lambda item: item[0],  # by row; a row's findings keep the report's order
        )

    def bind_table_rows(self) -> None:
        """For an unbound page, row forms line up with the stored rows of the window."""
        self.row_forms = list(self.rows.forms[: len(self.rows.initial or [])])
        self.row_index = [self.window.start + number for number in range(len(self.row_forms))]

    @property
    def display_forms(self) -> list[RuleRowForm]:
        """The rows in the order the user left them (also when re-shown with errors)."""
        forms_: list[RuleRowForm] = list(self.rows.forms)
        if not self.rows.is_bound:
            return forms_

        def position(item: tuple[int, RuleRowForm]) -> tuple[bool, int, int]:
            index, form = item
            raw = form.data.get(form.add_prefix("ORDER"), "")
            deleted = bool(form.data.get(form.add_prefix("DELETE")))
            order = int(raw) if str(raw).isdigit() else self.window.start + len(forms_) + index
            return deleted, order, index

        return [form for _index, form in sorted(enumerate(forms_), key=position)]


def _posted_int(data: Any, name: str) -> int | None:
    raw = str(data.get(name, "")).strip()
    return int(raw) if raw.isdigit() and len(raw) < 9 else None
