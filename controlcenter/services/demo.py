"""load_demo: a believable example company, loaded idempotently."""

from __future__ import annotations

from django.db import transaction

from aliases.services import demo_load as aliases_demo_load
from controlcenter.models import ServerSettings
from relaypolicy.services import demo_load as relay_demo_load

DEMO_DOMAIN = "example.co.jp"
DEMO_LAN = "192.168.1.0/24"


@transaction.atomic
def demo_load() -> list[str]:
    """Load the demo company (idempotent: a second run changes nothing)."""
    report: list[str] = []
    server = ServerSettings.load()
    server.mode = "gateway"
    server.licence = "100"
    server.accounts = max(server.accounts, 1)
    server.save()
    report.append(
        f"settings: {server.mode}, licence {server.licence}, {server.accounts} account(s)"
    )
    report += relay_demo_load()
    report += aliases_demo_load()
    return report
