"""``simulate_relay --batch`` without Django: JSON lines of sessions in, one answer per line out.

Input (``../shared/spec/cli.md``): one JSON object per line,
``{"client_ip": "...", "mail_from": "...", "rcpt_to": ["..."], "auth": false}``; blank lines
are skipped; ``rcpt_to`` may also be one string. Output: per session, in order, either the
JSON of :meth:`SessionResult.as_dict` exactly as ``json.dumps(..., ensure_ascii=False)`` writes
it, or the text form (:func:`text_answer`).

Where the time goes at 100,000 sessions is the point of this module: the policy remembers each
distinct answer and hands out the same result object again (:mod:`.decide`), so the JSON of
each result is built once per object (:class:`JsonLines`) from pieces that are themselves
shared (rules, aliases, notes, mailboxes), and a session's line is composed from those texts.
The first lines and every thousandth are compared with the plain encoding; a difference makes
the rest of the run use the plain encoding.
"""

from __future__ import annotations

import ipaddress
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring
from typing import IO, Any, Final

from controlcenter.simulation.decide import answer_session, evaluate_session
from controlcenter.simulation.notes import Note, Translate, identity
from controlcenter.simulation.policy import Policy
from controlcenter.simulation.results import (
    AliasRef,
    MailResult,
    RcptResult,
    RuleRef,
    Session,
    SessionResult,
)
from controlcenter.smtppath import Mailbox

Fields = tuple[str, str, tuple[str, ...], bool]  # Session's fields, in its order

#: Distinct client addresses, and encoded results, kept before starting over.
KEEP_LIMIT: Final = 100_000
#: Output held in memory before the rest goes to a temporary file.
SPOOL_LIMIT: Final = 256 * 1024 * 1024
VERIFY_FIRST: Final = 100
VERIFY_EVERY: Final = 1000

_PLAIN = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps builds one per call
# json.loads without its per-call wrappers (the attribute is missing from typeshed)
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


class BatchError(ValueError):
    """A bad input line: ``number`` counts physical lines from 1, ``detail`` says why."""

    def __init__(self, number: int, detail: str) -> None:
        super().__init__(f"line {number}: {detail}")
        self.number = number
        self.detail = detail


def client_ip_text(text: str) -> str:
    """``text`` as Python writes the address (RFC 5952); ValueError naming it otherwise."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


def read_sessions(lines: Iterable[tuple[int, str]]) -> Iterator[Fields]:
    """The session fields of each numbered non-blank line, the client address normalised;
    :class:`BatchError` for the first bad line."""
    ips: dict[str, str] = {}
    for number, line in lines:
        if not line.strip():
            continue
        try:
            item = _decode(line)
            if type(item) is not dict:
                raise ValueError("each line must be a JSON object")
            client = item["client_ip"]
            if type(client) is not str:
                raise ValueError("client_ip must be a string")
            mail_from = item["mail_from"]
            if type(mail_from) is not str:
                raise ValueError("mail_from must be a string")
            rcpt = item["rcpt_to"]
            auth = item.get("auth", False)
            if auth is not False and auth is not True:
                raise ValueError("auth must be true or false")
            ip = ips.get(client)
            if ip is None:
                ip = ips[client] = client_ip_text(client)
                if len(ips) > KEEP_LIMIT:
                    ips.clear()
            rcpt_to = tuple(rcpt) if type(rcpt) is list else (rcpt,)
            for address in rcpt_to:
                if type(address) is not str:
                    raise ValueError("rcpt_to must be a list of strings")
        except (ValueError, KeyError, TypeError) as error:
            detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
            raise BatchError(number, detail) from None
        yield ip, mail_from, rcpt_to, auth


def _decode(line: str) -> Any:
    """``json.loads(line)``: the scanner alone reads the usual line (one value, then the
    newline); anything else goes through ``json.loads`` for its exact answer or error."""
    try:
        value, end = _SCAN(line, 0)
    except StopIteration:
        return json.loads(line)
    if end == len(line) or (end == len(line) - 1 and line[end] == "\n"):
        return value
    return json.loads(line)


def run_batch(
    policy: Policy,
    lines: Iterable[tuple[int, str]],
    out: Spool,
    *,
    as_json: bool,
    translate: Translate = identity,
) -> None:
    """Answer every session of ``lines`` into ``out``; :class:`BatchError` for a bad line
    (what ``out`` holds then is to be thrown away)."""
    chunk: list[str] = []
    if as_json:
        encode = JsonLines(policy)
        for fields in read_sessions(lines):
            chunk.append(encode.line(*fields))
            if len(chunk) >= 1000:
                out.write(chunk)
    else:
        for fields in read_sessions(lines):
            chunk.append(text_answer(evaluate_session(policy, Session(*fields)), translate))
            if len(chunk) >= 1000:
                out.write(chunk)
    out.write(chunk)


def plain_json(result: SessionResult) -> str:
    """``json.dumps(result.as_dict(), ensure_ascii=False)``."""
    return _PLAIN.encode(result.as_dict())


def text_answer(result: SessionResult, translate: Translate = identity) -> str:
    """The text form: one line for MAIL FROM, one per recipient with its notes below."""
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
        lines += [f"  note: {note.render(translate)}" for note in rcpt.notes]
    return "\n".join(lines)


class JsonLines:
    """The JSON line of each session, as ``json.dumps(result.as_dict(), ensure_ascii=False)``."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.results = ResultJson()
        self.composed = True
        self.count = 0

    def line(self, client_ip: str, mail_from: str, rcpt_to: tuple[str, ...], auth: bool) -> str:
        mail, rcpt = answer_session(self.policy, client_ip, mail_from, rcpt_to, auth)
        self.count += 1
        if self.composed and self.count > VERIFY_FIRST and self.count % VERIFY_EVERY:
            # ResultJson.session, inlined: this runs once per session.
            results = self.results
            texts = ", ".join([result.json_text or results.rcpt(result) for result in rcpt])
            return f'{{"mail": {mail.json_text or results.mail(mail)}, "rcpt": [{texts}]}}'
        plain = plain_json(SessionResult(Session(client_ip, mail_from, rcpt_to, auth), mail, rcpt))
        if self.composed:
            self.composed = self.results.session(mail, rcpt) == plain
        return plain


