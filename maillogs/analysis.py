"""What the logs say, without Django: aggregates, signs of relay abuse, the replay of logged
sessions through a policy, the move off the wildcard alias and the retry queue.

Vocabulary (``../shared/spec/epost-logs.md`` §4)
===============================================

- A **mail** is one inlog recipient (a line with three recipients counts three mails).
- A mail is **relayed** when its recipient's domain is not a managed local domain, else
  **delivered**.
- A client is **inside** when the caller's ``is_inside`` says so (the service: it matches an
  effect.dat line that lets it relay, or, when the policy has no such line yet, it is a private
  address); every other client is **outside**.
- **Abuse evidence**: a relayed mail from an outside client. It is **forged** when the sender
  claims a managed local domain (``forged_inbound`` counts the mails from outside claiming
  an inner sender that were delivered inside). Staff who relay from home without SMTP AUTH
  look exactly the same: nothing here calls them spam; the replay lists senders that look
  legitimate (a **known** address: one that received mail or sent from inside) separately.
- A **spike** is an hour whose relayed mails reach :data:`SPIKE_FACTOR` times the median hour
  of the period (hours without mail count as zero) and at least :data:`SPIKE_MINIMUM`.

Sessions are kept deduplicated: one entry per (client IP, sender, recipient) with its count, the
first and the last time: up to :data:`OUTSIDE_SESSION_LIMIT` relayed from outside (the abuse
evidence), and up to ``session_limit`` relayed from inside and as many delivered (beyond,
they are counted as not kept). Everything else is an aggregate of bounded
size (days, hours, clients, sender domains) or a bounded sample.
"""

from __future__ import annotations

import ipaddress
import os
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from aliases.aliasfile import Alias, AliasIndex, AliasKind
from controlcenter.simulation import Policy, Session, evaluate_session
from maillogs.logfile import (
    AcceptRecord,
    InRecord,
    OtherRecord,
    Record,
    Stamp,
    UnknownLine,
    utf8_or_cp932,
)

SPIKE_FACTOR: Final = 5
SPIKE_MINIMUM: Final = 50
SAMPLE_LIMIT: Final = 20
UNKNOWN_LIMIT: Final = 100
TOP_LIMIT: Final = 50
SESSION_LIMIT: Final = 100_000
OUTSIDE_SESSION_LIMIT: Final = 500_000
MESSAGE_ID_LIMIT: Final = 500_000
REPLAY_CACHE_LIMIT: Final = 200_000

SessionKey = tuple[str, str, str]  # client IP, sender ("" missing, "<>" null), recipient


def domain_of(address: str) -> str:
    """The lower-cased domain of ``address`` without a trailing dot ("" when it has none)."""
    _local, at, domain = address.rpartition("@")
    if not at:
        return ""
    domain = domain.lower()
    return domain[:-1] if domain.endswith(".") else domain


