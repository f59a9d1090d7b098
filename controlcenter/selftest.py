"""The built-in open-relay self-test: a battery of simulated sessions derived from the policy.

Nothing is sent anywhere: every probe is a :class:`~controlcenter.simulation.Session` evaluated
by :func:`~controlcenter.simulation.evaluate_session`. Addresses use the documentation network
(``203.0.113.50``, ``192.0.2.1``) and the reserved ``.invalid`` top-level domain.

Clients: an **outside** client (``203.0.113.50``) and, when given, a **LAN** client.

Senders, for each client (duplicates dropped):

- a forged sender in every managed domain, ``selftest-probe-<6 hex>@DOMAIN`` (the hex digits are
  derived from the domain, so runs are repeatable);
- for every wildcard alias, a local part it matches (``2009*@d.jp`` gives ``2009probe<hex>@d.jp``);
- the first three exact aliases (real addresses that anyone can forge);
- an outside sender ``probe@relay-test.invalid``, the null sender ``<>`` and an empty MAIL FROM.

Recipients, in every session: ``victim@relay-test.invalid``, its case/trailing-dot variant
``victim@RELAY-TEST.INVALID.``, an IP literal ``victim@[192.0.2.1]``, and for every managed
domain D the tricks of spec §7: ``victim%relay-test.invalid@D``,
``"victim@relay-test.invalid"@D``, ``victim@relay-test.invalid@D``,
``<@D:victim@relay-test.invalid>``, ``relay-test.invalid!victim@D``, ``victim@notD``,
``victim@D.relay-test.invalid``, ``victim@selftest.D``, plus one real local address of D
(inbound mail, which must keep working).

Address probes (derived from the rules' address space, :mod:`relaypolicy.addrspace`): for every
client-IP line, addresses sampled from the set that reaches it first — its first and last
address, the neighbours just outside each range, both sides of every octet step inside it
(/24, /16, /8; for IPv6 every 16 bits) and three seeded random ones — plus public addresses that
no line but a catch-all matches (``8.8.8.8``, ``1.1.1.1``, ``2001:4860:4860::8888`` and samples
of any public space no line matches). Each address goes to the line that decides for it. A
**public** address (``is_global``) carries the expectation "an outside client never relays",
except when its line is a declared outside site within the limit; for every distinct deciding
line the whole sender × recipient battery above is run once from the first public address
that reached it, and every address of that line shares the verdict. Private addresses are
counted (they show which ranges were covered) but may relay: that is what a LAN line is for.
The report says how many address probes ran, how many were public, and which ranges of which
line they covered. Deterministic: the random samples are seeded by the line number.

Expectations and finding codes (stable, never reused):

============  ========  ===================================================================
code          level     meaning
============  ========  ===================================================================
selftest.E001 error     an outside client relayed (any sender, any recipient form)
selftest.W001 warning   a recipient still holding routing characters (``%``, ``!``, ``@``,
                        quotes) was delivered through a wildcard alias: the inner server
                        decides what happens next
selftest.W002 warning   the LAN client relays for the null or the empty sender
selftest.W003 warning   an outside sender cannot deliver inbound mail to a real local address
selftest.I001 info      the LAN client cannot relay for a real local sender
============  ========  ===================================================================

A probe **passes** when it has no error finding; warnings are reported but do not fail it.
Each E001 names what to change: the trusting line (``line 5 `*.*.*.* true` lets 203.0.113.50
relay: change it to norelay``) or, when the built-in table relayed a forged local sender, the
alias that made it local and the missing or wrong catch-all line.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aliases.aliasfile import Alias, AliasKind
from controlcenter.findings import Finding, Level, make, sort_findings
from controlcenter.findings import gettext_noop as _
from controlcenter.simulation import (
    Policy,
    RcptResult,
    Reason,
    Session,
    SessionResult,
    evaluate_session,
)
from relaypolicy.addrspace import (
    address_text,
    analyse,
    bisect_ranges,
    global_space,
    sample_space,
    space_text,
)
from relaypolicy.effectfile import CLIENT_KINDS, EffectLine, LineKind, Modifier

OUTSIDE_IP: Final = "203.0.113.50"
TRICK_DOMAIN: Final = "relay-test.invalid"
VICTIM: Final = f"victim@{TRICK_DOMAIN}"
OUTSIDE_SENDER: Final = f"probe@{TRICK_DOMAIN}"
EXACT_ALIAS_SENDERS: Final = 3

Translate = Callable[[str], str]


def _identity(message: str) -> str:
    return message


class ClientKind(StrEnum):
    OUTSIDE = "outside"
    LAN = "lan"


class SenderKind(StrEnum):
    FORGED = "forged"  # a made-up local part in a managed domain
    WILDCARD = "wildcard"  # a made-up local part a wildcard alias matches
    ALIAS = "alias"  # a real exact alias
    OUTSIDE = "outside"  # an address in a foreign domain
    NULL = "null"
    EMPTY = "empty"


class RecipientKind(StrEnum):
    PLAIN = "plain"
    CASE_DOT = "case-dot"
    IP_LITERAL = "ip-literal"
    PERCENT = "percent"
    QUOTED = "quoted"
    DOUBLE_AT = "double-at"
    SOURCE_ROUTE = "source-route"
    BANG = "bang"
    LOOKALIKE_PREFIX = "lookalike-prefix"
    LOOKALIKE_SUFFIX = "lookalike-suffix"
    SUBDOMAIN = "subdomain"
    INBOUND = "inbound"  # a real local address: inbound mail must be delivered


@dataclass(frozen=True, slots=True)
class ProbeRecipient:
    address: str
    kind: RecipientKind
    domain: str = ""  # the managed domain the trick was built against


@dataclass(frozen=True, slots=True)
class Probe:
    """One simulated session and what it must show."""

    client: ClientKind
    sender: SenderKind
    session: Session
    recipients: tuple[ProbeRecipient, ...]
    source: str = ""  # the alias pattern or managed domain the sender was built from
    expectation: str = ""  # an English template, see EXPECT_*

    def as_dict(self, translate: Translate = _identity) -> dict[str, object]:
        return {
            "client": self.client.value,
            "sender": self.sender.value,
            "source": self.source,
            "expectation": translate(self.expectation),
            "session": self.session.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class ProbeResult:
    probe: Probe
    result: SessionResult
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return not any(finding.level is Level.ERROR for finding in self.findings)

    @property
    def severity(self) -> Level | None:
        """The highest level among the findings; None for a clean probe."""
        return max((finding.level for finding in self.findings), default=None)

    @property
    def outside_relay(self) -> bool:
        return any(finding.code == E001 for finding in self.findings)

    def as_dict(self, translate: Translate = _identity) -> dict[str, object]:
        return {
            "probe": self.probe.as_dict(translate),
            "passed": self.passed,
            "severity": self.severity.label if self.severity is not None else None,
            "result": self.result.as_dict(translate),
            "findings": [finding.as_dict(translate) for finding in self.findings],
        }


@dataclass(frozen=True, slots=True)
class AddressProbe:
    """One client address sampled from the rules' address space, and what it showed."""

    address: str
    sampled_from: int | None  # the line whose reachable set it came from; None: outside all
    line: int | None  # the client line that decides for it; None: no client line matches
    public: bool
    declared: bool  # decided by a declared outside site within the limit
    relayed: bool  # the battery from this line's first public address relayed somewhere

    @property
    def passed(self) -> bool:
        return not (self.public and self.relayed and not self.declared)

    def as_dict(self) -> dict[str, object]:
        return {
            "address": self.address,
            "sampled_from": self.sampled_from,
            "line": self.line,
            "public": self.public,
            "declared": self.declared,
            "relayed": self.relayed,
            "passed": self.passed,
        }


