"""The one django-tasks task: run a Job row in the worker."""

from __future__ import annotations

from django_tasks import task

from jobs.services import job_run


@task()
def run_job(job_id: str) -> None:
    job_run(job_id)
