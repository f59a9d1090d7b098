from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, JobStatus
from jobs.services import job_run, job_start
from maillogs import services
from maillogs.jobs import READ_FOLDER, READ_UPLOAD
from maillogs.models import LogRun, LogSession, LogUpload
from tests.maillogs.conftest import write_archive

pytestmark = pytest.mark.django_db


def upload(path: Path, user) -> LogUpload:
    return services.upload_store(
        files=[SimpleUploadedFile(path.name, path.read_bytes())], user=user
    )


def start(stored: LogUpload, user) -> Job:
    return job_start(kind=READ_UPLOAD, title="read", params={"upload_id": stored.pk}, user=user)


def test_read_job_reports_progress_and_stores_the_run(
    open_gateway, archive, make_user, settings, tmp_path
):
    settings.CC_LOG_UPLOAD_DIR = tmp_path / "uploads"
    user = make_user()
    path, truth = archive
    stored = upload(path, user)
    job = job_run(start(stored, user).pk)
    assert job is not None
    assert job.status == JobStatus.SUCCEEDED
    run = LogRun.objects.get()
    assert job.result == {"run": run.pk, "abuse_found": True, "mails": truth.mails}
    assert job.done == job.total
    assert job.total > 0
    assert str(run.job_id) == str(job.pk)
    assert run.created_by == user
    assert not Path(stored.folder).exists()  # the uploaded files are gone
    assert not LogUpload.objects.exists()


def test_a_failed_read_shows_its_reason_and_stores_nothing(
    open_gateway, make_user, settings, tmp_path
):
    settings.CC_LOG_UPLOAD_DIR = tmp_path / "uploads"
    user = make_user()
    path = tmp_path / "evil.zip"
    write_archive(path, 50, evil=True)
    stored = upload(path, user)
    job = job_run(start(stored, user).pk)
    assert job is not None
    assert job.status == JobStatus.FAILED
    assert "evil.zip:../outside" in job.error
    assert "path leaves the folder" in job.error
    assert not LogRun.objects.exists()
    assert not Path(stored.folder).exists()


def test_a_cancelled_read_stores_nothing(
    open_gateway, archive, make_user, settings, tmp_path, monkeypatch
):
    settings.CC_LOG_UPLOAD_DIR = tmp_path / "uploads"
    user = make_user()
    path, _truth = archive
    job = start(upload(path, user), user)
    real = services.log_read

    def cancelling(**options):
        progress = options["progress"]

        def cancel_then_report(done: int, total: int, stage: str) -> None:
            Job.objects.filter(pk=job.pk).update(cancel_requested=True)
            progress(done, total, stage)

        options["progress"] = cancel_then_report
        return real(**options)

    monkeypatch.setattr(services, "log_read", cancelling)
    finished = job_run(job.pk)
    assert finished is not None
    assert finished.status == JobStatus.CANCELLED
    assert not LogRun.objects.exists()
    assert not LogSession.objects.exists()


def test_folder_job_with_nothing_new(open_gateway, make_user, settings, tmp_path):
    settings.CC_MAIL_WORK_DIR = str(tmp_path)
    job = job_run(job_start(kind=READ_FOLDER, title="folder", user=make_user()).pk)
    assert job is not None
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"run": None})


def test_folder_job_without_a_folder_fails_with_the_reason(db, make_user, settings):
    settings.CC_MAIL_WORK_DIR = str(Path("/nonexistent/epms"))
    job = job_run(job_start(kind=READ_FOLDER, title="folder", user=make_user()).pk)
    assert job is not None
    assert job.status == JobStatus.FAILED
    assert "/nonexistent/epms" in job.error