@dataclass(frozen=True, slots=True)
class RangeCoverage:
    """Which ranges of one line the address probes covered (``line`` None: outside all)."""

    line: int | None
    ranges: str
    probes: int
    public_probes: int

    def as_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "ranges": self.ranges,
            "probes": self.probes,
            "public_probes": self.public_probes,
        }


@dataclass(frozen=True, slots=True)
class SelftestReport:
    results: tuple[ProbeResult, ...]
    outside_ip: str
    lan_ip: str | None = None
    addresses: tuple[AddressProbe, ...] = ()
    coverage: tuple[RangeCoverage, ...] = ()

    @property
    def public_probe_count(self) -> int:
        return sum(1 for probe in self.addresses if probe.public)

    @property
    def address_failures(self) -> tuple[AddressProbe, ...]:
        return tuple(probe for probe in self.addresses if not probe.passed)

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> tuple[ProbeResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    @property
    def outside_relay_failures(self) -> tuple[ProbeResult, ...]:
        """Probes in which an outside client relayed: the export and the lint refuse these."""
        return tuple(result for result in self.results if result.outside_relay)

    def as_dict(self, translate: Translate = _identity) -> dict[str, object]:
        return {
            "outside_ip": self.outside_ip,
            "lan_ip": self.lan_ip,
            "passed": self.passed,
            "probes": len(self.results),
            "failures": len(self.failures),
            "address_probes": len(self.addresses),
            "public_address_probes": self.public_probe_count,
            "address_failures": len(self.address_failures),
            "coverage": [item.as_dict() for item in self.coverage],
            "findings": [f.as_dict(translate) for f in selftest_findings(self)],
            "results": [result.as_dict(translate) for result in self.results],
        }


E001: Final = "selftest.E001"
W001: Final = "selftest.W001"
W002: Final = "selftest.W002"
W003: Final = "selftest.W003"
I001: Final = "selftest.I001"

EXPECT_OUTSIDE: Final = _(
    "an outside client must never relay, whatever the sender or the recipient's disguise"
)
EXPECT_OUTSIDE_INBOUND: Final = _(
    "an outside client must never relay, but its mail for real local addresses is delivered"
)
EXPECT_LAN_NULL: Final = _("a LAN client must not relay for the null or the empty sender")
EXPECT_LAN_LOCAL: Final = _(
    "a LAN client may relay for local senders; disguised recipients must not be delivered blindly"
)

MSG_TRUSTED: Final = _(
    "an outside client (%(client)s) can relay to %(rcpt)s: line %(number)s `%(text)s` trusts it"
)
MSG_WILDCARD: Final = _(
    "an outside client (%(client)s) can relay to %(rcpt)s with the forged sender %(sender)s: "
    "alias %(alias)s makes every forged sender in %(domain)s local"
)
MSG_EXACT: Final = _(
    "an outside client (%(client)s) can relay to %(rcpt)s with the forged sender %(sender)s: "
    "alias %(alias)s is a real local address that anyone can forge"
)
MSG_RELAY: Final = _("an outside client (%(client)s) can relay to %(rcpt)s (%(reason)s)")
HINT_CLIENT_LINE: Final = _(
    "line %(number)s `%(text)s` lets %(client)s relay: change it to norelay"
)
HINT_SENDER_LINE: Final = _(
    "line %(number)s `%(text)s` trusts a sender that anyone can forge: remove it or change it "
    "to norelay"
)
HINT_DEFAULT_LINE: Final = _(
    "line %(number)s `%(text)s` applies the built-in table to %(client)s: change it to norelay"
)
HINT_IGNORED_LINE: Final = _(
    "line %(number)s `%(text)s` acts as default because the daemon does not recognise its "
    "modifier: write `%(pattern)s norelay` with exactly one space"
)
HINT_TERMINATOR: Final = _(
    "no line matches %(client)s: add the norelay terminator `*.*.*.* norelay` as the last line"
)
HINT_TERMINATOR_AFTER: Final = _(
    "no line matches %(client)s: add the norelay terminator `*.*.*.* norelay` as the last "
    "line, after line %(last)s `%(last_text)s`"
)
MSG_ROUTING: Final = _(
    "%(rcpt)s was accepted for local delivery through alias %(alias)s although its local part "
    "%(local)s still holds routing characters (%(chars)s): the inner server decides what "
    "happens next"
)
HINT_ROUTING: Final = _(
    "make sure the inner server refuses percent-hack, bang-path and quoted routing, or replace "
    "the wildcard alias by one alias per real address"
)
MSG_LAN_NULL: Final = _(
    "the LAN client %(client)s relays to %(rcpt)s for the %(sender)s sender (line %(number)s)"
)
HINT_LAN_NULL: Final = _(
    "keep `#<> default` and `#blank false` as the first two lines, above the LAN lines"
)
MSG_INBOUND: Final = _(
    "an outside sender cannot deliver to the local address %(rcpt)s (%(reply)s): inbound mail "
    "is refused"
)
HINT_INBOUND_FALSE: Final = _(
    "line %(number)s `%(text)s` refuses all outside mail, inbound included: use norelay instead "
    "of false"
)
HINT_INBOUND: Final = _("check the lines above the terminator and the aliases of %(domain)s")
MSG_LAN_BLOCKED: Final = _(
    "the LAN client %(client)s cannot relay to %(rcpt)s for the real local sender %(sender)s "
    "(%(reply)s): staff on the LAN need SMTP AUTH to send out"
)
HINT_LAN_BLOCKED: Final = _(
    "if the LAN should relay, add `%(client)s default` (or its network) above the terminator"
)


# --- building the battery --------------------------------------------------------------------


def _tag(text: str) -> str:
    """Six hex digits derived from ``text``: random-looking, but the same on every run."""
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _wildcard_address(alias: Alias) -> str:
    prefix, _star, suffix = alias.local_part.partition("*")
    return f"{prefix}probe{_tag(alias.pattern)}{suffix}@{alias.domain}"


def _managed_domains(policy: Policy) -> list[str]:
    wildcard_domains = {
        alias.domain for alias in policy.aliases.aliases if alias.kind is not AliasKind.EXACT
    }
    return sorted(policy.local_domains | wildcard_domains)


def _senders(policy: Policy, domains: list[str]) -> list[tuple[SenderKind, str, str]]:
    """(kind, MAIL FROM, source) for every sender of the battery, without duplicates."""
    senders = [
        (SenderKind.FORGED, f"selftest-probe-{_tag(domain)}@{domain}", domain) for domain in domains
    ]
    exact: list[Alias] = []
    for alias in policy.aliases.aliases:
        if alias.kind is AliasKind.EXACT:
            if len(exact) < EXACT_ALIAS_SENDERS:
                exact.append(alias)
        elif alias.domain:
            senders.append((SenderKind.WILDCARD, _wildcard_address(alias), alias.pattern))
    senders.extend((SenderKind.ALIAS, alias.pattern, alias.pattern) for alias in exact)
    senders += [
        (SenderKind.OUTSIDE, OUTSIDE_SENDER, ""),
        (SenderKind.NULL, "<>", ""),
        (SenderKind.EMPTY, "", ""),
    ]
    seen: set[str] = set()
    unique = []
    for kind, address, source in senders:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append((kind, address, source))
    return unique


def _inbound_addresses(policy: Policy, domains: list[str]) -> dict[str, str]:
    """A real local address per domain: its first exact alias, else one its wildcard takes."""
    found: dict[str, str] = {}
    wanted = set(domains)
    for alias in policy.aliases.aliases:
        domain = alias.domain
        if domain not in wanted or (domain in found and alias.kind is not AliasKind.EXACT):
            continue
        if alias.kind is AliasKind.EXACT:
            found[domain] = alias.pattern
            wanted.discard(domain)
            if not wanted:
                break
        else:
            found[domain] = _wildcard_address(alias)
    return found


def _recipients(policy: Policy, domains: list[str]) -> tuple[ProbeRecipient, ...]:
    t = TRICK_DOMAIN
    recipients = [
        ProbeRecipient(VICTIM, RecipientKind.PLAIN),
        ProbeRecipient(f"victim@{t.upper()}.", RecipientKind.CASE_DOT),
        ProbeRecipient("victim@[192.0.2.1]", RecipientKind.IP_LITERAL),
    ]
    inbound = _inbound_addresses(policy, domains)
    for d in domains:
        recipients += [
            ProbeRecipient(f"victim%{t}@{d}", RecipientKind.PERCENT, d),
            ProbeRecipient(f'"victim@{t}"@{d}', RecipientKind.QUOTED, d),
            ProbeRecipient(f"victim@{t}@{d}", RecipientKind.DOUBLE_AT, d),
            ProbeRecipient(f"<@{d}:victim@{t}>", RecipientKind.SOURCE_ROUTE, d),
            ProbeRecipient(f"{t}!victim@{d}", RecipientKind.BANG, d),
            ProbeRecipient(f"victim@not{d}", RecipientKind.LOOKALIKE_PREFIX, d),
            ProbeRecipient(f"victim@{d}.{t}", RecipientKind.LOOKALIKE_SUFFIX, d),
            ProbeRecipient(f"victim@selftest.{d}", RecipientKind.SUBDOMAIN, d),
        ]
        if d in inbound:
            recipients.append(ProbeRecipient(inbound[d], RecipientKind.INBOUND, d))
    return tuple(recipients)


def build_probes(
    policy: Policy, *, lan_ip: str | None = None, outside_ip: str = OUTSIDE_IP
) -> list[Probe]:
    """The battery for ``policy``: every sender from the outside client, then from the LAN."""
    domains = _managed_domains(policy)
    recipients = _recipients(policy, domains)
    rcpt_to = tuple(recipient.address for recipient in recipients)
    clients = [(ClientKind.OUTSIDE, outside_ip)]
    if lan_ip:
        clients.append((ClientKind.LAN, lan_ip))
    probes = []
    for client, ip in clients:
        for kind, sender, source in _senders(policy, domains):
            if client is ClientKind.OUTSIDE:
                expect = EXPECT_OUTSIDE_INBOUND if kind is SenderKind.OUTSIDE else EXPECT_OUTSIDE
            else:
                null = kind in (SenderKind.NULL, SenderKind.EMPTY)
                expect = EXPECT_LAN_NULL if null else EXPECT_LAN_LOCAL
            session = Session(ip, sender, rcpt_to)
            probes.append(Probe(client, kind, session, recipients, source, expect))
    return probes


# --- judging ------------------------------------------------------------------------------------


def run_selftest(
    policy: Policy, *, lan_ip: str | None = None, outside_ip: str = OUTSIDE_IP
) -> SelftestReport:
    """Evaluate the battery against ``policy`` and judge every probe; never raises."""
    probes = build_probes(policy, lan_ip=lan_ip, outside_ip=outside_ip)
    results = [_run(policy, probe) for probe in probes]
    addresses, coverage, extra = _address_probes(policy, probes, results, outside_ip)
    return SelftestReport(tuple(results + extra), outside_ip, lan_ip, addresses, coverage)


def _run(policy: Policy, probe: Probe) -> ProbeResult:
    result = evaluate_session(policy, probe.session)
    return ProbeResult(probe, result, tuple(_judge(policy, probe, result)))


#: Public addresses probed whatever the rules say (outside every rule but a catch-all).
WELL_KNOWN_PUBLIC: Final = ("8.8.8.8", "1.1.1.1", "2001:4860:4860::8888")


def _address_probes(
    policy: Policy, battery: list[Probe], results: list[ProbeResult], outside_ip: str
) -> tuple[tuple[AddressProbe, ...], tuple[RangeCoverage, ...], list[ProbeResult]]:
    """Sample every client line's reachable set, decide each address, and run the outside
    battery for the lines public addresses reach (see the module docstring).

    The battery's verdicts depend on the deciding client line only through its effective
    modifier and through which battery senders' sender lines come before it, so lines alike
    in both share one run; only lines whose kind relays get runs of their own (for findings
    that name them). The cost stays linear in lines, not lines x battery."""
    analysis = analyse(policy.effect.rules)
    public_space = global_space()
    limit = policy.outside_site_limit
    declared = {
        reach.number
        for reach in analysis.lines
        if reach.number in policy.outside_sites and reach.public.size() <= limit
    }
    samples: list[tuple[int | None, int, int]] = []
    coverage: list[tuple[int | None, str, int, int]] = []
    for reach in analysis.lines:
        points = sample_space(reach.reachable, seed=str(reach.number))
        samples += [(reach.number, version, value) for version, value in points]
        public = sum(1 for v, x in points if bisect_ranges(public_space.ranges(v), x))
        coverage.append((reach.number, space_text(reach.reachable), len(points), public))
    outside = [
        (ip.version, int(ip)) for ip in map(ipaddress.ip_address, WELL_KNOWN_PUBLIC)
    ] + sample_space(analysis.unmatched_public, seed="unmatched")
    samples += [(None, version, value) for version, value in outside]
    coverage.append(
        (None, space_text(analysis.unmatched_public) or "—", len(outside), len(outside))
    )

    outside_battery = [probe for probe in battery if probe.client is ClientKind.OUTSIDE]
    sender_lines = [policy.sender_line(probe.session.mail_from) for probe in outside_battery]

    def kind_of(line: EffectLine | None) -> tuple[object, ...]:
        number = line.number if line is not None else 1 << 62
        effective = line.effective if line is not None else Modifier.DEFAULT
        return (effective, *(s is not None and s.number < number for s in sender_lines))

    outside_line = policy.client_line(outside_ip)
    base_relayed = any(
        result.outside_relay for result in results if result.probe.client is ClientKind.OUTSIDE
    )
    relayed_by_kind: dict[tuple[object, ...], bool] = {kind_of(outside_line): base_relayed}
    relayed_by_line: dict[int | None, bool] = {_number(outside_line): base_relayed}
    extra: list[ProbeResult] = []
    probes: list[AddressProbe] = []
    for sampled_from, version, value in samples:
        address = address_text(version, value)
        line = policy.client_line(address)
        number = _number(line)
        public = bisect_ranges(public_space.ranges(version), value)
        is_declared = number in declared
        if public and not is_declared and number not in relayed_by_line:
            kind = kind_of(line)
            if relayed_by_kind.get(kind, True):
                ran = [_run(policy, _with_client(probe, address)) for probe in outside_battery]
                extra += ran
                relayed_by_kind[kind] = relayed_by_line[number] = any(
                    result.outside_relay for result in ran
                )
            else:
                relayed_by_line[number] = False
        relayed = relayed_by_line.get(number, False) if public else False
        probes.append(AddressProbe(address, sampled_from, number, public, is_declared, relayed))
    ranges = tuple(
        RangeCoverage(number, text, count, public) for number, text, count, public in coverage
    )
    return tuple(probes), ranges, extra


def _number(line: EffectLine | None) -> int | None:
    return line.number if line is not None else None


def _with_client(probe: Probe, address: str) -> Probe:
    session = Session(address, probe.session.mail_from, probe.session.rcpt_to, probe.session.auth)
    return Probe(
        probe.client, probe.sender, session, probe.recipients, probe.source, probe.expectation
    )


def _sender_text(probe: Probe) -> str:
    mail_from = probe.session.mail_from
    if probe.sender is SenderKind.NULL:
        return "null (<>)"
    if probe.sender is SenderKind.EMPTY:
        return "empty"
    return mail_from


def _judge(policy: Policy, probe: Probe, result: SessionResult) -> Iterator[Finding]:
    client = probe.session.client_ip
    for recipient, answer in zip(probe.recipients, result.rcpt, strict=True):
        if answer.verdict == "relay":
            if probe.client is ClientKind.OUTSIDE:
                yield _outside_relay(policy, probe, result, answer)
            elif probe.sender in (SenderKind.NULL, SenderKind.EMPTY):
                yield make(
                    Level.WARNING,
                    W002,
                    MSG_LAN_NULL,
                    line=answer.rule.line if answer.rule else None,
                    hint=HINT_LAN_NULL,
                    client=client,
                    rcpt=answer.address,
                    sender=_sender_text(probe),
                    number=answer.rule.line if answer.rule else "-",
                )
        elif answer.verdict == "deliver" and answer.alias is not None and answer.alias.wildcard:
            mailbox = answer.mailbox
            if mailbox is not None and mailbox.routing_chars:
                yield make(
                    Level.WARNING,
                    W001,
                    MSG_ROUTING,
                    hint=HINT_ROUTING,
                    obj=f"alias:{answer.alias.pattern}",
                    rcpt=answer.address,
                    alias=answer.alias.pattern,
                    local=mailbox.local_part,
                    chars=" ".join(mailbox.routing_chars),
                )
        if answer.verdict == "reject":
            if (
                probe.client is ClientKind.OUTSIDE
                and probe.sender is SenderKind.OUTSIDE
                and recipient.kind is RecipientKind.INBOUND
            ):
                yield _inbound_refused(result, answer, recipient)
            elif (
                probe.client is ClientKind.LAN
                and probe.sender is SenderKind.ALIAS
                and recipient.kind is RecipientKind.PLAIN
            ):
                yield make(
                    Level.INFO,
                    I001,
                    MSG_LAN_BLOCKED,
                    line=answer.rule.line if answer.rule else None,
                    hint=HINT_LAN_BLOCKED,
                    client=client,
                    rcpt=answer.address,
                    sender=probe.session.mail_from,
                    reply=answer.reply,
                )


def _outside_relay(
    policy: Policy, probe: Probe, result: SessionResult, answer: RcptResult
) -> Finding:
    client = probe.session.client_ip
    sender = _sender_text(probe)
    line = _effect_line(policy, answer.rule.line) if answer.rule else None
    alias = result.mail.alias
    obj = f"alias:{alias.pattern}" if alias is not None else ""
    common = {"client": client, "rcpt": answer.address, "sender": sender}

    if answer.reason is Reason.TRUSTED and line is not None:
        client_line = line.pattern_kind in CLIENT_KINDS
        return make(
            Level.ERROR,
            E001,
            MSG_TRUSTED,
            line=line.number,
            hint=HINT_CLIENT_LINE if client_line else HINT_SENDER_LINE,
            number=line.number,
            text=line.text,
            **common,
        )
    if answer.reason is Reason.LOCAL_SENDER and alias is not None:
        if line is None:
            rules = [ln for ln in policy.effect.lines if ln.kind is LineKind.RULE]
            hint = HINT_TERMINATOR_AFTER if rules else HINT_TERMINATOR
            extra: dict[str, object] = (
                {"last": rules[-1].number, "last_text": rules[-1].text} if rules else {}
            )
        elif line.modifier is Modifier.DEFAULT:
            hint, extra = HINT_DEFAULT_LINE, {"number": line.number, "text": line.text}
        else:
            hint = HINT_IGNORED_LINE
            extra = {"number": line.number, "text": line.text, "pattern": line.pattern}
        return make(
            Level.ERROR,
            E001,
            MSG_WILDCARD if alias.wildcard else MSG_EXACT,
            line=line.number if line is not None else None,
            hint=hint,
            obj=obj,
            alias=alias.pattern,
            domain=alias.pattern.rpartition("@")[2],
            **extra,
            **common,
        )
    return make(
        Level.ERROR,
        E001,
        MSG_RELAY,
        line=line.number if line is not None else None,
        obj=obj,
        reason=answer.reason.value,
        **common,
    )


def _inbound_refused(
    result: SessionResult, answer: RcptResult, recipient: ProbeRecipient
) -> Finding:
    line = result.mail.rule
    refused_by_false = result.mail.verdict == "reject" and line is not None
    return make(
        Level.WARNING,
        W003,
        MSG_INBOUND,
        line=line.line if line is not None else None,
        hint=HINT_INBOUND_FALSE if refused_by_false else HINT_INBOUND,
        rcpt=answer.address,
        reply=answer.reply if answer.stage == "rcpt" else result.mail.reply,
        number=line.line if line is not None else "-",
        text=line.text if line is not None else "",
        domain=recipient.domain,
    )


def _effect_line(policy: Policy, number: int) -> EffectLine | None:
    lines = policy.effect.lines
    if 1 <= number <= len(lines) and lines[number - 1].number == number:
        return lines[number - 1]
    return next((line for line in lines if line.number == number), None)


def selftest_findings(report: SelftestReport) -> list[Finding]:
    """The report's findings for the lint and the export, one per distinct cause.

    Findings with the same code, line, object and hint describe the same fix; the first one
    found is kept as the example. Errors first (``selftest.E001`` blocks an export).
    """
    seen: set[tuple[str, int | None, str, str]] = set()
    unique: list[Finding] = []
    for result in report.results:
        for finding in result.findings:
            key = (finding.code, finding.line, finding.obj, finding.render_hint())
            if key not in seen:
                seen.add(key)
                unique.append(finding)
    return sort_findings(unique)
