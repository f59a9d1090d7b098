"""Reading gateway logs into the database, and what the screens and commands ask of them.

A read streams every source through :class:`maillogs.analysis.Aggregator` and stores the result
in one transaction at the end (:func:`log_read`): a cancelled or failed read stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from aliases import aliasfile
from aliases import services as alias_services
from aliases.models import Alias, AliasUpload, LocalDomain
from controlcenter.models import Licence, ServerSettings
from controlcenter.services.export import policy_fingerprints
from controlcenter.services.policy import policy_compile
from maillogs import analysis, logfile
from maillogs.models import (
    LogClient,
    LogFileState,
    LogRecipient,
    LogRun,
    LogSenderDomain,
    LogSession,
    LogSourceKind,
    LogUpload,
)
from relaypolicy.effectfile import CLIENT_KINDS, Modifier, PatternKind
from relaypolicy.effectmatch import compile_rules

Progress = Callable[[int, int, str], None]
BATCH = 5000
LICENCE_TIERS = tuple(int(choice) for choice in Licence.values if choice.isdigit())


class LogReadError(Exception):
    """A read that cannot start or go on (an unsafe archive, an unreadable file)."""


# --- who is inside ---------------------------------------------------------------------------

_LAN_MODIFIERS = frozenset({Modifier.DEFAULT, Modifier.TRUE, Modifier.BARE, Modifier.ONLY})


def inside_classifier() -> tuple[Callable[[str], bool], str]:
    """``is_inside(ip)`` from the stored effect.dat, and its basis.

    A client is inside when the first client line matching it (not a catch-all) lets it relay
    (``default``, ``true``, ``only``). When no such line exists yet (a gateway still without LAN
    rules) private addresses are inside: basis ``"private"``; else ``"rules"``.
    """
    effect = policy_compile().effect
    lines = [
        line
        for line in effect.rules
        if line.pattern_kind in CLIENT_KINDS and line.pattern_kind is not PatternKind.CATCH_ALL
    ]
    if not any(line.effective in _LAN_MODIFIERS for line in lines):
        return analysis.private_address, "private"
    rules = compile_rules(lines)

    def is_inside(client_ip: str) -> bool:
        line = rules.first_match(client_ip, "<>")
        return line is not None and line.effective in _LAN_MODIFIERS

    return is_inside, "rules"


def local_domains() -> list[str]:
    return list(LocalDomain.objects.values_list("name", flat=True))


# --- sources ---------------------------------------------------------------------------------


def path_sources(paths: Sequence[Path]) -> list[logfile.Source]:
    """Every log file under the given paths; :class:`LogReadError` names the bad one."""
    found: list[logfile.Source] = []
    for path in paths:
        if not path.exists():
            raise LogReadError(_("%(path)s does not exist.") % {"path": path})
        try:
            found.extend(logfile.iter_sources(path, display=path.name or str(path)))
        except logfile.ArchiveRefused as error:
            raise LogReadError(
                _("%(name)s was refused: %(reason)s. Nothing was read.")
                % {"name": error.name, "reason": error.reason}
            ) from None
        except OSError as error:
            raise LogReadError(
                _("%(path)s cannot be read: %(error)s") % {"path": path, "error": error.strerror}
            ) from None
    return logfile.sort_sources(found)


@dataclass(frozen=True)
class FolderFile:
    path: str
    inode: int
    size: int
    offset: int  # where the read starts
    end: int  # where it stops (the end of the last complete line)


def work_dir() -> Path | None:
    configured = settings.CC_MAIL_WORK_DIR
    return Path(configured) if configured else None


def folder_sources(root: Path) -> tuple[list[logfile.Source], list[FolderFile]]:
    """The new and grown log files under ``root/<log>/``: each read from where the last read
    stopped (same inode, not shorter), or from the start (a new or replaced file)."""
    known = {state.path: state for state in LogFileState.objects.all()}
    sources: list[logfile.Source] = []
    files: list[FolderFile] = []
    for log in logfile.LOG_NAMES:
        folder = root / log
        if not folder.is_dir():
            continue
        for source in logfile.iter_sources(folder, display=log):
            relative = source.name.split("/", 1)[-1]
            path = folder / relative
            stat = path.stat()
            state = known.get(str(path))
            offset = 0
            if state is not None and state.inode == stat.st_ino and stat.st_size >= state.offset:
                offset = state.offset
            if path.name.lower().endswith(".gz"):
                if offset:  # a compressed file is read once, whole
                    continue
                sources.append(source)
                files.append(FolderFile(str(path), stat.st_ino, stat.st_size, 0, stat.st_size))
                continue
            end = logfile.complete_end(path, stat.st_size)
            if end <= offset:
                continue
            sources.append(
                logfile.Source(
                    source.name, source.log, end - offset, source.open, offset=offset, limit=end
                )
            )
            files.append(FolderFile(str(path), stat.st_ino, stat.st_size, offset, end))
    return logfile.sort_sources(sources), files


# --- reading ---------------------------------------------------------------------------------


def _no_progress(done: int, total: int, stage: str) -> None:
    return None


def log_read(
    *,
    sources: Sequence[logfile.Source],
    source_kind: str,
    label: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
    since: date | None = None,
    job_id: uuid.UUID | str | None = None,
    folder_files: Sequence[FolderFile] = (),
    progress: Progress = _no_progress,
) -> LogRun:
    """Read every source, then store the aggregates in one transaction; ``progress`` may raise
    (a cancelled job) and then nothing is stored."""
    domains = local_domains()
    is_inside, basis = inside_classifier()
    aggregator = analysis.Aggregator(local_domains=domains, is_inside=is_inside)
    total = sum(source.size for source in sources) or 1
    done = 0
    import gc

    enabled = gc.isenabled()
    gc.disable()  # millions of small objects that live to the end: collecting them is waste
    try:
        for source in sources:
            stage = _("Reading %(name)s") % {"name": source.name}
            progress(done, total, stage)
            base = done

            def report(consumed: int, base: int = base, stage: str = stage) -> None:
                progress(min(total, base + consumed), total, stage)

            try:
                for record in logfile.read_source(source, progress=report):
                    if (
                        since is not None
                        and not isinstance(record, logfile.UnknownLine)
                        and record.stamp.day < since
                    ):
                        continue
                    aggregator.add(record)
            except (OSError, EOFError, ValueError) as error:
                raise LogReadError(
                    _("%(name)s cannot be read: %(error)s. Nothing was stored.")
                    % {"name": source.name, "error": error}
                ) from None
            done = base + source.size
    finally:
        if enabled:
            gc.enable()
    progress(total, total, _("Storing the results"))
    report_abuse = analysis.detect_abuse(aggregator.analysis, local_domains=domains)
    return run_store(
        result=aggregator.analysis,
        abuse=report_abuse,
        source_kind=source_kind,
        label=label,
        files=len(sources),
        basis=basis,
        user=user,
        job_id=job_id,
        folder_files=folder_files,
    )


def _summary(result: analysis.Analysis, abuse: analysis.AbuseReport) -> dict[str, Any]:
    return {
        "lines": result.lines,
        "days": [[day.isoformat(), *counts] for day, counts in sorted(result.days.items())],
        "hours": [
            [day.isoformat(), hour, *counts] for (day, hour), counts in sorted(result.hours.items())
        ],
        "accept": [[day.isoformat(), *counts] for day, counts in sorted(result.accept.items())],
        "other_days": {
            log: [[day.isoformat(), count] for day, count in sorted(days.items())]
            for log, days in result.other_days.items()
        },
        "missing_sender": result.missing_sender,
        "forged_inbound": result.forged_inbound,
        "unknown": [
            {
                "source": line.source,
                "line": line.line,
                "text": line.text,
                "truncated": line.truncated,
            }
            for line in result.unknown_lines
        ],
        "samples": [
            {"source": sample.source, "line": sample.line, "text": sample.text}
            for sample in result.abuse_samples
        ],
        "by_client": [
            [row.client_ip, row.helo, row.mails, row.relayed, row.forged] for row in abuse.by_client
        ],
        "by_sender": [
            [row.sender, row.relayed, row.clients, row.forged] for row in abuse.by_sender
        ],
        "spikes": [
            [spike.hour.strftime("%Y-%m-%d %H:00"), spike.relayed, spike.baseline]
            for spike in abuse.spikes
        ],
        "retries": [list(row) for row in abuse.retries],
    }


@transaction.atomic
def run_store(
    *,
    result: analysis.Analysis,
    abuse: analysis.AbuseReport,
    source_kind: str,
    label: str,
    files: int,
    basis: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
    job_id: uuid.UUID | str | None = None,
    folder_files: Sequence[FolderFile] = (),
) -> LogRun:
    """Store one read: the run, its clients, sender domains, sessions and inner recipients,
    and (for a folder read) how far each file was read."""
    run = LogRun.objects.create(
        created_by=user if isinstance(user, User) else None,
        job_id=job_id,
        source_kind=source_kind,
        label=label[:500],
        first_seen=result.first.text if result.first else "",
        last_seen=result.last.text if result.last else "",
        files=files,
        mails=result.mails,
        relayed_outside=abuse.relayed_outside,
        forged=abuse.forged,
        unknown_lines=result.unknown,
        sessions_dropped=result.sessions_dropped,
        abuse_found=abuse.found,
        inside_basis=basis,
        summary=_summary(result, abuse),
    )
    _bulk(
        LogClient,
        (
            LogClient(
                run=run,
                client_ip=ip,
                helo=stats.helo[:255],
                inside=stats.inside,
                mails=stats.mails,
                relayed=stats.relayed,
                forged=stats.forged,
            )
            for ip, stats in result.clients.items()
        ),
    )
    _bulk(
        LogSenderDomain,
        (
            LogSenderDomain(
                run=run,
                domain=domain[:255],
                mails=stats.mails,
                relayed=stats.relayed,
                outside_relayed=stats.outside_relayed,
            )
            for domain, stats in result.sender_domains.items()
        ),
    )
    _bulk(
        LogSession,
        (
            LogSession(
                run=run,
                client_ip=ip,
                sender=sender[:320],
                recipient=recipient[:320],
                count=stats.count,
                relayed=stats.relayed,
                inside=stats.inside,
                first_seen=stats.first.text,
                last_seen=stats.last.text,
            )
            for (ip, sender, recipient), stats in result.sessions.items()
        ),
    )
    _bulk(
        LogRecipient,
        (
            LogRecipient(run=run, address=address[:320], mails=counts[0], delivered=counts[1])
            for address, counts in result.recipients.items()
        ),
    )
    for file in folder_files:
        LogFileState.objects.update_or_create(
            path=file.path,
            defaults={"inode": file.inode, "size": file.size, "offset": file.end},
        )
    return run


def _bulk(model: Any, rows: Iterable[Any]) -> None:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            model.objects.bulk_create(batch)
            batch = []
    if batch:
        model.objects.bulk_create(batch)


def latest_run() -> LogRun | None:
    return LogRun.objects.order_by("-created_at", "-pk").first()


def run_delete(*, run: LogRun) -> None:
    run.delete()


# --- uploads ---------------------------------------------------------------------------------


def upload_store(
    *, files: Sequence[UploadedFile[Any]], user: AbstractBaseUser | AnonymousUser
) -> LogUpload:
    """Keep uploaded files on disk for the background read (names made safe)."""
    folder = Path(settings.CC_LOG_UPLOAD_DIR) / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=False)
    names: list[str] = []
    for index, uploaded in enumerate(files):
        name = Path(uploaded.name or f"upload-{index}").name or f"upload-{index}"
        if name in names:
            name = f"{index}-{name}"
        with (folder / name).open("wb") as stream:
            for chunk in uploaded.chunks():
                stream.write(chunk)
        names.append(name)
    return LogUpload.objects.create(
        created_by=user if isinstance(user, User) else None, folder=str(folder), names=names
    )


def upload_read(
    *, upload: LogUpload, job_id: uuid.UUID | str | None = None, progress: Progress = _no_progress
) -> LogRun:
    """Read a stored upload; its files are removed afterwards, whatever happens."""
    folder = Path(upload.folder)
    try:
        paths = [folder / name for name in upload.names]
        sources = path_sources(paths)
        return log_read(
            sources=sources,
            source_kind=LogSourceKind.UPLOAD,
            label=", ".join(upload.names),
            user=upload.created_by,
            job_id=job_id,
            progress=progress,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        LogUpload.objects.filter(pk=upload.pk).delete()


def folder_read(
    *,
    user: AbstractBaseUser | AnonymousUser | None = None,
    job_id: uuid.UUID | str | None = None,
    progress: Progress = _no_progress,
) -> LogRun | None:
    """Read what is new in the configured mail work folder; None when nothing is new."""
    root = work_dir()
    if root is None:
        raise LogReadError(_("No mail work folder is configured (CC_MAIL_WORK_DIR)."))
    if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):
        raise LogReadError(_("The mail work folder %(path)s cannot be read.") % {"path": root})
    try:
        sources, files = folder_sources(root)
    except OSError as error:
        raise LogReadError(
            _("The mail work folder cannot be read: %(error)s") % {"error": error}
        ) from None
    if not sources:
        return None
    return log_read(
        sources=sources,
        source_kind=LogSourceKind.FOLDER,
        label=str(root),
        user=user,
        job_id=job_id,
        folder_files=files,
        progress=progress,
    )


# --- replay ----------------------------------------------------------------------------------


def known_senders() -> frozenset[str]:
    """Addresses that look real: they received mail, or sent from an inside client."""
    received = LogRecipient.objects.values_list("address", flat=True).distinct()
    inside = LogSession.objects.filter(inside=True).values_list("sender", flat=True).distinct()
    return frozenset(address.lower() for address in (*received, *inside) if address)


def stored_sessions() -> Iterable[analysis.StoredSession]:
    # Sorted, so that the same session stored by several reads is replayed once.
    rows = LogSession.objects.order_by("client_ip", "sender", "recipient").values_list(
        "client_ip", "sender", "recipient", "count", "relayed", "inside"
    )
    for row in rows.iterator(chunk_size=10000):
        yield analysis.StoredSession(*row)


def replay_report() -> analysis.ReplayReport:
    """Every stored session through the pending (stored, not necessarily exported) policy,
    compiled once; cached until the policy or the stored logs change."""
    key = (
        "maillogs:replay:"
        + hashlib.sha256(
            json.dumps(
                [policy_fingerprints(), list(LogRun.objects.values_list("pk", flat=True))],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
    )
    cached = cache.get(key)
    if isinstance(cached, analysis.ReplayReport):
        return cached
    report = analysis.replay_sessions(
        policy_compile(), stored_sessions(), known_senders=known_senders()
    )
    cache.set(key, report, 600)
    return report


# --- the move off the wildcard ---------------------------------------------------------------


def received_addresses() -> dict[str, int]:
    """Inner addresses and the mails they received, over every stored read."""
    totals: dict[str, int] = {}
    rows = LogRecipient.objects.values("address").annotate(m=Sum("mails"), d=Sum("delivered"))
    for row in rows:
        totals[row["address"]] = int(row["m"] or 0) + int(row["d"] or 0)
    return totals


def migration_plan(*, min_mails: int = 1) -> analysis.MigrationPlan:
    server = ServerSettings.load()
    aliases = [
        aliasfile.Alias(pattern, target, option)
        for pattern, target, option in Alias.objects.order_by("position").values_list(
            "pattern", "target", "option"
        )
    ]
    return analysis.plan_migration(
        received=received_addresses(),
        aliases=aliases,
        local_domains=local_domains(),
        accounts=server.accounts,
        mailing_lists=server.mailing_lists,
        licence=server.licence_limit,
        tiers=LICENCE_TIERS,
        min_mails=min_mails,
    )


def migration_draft(
    *, user: AbstractBaseUser | AnonymousUser, min_mails: int = 1
) -> AliasUpload | None:
    """The per-address aliases as a CSV upload, previewed by the normal upload page; None
    when there is nothing to add."""
    plan = migration_plan(min_mails=min_mails)
    if not plan.drafts:
        return None
    data = plan.csv(comment=_("from the logs")).encode("utf-8")
    return alias_services.upload_store(
        user=user, data=data, filename="aliases-from-logs.csv", encoding="utf-8", add_domains=False
    )


class WildcardStillNeeded(Exception):
    """Addresses that received mail still depend on the wildcard."""


def wildcard_remove(*, pattern: str, min_mails: int = 1) -> int:
    """Delete the full wildcard ``pattern`` once every address that received mail has its
    own alias; raises :class:`WildcardStillNeeded` otherwise."""
    plan = migration_plan(min_mails=min_mails)
    if any(draft.via == pattern for draft in plan.drafts):
        raise WildcardStillNeeded(pattern)
    ids = [
        alias.pk
        for alias in Alias.objects.filter(pattern=pattern)
        if alias.as_entry().kind is aliasfile.AliasKind.FULL_WILDCARD
    ]
    return alias_services.aliases_delete(ids=ids)


def wildcards() -> list[Alias]:
    return [
        alias
        for alias in Alias.objects.order_by("position")
        if alias.as_entry().kind is aliasfile.AliasKind.FULL_WILDCARD
    ]


# --- the retry queue -------------------------------------------------------------------------


def retry_queue() -> analysis.RetryQueue | None:
    """The retry queue of the configured mail work folder; None when it is not readable."""
    root = work_dir()
    if root is None or not (root / "domains").is_dir():
        return None
    try:
        return analysis.scan_retry_queue(root, local_domains=local_domains())
    except OSError:
        return None
