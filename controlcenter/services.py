from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from controlcenter.findings import Finding, Level, gettext_noop, make, sort_findings
from controlcenter.models import ServerSettings
from controlcenter.roles import Role
from controlcenter.selftest import SelftestReport, run_selftest, selftest_findings
from controlcenter.simulation import Policy, compile_policy
from relaypolicy.effectfile import EffectFile, Modifier, PatternKind

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


def policy_compile() -> Policy:
    """The stored rules, aliases and domains compiled for the simulator, as exported."""
    from aliases import aliasfile
    from aliases.models import Alias, LocalDomain
    from relaypolicy.services import relay_table
    from relaypolicy.table import render_table

    server = ServerSettings.load()
    entries = [
        aliasfile.Alias(pattern, target, option)
        for pattern, target, option in Alias.objects.order_by("position").values_list(
            "pattern", "target", "option"
        )
    ]
    return compile_policy(
        effect=render_table(relay_table()).effect,
        aliases=entries,
        local_domains=LocalDomain.objects.values_list("name", flat=True),
        gateway_mode=server.is_gateway,
    )


def lan_probe_ip(effect: EffectFile) -> str | None:
    """A client address inside the first network the rules let relay (the self-test's LAN)."""
    for line in effect.rules:
        if line.effective not in (Modifier.DEFAULT, Modifier.TRUE):
            continue
        if line.pattern_kind in (PatternKind.CIDR, PatternKind.IPV4):
            network = ipaddress.ip_network(line.pattern, strict=False)
            if network.version == 4 and not network.is_global:
                hosts = network.num_addresses
                return str(network.network_address + (1 if hosts > 2 else 0))
        if line.pattern_kind is PatternKind.IPV4_WILDCARD:
            octets = [part for part in line.pattern.split("*", 1)[0].split(".") if part]
            if len(octets) in (1, 2, 3) and all(part.isdigit() for part in octets):
                candidate = ".".join([*octets, *["1"] * (4 - len(octets))])
                if not ipaddress.ip_address(candidate).is_global:
                    return candidate
    return None


def policy_selftest(policy: Policy | None = None) -> SelftestReport:
    """Run the open-relay self-test against the stored policy."""
    policy = policy_compile() if policy is None else policy
    return run_selftest(policy, lan_ip=lan_probe_ip(policy.effect))


def policy_lint(*, selftest: SelftestReport | None = None) -> list[Finding]:
    """Every validator over the stored rules, aliases and settings, and the self-test.

    This is what lint_policy prints and what blocks an export: a failing outside-relay probe
    is an error like any other.
    """
    from aliases.services import alias_check
    from relaypolicy.services import relay_check

    server = ServerSettings.load()
    findings = [
        dataclasses.replace(finding, obj=finding.obj or "effect.dat")
        for finding in relay_check(server=server).findings
    ]
    findings += alias_check().findings
    findings += server_settings_findings(server)
    findings += selftest_findings(policy_selftest() if selftest is None else selftest)
    return sort_findings(findings)


def dashboard_status() -> dict[str, Any]:
    """What トップ shows: the open-relay verdict, counts, licence use and every finding."""
    from aliases.models import Alias
    from aliases.services import alias_check
    from relaypolicy.models import RelayRule

    policy = policy_compile()
    selftest = policy_selftest(policy)
    findings = policy_lint(selftest=selftest)
    open_relay = [f for f in selftest_findings(selftest) if f.code == "selftest.E001"]
    return {
        "server": ServerSettings.load(),
        "selftest": selftest,
        "open_relay": open_relay,
        "findings": findings,
        "error_count": sum(1 for f in findings if f.is_error),
        "rule_count": RelayRule.objects.filter(kind="rule").count(),
        "alias_count": Alias.objects.count(),
        "licence": alias_check().usage,
    }
