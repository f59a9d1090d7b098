"""One row of the マシンごとの中継 table as a form: a rule, comment, blank or kept line, the
modifier choices, and the one-click fix for a modifier the daemon reads differently."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from controlcenter.findings import Finding, Level
from relaypolicy.effectfile import LineKind, PatternKind, format_rule, parse_line
from relaypolicy.table import Row, RowKind
from relaypolicy.tableinput import MAX_PATTERN, MAX_TEXT, line_control_character
from relaypolicy.validation.lines import MAX_LINE_BYTES, intended_modifier

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


_KNOWN_MODIFIERS = frozenset(value for value, _label in MODIFIER_CHOICES)
#: Accepted (an imported line may carry them) but not offered for a new choice.
_DISCOURAGED = frozenset({"norelay,1", "only"})


def _option_keyword(value: str) -> str:
    if not value:
        return gettext("(none)")
    if value not in _KNOWN_MODIFIERS:
        return gettext("%(modifier)s (unknown: behaves like default)") % {"modifier": value}
    return value


def with_written(choices: list[tuple[str, Any]], written: str) -> list[tuple[str, Any]]:
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
            written = written_modifier(text) if LINE_BREAKS.search(text) is None else ""
        else:
            written = self.initial.get("modifier", "")
        modifier = self.fields["modifier"]
        assert isinstance(modifier, forms.ChoiceField)
        self.modifier_choices = with_written(MODIFIER_CHOICES, written)
        modifier.choices = self.modifier_choices
        self.findings: list[Finding] = []
        self.lines: list[int] = []
        self.position = 0  # 1-based position in the whole table, once attached

    def clean_pattern(self) -> str:
        pattern: str = one_line(self.cleaned_data["pattern"]).strip()
        if any(char.isspace() for char in pattern):
            raise ValidationError(
                _("A pattern cannot contain spaces: the daemon would read the rest as a modifier."),
                code="space",
            )
        return pattern

    def clean_comment(self) -> str:
        return one_line(self.cleaned_data["comment"])

    def clean_text(self) -> str:
        text = one_line(self.cleaned_data["text"])
        if line_control_character(text):  # a TAB inside the modifier, say
            raise ValidationError(
                _("Line breaks and control characters are not allowed: each row is one line."),
                code="control",
            )
        return text

    def clean_site_note(self) -> str:
        return one_line(self.cleaned_data["site_note"].strip())

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
            and not kept_text(text, pattern, modifier)
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
        if not text or LINE_BREAKS.search(str(text)):
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
            text=kept_text(data["text"], data["pattern"], data["modifier"]),
            outside_site=bool(data.get("outside_site")),
            site_note=data.get("site_note", "") if data.get("outside_site") else "",
        )


# Every character that could end or split an effect.dat line, and other control characters
# (TAB stays: imported lines may hold one, and the validator explains what it does).
LINE_BREAKS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def one_line(value: str) -> str:
    if LINE_BREAKS.search(value):
        raise ValidationError(
            _("Line breaks and control characters are not allowed: each row is one line."),
            code="control",
        )
    return value


def written_modifier(text: str) -> str:
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


def kept_text(text: str, pattern: str, modifier: str) -> str:
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
    if not text or LINE_BREAKS.search(text):
        return data
    line = parse_line(text)
    intended = intended_modifier(line)
    if line.kind is not LineKind.RULE or intended is None:
        return data
    data[f"{prefix}-text"] = ""
    data[f"{prefix}-pattern"] = line.pattern
    data[f"{prefix}-modifier"] = intended.value
    return data


class BaseRuleRowFormSet(forms.BaseFormSet):  # type: ignore[type-arg]
    #: The position of the page's first row in the whole table (the editor shows a window).
    offset = 0

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        if index is not None and index < self.initial_form_count():
            form.fields["ORDER"].initial = self.offset + index + 1


RuleRowFormSet = forms.formset_factory(
    RuleRowForm,
    formset=BaseRuleRowFormSet,
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
