from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from jobs.models import Job, JobStatus
from jobs.registry import job_handler
from jobs.services import (
    JobCancelled,
    JobContext,
    JobError,
    job_cancel,
    job_run,
    job_start,
    jobs_run_queued,
)

pytestmark = pytest.mark.django_db

STORED: list[str] = []


@job_handler("tests.count")
def count_job(ctx: JobContext, *, upto: int) -> dict[str, object]:
    for number in range(1, upto + 1):
        ctx.progress(number, upto, stage=f"step {number}", force=True)
    return {"counted": upto}


@job_handler("tests.fail")
def fail_job(ctx: JobContext, *, reason: str) -> None:
    raise JobError(reason)


@job_handler("tests.crash")
def crash_job(ctx: JobContext) -> None:
    raise RuntimeError("disk on fire")


@job_handler("tests.cancel-midway")
def cancel_midway_job(ctx: JobContext) -> None:
    ctx.progress(1, 3, force=True)
    Job.objects.filter(pk=ctx.job_id).update(cancel_requested=True)
    ctx.progress(2, 3, force=True)
    STORED.append("never")


def test_job_start_queues_and_job_run_records_progress_and_result(admin_user) -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 3}, user=admin_user)
    assert (job.status, job.created_by, job.language) == (JobStatus.QUEUED, admin_user, "ja")

    finished = job_run(job.pk)

    assert finished is not None
    assert (finished.status, finished.done, finished.total, finished.result) == (
        JobStatus.SUCCEEDED,
        3,
        3,
        {"counted": 3},
    )
    assert finished.percent == 100
    assert finished.started_at is not None
    assert finished.finished_at is not None


def test_job_run_runs_a_job_once() -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    assert job_run(job.pk) is not None
    assert job_run(job.pk) is None


def test_job_start_refuses_an_unknown_kind() -> None:
    with pytest.raises(KeyError):
        job_start(kind="tests.nobody", title="?")
    assert Job.objects.count() == 0


def test_a_job_error_is_shown_as_its_reason() -> None:
    job = job_start(kind="tests.fail", title="Fail", params={"reason": "line 3: bad"})
    finished = job_run(job.pk)
    assert finished is not None
    assert (finished.status, finished.error) == (JobStatus.FAILED, "line 3: bad")


def test_an_unexpected_exception_fails_the_job_with_its_type_and_message() -> None:
    job = job_start(kind="tests.crash", title="Crash")
    finished = job_run(job.pk)
    assert finished is not None
    assert finished.status == JobStatus.FAILED
    assert finished.error.endswith("RuntimeError: disk on fire")


def test_cancel_requested_while_running_stops_at_the_next_report() -> None:
    STORED.clear()
    job = job_start(kind="tests.cancel-midway", title="Cancel")
    finished = job_run(job.pk)
    assert finished is not None
    assert (finished.status, finished.done, STORED) == (JobStatus.CANCELLED, 2, [])


def test_cancelling_a_queued_job_finishes_it_and_the_worker_skips_it() -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 2})
    assert job_cancel(job=job) is True
    assert (job.status, job.cancel_requested) == (JobStatus.CANCELLED, True)
    assert job_run(job.pk) is None


def test_cancelling_a_finished_job_changes_nothing() -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    job_run(job.pk)
    job.refresh_from_db()
    assert job_cancel(job=job) is False
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (JobStatus.SUCCEEDED, False)


def test_a_stalled_job_can_be_cancelled_at_once() -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, updated_at=timezone.now() - timedelta(minutes=10)
    )
    job.refresh_from_db()
    assert job.is_stalled is True
    assert job_cancel(job=job) is True
    assert job.status == JobStatus.CANCELLED


def test_progress_reports_are_throttled() -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    ctx = JobContext(job, interval=3600)
    ctx.progress(1, 10)
    ctx.progress(5, 10)
    job.refresh_from_db()
    assert (job.done, job.total) == (1, 10)


def test_check_cancelled_raises_once_cancel_is_requested() -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    ctx = JobContext(job)
    ctx.check_cancelled()
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    with pytest.raises(JobCancelled):
        ctx.check_cancelled()


def test_jobs_run_queued_runs_oldest_first() -> None:
    first = job_start(kind="tests.count", title="A", params={"upto": 1})
    second = job_start(kind="tests.count", title="B", params={"upto": 2})
    assert jobs_run_queued() == 2
    assert list(Job.objects.order_by("finished_at").values_list("pk", flat=True)) == [
        first.pk,
        second.pk,
    ]


@pytest.mark.django_db(transaction=True)
def test_the_django_tasks_worker_runs_a_started_job() -> None:
    # A real commit: the task is enqueued on commit, and the worker closes its connections.
    job = job_start(kind="tests.count", title="Count", params={"upto": 2})
    task = DBTaskResult.objects.get()
    assert task.args_kwargs == {"args": [str(job.pk)], "kwargs": {}}

    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    job.refresh_from_db()
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"counted": 2})


@pytest.mark.django_db(transaction=True)
def test_the_job_worker_fixture_runs_jobs_in_the_background(job_worker) -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 2})
    deadline = threading.Event()
    for _ in range(100):
        job.refresh_from_db()
        if job.is_finished:
            break
        deadline.wait(0.1)
    assert job.status == JobStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_job_started_for_later_waits_in_the_queue_until_its_time() -> None:
    later = timezone.now() + timedelta(hours=1)
    job = job_start(kind="tests.count", title="Later", params={"upto": 1}, run_after=later)

    task = DBTaskResult.objects.get()
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    job.refresh_from_db()

    assert task.run_after == later
    assert (job.status, job.is_scheduled, job.run_after) == (JobStatus.QUEUED, True, later)
    assert jobs_run_queued() == 0
