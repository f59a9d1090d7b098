from __future__ import annotations

import csv
import dataclasses
import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AbstractUser, AnonymousUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from controlcenter import publishing
from controlcenter.audit import AuditAction, audit_record
from controlcenter.findings import Finding, Level, gettext_noop, has_errors, make, sort_findings
from controlcenter.models import AuditEntry, Export, ExportStatus, ServerSettings
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
    _audit_user(AuditAction.USER_CREATE, user, None, _user_state(user))
    return user


def _user_state(user: AbstractUser) -> dict[str, object]:
    role = user_role(user)
    return {
        "username": user.get_username(),
        "name": f"{user.last_name} {user.first_name}".strip(),
        "email": user.email,
        "role": role.value if role else None,
        "is_active": user.is_active,
    }


def _audit_user(
    action: str, user: AbstractUser, before: dict[str, object] | None, after: object
) -> None:
    audit_record(action=action, target=user.get_username(), before=before, after=after)


@transaction.atomic
def user_update(*, user: AbstractUser, role: Role, is_active: bool, **fields: Any) -> AbstractUser:
    """Change a login's details and role; refuses to leave no active administrator."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    before = _user_state(User.objects.get(pk=user.pk))
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
    _audit_user(AuditAction.USER_UPDATE, user, before, _user_state(user))
    return user


def user_set_password(*, user: AbstractUser, password: str) -> None:
    user.set_password(password)
    user.save(update_fields=["password"])
    _audit_user(AuditAction.USER_PASSWORD, user, None, None)


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
    return server_settings_save(form=form)


@transaction.atomic
def server_settings_save(*, form: Any) -> ServerSettings:
    """Save a valid settings form (全設定) and record the change."""
    before = _settings_state(ServerSettings.objects.select_for_update().get(pk=1))
    server: ServerSettings = form.save()
    after = _settings_state(server)
    if before != after:
        changed = [name for name in after if before.get(name) != after[name]]
        audit_record(
            action=AuditAction.SETTINGS_CHANGE,
            target="settings",
            summary=", ".join(changed),
            before=before,
            after=after,
        )
    return server


def _settings_state(server: ServerSettings) -> dict[str, object]:
    return {name: getattr(server, name) for name in SETTINGS_SNAPSHOT_FIELDS}


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


# --- 設定の反映: export, history and rollback ---------------------------------------------

SETTINGS_SNAPSHOT_FIELDS = ServerSettings.EDITABLE_FIELDS


def policy_snapshot() -> dict[str, Any]:
    """The whole policy as JSON: settings, relay table (rules and terminator), domains, aliases."""
    from aliases.models import Alias, LocalDomain
    from relaypolicy.services import relay_table

    server = ServerSettings.load()
    return {
        "settings": {name: getattr(server, name) for name in SETTINGS_SNAPSHOT_FIELDS},
        "relay": publishing.table_to_json(relay_table()),
        "domains": [
            {"name": name, "comment": comment}
            for name, comment in LocalDomain.objects.order_by("name").values_list("name", "comment")
        ],
        "aliases": [
            {"pattern": pattern, "target": target, "option": option, "comment": comment}
            for pattern, target, option, comment in Alias.objects.order_by("position").values_list(
                "pattern", "target", "option", "comment"
            )
        ],
    }


def export_source(snapshot: dict[str, Any]) -> publishing.ExportSource:
    """What the files are rendered from, read from a policy snapshot."""
    from aliases import aliasfile

    server = snapshot["settings"]
    return publishing.ExportSource(
        table=publishing.table_from_json(snapshot["relay"]),
        aliases=tuple(
            aliasfile.Alias(a["pattern"], a["target"], a["option"], a["comment"])
            for a in snapshot["aliases"]
        ),
        newline="\r\n" if server["export_line_ending"] == "crlf" else "\n",
        console_folder=server["console_folder"],
        console_command=server["console_command"],
        console_mode_word=server["console_mode_word"],
    )


SNAPSHOT_PARTS = ("settings", "relay", "domains", "aliases")


def snapshot_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The parts of the policy that differ, in a fixed order (jsonb does not keep key order)."""
    parts = [part for part in SNAPSHOT_PARTS if part in new]
    if not old:
        return parts
    return [part for part in parts if old.get(part) != new[part]]


