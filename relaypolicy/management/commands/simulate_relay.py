from __future__ import annotations

import io
import ipaddress
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from controlcenter.management.base import ContractCommand
from controlcenter.services import policy_compile
from controlcenter.simulation import (
    MailResult,
    RcptResult,
    Session,
    SessionResult,
    evaluate_session,
)


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
        parser.add_argument(
            "--batch", metavar="FILE.jsonl", help="one session per JSON line ('-': standard input)"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"]:
            if options["client_ip"] or options["mail_from"] is not None or options["rcpt_to"]:
                raise CommandError("--batch cannot be combined with a single session", returncode=2)
            self._batch(options["batch"], as_json=options["json"])
            return
        session = self._session(options)
        result = evaluate_session(policy_compile(), session)
        self.stdout.write(_JSON.encode(result.as_dict()) if options["json"] else _text(result))

    def _session(self, options: dict[str, Any]) -> Session:
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
        return Session(
            client_ip=client_ip,
            mail_from=options["mail_from"],
            rcpt_to=tuple(options["rcpt_to"]),
            auth=options["auth"],
        )

    def _batch(self, name: str, *, as_json: bool) -> None:
        """Stream the sessions of ``name`` (``-``: standard input) through the policy.

        The policy is compiled once; each line is read, evaluated and its result written to a
        spooled buffer as it comes, so memory stays bounded at any size. A bad line stops the
        run with the contract's one-line error and nothing on standard output (the buffer is
        copied out only at the end). Results are kept per distinct session, as repeated sessions
        (the same client, sender and recipients) are common in a day of traffic.
        """
        policy = policy_compile()
        render = _PartEncoder().line if as_json else _text
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL, mode="w+", encoding="utf-8") as out:
            chunk: list[str] = []
            for session in _read_batch(name):
                chunk.append(render(evaluate_session(policy, session)))
                if len(chunk) >= _CHUNK:
                    out.write("\n".join(chunk) + "\n")
                    chunk.clear()
            if chunk:
                out.write("\n".join(chunk) + "\n")
            out.seek(0)
            for block in iter(lambda: out.read(_BLOCK), ""):
                self.stdout.write(block, ending="")
        self.stdout.flush()


class _PartEncoder:
    """JSON lines of session results, each MAIL and RCPT result encoded once per distinct value.

    A day of traffic repeats the same answers (the same recipient, the same verdict), and
    building and encoding the dictionaries costs as much as the decision. The line is composed
    from the parts as ``SessionResult.as_dict`` lays it out; the first results and every
    thousandth are compared with the plain encoding, and any difference switches the run back
    to the plain encoding, so the output is always ``json.dumps(result.as_dict())``.
    """

    def __init__(self) -> None:
        self.parts: dict[object, str] = {}
        self.composed = True
        self.count = 0

    def part(self, value: MailResult | RcptResult) -> str:
        try:
            text = self.parts.get(value)
        except TypeError:  # a field that cannot be hashed: no reuse
            return _JSON.encode(value.as_dict())
        if text is None:
            text = _JSON.encode(value.as_dict())
            if len(self.parts) >= _PARTS_LIMIT:
                self.parts.clear()
            self.parts[value] = text
        return text

    def line(self, result: SessionResult) -> str:
        if not self.composed:
            return _JSON.encode(result.as_dict())
        rcpt = ", ".join(self.part(item) for item in result.rcpt)
        line = f'{{"mail": {self.part(result.mail)}, "rcpt": [{rcpt}]}}'
        self.count += 1
        if self.count <= _VERIFY_FIRST or self.count % _VERIFY_EVERY == 0:
            plain = _JSON.encode(result.as_dict())
            if line != plain:
                self.composed = False
                return plain
        return line


_JSON = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps builds one per call
_SPOOL = 8 * 1024 * 1024
_CHUNK = 1000
_BLOCK = 1024 * 1024
_PARTS_LIMIT = 100_000
_VERIFY_FIRST = 100
_VERIFY_EVERY = 1000


def _lines(name: str) -> Iterator[tuple[int, str]]:
    if name == "-":
        yield from enumerate(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8"), start=1)
        return
    path = Path(name)
    try:
        with path.open(encoding="utf-8") as handle:
            yield from enumerate(handle, start=1)
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read {path}: {error}", returncode=2) from None


def _read_batch(name: str) -> Iterator[Session]:
    """The session of each non-blank line; CommandError naming a bad line."""
    label = name if name == "-" else str(Path(name))
    ips: dict[str, str] = {}
    for number, line in _lines(name):
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
            ip = ips.get(client_ip)
            if ip is None:
                ip = ips[client_ip] = _client_ip(client_ip)
                if len(ips) > _PARTS_LIMIT:
                    ips.clear()
            session = Session(
                client_ip=ip,
                mail_from=mail_from,
                rcpt_to=tuple(rcpt) if isinstance(rcpt, list) else (rcpt,),
                auth=auth,
            )
            if not all(isinstance(address, str) for address in session.rcpt_to):
                raise ValueError("rcpt_to must be a list of strings")
        except (ValueError, KeyError, TypeError) as error:
            detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
            raise CommandError(f"{label} line {number}: {detail}", returncode=2) from None
        yield session


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
