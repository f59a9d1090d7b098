from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from controlcenter.findings import Finding, Level, gettext_noop, make, sort_findings
from controlcenter.models import ServerSettings
from controlcenter.roles import Role

User = get_user_model()


def user_role(user: AbstractUser) -> Role | None:
    """The user's role: superusers are administrators; otherwise the strongest group."""
    if user.is_superuser:
        return Role.ADMINISTRATOR
    names = {group.name for group in user.groups.all()}
    for role in (Role.ADMINISTRATOR, Role.EDITOR, Role.VIEWER):
        if role.value in names:
            return role
    return None


def _active_administrators() -> Any:
    return User.objects.filter(is_active=True).filter(is_superuser=True) | User.objects.filter(
        is_active=True, groups__name=Role.ADMINISTRATOR.value
    )


def _set_role(user: AbstractUser, role: Role) -> None:
    group = Group.objects.get(name=role.value)
    user.groups.remove(*Group.objects.filter(name__in=Role.values).exclude(pk=group.pk))
    user.groups.add(group)
    # Only administrators reach the Django admin (/admin/), and only for their permissions.
    is_staff = role is Role.ADMINISTRATOR or user.is_superuser
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


@transaction.atomic
def user_create(*, username: str, password: str | None, role: Role, **fields: Any) -> AbstractUser:
    """Create a login with one role; ``password=None`` leaves it unusable."""
    user = User(username=username, **fields)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    _set_role(user, role)
    return user


@transaction.atomic
def user_update(*, user: AbstractUser, role: Role, is_active: bool, **fields: Any) -> AbstractUser:
    """Change a login's details and role; refuses to leave no active administrator."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    was_admin = user.is_active and user_role(user) is Role.ADMINISTRATOR
    stays_admin = is_active and (user.is_superuser or role is Role.ADMINISTRATOR)
    if was_admin and not stays_admin and not _active_administrators().exclude(pk=user.pk).exists():
        raise ValidationError(
            _("%(user)s is the last active administrator: appoint another one first.")
            % {"user": user.get_username()},
            code="last_administrator",
        )
    for name, value in fields.items():
        setattr(user, name, value)
    user.is_active = is_active
    user.save()
    _set_role(user, role)
    return user


def user_set_password(*, user: AbstractUser, password: str) -> None:
    user.set_password(password)
    user.save(update_fields=["password"])


def server_settings_update(*, changes: dict[str, object]) -> ServerSettings:
    """Apply ``changes`` through the same form as 全設定; raises ValidationError naming fields."""
    from controlcenter.forms import ServerSettingsForm

    current = ServerSettings.load()
    data = {name: getattr(current, name) for name in ServerSettingsForm.Meta.fields}
    data.update(changes)
    form = ServerSettingsForm(data=data, instance=current)
    if not form.is_valid():
        raise ValidationError(
            {field: [error for error in errors] for field, errors in form.errors.items()}
        )
    return form.save()


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


def administrators_exist() -> bool:
    return bool(_active_administrators().exists())


DEMO_DOMAIN = "example.co.jp"
DEMO_LAN = "192.168.1.0/24"


@transaction.atomic
def demo_load() -> list[str]:
    """Load the demo company (idempotent: a second run changes nothing)."""
    report: list[str] = []
    server = ServerSettings.load()
    server.mode = "gateway"
    server.licence = "100"
    server.accounts = max(server.accounts, 1)
    server.save()
    report.append(
        f"settings: {server.mode}, licence {server.licence}, {server.accounts} account(s)"
    )
    from aliases.services import demo_load as aliases_demo_load
    from relaypolicy.services import demo_load as relay_demo_load

    report += relay_demo_load()
    report += aliases_demo_load()
    return report


def policy_lint() -> list[Finding]:
    """Every validator over the stored rules, aliases and settings (the lint_policy command)."""
    from aliases.services import alias_check
    from relaypolicy.services import relay_check

    server = ServerSettings.load()
    findings = [
        dataclasses.replace(finding, obj=finding.obj or "effect.dat")
        for finding in relay_check(server=server).findings
    ]
    findings += alias_check().findings
    findings += server_settings_findings(server)
    return sort_findings(findings)
