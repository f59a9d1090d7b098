"""設定の反映: the export to the mail daemon, its history (履歴), rollback and the audit CSV."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from aliases import aliasfile
from aliases.models import Alias, LocalDomain
from controlcenter import publishing
from controlcenter.audit import AuditAction, audit_record, changes_text, entry_summary
from controlcenter.findings import Finding, has_errors
from controlcenter.models import AuditEntry, Export, ExportStatus, ServerSettings
from controlcenter.selftest import SelftestReport
from controlcenter.services.policy import policy_lint, policy_selftest
from controlcenter.services.settings import settings_state
from relaypolicy.models import RelayPolicy
from relaypolicy.services import relay_table, relay_table_save

SETTINGS_SNAPSHOT_FIELDS = ServerSettings.EDITABLE_FIELDS
# Facts about this server rather than policy: a rollback keeps today's values.
ROLLBACK_KEEPS = ("export_dir", "accounts", "mailing_lists")
SNAPSHOT_PARTS = ("settings", "relay", "domains", "aliases")

# ExportReport.status values besides ExportStatus (never stored: nothing is recorded).
DRY_RUN = "dry_run"
STALE = "stale"  # the plan is not the one the administrator reviewed
UNCONFIRMED = "unconfirmed"  # it would overwrite files changed by hand, without ``force``

Actor = AbstractBaseUser | AnonymousUser | None


def policy_snapshot() -> dict[str, Any]:
    """The whole policy as JSON: settings, relay table (rules and terminator), domains, aliases."""
    return {
        "settings": settings_state(ServerSettings.load()),
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


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def policy_fingerprints() -> dict[str, str]:
    """A digest per part of :func:`policy_snapshot`, cheap at 100,000 aliases.

    The aliases part digests aggregates (count, highest id, latest ``updated_at``, which every
    alias write sets) rather than the rows, so it may report a change that was undone.
    """
    aliases = Alias.objects.aggregate(n=Count("id"), top=Max("id"), at=Max("updated_at"))
    return {
        "settings": _digest(settings_state(ServerSettings.load())),
        "relay": _digest(publishing.table_to_json(relay_table())),
        "domains": _digest(
            list(LocalDomain.objects.order_by("name").values_list("name", "comment"))
        ),
        "aliases": _digest([aliases["n"], aliases["top"], aliases["at"]]),
    }


def export_source(snapshot: dict[str, Any]) -> publishing.ExportSource:
    """What the files are rendered from, read from a policy snapshot."""
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


def snapshot_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The parts of the policy that differ, in a fixed order (jsonb does not keep key order)."""
    parts = [part for part in SNAPSHOT_PARTS if part in new]
    if not old:
        return parts
    return [part for part in parts if old.get(part) != new[part]]


