"""Which client addresses reach each client-IP line of effect.dat: the address-space analysis.

Pure and deterministic (no Django, no clock, no I/O): the same lines always give the same
:class:`Analysis`, so callers may cache it. Spec (``../shared/spec/epost-relay.md`` §2, §3.1):

What a client line matches (:func:`client_space`)
=================================================

Sets of addresses are kept as sorted, disjoint, non-adjacent integer ranges ``(first, last)``,
one tuple per IP version (:class:`Space`).

=====================  ==================================================================
pattern                matched addresses
=====================  ==================================================================
``192.168.1.0/24``     the network (host bits masked off); ``192.168.0.100`` = one address
``2001:db8::/32``      the IPv6 network; an IPv6 literal = one address
``*.*.*.*``, ``*``     every IPv4 and every IPv6 address
``P*...``              the client address's *text* starts with ``P``, the text before the
                       first ``*`` (what comes after the ``*`` is ignored, spec §2):
                       complete octets are fixed, the last partial octet ``p`` gives every
                       octet value whose decimal text starts with ``p``. ``1*`` = 1.x,
                       10–19.x, 100–199.x; ``192.168.1*`` = 192.168.1.x, .10–19.x, .100–199.x;
                       ``192.168.*.5`` = 192.168.x.x
=====================  ==================================================================

A prefix without a dot (``1*``, ``20*``) also matches IPv6 clients whose text starts with it:
we read a client's text as Python writes it (RFC 5952: lower case, no leading zeros, the
longest run of two or more zero groups compressed), so ``20*`` matches the first groups 0x20,
0x200–0x20f and 0x2000–0x20ff (``2001:db8::1`` included). ``0*`` matches the IPv6 addresses
whose first group is 0 and second is not (text ``0:1:...``); the rarer texts ``0:0:1::1`` are
left out. This is the reading under which **more** clients match a prefix line (§3.1), and the
simulator compares client texts the same way.

Reachability (:func:`analyse`)
==============================

The first matching line decides (§2), so the addresses that reach client line *i* are the ones
it matches minus every address matched by a client line above it. Sender lines do not take
part: a sender line above decides only for some senders, so every client address can still
reach the IP line below with another sender. The computation is one sweep over the sorted range
ends with a heap of open ranges keyed by line order: each elementary segment of the address
line belongs to the earliest line matching it. Cost O(m log m) for m ranges (a line has at most
eight), whatever the order or overlap of the lines.

Classification
==============

An address is **public** when the standard library says it is globally reachable
(``ipaddress.ip_address(a).is_global``, the IANA special-purpose registries); everything else
(private, loopback, link-local, shared CGNAT 100.64/10, ULA, documentation, benchmarking,
reserved, multicast, IPv4-mapped private, …) is special-purpose. :func:`global_space` turns
that predicate into ranges once: the registry's networks give the candidate boundaries, and
``is_global`` is asked at the first address of every segment between them (a test checks the
ranges against ``is_global`` on random and boundary addresses).

Worked example::

    3  192.168.1.0/24 default
    4  0.0.0.0/1 default
    5  *.*.*.* norelay

    line 3 reaches 192.168.1.0–192.168.1.255 (256 addresses, none public)
    line 4 reaches 0.0.0.0–127.255.255.255 minus nothing above it that overlaps
           (its public part: about 1.9 billion addresses)
    line 5 reaches 128.0.0.0–255.255.255.255 except 192.168.1.0/24, and every IPv6 address
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from relaypolicy.effectfile import CLIENT_KINDS, EffectLine, LineKind, PatternKind, pattern_network

Range = tuple[int, int]
Ranges = tuple[Range, ...]

V4_LAST = (1 << 32) - 1
V6_LAST = (1 << 128) - 1
_LAST = {4: V4_LAST, 6: V6_LAST}
_NETWORK_KINDS = frozenset({PatternKind.CIDR, PatternKind.IPV4, PatternKind.IPV6})


@dataclass(frozen=True, slots=True)
class Space:
    """A set of IPv4 and IPv6 addresses as sorted, disjoint, non-adjacent ranges."""

    v4: Ranges = ()
    v6: Ranges = ()

    def ranges(self, version: int) -> Ranges:
        return self.v4 if version == 4 else self.v6

    @property
    def is_empty(self) -> bool:
        return not self.v4 and not self.v6

    def size(self, version: int | None = None) -> int:
        """How many addresses (of ``version``, or of both)."""
        versions = (4, 6) if version is None else (version,)
        return sum(last - first + 1 for v in versions for first, last in self.ranges(v))

    def intersect(self, other: Space) -> Space:
        return Space(_intersect(self.v4, other.v4), _intersect(self.v6, other.v6))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        ranges = self.ranges(address.version)
        value = int(address)
        index = bisect_right(ranges, (value, _LAST[address.version])) - 1
        return index >= 0 and ranges[index][0] <= value <= ranges[index][1]


EMPTY = Space()
EVERYTHING = Space(((0, V4_LAST),), ((0, V6_LAST),))


def normalise(ranges: Iterable[Range]) -> Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    merged: list[Range] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return tuple(merged)


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    """Linear merge of two normalised range lists."""
    out: list[Range] = []
    i = j = 0
    while i < len(a) and j < len(b):
        first = max(a[i][0], b[j][0])
        last = min(a[i][1], b[j][1])
        if first <= last:
            out.append((first, last))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _intersect_sorted(ranges: Ranges, table: Ranges) -> Ranges:
    """``ranges`` ∩ ``table`` where ``table`` is long and fixed: bisect instead of merging."""
    out: list[Range] = []
    for first, last in ranges:
        index = max(bisect_right(table, (first, -1)) - 1, 0)
        while index < len(table) and table[index][0] <= last:
            low, high = max(first, table[index][0]), min(last, table[index][1])
            if low <= high:
                out.append((low, high))
            index += 1
    return tuple(out)


# --- what a line matches ------------------------------------------------------------------------


def octet_values(partial: str) -> list[int]:
    """The octet values whose decimal text starts with ``partial`` (all 256 for "")."""
    return list(_octet_values(partial))


@cache
def _octet_values(partial: str) -> tuple[int, ...]:
    return tuple(value for value in range(256) if str(value).startswith(partial))


def _runs(values: Sequence[int]) -> list[Range]:
    runs: list[Range] = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _prefix_v4(prefix: str) -> Ranges:
    *complete, partial = prefix.split(".")
    if len(complete) > 3:
        return ()
    shift = 24 - 8 * len(complete)
    base = sum(int(octet) << (24 - 8 * index) for index, octet in enumerate(complete))
    return tuple(
        (base + (first << shift), base + ((last + 1) << shift) - 1)
        for first, last in _runs(_octet_values(partial))
    )


def _prefix_v6(prefix: str) -> Ranges:
    """IPv6 addresses whose RFC 5952 text starts with the digits ``prefix`` (see the spec)."""
    if "." in prefix or not prefix.isdigit():
        return ()
    if prefix == "0":
        return (((1 << 96), (1 << 112) - 1),)  # "0:x:..." with x != 0
    if prefix.startswith("0"):
        return ()
    value = int(prefix, 16)
    ranges: list[Range] = []
    for extra in range(0, 5 - len(prefix)):
        first, last = value << (4 * extra), ((value + 1) << (4 * extra)) - 1
        if first > 0xFFFF:
            break
        ranges.append((first << 112, ((min(last, 0xFFFF) + 1) << 112) - 1))
    return normalise(ranges)


@cache
def _prefix_space(prefix: str) -> Space:
    if prefix == "":
        return EVERYTHING
    return Space(_prefix_v4(prefix), _prefix_v6(prefix))


def client_space(line: EffectLine) -> Space:
    """Every client address ``line`` matches; EMPTY for sender lines and non-rules."""
    if line.kind is not LineKind.RULE or line.pattern_kind not in CLIENT_KINDS:
        return EMPTY
    prefix = line.wildcard_prefix
    if prefix is not None:
        return _prefix_space(prefix)
    if line.pattern_kind in _NETWORK_KINDS:
        return _network_space(line.pattern)
    return EMPTY


@lru_cache(maxsize=65_536)
def _network_space(pattern: str) -> Space:
    if ":" not in pattern:
        # IPv4 and CIDR patterns were checked by the parser (four decimal octets, /0-/32):
        # integer arithmetic is many times faster than ipaddress here.
        address, _slash, length = pattern.partition("/")
        a, b, c, d = (int(octet) for octet in address.split("."))
        bits = int(length) if length else 32
        mask = ((1 << bits) - 1) << (32 - bits)
        first = ((a << 24) | (b << 16) | (c << 8) | d) & mask
        return Space(((first, first | (~mask & V4_LAST)),), ())
    net = pattern_network(pattern)
    ranges = ((int(net.network_address), int(net.broadcast_address)),)
    return Space(ranges, ()) if net.version == 4 else Space((), ranges)


# --- the public address space -------------------------------------------------------------------


def _registry_networks(version: int) -> Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    # The registry's own tables: every boundary where is_global can change sits in them.
    owner: type = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    constants = getattr(owner, "_constants", None)
    for name in dir(constants):
        value = getattr(constants, name)
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
                if item.version == version:
                    yield item
            elif (
                isinstance(item, ipaddress.IPv4Address | ipaddress.IPv6Address)
                and item.version == version
            ):
                yield ipaddress.ip_network(item)


@cache
def global_space() -> Space:
    """The addresses ``ipaddress`` calls global (see the module docstring), as ranges."""
    v4_bounds = {0, V4_LAST + 1}
    for net in _registry_networks(4):
        v4_bounds.update((int(net.network_address), int(net.broadcast_address) + 1))
    v6_bounds = {0, V6_LAST + 1}
    for net in _registry_networks(6):
        v6_bounds.update((int(net.network_address), int(net.broadcast_address) + 1))
    mapped = int(ipaddress.IPv6Address("::ffff:0:0"))
    v6_bounds.update(mapped + bound for bound in v4_bounds)  # IPv4-mapped follows IPv4
    result: dict[int, Ranges] = {}
    for version, bounds in ((4, v4_bounds), (6, v6_bounds)):
        edges = sorted(bounds)
        ranges = [
            (first, following - 1)
            for first, following in itertools.pairwise(edges)
            if is_public(version, first)
        ]
        result[version] = normalise(ranges)
    return Space(result[4], result[6])


def public_part(space: Space) -> Space:
    """The public (globally reachable) addresses of ``space``."""
    table = global_space()
    return Space(_intersect_sorted(space.v4, table.v4), _intersect_sorted(space.v6, table.v6))


def is_public(version: int, value: int) -> bool:
    """``is_global`` of the address (``ip_address(int)`` would read small integers as IPv4)."""
    address = ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)
    return address.is_global


# --- reachability -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineReach:
    """One client line: what it matches, what reaches it first, and the public part of that."""

    number: int
    space: Space
    reachable: Space
    public: Space

    @property
    def unreachable(self) -> bool:
        return self.reachable.is_empty


@dataclass(frozen=True, slots=True)
class Analysis:
    """Every client line's reachable set, in file order, and what no client line matches."""

    lines: tuple[LineReach, ...]
    unmatched: Space
    unmatched_public: Space
    total_public: int

    def by_number(self) -> dict[int, LineReach]:
        return {reach.number: reach for reach in self.lines}


