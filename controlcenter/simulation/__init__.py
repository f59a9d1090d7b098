"""The relay decision: what the gateway answers to one SMTP session, without Django.

``compile_policy`` indexes effect.dat, the aliases and the managed local domains once;
``evaluate_session`` then answers MAIL FROM and every RCPT TO of a :class:`Session` exactly as
the exported files would make the daemon behave (``../shared/spec/epost-relay.md`` §3, §7).

Classes of address
==================

Every address is read strictly by :func:`controlcenter.smtppath.parse_path` (a source route is
ignored: the final mailbox decides; the domain is lower-cased and loses one trailing dot) and
then classified:

==============  ===========================================================================
local-existing  an alias matches it (first match in storage order), or the recipient is the
                RFC 5321 special ``<postmaster>``
local-unknown   its domain is a managed local domain, but no alias matches
external        anything else: other domains, look-alikes (``notdomain.jp``,
                ``domain.jp.evil.example``, subdomains) and IP literals (``[192.0.2.1]``)
null / empty    the senders ``<>`` and an empty ``MAIL FROM:``; both behave as external
==============  ===========================================================================

The decision
============

1. **MAIL FROM.** An unparsable path is refused with ``501``. Otherwise the first effect.dat
   line matching the client IP or the envelope sender decides (no match means ``default``);
   ``false`` refuses here. A refused MAIL FROM makes every recipient ``reject`` (stage ``mail``).
2. **RCPT TO**, each recipient on its own, checked in this order:

   a. an unparsable path: ``501``;
   b. a local-unknown recipient: ``550 5.1.1``, whatever the modifier and AUTH;
   c. ``true`` (also a bare pattern, and ``only``): local-existing → deliver, external → relay;
   d. the built-in table, for ``default``, ``norelay``, ``norelay,1``, ``norelay,2``,
      ``norelay,0``, an unrecognised modifier and no match at all. *A* is "SMTP AUTH succeeded
      and the modifier is not ``norelay,0``":

      =====================  ==================  ========================================
      sender \\ recipient     local-existing      external
      =====================  ==================  ========================================
      local-existing         deliver             relay under ``default`` or with *A*,
                                                 else refused (``550 5.7.1``)
      local-unknown          deliver with *A*,   relay with *A*, else refused
                             else refused        (``550 5.7.1``)
                             (``550 5.1.0``)
      external, null, empty  deliver             relay with *A*, else refused (``550 5.7.1``)
      =====================  ==================  ========================================

Where the vendor is silent the simulator takes the reading under which **more** mail is
accepted and relayed (spec §3.1), and says so in a note:

- a sender without a domain (``<spamtest>``, ``<host!user>``) is accepted at MAIL FROM, is
  external for the built-in table and is matched by ``#nodomain`` lines (note
  ``nodomain-sender``); a recipient without a domain is refused as local-unknown
  (``550 5.1.1``, note ``nodomain-recipient``), except ``<postmaster>``, which is delivered;
- the ``*`` of a partial wildcard alias matches zero or more characters: ``2009*@domain.jp``
  matches ``2009@domain.jp`` (note ``empty-wildcard``);
- an authenticated session counts as a known sender, so it may relay and deliver under
  ``true``, ``default`` and ``norelay`` whatever its sender's class (not under ``norelay,0``,
  where AUTH changes nothing);
- quotes that are not needed are removed before matching: ``"alice"@domain.jp`` is
  ``alice@domain.jp`` (note ``quoted``);
- an address literal (``[192.0.2.1]``) is a domain "without a dot" and "all digits", so it is
  matched by ``#host`` and ``#number`` (note ``literal-keyword``);
- ``<IP> false`` lines the daemon appended below a final ``norelay`` catch-all are simulated
  above it, where the export puts them (note ``appended``); any other tail stays below;
- client addresses are compared as Python writes them (RFC 5952 for IPv6, no leading zeros),
  also by wildcard lines, which compare text (note ``client-text`` when the input differed);
- ``only`` is simulated as ``true`` for the sessions it matches (the manuals disagree).

``<postmaster>`` is a local-existing recipient; the sender given to effect.dat's sender lines
is the parsed final mailbox (``User@Domain.JP.`` matches ``domain.jp``).

Replies
=======

All wording is the simulator's own (ours), except the ``false`` reply, which is the vendor's::

    250 2.1.0 Sender OK                                         MAIL accepted
    501 5.1.7 Bad sender address syntax                         MAIL path unparsable
    550 5.1.7 Please, mail from a valid IP or Domain address.   MAIL refused by ``false`` (doc)
    503 5.5.1 Need MAIL command                                 RCPT after a refused MAIL FROM
    501 5.1.3 Bad recipient address syntax                      RCPT path unparsable
    250 2.1.5 Recipient OK                                      deliver or relay
    550 5.1.1 User unknown                                      local-unknown recipient
    550 5.1.0 Sender address rejected: User unknown             local-unknown sender, local rcpt
    550 5.7.1 Relaying denied                                   external recipient refused

Worked example (the vendor's hardened file; the domain ``example.co.jp`` has the wildcard alias
``*@example.co.jp -> *@example.co.jp``)::

    1  #<> default
    2  #blank false
    3  192.168.1.0/24 default
    4  *.*.*.* norelay

    client 203.0.113.50, MAIL FROM:<anyone@example.co.jp>      accept, line 4 (norelay)
      RCPT TO:<victim@relay-test.invalid>                       reject 550 5.7.1 Relaying denied
      RCPT TO:<boss@example.co.jp>                              deliver (local-existing)
      RCPT TO:<victim%relay-test.invalid@example.co.jp>         deliver, with the note that
                                                                the inner server decides
    client 192.168.1.20, same sender and first recipient        relay (line 3, default table:
                                                                the sender is local-existing)

Without line 4, the outside client matches nothing, the built-in table applies and the forged
sender relays: the open relay of the seed. Notes (:class:`Note`) explain such details; their
codes are stable, their messages are English templates for the web layer to translate:

- about an address: ``syntax``, ``source-route``, ``quoted``, ``trailing-dot``, ``ip-literal``,
  ``lookalike``, ``postmaster``, ``postmaster-alias``, ``mailserver``, ``nodomain-sender``,
  ``nodomain-recipient``, ``empty-wildcard``, ``literal-keyword``, and ``routing`` (a
  delivered local part still holding ``%``, ``!``, ``@`` or quotes: the inner server decides);
- about the session: ``client-ip``, ``client-text``, ``no-match``, ``false``,
  ``ignored-modifier``, ``only``, ``appended``, ``mail-refused``;
- about a verdict: ``trusted``, ``forgeable-sender``, ``auth``, ``auth-ignored``,
  ``unknown-sender``.

A :class:`Policy` caches what each distinct address, sender and client IP means, so a batch
pays for parsing and alias lookup once per address (each cache is bounded by ``CACHE_LIMIT``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Final, Literal

from aliases.aliasfile import Alias, AliasIndex, AliasKind, AliasMatch
from controlcenter.findings import gettext_noop as _
from controlcenter.smtppath import REPLY_RCPT, Mailbox, PathError, PathKind, parse_path
from relaypolicy.effectfile import (
    CLIENT_KINDS,
    CompiledRules,
    EffectFile,
    EffectLine,
    Modifier,
    PatternKind,
    compile_rules,
)

MailVerdict = Literal["accept", "reject"]
RcptVerdict = Literal["relay", "deliver", "reject"]
Stage = Literal["mail", "rcpt"]
Translate = Callable[[str], str]

REPLY_SENDER_OK: Final = "250 2.1.0 Sender OK"
REPLY_FALSE: Final = "550 5.1.7 Please, mail from a valid IP or Domain address."
REPLY_NEED_MAIL: Final = "503 5.5.1 Need MAIL command"
REPLY_RECIPIENT_OK: Final = "250 2.1.5 Recipient OK"
REPLY_USER_UNKNOWN: Final = "550 5.1.1 User unknown"
REPLY_SENDER_UNKNOWN: Final = "550 5.1.0 Sender address rejected: User unknown"
REPLY_RELAY_DENIED: Final = "550 5.7.1 Relaying denied"

#: Beyond this many entries a cache (senders, recipients, client IPs) starts over, so a long
#: batch of distinct addresses cannot grow memory without bound.
CACHE_LIMIT: Final = 65_536


class AddressClass(StrEnum):
    LOCAL_EXISTING = "local-existing"
    LOCAL_UNKNOWN = "local-unknown"
    EXTERNAL = "external"
    NULL = "null"
    EMPTY = "empty"
    INVALID = "invalid"


class Reason(StrEnum):
    """Why a verdict was given: a stable key for the UI and the self-test."""

    ACCEPTED = "accepted"
    SYNTAX = "syntax"
    REFUSED = "refused"  # a false line at MAIL FROM
    MAIL_REFUSED = "mail-refused"  # a recipient after a refused MAIL FROM
    UNKNOWN_RECIPIENT = "unknown-recipient"
    TRUSTED = "trusted"  # a true (bare, only) line
    LOCAL_RECIPIENT = "local-recipient"
    LOCAL_SENDER = "local-sender"  # relayed by the built-in table's local-sender row
    AUTH = "auth"
    UNKNOWN_SENDER = "unknown-sender"
    RELAY_DENIED = "relay-denied"


def _identity(message: str) -> str:
    return message


@dataclass(frozen=True, slots=True)
class Note:
    """A remark on a verdict: ``code`` is stable, ``message`` an English ``%``-template.

    ``nested`` names the params that are templates themselves (a parser's reason), translated
    along with the message.
    """

    code: str
    message: str
    params: tuple[tuple[str, object], ...] = ()
    nested: tuple[str, ...] = ()

    def render(self, translate: Translate = _identity) -> str:
        template = translate(self.message)
        if not self.params:
            return template
        values = dict(self.params)
        for name in self.nested:
            values[name] = translate(str(values[name]))
        return template % values

    def __str__(self) -> str:
        return self.render()


def _note(code: str, message: str, *, nested: tuple[str, ...] = (), **params: object) -> Note:
    return Note(code, message, tuple(sorted(params.items())), nested)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """The effect.dat line that decided: its 1-based number and its text as written."""

    line: int
    text: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "text": self.text}


@dataclass(frozen=True, slots=True)
class AliasRef:
    """The alias that made an address local: its pattern, the rewritten target, its position."""

    pattern: str
    target: str
    position: int
    wildcard: bool = False

    @classmethod
    def of(cls, match: AliasMatch) -> AliasRef:
        return cls(
            match.alias.pattern,
            match.target_text,
            match.position,
            match.alias.kind is not AliasKind.EXACT,
        )

    def as_dict(self) -> dict[str, object]:
        return {"pattern": self.pattern, "target": self.target, "position": self.position}


@dataclass(frozen=True, slots=True)
class Session:
    """One SMTP session: ``mail_from`` ``"<>"`` is the null sender, ``""`` an empty MAIL FROM."""

    client_ip: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    auth: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "client_ip": self.client_ip,
            "mail_from": self.mail_from,
            "rcpt_to": list(self.rcpt_to),
            "auth": self.auth,
        }


@dataclass(frozen=True, slots=True)
class MailResult:
    verdict: MailVerdict
    reply: str
    rule: RuleRef | None
    sender_class: AddressClass = AddressClass.EXTERNAL
    modifier: Modifier | None = None  # the effective modifier; None when no line was consulted
    alias: AliasRef | None = None
    mailbox: Mailbox | None = None
    notes: tuple[Note, ...] = ()
    reason: Reason = Reason.ACCEPTED

    def as_dict(self, translate: Translate = _identity) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "reply": self.reply,
            "rule": self.rule.as_dict() if self.rule else None,
            "notes": [note.render(translate) for note in self.notes],
            "class": self.sender_class.value,
            "modifier": self.modifier.value if self.modifier is not None else None,
            "mailbox": self.mailbox.address if self.mailbox is not None else None,
            "alias": self.alias.as_dict() if self.alias else None,
            "reason": self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class RcptResult:
    address: str
    verdict: RcptVerdict
    reply: str
    rule: RuleRef | None
    alias: AliasRef | None = None
    notes: tuple[Note, ...] = ()
    stage: Stage = "rcpt"
    address_class: AddressClass = AddressClass.EXTERNAL
    mailbox: Mailbox | None = None
    reason: Reason = Reason.RELAY_DENIED

    @property
    def note_codes(self) -> tuple[str, ...]:
        return tuple(note.code for note in self.notes)

    def as_dict(self, translate: Translate = _identity) -> dict[str, object]:
        return {
            "address": self.address,
            "verdict": self.verdict,
            "reply": self.reply,
            "rule": self.rule.as_dict() if self.rule else None,
            "notes": [note.render(translate) for note in self.notes],
            "stage": self.stage,
            "class": self.address_class.value,
            "alias": self.alias.as_dict() if self.alias else None,
            "mailbox": self.mailbox.address if self.mailbox is not None else None,
            "reason": self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class SessionResult:
    session: Session
    mail: MailResult
    rcpt: tuple[RcptResult, ...]

    @property
    def relayed(self) -> tuple[RcptResult, ...]:
        """The recipients accepted for an outside destination."""
        return tuple(result for result in self.rcpt if result.verdict == "relay")

    def as_dict(self, translate: Translate = _identity) -> dict[str, object]:
        """The ``simulate_relay`` JSON shape of ``../shared/spec/cli.md`` (plus extra keys)."""
        return {
            "mail": self.mail.as_dict(translate),
            "rcpt": [result.as_dict(translate) for result in self.rcpt],
        }


# --- notes -----------------------------------------------------------------------------------

NOTE_ROUTING: Final = _(
    "the local part %(local)s still contains routing characters (%(chars)s) and was accepted "
    "by alias %(alias)s: the inner server decides what happens next"
)
NOTE_SOURCE_ROUTE: Final = _(
    "the source route %(route)s was ignored: the final mailbox %(mailbox)s decides"
)
NOTE_POSTMASTER: Final = _("<postmaster> is the RFC 5321 special recipient: it is a local address")
NOTE_POSTMASTER_ALIAS: Final = _(
    "RFC 5321 requires %(address)s to be accepted: add an alias for it"
)
NOTE_IP_LITERAL: Final = _(
    "the IP-literal domain %(domain)s is never a managed local domain: treated as external"
)
NOTE_LOOKALIKE: Final = _(
    "%(domain)s only looks like the managed domain %(local)s: domains compare exactly, "
    "so it is external"
)
NOTE_TRAILING_DOT: Final = _("the trailing dot was removed: %(domain)s is compared as %(normal)s")
NOTE_QUOTED: Final = _("the quoted local part was read as %(local)s")
NOTE_PARSE: Final = _("unreadable path: %(reason)s")
NOTE_MAIL_REFUSED: Final = _("MAIL FROM was refused (%(reply)s), so no recipient is accepted")
NOTE_FALSE: Final = _("line %(line)s `%(text)s` refuses the session at MAIL FROM")
NOTE_NO_MATCH: Final = _("no effect.dat line matches: the built-in table (default) applies")
NOTE_IGNORED_MODIFIER: Final = _(
    "line %(line)s `%(text)s` acts as default: the daemon does not recognise its modifier "
    "or separator"
)
NOTE_ONLY: Final = _(
    "line %(line)s uses `only`, which the vendor's manuals describe inconsistently: "
    "simulated as true"
)
NOTE_BAD_CLIENT: Final = _("%(client)s is not an IP address: only wildcard lines can match it")
NOTE_FORGEABLE: Final = _(
    "relayed because the sender %(sender)s is local through alias %(alias)s: "
    "anyone can forge a local sender"
)
NOTE_TRUSTED: Final = _("line %(line)s `%(text)s` trusts the session: it may relay anywhere")
NOTE_AUTH: Final = _("relayed because the session is SMTP-authenticated")
NOTE_AUTH_IGNORED: Final = _("norelay,0 refuses relaying even after SMTP AUTH")
NOTE_UNKNOWN_SENDER: Final = _(
    "the sender %(sender)s is in the managed domain %(domain)s but matches no alias: "
    "the built-in table refuses it"
)
NOTE_NODOMAIN_SENDER: Final = _(
    "the sender %(sender)s has no domain: accepted at MAIL FROM and treated as external, "
    "matched by #nodomain lines (where the vendor is silent, the simulator takes the reading "
    "under which more mail is accepted)"
)
NOTE_NODOMAIN_RECIPIENT: Final = _(
    "the recipient %(rcpt)s has no domain: refused as an unknown local user"
)
NOTE_EMPTY_WILDCARD: Final = _(
    "alias %(alias)s matched %(address)s with its * standing for no characters (where the "
    "vendor is silent, the simulator takes the reading under which more mail is accepted)"
)
NOTE_LITERAL_KEYWORD: Final = _(
    "the address-literal domain %(domain)s counts as a domain without a dot (#host) and as all "
    "digits (#number), the reading under which more mail is accepted"
)
NOTE_APPENDED: Final = _(
    "line %(line)s `%(text)s` was appended by the daemon below the final line; it is simulated "
    "above it, where the export puts it"
)
NOTE_CLIENT_TEXT: Final = _(
    "the client address is compared as %(canonical)s (wildcard lines compare the address as text)"
)
NOTE_MAILSERVER: Final = _(
    "in mail-server mode a mailbox account may exist for %(address)s; the simulator knows "
    "aliases only"
)


# --- compiled policy -------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class Policy:
    """effect.dat, the aliases and the local domains, indexed once; build with
    :func:`compile_policy` and evaluate many sessions against it.

    ``rules`` answers "which line decides?" for any session. Evaluation asks the same question
    of two halves, client lines by IP and sender lines by sender, and keeps the earlier line:
    the same answer, but the sender half (the costly one: ``*@`` globs are tried one by one) is
    computed once per distinct sender and cached with the sender's classification.
    """

    effect: EffectFile
    rules: CompiledRules
    aliases: AliasIndex
    local_domains: frozenset[str]
    gateway_mode: bool
    _client_rules: CompiledRules = field(compare=False, repr=False)
    _sender_rules: CompiledRules = field(compare=False, repr=False)
    #: Whether a #host or #number line exists (an address-literal sender is then noted).
    keywords: bool = False
    #: effect.dat line numbers of rows declared 社外拠点 (trusted outside sites) and the most
    #: public addresses one may hold; the self-test expects these sites to relay.
    outside_sites: frozenset[int] = frozenset()
    outside_site_limit: int = 256
    #: The final norelay catch-all when the daemon appended ``<IP> false`` lines below it: those
    #: are simulated above it (spec §3.1), so it decides only when no other client line does.
    _terminator: EffectLine | None = field(default=None, compare=False, repr=False)
    _appended: frozenset[int] = field(default=frozenset(), compare=False, repr=False)
    _senders: dict[str, tuple[_Address, EffectLine | None]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _recipients: dict[str, _Address] = field(default_factory=dict, compare=False, repr=False)
    _clients: dict[str, EffectLine | None] = field(default_factory=dict, compare=False, repr=False)

    def _sender(self, text: str) -> tuple[_Address, EffectLine | None]:
        """The sender's classification and the first sender line matching it."""
        cached = self._senders.get(text)
        if cached is None:
            if len(self._senders) >= CACHE_LIMIT:
                self._senders.clear()
            address = _read_sender(self, text)
            line = None
            if address.cls is not AddressClass.INVALID:
                line = self._sender_rules.first_match("", address.key)
            cached = self._senders[text] = (address, line)
        return cached

    def _recipient(self, text: str) -> _Address:
        cached = self._recipients.get(text)
        if cached is None:
            if len(self._recipients) >= CACHE_LIMIT:
                self._recipients.clear()
            cached = self._recipients[text] = _read_recipient(self, text)
        return cached

    def sender_line(self, sender: str) -> EffectLine | None:
        """The first sender line (domain, address, keyword) matching the MAIL FROM ``sender``."""
        return self._sender(sender)[1]

    def client_line(self, client_ip: str) -> EffectLine | None:
        """The client line (IP, network, wildcard, catch-all) that decides for ``client_ip``
        before sender lines are considered; None when no client line matches."""
        return self._client_line(client_ip)

    def _client_line(self, client_ip: str) -> EffectLine | None:
        """The first client line (IP, network, wildcard, catch-all) matching ``client_ip``."""
        try:
            return self._clients[client_ip]
        except KeyError:
            pass
        if len(self._clients) >= CACHE_LIMIT:
            self._clients.clear()
        # The client-only index holds no "#<>" line, so the null sender adds nothing.
        try:
            address = ipaddress.ip_address(client_ip.strip())
        except ValueError:
            line = self._client_rules.first_match(client_ip, "<>")
        else:
            line = self._client_rules.first_match(str(address), "<>", address)
        if line is None:
            line = self._terminator
        self._clients[client_ip] = line
        return line


def canonical_client(client_ip: str) -> str:
    """The text the daemon is taken to compare wildcard lines with: Python's (RFC 5952, no
    leading zeros); anything that is not an IP address is kept as written."""
    address = _client_address(client_ip)
    return str(address) if address is not None else client_ip


@lru_cache(maxsize=4096)
def _client_address(client_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return None


def _domain_key(domain: str) -> str:
    return domain.strip().lower().removesuffix(".")


def compile_policy(
    *,
    effect: EffectFile,
    aliases: Sequence[Alias],
    local_domains: Iterable[str],
    gateway_mode: bool,
    outside_sites: Iterable[int] = (),
    outside_site_limit: int = 256,
) -> Policy:
    """Index ``effect``, ``aliases`` (in storage order) and the managed ``local_domains``;
    ``outside_sites`` are the line numbers of declared outside sites."""
    rules = effect.rules
    terminator, appended = _appended_tail(rules)
    clients = [
        line for line in rules if line.pattern_kind in CLIENT_KINDS and line is not terminator
    ]
    return Policy(
        effect,
        compile_rules(rules),
        AliasIndex.build(aliases),
        frozenset(_domain_key(domain) for domain in local_domains if domain.strip()),
        gateway_mode,
        compile_rules(clients),
        compile_rules(line for line in rules if line.pattern_kind not in CLIENT_KINDS),
        keywords=any(line.pattern in ("#host", "#number") for line in rules),
        outside_sites=frozenset(outside_sites),
        outside_site_limit=outside_site_limit,
        _terminator=terminator,
        _appended=frozenset(line.number for line in appended),
    )


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
                mailbox=mailbox.address,
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
                    address=mailbox.address,
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
            mailbox.address,
            domain,
            alias,
            tuple(notes),
            routing,
        )
    if domain in policy.local_domains:
        return _Address(
            AddressClass.LOCAL_UNKNOWN, mailbox, mailbox.address, domain, None, tuple(notes)
        )
    if mailbox.is_ip_literal:
        notes.append(_note("ip-literal", NOTE_IP_LITERAL, domain=domain))
    elif domain:
        imitated = _lookalike(policy, domain)
        if imitated is not None:
            notes.append(_note("lookalike", NOTE_LOOKALIKE, domain=domain, local=imitated))
    return _Address(AddressClass.EXTERNAL, mailbox, mailbox.address, domain, None, tuple(notes))


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
            extra.append(_note("postmaster-alias", NOTE_POSTMASTER_ALIAS, address=mailbox.address))
        if not policy.gateway_mode:
            extra.append(_note("mailserver", NOTE_MAILSERVER, address=mailbox.address))
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


@lru_cache(maxsize=4096)
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
    sender, sender_line = policy._sender(session.mail_from)
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

    line = policy._client_line(session.client_ip)
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
    if line is not None and line.number in policy._appended:
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
        session, mail, tuple(decide(text, policy._recipient(text)) for text in session.rcpt_to)
    )


def _all_refused(policy: Policy, session: Session, mail: MailResult) -> tuple[RcptResult, ...]:
    notes = (_note("mail-refused", NOTE_MAIL_REFUSED, reply=mail.reply),)
    results: list[RcptResult] = []
    for text in session.rcpt_to:
        rcpt = policy._recipient(text)
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