def snapshot_delta(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What going from policy ``old`` to ``new`` adds and removes: relay rows, aliases and
    domains as ``{"added": n, "removed": n}`` (a changed entry counts as one of each), and the
    names of the changed settings. Parts that did not change are left out."""
    if not new:
        return {}
    old = old or {}
    delta: dict[str, Any] = {}
    for part in ("relay", "aliases", "domains"):
        before, after = _entries(old.get(part)), _entries(new.get(part))
        added, removed = sum((after - before).values()), sum((before - after).values())
        if added or removed:
            delta[part] = {"added": added, "removed": removed}
    if "relay" in new and "relay" in old and old["relay"] != new["relay"] and "relay" not in delta:
        delta["relay"] = {"added": 0, "removed": 0}  # only the final line changed
    settings_old, settings_new = old.get("settings") or {}, new.get("settings") or {}
    changed = [name for name in settings_new if settings_old.get(name) != settings_new[name]]
    if changed and settings_old:
        delta["settings"] = changed
    return delta


def _entries(part: Any) -> Counter[str]:
    rows = part.get("rows", []) if isinstance(part, dict) else part or []
    return Counter(json.dumps(row, sort_keys=True) for row in rows)


def snapshot_summary(snapshot: dict[str, Any]) -> dict[str, dict[str, object]]:
    """Per part of a policy snapshot: how many entries (settings: fields; relay: rows) and a
    digest."""

    def count(value: Any) -> int:
        return len(value["rows"]) if isinstance(value, dict) and "rows" in value else len(value)

    return {
        part: {"count": count(snapshot[part]), "sha256": _digest(snapshot[part])}
        for part in SNAPSHOT_PARTS
        if part in snapshot
    }


@dataclass(frozen=True)
class ExportReport:
    """One export run (or dry run): the plan, what blocked it, and the history row."""

    status: str  # an ExportStatus, or DRY_RUN, STALE or UNCONFIRMED (nothing recorded)
    dest: Path
    plan: publishing.ExportPlan
    findings: list[Finding]
    selftest: SelftestReport
    export: Export | None = None
    error: str = ""
    folder_unusable: bool = False  # the error is about the folder itself
    snapshot: dict[str, Any] = field(default_factory=dict, repr=False)

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
            "overwrites": self.plan.overwrites,
            "findings": [f.as_dict() for f in self.findings],
            "selftest": {"passed": self.selftest.passed, "probes": len(self.selftest.results)},
            "error": self.error,
        }


# Callables returning the highest export number another app has taken for runs it records
# later (gateways: a publication running in the background); the next number skips them.
EXPORT_NUMBER_RESERVATIONS: list[Callable[[], int]] = []


def _next_export_number() -> int:
    last = int(Export.objects.aggregate(last=Max("number"))["last"] or 0)
    return max([last, *(reserved() for reserved in EXPORT_NUMBER_RESERVATIONS)]) + 1


def export_number_next() -> int:
    """The number the next export (or publication to gateways) takes; call under
    :func:`export_numbering_lock`."""
    return _next_export_number()


def export_numbering_lock() -> None:
    """Serialise the numbering of exports (call inside a transaction)."""
    _lock_exports()


def export_record(
    report: ExportReport, *, user: Actor, number: int, fingerprints: dict[str, str]
) -> ExportReport:
    """Record (and audit) an export that another app performed, e.g. to gateways."""
    return _record_export(
        report,
        user=user,
        request_ip=None,
        rollback_of=None,
        fingerprints=fingerprints,
        number=number,
    )


def _lock_exports() -> None:
    """Serialise the numbering and recording of exports (call inside a transaction)."""
    ServerSettings.objects.select_for_update().get(pk=1)


def _check_policy() -> tuple[SelftestReport, list[Finding]]:
    selftest = policy_selftest()
    return selftest, policy_lint(selftest=selftest)


def _folder_message(error: publishing.FolderError) -> str:
    if isinstance(error, publishing.LinkRefused):
        return _(
            "%(path)s in the export folder is a symbolic link (or not a regular file); links "
            "are never followed. Remove it, then export again."
        ) % {"path": error.folder / error.name}
    return _("The export folder %(folder)s cannot be used: %(reason)s") % {
        "folder": error.folder,
        "reason": error.reason,
    }


def _refused_folder(folder: Path) -> str:
    """Why the export never writes into ``folder`` (a system folder...), "" when it may."""
    check = publishing.check_export_folder(str(folder))
    if check.refusal is None:
        return ""
    if check.refusal is publishing.FolderRefusal.SYSTEM:
        return _(
            "The export folder %(folder)s is a system folder (%(system)s): the export never "
            "writes there. Choose another folder in the server settings."
        ) % {"folder": folder, "system": check.detail}
    return _(
        "The export folder %(folder)s is not a usable folder name: choose another one in "
        "the server settings."
    ) % {"folder": ascii(str(folder))}


def _plan(
    snapshot: dict[str, Any], folder: Path, *, export_number: int
) -> tuple[publishing.ExportPlan, str]:
    """The plan against ``folder``, and why the folder is unusable ("" when it is not).

    An unreadable folder is planned against as if it were empty, so the files can be shown.
    """
    error = _refused_folder(folder)
    try:
        if error:
            raise publishing.FolderError(folder, OSError(error))
        deployed = publishing.read_deployed(folder)
    except publishing.FolderError as failure:
        deployed = publishing.Deployed(dict.fromkeys(publishing.FILE_NAMES), None)
        error = error or _folder_message(failure)
    plan = publishing.plan_export(export_source(snapshot), deployed, export_number=export_number)
    return plan, error


def export_plan(*, dest: Path | None = None) -> tuple[Path, publishing.ExportPlan, str]:
    """What the next export would write into ``dest`` (default: the export folder), and why
    that folder is unusable ("" when it is not); writes nothing."""
    folder = ServerSettings.load().export_path if dest is None else dest
    _recover_if_interrupted(folder)
    plan, error = _plan(policy_snapshot(), folder, export_number=_next_export_number())
    return folder, plan, error


def config_export(
    *,
    user: Actor,
    dest: Path | None = None,
    dry_run: bool = False,
    request_ip: str | None = None,
    rollback_of: Export | None = None,
    force: bool = False,
    expected_digest: str | None = None,
    record_folder_failure: bool = True,
) -> ExportReport:
    """Render every file for the daemon into ``dest`` atomically and record the export.

    Refuses (writes nothing, records the refusal) while policy_lint() has errors; an unusable
    folder is a recorded failure. Writes and records nothing when the plan's digest is not
    ``expected_digest`` (STALE) or when it would overwrite files changed by hand without
    ``force`` (UNCONFIRMED); a dry run only plans. Exports are serialised by a row lock, under
    which the number is allocated, and a file lock on the folder, taken in that order. The
    policy is checked once (lint and self-test), on the snapshot that is rendered, taken under
    the row lock that every policy write takes. An export interrupted earlier in the folder is
    first completed or undone (:func:`export_recover`). The previous files are kept until the
    export is recorded, and put back when the database step fails (ExportDatabaseError:
    nothing changed, nothing recorded). With ``record_folder_failure=False`` an unusable folder
    is not recorded.
    """
    folder = ServerSettings.load().export_path if dest is None else dest
    if dry_run:
        selftest, findings = _check_policy()
        snapshot = policy_snapshot()
        plan, error = _plan(snapshot, folder, export_number=_next_export_number())
        status = ExportStatus.FAILED if error else DRY_RUN
        return ExportReport(
            status, folder, plan, findings, selftest, error=error, folder_unusable=bool(error)
        )
    try:
        return _export_locked(
            folder,
            user=user,
            request_ip=request_ip,
            rollback_of=rollback_of,
            force=force,
            expected_digest=expected_digest,
            record_folder_failure=record_folder_failure,
        )
    except DatabaseError as failure:
        # e.g. SQLite's "database is locked": nothing was recorded and the files are as before
        message = _(
            "The export could not be recorded in the database, nothing was changed: %(error)s"
        ) % {"error": " ".join(str(failure).split())}
        raise ExportDatabaseError(message) from failure


def _export_locked(
    folder: Path,
    *,
    user: Actor,
    request_ip: str | None,
    rollback_of: Export | None,
    force: bool,
    expected_digest: str | None,
    record_folder_failure: bool = True,
) -> ExportReport:
    staged: list[publishing.StagedFileSet] = []
    # Inside a caller's transaction (a rollback) the set is only final once that commits.
    nested = any(
        not getattr(block, "_from_testcase", False)
        for block in transaction.get_connection().atomic_blocks
    )
    # The folder lock outlives the transaction: the backups and the journal go after commit.
    with contextlib.ExitStack() as folder_lock:
        try:
            with transaction.atomic():
                report = _export_transaction(
                    folder,
                    staged,
                    folder_lock,
                    user=user,
                    request_ip=request_ip,
                    rollback_of=rollback_of,
                    force=force,
                    expected_digest=expected_digest,
                    record_folder_failure=record_folder_failure,
                )
        except BaseException:
            # The set must never be left changed without its history row (and when this
            # process dies here instead, the journal lets the next export undo it).
            for written in staged:
                written.restore()
            raise
        for written in staged:
            if nested:
                transaction.on_commit(written.discard)
            else:
                written.discard()
    return report


def _export_transaction(
    folder: Path,
    staged: list[publishing.StagedFileSet],
    folder_lock: contextlib.ExitStack,
    *,
    user: Actor,
    request_ip: str | None,
    rollback_of: Export | None,
    force: bool,
    expected_digest: str | None,
    record_folder_failure: bool,
) -> ExportReport:
    _lock_exports()
    # Under the lock every policy write takes: the snapshot is the one checked and rendered.
    # Before the snapshot: a change made in between shows as pending rather than hiding.
    fingerprints = policy_fingerprints()
    snapshot = policy_snapshot()
    selftest, findings = _check_policy()
    error = ""
    if not has_errors(findings) and not (error := _refused_folder(folder)):
        # Refused exports create nothing in the folder, not even the lock file.
        try:
            folder_lock.enter_context(publishing.export_lock(folder))
            _recover_locked(folder)
        except publishing.FolderError as failure:
            error = _folder_message(failure)
    plan, read_error = _plan(snapshot, folder, export_number=_next_export_number())
    report = ExportReport(
        ExportStatus.EXPORTED, folder, plan, findings, selftest, snapshot=snapshot
    )
    if has_errors(findings):
        report = dataclasses.replace(
            report,
            status=ExportStatus.REFUSED,
            error=read_error,
            folder_unusable=bool(read_error),
        )
        if read_error and not record_folder_failure:
            return report
        return _record_export(report, user=user, request_ip=request_ip, rollback_of=rollback_of)
    if error:
        report = dataclasses.replace(
            report, status=ExportStatus.FAILED, error=error, folder_unusable=True
        )
        if not record_folder_failure:
            return report
        return _record_export(report, user=user, request_ip=request_ip, rollback_of=rollback_of)
    if expected_digest is not None and expected_digest != plan.digest:
        return dataclasses.replace(report, status=STALE)
    if read_error:
        report = dataclasses.replace(
            report, status=ExportStatus.FAILED, error=read_error, folder_unusable=True
        )
        if not record_folder_failure:
            return report
    elif plan.overwrites and not force:
        return dataclasses.replace(report, status=UNCONFIRMED)
    else:
        try:
            staged.append(
                publishing.stage_file_set(
                    folder,
                    plan.all_files(),
                    label={"export": plan.export_number, "dest": str(folder)},
                )
            )
        except publishing.FolderError as failure:
            report = dataclasses.replace(
                report,
                status=ExportStatus.FAILED,
                error=_folder_message(failure),
                folder_unusable=True,
            )
            if not record_folder_failure:
                return report
        except OSError as failure:
            report = dataclasses.replace(report, status=ExportStatus.FAILED, error=str(failure))
    return _record_export(
        report,
        user=user,
        request_ip=request_ip,
        rollback_of=rollback_of,
        fingerprints=fingerprints if report.written else {},
    )


# --- an export interrupted by a crash -------------------------------------------------------


def _journal_recorded(folder: Path, journal: publishing.Journal) -> bool:
    """Whether the set in ``journal`` is the recorded export it claims to be."""
    number = journal.label.get("export")
    if not isinstance(number, int):
        return False
    export = (
        Export.objects.filter(number=number, status=ExportStatus.EXPORTED)
        .only("dest", "hashes")
        .first()
    )
    return (
        export is not None
        and export.dest == str(folder)
        and all(journal.files.get(name) == digest for name, digest in export.hashes.items())
    )


def _recover_locked(folder: Path) -> publishing.Recovery | None:
    """Complete or undo an export interrupted in ``folder`` (under both locks); an undone one
    is written to the audit log."""
    recovery = publishing.recover_file_set(
        folder, recorded=lambda journal: _journal_recorded(folder, journal)
    )
    if recovery is not None and recovery.outcome is publishing.RecoveryOutcome.ROLLED_BACK:
        assert recovery.journal is not None
        audit_record(
            action=AuditAction.EXPORT_RECOVERED,
            target=f"#{recovery.journal.label.get('export', '?')} {folder}",
            summary=_(
                "An interrupted export (not recorded) was undone: the export folder holds "
                "the previous files again."
            ),
            after=recovery.journal.files,
        )
    return recovery


def export_recover(*, dest: Path | None = None, wait: bool = True) -> publishing.Recovery | None:
    """Complete or undo an export interrupted (a killed process, a power cut) in ``dest``
    (default: the export folder) and remove the export's leftover temporary files; run at
    start-up and by every export. None when there was nothing to do. With ``wait=False`` it
    does nothing while an export holds a lock (that export recovers the folder itself)."""
    folder = ServerSettings.load().export_path if dest is None else dest
    if _refused_folder(folder) or not folder.is_dir():
        return None
    try:
        with transaction.atomic():
            ServerSettings.objects.select_for_update(nowait=not wait).get(pk=1)
            with publishing.export_lock(folder, blocking=wait) as locked:
                return _recover_locked(folder) if locked else None
    except OperationalError:
        if wait:
            raise
        return None  # PostgreSQL: the row is locked by a running export (NOWAIT)


def _recover_if_interrupted(folder: Path) -> None:
    """Recover a folder whose journal says an export was interrupted (a worker killed during
    an export leaves it behind while the server keeps running), unless an export is running."""
    try:
        pending = (folder / publishing.JOURNAL).is_file()
    except OSError:
        return
    if pending:
        with contextlib.suppress(publishing.FolderError):
            export_recover(dest=folder, wait=False)


def _record_export(
    report: ExportReport,
    *,
    user: Actor,
    request_ip: str | None,
    rollback_of: Export | None,
    fingerprints: dict[str, str] | None = None,
    number: int | None = None,
    audit: bool = True,
) -> ExportReport:
    plan = report.plan
    actor = user if user is not None and user.is_authenticated else None
    previous = Export.objects.filter(status=ExportStatus.EXPORTED).order_by("-number").first()
    export = Export.objects.create(
        changes=snapshot_delta(previous.snapshot if previous else None, report.snapshot),
        number=plan.export_number if number is None else number,
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
        findings=[stored_finding(f) for f in report.findings],
        selftest={"passed": report.selftest.passed, "probes": len(report.selftest.results)},
        snapshot=report.snapshot,
        rollback_of=rollback_of,
        error=report.error,
        replaced=plan.replaced if report.written else {},
        fingerprints=fingerprints or {},
    )
    if audit:
        _audit_export(export, report, user=user, request_ip=request_ip)
    return dataclasses.replace(report, export=export)


def _audit_export(
    export: Export, report: ExportReport, *, user: Actor, request_ip: str | None
) -> None:
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
    changed = ", ".join(diff.name for diff in report.plan.diffs if diff.changed)
    if report.written and report.plan.replaced:
        changed += " " + _("(replaced files changed by hand: %(files)s)") % {
            "files": ", ".join(report.plan.overwrites)
        }
    audit_record(
        action=action,
        target=f"#{export.number} {report.dest}",
        summary=report.error or changed or _("no file changed"),
        before=previous.hashes if previous else None,
        after=report.plan.hashes,
        **_actor_kwargs(user, request_ip),
    )


def stored_finding(finding: Finding) -> dict[str, object]:
    """A finding as the export history keeps it: the lint's JSON shape, plus the untranslated
    message and its parameters so 履歴 shows it in the reader's language."""
    return {
        **finding.as_dict(),
        "template": finding.message,
        "hint_template": finding.hint,
        "params": {
            name: value if isinstance(value, str | int | float | bool | None) else str(value)
            for name, value in finding.params
        },
    }


def _actor_kwargs(user: Actor, source_ip: str | None) -> dict[str, Any]:
    """Explicit actor and address when given; otherwise audit_record uses the request's."""
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs["actor"] = user
    if source_ip is not None:
        kwargs["source_ip"] = source_ip
    return kwargs


# --- rollback ---------------------------------------------------------------------------------


class ExportDatabaseError(Exception):
    """The database step of an export failed (e.g. SQLite is locked): nothing was recorded
    and the export folder was left as it was. The message is one line."""


class RollbackRefused(Exception):
    """The snapshot could not be restored (it has errors now, or the export did not write).

    ``export`` is the refused or failed export recorded for the attempt, if it got that far.
    """

    def __init__(self, reason: str, *, export: Export | None = None) -> None:
        super().__init__(reason)
        self.export = export


class RollbackStale(RollbackRefused):
    """The rollback's plan is not the one the administrator reviewed; nothing was recorded."""


def rollback_plan(export: Export) -> tuple[Path, publishing.ExportPlan, str]:
    """What rolling back to ``export`` would write into today's export folder (its drift:
    the files changed by hand it would overwrite), and why that folder is unusable."""
    folder = ServerSettings.load().export_path
    plan, error = _plan(export.snapshot, folder, export_number=_next_export_number())
    return folder, plan, error


def policy_restore(snapshot: dict[str, Any]) -> None:
    """Replace the settings, relay table, domains and aliases by ``snapshot`` (one transaction).

    The settings in ROLLBACK_KEEPS (the export folder, the account and mailing-list counts)
    keep today's values: they describe the server, not the policy.
    """
    with transaction.atomic():
        server = ServerSettings.objects.select_for_update().get(pk=1)
        for name in SETTINGS_SNAPSHOT_FIELDS:
            if name in snapshot["settings"] and name not in ROLLBACK_KEEPS:
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
    user: Actor,
    dest: Path | None = None,
    request_ip: str | None = None,
    force: bool = False,
    expected_digest: str | None = None,
) -> ExportReport:
    """Restore an earlier export's policy snapshot (audited) and export it again.

    With ``expected_digest`` (the digest of :func:`rollback_plan` the administrator
    reviewed), a different plan raises RollbackStale and changes and records nothing.

    Everything is restored but the settings in ROLLBACK_KEEPS, and the export goes to the
    *current* export folder (or ``dest``), not to the one the old export wrote to. All or
    nothing: when the restored policy has errors, or the export does not write, the policy is
    left as it was, the attempt is recorded (a ``config.rollback_refused`` audit entry, and
    the refused or failed export) and RollbackRefused is raised.
    """
    source = Export.objects.get(pk=export_id, status=ExportStatus.EXPORTED)
    before = policy_snapshot()
    attempt: ExportReport | None = None
    try:
        with transaction.atomic():
            policy_restore(source.snapshot)
            after = policy_snapshot()
            audit_record(
                action=AuditAction.ROLLBACK,
                target=f"#{source.number}",
                summary=", ".join(snapshot_changes(before, after)),
                # Per part, not the snapshots (megabytes at 100,000 aliases): the export
                # history keeps the policy itself.
                before=snapshot_summary(before),
                after=snapshot_summary(after),
                **_actor_kwargs(user, request_ip),
            )
            attempt = config_export(
                user=user,
                dest=dest,
                request_ip=request_ip,
                rollback_of=source,
                force=force,
                expected_digest=expected_digest,
            )
            if attempt.status == STALE:
                raise RollbackStale(
                    _(
                        "the policy or the deployed files changed since the page was shown; "
                        "review the rollback again"
                    )
                )
            if not attempt.written:
                raise RollbackRefused(_rollback_reason(attempt))
    except RollbackStale:
        raise
    except (RollbackRefused, ValueError) as error:  # ValueError: today's validators refuse
        reason = str(error)
        export = _record_rollback_refusal(
            source, attempt, reason=reason, user=user, request_ip=request_ip
        )
        raise RollbackRefused(reason, export=export) from error
    return attempt