#: RFC 1918, loopback, link-local and unique-local networks. Not ``ip_address.is_private``:
#: that also holds the documentation ranges (192.0.2.0/24, 203.0.113.0/24, ...), which are
#: outside hosts as far as a gateway is concerned.
PRIVATE_NETWORKS: Final = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def private_address(client_ip: str) -> bool:
    """A private-network, loopback or link-local client (the LAN when no rule names one)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in PRIVATE_NETWORKS)


@dataclass(slots=True)
class SessionStats:
    count: int
    first: Stamp
    last: Stamp
    relayed: bool
    inside: bool


@dataclass(slots=True)
class ClientStats:
    inside: bool
    helo: str
    mails: int = 0
    relayed: int = 0
    forged: int = 0


@dataclass(slots=True)
class DomainStats:
    mails: int = 0
    relayed: int = 0
    outside_relayed: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    source: str
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class Spike:
    hour: datetime
    relayed: int
    baseline: float


@dataclass
class Analysis:
    """What one read keeps: the aggregates, the deduplicated sessions and bounded samples."""

    first: Stamp | None = None
    last: Stamp | None = None
    lines: dict[str, int] = field(default_factory=dict)  # per log, every line read
    # day -> [mails, inside, outside, relayed, delivered, abuse]
    days: dict[date, list[int]] = field(default_factory=dict)
    # (day, hour) -> [mails, relayed, abuse]
    hours: dict[tuple[date, int], list[int]] = field(default_factory=dict)
    clients: dict[str, ClientStats] = field(default_factory=dict)
    sender_domains: dict[str, DomainStats] = field(default_factory=dict)
    sessions: dict[SessionKey, SessionStats] = field(default_factory=dict)
    sessions_dropped: int = 0
    recipients: dict[str, list[int]] = field(default_factory=dict)  # local address -> [in, out]
    accept: dict[date, list[int]] = field(default_factory=dict)  # day -> [connect, ok, abort]
    other_days: dict[str, dict[date, int]] = field(default_factory=dict)
    retries: dict[str, list[int]] = field(default_factory=dict)  # domain -> [senderlog, faillog]
    unknown: int = 0
    unknown_lines: list[UnknownLine] = field(default_factory=list)
    abuse_samples: list[Sample] = field(default_factory=list)
    missing_sender: int = 0
    forged_inbound: int = 0  # mails from outside claiming an inner sender, delivered inside

    @property
    def mails(self) -> int:
        return sum(counts[0] for counts in self.days.values())

    @property
    def relayed_outside(self) -> int:
        return sum(counts[5] for counts in self.days.values())

    @property
    def forged(self) -> int:
        return sum(client.forged for client in self.clients.values())


class Aggregator:
    """Feed records with :meth:`add`; :attr:`analysis` holds the result at any time."""

    def __init__(
        self,
        *,
        local_domains: Iterable[str],
        is_inside: Callable[[str], bool],
        session_limit: int = SESSION_LIMIT,
    ) -> None:
        self.local_domains = frozenset(domain.lower() for domain in local_domains)
        self.is_inside = is_inside
        self.session_limit = session_limit
        self.analysis = Analysis()
        self._inside: dict[str, tuple[str, bool]] = {}
        self._message_domains: dict[str, str] = {}
        self._kept = [0, 0, 0]  # delivered, relayed from inside, relayed from outside
        self.session_limits = (session_limit, session_limit, OUTSIDE_SESSION_LIMIT)

    def add(self, record: Record) -> None:
        if isinstance(record, InRecord):
            self._add_in(record)
        elif isinstance(record, AcceptRecord):
            self._add_accept(record)
        elif isinstance(record, OtherRecord):
            self._add_other(record)
        else:
            self._add_unknown(record)

    def add_all(self, records: Iterable[Record]) -> Analysis:
        for record in records:
            self.add(record)
        return self.analysis

    def _count_line(self, log: str) -> None:
        lines = self.analysis.lines
        lines[log] = lines.get(log, 0) + 1

    def _stamp(self, stamp: Stamp) -> None:
        result = self.analysis
        if result.first is None or stamp < result.first:
            result.first = stamp
        if result.last is None or stamp > result.last:
            result.last = stamp

    def _add_in(self, record: InRecord) -> None:
        result = self.analysis
        self._count_line("inlog")
        stamp = record.stamp
        self._stamp(stamp)
        ip = record.client_ip
        known = self._inside.get(ip)
        if known is None:
            known = self._inside[ip] = (ip, self.is_inside(ip))
        ip, inside = known  # one string per client, shared by its sessions
        client = result.clients.get(ip)
        if client is None:
            client = result.clients[ip] = ClientStats(inside, record.helo)
        sender = record.sender
        if record.sender_missing:
            result.missing_sender += 1
        sender_domain = domain_of(sender)
        forged = not inside and sender_domain in self.local_domains
        domain_stats = result.sender_domains.get(sender_domain)
        if domain_stats is None:
            domain_stats = result.sender_domains[sender_domain] = DomainStats()
        day = result.days.get(stamp.day)
        if day is None:
            day = result.days[stamp.day] = [0, 0, 0, 0, 0, 0]
        hour_key = (stamp.day, int(stamp.clock[:2]))
        hour = result.hours.get(hour_key)
        if hour is None:
            hour = result.hours[hour_key] = [0, 0, 0]
        for recipient in record.recipients:
            rcpt_domain = domain_of(recipient)
            relayed = bool(rcpt_domain) and rcpt_domain not in self.local_domains
            day[0] += 1
            day[1 if inside else 2] += 1
            day[3 if relayed else 4] += 1
            hour[0] += 1
            client.mails += 1
            domain_stats.mails += 1
            if relayed:
                hour[1] += 1
                client.relayed += 1
                domain_stats.relayed += 1
                if len(self._message_domains) < MESSAGE_ID_LIMIT:
                    self._message_domains.setdefault(record.message_id, rcpt_domain)
                if not inside:
                    day[5] += 1
                    hour[2] += 1
                    domain_stats.outside_relayed += 1
                    if forged:
                        client.forged += 1
                    if len(result.abuse_samples) < SAMPLE_LIMIT:
                        result.abuse_samples.append(
                            Sample(record.source, record.line, _in_text(record))
                        )
            else:
                if forged:
                    result.forged_inbound += 1
                address = recipient.lower()
                counts = result.recipients.get(address)
                if counts is None:
                    counts = result.recipients[address] = [0, 0]
                counts[0] += 1
            self._add_session((ip, sender, recipient), stamp, relayed, inside)

    def _add_session(self, key: SessionKey, stamp: Stamp, relayed: bool, inside: bool) -> None:
        sessions = self.analysis.sessions
        stats = sessions.get(key)
        if stats is not None:
            stats.count += 1
            if stamp > stats.last:
                stats.last = stamp
            elif stamp < stats.first:
                stats.first = stamp
            return
        bucket = 2 if relayed and not inside else int(relayed)
        if self._kept[bucket] >= self.session_limits[bucket]:
            self.analysis.sessions_dropped += 1
            return
        self._kept[bucket] += 1
        sessions[key] = SessionStats(1, stamp, stamp, relayed, inside)

    def _add_accept(self, record: AcceptRecord) -> None:
        self._count_line("acceptlog")
        self._stamp(record.stamp)
        counts = self.analysis.accept.get(record.stamp.day)
        if counts is None:
            counts = self.analysis.accept[record.stamp.day] = [0, 0, 0]
        counts[0 if record.result is None else 1 if record.result == "ok" else 2] += 1

    def _add_other(self, record: OtherRecord) -> None:
        result = self.analysis
        self._count_line(record.log)
        days = result.other_days.setdefault(record.log, {})
        days[record.stamp.day] = days.get(record.stamp.day, 0) + 1
        if record.log == "outlocallog" and record.address:
            address = record.address.lower()
            if domain_of(address) in self.local_domains:
                counts = result.recipients.get(address)
                if counts is None:
                    counts = result.recipients[address] = [0, 0]
                counts[1] += 1
        if record.log not in ("senderlog", "faillog"):
            return
        if record.log == "senderlog" and not record.retry:
            return
        domain = domain_of(record.address) if record.address else ""
        if not domain:
            domain = self._message_domains.get(record.message_id, "")
        if not domain or domain in self.local_domains:
            return
        counts = result.retries.get(domain)
        if counts is None:
            counts = result.retries[domain] = [0, 0]
        counts[0 if record.log == "senderlog" else 1] += 1

    def _add_unknown(self, record: UnknownLine) -> None:
        result = self.analysis
        self._count_line(record.log)
        result.unknown += 1
        if len(result.unknown_lines) < UNKNOWN_LIMIT:
            result.unknown_lines.append(record)


def _in_text(record: InRecord) -> str:
    time = f"{record.stamp.day:%d/%b/%Y}:{record.stamp.clock}"
    sender = record.sender or "-"
    return (
        f"<{record.message_id}> [{time}] {record.client_ip} "
        f"{record.helo} {sender} {' '.join(record.recipients)}"
    )


# --- signs of abuse --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientRow:
    client_ip: str
    helo: str
    mails: int
    relayed: int
    forged: int
    inside: bool


@dataclass(frozen=True, slots=True)
class SenderRow:
    sender: str
    relayed: int
    clients: int
    forged: bool


@dataclass(frozen=True, slots=True)
class AbuseReport:
    """The signs of relay abuse in one analysis (every list bounded by ``TOP_LIMIT``)."""

    relayed_outside: int
    forged: int
    by_client: tuple[ClientRow, ...]
    by_sender: tuple[SenderRow, ...]
    spikes: tuple[Spike, ...]
    retries: tuple[tuple[str, int, int], ...]  # outside domain, senderlog retries, faillog

    @property
    def found(self) -> bool:
        return self.relayed_outside > 0


def detect_abuse(analysis: Analysis, *, local_domains: Iterable[str]) -> AbuseReport:
    """Relays from outside clients grouped by client and sender, forged local senders, relay
    spikes and the retry volume per outside domain."""
    local = frozenset(domain.lower() for domain in local_domains)
    clients = sorted(
        (
            ClientRow(ip, stats.helo, stats.mails, stats.relayed, stats.forged, stats.inside)
            for ip, stats in analysis.clients.items()
            if not stats.inside and stats.relayed
        ),
        key=lambda row: (-row.relayed, row.client_ip),
    )
    relayed_by: dict[str, int] = {}
    clients_by: dict[str, set[str]] = {}
    for (ip, sender, _rcpt), stats in analysis.sessions.items():
        if stats.inside or not stats.relayed:
            continue
        relayed_by[sender] = relayed_by.get(sender, 0) + stats.count
        clients_by.setdefault(sender, set()).add(ip)
    by_sender = sorted(
        (
            SenderRow(sender, count, len(clients_by[sender]), domain_of(sender) in local)
            for sender, count in relayed_by.items()
        ),
        key=lambda row: (-row.relayed, row.sender),
    )
    retries = sorted(
        ((domain, counts[0], counts[1]) for domain, counts in analysis.retries.items()),
        key=lambda row: (-(row[1] + row[2]), row[0]),
    )
    return AbuseReport(
        analysis.relayed_outside,
        analysis.forged,
        tuple(clients[:TOP_LIMIT]),
        tuple(by_sender[:TOP_LIMIT]),
        find_spikes(analysis.hours),
        tuple(retries[:TOP_LIMIT]),
    )


def find_spikes(hours: Mapping[tuple[date, int], Sequence[int]]) -> tuple[Spike, ...]:
    """Hours whose relayed mails stand out against the period's median hour."""
    if not hours:
        return ()
    start = min(hours)
    end = max(hours)
    moment = datetime(start[0].year, start[0].month, start[0].day, start[1])  # noqa: DTZ001
    last = datetime(end[0].year, end[0].month, end[0].day, end[1])  # noqa: DTZ001
    series: list[tuple[datetime, int]] = []
    while moment <= last:
        counts = hours.get((moment.date(), moment.hour))
        series.append((moment, counts[1] if counts else 0))
        moment += timedelta(hours=1)
    baseline = statistics.median(count for _moment, count in series)
    threshold = max(SPIKE_MINIMUM, SPIKE_FACTOR * baseline)
    return tuple(
        Spike(moment, count, float(baseline)) for moment, count in series if count >= threshold
    )


