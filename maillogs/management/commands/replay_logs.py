from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter.management.base import ContractCommand
from maillogs import services
from maillogs.analysis import ReplayReport
from maillogs.models import LogRun


def replay_summary(report: ReplayReport) -> dict[str, Any]:
    """The JSON shape of replay_logs."""
    return {
        "sessions": report.sessions,
        "mails": report.mails,
        "duplicates": report.duplicates,
        "relayed": report.relayed,
        "abuse": report.abuse,
        "abuse_stopped": report.abuse_stopped,
        "abuse_still_relayed": report.abuse_open,
        "legitimate_changed": report.legitimate_changed,
        "delivered_refused": report.delivered_refused,
        "changed": [
            {
                "sender": row.sender,
                "client_ip": row.client_ip,
                "inside": row.inside,
                "was": row.was,
                "now": row.now,
                "reply": row.reply,
                "mails": row.mails,
                "hint": row.hint,
            }
            for row in report.changed
        ],
    }


class Command(ContractCommand):
    help = (
        "Replay every stored log session through the pending policy: abuse stopped, abuse still "
        "relayed, and legitimate-looking senders whose mail would change verdict."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        if not LogRun.objects.exists():
            raise CommandError("no logs have been read yet: run read_logs first", returncode=2)
        report = services.replay_report()
        summary = replay_summary(report)
        if options["json"]:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
        else:
            self.stdout.write(
                f"{report.sessions} distinct session(s) ({report.mails} mail(s), "
                f"{report.duplicates} duplicate(s)); abuse: {report.abuse} relayed mail(s), "
                f"{report.abuse_stopped} now refused, {report.abuse_open} still relayed; "
                f"{report.legitimate_changed} mail(s) of legitimate-looking senders change"
            )
            for row in report.changed:
                self.stdout.write(
                    f"changes: {row.sender or '<>'} from {row.client_ip}: {row.was} -> {row.now} "
                    f"({row.mails} mail(s); {row.reply}; hint: {row.hint})"
                )
        if report.abuse_open:
            raise SystemExit(1)
