"""Background jobs of 反映先: publishing to the gateways and the connection test."""

from __future__ import annotations

from typing import Any

from gateways import services
from jobs.registry import job_handler
from jobs.services import JobContext


@job_handler("gateways.publish")
def publish_job(ctx: JobContext, *, publication_id: int) -> dict[str, Any]:
    return services.publication_run(ctx, publication_id=publication_id)


@job_handler("gateways.smtp_check")
def smtp_check_job(ctx: JobContext, *, check_id: int) -> dict[str, Any]:
    return services.smtp_check_run(ctx, check_id=check_id)


@job_handler("gateways.logs")
def logs_job(ctx: JobContext, *, gateway_id: int, scheduled: bool = False) -> dict[str, Any]:
    return services.gateway_logs_run(ctx, gateway_id=gateway_id, scheduled=scheduled)
