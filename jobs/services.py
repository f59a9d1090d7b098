"""Start, run, report on and cancel background jobs.

A job is a row the pages can show (progress, stage, outcome) plus one django-tasks task that
runs it in the worker (``manage.py db_worker``). Handlers report progress through a
:class:`JobContext` and learn there that the user pressed 中止; they do their stored writes in one
transaction at the end, so a failed or cancelled job leaves nothing half-stored.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from jobs.models import Job, JobStatus
from jobs.registry import handler_for, run_handler

logger = logging.getLogger(__name__)

# Progress is written at most this often (seconds): a tight loop must not hammer the database.
REPORT_INTERVAL = 0.5


class JobCancelled(Exception):
    """Raised inside a handler when the user asked to cancel the job."""


class JobError(Exception):
    """A handler's failure with a reason meant for the user (shown as is)."""


class JobContext:
    """What a handler gets: progress reports and the cancel check."""

    def __init__(self, job: Job, *, interval: float = REPORT_INTERVAL) -> None:
        self.job_id = job.pk
        self.params = dict(job.params)
        self._interval = interval
        self._last_report: float | None = None

    def progress(
        self, done: int, total: int | None = None, stage: str = "", *, force: bool = False
    ) -> None:
        """Record ``done`` of ``total`` units; raise JobCancelled if the user cancelled."""
        now = time.monotonic()
        if not force and self._last_report is not None and now - self._last_report < self._interval:
            return
        self._last_report = now
        fields: dict[str, Any] = {"done": max(done, 0), "updated_at": timezone.now()}
        if total is not None:
            fields["total"] = max(total, 0)
        if stage:
            fields["stage"] = stage[:200]
        Job.objects.filter(pk=self.job_id).update(**fields)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        """Raise JobCancelled when the user pressed 中止."""
        if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            raise JobCancelled


def job_start(
    *,
    kind: str,
    title: str,
    params: dict[str, Any] | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    next_url: str = "",
    run_after: datetime | None = None,
) -> Job:
    """Create a queued job and hand it to the worker once the current transaction commits.

    With ``run_after`` the worker starts it at that time, not before (a scheduled job).
    """
    handler_for(kind)  # fail now, in the request, for an unknown kind
    job = Job.objects.create(
        kind=kind,
        title=str(title)[:200],
        params=params or {},
        next_url=next_url,
        language=translation.get_language() or "",
        created_by=user if isinstance(user, User) else None,
        run_after=run_after,
    )
    transaction.on_commit(lambda: _enqueue(job.pk, run_after))
    return job


def _enqueue(job_id: uuid.UUID, run_after: datetime | None) -> None:
    from jobs.tasks import run_job

    task = run_job.using(run_after=run_after) if run_after is not None else run_job
    task.enqueue(str(job_id))


def job_cancel(*, job: Job) -> bool:
    """Ask a job to stop; a job not yet running (or stalled) stops at once. False if finished."""
    now = timezone.now()
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.is_finished:
            return False
        locked.cancel_requested = True
        fields = ["cancel_requested"]
        if locked.status == JobStatus.QUEUED or locked.is_stalled:
            locked.status = JobStatus.CANCELLED
            locked.finished_at = now
            locked.stage = _("Cancelled")
            fields += ["status", "finished_at", "stage"]
        locked.save(update_fields=fields)
    job.refresh_from_db()
    return True


def job_run(job_id: uuid.UUID | str) -> Job | None:
    """Run a queued job in this process (the worker's task, and tests); None if not queued."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, updated_at=now
    )
    if not claimed:
        return None
    job = Job.objects.get(pk=job_id)
    with translation.override(job.language or None):
        status, fields = _execute(job)
    fields.update(status=status, finished_at=timezone.now(), updated_at=timezone.now())
    Job.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def _execute(job: Job) -> tuple[JobStatus, dict[str, Any]]:
    try:
        handler = handler_for(job.kind)
    except KeyError:
        return JobStatus.FAILED, {"error": _("No handler for jobs of kind %s.") % job.kind}
    ctx = JobContext(job)
    try:
        ctx.check_cancelled()
        result = run_handler(handler, ctx, job.params)
    except JobCancelled:
        return JobStatus.CANCELLED, {"stage": _("Cancelled")}
    except JobError as error:
        return JobStatus.FAILED, {"error": str(error)}
    except Exception as error:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        return JobStatus.FAILED, {
            "error": _("The job stopped with an internal error: %(error)s")
            % {"error": f"{type(error).__name__}: {error}"}
        }
    total, done = Job.objects.values_list("total", "done").get(pk=job.pk)
    return JobStatus.SUCCEEDED, {"result": result, "done": total or done, "stage": ""}


def jobs_run_queued(*, limit: int | None = None) -> int:
    """Run queued jobs that are due in this process, oldest first (the test worker)."""
    ran = 0
    while limit is None or ran < limit:
        now = timezone.now()
        job_id = (
            Job.objects.filter(status=JobStatus.QUEUED)
            .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
            .order_by("created_at")
            .values_list("pk", flat=True)
            .first()
        )
        if job_id is None:
            break
        if job_run(job_id) is not None:
            ran += 1
    return ran
