from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile[Any]]:
        single = super().clean
        if isinstance(data, list | tuple):
            if not data and self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class LogUploadForm(forms.Form):
    logs = MultipleFileField(
        label=_("Log files or an archive"),
        # Markup: crispy-forms renders help texts as HTML (the names are file names, not prose).
        help_text=_(
            "<code>inlog</code>, <code>acceptlog</code> and the other logs, one file per day, "
            "as they are, as <code>.gz</code>, or a <code>.zip</code> of the log folder "
            "(<code>&lt;log&gt;/&lt;computer name&gt;/</code>)."
        ),
    )

    def clean_logs(self) -> list[UploadedFile[Any]]:
        files: list[UploadedFile[Any]] = self.cleaned_data["logs"]
        total = sum(file.size or 0 for file in files)
        if total > settings.CC_LOG_UPLOAD_MAX_BYTES:
            raise ValidationError(
                _("The upload is %(size)s; the limit is %(limit)s (CC_LOG_UPLOAD_MAX_MB)."),
                code="too_large",
                params={
                    "size": filesizeformat(total),
                    "limit": filesizeformat(settings.CC_LOG_UPLOAD_MAX_BYTES),
                },
            )
        return files


class MigrationForm(forms.Form):
    min_mails = forms.IntegerField(
        label=_("Only addresses that received at least"),
        min_value=1,
        max_value=1_000_000,
        initial=1,
        help_text=_("mails (addresses that received less are left out of the draft)."),
    )
