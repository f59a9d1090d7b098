"""Which effect.dat line decides a session: line-by-line matching and a compiled index.

The rules are those of :mod:`relaypolicy.effectfile` (its docstring is the format's spec): the
first matching RULE line decides, top to bottom; client patterns match the client's IP address,
sender patterns the envelope sender. Sender convention: ``"<>"`` is the null sender, ``None`` or
``""`` an empty MAIL FROM, anything else the mailbox (angle brackets allowed). No Django.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from relaypolicy.effectfile import CLIENT_KINDS, EffectLine, LineKind, PatternKind, pattern_network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class _Sender:
    blank: bool
    null: bool
    address: str  # lower case, without angle brackets
    domain: str | None  # lower case; None when there is no "@"


def _read_sender(sender: str | None) -> _Sender:
    if not sender:
        return _Sender(blank=True, null=False, address="", domain=None)
    if sender.startswith("<") and sender.endswith(">"):
        sender = sender[1:-1]
        if not sender:
            return _Sender(blank=False, null=True, address="", domain=None)
    address = sender.lower()
    at = address.rfind("@")
    return _Sender(False, False, address, address[at + 1 :] if at >= 0 else None)


@lru_cache(maxsize=4096)
def _client_address(client_ip: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(client_ip)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.lower().split("*")), re.DOTALL)


_DIGITS_AND_DOTS = frozenset("0123456789.")


def _is_number_domain(domain: str) -> bool:
    digits = domain[1:-1] if domain.startswith("[") and domain.endswith("]") else domain
    return bool(digits) and set(digits) <= _DIGITS_AND_DOTS


def _keyword_matches(keyword: str, domain: str | None) -> bool:
    if keyword == "#nodomain":
        return not domain
    if not domain:
        return False
    if domain.startswith("["):
        # An address literal is both "without a dot" and "all digits" (spec §3.1: the reading
        # under which the line matches more senders).
        return True
    if keyword == "#number":
        return _is_number_domain(domain)
    return "." not in domain  # "#host"


def _client_matches(line: EffectLine, client_ip: str) -> bool:
    prefix = line.wildcard_prefix
    if prefix is not None:
        return client_ip.startswith(prefix)
    address = _client_address(client_ip)
    network = pattern_network(line.pattern)
    return address is not None and address.version == network.version and address in network


def _sender_matches(line: EffectLine, sender: _Sender) -> bool:
    kind = line.pattern_kind
    if kind is PatternKind.NULL_SENDER:
        return sender.null
    if kind is PatternKind.BLANK_SENDER:
        return sender.blank
    if sender.null or sender.blank:
        return False
    if kind is PatternKind.SENDER_ADDRESS:
        return _glob(line.pattern).fullmatch(sender.address) is not None
    if kind is PatternKind.KEYWORD:
        return _keyword_matches(line.pattern, sender.domain)
    pattern = line.pattern.lower()
    if sender.domain is None:
        return False
    if pattern.startswith("*."):
        return sender.domain.endswith(pattern[1:])
    return sender.domain == pattern


def line_matches(line: EffectLine, client_ip: str, sender: str | None) -> bool:
    """Whether ``line`` matches a session from ``client_ip`` with envelope ``sender``.

    Sender convention: ``"<>"`` is the null sender, ``None`` or ``""`` an empty MAIL FROM,
    anything else the mailbox. Only RULE lines ever match.
    """
    if line.kind is not LineKind.RULE:
        return False
    if line.pattern_kind in CLIENT_KINDS:
        return _client_matches(line, client_ip)
    return _sender_matches(line, _read_sender(sender))


def _earlier(best: EffectLine | None, candidate: EffectLine | None) -> EffectLine | None:
    if candidate is None or (best is not None and best.number <= candidate.number):
        return best
    return candidate


class CompiledRules:
    """An index over rule lines answering "which line decides?" without scanning every line."""

    __slots__ = (
        "_addresses",
        "_blank",
        "_domains",
        "_globs",
        "_keywords",
        "_networks",
        "_null",
        "_prefix_lengths",
        "_prefixes",
        "_subdomains",
    )

    def __init__(self, lines: Iterable[EffectLine]) -> None:
        self._prefixes: dict[str, EffectLine] = {}
        # per IP version: (mask, {network address as int: line}) for every prefix length used
        networks: dict[int, dict[int, dict[int, EffectLine]]] = {4: {}, 6: {}}
        self._domains: dict[str, EffectLine] = {}
        self._subdomains: dict[str, EffectLine] = {}
        self._addresses: dict[str, EffectLine] = {}
        globs: list[tuple[EffectLine, re.Pattern[str]]] = []
        self._keywords: dict[str, EffectLine] = {}
        self._null: EffectLine | None = None
        self._blank: EffectLine | None = None
        rules = sorted(
            (line for line in lines if line.kind is LineKind.RULE), key=lambda r: r.number
        )
        # Rules arrive in line order, so setdefault keeps the first (deciding) line per key.
        for line in rules:
            kind = line.pattern_kind
            prefix = line.wildcard_prefix
            if prefix is not None:
                self._prefixes.setdefault(prefix, line)
            elif kind in (PatternKind.CIDR, PatternKind.IPV4, PatternKind.IPV6):
                network = pattern_network(line.pattern)
                table = networks[network.version].setdefault(network.prefixlen, {})
                table.setdefault(int(network.network_address), line)
            elif kind is PatternKind.SENDER_DOMAIN:
                pattern = line.pattern.lower()
                if pattern.startswith("*."):
                    self._subdomains.setdefault(pattern[2:], line)
                else:
                    self._domains.setdefault(pattern, line)
            elif kind is PatternKind.SENDER_ADDRESS:
                if "*" in line.pattern:
                    globs.append((line, _glob(line.pattern)))
                else:
                    self._addresses.setdefault(line.pattern.lower(), line)
            elif kind is PatternKind.KEYWORD:
                self._keywords.setdefault(line.pattern, line)
            elif kind is PatternKind.NULL_SENDER:
                self._null = self._null or line
            elif kind is PatternKind.BLANK_SENDER:
                self._blank = self._blank or line
        self._prefix_lengths = tuple(sorted({len(prefix) for prefix in self._prefixes}))
        self._networks = {
            version: tuple(
                (_mask(version, length), table) for length, table in sorted(tables.items())
            )
            for version, tables in networks.items()
        }
        self._globs = tuple(globs)

    def first_match(
        self, client_ip: str, sender: str | None, address: IPAddress | None = None
    ) -> EffectLine | None:
        """The deciding line for a session (same sender convention as :func:`line_matches`);
        ``address`` is ``client_ip`` already parsed, when the caller has it."""
        best: EffectLine | None = None
        for length in self._prefix_lengths:
            if length > len(client_ip):
                break
            best = _earlier(best, self._prefixes.get(client_ip[:length]))
        if address is None:
            address = _client_address(client_ip)
        if address is not None:
            value = int(address)
            for mask, table in self._networks[address.version]:
                best = _earlier(best, table.get(value & mask))
        return self._sender_match(best, _read_sender(sender))

    def _sender_match(self, best: EffectLine | None, sender: _Sender) -> EffectLine | None:
        if sender.null:
            return _earlier(best, self._null)
        if sender.blank:
            return _earlier(best, self._blank)
        domain = sender.domain
        if domain:
            best = _earlier(best, self._domains.get(domain))
            dot = domain.find(".")
            while dot >= 0:
                best = _earlier(best, self._subdomains.get(domain[dot + 1 :]))
                dot = domain.find(".", dot + 1)
        for keyword, line in self._keywords.items():
            if _keyword_matches(keyword, domain):
                best = _earlier(best, line)
        best = _earlier(best, self._addresses.get(sender.address))
        for line, glob in self._globs:
            if best is not None and best.number < line.number:
                break
            if glob.fullmatch(sender.address):
                return line
        return best


def _mask(version: int, length: int) -> int:
    bits = 32 if version == 4 else 128
    return ((1 << length) - 1) << (bits - length)


def compile_rules(lines: Iterable[EffectLine]) -> CompiledRules:
    """Index ``lines`` (only RULE lines take part) for fast :meth:`CompiledRules.first_match`."""
    return CompiledRules(lines)
