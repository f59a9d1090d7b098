from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext

from aliases.aliasfile import ENCODINGS
from aliases.importing import aliases_import_csv
from controlcenter.management.base import ContractCommand


class Command(ContractCommand):
    help = "Import an alias CSV all-or-nothing, with the same engine as the upload page."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH", help="the CSV file")
        parser.add_argument("--dry-run", action="store_true", help="check only, write nothing")
        parser.add_argument("--encoding", choices=ENCODINGS, default="auto")
        parser.add_argument(
            "--add-domains", action="store_true", help="register missing local domains"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        data = self.read_input(Path(options["path"]))
        report = aliases_import_csv(
            data=data,
            encoding=options["encoding"],
            add_domains=options["add_domains"],
            dry_run=options["dry_run"],
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
        else:
            for finding in report.findings:
                where = f"line {finding.line}: " if finding.line else ""
                self.stderr.write(
                    f"{where}{finding.level.label}: {finding.code} {finding.render(gettext)}"
                )
            verb = "would import" if report.dry_run or not report.written else "imported"
            self.stdout.write(
                f"{verb}: {report.created} created, {report.updated} updated, "
                f"{report.unchanged} unchanged"
                + (
                    f"; domains added: {', '.join(report.domains_added)}"
                    if report.domains_added
                    else ""
                )
            )
        if report.refused:
            if not options["json"]:
                self.stderr.write("nothing was imported: the file has errors")
            sys.exit(1)
        if report.risks and not options["json"]:
            self.stderr.write(
                f"{'would import' if report.dry_run else 'imported'} with "
                f"{len(report.risks)} policy risk(s): this is the server's current "
                "configuration; export_config refuses until they are fixed"
            )
