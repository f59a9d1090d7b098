from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter.management.base import ContractCommand
from relaypolicy import services


class Command(ContractCommand):
    help = (
        "Parse an existing effect.dat into the relay rules, keeping comments, blank lines and "
        "order; unparsable lines are kept verbatim and reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH")
        parser.add_argument(
            "--replace", action="store_true", help="replace the rules that already exist"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        data = self.read_input(Path(options["path"]))
        try:
            report = services.relay_rules_import(data=data, replace=options["replace"])
        except services.RelayRulesExistError:
            raise CommandError(
                "relay rules already exist: use --replace to replace them", returncode=2
            ) from None
        table = report.report.table
        summary = {
            "rows": len(table.rows),
            "rules": sum(1 for row in table.rows if row.kind == "rule"),
            "header": list(table.header),
            "terminator": table.terminator_line(),
            "findings": [finding.as_dict() for finding in report.findings],
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
            return
        self.stdout.write(
            f"imported {summary['rows']} row(s), {summary['rules']} rule(s); "
            f"terminator: {summary['terminator'] or 'none'}"
        )
        for finding in report.findings:
            line = f"line {finding.line}: " if finding.line else ""
            self.stdout.write(f"{finding.level.label}: {finding.code} {line}{finding.render()}")