def _owners(items: Sequence[tuple[int, Ranges]], last: int) -> tuple[list[list[Range]], Ranges]:
    """For each item (order, ranges), the segments it owns; and the segments nobody matches."""
    events: list[tuple[int, int, int]] = []  # (first, order, last)
    for order, (_number, ranges) in enumerate(items):
        for first, end in ranges:
            events.append((first, order, end))
    events.sort()
    owned: list[list[Range]] = [[] for _ in items]
    unmatched: list[Range] = []
    coords = sorted({first for first, _o, _e in events} | {end + 1 for _f, _o, end in events})
    heap: list[tuple[int, int]] = []  # (order, last)
    event = 0
    position = 0
    for index, coord in enumerate(coords):
        if coord > last:
            break
        while event < len(events) and events[event][0] == coord:
            _first, order, end = events[event]
            heapq.heappush(heap, (order, end))
            event += 1
        while heap and heap[0][1] < coord:
            heapq.heappop(heap)
        following = coords[index + 1] if index + 1 < len(coords) else last + 1
        segment_last = min(following, last + 1) - 1
        if position < coord:
            unmatched.append((position, coord - 1))
        target = owned[heap[0][0]] if heap else unmatched
        if target and target[-1][1] == coord - 1:
            target[-1] = (target[-1][0], segment_last)
        else:
            target.append((coord, segment_last))
        position = segment_last + 1
    if position <= last:
        unmatched.append((position, last))
    return owned, normalise(unmatched)


