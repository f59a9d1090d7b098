from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter import publishing, services
from controlcenter.findings import has_errors
from controlcenter.management.base import ContractCommand
from controlcenter.models import ServerSettings


class Command(ContractCommand):
    help = (
        "Export effect.dat, the alias registration script and aliases.csv atomically, record "
        "the export, and print what changed; exit 1 (nothing written) when the lint has errors, "
        "the folder is unusable, or files changed by hand would be overwritten without --force "
        "(a dry run exits 1 too when the lint has errors)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dest", metavar="DIR", help="export folder (default: the configured one)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print the diff and write nothing"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="overwrite files changed by hand in the folder (kept in the export history)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--recover",
            action="store_true",
            help="only complete or undo an export interrupted in the folder (a killed "
            "process, a power cut) and remove its temporary files; run at start-up",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dest = None
        if options["dest"] is not None:
            if not options["dest"].strip():
                raise CommandError("--dest: an empty folder name", returncode=2)
            dest = Path(options["dest"])
            if not dest.is_absolute():
                raise CommandError(
                    "--dest: give an absolute folder such as /usr/local/mta/bin", returncode=2
                )
            check = publishing.check_export_folder(options["dest"])
            if check.refusal is publishing.FolderRefusal.SYSTEM:
                raise CommandError(
                    f"--dest: {check.path} is a system folder ({check.detail}); "
                    "the export never writes there",
                    returncode=2,
                )
            if check.refusal is publishing.FolderRefusal.CONTROL:
                raise CommandError(
                    f"--dest: the folder name contains a control character ({check.detail})",
                    returncode=2,
                )
            dest = Path(check.path)
            if problem := publishing.folder_problem(dest):
                raise CommandError(f"--dest: {problem}", returncode=2)
        if options["recover"]:
            self._recover(dest, as_json=options["json"])
            return
        try:
            report = services.config_export(
                user=None,
                dest=dest,
                dry_run=options["dry_run"],
                force=options["force"],
                # An unusable --dest is refused, not recorded (no export number is used).
                record_folder_failure=dest is None,
            )
        except services.ExportDatabaseError as error:
            raise CommandError(str(error), returncode=1) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
        else:
            self._print(report)
        if report.status in ("refused", services.UNCONFIRMED):
            raise SystemExit(1)
        if report.status == services.DRY_RUN and has_errors(report.findings):
            raise SystemExit(1)
        if report.status == "failed":
            # An unusable --dest is bad input (status 2); an unusable configured folder is not.
            bad_dest = dest is not None and report.folder_unusable
            raise CommandError(report.error, returncode=2 if bad_dest else 1)

    def _recover(self, dest: Path | None, *, as_json: bool) -> None:
        folder = ServerSettings.load().export_path if dest is None else dest
        try:
            recovery = services.export_recover(dest=folder)
        except publishing.FolderError as error:
            raise CommandError(str(error), returncode=1) from None
        outcome = recovery.outcome.value if recovery else "nothing"
        export = recovery.journal.label.get("export") if recovery and recovery.journal else None
        if as_json:
            removed = list(recovery.removed) if recovery else []
            data = {"recovered": outcome, "export": export, "dest": str(folder)}
            self.stdout.write(json.dumps(data | {"removed": removed}, ensure_ascii=False))
        elif recovery is None:
            self.stdout.write(f"nothing to recover in {folder}")
        elif recovery.outcome is publishing.RecoveryOutcome.ROLLED_BACK:
            self.stdout.write(
                f"an interrupted export #{export} was undone in {folder}: "
                "the previous files are back"
            )
        elif recovery.outcome is publishing.RecoveryOutcome.COMPLETED:
            self.stdout.write(f"the interrupted export #{export} in {folder} was completed")
        else:
            self.stdout.write(
                f"removed {len(recovery.removed)} leftover temporary file(s) from {folder}"
            )

    def _print(self, report: services.ExportReport) -> None:
        for diff in report.plan.diffs:
            for line in diff.lines:
                self.stdout.write(line)
        for drift in report.plan.drift:
            self.stdout.write(f"drift: {drift.name}: {drift.kind.value}")
        for kept in report.plan.daemon_lines:
            self.stdout.write(
                f"daemon line kept above the terminator: {kept.text} ({kept.origin.value})"
            )
        for finding in report.findings:
            if finding.is_error:
                self.stderr.write(f"{finding.level.label}: {finding.code} {finding.render()}")
        changed = [diff.name for diff in report.plan.diffs if diff.changed]
        summary = ", ".join(changed) if changed else "no file changed"
        if report.status == "dry_run":
            self.stdout.write(f"dry run, nothing written to {report.dest}: {summary}")
        elif report.status == "refused":
            self.stderr.write(f"refused: the policy has errors; nothing written to {report.dest}")
        elif report.status == services.UNCONFIRMED:
            self.stderr.write(
                f"refused: {', '.join(report.plan.overwrites)} in {report.dest} changed by hand "
                "since the last export; nothing written. Run again with --force to overwrite "
                "(the replaced content is kept in the export history)."
            )
        elif report.export is not None and report.written:
            self.stdout.write(f"export #{report.export.number} written to {report.dest}: {summary}")