# --- replay ----------------------------------------------------------------------------------

Hint = Literal["smtp-auth", "lan-rule", "alias", "sender"]


@dataclass(frozen=True, slots=True)
class StoredSession:
    client_ip: str
    sender: str
    recipient: str
    count: int
    relayed: bool
    inside: bool


@dataclass(frozen=True, slots=True)
class ChangedSender:
    """A legitimate-looking sender whose mail the policy would now answer differently."""

    sender: str
    client_ip: str
    inside: bool
    was: str
    now: str
    reply: str
    mails: int
    hint: Hint


@dataclass(frozen=True, slots=True)
class ReplayReport:
    sessions: int  # distinct sessions replayed
    mails: int  # the mails they stand for
    duplicates: int  # sessions that were the same as an earlier one (evaluated once)
    relayed: int
    abuse: int  # relayed mails from outside by senders that do not look legitimate
    abuse_stopped: int
    abuse_open: int  # abusive mails the policy would still relay
    legitimate_changed: int  # mails of legitimate-looking senders whose verdict changes
    delivered_refused: int  # delivered mails the policy would now refuse
    changed: tuple[ChangedSender, ...]
    open_samples: tuple[StoredSession, ...]

    @property
    def safe(self) -> bool:
        return self.abuse_open == 0


def _hint(inside: bool, was: str, reason: str) -> Hint:
    if reason == "unknown-recipient":
        return "alias"
    if reason in ("unknown-sender", "refused") and not inside:
        return "sender"
    if was == "relay" and not inside:
        return "smtp-auth"
    return "lan-rule"