def _rollback_reason(attempt: ExportReport) -> str:
    if attempt.status == ExportStatus.REFUSED:
        return _("the restored policy has errors")
    if attempt.status == UNCONFIRMED:
        return _(
            "files in the export folder were changed by hand (%(files)s); "
            "confirm that they may be overwritten"
        ) % {"files": ", ".join(attempt.plan.overwrites)}
    return attempt.error or attempt.status


def _record_rollback_refusal(
    source: Export,
    attempt: ExportReport | None,
    *,
    reason: str,
    user: Actor,
    request_ip: str | None,
) -> Export | None:
    """Record a refused rollback after its transaction was undone (the rows went with it)."""
    with transaction.atomic():
        export = None
        if attempt is not None and attempt.status in (ExportStatus.REFUSED, ExportStatus.FAILED):
            _lock_exports()
            export = _record_export(
                dataclasses.replace(attempt, export=None),
                user=user,
                request_ip=request_ip,
                rollback_of=source,
                number=_next_export_number(),
                audit=False,
            ).export
        audit_record(
            action=AuditAction.ROLLBACK_REFUSED,
            target=f"#{source.number}" + (f" -> #{export.number}" if export else ""),
            summary=reason,
            **_actor_kwargs(user, request_ip),
        )
    return export


# --- what 設定の反映, 履歴 and the dashboard show ---------------------------------------------


