"""The simulator before it remembered answers: the reference the optimised one must equal.

This is the decision of :mod:`controlcenter.simulation` as it was written before the answers
were memoised and the parsing sped up (commit 8f3d347), kept verbatim in its logic: every
session is evaluated from scratch, paths are read by the full grammar
(:func:`~controlcenter.smtppath.parse_path_strict`), sender lines by
:meth:`relaypolicy.effectfile.CompiledRules.first_match` (one regular expression per ``*``
pattern), and a mailbox is quoted by the original dot-string test. Only the result types and
note templates are shared with the package, so any difference in a field shows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controlcenter.simulation import (
    REPLY_FALSE,
    REPLY_NEED_MAIL,
    REPLY_RECIPIENT_OK,
    REPLY_RELAY_DENIED,
    REPLY_SENDER_OK,
    REPLY_SENDER_UNKNOWN,
    REPLY_USER_UNKNOWN,
    AddressClass,
    AliasRef,
    MailResult,
    Note,
    Policy,
    RcptResult,
    RcptVerdict,
    Reason,
    RuleRef,
    Session,
    SessionResult,
)
from controlcenter.simulation.notes import (
    NOTE_APPENDED,
    NOTE_AUTH,
    NOTE_AUTH_IGNORED,
    NOTE_BAD_CLIENT,
    NOTE_CLIENT_TEXT,
    NOTE_EMPTY_WILDCARD,
    NOTE_FALSE,
    NOTE_FORGEABLE,
    NOTE_IGNORED_MODIFIER,
    NOTE_IP_LITERAL,
    NOTE_LITERAL_KEYWORD,
    NOTE_LOOKALIKE,
    NOTE_MAIL_REFUSED,
    NOTE_MAILSERVER,
    NOTE_NO_MATCH,
    NOTE_NODOMAIN_RECIPIENT,
    NOTE_NODOMAIN_SENDER,
    NOTE_ONLY,
    NOTE_PARSE,
    NOTE_POSTMASTER,
    NOTE_POSTMASTER_ALIAS,
    NOTE_QUOTED,
    NOTE_ROUTING,
    NOTE_SOURCE_ROUTE,
    NOTE_TRAILING_DOT,
    NOTE_TRUSTED,
    NOTE_UNKNOWN_SENDER,
)
from controlcenter.simulation.notes import make_note as _note
from controlcenter.smtppath import (
    _ATEXT,
    REPLY_RCPT,
    Mailbox,
    PathError,
    PathKind,
    parse_path_strict,
)
from relaypolicy.effectfile import CLIENT_KINDS, EffectLine, Modifier, PatternKind
from relaypolicy.effectmatch import CompiledRules, compile_rules


def is_dot_string(local: str) -> bool:
    """The original test of ``Mailbox.address``."""
    atoms = local.split(".")
    return all(atom and set(atom) <= _ATEXT for atom in atoms)


def _address_of(mailbox: Mailbox) -> str:
    local = mailbox.local_part
    if not is_dot_string(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{mailbox.domain}" if mailbox.domain else local


def parse_path(text: str, *, role: Any, unqualified: bool = False) -> Any:
    return parse_path_strict(text, role=role, unqualified=unqualified)


@dataclass(frozen=True)
class _Reference:
    """What the original :class:`Policy` indexed besides the shared parts."""

    client_rules: CompiledRules
    sender_rules: CompiledRules
    terminator: EffectLine | None
    appended: frozenset[int]


_REFERENCES: dict[int, tuple[Policy, _Reference]] = {}


def _reference(policy: Policy) -> _Reference:
    kept = _REFERENCES.get(id(policy))
    if kept is None or kept[0] is not policy:
        rules = policy.effect.rules
        terminator, appended = _appended_tail(rules)
        clients = [
            line for line in rules if line.pattern_kind in CLIENT_KINDS and line is not terminator
        ]
        reference = _Reference(
            compile_rules(clients),
            compile_rules(line for line in rules if line.pattern_kind not in CLIENT_KINDS),
            terminator,
            frozenset(line.number for line in appended),
        )
        kept = _REFERENCES[id(policy)] = (policy, reference)
    return kept[1]


def _client_line(policy: Policy, client_ip: str) -> EffectLine | None:
    reference = _reference(policy)
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        line = reference.client_rules.first_match(client_ip, "<>")
    else:
        line = reference.client_rules.first_match(str(address), "<>", address)
    if line is None:
        line = reference.terminator
    return line


def _sender(policy: Policy, text: str) -> tuple[_Address, EffectLine | None]:
    address = _read_sender(policy, text)
    line = None
    if address.cls is not AddressClass.INVALID:
        line = _reference(policy).sender_rules.first_match("", address.key)
    return address, line


def canonical_client(client_ip: str) -> str:
    try:
        return str(ipaddress.ip_address(client_ip.strip()))
    except ValueError:
        return client_ip


@dataclass(frozen=True, slots=True)
class _Address:
    """What one path text means, computed once per policy and cached."""

    cls: AddressClass
    mailbox: Mailbox | None = None
    key: str = ""  # the sender as CompiledRules.first_match expects it
    domain: str = ""
    alias: AliasRef | None = None
    notes: tuple[Note, ...] = ()
    routing: Note | None = None  # shown only when the address is delivered
    reply: str = ""  # the 501 reply of an unparsable path


_NORELAY_FAMILY = frozenset({Modifier.NORELAY, Modifier.NORELAY_0, Modifier.NORELAY_2})


def _appended_tail(rules: Sequence[EffectLine]) -> tuple[EffectLine | None, list[EffectLine]]:
    """The final norelay catch-all and the ``<IP> false`` lines below it (spec §3.1), when the
    rules end that way; else (None, [])."""
    tail: list[EffectLine] = []
    index = len(rules) - 1
    while index >= 0 and _is_appended(rules[index]):
        tail.append(rules[index])
        index -= 1
    if not tail or index < 0:
        return None, []
    catch_all = rules[index]
    if not catch_all.is_catch_all or catch_all.effective not in _NORELAY_FAMILY:
        return None, []
    return catch_all, tail[::-1]


def _is_appended(line: EffectLine) -> bool:
    return (
        line.pattern_kind in (PatternKind.IPV4, PatternKind.IPV6)
        and line.separator_ok
        and line.modifier is Modifier.FALSE
    )


def _parse_notes(text: str, mailbox: Mailbox, route: tuple[str, ...]) -> list[Note]:
    notes: list[Note] = []
    if route:
        notes.append(
            _note(
                "source-route",
                NOTE_SOURCE_ROUTE,
                route=",".join(f"@{hop}" for hop in route),
                mailbox=_address_of(mailbox),
            )
        )
    if mailbox.quoted:
        notes.append(_note("quoted", NOTE_QUOTED, local=mailbox.local_part))
    written = text.strip(" \t").removesuffix(">").rstrip()
    if written.endswith(".") and mailbox.domain and not mailbox.is_ip_literal:
        notes.append(
            _note(
                "trailing-dot",
                NOTE_TRAILING_DOT,
                domain=written.rpartition("@")[2],
                normal=mailbox.domain,
            )
        )
    return notes


def _lookalike(policy: Policy, domain: str) -> str | None:
    """The managed domain that ``domain`` (external) imitates, if any."""
    local = policy.local_domains
    for index in range(1, len(domain)):  # notdomain.jp, sub.domain.jp
        if domain[index:] in local:
            return domain[index:]
    dot = domain.find(".")
    while dot > 0:  # domain.jp.evil.example
        if domain[:dot] in local:
            return domain[:dot]
        dot = domain.find(".", dot + 1)
    return None


def _classify(policy: Policy, mailbox: Mailbox, notes: list[Note]) -> _Address:
    domain = mailbox.domain
    match = policy.aliases.lookup(f"{mailbox.local_part}@{domain}") if domain else None
    if match is not None:
        alias = AliasRef.of(match)
        pattern_local = match.alias.local_part
        if "*" in pattern_local and len(pattern_local) - 1 == len(mailbox.local_part):
            notes.append(
                _note(
                    "empty-wildcard",
                    NOTE_EMPTY_WILDCARD,
                    alias=match.alias.pattern,
                    address=_address_of(mailbox),
                )
            )
        routing: Note | None = None
        chars = mailbox.routing_chars
        if chars:
            routing = _note(
                "routing",
                NOTE_ROUTING,
                local=mailbox.local_part,
                chars=" ".join(chars),
                alias=alias.pattern,
            )
        return _Address(
            AddressClass.LOCAL_EXISTING,
            mailbox,
            _address_of(mailbox),
            domain,
            alias,
            tuple(notes),
            routing,
        )
    if domain in policy.local_domains:
        return _Address(
            AddressClass.LOCAL_UNKNOWN, mailbox, _address_of(mailbox), domain, None, tuple(notes)
        )
    if mailbox.is_ip_literal:
        notes.append(_note("ip-literal", NOTE_IP_LITERAL, domain=domain))
    elif domain:
        imitated = _lookalike(policy, domain)
        if imitated is not None:
            notes.append(_note("lookalike", NOTE_LOOKALIKE, domain=domain, local=imitated))
    return _Address(
        AddressClass.EXTERNAL, mailbox, _address_of(mailbox), domain, None, tuple(notes)
    )


def _read_sender(policy: Policy, text: str) -> _Address:
    try:
        path = parse_path(text, role="mail", unqualified=True)
    except PathError as error:
        note = _note("syntax", NOTE_PARSE, reason=error.reason, nested=("reason",))
        return _Address(AddressClass.INVALID, notes=(note,), reply=error.reply)
    if path.kind is PathKind.NULL:
        return _Address(AddressClass.NULL, key="<>")
    if path.kind is PathKind.EMPTY or path.mailbox is None:
        return _Address(AddressClass.EMPTY, key="")
    mailbox = path.mailbox
    notes = _parse_notes(text, mailbox, path.source_route)
    if not mailbox.domain:
        # §3.1: accepted, external for the built-in table, matched by #nodomain lines.
        notes.append(_note("nodomain-sender", NOTE_NODOMAIN_SENDER, sender=mailbox.local_part))
        return _Address(AddressClass.EXTERNAL, mailbox, mailbox.local_part, "", None, tuple(notes))
    if mailbox.is_ip_literal and policy.keywords:
        notes.append(_note("literal-keyword", NOTE_LITERAL_KEYWORD, domain=mailbox.domain))
    return _classify(policy, mailbox, notes)


def _read_recipient(policy: Policy, text: str) -> _Address:
    try:
        path = parse_path(text, role="rcpt", unqualified=True)
    except PathError as error:
        note = _note("syntax", NOTE_PARSE, reason=error.reason, nested=("reason",))
        return _Address(AddressClass.INVALID, notes=(note,), reply=error.reply)
    mailbox = path.mailbox
    if mailbox is None:  # parse_path gives a mailbox for every recipient; be defensive
        return _Address(AddressClass.INVALID, reply=REPLY_RCPT)
    if not mailbox.domain:
        if mailbox.local_part.lower() == "postmaster":
            note = _note("postmaster", NOTE_POSTMASTER)
            return _Address(AddressClass.LOCAL_EXISTING, mailbox, "postmaster", notes=(note,))
        note = _note("nodomain-recipient", NOTE_NODOMAIN_RECIPIENT, rcpt=mailbox.local_part)
        return _Address(AddressClass.LOCAL_UNKNOWN, mailbox, mailbox.local_part, notes=(note,))
    address = _classify(policy, mailbox, _parse_notes(text, mailbox, path.source_route))
    if address.cls is AddressClass.LOCAL_UNKNOWN:
        extra: list[Note] = []
        if mailbox.local_part.lower() == "postmaster":
            extra.append(
                _note("postmaster-alias", NOTE_POSTMASTER_ALIAS, address=_address_of(mailbox))
            )
        if not policy.gateway_mode:
            extra.append(_note("mailserver", NOTE_MAILSERVER, address=_address_of(mailbox)))
        if extra:
            return _Address(
                address.cls,
                mailbox,
                address.key,
                address.domain,
                None,
                address.notes + tuple(extra),
            )
    return address


def _is_ip(client_ip: str) -> bool:
    try:
        ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return True


# --- evaluation -------------------------------------------------------------------------------

_TRUSTING = frozenset({Modifier.TRUE, Modifier.ONLY})


def _rule_notes(line: EffectLine | None, modifier: Modifier) -> list[Note]:
    if line is None:
        return [_note("no-match", NOTE_NO_MATCH)]
    if modifier is Modifier.FALSE:
        return [_note("false", NOTE_FALSE, line=line.number, text=line.text)]
    if modifier is Modifier.ONLY:
        return [_note("only", NOTE_ONLY, line=line.number)]
    if modifier is Modifier.DEFAULT and line.modifier is not Modifier.DEFAULT:
        return [_note("ignored-modifier", NOTE_IGNORED_MODIFIER, line=line.number, text=line.text)]
    return []


def evaluate_session(policy: Policy, session: Session) -> SessionResult:
    """The gateway's answer to MAIL FROM and to each RCPT TO of ``session``; never raises."""
    sender, sender_line = _sender(policy, session.mail_from)
    if sender.cls is AddressClass.INVALID:
        mail = MailResult(
            "reject",
            sender.reply,
            None,
            sender_class=AddressClass.INVALID,
            notes=sender.notes,
            reason=Reason.SYNTAX,
        )
        return SessionResult(session, mail, _all_refused(policy, session, mail))

    line = _client_line(policy, session.client_ip)
    if sender_line is not None and (line is None or sender_line.number < line.number):
        line = sender_line
    modifier = line.effective if line is not None else Modifier.DEFAULT
    rule = RuleRef(line.number, line.text) if line is not None else None
    notes = list(sender.notes)
    if not _is_ip(session.client_ip):
        notes.append(_note("client-ip", NOTE_BAD_CLIENT, client=session.client_ip))
    elif canonical_client(session.client_ip) != session.client_ip:
        notes.append(
            _note("client-text", NOTE_CLIENT_TEXT, canonical=canonical_client(session.client_ip))
        )
    if line is not None and line.number in _reference(policy).appended:
        notes.append(_note("appended", NOTE_APPENDED, line=line.number, text=line.text))
    notes.extend(_rule_notes(line, modifier))
    refused = modifier is Modifier.FALSE
    mail = MailResult(
        "reject" if refused else "accept",
        REPLY_FALSE if refused else REPLY_SENDER_OK,
        rule,
        sender_class=sender.cls,
        modifier=modifier,
        alias=sender.alias,
        mailbox=sender.mailbox,
        notes=tuple(notes),
        reason=Reason.REFUSED if refused else Reason.ACCEPTED,
    )
    if refused:
        return SessionResult(session, mail, _all_refused(policy, session, mail))
    decide = _Decider(sender, modifier, rule, session.auth)
    return SessionResult(
        session,
        mail,
        tuple(decide(text, _read_recipient(policy, text)) for text in session.rcpt_to),
    )


