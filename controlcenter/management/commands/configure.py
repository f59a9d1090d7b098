from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext

from controlcenter import services
from controlcenter.management.base import ContractCommand
from controlcenter.models import Licence, OperatingMode, ServerSettings


class Command(ContractCommand):
    help = "Show or change the server settings (全設定), validated like the form."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mode", choices=OperatingMode.values)
        parser.add_argument("--licence", choices=Licence.values)
        parser.add_argument("--accounts", type=int, metavar="N")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        changes = {
            name: options[name]
            for name in ("mode", "licence", "accounts")
            if options[name] is not None
        }
        if changes:
            try:
                server = services.server_settings_update(changes=changes)
            except ValidationError as error:
                raise CommandError(_one_line(error), returncode=2) from None
        else:
            server = ServerSettings.load()
        report = settings_report(server)
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
        else:
            for key, value in report.items():
                self.stdout.write(f"{key}: {value}")
        for finding in services.server_settings_findings(server):
            self.stderr.write(f"{finding.level.label}: {finding.code} {finding.render(gettext)}")


def settings_report(server: ServerSettings) -> dict[str, object]:
    return {
        "mode": server.mode,
        "licence": server.licence,
        "accounts": server.accounts,
        "mailing_lists": server.mailing_lists,
        "max_message_size": server.max_message_size,
        "max_recipients": server.max_recipients,
        "export_dir": str(server.export_path),
        "export_line_ending": server.export_line_ending,
    }


def _one_line(error: ValidationError) -> str:
    parts = []
    for field, messages in error.message_dict.items():
        text = " ".join(str(m) for m in messages)
        parts.append(text if field == NON_FIELD_ERRORS else f"--{field}: {text}")
    return "; ".join(parts)
