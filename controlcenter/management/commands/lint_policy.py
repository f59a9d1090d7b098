from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from controlcenter import policycache
from controlcenter.findings import has_errors
from controlcenter.management.base import ContractCommand


class Command(ContractCommand):
    help = "Run every validator over the stored rules, aliases and settings; exit 1 on errors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        findings = policycache.policy_verdict().findings
        if options["json"]:
            self.stdout.write(json.dumps([f.as_dict() for f in findings], ensure_ascii=False))
        else:
            for finding in findings:
                where = f"line {finding.line}: " if finding.line else f"{finding.obj}: "
                self.stdout.write(
                    f"{finding.level.label}: {finding.code} {where}{finding.render()}"
                )
            if not findings:
                self.stdout.write("no findings")
        if has_errors(findings):
            raise SystemExit(1)
