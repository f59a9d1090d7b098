"""The compiled policy: effect.dat, the aliases and the local domains, indexed once.

:func:`compile_policy` builds a :class:`Policy`; evaluation (:mod:`.decide`) asks it which line
decides for a client and for a sender, and what an address means. Each answer is computed
once per distinct text and kept in a bounded memo on the policy, so a batch pays for parsing,
alias lookup and line matching once per address, and for building a result once per distinct
answer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from aliases.aliasfile import Alias, AliasIndex
from controlcenter.simulation.classify import Address, read_recipient, read_sender
from controlcenter.simulation.notes import Note
from controlcenter.simulation.results import AddressClass, RuleRef
from relaypolicy.effectfile import (
    CLIENT_KINDS,
    EffectFile,
    EffectLine,
    LineKind,
    Modifier,
    PatternKind,
)
from relaypolicy.effectmatch import CompiledRules, compile_rules

if TYPE_CHECKING:
    from controlcenter.simulation.decide import ClientView, Decider, Refusal

#: Beyond this many entries a cache (senders, recipients, client IPs) starts over, so a long
#: batch of distinct addresses cannot grow memory without bound.
CACHE_LIMIT: Final = 65_536

#: Beyond this many remembered answers (client views, MAIL answers, RCPT results) the memo of
#: answers starts over.
ANSWER_LIMIT: Final = 2 * CACHE_LIMIT


class Answers:
    """The memo of answers evaluation keeps on a policy (filled by :mod:`.decide`).

    Client addresses map to interned views (one per deciding client line and notes); a view
    maps each sender text to its MAIL answer; deciders and refusals are interned by what the
    RCPT step depends on and map each recipient text to its result. Results are frozen, so
    handing out the same object again is safe.
    """

    __slots__ = ("deciders", "lines", "refusals", "size", "views", "views_by_key")

    def __init__(self) -> None:
        self.views: dict[str, ClientView] = {}
        self.views_by_key: dict[object, ClientView] = {}
        self.deciders: dict[object, Decider] = {}
        self.refusals: dict[object, Refusal] = {}
        #: effect.dat line number (0: none) -> its modifier, reference and MAIL FROM notes
        self.lines: dict[int, tuple[Modifier, RuleRef | None, tuple[Note, ...]]] = {}
        self.size = 0

    def grew(self) -> None:
        """Count one more remembered answer; start over past :data:`ANSWER_LIMIT`."""
        self.size += 1
        if self.size > ANSWER_LIMIT:
            self.views.clear()
            self.views_by_key.clear()
            self.deciders.clear()
            self.refusals.clear()
            self.lines.clear()
            self.size = 0


@dataclass(frozen=True, slots=True)
class Policy:
    """effect.dat, the aliases and the local domains, indexed once; build with
    :func:`compile_policy` and evaluate many sessions against it.

    ``rules`` answers "which line decides?" for any session. Evaluation asks the same question
    of two halves, client lines by IP and sender lines by sender, and keeps the earlier line:
    the same answer, but the sender half is computed once per distinct sender and cached with
    the sender's classification.
    """

    effect: EffectFile
    rules: CompiledRules
    aliases: AliasIndex
    local_domains: frozenset[str]
    gateway_mode: bool
    _client_rules: CompiledRules = field(compare=False, repr=False)
    _sender_rules: SenderRules = field(compare=False, repr=False)
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
    _senders: dict[str, tuple[Address, EffectLine | None]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _recipients: dict[str, Address] = field(default_factory=dict, compare=False, repr=False)
    _clients: dict[str, EffectLine | None] = field(default_factory=dict, compare=False, repr=False)
    _answers: Answers = field(default_factory=Answers, compare=False, repr=False)

    def _sender(self, text: str) -> tuple[Address, EffectLine | None]:
        """The sender's classification and the first sender line matching it."""
        cached = self._senders.get(text)
        if cached is None:
            if len(self._senders) >= CACHE_LIMIT:
                self._senders.clear()
            address = read_sender(self, text)
            line = None
            if address.cls is not AddressClass.INVALID:
                line = self._sender_rules.first_match(address.key)
            cached = self._senders[text] = (address, line)
        return cached

    def _recipient(self, text: str) -> Address:
        cached = self._recipients.get(text)
        if cached is None:
            if len(self._recipients) >= CACHE_LIMIT:
                self._recipients.clear()
            cached = self._recipients[text] = read_recipient(self, text)
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
        address = _client_address(client_ip)
        if address is None:
            line = self._client_rules.first_match(client_ip, "<>")
        else:
            line = self._client_rules.first_match(str(address), "<>", address)
        if line is None:
            line = self._terminator
        self._clients[client_ip] = line
        return line


