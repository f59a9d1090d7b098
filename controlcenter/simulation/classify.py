"""What one path text means to the policy: parsed strictly, then classified.

Computed once per distinct text and policy (:class:`~controlcenter.simulation.policy.Policy`
caches the result); the classes and notes are those of the package docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from controlcenter.simulation.notes import (
    NOTE_EMPTY_WILDCARD,
    NOTE_IP_LITERAL,
    NOTE_LITERAL_KEYWORD,
    NOTE_LOOKALIKE,
    NOTE_MAILSERVER,
    NOTE_NODOMAIN_RECIPIENT,
    NOTE_NODOMAIN_SENDER,
    NOTE_PARSE,
    NOTE_POSTMASTER,
    NOTE_POSTMASTER_ALIAS,
    NOTE_QUOTED,
    NOTE_ROUTING,
    NOTE_SOURCE_ROUTE,
    NOTE_TRAILING_DOT,
    Note,
    make_note,
)
from controlcenter.simulation.results import AddressClass, AliasRef
from controlcenter.smtppath import REPLY_RCPT, Mailbox, PathError, PathKind, parse_path

if TYPE_CHECKING:
    from controlcenter.simulation.policy import Policy


@dataclass(frozen=True, slots=True)
class Address:
    """What one path text means, computed once per policy and cached."""

    cls: AddressClass
    mailbox: Mailbox | None = None
    key: str = ""  # the sender as the sender lines are matched with
    domain: str = ""
    alias: AliasRef | None = None
    notes: tuple[Note, ...] = ()
    routing: Note | None = None  # shown only when the address is delivered
    reply: str = ""  # the 501 reply of an unparsable path


def _parse_notes(text: str, mailbox: Mailbox, route: tuple[str, ...]) -> list[Note]:
    notes: list[Note] = []
    if route:
        notes.append(
            make_note(
                "source-route",
                NOTE_SOURCE_ROUTE,
                route=",".join(f"@{hop}" for hop in route),
                mailbox=mailbox.address,
            )
        )
    if mailbox.quoted:
        notes.append(make_note("quoted", NOTE_QUOTED, local=mailbox.local_part))
    written = text.strip(" \t").removesuffix(">").rstrip()
    if written.endswith(".") and mailbox.domain and not mailbox.is_ip_literal:
        notes.append(
            make_note(
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
    for length in _lengths(local):  # notdomain.jp, sub.domain.jp: the longest first
        if length < len(domain) and domain[-length:] in local:
            return domain[-length:]
    dot = domain.find(".")
    while dot > 0:  # domain.jp.evil.example
        if domain[:dot] in local:
            return domain[:dot]
        dot = domain.find(".", dot + 1)
    return None


@lru_cache(maxsize=16)
def _lengths(domains: frozenset[str]) -> tuple[int, ...]:
    return tuple(sorted({len(domain) for domain in domains if domain}, reverse=True))


def _classify(policy: Policy, mailbox: Mailbox, notes: list[Note]) -> Address:
    domain = mailbox.domain
    written = mailbox.address  # quoted when needed: built once, it costs a scan
    match = policy.aliases.lookup(f"{mailbox.local_part}@{domain}") if domain else None
    if match is not None:
        alias = AliasRef.of(match)
        pattern_local = match.alias.local_part
        if "*" in pattern_local and len(pattern_local) - 1 == len(mailbox.local_part):
            notes.append(
                make_note(
                    "empty-wildcard",
                    NOTE_EMPTY_WILDCARD,
                    alias=match.alias.pattern,
                    address=written,
                )
            )
        routing: Note | None = None
        chars = mailbox.routing_chars
        if chars:
            routing = make_note(
                "routing",
                NOTE_ROUTING,
                local=mailbox.local_part,
                chars=" ".join(chars),
                alias=alias.pattern,
            )
        return Address(
            AddressClass.LOCAL_EXISTING,
            mailbox,
            written,
            domain,
            alias,
            tuple(notes),
            routing,
        )
    if domain in policy.local_domains:
        return Address(AddressClass.LOCAL_UNKNOWN, mailbox, written, domain, None, tuple(notes))
    if mailbox.is_ip_literal:
        notes.append(make_note("ip-literal", NOTE_IP_LITERAL, domain=domain))
    elif domain:
        imitated = _lookalike(policy, domain)
        if imitated is not None:
            notes.append(make_note("lookalike", NOTE_LOOKALIKE, domain=domain, local=imitated))
    return Address(AddressClass.EXTERNAL, mailbox, written, domain, None, tuple(notes))


def read_sender(policy: Policy, text: str) -> Address:
    try:
        path = parse_path(text, role="mail", unqualified=True)
    except PathError as error:
        note = make_note("syntax", NOTE_PARSE, reason=error.reason, nested=("reason",))
        return Address(AddressClass.INVALID, notes=(note,), reply=error.reply)
    if path.kind is PathKind.NULL:
        return Address(AddressClass.NULL, key="<>")
    if path.kind is PathKind.EMPTY or path.mailbox is None:
        return Address(AddressClass.EMPTY, key="")
    mailbox = path.mailbox
    notes = _parse_notes(text, mailbox, path.source_route)
    if not mailbox.domain:
        # §3.1: accepted, external for the built-in table, matched by #nodomain lines.
        notes.append(make_note("nodomain-sender", NOTE_NODOMAIN_SENDER, sender=mailbox.local_part))
        return Address(AddressClass.EXTERNAL, mailbox, mailbox.local_part, "", None, tuple(notes))
    if mailbox.is_ip_literal and policy.keywords:
        notes.append(make_note("literal-keyword", NOTE_LITERAL_KEYWORD, domain=mailbox.domain))
    return _classify(policy, mailbox, notes)


def read_recipient(policy: Policy, text: str) -> Address:
    try:
        path = parse_path(text, role="rcpt", unqualified=True)
    except PathError as error:
        note = make_note("syntax", NOTE_PARSE, reason=error.reason, nested=("reason",))
        return Address(AddressClass.INVALID, notes=(note,), reply=error.reply)
    mailbox = path.mailbox
    if mailbox is None:  # parse_path gives a mailbox for every recipient; be defensive
        return Address(AddressClass.INVALID, reply=REPLY_RCPT)
    if not mailbox.domain:
        if mailbox.local_part.lower() == "postmaster":
            note = make_note("postmaster", NOTE_POSTMASTER)
            return Address(AddressClass.LOCAL_EXISTING, mailbox, "postmaster", notes=(note,))
        note = make_note("nodomain-recipient", NOTE_NODOMAIN_RECIPIENT, rcpt=mailbox.local_part)
        return Address(AddressClass.LOCAL_UNKNOWN, mailbox, mailbox.local_part, notes=(note,))
    address = _classify(policy, mailbox, _parse_notes(text, mailbox, path.source_route))
    if address.cls is AddressClass.LOCAL_UNKNOWN:
        extra: list[Note] = []
        if mailbox.local_part.lower() == "postmaster":
            extra.append(make_note("postmaster-alias", NOTE_POSTMASTER_ALIAS, address=address.key))
        if not policy.gateway_mode:
            extra.append(make_note("mailserver", NOTE_MAILSERVER, address=address.key))
        if extra:
            return Address(
                address.cls,
                mailbox,
                address.key,
                address.domain,
                None,
                address.notes + tuple(extra),
            )
    return address