def replay_sessions(
    policy: Policy,
    sessions: Iterable[StoredSession],
    *,
    known_senders: frozenset[str],
    limit: int = TOP_LIMIT,
) -> ReplayReport:
    """Run every stored session through ``policy`` (compiled once by the caller).

    Identical (client IP, sender, recipient) sessions are evaluated once and counted as
    duplicates (the memory of sessions seen is bounded by :data:`REPLAY_CACHE_LIMIT`: give the
    sessions sorted so that duplicates are near each other). A sender is legitimate-looking
    when it sent from inside or is a ``known`` address (lower-cased); the others' relayed
    mails from outside are abuse.
    """
    seen: dict[SessionKey, tuple[str, str, str]] = {}
    changed: dict[tuple[str, str, str, str], ChangedSender] = {}
    open_samples: list[StoredSession] = []
    distinct = mails = duplicates = relayed = abuse = stopped = still_open = 0
    legitimate_changed = delivered_refused = 0
    for stored in sessions:
        key = (stored.client_ip, stored.sender, stored.recipient)
        mails += stored.count
        verdict = seen.get(key)
        if verdict is None:
            if len(seen) >= REPLAY_CACHE_LIMIT:
                seen.clear()
            distinct += 1
            result = evaluate_session(
                policy,
                Session(stored.client_ip, stored.sender or "<>", (stored.recipient,)),
            )
            rcpt = result.rcpt[0]
            verdict = seen[key] = (rcpt.verdict, rcpt.reply, rcpt.reason.value)
        else:
            duplicates += 1
        now, reply, reason = verdict
        was = "relay" if stored.relayed else "deliver"
        legitimate = stored.inside or stored.sender.lower() in known_senders
        if stored.relayed:
            relayed += stored.count
        if stored.relayed and not legitimate:
            abuse += stored.count
            if now == "relay":
                still_open += stored.count
                if len(open_samples) < limit:
                    open_samples.append(stored)
            else:
                stopped += stored.count
            continue
        if now == was:
            continue
        if not stored.relayed and now == "reject":
            delivered_refused += stored.count
        if not legitimate:
            continue
        legitimate_changed += stored.count
        group = (stored.sender, stored.client_ip, was, now)
        entry = changed.get(group)
        changed[group] = (
            ChangedSender(
                stored.sender,
                stored.client_ip,
                stored.inside,
                was,
                now,
                reply,
                stored.count,
                _hint(stored.inside, was, reason),
            )
            if entry is None
            else replace(entry, mails=entry.mails + stored.count)
        )
    rows = sorted(changed.values(), key=lambda row: (-row.mails, row.sender, row.client_ip))
    return ReplayReport(
        distinct,
        mails,
        duplicates,
        relayed,
        abuse,
        stopped,
        still_open,
        legitimate_changed,
        delivered_refused,
        tuple(rows[: max(limit, 200)]),
        tuple(open_samples),
    )