@dataclass(frozen=True)
class ExportReport:
    """One export run (or dry run): the plan, what blocked it, and the history row."""

    status: str  # "exported", "refused", "failed" or "dry_run"
    dest: Path
    plan: publishing.ExportPlan
    findings: list[Finding]
    selftest: SelftestReport
    export: Export | None = None
    error: str = ""

    @property
    def written(self) -> bool:
        return self.status == ExportStatus.EXPORTED

    def as_dict(self) -> dict[str, object]:
        """The JSON printed by ``export_config --json`` (keys are only ever added)."""
        return {
            "status": self.status,
            "export": self.export.number if self.export else None,
            "dest": str(self.dest),
            "changed": [diff.name for diff in self.plan.diffs if diff.changed],
            "files": {
                diff.name: {"sha256": self.plan.hashes[diff.name], "changed": diff.changed}
                for diff in self.plan.diffs
            },
            "diff": {diff.name: list(diff.lines) for diff in self.plan.diffs if diff.changed},
            "drift": [{"file": d.name, "kind": d.kind.value} for d in self.plan.drift],
            "daemon_lines": [
                {"line": d.line, "text": d.text, "origin": d.origin.value}
                for d in self.plan.daemon_lines
            ],
            "findings": [f.as_dict() for f in self.findings],
            "selftest": {"passed": self.selftest.passed, "probes": len(self.selftest.results)},
            "error": self.error,
        }


def _next_export_number() -> int:
    return int(Export.objects.aggregate(last=Max("number"))["last"] or 0) + 1


def _check_policy() -> tuple[SelftestReport, list[Finding]]:
    selftest = policy_selftest()
    return selftest, policy_lint(selftest=selftest)


def export_plan(*, dest: Path | None = None) -> tuple[Path, publishing.ExportPlan]:
    """What the next export would write into ``dest`` (default: the export folder); no writes."""
    folder = ServerSettings.load().export_path if dest is None else dest
    snapshot = policy_snapshot()
    plan = publishing.plan_export(
        export_source(snapshot),
        publishing.read_deployed(folder),
        export_number=_next_export_number(),
    )
    return folder, plan


def config_export(
    *,
    user: AbstractBaseUser | AnonymousUser | None,
    dest: Path | None = None,
    dry_run: bool = False,
    request_ip: str | None = None,
    rollback_of: Export | None = None,
) -> ExportReport:
    """Render every file for the daemon into ``dest`` atomically and record the export.

    Refuses (writes nothing, records the refusal) while policy_lint() has errors; a dry run
    only plans. Exports are serialised by a file lock on the folder and a row lock.
    """
    folder = ServerSettings.load().export_path if dest is None else dest
    selftest, findings = _check_policy()
    if dry_run or has_errors(findings):
        snapshot = policy_snapshot()
        plan = publishing.plan_export(
            export_source(snapshot),
            publishing.read_deployed(folder),
            export_number=_next_export_number(),
        )
        if dry_run:
            return ExportReport("dry_run", folder, plan, findings, selftest)
        # Refused before the lock: a refusal creates nothing in the folder.
        with transaction.atomic():
            ServerSettings.objects.select_for_update().get(pk=1)
            return _record_export(
                ExportReport(ExportStatus.REFUSED, folder, plan, findings, selftest),
                user=user,
                request_ip=request_ip,
                snapshot=snapshot,
                rollback_of=rollback_of,
            )
    with publishing.export_lock(folder), transaction.atomic():
        ServerSettings.objects.select_for_update().get(pk=1)
        # Checked again under the locks: the policy may have changed meanwhile.
        selftest, findings = _check_policy()
        snapshot = policy_snapshot()
        plan = publishing.plan_export(
            export_source(snapshot),
            publishing.read_deployed(folder),
            export_number=_next_export_number(),
        )
        status, error = ExportStatus.EXPORTED, ""
        if has_errors(findings):
            status = ExportStatus.REFUSED
        else:
            try:
                publishing.write_file_set(folder, plan.all_files())
            except OSError as failure:
                status, error = ExportStatus.FAILED, str(failure)
        return _record_export(
            ExportReport(status, folder, plan, findings, selftest, error=error),
            user=user,
            request_ip=request_ip,
            snapshot=snapshot,
            rollback_of=rollback_of,
        )


