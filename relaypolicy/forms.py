from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from controlcenter.models import ServerSettings


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
