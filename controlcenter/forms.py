from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Fieldset, Layout
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordMixin
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from aliases.models import Alias
from controlcenter.models import Licence, ServerSettings
from controlcenter.publishing import FolderRefusal, check_export_folder
from controlcenter.roles import Role

_COMMAND_RE = re.compile(r"^[A-Za-z0-9_./-]+$")
_WORD_RE = re.compile(r"^[A-Za-z0-9_]+$")


class ServerSettingsForm(forms.ModelForm[ServerSettings]):
    class Meta:
        model = ServerSettings
        fields = list(ServerSettings.EDITABLE_FIELDS)

    def __init__(self, *args: Any, export_settings: bool = False, **kwargs: Any) -> None:
        """``export_settings``: whether the export folder and console command may change
        (controlcenter.change_export_settings); without it they are shown disabled and posted
        values are ignored."""
        super().__init__(*args, **kwargs)
        self.export_settings = export_settings
        # Left blank (or not posted by an older page): keep the current limit.
        self.fields["outside_site_limit"].required = False
        self.fields["export_dir"].help_text = _(
            "Where publishing writes effect.dat and the alias files; blank: the default folder. "
            "A folder that does not exist yet is created by the first export. System folders "
            "(/etc, /usr, /proc, /root, …) and names with control characters are refused, and "
            "links inside the folder are never followed."
        )
        if not export_settings:
            for name in ServerSettings.EXPORT_SETTINGS_FIELDS:
                self.fields[name].disabled = True
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Fieldset(_("Basic settings"), "mode", "licence", "accounts", "mailing_lists"),
            Fieldset(
                _("Relay restriction"),
                "max_message_size",
                "max_recipients",
                "outside_site_limit",
                # crispy's HTML() is a template: text goes in escaped, never as template source
                # (makemessages cannot see a {% translate %} inside a Python string).
                HTML(
                    format_html(
                        '<p><a class="btn btn-outline-primary" '
                        'data-testid="settings-machine-relay" href="{}">{}</a></p>',
                        reverse("relaypolicy:machine-relay"),
                        gettext("Per-machine relay"),
                    )
                ),
            ),
            Fieldset(
                _("Export"),
                *(
                    []
                    if export_settings
                    else [
                        HTML(
                            format_html(
                                '<p class="form-text" data-testid="export-locked">{}</p>',
                                gettext(
                                    "Only administrators can change the export folder and "
                                    "the alias registration command."
                                ),
                            )
                        )
                    ]
                ),
                "export_dir",
                "export_line_ending",
                "console_folder",
                "console_command",
                "console_mode_word",
            ),
        )
        self.helper.form_tag = False

    def clean_outside_site_limit(self) -> int:
        value = self.cleaned_data.get("outside_site_limit")
        return int(self.instance.outside_site_limit if value is None else value)

    def clean_export_dir(self) -> str:
        value: str = self.cleaned_data["export_dir"].strip()
        if self.fields["export_dir"].disabled:
            return value  # unchanged: this user may not change it, so cannot fix it either
        if not value:
            return value
        check = check_export_folder(value)
        if check.refusal is FolderRefusal.CONTROL:
            raise forms.ValidationError(
                _(
                    "The folder name contains a control character (%(char)s), such as a line "
                    "break: type it again."
                ),
                code="control_character",
                params={"char": check.detail},
            )
        if check.refusal is FolderRefusal.RELATIVE:
            raise forms.ValidationError(
                _("Give an absolute folder such as /usr/local/mta/bin, or leave it blank."),
                code="relative",
            )
        if check.refusal is FolderRefusal.SYSTEM:
            raise forms.ValidationError(
                _(
                    "%(path)s is a system folder (%(system)s): the export never writes there. "
                    "Choose the mail daemon's folder, such as /usr/local/mta/bin."
                ),
                code="system_folder",
                params={"path": check.path, "system": check.detail},
            )
        value = check.path
        if Path(value).exists() and not Path(value).is_dir():
            raise forms.ValidationError(
                _("%(path)s exists and is not a folder."),
                code="not_a_folder",
                params={"path": value},
            )
        return value

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        licence, accounts = cleaned.get("licence"), cleaned.get("accounts")
        mailing_lists = cleaned.get("mailing_lists")
        if licence in (None, Licence.UNLIMITED) or accounts is None or mailing_lists is None:
            return cleaned
        # Spec §4: accounts, aliases and mailing lists each take a seat; refuse to exceed it.
        aliases = Alias.objects.count()
        used = aliases + accounts + mailing_lists
        if used > int(licence):
            raise forms.ValidationError(
                _(
                    "The licence allows %(limit)s users, but %(used)s seats would be used "
                    "(%(aliases)s aliases, %(accounts)s accounts, %(lists)s mailing lists)."
                ),
                code="licence_exceeded",
                params={
                    "limit": int(licence),
                    "used": used,
                    "aliases": aliases,
                    "accounts": accounts,
                    "lists": mailing_lists,
                },
            )
        return cleaned

    def clean_console_folder(self) -> str:
        value: str = self.cleaned_data["console_folder"].strip()
        if not value.startswith("/"):
            raise forms.ValidationError(
                _("Give an absolute folder such as /usr/local/mta/bin."), code="relative"
            )
        if "\n" in value or "\r" in value:
            raise forms.ValidationError(_("A folder cannot contain line breaks."), code="invalid")
        return value

    def clean_console_command(self) -> str:
        value: str = self.cleaned_data["console_command"].strip()
        if not _COMMAND_RE.match(value):
            raise forms.ValidationError(
                _("Use letters, digits and . / _ - only, such as ./epstman."), code="invalid"
            )
        return value

    def clean_console_mode_word(self) -> str:
        value: str = self.cleaned_data["console_mode_word"].strip()
        if not _WORD_RE.match(value):
            raise forms.ValidationError(
                _("Use letters, digits and _ only, such as NA."), code="invalid"
            )
        return value


User = get_user_model()


class RoleField(forms.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=Role.choices,
            label=_("Role"),
            help_text=_(
                "Viewer: read everything and run simulations. Editor: also change rules, "
                "aliases and settings. Administrator: also publish exports and manage users."
            ),
            **kwargs,
        )


class UserCreateForm(SetPasswordMixin, forms.ModelForm[AbstractUser]):  # type: ignore[type-arg]
    role = RoleField()
    password1, password2 = SetPasswordMixin.create_password_fields()

    class Meta:
        model = User
        fields = ["username", "last_name", "first_name", "email"]

    def clean_username(self) -> str:
        # The help text promises half-width letters, digits and @/./+/-/_ (半角): Django's
        # default validator also lets full-width and accented letters through.
        username: str = self.cleaned_data["username"]
        ASCIIUsernameValidator()(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(
                _("A user with that user name already exists (ignoring case)."), code="unique"
            )
        return username

    def clean(self) -> dict[str, Any] | None:
        self.validate_passwords()
        return super().clean()

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        self.validate_password_for_user(self.instance)


class UserUpdateForm(forms.ModelForm[AbstractUser]):
    role = RoleField()

    class Meta:
        model = User
        fields = ["last_name", "first_name", "email", "is_active"]


class UserPasswordForm(SetPasswordMixin, forms.Form):  # type: ignore[type-arg]
    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, user: AbstractUser, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any] | None:
        self.validate_passwords()
        self.validate_password_for_user(self.user)
        return super().clean()
