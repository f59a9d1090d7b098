from __future__ import annotations

from django import template

from maillogs.models import LogRun

register = template.Library()


@register.simple_tag
def latest_log_run() -> LogRun | None:
    """The last stored read (the dashboard's abuse banner looks at it)."""
    return LogRun.objects.order_by("-created_at", "-pk").first()
