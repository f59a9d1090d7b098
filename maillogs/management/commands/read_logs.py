from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter.management.base import ContractCommand
from maillogs import services
from maillogs.models import LogRun, LogSourceKind


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since: not a date (YYYY-MM-DD): {text}", returncode=2) from None


def run_summary(run: LogRun) -> dict[str, Any]:
    """The JSON shape of read_logs (also what the summary line is made of)."""
    summary = run.summary
    return {
        "run": run.pk,
        "files": run.files,
        "from": run.first_seen or None,
        "to": run.last_seen or None,
        "lines": summary.get("lines", {}),
        "mails": run.mails,
        "relayed_outside": run.relayed_outside,
        "forged": run.forged,
        "forged_inbound": summary.get("forged_inbound", 0),
        "unknown_lines": run.unknown_lines,
        "sessions_not_kept": run.sessions_dropped,
        "inside_basis": run.inside_basis,
        "abuse_found": run.abuse_found,
        "by_client": [
            {"client_ip": ip, "helo": helo, "mails": mails, "relayed": relayed, "forged": forged}
            for ip, helo, mails, relayed, forged in summary.get("by_client", [])
        ],
        "by_sender": [
            {"sender": sender, "relayed": relayed, "clients": clients, "forged": forged}
            for sender, relayed, clients, forged in summary.get("by_sender", [])
        ],
        "spikes": [
            {"hour": hour, "relayed": relayed, "baseline": baseline}
            for hour, relayed, baseline in summary.get("spikes", [])
        ],
        "retries": [
            {"domain": domain, "senderlog_retries": retries, "faillog": failed}
            for domain, retries, failed in summary.get("retries", [])
        ],
    }


class Command(ContractCommand):
    help = (
        "Read gateway logs (files, log folders, .gz, .zip), store their aggregates and print "
        "the signs of relay abuse; exit 1 when mail was relayed for outside clients."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--since", type=_date, help="ignore lines before this day (YYYY-MM-DD)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = [Path(path) for path in options["paths"]]
        try:
            sources = services.path_sources(paths)
            run = services.log_read(
                sources=sources,
                source_kind=LogSourceKind.COMMAND,
                label=", ".join(str(path) for path in paths),
                since=options["since"],
            )
        except services.LogReadError as error:
            raise CommandError(str(error), returncode=2) from None
        summary = run_summary(run)
        if options["json"]:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
        else:
            self.stdout.write(
                f"{run.files} file(s), {run.first_seen or '-'} .. {run.last_seen or '-'}: "
                f"{run.mails} mail(s), {run.relayed_outside} relayed for outside clients "
                f"({run.forged} with a forged inner sender), {run.unknown_lines} unknown line(s)"
            )
            for row in summary["by_client"][:10]:
                self.stdout.write(
                    f"relayed from outside: {row['client_ip']} {row['relayed']} mail(s) "
                    f"(HELO {row['helo']})"
                )
            for spike in summary["spikes"][:10]:
                self.stdout.write(
                    f"spike: {spike['hour']} {spike['relayed']} relayed "
                    f"(usual {spike['baseline']:g})"
                )
        if run.abuse_found:
            raise SystemExit(1)
