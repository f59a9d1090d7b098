from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from controlcenter.findings import Finding, Level
from controlcenter.models import ServerSettings
from relaypolicy.effectfile import LineKind, PatternKind, format_rule, parse_line
from relaypolicy.models import TerminatorChoice
from relaypolicy.services import RelayReport
from relaypolicy.table import Owner, Part, Row, RowKind, Table
from relaypolicy.tableinput import MAX_PATTERN, MAX_TEXT, line_control_character
from relaypolicy.validation.lines import MAX_LINE_BYTES, intended_modifier
from relaypolicy.window import Window, apply_window

_SITE_KINDS = frozenset({PatternKind.IPV4, PatternKind.CIDR, PatternKind.IPV6})

MODIFIER_CHOICES = [
    ("default", _("default: the built-in table (local senders may relay, others only deliver)")),
    ("norelay", _("norelay: no relaying to outside domains; SMTP AUTH users may")),
    ("norelay,2", _("norelay,2: relaying only after SMTP AUTH")),
    ("norelay,0", _("norelay,0: no relaying, not even after SMTP AUTH")),
    ("false", _("false: refuse at MAIL FROM (550 5.1.7)")),
    ("true", _("true: trusted, may relay anywhere")),
    ("", _("(none): trusted, may relay anywhere")),
    ("norelay,1", _("norelay,1: documented as unused, acts like norelay")),
    ("only", _("only: the manuals disagree; use norelay instead")),
]
MISSING = "__missing__"


_KNOWN_MODIFIERS = frozenset(value for value, _label in MODIFIER_CHOICES)
#: Accepted (an imported line may carry them) but not offered for a new choice.
_DISCOURAGED = frozenset({"norelay,1", "only"})


def _option_keyword(value: str) -> str:
    if not value:
        return gettext("(none)")
    if value not in _KNOWN_MODIFIERS:
        return gettext("%(modifier)s (unknown: behaves like default)") % {"modifier": value}
    return value


def _with_written(choices: list[tuple[str, Any]], written: str) -> list[tuple[str, Any]]:
    """Keep a modifier the daemon does not know selectable, so an import shows as written."""
    if written and written not in {value for value, _label in choices}:
        label = gettext("%(modifier)s: not a known modifier, behaves like default") % {
            "modifier": written
        }
        return [*choices, (written, label)]
    return choices


class RuleRowForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(kind.value, kind.value) for kind in RowKind],
        initial=RowKind.RULE.value,
        widget=forms.HiddenInput,
    )
    pattern = forms.CharField(
        label=_("Pattern"),
        required=False,
        max_length=MAX_PATTERN,
        widget=forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
    )
    modifier = forms.ChoiceField(
        label=_("Modifier"), required=False, choices=MODIFIER_CHOICES, initial="default"
    )
    # A comment is written as its own line, "'" + comment: 255 bytes at most, as the import reads.
    comment = forms.CharField(
        label=_("Comment"), required=False, max_length=MAX_LINE_BYTES - 1, strip=False
    )
    outside_site = forms.BooleanField(label=_("Outside site"), required=False)
    site_note = forms.CharField(
        label=_("Outside site note"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. Osaka branch, fixed IP from ISP")}),
    )
    text = forms.CharField(
        required=False, strip=False, max_length=MAX_TEXT, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound:
            # Only a modifier the row's imported line really carries may be outside the list.
            text = str(self.data.get(self.add_prefix("text"), ""))
            written = _written_modifier(text) if _LINE_BREAKS.search(text) is None else ""
        else:
            written = self.initial.get("modifier", "")
        modifier = self.fields["modifier"]
        assert isinstance(modifier, forms.ChoiceField)
        self.modifier_choices = _with_written(MODIFIER_CHOICES, written)
        modifier.choices = self.modifier_choices
        self.findings: list[Finding] = []
        self.lines: list[int] = []
        self.position = 0  # 1-based position in the whole table, once attached

    def clean_pattern(self) -> str:
        pattern: str = _one_line(self.cleaned_data["pattern"]).strip()
        if any(char.isspace() for char in pattern):
            raise ValidationError(
                _("A pattern cannot contain spaces: the daemon would read the rest as a modifier."),
                code="space",
            )
        return pattern

    def clean_comment(self) -> str:
        return _one_line(self.cleaned_data["comment"])

    def clean_text(self) -> str:
        text = _one_line(self.cleaned_data["text"])
        if line_control_character(text):  # a TAB inside the modifier, say
            raise ValidationError(
                _("Line breaks and control characters are not allowed: each row is one line."),
                code="control",
            )
        return text

    def clean_site_note(self) -> str:
        return _one_line(self.cleaned_data["site_note"].strip())

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        kind, text = data.get("kind"), data.get("text", "")
        if kind == RowKind.RULE and not data.get("pattern") and data.get("comment"):
            self.add_error("pattern", ValidationError(_("Enter a pattern."), code="required"))
        if data.get("outside_site"):
            self._clean_outside_site(data)
        if "text" in data and not _text_fits(kind, text):
            raise ValidationError(
                _("This row was changed outside the editor; reload the page."), code="tampered"
            )
        modifier = data.get("modifier", "")
        known = modifier in {value for value, _label in MODIFIER_CHOICES}
        pattern = data.get("pattern", "")
        if (
            kind == RowKind.RULE
            and pattern
            and not known
            and not _kept_text(text, pattern, modifier)
        ):
            self.add_error(
                "modifier",
                ValidationError(
                    _(
                        "Choose one of the listed modifiers: an imported unknown one is kept "
                        "only while its line is unchanged."
                    ),
                    code="unknown",
                ),
            )
        return data

    def _clean_outside_site(self, data: dict[str, Any]) -> None:
        pattern = data.get("pattern", "")
        if data.get("kind") != RowKind.RULE or (
            pattern and parse_line(pattern).pattern_kind not in _SITE_KINDS
        ):
            self.add_error(
                "outside_site",
                ValidationError(
                    _(
                        "Only an IP address or network (203.0.113.8, 203.0.113.8/29, "
                        "2001:db8:1::/48) can be an outside site."
                    ),
                    code="site_pattern",
                ),
            )
        if not data.get("site_note"):
            self.add_error(
                "site_note",
                ValidationError(
                    _("Say which site this is (for example: Osaka branch, fixed IP from ISP)."),
                    code="required",
                ),
            )

    @property
    def daemon_view(self) -> dict[str, str] | None:
        """For a row whose line the daemon reads differently from what is written (unknown
        modifier, two spaces, a TAB): the line, what the daemon applies, and the fix."""
        text = (
            self.initial.get("text", "")
            if not self.is_bound
            else self.data.get(self.add_prefix("text"), "")
        )
        if not text or _LINE_BREAKS.search(str(text)):
            return None
        line = parse_line(str(text))
        if line.kind is not LineKind.RULE or (line.separator_ok and line.modifier is not None):
            return None
        intended = intended_modifier(line)
        return {
            "written": line.text,
            "applied": line.effective.value,
            "fix": intended.value if intended is not None else "",
            "fixed": format_rule(line.pattern, intended) if intended is not None else "",
        }

    @property
    def tone(self) -> str:
        """The row's colour: red with an error, amber with a warning, none for notes."""
        if self.errors or any(f.level is Level.ERROR for f in self.findings):
            return "danger"
        if any(f.level is Level.WARNING for f in self.findings):
            return "warning"
        return ""

    @property
    def modifier_options(self) -> list[tuple[str, str, bool]]:
        """The modifier list as keywords (explained once, above the table): (value, label,
        selected). The two the manuals discourage are offered only to a row that has one."""
        chosen = self["modifier"].value()
        chosen = "" if chosen is None else str(chosen)
        return [
            (str(value), _option_keyword(str(value)), value == chosen)
            for value, _label in self.modifier_choices
            if value not in _DISCOURAGED or value == chosen
        ]

    @property
    def own_errors(self) -> list[str]:
        """Errors of the row as a whole that are not findings shown below it already."""
        found = {finding.code for finding in self.findings}
        return [
            message
            for error in self.errors.as_data().get("__all__", [])
            if error.code not in found
            for message in error.messages
        ]

    @property
    def is_empty_rule(self) -> bool:
        data = self.cleaned_data
        return data.get("kind") == RowKind.RULE and not data.get("pattern")

    def row(self) -> Row:
        data = self.cleaned_data
        kind = RowKind(data["kind"])
        if kind is RowKind.COMMENT:
            text = data["text"]
            if not text or text.startswith("'"):
                text = "'" + data["comment"]
            return Row(kind, text=text)
        if kind is not RowKind.RULE:
            return Row(kind, text=data["text"])
        return Row(
            kind,
            pattern=data["pattern"],
            modifier=data["modifier"],
            comment=data["comment"],
            text=_kept_text(data["text"], data["pattern"], data["modifier"]),
            outside_site=bool(data.get("outside_site")),
            site_note=data.get("site_note", "") if data.get("outside_site") else "",
        )


# Every character that could end or split an effect.dat line, and other control characters
# (TAB stays: imported lines may hold one, and the validator explains what it does).
_LINE_BREAKS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def _one_line(value: str) -> str:
    if _LINE_BREAKS.search(value):
        raise ValidationError(
            _("Line breaks and control characters are not allowed: each row is one line."),
            code="control",
        )
    return value


def _written_modifier(text: str) -> str:
    line = parse_line(text) if text else None
    if line is None or line.kind is not LineKind.RULE:
        return ""
    return line.modifier.value if line.modifier is not None else line.modifier_text


def _text_fits(kind: object, text: str) -> bool:
    """The hidden line text can only be what the row's kind allows (it is never typed)."""
    if kind == RowKind.BLANK:
        return text == ""
    if kind == RowKind.COMMENT:
        return text == "" or text[0] in "' "
    if kind == RowKind.VERBATIM:
        return text != ""
    return True


def _kept_text(text: str, pattern: str, modifier: str) -> str:
    """An imported line stays as written while its pattern and modifier are unchanged."""
    if not text:
        return ""
    line = parse_line(text)
    written = line.modifier.value if line.modifier is not None else line.modifier_text
    return (
        text
        if line.kind is LineKind.RULE and (line.pattern, written) == (pattern, modifier)
        else ""
    )


_ROW_PREFIX = re.compile(r"form-\d{1,5}")


def fix_row_data(data: Any, prefix: str) -> Any:
    """A copy of the posted table where row ``prefix`` (``form-3``) is written the way the
    daemon reads it as meant: one space, the modifier it most likely meant (the one-click fix
    for an unknown or ignored modifier). Anything else is returned unchanged."""
    data = data.copy()
    if _ROW_PREFIX.fullmatch(prefix) is None:
        return data
    text = str(data.get(f"{prefix}-text", ""))
    if not text or _LINE_BREAKS.search(text):
        return data
    line = parse_line(text)
    intended = intended_modifier(line)
    if line.kind is not LineKind.RULE or intended is None:
        return data
    data[f"{prefix}-text"] = ""
    data[f"{prefix}-pattern"] = line.pattern
    data[f"{prefix}-modifier"] = intended.value
    return data


class _RuleRowFormSet(forms.BaseFormSet):  # type: ignore[type-arg]
    #: The position of the page's first row in the whole table (the editor shows a window).
    offset = 0

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        if index is not None and index < self.initial_form_count():
            form.fields["ORDER"].initial = self.offset + index + 1


RuleRowFormSet = forms.formset_factory(
    RuleRowForm,
    formset=_RuleRowFormSet,
    extra=1,
    can_order=True,
    can_delete=True,
    max_num=5000,
    validate_max=True,
)


def row_initial(row: Row) -> dict[str, Any]:
    comment = row.text[1:] if row.kind is RowKind.COMMENT and row.text.startswith("'") else ""
    return {
        "kind": row.kind.value,
        "pattern": row.pattern,
        "modifier": row.modifier,
        "comment": row.comment if row.kind is RowKind.RULE else comment,
        "text": row.text,
        "outside_site": row.outside_site,
        "site_note": row.site_note,
    }


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
            kept = _kept_text(self.cleaned_data[f"{name}_text"], keyword, modifier)
            lines.append(kept or f"{keyword} {modifier}".rstrip())
        return tuple(lines)


def _header_text(text: str, keyword: str) -> str:
    """The hidden text of a header line: one line, and a ``keyword`` rule (it is never typed)."""
    _one_line(text)
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
            self.rows: _RuleRowFormSet = RuleRowFormSet(initial=[row_initial(row) for row in shown])  # type: ignore[assignment]
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
                written = _written_modifier(text) if _LINE_BREAKS.search(text) is None else ""
            field = self.policy.fields[name]
            field.choices = _with_written(list(field.choices), written)  # type: ignore[attr-defined]
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
            (owner.index + 1, finding)
            for owner, found in by_owner.items()
            if owner is not None and owner.part is Part.ROW and owner.index not in shown
            for finding in found
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


class RelayRestrictionForm(forms.ModelForm[ServerSettings]):
    class Meta:
        model = ServerSettings
        fields = ["max_message_size", "max_recipients"]


class SimulationForm(forms.Form):
    """中継テスト: one SMTP session as a relay tester would send it."""

    client_ip = forms.GenericIPAddressField(
        label=_("Client IP address"), help_text=_("The address the SMTP client connects from.")
    )
    auth = forms.BooleanField(label=_("SMTP AUTH succeeded"), required=False)
    mail_from = forms.CharField(
        label=_("MAIL FROM"),
        required=False,
        strip=False,
        max_length=512,
        help_text=_("Blank means an empty MAIL FROM:; <> is the null sender."),
        widget=forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
    )
    rcpt_to = forms.CharField(
        label=_("RCPT TO"),
        help_text=_("One recipient per line (at most 50)."),
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono", "spellcheck": "false"}),
    )

    def clean_rcpt_to(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["rcpt_to"].splitlines()]
        recipients = [line for line in lines if line]
        if not recipients:
            raise ValidationError(_("Enter at least one recipient."), code="required")
        if len(recipients) > 50:
            raise ValidationError(
                _("At most 50 recipients; you entered %(count)s."),
                code="too_many",
                params={"count": len(recipients)},
            )
        return recipients


MAX_EFFECT_BYTES = 1024 * 1024  # effect.dat files are a few KB; this stops accidents early


class EffectImportForm(forms.Form):
    text = forms.CharField(
        label=_("Paste effect.dat"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "class": "mono", "spellcheck": "false"}),
    )
    file = forms.FileField(label=_("or upload the file"), required=False)

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is not None and upload.size > MAX_EFFECT_BYTES:
            raise ValidationError(
                _("The file is %(size)s bytes; effect.dat may be at most %(limit)s bytes."),
                code="too_large",
                params={"size": upload.size, "limit": MAX_EFFECT_BYTES},
            )
        return upload

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        if not data.get("text") and not data.get("file") and not self.errors:
            raise ValidationError(_("Paste the file's text or choose a file."), code="empty")
        if len(str(data.get("text") or "").encode("utf-8")) > MAX_EFFECT_BYTES:
            raise ValidationError(
                _("The pasted text is longer than %(limit)s bytes."),
                code="too_large",
                params={"limit": MAX_EFFECT_BYTES},
            )
        return data

    def payload(self) -> dict[str, Any]:
        """An uploaded file's bytes (decoded as effect.dat is), or the pasted text as typed."""
        upload = self.cleaned_data.get("file")
        if upload is not None:
            return {"data": bytes(upload.read())}
        return {"text": str(self.cleaned_data["text"])}
