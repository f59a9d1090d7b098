from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter.management.base import ContractCommand
from gateways import services
from gateways.models import Gateway, GatewayKind
from jobs.services import JobError


class Command(ContractCommand):
    help = (
        "Pull the new log lines and the retry queue of every enabled SSH gateway over SFTP "
        "into the log analysis (run it from cron for a schedule); exit 1 when one failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--gateway", metavar="NAME", help="only this gateway")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        gateways = Gateway.objects.filter(enabled=True, kind=GatewayKind.SSH).order_by("name")
        if options["gateway"]:
            gateways = gateways.filter(name=options["gateway"])
            if not gateways.exists():
                raise CommandError(
                    f"--gateway: no enabled SSH gateway is named {options['gateway']}",
                    returncode=2,
                )
        results: list[dict[str, Any]] = []
        for gateway in gateways:
            try:
                result: dict[str, Any] = services.gateway_logs_run(None, gateway_id=gateway.pk)
                result["error"] = ""
            except JobError as error:
                result = {"files": 0, "bytes": 0, "run": None, "envelopes": None}
                result["error"] = str(error)
            results.append({"gateway": gateway.name, **result})
        if options["json"]:
            self.stdout.write(json.dumps(results, ensure_ascii=False))
        else:
            for row in results:
                self.stdout.write(
                    f"{row['gateway']}: {row['error']}"
                    if row["error"]
                    else f"{row['gateway']}: {row['files']} file(s), {row['bytes']} byte(s) new, "
                    f"{row['envelopes']} envelope(s) in the retry queue"
                )
        if any(row["error"] for row in results):
            raise SystemExit(1)
