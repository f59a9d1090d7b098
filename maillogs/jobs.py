"""Background reads of gateway logs (the jobs app runs them in the worker)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from jobs.registry import job_handler
from jobs.services import JobContext, JobError
from maillogs import services
from maillogs.models import LogUpload

READ_UPLOAD = "maillogs.read"
READ_FOLDER = "maillogs.folder"


def _progress(ctx: JobContext) -> services.Progress:
    def report(done: int, total: int, stage: str) -> None:
        ctx.progress(done, total, stage=stage)

    return report


@job_handler(READ_UPLOAD)
def read_upload(ctx: JobContext, *, upload_id: int) -> dict[str, Any]:
    upload = LogUpload.objects.filter(pk=upload_id).first()
    if upload is None:
        raise JobError(_("The uploaded files are gone; upload them again."))
    try:
        run = services.upload_read(upload=upload, job_id=ctx.job_id, progress=_progress(ctx))
    except services.LogReadError as error:
        raise JobError(str(error)) from None
    return {"run": run.pk, "abuse_found": run.abuse_found, "mails": run.mails}


@job_handler(READ_FOLDER)
def read_folder(ctx: JobContext) -> dict[str, Any]:
    try:
        run = services.folder_read(job_id=ctx.job_id, progress=_progress(ctx))
    except services.LogReadError as error:
        raise JobError(str(error)) from None
    if run is None:
        return {"run": None}
    return {"run": run.pk, "abuse_found": run.abuse_found, "mails": run.mails}