class ResultJson:
    """The JSON texts of results, ``as_dict()`` encoded, each built once per object.

    A result keeps its own text (``json_text``); the shared pieces (rules, aliases, notes,
    mailboxes) are kept here by identity, holding the object so that an id is never reused
    while its text is kept, and start over past :data:`KEEP_LIMIT`.
    """

    def __init__(self) -> None:
        self.kept: dict[int, tuple[object, str]] = {}

    def session(self, mail: MailResult, rcpt: tuple[RcptResult, ...]) -> str:
        texts = ", ".join([result.json_text or self.rcpt(result) for result in rcpt])
        return f'{{"mail": {mail.json_text or self.mail(mail)}, "rcpt": [{texts}]}}'

    def _keep(self, value: object, text: str) -> str:
        if len(self.kept) >= KEEP_LIMIT:
            self.kept.clear()
        self.kept[id(value)] = (value, text)
        return text

    # The enum fields are StrEnum members, whose text is their value: encoded as they are.

    def mail(self, mail: MailResult) -> str:
        modifier = "null" if mail.modifier is None else encode_basestring(mail.modifier)
        return _remember(
            mail,
            f'{{"verdict": {encode_basestring(mail.verdict)}, '
            f'"reply": {encode_basestring(mail.reply)}, '
            f'"rule": {self._rule(mail.rule)}, '
            f'"notes": [{", ".join([self._note(note) for note in mail.notes])}], '
            f'"class": {encode_basestring(mail.sender_class)}, '
            f'"modifier": {modifier}, '
            f'"mailbox": {self._mailbox(mail.mailbox)}, '
            f'"alias": {self._alias(mail.alias)}, '
            f'"reason": {encode_basestring(mail.reason)}}}',
        )

    def rcpt(self, rcpt: RcptResult) -> str:
        return _remember(
            rcpt,
            f'{{"address": {encode_basestring(rcpt.address)}, '
            f'"verdict": {encode_basestring(rcpt.verdict)}, '
            f'"reply": {encode_basestring(rcpt.reply)}, '
            f'"rule": {self._rule(rcpt.rule)}, '
            f'"notes": [{", ".join([self._note(note) for note in rcpt.notes])}], '
            f'"stage": {encode_basestring(rcpt.stage)}, '
            f'"class": {encode_basestring(rcpt.address_class)}, '
            f'"alias": {self._alias(rcpt.alias)}, '
            f'"mailbox": {self._mailbox(rcpt.mailbox)}, '
            f'"reason": {encode_basestring(rcpt.reason)}}}',
        )

    def _rule(self, rule: RuleRef | None) -> str:
        if rule is None:
            return "null"
        found = self.kept.get(id(rule))
        if found is not None and found[0] is rule:
            return found[1]
        return self._keep(
            rule, f'{{"line": {int.__repr__(rule.line)}, "text": {encode_basestring(rule.text)}}}'
        )

    def _alias(self, alias: AliasRef | None) -> str:
        if alias is None:
            return "null"
        found = self.kept.get(id(alias))
        if found is not None and found[0] is alias:
            return found[1]
        return self._keep(
            alias,
            f'{{"pattern": {encode_basestring(alias.pattern)}, '
            f'"target": {encode_basestring(alias.target)}, '
            f'"position": {int.__repr__(alias.position)}}}',
        )

    def _note(self, note: Note) -> str:
        found = self.kept.get(id(note))
        if found is not None and found[0] is note:
            return found[1]
        return self._keep(note, encode_basestring(note.render()))

    def _mailbox(self, mailbox: Mailbox | None) -> str:
        if mailbox is None:
            return "null"
        found = self.kept.get(id(mailbox))
        if found is not None and found[0] is mailbox:
            return found[1]
        return self._keep(mailbox, encode_basestring(mailbox.address))


def _remember(result: MailResult | RcptResult, text: str) -> str:
    # Results are frozen values; their JSON is a cache beside the value (compare=False).
    object.__setattr__(result, "json_text", text)
    return text


class Spool:
    """Output held back until the whole input has been read: UTF-8 blocks in memory up to
    :data:`SPOOL_LIMIT` bytes, the rest in a temporary file."""

    def __init__(self) -> None:
        self.kept: list[bytes] = []
        self.size = 0
        self.file: IO[bytes] | None = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.file is not None:
            self.file.close()

    def write(self, lines: list[str]) -> None:
        """Add ``lines`` (each without its newline) and empty the list."""
        if not lines:
            return
        lines.append("")  # the last newline, without copying the block once more
        block = "\n".join(lines).encode()
        lines.clear()
        if self.file is not None:
            self.file.write(block)
            return
        self.kept.append(block)
        self.size += len(block)
        if self.size > SPOOL_LIMIT:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
            for kept in self.kept:
                self.file.write(kept)
            self.kept.clear()

    def blocks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        """The output in order, in blocks of at most ``size`` bytes from the file."""
        yield from self.kept
        if self.file is not None:
            self.file.seek(0)
            while block := self.file.read(size):
                yield block
