"""反映先: saving gateways, pinning host keys, publishing to every gateway, 接続テスト."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from controlcenter import publishing
from controlcenter.audit import AuditAction, audit_record
from controlcenter.findings import has_errors
from controlcenter.models import ExportStatus, ServerSettings
from controlcenter.services import export as export_service
from controlcenter.services.policy import policy_compile
from gateways import errors, keys, smtpcheck
from gateways.models import (
    Gateway,
    GatewayKind,
    GatewayResult,
    Publication,
    PublicationStatus,
    ResultStatus,
    SmtpCheck,
)
from gateways.publish import Outcome, publish_local, publish_ssh
from gateways.transport import (
    SCRIPT_TIMEOUT,
    SshTarget,
    TransportError,
    fetch_host_key,
    open_folder,
    os_failure,
    run_sync,
)
from jobs.models import Job, JobStatus
from jobs.services import JobCancelled, JobContext, JobError, job_cancel, job_start

Actor = Any
CONCURRENCY = 16

STAGE_LABELS = {
    "connect": gettext_lazy("connecting"),
    "read": gettext_lazy("reading the deployed files"),
    "write": gettext_lazy("writing the files"),
    "script": gettext_lazy("running the alias registration script"),
    "verify": gettext_lazy("reading the files back"),
    "done": gettext_lazy("done"),
}


def _actor(user: Actor) -> dict[str, Any]:
    return {"actor": user} if user is not None else {}


# --- gateways and their keys --------------------------------------------------------------------


def gateway_save(*, gateway: Gateway, private_key: str = "", user: Actor = None) -> Gateway:
    """Save ``gateway``; a pasted ``private_key`` (already validated) is stored encrypted.

    Changing the host or port forgets the pinned host key: the new server must be confirmed.
    """
    created = gateway.pk is None
    with transaction.atomic():
        if not created:
            before = Gateway.objects.select_for_update().get(pk=gateway.pk)
            if (before.host, before.port) != (gateway.host, gateway.port):
                _forget_host_key(gateway)
        if private_key:
            gateway.key_encrypted = keys.encrypt_private_key(
                private_key, secret=settings.SECRET_KEY
            )
            gateway.key_path = ""
        elif gateway.key_path:
            gateway.key_encrypted = ""
        gateway.save()
        gateway_logs_schedule(gateway=gateway, user=user)
        audit_record(
            action=AuditAction.GATEWAY_ADD if created else AuditAction.GATEWAY_CHANGE,
            target=gateway.name,
            summary=f"{gateway.get_kind_display()} {gateway.address}"
            + (" " + _("(new private key)") if private_key else ""),
            **_actor(user),
        )
    return gateway


def _forget_host_key(gateway: Gateway) -> None:
    gateway.host_key = gateway.host_key_fingerprint = gateway.host_key_confirmed_by = ""
    gateway.host_key_confirmed_at = None
    gateway.offered_host_key = gateway.offered_fingerprint = ""
    gateway.offered_at = None


def gateway_delete(*, gateway: Gateway, user: Actor = None) -> None:
    with transaction.atomic():
        audit_record(
            action=AuditAction.GATEWAY_DELETE, target=gateway.name, summary="", **_actor(user)
        )
        gateway.delete()


def gateway_target(gateway: Gateway, *, timeout: float | None = None) -> SshTarget:
    """How to reach ``gateway`` (its key decrypted); KeyUnavailable when the key is unreadable."""
    private = ""
    if gateway.key_encrypted:
        private = keys.decrypt_private_key(gateway.key_encrypted, secret=settings.SECRET_KEY)
    return SshTarget(
        host=gateway.host,
        port=gateway.port,
        username=gateway.username,
        host_key=gateway.host_key,
        private_key=private,
        key_path=gateway.key_path,
        **({"connect_timeout": timeout} if timeout else {}),
    )


def _offer(gateway: Gateway, offered: str) -> None:
    if not offered or offered == gateway.host_key:
        return
    gateway.offered_host_key = offered
    gateway.offered_fingerprint = keys.fingerprint(offered)
    gateway.offered_at = timezone.now()
    gateway.save(update_fields=["offered_host_key", "offered_fingerprint", "offered_at"])


def gateway_fetch_host_key(*, gateway: Gateway) -> str:
    """Ask the server for its host key and keep it for confirmation; "" when it is the pinned
    one. TransportError when the server cannot be reached."""
    offered = run_sync(fetch_host_key(gateway.host, gateway.port))
    if offered == gateway.host_key:
        if gateway.offered_host_key:
            gateway.offered_host_key = gateway.offered_fingerprint = ""
            gateway.offered_at = None
            gateway.save(update_fields=["offered_host_key", "offered_fingerprint", "offered_at"])
        return ""
    _offer(gateway, offered)
    return gateway.offered_fingerprint


class HostKeyMismatch(ValueError):
    """The fingerprint confirmed is not the key waiting for confirmation."""


def gateway_confirm_host_key(*, gateway: Gateway, fingerprint: str, user: Actor = None) -> None:
    """Pin the offered key, if ``fingerprint`` is the one the administrator was shown."""
    with transaction.atomic():
        locked = Gateway.objects.select_for_update().get(pk=gateway.pk)
        if not locked.offered_host_key or locked.offered_fingerprint != fingerprint:
            raise HostKeyMismatch(
                _("The host key changed again since the page was shown: compare it again.")
            )
        previous = locked.host_key_fingerprint
        locked.host_key = locked.offered_host_key
        locked.host_key_fingerprint = locked.offered_fingerprint
        locked.host_key_confirmed_at = timezone.now()
        locked.host_key_confirmed_by = user.get_username() if user is not None else ""
        locked.offered_host_key = locked.offered_fingerprint = ""
        locked.offered_at = None
        locked.save()
        audit_record(
            action=AuditAction.GATEWAY_HOST_KEY,
            target=locked.name,
            summary=(f"{previous} -> " if previous else "") + locked.host_key_fingerprint,
            **_actor(user),
        )
    gateway.refresh_from_db()


# --- publishing ---------------------------------------------------------------------------------


class PublishRefused(Exception):
    """Nothing was started; the message says why."""


def _reserved_number() -> int:
    return int(Publication.objects.aggregate(last=Max("number"))["last"] or 0)


def publication_start(*, user: Actor, force: bool = False) -> Publication:
    """Publish the current policy to every enabled gateway, in the background.

    Refuses while the policy has errors, while no gateway is enabled and while another
    publication runs. The number is taken now from the export numbering (履歴).
    """
    gateways = list(Gateway.objects.filter(enabled=True).order_by("name"))
    if not gateways:
        raise PublishRefused(_("No gateway is enabled."))
    _selftest, findings = export_service._check_policy()
    if has_errors(findings):
        raise PublishRefused(
            _("The policy has errors: correct them before publishing (see Apply settings).")
        )
    with transaction.atomic():
        export_service.export_numbering_lock()
        _refuse_when_running()
        fingerprints = export_service.policy_fingerprints()
        publication = Publication.objects.create(
            number=export_service.export_number_next(),
            user=user if getattr(user, "is_authenticated", False) else None,
            username=user.get_username() if user is not None else "",
            snapshot=export_service.policy_snapshot(),
            fingerprints=fingerprints,
            findings=[f.as_dict() for f in findings],
        )
        _queue_results(publication, gateways, attempt=1, force=force)
        _start_job(publication, user)
    return publication


def _refuse_when_running() -> None:
    for publication in Publication.objects.filter(
        status__in=[PublicationStatus.QUEUED, PublicationStatus.RUNNING]
    ):
        job = job_for(publication.job_id)
        if job is not None and (job.is_finished or job.is_stalled):
            publication_interrupted(publication=publication)
            continue
        raise PublishRefused(_("Another publication to the gateways is still running."))


def publication_interrupted(*, publication: Publication) -> None:
    """Close a publication whose job stopped without finishing it (the worker was killed or
    the job failed): its unfinished gateways are failed, to be retried. An interrupted remote
    write is rolled back by the next connection to that gateway (gateways.transport)."""
    publication.results.filter(status__in=[ResultStatus.QUEUED, ResultStatus.RUNNING]).update(
        status=ResultStatus.FAILED,
        error=_("Interrupted: the background job stopped before this gateway was finished."),
        finished_at=timezone.now(),
    )
    _publication_finish(publication)


def _queue_results(
    publication: Publication, gateways: Iterable[Gateway], *, attempt: int, force: bool
) -> None:
    GatewayResult.objects.bulk_create(
        GatewayResult(
            publication=publication,
            gateway=gateway,
            gateway_name=gateway.name,
            address=gateway.address,
            attempt=attempt,
            force=force,
        )
        for gateway in gateways
    )


def _start_job(publication: Publication, user: Actor) -> None:
    job = job_start(
        kind="gateways.publish",
        title=_("Publish #%(number)s to the gateways") % {"number": publication.number},
        params={"publication_id": publication.pk},
        user=user,
        next_url=reverse("gateways:publication-detail", args=[publication.pk]),
    )
    publication.job_id = job.pk
    publication.status = PublicationStatus.QUEUED
    publication.save(update_fields=["job_id", "status"])


def publication_retry(*, publication: Publication, user: Actor, force: bool = False) -> int:
    """Publish the same policy again to the gateways whose last attempt failed; how many."""
    with transaction.atomic():
        locked = Publication.objects.select_for_update().get(pk=publication.pk)
        _refuse_when_running()
        failed = [r for r in locked.latest_results() if r.status == ResultStatus.FAILED]
        gateways = [r.gateway for r in failed if r.gateway is not None and r.gateway.enabled]
        if not gateways:
            raise PublishRefused(_("No failed gateway to retry."))
        attempt = max(r.attempt for r in failed) + 1
        _queue_results(locked, gateways, attempt=attempt, force=force)
        _start_job(locked, user)
        audit_record(
            action=AuditAction.GATEWAY_RETRY,
            target=f"#{locked.number}",
            summary=", ".join(g.name for g in gateways),
            **_actor(user),
        )
    publication.refresh_from_db()
    return len(gateways)


@dataclass(frozen=True)
class _Event:
    result_id: int
    stage: str = ""
    outcome: Outcome | None = None


def publication_run(ctx: JobContext, *, publication_id: int) -> dict[str, Any]:
    """The job: publish to every queued gateway of the publication concurrently."""
    try:
        return _publication_run(ctx, publication_id=publication_id)
    except Exception:
        # A bug or a lost database must not leave the publication "running" for ever.
        publication_interrupted(publication=Publication.objects.get(pk=publication_id))
        raise


def _publication_run(ctx: JobContext, *, publication_id: int) -> dict[str, Any]:
    publication = Publication.objects.get(pk=publication_id)
    results = list(publication.results.filter(status=ResultStatus.QUEUED).select_related("gateway"))
    Publication.objects.filter(pk=publication.pk).update(status=PublicationStatus.RUNNING)
    source = export_service.export_source(publication.snapshot)
    plans = []
    now = timezone.now()
    for result in results:
        gateway = result.gateway
        if gateway is None:
            _finish(result, Outcome(code="gone", error=_("The gateway was deleted.")))
            continue
        try:
            target = gateway_target(gateway) if gateway.is_ssh else None
        except keys.KeyUnavailable:
            _finish(
                result,
                Outcome(
                    code="key",
                    error=_("The stored private key cannot be decrypted: enter it again."),
                ),
            )
            continue
        result.status, result.started_at = ResultStatus.RUNNING, now
        result.save(update_fields=["status", "started_at"])
        plans.append((result, gateway, target))

    local_folder = _local_folder()
    events: queue.Queue[_Event] = queue.Queue()
    stop = threading.Event()

    async def one(
        result: GatewayResult, gateway: Gateway, target: SshTarget | None, limit: asyncio.Semaphore
    ) -> None:
        async with limit:
            if stop.is_set():
                events.put(
                    _Event(
                        result.pk,
                        outcome=Outcome(
                            code="cancelled", error=str(_("Cancelled before it started."))
                        ),
                    )
                )
                return

            def progress(stage: str) -> None:
                events.put(_Event(result.pk, stage=stage))

            if target is None:
                outcome = await publish_local(
                    local_folder,
                    source,
                    export_number=publication.number,
                    force=result.force,
                    progress=progress,
                )
            else:
                outcome = await publish_ssh(
                    target,
                    gateway.program_folder,
                    source,
                    export_number=publication.number,
                    force=result.force,
                    progress=progress,
                    script_timeout=SCRIPT_TIMEOUT,
                )
            events.put(_Event(result.pk, outcome=outcome))

    async def run_all() -> None:
        limit = asyncio.Semaphore(CONCURRENCY)
        await asyncio.gather(*(one(r, g, t, limit) for r, g, t in plans))

    by_id = {result.pk: result for result, _g, _t in plans}
    done = 0
    total = len(plans)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(asyncio.run, run_all())
        while not (future.done() and events.empty()):
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            result = by_id[event.result_id]
            if event.outcome is not None:
                _finish(result, event.outcome)
                done += 1
            else:
                result.stage = str(STAGE_LABELS.get(event.stage, event.stage))
                result.save(update_fields=["stage"])
            try:
                ctx.progress(done, total, stage=f"{result.gateway_name}: {result.stage}")
            except JobCancelled:
                stop.set()  # gateways already being written finish; the rest do not start
        future.result()
    return _publication_finish(publication)


def _local_folder() -> Path:
    return ServerSettings.load().export_path


def _finish(result: GatewayResult, outcome: Outcome) -> None:
    result.status = ResultStatus.SUCCEEDED if outcome.ok else ResultStatus.FAILED
    result.error = _failure_message(outcome)
    result.stage = str(STAGE_LABELS["done"]) if outcome.ok else ""
    result.drift = outcome.drift
    result.daemon_lines = outcome.daemon_lines
    result.replaced = outcome.replaced
    result.diff = outcome.diff
    result.hashes = outcome.hashes
    result.verified = outcome.verified
    result.recovered = _recovered_message(outcome)[:300]
    if outcome.script is not None:
        result.script_status = outcome.script.exit_status
        result.script_output = outcome.script.output
    result.finished_at = timezone.now()
    result.save()
    if outcome.offered_host_key and result.gateway is not None:
        _offer(result.gateway, outcome.offered_host_key)


def _failure_message(outcome: Outcome) -> str:
    if outcome.ok:
        return ""
    reasons = {
        "unreachable": _("Cannot connect: %(detail)s"),
        "auth": _("The gateway refused the login: %(detail)s"),
        "host_key_unconfirmed": _(
            "The host key has not been confirmed: fetch and confirm it on the gateway's page."
        ),
        "host_key_changed": _(
            "The host key changed: every connection is refused until an administrator compares "
            "and confirms the new key on the gateway's page (%(detail)s)."
        ),
        "changed_by_hand": _(
            "Files on the gateway were changed by hand (%(detail)s): nothing was written. "
            "Review them and retry with “Overwrite the files changed by hand”."
        ),
        "verify": _("The files read back differ from what was written: %(detail)s"),
        "io": _("Reading or writing on the gateway failed: %(detail)s"),
    }
    if outcome.code == "script" and outcome.script is not None:
        if outcome.script.timed_out:
            return _("The alias registration script did not finish within %(seconds)s seconds.") % {
                "seconds": int(SCRIPT_TIMEOUT)
            }
        return _("The alias registration script failed (exit status %(status)s).") % {
            "status": outcome.script.exit_status
        }
    detail = outcome.error
    if outcome.failure is not None:
        detail = errors.transport_message(outcome.failure)
        if outcome.code == "host_key_changed":
            detail = outcome.failure.where
    template = reasons.get(outcome.code, "%(detail)s")
    return template % {"detail": detail}


def _recovered_message(outcome: Outcome) -> str:
    if outcome.recovered is None:
        return ""
    return _("A publish interrupted earlier was rolled back first (files put back: %(files)s).") % {
        "files": ", ".join(outcome.recovered) or "—"
    }


def _publication_finish(publication: Publication) -> dict[str, Any]:
    publication.refresh_from_db()
    latest = publication.latest_results()
    ok = [r for r in latest if r.status == ResultStatus.SUCCEEDED]
    failed = [r for r in latest if r.status != ResultStatus.SUCCEEDED]
    if not failed:
        status = PublicationStatus.SUCCEEDED
    elif ok:
        status = PublicationStatus.PARTIAL
    else:
        status = PublicationStatus.FAILED
    summary = "; ".join(f"{r.gateway_name}: {r.error}" for r in failed)
    with transaction.atomic():
        publication.status = status
        publication.error = summary
        publication.finished_at = timezone.now()
        if publication.export is None:
            publication.export = _record_export(
                publication, latest, written=bool(ok), error=summary
            )
        publication.save()
        audit_record(
            action=AuditAction.GATEWAY_PUBLISH,
            target=f"#{publication.number}",
            summary=f"{publication.get_status_display()}: "
            + ", ".join(f"{r.gateway_name}={r.status}" for r in latest),
            actor=publication.user,
            source_ip=None,
        )
    if any(r.gateway is not None and r.gateway.is_ssh for r in ok):
        # 接続テスト after every publish that reached a gateway: does it answer as simulated?
        with contextlib.suppress(PublishRefused):
            smtp_check_start(user=publication.user, publication=publication)
    return {"status": status, "succeeded": len(ok), "failed": len(failed)}


def _record_export(
    publication: Publication, latest: list[GatewayResult], *, written: bool, error: str
) -> Any:
    """履歴: the publication as one export (the files without any gateway's daemon lines)."""
    source = export_service.export_source(publication.snapshot)
    empty = publishing.Deployed(dict.fromkeys(publishing.FILE_NAMES), None)
    plan = publishing.plan_export(source, empty, export_number=publication.number)
    selftest, findings = export_service._check_policy()
    report = export_service.ExportReport(
        ExportStatus.EXPORTED if written else ExportStatus.FAILED,
        Path(_("gateways: %(names)s") % {"names": ", ".join(r.gateway_name for r in latest)}),
        plan,
        findings,
        selftest,
        error=error,
        snapshot=publication.snapshot,
    )
    recorded = export_service.export_record(
        report,
        user=publication.user,
        number=publication.number,
        fingerprints=publication.fingerprints if written else {},
    )
    return recorded.export


# --- 接続テスト ----------------------------------------------------------------------------------


def smtp_check_start(*, user: Actor, publication: Publication | None = None) -> SmtpCheck:
    if not Gateway.objects.filter(enabled=True, kind=GatewayKind.SSH).exists():
        raise PublishRefused(_("No SSH gateway is enabled: there is nothing to test."))
    with transaction.atomic():
        check = SmtpCheck.objects.create(
            username=user.get_username() if user is not None else "", publication=publication
        )
        job = job_start(
            kind="gateways.smtp_check",
            title=_("Connection test of the gateways"),
            params={"check_id": check.pk},
            user=user,
            next_url=reverse("gateways:check-detail", args=[check.pk]),
        )
        check.job_id = job.pk
        check.save(update_fields=["job_id"])
    return check


def smtp_check_run(
    ctx: JobContext | None, *, check_id: int, rate: float = smtpcheck.DEFAULT_RATE
) -> dict[str, Any]:
    """The job: probe every enabled SSH gateway's SMTP port (concurrently), then store."""
    check = SmtpCheck.objects.get(pk=check_id)
    gateways = list(Gateway.objects.filter(enabled=True, kind=GatewayKind.SSH).order_by("name"))
    policy = policy_compile()
    probes = smtpcheck.plan_probes(policy)
    if ctx is not None:
        ctx.progress(0, len(gateways), stage=str(_("sending the probes")), force=True)
    with ThreadPoolExecutor(max(1, min(len(gateways), CONCURRENCY))) as pool:
        checks = list(
            pool.map(
                lambda g: smtpcheck.check_gateway(g.host, g.smtp_port, policy, probes, rate=rate),
                gateways,
            )
        )
    results = []
    for gateway, result in zip(gateways, checks, strict=True):
        data = result.as_dict()
        data["gateway"] = gateway.name
        data["error"] = _smtp_error(result)
        results.append(data)
    with transaction.atomic():
        check.results = results
        check.mismatches = sum(c.mismatches for c in checks)
        check.dangerous = sum(c.dangerous for c in checks)
        failed = [c for c in checks if c.error]
        check.status = (
            PublicationStatus.SUCCEEDED
            if not failed
            else PublicationStatus.PARTIAL
            if len(failed) < len(checks)
            else PublicationStatus.FAILED
        )
        check.error = "; ".join(_smtp_error(c) for c in failed)
        check.finished_at = timezone.now()
        check.save()
    return {"mismatches": check.mismatches, "dangerous": check.dangerous}


def _smtp_error(check: smtpcheck.GatewayCheck) -> str:
    if not check.error:
        return ""
    where = SshTarget(check.host, check.port, "").label
    return errors.smtp_message(where, check.error_reason, check.error_detail)


def job_for(job_id: Any) -> Job | None:
    return Job.objects.filter(pk=job_id).first() if job_id else None


__all__ = ["JobError", "TransportError"]


# --- logs and the retry queue over SFTP ---------------------------------------------------------


def mirror_folder(gateway: Gateway) -> Path:
    """Where a gateway's logs and retry queue are mirrored on this machine."""
    return Path(settings.VAR_DIR) / "gateways" / str(gateway.pk) / "work"


def gateway_logs_start(*, gateway: Gateway, user: Actor) -> Job:
    """Pull the gateway's new log lines and its retry queue over SFTP, in the background."""
    if not gateway.is_ssh:
        raise PublishRefused(_("Only an SSH gateway's logs are pulled over SFTP."))
    job = job_start(
        kind="gateways.logs",
        title=_("Pull the logs of %(name)s") % {"name": gateway.name},
        params={"gateway_id": gateway.pk},
        user=user,
    )
    Job.objects.filter(pk=job.pk).update(next_url=reverse("maillogs:job-result", args=[job.pk]))
    return job


def gateway_logs_schedule(*, gateway: Gateway, user: Actor = None) -> Job | None:
    """Queue the next scheduled pull of ``gateway``'s logs (replacing a queued one), or none.

    Only an enabled SSH gateway with a schedule gets one; the pull, when it runs, queues the
    one after it, so the chain goes on until the schedule is switched off.
    """
    with transaction.atomic():
        locked = Gateway.objects.select_for_update().get(pk=gateway.pk)
        if locked.logs_pull_job_id is not None:
            pending = Job.objects.filter(
                pk=locked.logs_pull_job_id, status=JobStatus.QUEUED
            ).first()
            if pending is not None:
                job_cancel(job=pending)
        job = None
        if locked.enabled and locked.is_ssh and locked.logs_pull_hours:
            job = job_start(
                kind="gateways.logs",
                title=_("Scheduled pull of the logs of %(name)s") % {"name": locked.name},
                params={"gateway_id": locked.pk, "scheduled": True},
                user=user,
                run_after=timezone.now() + timedelta(hours=locked.logs_pull_hours),
            )
            Job.objects.filter(pk=job.pk).update(
                next_url=reverse("maillogs:job-result", args=[job.pk])
            )
        Gateway.objects.filter(pk=locked.pk).update(logs_pull_job_id=job.pk if job else None)
    gateway.logs_pull_job_id = job.pk if job else None
    return job


def gateway_logs_next(gateway: Gateway) -> Job | None:
    """The queued scheduled pull of ``gateway``, if there is one."""
    if gateway.logs_pull_job_id is None:
        return None
    return Job.objects.filter(pk=gateway.logs_pull_job_id, status=JobStatus.QUEUED).first()


def gateway_logs_run(
    ctx: JobContext | None, *, gateway_id: int, scheduled: bool = False
) -> dict[str, Any]:
    """Mirror the gateway's mail work folder, then read what is new into ログ分析 (one run).

    A scheduled pull queues the next one first, so a failing pull does not end the schedule.
    """
    if scheduled:
        gateway = Gateway.objects.filter(pk=gateway_id).first()
        if gateway is not None:
            gateway_logs_schedule(gateway=gateway)
    return _gateway_logs_pull(ctx, gateway_id=gateway_id)


def _pull_failed(reason: str) -> str:
    return _("The logs could not be pulled: %(error)s") % {"error": reason}


def _gateway_logs_pull(ctx: JobContext | None, *, gateway_id: int) -> dict[str, Any]:
    from gateways.logs import mirror_work_folder
    from maillogs import analysis
    from maillogs import services as maillogs_services
    from maillogs.models import LogSourceKind

    gateway = Gateway.objects.get(pk=gateway_id)
    mirror = mirror_folder(gateway)
    try:
        target = gateway_target(gateway)

        async def pull() -> Any:
            async with open_folder(target, gateway.work_folder) as remote:
                return await mirror_work_folder(remote, mirror)

        pulled = run_sync(pull())
    except TransportError as error:
        raise JobError(_pull_failed(errors.transport_message(error))) from error
    except keys.KeyUnavailable as error:
        raise JobError(
            _pull_failed(_("The stored private key cannot be decrypted: enter it again."))
        ) from error
    except OSError as error:  # the mirror on this machine
        failure = os_failure(str(error.filename or mirror), error)
        raise JobError(_pull_failed(errors.transport_message(failure))) from error
    sources, files = maillogs_services.folder_sources(mirror)
    run = None
    if sources:
        job = Job.objects.filter(pk=ctx.job_id).first() if ctx is not None else None

        def progress(done: int, total: int, stage: str) -> None:
            if ctx is not None:
                ctx.progress(done, total, stage=stage)

        run = maillogs_services.log_read(
            sources=sources,
            source_kind=LogSourceKind.FOLDER,
            label=f"{gateway.name} (SFTP {gateway.address}:{gateway.work_folder})",
            user=job.created_by if job is not None else None,
            job_id=ctx.job_id if ctx is not None else None,
            folder_files=files,
            progress=progress,
        )
    queue = analysis.scan_retry_queue(mirror, local_domains=maillogs_services.local_domains())
    gateway.logs_pulled_at = timezone.now()
    gateway.retry_queue = {
        "envelopes": queue.envelopes,
        "bytes": queue.total_bytes,
        "incoming": queue.incoming,
        "outside": [
            {"domain": d.domain, "envelopes": d.envelopes, "bytes": d.total_bytes}
            for d in queue.domains
            if not d.local
        ][:10],
    }
    gateway.save(update_fields=["logs_pulled_at", "retry_queue"])
    return {
        "files": pulled.files,
        "bytes": pulled.bytes,
        "run": run.pk if run is not None else None,
        "envelopes": queue.envelopes,
    }
