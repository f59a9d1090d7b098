"""Who can reach a line, and may relay there: the address-space checks (relay.E011, E012,
E015-E020, W009, W020, W021) over :mod:`relaypolicy.addrspace`'s analysis."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from aliases.aliasfile import Alias, AliasIndex
from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _
from relaypolicy.addrspace import Analysis, LineReach, Space, space_text
from relaypolicy.effectfile import EffectLine, Modifier, PatternKind
from relaypolicy.validation.rule import ADDRESS_LIKE, TERMINATORS, Rule, glob_matches

_V4_LAST = (1 << 32) - 1
_V6_LAST = (1 << 128) - 1
_BROADEST_PRIVATE = {4: 1 << 16, 6: 1 << 80}  # a /16, a /48
_TRUSTED = (Modifier.TRUE, Modifier.ONLY)


@dataclass(frozen=True, slots=True)
class LocalSenders:
    """Which sender patterns an alias (a local-existing address, forgeable by anyone) matches."""

    index: AliasIndex
    domains: frozenset[str]
    wildcard_domains: frozenset[str]
    exact: dict[str, list[str]] = field(default_factory=dict)  # domain -> folded addresses

    @classmethod
    def build(cls, aliases: Sequence[Alias]) -> LocalSenders:
        exact: dict[str, list[str]] = {}
        wildcard: set[str] = set()
        for alias in aliases:
            domain = alias.domain
            if not domain:
                continue
            if "*" in alias.local_part:
                wildcard.add(domain)
            else:
                exact.setdefault(domain, []).append(alias.pattern.lower())
        return cls(
            AliasIndex.build(aliases), frozenset(exact) | wildcard, frozenset(wildcard), exact
        )

    @property
    def exist(self) -> bool:
        return bool(self.domains)

    def may_match(self, line: EffectLine) -> bool:
        """Whether some alias-matched (local-existing) sender matches the sender ``line``;
        True when unsure (§3.1: the reading under which more mail relays)."""
        pattern = line.pattern.lower()
        kind = line.pattern_kind
        if kind is PatternKind.SENDER_DOMAIN:
            if pattern.startswith("*."):
                return any(domain.endswith(pattern[1:]) for domain in self.domains)
            return pattern in self.domains
        if kind is PatternKind.KEYWORD:
            if pattern == "#number":
                return any(set(domain) <= set("0123456789.") for domain in self.domains)
            if pattern == "#host":
                return any("." not in domain for domain in self.domains)
            return False  # "#nodomain": a sender without a domain is external (§3.1)
        if kind is not PatternKind.SENDER_ADDRESS:
            return False
        if "*" not in pattern:
            return self.index.lookup(pattern) is not None
        _local, _at, domain = pattern.rpartition("@")
        if "*" in domain:
            candidates = [d for d in self.domains if glob_matches(domain, d)]
        else:
            candidates = [domain] if domain in self.domains else []
        budget = 10_000
        for candidate in candidates:
            if candidate in self.wildcard_domains:
                return True
            for address in self.exact.get(candidate, ()):
                budget -= 1
                if budget < 0 or glob_matches(pattern, address):
                    return True
        return False


@dataclass(frozen=True, slots=True)
class Context:
    gateway_mode: bool
    locals: LocalSenders
    sites: frozenset[int]
    limit: int
    effective: dict[int, Modifier] = field(default_factory=dict)  # by line number


_VERSION_NAMES = {4: "IPv4", 6: "IPv6"}


def check_reach(
    rules: Sequence[Rule], analysis: Analysis, context: Context, reported: set[int]
) -> Iterator[Finding]:
    reaches = analysis.by_number()
    catch_all = next((rule for rule in rules if rule.line.matches_every_client), None)
    covered_public = 0
    for rule in rules:
        line = rule.line
        effective = rule.effective
        if not rule.is_client:
            if effective in _TRUSTED:
                yield _trusted_sender(line)
            elif (
                effective is Modifier.DEFAULT
                and line.pattern_kind in ADDRESS_LIKE
                and covered_public < analysis.total_public
                and context.locals.may_match(line)
            ):
                yield make(
                    Level.ERROR,
                    "relay.E017",
                    _(
                        "'%(text)s' applies 'default' to a sender that one of your aliases makes "
                        "local: any host on the Internet that claims such a sender stops at this "
                        "line, and the built-in table lets it relay anywhere."
                    ),
                    line=line.number,
                    hint=_("Remove this line, or change it to 'false' or 'norelay'."),
                    text=line.text,
                )
            continue
        reach = reaches[line.number]
        public = reach.public
        count = public.size()
        covered_public += count
        every = rule.space.v4 == ((0, _V4_LAST),) or rule.space.v6 == ((0, _V6_LAST),)
        if effective in _TRUSTED and every:
            yield make(
                Level.ERROR,
                "relay.E011",
                _(
                    "%(pattern)s is trusted: every host on the Internet may relay through this "
                    "server (open relay)."
                ),
                line=line.number,
                hint=_("End the file with '*.*.*.* norelay' and trust only your LAN addresses."),
                pattern=line.pattern,
            )
        relays = effective in _TRUSTED or (effective is Modifier.DEFAULT and context.locals.exist)
        if line.number in context.sites:
            yield from _outside_site(line, public, context, relays=relays)
        elif count and effective in _TRUSTED and not every:
            yield make(
                Level.ERROR,
                "relay.E015",
                _(
                    "'%(text)s' is trusted and reached by %(count)s public Internet address(es) "
                    "(%(ranges)s): every host there may relay through this server."
                ),
                line=line.number,
                hint=_(
                    "Trust only your LAN. If this is a branch office or data centre with a "
                    "fixed address, mark the row as an outside site and give a note."
                ),
                text=line.text,
                count=count,
                ranges=space_text(public),
            )
        elif (
            count
            and relays
            and effective is Modifier.DEFAULT
            and not (context.gateway_mode and catch_all is not None and line is catch_all.line)
        ):
            yield make(
                Level.ERROR,
                "relay.E016",
                _(
                    "'%(text)s' applies the built-in table to %(count)s public Internet "
                    "address(es) (%(ranges)s): a host there that forges a sender one of your "
                    "aliases makes local (any real address will do) may relay anywhere."
                ),
                line=line.number,
                hint=_(
                    "Limit the line to your LAN, or change it to norelay. For a branch office "
                    "with a fixed address, mark the row as an outside site and give a note."
                ),
                text=line.text,
                count=count,
                ranges=space_text(public),
            )
        if effective in _TRUSTED and not count and not every:
            broad = any(
                last - first + 1 > _BROADEST_PRIVATE[version]
                for version in (4, 6)
                for first, last in rule.space.ranges(version)
            )
            if broad:
                yield make(
                    Level.WARNING,
                    "relay.W009",
                    _(
                        "%(pattern)s trusts a very large private range (broader than a /16): any "
                        "infected or guest machine in it may relay."
                    ),
                    line=line.number,
                    hint=_(
                        "Narrow it to the subnets your mail clients really use, e.g. "
                        "192.168.1.0/24."
                    ),
                    pattern=line.pattern,
                )
        yield from _check_unreachable(rule, reach, analysis, context, catch_all, reported)
    if not context.gateway_mode and context.locals.exist and not analysis.unmatched_public.is_empty:
        yield make(
            Level.ERROR,
            "relay.E020",
            _(
                "No line matches %(count)s public Internet address(es) (%(ranges)s): the "
                "built-in table applies to them, so a host there that forges a sender one of "
                "your aliases makes local may relay anywhere."
            ),
            hint=_("Add '*.*.*.* norelay' as the last line, below your LAN addresses."),
            count=analysis.unmatched_public.size(),
            ranges=space_text(analysis.unmatched_public),
        )


def _trusted_sender(line: EffectLine) -> Finding:
    return make(
        Level.ERROR,
        "relay.E012",
        _(
            "'%(text)s' trusts a sender, but anyone can write any sender: every host on "
            "the Internet that claims it may relay through this server."
        ),
        line=line.number,
        hint=_("Trust client IP addresses instead, and let senders relay only with SMTP AUTH."),
        text=line.text,
    )


def _outside_site(
    line: EffectLine, public: Space, context: Context, *, relays: bool
) -> Iterator[Finding]:
    count = public.size()
    if count > context.limit:
        yield make(
            Level.ERROR,
            "relay.E018",
            _(
                "'%(text)s' is declared an outside site but reaches %(count)s public "
                "address(es) (%(ranges)s); an outside site may hold at most %(limit)s."
            ),
            line=line.number,
            hint=_(
                "Write the site's fixed address or its small network (for example "
                "203.0.113.8/29), or raise the outside-site limit on 全設定."
            ),
            text=line.text,
            count=count,
            ranges=space_text(public),
            limit=context.limit,
        )
    elif count and relays:
        yield make(
            Level.WARNING,
            "relay.W020",
            _(
                "'%(text)s' is a declared outside site: these %(count)s public address(es) may "
                "relay through this gateway: %(ranges)s."
            ),
            line=line.number,
            hint=_("Check that exactly these addresses belong to your own site."),
            text=line.text,
            count=count,
            ranges=space_text(public, limit=count),
        )


def _check_unreachable(
    rule: Rule,
    reach: LineReach,
    analysis: Analysis,
    context: Context,
    catch_all: Rule | None,
    reported: set[int],
) -> Iterator[Finding]:
    line = rule.line
    if line.number in reported:
        return
    dead = [
        version
        for version in (4, 6)
        if rule.space.ranges(version) and not reach.reachable.ranges(version)
    ]
    if not dead:
        return
    is_terminator = (
        context.gateway_mode
        and catch_all is not None
        and line is catch_all.line
        and line.effective in TERMINATORS
    )
    if is_terminator:
        for version in dead:
            owners = [
                other
                for other in analysis.lines
                if other.number < line.number and other.public.ranges(version)
            ]
            openers = [
                other for other in owners if context.effective[other.number] not in TERMINATORS
            ]
            if openers:
                shown = ", ".join(str(other.number) for other in openers[:3])
                reported.add(line.number)
                yield make(
                    Level.ERROR,
                    "relay.E019",
                    _(
                        "The final line '%(text)s' is never reached by %(version)s clients: the "
                        "lines above it (line %(lines)s) match every %(version)s address first, "
                        "so it stops no outside host of that kind from relaying."
                    ),
                    line=line.number,
                    hint=_(
                        "Narrow line %(first)s to your LAN so that outside hosts reach the "
                        "final line."
                    ),
                    text=line.text,
                    version=_VERSION_NAMES[version],
                    lines=shown,
                    first=openers[0].number,
                )
                return
    reported.add(line.number)
    if len(dead) == len([v for v in (4, 6) if rule.space.ranges(v)]):
        yield make(
            Level.WARNING,
            "relay.W021",
            _(
                "'%(text)s' is never used: the lines above it together match every client "
                "address it matches."
            ),
            line=line.number,
            hint=_("Delete this line, or move it above the lines that take its addresses."),
            text=line.text,
        )
    else:
        yield make(
            Level.WARNING,
            "relay.W021",
            _(
                "'%(text)s' is never reached by %(version)s clients: the lines above it match "
                "every %(version)s address it matches."
            ),
            line=line.number,
            hint=_("Delete this line, or move it above the lines that take its addresses."),
            text=line.text,
            version=" / ".join(_VERSION_NAMES[v] for v in dead),
        )
