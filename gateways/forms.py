from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from gateways import keys
from gateways.models import Gateway, GatewayKind


class GatewayForm(forms.ModelForm[Gateway]):
    private_key = forms.CharField(
        label=_("Private key"),
        required=False,
        strip=False,
        # translate="no": a key (and the placeholder showing its first line) is not prose.
        widget=forms.Textarea(
            attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false", "translate": "no"}
        ),
        help_text=_(
            "Paste an OpenSSH or PEM private key. It is stored encrypted and never shown again; "
            "leave empty to keep the stored key."
        ),
    )
    passphrase = forms.CharField(
        label=_("Passphrase of the pasted key"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Gateway
        fields = [
            "name",
            "kind",
            "enabled",
            "host",
            "port",
            "username",
            "private_key",
            "passphrase",
            "key_path",
            "program_folder",
            "work_folder",
            "smtp_port",
            "logs_pull_hours",
        ]
        help_texts = {
            "key_path": _("Or the path of a key file on this machine, readable by the service."),
            "program_folder": _("Where effect.dat and the alias files are written."),
            "work_folder": _("Where the gateway keeps its logs and retry queue."),
            "smtp_port": _("The port the connection test sends its probes to."),
            "logs_pull_hours": _(
                "Reads the new log lines and the retry queue over SFTP into ログ分析 on this "
                "schedule (the background worker must be running)."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["logs_pull_hours"].required = False
        self.fields["private_key"].widget.attrs["placeholder"] = (
            _("A key is stored (leave empty to keep it).")
            if self.instance.pk and self.instance.key_encrypted
            else "-----BEGIN OPENSSH PRIVATE KEY-----"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") != GatewayKind.SSH:
            others = Gateway.objects.filter(kind=GatewayKind.LOCAL).exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("kind", _("This machine's folder is already a gateway."))
            return data
        for name in ("host", "username"):
            if not data.get(name):
                self.add_error(name, _("Required for an SSH gateway."))
        for name in ("program_folder", "work_folder"):
            value = data.get(name, "")
            if value and not value.startswith("/"):
                self.add_error(name, _("Give an absolute path (starting with /)."))
        host = data.get("host", "")
        if host and any(c.isspace() or c in "/@" for c in host):
            self.add_error("host", _("A host name or an IP address, without user or path."))
        text = data.get("private_key", "")
        if text.strip():
            try:
                data["private_key"] = keys.validate_private_key(text, data.get("passphrase"))
            except ValueError:
                self.add_error(
                    "private_key",
                    _("This is not a private key this tool can read (or the passphrase is wrong)."),
                )
        elif not data.get("key_path") and not self.instance.key_encrypted:
            self.add_error("private_key", _("Paste a private key or give the path of a key file."))
        return data

    def clean_logs_pull_hours(self) -> int:
        return int(self.cleaned_data.get("logs_pull_hours") or 0)


class ConfirmHostKeyForm(forms.Form):
    fingerprint = forms.CharField(widget=forms.HiddenInput)


class RetryForm(forms.Form):
    overwrite = forms.BooleanField(label=_("Overwrite the files changed by hand"), required=False)