class SenderRules:
    """The sender lines of effect.dat: which one decides for a sender (or None).

    The same answer as :meth:`CompiledRules.first_match` over these lines, which tries the
    ``*`` patterns (``*@domain``) one regular expression at a time: here every ``*@domain``
    pattern is one dict probe per ``@`` of the sender, and the other ``*`` patterns are one
    alternation, whose first matching branch is the earliest line.
    """

    __slots__ = ("_alternation", "_domains", "_others", "_others_first", "_plain")

    def __init__(self, lines: Iterable[EffectLine]) -> None:
        rules = sorted(
            (line for line in lines if line.kind is LineKind.RULE), key=lambda r: r.number
        )
        globs = [line for line in rules if _is_glob(line)]
        self._plain = compile_rules(line for line in rules if not _is_glob(line))
        self._domains: dict[str, EffectLine] = {}
        others: list[EffectLine] = []
        for line in globs:
            pattern = line.pattern.lower()
            if pattern.startswith("*@") and "*" not in pattern[2:]:
                self._domains.setdefault(pattern[2:], line)
            else:
                others.append(line)
        self._others = tuple(others)
        self._others_first = others[0].number if others else 0
        self._alternation = (
            re.compile("|".join(f"({_glob(line.pattern)})" for line in others), re.DOTALL)
            if others
            else None
        )

    def first_match(self, sender: str) -> EffectLine | None:
        """The deciding sender line for ``sender`` (the convention of
        :func:`relaypolicy.effectfile.line_matches`: ``"<>"`` null, ``""`` empty)."""
        best = self._plain.first_match("", sender)
        if not sender:
            return best
        if sender.startswith("<") and sender.endswith(">"):
            sender = sender[1:-1]
            if not sender:
                return best
        text = sender.lower()
        if self._domains:
            at = text.find("@")
            while at >= 0:
                line = self._domains.get(text[at + 1 :])
                if line is not None and (best is None or line.number < best.number):
                    best = line
                at = text.find("@", at + 1)
        if self._alternation is not None and (best is None or self._others_first < best.number):
            match = self._alternation.fullmatch(text)
            if match is not None and match.lastindex is not None:
                line = self._others[match.lastindex - 1]
                if best is None or line.number < best.number:
                    best = line
        return best


def _is_glob(line: EffectLine) -> bool:
    return line.pattern_kind is PatternKind.SENDER_ADDRESS and "*" in line.pattern


def _glob(pattern: str) -> str:
    """``pattern`` as :mod:`relaypolicy.effectfile` reads it: lower case, ``*`` any text."""
    return ".*".join(re.escape(part) for part in pattern.lower().split("*"))


_Ip = ipaddress.IPv4Address | ipaddress.IPv6Address


def canonical_client(client_ip: str) -> str:
    """The text the daemon is taken to compare wildcard lines with: Python's (RFC 5952, no
    leading zeros); anything that is not an IP address is kept as written."""
    address = _client_address(client_ip)
    return str(address) if address is not None else client_ip


@lru_cache(maxsize=4096)
def _client_address(client_ip: str) -> _Ip | None:
    try:
        return ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return None


def is_ip(client_ip: str) -> bool:
    """Whether ``client_ip`` is an IP address exactly as written (no spaces around it)."""
    return client_ip == client_ip.strip() and _client_address(client_ip) is not None


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
        SenderRules(line for line in rules if line.pattern_kind not in CLIENT_KINDS),
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