@dataclass(frozen=True)
class PublishStatus:
    """What 設定の反映 shows about the next export."""

    last_export: Export | None
    pending: list[str]  # parts of the policy changed since the last export
    dest: Path
    plan: publishing.ExportPlan
    findings: list[Finding]
    selftest: SelftestReport
    folder_error: str = ""

    @property
    def has_errors(self) -> bool:
        return has_errors(self.findings)

    @property
    def can_publish(self) -> bool:
        return not self.has_errors and not self.folder_error


def last_export() -> Export | None:
    """The last successful export (its files and snapshot are loaded only when used)."""
    return (
        Export.objects.filter(status=ExportStatus.EXPORTED)
        .defer(*Export.BULKY_FIELDS)
        .order_by("-number")
        .first()
    )


def pending_changes() -> tuple[Export | None, list[str]]:
    """The last export and the parts of the policy changed since.

    Compares fingerprints (no full snapshot); exports recorded before fingerprints existed
    are compared by their snapshot.
    """
    last = last_export()
    if last is None:
        return None, list(SNAPSHOT_PARTS)
    if last.fingerprints:
        now = policy_fingerprints()
        return last, [part for part in SNAPSHOT_PARTS if last.fingerprints.get(part) != now[part]]
    return last, snapshot_changes(last.snapshot, policy_snapshot())


