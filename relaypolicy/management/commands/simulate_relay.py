from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter.management.base import ContractCommand
from controlcenter.services import policy_compile
from controlcenter.simulation import Session, SessionResult, evaluate_session


class Command(ContractCommand):
    help = (
        "Evaluate the stored policy for one SMTP session, or for every JSON line of --batch, "
        "exactly as the exported files would behave."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client-ip", metavar="IP")
        parser.add_argument("--mail-from", metavar="ADDR", help="'<>' null sender, '' empty")
        parser.add_argument("--rcpt-to", metavar="ADDR", action="append", default=[])
        parser.add_argument("--auth", action="store_true", help="the session is SMTP-authenticated")
        parser.add_argument("--batch", metavar="FILE.jsonl", help="one session per JSON line")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        sessions = self._sessions(options)
        policy = policy_compile()
        for session in sessions:
            result = evaluate_session(policy, session)
            if options["json"]:
                self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
            else:
                self.stdout.write(_text(result))

    def _sessions(self, options: dict[str, Any]) -> list[Session]:
        if options["batch"]:
            if options["client_ip"] or options["mail_from"] is not None or options["rcpt_to"]:
                raise CommandError("--batch cannot be combined with a single session", returncode=2)
            return _read_batch(Path(options["batch"]))
        missing = [
            name
            for name, value in (
                ("--client-ip", options["client_ip"]),
                ("--mail-from", options["mail_from"]),
                ("--rcpt-to", options["rcpt_to"] or None),
            )
            if value is None
        ]
        if missing:
            raise CommandError(f"missing {', '.join(missing)} (or use --batch FILE)", returncode=2)
        try:
            client_ip = _client_ip(options["client_ip"])
        except ValueError as error:
            raise CommandError(f"--client-ip: {error}", returncode=2) from None
        return [
            Session(
                client_ip=client_ip,
                mail_from=options["mail_from"],
                rcpt_to=tuple(options["rcpt_to"]),
                auth=options["auth"],
            )
        ]


def _read_batch(path: Path) -> list[Session]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read {path}: {error}", returncode=2) from None
    sessions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("each line must be a JSON object")
            client_ip = _text_field(item, "client_ip")
            mail_from = _text_field(item, "mail_from")
            rcpt = item["rcpt_to"]
            auth = item.get("auth", False)
            if not isinstance(auth, bool):
                raise ValueError("auth must be true or false")
            session = Session(
                client_ip=_client_ip(client_ip),
                mail_from=mail_from,
                rcpt_to=tuple(rcpt) if isinstance(rcpt, list) else (rcpt,),
                auth=auth,
            )
            if not all(isinstance(address, str) for address in session.rcpt_to):
                raise ValueError("rcpt_to must be a list of strings")
        except (ValueError, KeyError, TypeError) as error:
            detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
            raise CommandError(f"{path} line {number}: {detail}", returncode=2) from None
        sessions.append(session)
    return sessions


def _client_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


def _text_field(item: dict[str, Any], key: str) -> str:
    value = item[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _text(result: SessionResult) -> str:
    mail = result.mail
    lines = [f"MAIL FROM: {result.session.mail_from!r} {mail.verdict}: {mail.reply}"]
    if mail.rule:
        lines[-1] += f" (line {mail.rule.line}: {mail.rule.text})"
    for rcpt in result.rcpt:
        line = f"RCPT TO: {rcpt.address!r} {rcpt.verdict}: {rcpt.reply}"
        if rcpt.rule:
            line += f" (line {rcpt.rule.line}: {rcpt.rule.text})"
        if rcpt.alias:
            line += f" [alias {rcpt.alias.pattern} -> {rcpt.alias.target}]"
        lines.append(line)
        lines += [f"  note: {note.render()}" for note in rcpt.notes]
    return "\n".join(lines)