def analyse(lines: Iterable[EffectLine]) -> Analysis:
    """The reachable set of every client-IP rule line of ``lines`` (in any order: sorted by
    number here), in near-linear time; never raises."""
    clients = sorted(
        (
            line
            for line in lines
            if line.kind is LineKind.RULE and line.pattern_kind in CLIENT_KINDS
        ),
        key=lambda line: line.number,
    )
    spaces = [client_space(line) for line in clients]
    owned: dict[int, list[list[Range]]] = {}
    unmatched: dict[int, Ranges] = {}
    for version in (4, 6):
        items = [
            (line.number, space.ranges(version))
            for line, space in zip(clients, spaces, strict=True)
        ]
        owned[version], unmatched[version] = _owners(items, _LAST[version])
    reaches = []
    for index, (line, space) in enumerate(zip(clients, spaces, strict=True)):
        reachable = Space(tuple(owned[4][index]), tuple(owned[6][index]))
        reaches.append(LineReach(line.number, space, reachable, public_part(reachable)))
    rest = Space(unmatched[4], unmatched[6])
    return Analysis(tuple(reaches), rest, public_part(rest), global_space().size())


# --- showing and sampling -----------------------------------------------------------------------


def address_text(version: int, value: int) -> str:
    """The canonical text of an address (RFC 5952 for IPv6), as the simulator reads clients."""
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def range_text(version: int, first: int, last: int) -> str:
    """``a.b.c.d`` for one address, the CIDR when the range is one network, else ``a – b``."""
    if first == last:
        return address_text(version, first)
    size = last - first + 1
    if size & (size - 1) == 0 and first % size == 0:
        bits = 32 if version == 4 else 128
        return f"{address_text(version, first)}/{bits - size.bit_length() + 1}"
    return f"{address_text(version, first)}–{address_text(version, last)}"