# --- the move off the wildcard (measure 2) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftAlias:
    pattern: str
    target: str
    mails: int
    via: str  # the wildcard alias that matches the address today ("" when none does)


@dataclass(frozen=True, slots=True)
class PrefixSuggestion:
    pattern: str
    addresses: int


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """Per-address aliases for every inner address that received mail, and the seats."""

    drafts: tuple[DraftAlias, ...]
    covered: int  # addresses that already have their own alias
    skipped: int  # addresses below the mail threshold
    wildcards: tuple[str, ...]  # full wildcards the drafts replace
    prefixes: tuple[PrefixSuggestion, ...]
    seats_now: int
    seats_after: int
    tier_now: int | None  # None: unlimited
    tier_needed: int | None

    @property
    def tier_changes(self) -> bool:
        return self.tier_needed != self.tier_now

    def csv(self, *, comment: str = "") -> str:
        """The drafts in the alias upload's CSV format (header row, CRLF-free, UTF-8)."""
        lines = ["alias,mapped_to,comment"]
        for draft in self.drafts:
            lines.append(f"{_cell(draft.pattern)},{_cell(draft.target)},{_cell(comment)}")
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    if any(char in text for char in ',"\n\r') or text[:1] in ("=", "+", "-", "@"):
        return '"' + text.replace('"', '""') + '"'
    return text