def _record_export(
    report: ExportReport,
    *,
    user: AbstractBaseUser | AnonymousUser | None,
    request_ip: str | None,
    snapshot: dict[str, Any],
    rollback_of: Export | None,
) -> ExportReport:
    plan = report.plan
    actor = user if user is not None and user.is_authenticated else None
    export = Export.objects.create(
        number=plan.export_number,
        user=actor,  # type: ignore[misc]
        username=actor.get_username() if actor is not None else "",
        status=report.status,
        dest=str(report.dest),
        files=plan.texts,
        hashes=plan.hashes,
        drift=[{"file": d.name, "kind": d.kind.value} for d in plan.drift],
        daemon_lines=[
            {"line": d.line, "text": d.text, "origin": d.origin.value} for d in plan.daemon_lines
        ],
        findings=[f.as_dict() for f in report.findings],
        selftest={"passed": report.selftest.passed, "probes": len(report.selftest.results)},
        snapshot=snapshot,
        rollback_of=rollback_of,
        error=report.error,
    )
    action = {
        ExportStatus.EXPORTED: AuditAction.EXPORT,
        ExportStatus.REFUSED: AuditAction.EXPORT_REFUSED,
        ExportStatus.FAILED: AuditAction.EXPORT_FAILED,
    }[ExportStatus(report.status)]
    previous = (
        Export.objects.filter(status=ExportStatus.EXPORTED, number__lt=export.number)
        .order_by("-number")
        .first()
    )
    audit_record(
        action=action,
        target=f"#{export.number} {report.dest}",
        summary=report.error
        or ", ".join(diff.name for diff in plan.diffs if diff.changed)
        or _("no file changed"),
        before=previous.hashes if previous else None,
        after=plan.hashes,
        **_actor_kwargs(user, request_ip),
    )
    return dataclasses.replace(report, export=export)


def _actor_kwargs(
    user: AbstractBaseUser | AnonymousUser | None, source_ip: str | None
) -> dict[str, Any]:
    """Explicit actor and address when given; otherwise audit_record uses the request's."""
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs["actor"] = user
    if source_ip is not None:
        kwargs["source_ip"] = source_ip
    return kwargs


class RollbackRefused(Exception):
    """The snapshot could not be restored (it has errors now, or the export failed)."""


def policy_restore(snapshot: dict[str, Any]) -> None:
    """Replace settings, relay table, domains and aliases by ``snapshot`` (one transaction)."""
    from aliases import aliasfile
    from aliases.models import Alias, LocalDomain
    from relaypolicy.models import RelayPolicy
    from relaypolicy.services import relay_table_save

    with transaction.atomic():
        server = ServerSettings.objects.select_for_update().get(pk=1)
        for name in SETTINGS_SNAPSHOT_FIELDS:
            if name in snapshot["settings"]:
                setattr(server, name, snapshot["settings"][name])
        server.save()
        relay_table_save(
            table=publishing.table_from_json(snapshot["relay"]),
            version=RelayPolicy.load().version,
        )
        Alias.objects.all().delete()
        wanted = {d["name"]: d["comment"] for d in snapshot["domains"]}
        LocalDomain.objects.exclude(name__in=wanted).delete()
        for name, comment in wanted.items():
            LocalDomain.objects.update_or_create(name=name, defaults={"comment": comment})
        domains = {d.name: d for d in LocalDomain.objects.all()}
        now = timezone.now()
        Alias.objects.bulk_create(
            Alias(
                position=position,
                pattern=entry.pattern,
                key=entry.key,
                target=entry.target,
                option=entry.option,
                comment=entry.comment,
                domain=domains[entry.domain],
                updated_at=now,
            )
            for position, entry in enumerate(
                (
                    aliasfile.Alias(a["pattern"], a["target"], a["option"], a["comment"])
                    for a in snapshot["aliases"]
                ),
                start=1,
            )
        )


