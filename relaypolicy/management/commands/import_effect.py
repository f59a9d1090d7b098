from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter.findings import Finding
from controlcenter.management.base import ContractCommand
from relaypolicy import services
from relaypolicy.forms import MAX_EFFECT_BYTES


class Command(ContractCommand):
    help = (
        "Parse an existing effect.dat into the relay rules, keeping comments, blank lines and "
        "order. A file whose only errors are policy risks (open relay, no final norelay line) "
        "is stored and exits 0 with the risks listed; a malformed line refuses the import "
        "(exit 1, nothing written)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH")
        parser.add_argument(
            "--replace", action="store_true", help="replace the rules that already exist"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        data = self.read_bounded(Path(options["path"]))
        try:
            report = services.relay_rules_import(data=data, replace=options["replace"])
        except services.RelayRulesExistError:
            raise CommandError(
                "relay rules already exist: use --replace to replace them", returncode=2
            ) from None
        except services.RelayImportRefused as refused:
            self.report(refused.preview, written=False, json_output=options["json"])
            sys.exit(1)
        self.report(report, written=True, json_output=options["json"])

    def read_bounded(self, path: Path) -> bytes:
        """At most the web form's limit: ``/dev/zero`` or a log file given by mistake stops at
        once with the contract's one-line error."""
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_EFFECT_BYTES + 1)
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}", returncode=2) from None
        if len(data) > MAX_EFFECT_BYTES:
            raise CommandError(
                f"{path} is larger than {MAX_EFFECT_BYTES} bytes: not an effect.dat",
                returncode=2,
            )
        return data

    def report(self, report: services.ImportReport, *, written: bool, json_output: bool) -> None:
        table = report.report.table
        summary = {
            "rows": len(table.rows),
            "rules": sum(1 for row in table.rows if row.kind == "rule"),
            "header": list(table.header),
            "terminator": table.terminator_line(),
            "findings": [finding.as_dict() for finding in report.findings],
            "written": written,
            "policy_risks": [finding.as_dict() for finding in report.risks],
        }
        if json_output:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
            return
        for finding in report.findings:
            self.stdout.write(_line(finding))
        if not written:
            self.stderr.write(
                f"nothing was imported: {len(report.blocking)} error(s) in lines the daemon "
                "cannot read as written"
            )
            return
        self.stdout.write(
            f"imported {summary['rows']} row(s), {summary['rules']} rule(s); "
            f"terminator: {summary['terminator'] or 'none'}"
        )
        if report.risks:
            self.stderr.write(
                f"imported with {len(report.risks)} policy risk(s): this is the server's current "
                "configuration; export_config refuses until they are fixed"
            )


def _line(finding: Finding) -> str:
    line = f"line {finding.line}: " if finding.line else ""
    return f"{finding.level.label}: {finding.code} {line}{finding.render()}"
