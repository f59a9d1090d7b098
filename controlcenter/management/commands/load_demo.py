from __future__ import annotations

from typing import Any

from controlcenter import services
from controlcenter.management.base import ContractCommand


class Command(ContractCommand):
    help = "Load a believable example (a company domain, its LAN, settings). Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        report = services.demo_load()
        for line in report:
            self.stdout.write(line)