def config_rollback(
    *,
    export_id: int,
    user: AbstractBaseUser | AnonymousUser | None,
    dest: Path | None = None,
    request_ip: str | None = None,
) -> ExportReport:
    """Restore an earlier export's policy snapshot (audited) and export it again.

    All or nothing: when the restored policy has errors, or the export fails, the policy is
    left as it was and RollbackRefused is raised.
    """
    source = Export.objects.get(pk=export_id, status=ExportStatus.EXPORTED)
    before = policy_snapshot()
    try:
        with transaction.atomic():
            policy_restore(source.snapshot)
            audit_record(
                action=AuditAction.ROLLBACK,
                target=f"#{source.number}",
                summary=", ".join(snapshot_changes(before, source.snapshot)),
                before=before,
                after=source.snapshot,
                **_actor_kwargs(user, request_ip),
            )
            report = config_export(user=user, dest=dest, request_ip=request_ip, rollback_of=source)
            if not report.written:
                raise RollbackRefused(report.error or report.status)
    except ValueError as error:  # the relay table has errors under today's validators
        raise RollbackRefused(str(error)) from error
    return report


@dataclass(frozen=True)
class PublishStatus:
    """What 設定の反映 and the dashboard show about the next export."""

    last_export: Export | None
    pending: list[str]  # parts of the policy changed since the last export
    dest: Path
    plan: publishing.ExportPlan
    findings: list[Finding]
    selftest: SelftestReport

    @property
    def has_errors(self) -> bool:
        return has_errors(self.findings)


def last_export() -> Export | None:
    return Export.objects.filter(status=ExportStatus.EXPORTED).order_by("-number").first()


def pending_changes() -> tuple[Export | None, list[str]]:
    """The last export and the parts of the policy changed since."""
    last = last_export()
    return last, snapshot_changes(last.snapshot if last else None, policy_snapshot())


def publish_status(*, selftest: SelftestReport | None = None) -> PublishStatus:
    selftest = policy_selftest() if selftest is None else selftest
    last, pending = pending_changes()
    dest, plan = export_plan()
    return PublishStatus(last, pending, dest, plan, policy_lint(selftest=selftest), selftest)


def export_diff_against_now(export: Export) -> list[publishing.FileDiff]:
    """Per file: what an export today would change compared with ``export``'s files."""
    _dest, plan = export_plan(dest=Path(export.dest))
    return [
        publishing.unified_diff(name, export.files.get(name), plan.texts[name])
        for name in publishing.FILE_NAMES
    ]


AUDIT_CSV_COLUMNS = ("time", "user", "source_ip", "action", "target", "summary", "diff")


def audit_log_csv(entries: Iterable[AuditEntry]) -> bytes:
    """The entries as CSV (UTF-8 with a BOM for Excel, Japan time, formula-safe cells)."""
    from aliases.aliasfile import neutralise_formula

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(AUDIT_CSV_COLUMNS)
    for entry in entries:
        writer.writerow(
            neutralise_formula(str(cell))
            for cell in (
                timezone.localtime(entry.created_at).isoformat(timespec="seconds"),
                entry.actor_name,
                entry.source_ip or "",
                entry.action,
                entry.target,
                entry.summary,
                entry.diff,
            )
        )
    return out.getvalue().encode("utf-8-sig")
