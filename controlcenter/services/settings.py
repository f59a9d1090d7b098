"""全設定(サーバー環境設定): saving the server settings and what they warn about."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from controlcenter.audit import AuditAction, audit_record
from controlcenter.findings import Finding, Level, gettext_noop, make
from controlcenter.forms import ServerSettingsForm
from controlcenter.models import ServerSettings


def server_settings_update(
    *, changes: dict[str, object], export_settings: bool = True
) -> ServerSettings:
    """Apply ``changes`` through the same form as 全設定; raises ValidationError naming fields.

    ``export_settings``: whether the export folder and console command may change (configure
    runs as the operator, so it may by default).
    """
    current = ServerSettings.load()
    data = {name: getattr(current, name) for name in ServerSettingsForm.Meta.fields}
    data.update(changes)
    form = ServerSettingsForm(data=data, instance=current, export_settings=export_settings)
    if not form.is_valid():
        raise ValidationError(
            {field: [error for error in errors] for field, errors in form.errors.items()}
        )
    return server_settings_save(form=form)


@transaction.atomic
def server_settings_save(*, form: forms.ModelForm[ServerSettings]) -> ServerSettings:
    """Save a valid settings form (全設定 or 中継の制限) and record the change.

    Locks the row first, then checks the form's cross-field rules again (the licence seat
    count includes today's aliases) against the locked row with the form's changes applied,
    and saves only the fields the form changed: a concurrent change of other fields stays.
    Raises ValidationError (also added to the form) when the check now fails.
    """
    server = ServerSettings.objects.select_for_update().get(pk=1)
    before = settings_state(server)
    changed = [
        name
        for name in form.changed_data
        if name in form.cleaned_data and not form.fields[name].disabled
    ]
    cleaned = dict(form.cleaned_data)
    merged = {name: getattr(server, name) for name in cleaned if hasattr(server, name)}
    merged.update({name: cleaned[name] for name in changed})
    form.cleaned_data = merged
    try:
        form.clean()
    except ValidationError as error:
        form.cleaned_data = cleaned
        form.add_error(None, error)
        raise
    for name in changed:
        setattr(server, name, merged[name])
    if changed:
        server.save(update_fields=[*changed, "updated_at"])
    form.instance = server
    after = settings_state(server)
    if before != after:
        changed_names = [name for name in after if before.get(name) != after[name]]
        audit_record(
            action=AuditAction.SETTINGS_CHANGE,
            target="settings",
            summary=", ".join(changed_names),
            before=before,
            after=after,
        )
    return server


def settings_state(server: ServerSettings) -> dict[str, object]:
    """The settings as recorded in the audit log and in an export's policy snapshot."""
    return {name: getattr(server, name) for name in ServerSettings.EDITABLE_FIELDS}


def server_settings_findings(server: ServerSettings) -> list[Finding]:
    """Warnings about the settings themselves (the relay and alias validators add their own)."""
    findings: list[Finding] = []
    if server.is_gateway and server.accounts == 0:
        findings.append(
            make(
                Level.WARNING,
                "settings.W001",
                gettext_noop(
                    "No mailbox account: a gateway needs at least one (dummy) account, "
                    "or the product demands the unlimited edition."
                ),
                obj="settings",
            )
        )
    return findings