def _all_refused(policy: Policy, session: Session, mail: MailResult) -> tuple[RcptResult, ...]:
    notes = (_note("mail-refused", NOTE_MAIL_REFUSED, reply=mail.reply),)
    results: list[RcptResult] = []
    for text in session.rcpt_to:
        rcpt = _read_recipient(policy, text)
        results.append(
            RcptResult(
                text,
                "reject",
                REPLY_NEED_MAIL,
                mail.rule,
                alias=rcpt.alias,
                notes=notes,
                stage="mail",
                address_class=rcpt.cls,
                mailbox=rcpt.mailbox,
                reason=Reason.MAIL_REFUSED,
            )
        )
    return tuple(results)


class _Decider:
    """Step 2 of the decision for one accepted MAIL FROM, applied to each recipient.

    The notes that depend only on the session are built once here, not per recipient.
    """

    __slots__ = (
        "authenticated",
        "denied_notes",
        "relay_notes",
        "rule",
        "sender",
        "table",
        "unknown_sender_notes",
    )

    def __init__(
        self, sender: _Address, modifier: Modifier, rule: RuleRef | None, auth: bool
    ) -> None:
        self.sender = sender
        self.rule = rule
        self.authenticated = auth and modifier is not Modifier.NORELAY_0
        # None: trusted (true, bare, only); True: the built-in table's local-sender row relays.
        self.table: bool | None = None
        self.relay_notes: tuple[Note, ...] = ()
        self.unknown_sender_notes: tuple[Note, ...] = ()
        self.denied_notes: tuple[Note, ...] = ()
        if modifier in _TRUSTING:
            if rule is not None:
                self.relay_notes = (_note("trusted", NOTE_TRUSTED, line=rule.line, text=rule.text),)
            return
        self.table = modifier is Modifier.DEFAULT and sender.cls is AddressClass.LOCAL_EXISTING
        if self.authenticated:
            self.relay_notes = (_note("auth", NOTE_AUTH),)
        elif self.table:
            alias = sender.alias.pattern if sender.alias else ""
            self.relay_notes = (
                _note("forgeable-sender", NOTE_FORGEABLE, sender=sender.key, alias=alias),
            )
        if sender.cls is AddressClass.LOCAL_UNKNOWN:
            self.unknown_sender_notes = (
                _note(
                    "unknown-sender", NOTE_UNKNOWN_SENDER, sender=sender.key, domain=sender.domain
                ),
            )
        if auth and modifier is Modifier.NORELAY_0:
            self.denied_notes = (_note("auth-ignored", NOTE_AUTH_IGNORED),)

    def __call__(self, text: str, rcpt: _Address) -> RcptResult:
        cls = rcpt.cls
        if cls is AddressClass.INVALID:
            return self._result(text, rcpt, "reject", rcpt.reply, Reason.SYNTAX, rule=False)
        if cls is AddressClass.LOCAL_UNKNOWN:
            return self._result(
                text, rcpt, "reject", REPLY_USER_UNKNOWN, Reason.UNKNOWN_RECIPIENT, rule=False
            )
        local = cls is AddressClass.LOCAL_EXISTING
        if self.table is None:
            if local:
                return self._deliver(text, rcpt, Reason.TRUSTED)
            return self._result(
                text, rcpt, "relay", REPLY_RECIPIENT_OK, Reason.TRUSTED, self.relay_notes
            )
        if self.unknown_sender_notes and not self.authenticated:
            reply = REPLY_SENDER_UNKNOWN if local else REPLY_RELAY_DENIED
            return self._result(
                text, rcpt, "reject", reply, Reason.UNKNOWN_SENDER, self.unknown_sender_notes
            )
        if local:
            return self._deliver(text, rcpt, Reason.LOCAL_RECIPIENT)
        if self.authenticated or self.table:
            reason = Reason.AUTH if self.authenticated else Reason.LOCAL_SENDER
            return self._result(text, rcpt, "relay", REPLY_RECIPIENT_OK, reason, self.relay_notes)
        return self._result(
            text, rcpt, "reject", REPLY_RELAY_DENIED, Reason.RELAY_DENIED, self.denied_notes
        )

    def _deliver(self, text: str, rcpt: _Address, reason: Reason) -> RcptResult:
        extra = (rcpt.routing,) if rcpt.routing is not None else ()
        return self._result(text, rcpt, "deliver", REPLY_RECIPIENT_OK, reason, extra)

    def _result(
        self,
        text: str,
        rcpt: _Address,
        verdict: RcptVerdict,
        reply: str,
        reason: Reason,
        extra: tuple[Note, ...] = (),
        *,
        rule: bool = True,
    ) -> RcptResult:
        return RcptResult(
            text,
            verdict,
            reply,
            self.rule if rule else None,
            alias=rcpt.alias,
            notes=rcpt.notes + extra if extra else rcpt.notes,
            stage="rcpt",
            address_class=rcpt.cls,
            mailbox=rcpt.mailbox,
            reason=reason,
        )