def space_text(space: Space, *, limit: int = 4) -> str:
    """The ranges of ``space`` as text, the first ``limit`` of them, then "… (N more)"."""
    items = [range_text(v, first, last) for v in (4, 6) for first, last in space.ranges(v)]
    shown = ", ".join(items[:limit])
    return f"{shown}, … (+{len(items) - limit})" if len(items) > limit else shown


def _boundaries(first: int, last: int, version: int) -> list[int]:
    points = [first, last, first - 1, last + 1]
    steps = (8, 16, 24) if version == 4 else (16, 32, 48, 64, 80, 96, 112)
    for bits in steps:  # the octet (or group) steps inside the range, both sides of each
        step = 1 << bits
        boundary = (first // step + 1) * step
        if first < boundary <= last:
            points += [boundary - 1, boundary]
    return points


def sample_range(version: int, first: int, last: int, *, seed: str, randoms: int = 3) -> list[int]:
    """Addresses to probe for one range: first, last, the neighbours just outside it, both
    sides of every octet step inside it, and ``randoms`` seeded random ones. Deterministic."""
    rng = random.Random(f"{seed}:{version}:{first}:{last}")
    points = _boundaries(first, last, version)
    points += [rng.randint(first, last) for _ in range(randoms)]
    seen: set[int] = set()
    out: list[int] = []
    for point in points:
        if 0 <= point <= _LAST[version] and point not in seen:
            seen.add(point)
            out.append(point)
    return out


def sample_space(space: Space, *, seed: str, max_ranges: int = 8) -> list[tuple[int, int]]:
    """(version, value) probes for the first ``max_ranges`` ranges of ``space`` and its last."""
    out: list[tuple[int, int]] = []
    for version in (4, 6):
        ranges = space.ranges(version)
        chosen = list(ranges[:max_ranges])
        if len(ranges) > max_ranges:
            chosen.append(ranges[-1])
        for first, last in chosen:
            out += [(version, value) for value in sample_range(version, first, last, seed=seed)]
    return out


def bisect_ranges(ranges: Ranges, value: int) -> bool:
    """Whether ``value`` lies in the normalised ``ranges``."""
    index = bisect_left(ranges, (value + 1, -1)) - 1
    return index >= 0 and ranges[index][0] <= value <= ranges[index][1]