def licence_tier(seats: int, tiers: Sequence[int]) -> int | None:
    """The smallest licence size holding ``seats``; None when only the unlimited one does."""
    for tier in sorted(tiers):
        if seats <= tier:
            return tier
    return None


def suggest_prefixes(
    locals_by_domain: Mapping[str, Sequence[str]], *, minimum: int = 5, shortest: int = 3
) -> tuple[PrefixSuggestion, ...]:
    """Partial wildcards (``2009*@domain``) for at least ``minimum`` addresses sharing a prefix
    of ``shortest`` characters or more; the longest prefix of each group, groups disjoint."""
    suggestions: list[PrefixSuggestion] = []
    for domain, local_parts in sorted(locals_by_domain.items()):
        counts: dict[str, int] = {}
        for local in set(local_parts):
            for length in range(shortest, len(local)):
                prefix = local[:length]
                counts[prefix] = counts.get(prefix, 0) + 1
        candidates = sorted(
            (prefix for prefix, count in counts.items() if count >= minimum),
            key=lambda prefix: (-counts[prefix], -len(prefix), prefix),
        )
        chosen: list[str] = []
        for prefix in candidates:
            longer = [other for other in candidates if other.startswith(prefix) and other != prefix]
            if any(counts[other] == counts[prefix] for other in longer):
                continue
            if any(prefix.startswith(c) or c.startswith(prefix) for c in chosen):
                continue
            chosen.append(prefix)
        suggestions.extend(
            PrefixSuggestion(f"{prefix}*@{domain}", counts[prefix]) for prefix in chosen
        )
    return tuple(sorted(suggestions, key=lambda s: (-s.addresses, s.pattern)))


def plan_migration(
    *,
    received: Mapping[str, int],
    aliases: Sequence[Alias],
    local_domains: Iterable[str],
    accounts: int,
    mailing_lists: int,
    licence: int | None,
    tiers: Sequence[int],
    min_mails: int = 1,
) -> MigrationPlan:
    """One exact alias per inner address that received at least ``min_mails`` mails and is
    matched today only by a wildcard; the seats before and after removing the full wildcards
    of the domains concerned."""
    local = frozenset(domain.lower() for domain in local_domains)
    index = AliasIndex.build(aliases)
    exact = {alias.key for alias in aliases if alias.kind is AliasKind.EXACT}
    drafts: list[DraftAlias] = []
    covered = skipped = 0
    replaced: set[str] = set()
    for address, mails in sorted(received.items()):
        domain = domain_of(address)
        if domain not in local or not address.partition("@")[0]:
            continue
        if mails < min_mails:
            skipped += 1
            continue
        # An exact alias counts even below the wildcard that still shadows it: removing the
        # wildcard is the step that makes it match.
        if Alias(address, address).key in exact:
            covered += 1
            continue
        match = index.lookup(address)
        if match is None:
            target, via = address, ""
        else:
            target, via = match.target_text, match.alias.pattern
            if match.alias.kind is AliasKind.FULL_WILDCARD:
                replaced.add(match.alias.pattern)
        drafts.append(DraftAlias(address, target, mails, via))
    wildcards = tuple(
        sorted(
            alias.pattern
            for alias in aliases
            if alias.kind is AliasKind.FULL_WILDCARD and alias.domain in {d for d in local}
            if alias.pattern in replaced
        )
    )
    by_domain: dict[str, list[str]] = {}
    for draft in drafts:
        local_part, _at, domain = draft.pattern.rpartition("@")
        by_domain.setdefault(domain.lower(), []).append(local_part)
    seats_now = len(aliases) + accounts + mailing_lists
    seats_after = seats_now - len(wildcards) + len(drafts)
    return MigrationPlan(
        tuple(drafts),
        covered,
        skipped,
        wildcards,
        suggest_prefixes(by_domain),
        seats_now,
        seats_after,
        licence,
        licence_tier(seats_after, tiers),
    )