def publish_status(*, selftest: SelftestReport | None = None) -> PublishStatus:
    selftest = policy_selftest() if selftest is None else selftest
    last, pending = pending_changes()
    dest, plan, folder_error = export_plan()
    return PublishStatus(
        last, pending, dest, plan, policy_lint(selftest=selftest), selftest, folder_error
    )


def export_diff_against_now(export: Export) -> list[publishing.FileDiff]:
    """Per file: what an export today would change compared with ``export``'s files."""
    _dest, plan, _error = export_plan(dest=Path(export.dest))
    return [
        publishing.unified_diff(name, export.files.get(name), plan.texts[name])
        for name in publishing.FILE_NAMES
    ]


# --- 変更履歴 ------------------------------------------------------------------------------------

AUDIT_CSV_COLUMNS = (
    gettext_lazy("Date (Japan time)"),
    gettext_lazy("User"),
    gettext_lazy("Source IP address"),
    gettext_lazy("Action"),
    gettext_lazy("Target"),
    gettext_lazy("Summary"),
    gettext_lazy("Changes"),
)


def audit_log_csv(entries: Iterable[AuditEntry]) -> bytes:
    """The entries as CSV for people (UTF-8 with a BOM for Excel, Japan time, formula-safe
    cells), in the reader's language like the screen: headers, actions, summaries and the
    changes field by field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(str(header) for header in AUDIT_CSV_COLUMNS)
    labels = dict(AuditAction.choices)
    for entry in entries:
        writer.writerow(
            aliasfile.neutralise_formula(str(cell))
            for cell in (
                timezone.localtime(entry.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                entry.actor_display,
                entry.source_ip or "",
                labels.get(entry.action, entry.action),
                entry.target,
                entry_summary(entry),
                changes_text(entry),
            )
        )
    return out.getvalue().encode("utf-8-sig")
