from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from aliases.aliasfile import (
    AliasSyntaxError,
    normalise_fullwidth,
    parse_alias_pattern,
    parse_target,
)
from aliases.models import Alias, AliasOption, LocalDomain
from controlcenter.findings import Finding

ENCODING_CHOICES = [
    ("auto", _("Automatic detection (recommended)")),
    ("utf-8", _("UTF-8")),
    ("cp932", _("Shift_JIS (CP932)")),
]


class EncodingSelect(forms.Select):
    """The encodings' own names are terms, not text to translate (``translate="no"``)."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(*args, **kwargs)
        if option["value"] != "auto":
            option["attrs"]["translate"] = "no"
        return option


_MONO = {"class": "mono", "spellcheck": "false", "autocomplete": "off"}


class AliasForm(forms.Form):
    pattern = forms.CharField(
        label=_("Alias"),
        max_length=320,
        widget=forms.TextInput(attrs=_MONO),
        help_text=_("user@domain, or a wildcard such as 2009*@domain or *@domain."),
    )
    target = forms.CharField(
        label=_("Real address"),
        max_length=320,
        widget=forms.TextInput(attrs=_MONO),
        help_text=_("Where the mail goes; a * carries over what the alias * matched."),
    )
    option = forms.ChoiceField(label=_("Option"), required=False, choices=AliasOption.choices)
    comment = forms.CharField(label=_("Comment"), max_length=255, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Field name -> (as typed, as saved), for the fields whose full-width characters
        # were converted; issue 4 wants that said, never done silently.
        self.converted: dict[str, tuple[str, str]] = {}

    def clean_pattern(self) -> str:
        return self._address("pattern", parse_alias_pattern)

    def clean_target(self) -> str:
        return self._address("target", parse_target)

    def _address(self, name: str, parse: Any) -> str:
        typed: str = self.cleaned_data[name]
        converted, changed = normalise_fullwidth(typed)
        converted = converted.strip()
        try:
            parse(converted)
        except AliasSyntaxError as error:
            raise ValidationError(gettext(error.message) % error.params, code="syntax") from None
        if changed:
            self.converted[name] = (typed, converted)
        return converted

    def conversion_warnings(self) -> list[str]:
        """One message per converted field, naming it, for after the save."""
        return [
            gettext("%(field)s: full-width characters were converted: %(before)s → %(after)s")
            % {"field": self.fields[name].label, "before": before, "after": after}
            for name, (before, after) in self.converted.items()
        ]

    def clean_comment(self) -> str:
        comment: str = self.cleaned_data["comment"]
        if any(ch in comment for ch in "\r\n"):
            raise ValidationError(_("A comment must fit on one line."), code="newline")
        return comment

    def add_findings(self, findings: list[Finding]) -> None:
        """Blocking findings from the service, on the field they are about."""
        for finding in findings:
            field = "target" if finding.code in ("alias.E002", "alias.E005") else "pattern"
            if finding.code == "alias.E007":
                field = None  # type: ignore[assignment]
            self.add_error(field, ValidationError(finding.render(gettext), code=finding.code))

    @classmethod
    def initial_for(cls, alias: Alias) -> dict[str, str]:
        return {
            "pattern": alias.pattern,
            "target": alias.target,
            "option": alias.option,
            "comment": alias.comment,
        }


class LocalDomainForm(forms.ModelForm[LocalDomain]):
    class Meta:
        model = LocalDomain
        fields = ["name", "comment"]
        widgets = {"name": forms.TextInput(attrs=_MONO)}

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip().lower()


class AliasUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns: the alias, the real address and an optional comment; the header row "
            "is optional."
        ),
    )
    encoding = forms.ChoiceField(
        label=_("Character encoding"),
        choices=ENCODING_CHOICES,
        widget=EncodingSelect,
        help_text=_(
            "Automatic detection reads the file in whichever of the two encodings Excel saved it."
        ),
    )
    add_domains = forms.BooleanField(
        label=_("Add missing local domains"),
        required=False,
        help_text=_("Otherwise an alias whose domain is not managed here is an error."),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.CC_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise ValidationError(
                _("The file is %(size)s; the largest accepted is %(limit)s."),
                code="too_large",
                params={"size": filesizeformat(upload.size), "limit": filesizeformat(limit)},
            )
        return upload


class AliasMoveForm(forms.Form):
    row = forms.IntegerField(label=_("Move to position"), min_value=1)


class AliasSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=320)
    domain = forms.ModelChoiceField(
        label=_("Domain"),
        required=False,
        queryset=LocalDomain.objects.all(),
        empty_label=_("All domains"),
        widget=forms.Select(attrs={"class": "form-select"}),
    )