# --- the retry queue -------------------------------------------------------------------------


@dataclass
class RetryDomain:
    domain: str
    envelopes: int = 0
    envelope_bytes: int = 0
    bodies: int = 0
    body_bytes: int = 0
    last_tried: str = ""
    try_number: str = ""
    err_code: str = ""
    local: bool = False

    @property
    def total_bytes(self) -> int:
        return self.envelope_bytes + self.body_bytes


@dataclass(frozen=True)
class RetryQueue:
    domains: tuple[RetryDomain, ...]
    unassigned_bodies: int
    unassigned_bytes: int
    incoming: int

    @property
    def envelopes(self) -> int:
        return sum(domain.envelopes for domain in self.domains)

    @property
    def total_bytes(self) -> int:
        return sum(d.total_bytes for d in self.domains) + self.unassigned_bytes


def _mri(path: Path) -> dict[str, str]:
    try:
        text = utf8_or_cp932(path.read_bytes()[:65536])
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip().lower()] = value.strip()
    return fields


def scan_retry_queue(work: Path, *, local_domains: Iterable[str]) -> RetryQueue:
    """Count and size the retry envelopes (``domains/<domain>/*.RCP``) and bodies
    (``holding/*.MSG``, assigned to a domain by the envelope of the same name) per domain,
    most bytes first. Unreadable entries are skipped."""
    local = frozenset(domain.lower() for domain in local_domains)
    domains: dict[str, RetryDomain] = {}
    owner: dict[str, str] = {}
    root = work / "domains"
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if not folder.is_dir():
                continue
            mri = _mri(folder / "Domain.mri")
            name = (mri.get("domain-name") or folder.name).lower()
            entry = domains.setdefault(name, RetryDomain(name, local=name in local))
            entry.last_tried = mri.get("last-tried", entry.last_tried)
            entry.try_number = mri.get("try-number", entry.try_number)
            entry.err_code = mri.get("err-code", entry.err_code)
            with os.scandir(folder) as files:
                for item in files:
                    if item.name.upper().endswith(".RCP") and item.is_file():
                        entry.envelopes += 1
                        entry.envelope_bytes += item.stat().st_size
                        owner[item.name[:-4].upper()] = name
    unassigned = unassigned_bytes = 0
    holding = work / "holding"
    if holding.is_dir():
        with os.scandir(holding) as files:
            for item in files:
                if not (item.name.upper().endswith(".MSG") and item.is_file()):
                    continue
                size = item.stat().st_size
                owned_by = owner.get(item.name[:-4].upper())
                if owned_by is None:
                    unassigned += 1
                    unassigned_bytes += size
                else:
                    domains[owned_by].bodies += 1
                    domains[owned_by].body_bytes += size
    incoming = 0
    if (work / "incoming").is_dir():
        with os.scandir(work / "incoming") as files:
            incoming = sum(1 for item in files if item.is_file())
    ordered = sorted(domains.values(), key=lambda d: (-d.total_bytes, -d.envelopes, d.domain))
    return RetryQueue(tuple(ordered), unassigned, unassigned_bytes, incoming)
