"""What is wrong or risky in an effect.dat, as findings with effect.dat line numbers.

``validate_rules(effect, gateway_mode=..., aliases=..., outside_sites=..., outside_site_limit=...)``
never raises and is near-linear in lines + aliases. ``gateway_mode`` is True for the operating
modes "gateway" and "both": there the file itself must stop outside hosts from relaying.
``aliases`` decide whether ``default`` is dangerous: with any alias, every real address is a
local sender that anyone can forge, so the built-in table relays for it. ``outside_sites`` are
the line numbers of rows declared 社外拠点 (a branch office or data centre with a fixed global
address). Every finding about a line carries that line's number; findings about the file as a
whole (a missing line) have ``line=None``.

Address-space reasoning (:mod:`relaypolicy.addrspace`): for each client-IP line, the addresses
that reach it (its range minus everything matched above it, ``*`` prefixes as exact ranges) and
the public part of them (``ipaddress``'s ``is_global``). A line **lets outside clients relay**
when public addresses reach it and its effective modifier is trusted (bare, ``true``, ``only``)
or ``default`` while aliases exist; that is an error unless the row is a declared outside site
within the limit. Where the vendor is silent the reading under which more mail relays is taken
(spec §3.1): an unknown or ignored modifier is ``default``.

=========== ======= ===============================================================================
code        level   meaning
=========== ======= ===============================================================================
relay.E001  error   line is not a rule, comment or blank line (unrecognised pattern, TAB at start)
relay.E002  error   IPv4 octet above 255
relay.E003  error   IPv4 pattern with the wrong number of octets
relay.E004  error   octet with leading zeros (``010``): some programs read it as octal
relay.E005  error   CIDR prefix length missing, malformed or above 32
relay.E006  error   malformed IPv6 address or prefix
relay.E007  error   unknown ``#`` keyword (known: ``#<>``, ``#blank``, ``#number``, ``#nodomain``,
                    ``#host``)
relay.E008  error   sender address pattern with more than two ``*``
relay.E009  error   line longer than 255 bytes
relay.E010  error   non-ASCII characters in a rule line
relay.E011  error   trusted (bare, ``true`` or ``only``) rule for every client: open relay
relay.E012  error   trusted sender rule: anyone, from anywhere, can claim that sender
relay.E013  error   gateway mode without a catch-all norelay/false line deciding last
relay.E014  error   bytes neither ASCII nor CP932 (reported by ``decode_effect``)
relay.E015  error   trusted client rule reached by public addresses (not a declared outside site):
                    open relay for those addresses
relay.E016  error   ``default`` (or an ignored modifier) on a client rule reached by public
                    addresses while aliases exist: forged local senders relay from there
relay.E017  error   sender rule applying ``default`` that an alias-made local sender matches, and
                    that public clients reach: anyone claiming such a sender relays
relay.E018  error   declared outside site reached by more public addresses than the limit
relay.E019  error   gateway: the final catch-all is never reached by IPv4 (or IPv6) clients, and a
                    line above that takes them lets relaying through (not norelay/false)
relay.E020  error   no line matches some public addresses while aliases exist (no catch-all in
                    mail-server mode): the built-in table relays forged local senders
relay.E021  error   control character in a line (TAB and a line-ending CR excepted)
relay.E022  error   unknown modifier whose likely meaning (``flase``, ``norelay,3``) is stronger
                    than the ``default`` the daemon applies
relay.E023  error   two spaces or a TAB before a modifier stronger than the ``default`` the daemon
                    applies instead (``false``, ``norelay*``)
relay.E024  error   more lines than the supported maximum (:data:`MAX_LINES`)
relay.W001  warning unknown modifier: the line behaves like ``default`` (not weaker than meant)
relay.W002  warning two spaces or a TAB before the modifier: it is ignored, ``default`` applies
                    (not weaker than written)
relay.W003  warning trailing spaces or TABs
relay.W004  warning CIDR with host bits set (the network is used)
relay.W005  warning ``*`` glued to digits or followed by more octets: says what it really matches
relay.W006  warning rule below a catch-all: never reached
relay.W007  warning ``#<>`` / ``#blank`` below IP rules: shadowed for those clients
relay.W008  warning (retired: a trusted rule covering public addresses is now relay.E015, or
                    relay.W020 for a declared outside site)
relay.W009  warning trusted private range broader than a /16
relay.W010  warning duplicate of an earlier rule: never takes effect
relay.W011  warning shadowed by an earlier broader rule with a different effect
relay.W012  warning ``only`` used: the manuals disagree on it, use ``norelay``
relay.W013  warning ``norelay,1`` is documented as unused and acts like ``norelay``
relay.W014  warning norelay on a line that is not a catch-all: its flag can leak into other sessions
relay.W015  warning ``false`` catch-all: refuses all outside mail, inbound included
relay.W016  warning gateway: sender rule with ``default`` above the terminator (forged senders pass)
relay.W017  warning ``#<> default`` missing, altered or not at the top
relay.W018  warning ``#blank false`` missing, altered or not at the top
relay.W019  warning line read as CP932 (reported by ``decode_effect``)
relay.W020  warning declared outside site: names exactly the public addresses that may relay
relay.W021  warning client rule never reached (for every client, or for IPv4 or IPv6 clients): the
                    lines above it together match every address it matches
relay.I001  info    mail-server mode without a catch-all: fine, outside-to-outside relay is refused
relay.I002  info    non-ASCII characters in a comment
relay.I003  info    redundant: an earlier broader rule already gives the same effect
=========== ======= ===============================================================================

"Trusted" means the effective modifier lets matching sessions relay: bare, ``true`` and ``only``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from aliases.aliasfile import Alias, AliasIndex
from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _
from relaypolicy.addrspace import (
    EMPTY,
    Analysis,
    LineReach,
    Space,
    analyse,
    client_space,
    octet_values,
    space_text,
)
from relaypolicy.addrspace import _runs as _runs
from relaypolicy.effectfile import (
    CLIENT_KINDS,
    TERMINATOR_MODIFIERS,
    EffectFile,
    EffectLine,
    LineKind,
    Modifier,
    PatternKind,
    format_rule,
    pattern_network,
)

__all__ = ["MAX_LINES", "OUTSIDE_SITE_LIMIT", "octet_values", "validate_rules"]

MAX_LINE_BYTES = 255
#: The most lines an effect.dat may have here: far above any real gateway's few dozen, low
#: enough that every page and check over it stays fast (relay.E024).
MAX_LINES = 20_000
#: The default of 全設定's "outside site limit": public addresses one declared site may hold.
OUTSIDE_SITE_LIMIT = 256

_V4_LAST = (1 << 32) - 1
_V6_LAST = (1 << 128) - 1
_BROADEST_PRIVATE = {4: 1 << 16, 6: 1 << 80}  # a /16, a /48
_TRUSTED = (Modifier.TRUE, Modifier.ONLY)
_TERMINATORS = frozenset(TERMINATOR_MODIFIERS)
_NORELAYS = frozenset({Modifier.NORELAY, Modifier.NORELAY_0, Modifier.NORELAY_2})
_ADDRESS_LIKE = frozenset(
    {PatternKind.SENDER_DOMAIN, PatternKind.SENDER_ADDRESS, PatternKind.KEYWORD}
)
_SESSION_KEYWORDS = frozenset({PatternKind.NULL_SENDER, PatternKind.BLANK_SENDER})
#: How much a modifier restricts, weakest first: a typo that makes the daemon apply a weaker
#: modifier than the one written opens the gateway further than the admin meant.
_STRENGTH = {
    Modifier.TRUE: 0,
    Modifier.BARE: 0,
    Modifier.ONLY: 0,
    Modifier.DEFAULT: 1,
    Modifier.NORELAY: 2,
    Modifier.NORELAY_1: 2,
    Modifier.NORELAY_2: 2,
    Modifier.NORELAY_0: 3,
    Modifier.FALSE: 4,
}
# Control characters (TAB and a CR ending the line excepted: the validator explains those).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x80-\x9f\u2028\u2029]")


def validate_rules(
    effect: EffectFile,
    *,
    gateway_mode: bool,
    aliases: Sequence[Alias] = (),
    outside_sites: Collection[int] = (),
    outside_site_limit: int = OUTSIDE_SITE_LIMIT,
) -> list[Finding]:
    """Every finding about ``effect``, ordered by line (file-wide findings last); never raises.

    ``aliases`` (in storage order) decide whether ``default`` lets forged senders relay;
    ``outside_sites`` are the line numbers of rows declared 社外拠点, each allowed at most
    ``outside_site_limit`` public addresses. Near-linear in lines + aliases.
    """
    rules = [_Rule.of(line) for line in effect.rules]
    analysis = analyse(effect.rules)
    findings: list[Finding] = []
    if len(effect.lines) > MAX_LINES:
        findings.append(
            make(
                Level.ERROR,
                "relay.E024",
                _(
                    "effect.dat has %(count)s lines; at most %(limit)s are supported. A gateway "
                    "needs a few dozen: list networks (192.168.1.0/24) instead of single hosts."
                ),
                hint=_("Merge single addresses into networks and remove unused lines."),
                count=len(effect.lines),
                limit=MAX_LINES,
            )
        )
    for line in effect.lines:
        findings.extend(_check_line(line))
    findings.extend(_check_header(effect.rules))
    reported: set[int] = set()
    findings.extend(_check_order(rules, reported))
    findings.extend(
        _check_terminator(rules, gateway_mode=gateway_mode, aliases_exist=bool(aliases))
    )
    context = _Context(
        gateway_mode=gateway_mode,
        locals=_LocalSenders.build(aliases),
        sites=frozenset(outside_sites),
        limit=outside_site_limit,
        effective={rule.line.number: rule.effective for rule in rules},
    )
    findings.extend(_check_reach(rules, analysis, context, reported))
    return sorted(findings, key=lambda f: (f.line is None, f.line or 0, f.code))


# --- what a rule covers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    line: EffectLine
    prefix: str | None
    space: Space  # IPv4/IPv6 addresses matched; EMPTY for sender rules
    key: tuple[object, ...]  # equal keys = the same pattern written twice
    effective: Modifier

    @classmethod
    def of(cls, line: EffectLine) -> _Rule:
        prefix = line.wildcard_prefix
        space = client_space(line)
        effective = line.effective
        if prefix is not None:
            return cls(line, prefix, space, ("prefix", prefix), effective)
        if line.pattern_kind in CLIENT_KINDS:
            return cls(line, None, space, ("net", space), effective)
        return cls(line, None, EMPTY, (line.pattern_kind, line.pattern.lower()), effective)

    @property
    def is_client(self) -> bool:
        return self.line.pattern_kind in CLIENT_KINDS


def _sender_covers(earlier: EffectLine, later: EffectLine) -> bool:
    wide, narrow = earlier.pattern.lower(), later.pattern.lower()
    if later.pattern_kind is PatternKind.SENDER_ADDRESS and "*" not in narrow:
        if earlier.pattern_kind is PatternKind.SENDER_ADDRESS:
            return "*" in wide and _glob_matches(wide, narrow)
        domain = narrow.rpartition("@")[2]
    elif later.pattern_kind is PatternKind.SENDER_DOMAIN:
        domain = narrow.removeprefix("*.")
        if earlier.pattern_kind is PatternKind.SENDER_DOMAIN and wide.startswith("*."):
            return domain.endswith(wide[1:])
        return False
    else:
        return False
    if earlier.pattern_kind is not PatternKind.SENDER_DOMAIN:
        return False
    return domain.endswith(wide[1:]) if wide.startswith("*.") else domain == wide


def _glob_matches(glob: str, text: str) -> bool:
    first, *middle_and_last = glob.split("*")
    if not text.startswith(first):
        return False
    position = len(first)
    *middle, last = middle_and_last
    for part in middle:
        found = text.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return len(text) - position >= len(last) and text.endswith(last)


# --- per-line checks ------------------------------------------------------------------------


def _check_line(line: EffectLine) -> Iterator[Finding]:
    control = _CONTROL.search(line.text.rstrip("\r"))
    if control is not None:
        yield make(
            Level.ERROR,
            "relay.E021",
            _(
                "This line holds the control character %(char)s (position %(position)s). "
                "Programs split lines and words differently around control characters, so the "
                "daemon may read a different rule than the one shown here."
            ),
            line=line.number,
            hint=_("Retype the line with letters, digits, dots and single spaces only."),
            char=f"U+{ord(control.group()):04X}",
            position=control.start() + 1,
        )
    ascii_only = line.text.isascii()
    size = len(line.text) if ascii_only else len(line.text.encode("cp932", errors="replace"))
    if size > MAX_LINE_BYTES:
        yield make(
            Level.ERROR,
            "relay.E009",
            _(
                "This line is %(size)s bytes long; the daemon reads at most 255 bytes per line, "
                "so the rest may be cut off or read as a separate line."
            ),
            line=line.number,
            hint=_("Shorten the line to 255 bytes or fewer; split a long comment into several."),
            size=size,
        )
    if line.kind is LineKind.COMMENT:
        if not ascii_only:
            yield make(
                Level.INFO,
                "relay.I002",
                _(
                    "This comment contains non-ASCII characters. The daemon skips comments, "
                    "but the vendor asks for an ASCII-only effect.dat."
                ),
                line=line.number,
                hint=_("Write comments in English or romaji to be safe."),
            )
        return
    if line.kind is LineKind.BLANK:
        yield from _check_trailing(line)
        return
    if not ascii_only:
        yield make(
            Level.ERROR,
            "relay.E010",
            _(
                "'%(text)s' contains non-ASCII characters (full-width letters or spaces?); the "
                "daemon compares bytes, so this rule does not work as written."
            ),
            line=line.number,
            hint=_("Retype the rule in ASCII (half-width characters)."),
            text=line.text,
        )
    if line.kind is LineKind.UNPARSABLE:
        if ascii_only:
            yield _diagnose(line)
        return
    yield from _check_modifier(line)
    yield from _check_trailing(line)
    yield from _check_pattern(line)


def _check_trailing(line: EffectLine) -> Iterator[Finding]:
    if line.trailing.strip("\r"):
        yield make(
            Level.WARNING,
            "relay.W003",
            _(
                "This line ends with spaces or TABs. They are ignored here, but it is not "
                "confirmed that the daemon ignores them too."
            ),
            line=line.number,
            hint=_("Delete the trailing whitespace."),
        )


def intended_modifier(line: EffectLine) -> Modifier | None:
    """What the admin most likely meant by the modifier text of ``line`` (known modifiers as
    written; ``norelay,3`` -> norelay; ``flase`` -> false by spelling); None if unguessable."""
    written = line.modifier
    if written is not None or not line.modifier_text:
        return written
    text = line.modifier_text.lower().strip()
    known = {m.value: m for m in Modifier if m is not Modifier.BARE}
    if text in known:
        return known[text]
    if text.startswith("norelay"):
        return known.get(text.replace(" ", ""), Modifier.NORELAY)
    close = difflib.get_close_matches(text, list(known), n=1, cutoff=0.6)
    return known[close[0]] if close else None


def weakened(line: EffectLine) -> bool:
    """True when the daemon applies a weaker modifier than the one written (a typo that opens
    the gateway): see :func:`intended_modifier`."""
    if line.kind is not LineKind.RULE or (line.separator_ok and line.modifier is not None):
        return False
    intended = intended_modifier(line)
    return intended is not None and _STRENGTH[intended] > _STRENGTH[line.effective]


def _check_modifier(line: EffectLine) -> Iterator[Finding]:
    written = line.modifier
    weaker = weakened(line)
    intended = intended_modifier(line)
    if not line.separator_ok:
        canonical = (
            format_rule(line.pattern, written)
            if written is not None
            else f"{line.pattern} {line.modifier_text}"
        )
        if weaker and written is not None:
            yield make(
                Level.ERROR,
                "relay.E023",
                _(
                    "'%(text)s' is written with '%(modifier)s', but more than one space or a TAB "
                    "separates it from the pattern: the daemon ignores it and applies 'default', "
                    "which is weaker. Matching clients are not restricted as written."
                ),
                line=line.number,
                hint=_("Separate pattern and modifier with exactly one space: %(canonical)s"),
                text=line.text,
                modifier=line.modifier_text,
                canonical=canonical,
            )
        elif written is Modifier.DEFAULT:
            yield make(
                Level.WARNING,
                "relay.W002",
                _(
                    "'%(text)s' has more than one space or a TAB before 'default': the daemon "
                    "ignores the modifier, which changes nothing here because it applies "
                    "'default' anyway."
                ),
                line=line.number,
                hint=_("Separate pattern and modifier with exactly one space: %(canonical)s"),
                text=line.text,
                canonical=canonical,
            )
        elif not (weaker and written is None):
            yield make(
                Level.WARNING,
                "relay.W002",
                _(
                    "'%(text)s' has more than one space or a TAB before '%(modifier)s', so the "
                    "daemon ignores '%(modifier)s' and applies 'default' to matching sessions."
                ),
                line=line.number,
                hint=_("Separate pattern and modifier with exactly one space: %(canonical)s"),
                text=line.text,
                modifier=line.modifier_text,
                canonical=canonical,
            )
    if written is None:
        if weaker and intended is not None:
            yield make(
                Level.ERROR,
                "relay.E022",
                _(
                    "'%(modifier)s' is not a modifier E-Post knows (did you mean '%(intended)s'?): "
                    "the daemon silently applies 'default', which is weaker, so matching clients "
                    "are not restricted as written."
                ),
                line=line.number,
                hint=_("Write %(canonical)s"),
                modifier=line.modifier_text,
                intended=intended.value,
                canonical=format_rule(line.pattern, intended),
            )
            return
        yield make(
            Level.WARNING,
            "relay.W001",
            _(
                "'%(modifier)s' is not a modifier E-Post knows; the daemon silently treats "
                "this line as 'default'."
            ),
            line=line.number,
            hint=_(
                "Use one of: true, false, default, norelay, norelay,0, norelay,2 "
                "(or nothing for trusted)."
            ),
            modifier=line.modifier_text,
        )
        return
    if not line.separator_ok:
        return
    effective = line.effective
    if effective is Modifier.ONLY:
        yield make(
            Level.WARNING,
            "relay.W012",
            _(
                "'only' is used on this line: the manuals disagree on what it does to the "
                "lines below it, so the outcome is uncertain."
            ),
            line=line.number,
            hint=_("List the allowed clients with 'default' and end with '*.*.*.* norelay'."),
        )
    if written is Modifier.NORELAY_1:
        yield make(
            Level.WARNING,
            "relay.W013",
            _("'norelay,1' is documented as unused; the daemon treats it like 'norelay'."),
            line=line.number,
            hint=_("Write 'norelay' (or 'norelay,2' / 'norelay,0' for the SMTP AUTH variants)."),
        )
    if effective in _NORELAYS and not line.matches_every_client:
        yield make(
            Level.WARNING,
            "relay.W014",
            _(
                "'%(text)s' uses norelay on a pattern that is not a catch-all. The norelay "
                "flag can leak into sessions this line did not match."
            ),
            line=line.number,
            hint=_(
                "Use 'false' to refuse these clients, or rely on the final '*.*.*.* norelay' "
                "line and remove this one."
            ),
            text=line.text,
        )


def _check_pattern(line: EffectLine) -> Iterator[Finding]:
    if line.pattern_kind is PatternKind.CIDR:
        network = pattern_network(line.pattern)
        if line.pattern != str(network):
            yield make(
                Level.WARNING,
                "relay.W004",
                _(
                    "%(pattern)s has host bits set: it matches the whole network %(network)s, "
                    "not just one host."
                ),
                line=line.number,
                hint=_("Write %(network)s for the network, or the address alone for one host."),
                pattern=line.pattern,
                network=str(network),
            )
    elif line.pattern_kind is PatternKind.IPV4_WILDCARD:
        yield from _check_wildcard(line)


def _check_wildcard(line: EffectLine) -> Iterator[Finding]:
    pattern = line.pattern
    prefix = pattern.split("*", 1)[0]
    rest = pattern[len(prefix) :]
    if prefix == "":
        yield make(
            Level.WARNING,
            "relay.W005",
            _(
                "'%(pattern)s' matches every client: only the text before the first * counts, "
                "and here there is none."
            ),
            line=line.number,
            hint=_("Write the catch-all as *.*.*.* so that it is recognised as the final line."),
            pattern=pattern,
        )
        return
    *complete, partial = prefix.split(".")
    stars_only = rest.replace(".*", "") == "*"
    if partial == "" and stars_only:
        return  # the clean forms: 10.*.*.*, 192.168.*, 192.168.1.*
    missing = 3 - len(complete)
    suggestion = ".".join([*complete, partial or "*"] + ["*"] * missing)
    if partial == "":
        yield make(
            Level.WARNING,
            "relay.W005",
            _(
                "'%(pattern)s' matches every client whose address starts with '%(prefix)s': "
                "everything after the first * ('%(ignored)s') is ignored."
            ),
            line=line.number,
            hint=_("Write %(suggestion)s to say what it matches, or list the hosts one by one."),
            pattern=pattern,
            prefix=prefix,
            ignored=rest[1:],
            suggestion=suggestion,
        )
        return
    base = ".".join(complete) + "." if complete else ""
    tail = ".x" * missing
    matches = ", ".join(
        f"{base}{first}{tail}" if first == last else f"{base}{first}–{last}{tail}"
        for first, last in _runs(octet_values(partial))
    )
    yield make(
        Level.WARNING,
        "relay.W005",
        _(
            "'%(pattern)s' matches every client whose address starts with '%(prefix)s' "
            "(compared as text, not by octet): %(matches)s."
        ),
        line=line.number,
        hint=_("Write %(suggestion)s if you mean only %(base)s%(partial)s%(tail)s."),
        pattern=pattern,
        prefix=prefix,
        matches=matches,
        suggestion=suggestion,
        base=base,
        partial=partial,
        tail=tail,
    )


# --- who can reach a line, and may relay there ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LocalSenders:
    """Which sender patterns an alias (a local-existing address, forgeable by anyone) matches."""

    index: AliasIndex
    domains: frozenset[str]
    wildcard_domains: frozenset[str]
    exact: dict[str, list[str]] = field(default_factory=dict)  # domain -> folded addresses

    @classmethod
    def build(cls, aliases: Sequence[Alias]) -> _LocalSenders:
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
            candidates = [d for d in self.domains if _glob_matches(domain, d)]
        else:
            candidates = [domain] if domain in self.domains else []
        budget = 10_000
        for candidate in candidates:
            if candidate in self.wildcard_domains:
                return True
            for address in self.exact.get(candidate, ()):
                budget -= 1
                if budget < 0 or _glob_matches(pattern, address):
                    return True
        return False


@dataclass(frozen=True, slots=True)
class _Context:
    gateway_mode: bool
    locals: _LocalSenders
    sites: frozenset[int]
    limit: int
    effective: dict[int, Modifier] = field(default_factory=dict)  # by line number


_VERSION_NAMES = {4: "IPv4", 6: "IPv6"}


def _check_reach(
    rules: Sequence[_Rule], analysis: Analysis, context: _Context, reported: set[int]
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
                and line.pattern_kind in _ADDRESS_LIKE
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
    line: EffectLine, public: Space, context: _Context, *, relays: bool
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
    rule: _Rule,
    reach: LineReach,
    analysis: Analysis,
    context: _Context,
    catch_all: _Rule | None,
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
        and line.effective in _TERMINATORS
    )
    if is_terminator:
        for version in dead:
            owners = [
                other
                for other in analysis.lines
                if other.number < line.number and other.public.ranges(version)
            ]
            openers = [
                other for other in owners if context.effective[other.number] not in _TERMINATORS
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


def _diagnose(line: EffectLine) -> Finding:
    """The most specific error for an UNPARSABLE (ASCII) line."""
    pattern = line.pattern
    if pattern.startswith("#"):
        return make(
            Level.ERROR,
            "relay.E007",
            _("'%(pattern)s' is not a sender keyword E-Post knows; the daemon ignores this line."),
            line=line.number,
            hint=_("Known keywords (lower case): #<>, #blank, #number, #nodomain, #host."),
            pattern=pattern,
        )
    if "@" in pattern and pattern.count("*") > 2:
        return make(
            Level.ERROR,
            "relay.E008",
            _("'%(pattern)s' has more than two *; a sender address pattern allows at most two."),
            line=line.number,
            hint=_("Use a sender domain (abc.co.jp) or fewer wildcards."),
            pattern=pattern,
        )
    if ":" in pattern and "@" not in pattern:
        return make(
            Level.ERROR,
            "relay.E006",
            _("'%(pattern)s' is not a valid IPv6 address or prefix; this line never matches."),
            line=line.number,
            hint=_("Write an IPv6 address (2001:db8::1) or network (2001:db8::/32)."),
            pattern=pattern,
        )
    if pattern and set(pattern) <= set("0123456789./*"):
        found = _diagnose_ipv4(line)
        if found is not None:
            return found
    hint = (
        _("A line starting with a TAB is not a comment: start comments with an apostrophe (').")
        if line.text.startswith("\t")
        else _("Write an IP address, CIDR network, wildcard, sender domain or sender address.")
    )
    return make(
        Level.ERROR,
        "relay.E001",
        _("'%(text)s' is not a rule E-Post understands; the daemon ignores this line."),
        line=line.number,
        hint=hint,
        text=line.text,
    )


def _diagnose_ipv4(line: EffectLine) -> Finding | None:
    pattern = line.pattern
    address, slash, length = pattern.partition("/")
    parts = address.split(".")
    if "" in parts or (slash and "*" in pattern):
        return None
    chunks = [chunk for part in parts for chunk in part.split("*") if chunk]
    if any(len(chunk) > 1 and chunk.startswith("0") for chunk in chunks):
        fixed = ".".join(
            "*".join(chunk.lstrip("0") or "0" if chunk else "" for chunk in part.split("*"))
            for part in parts
        )
        return make(
            Level.ERROR,
            "relay.E004",
            _(
                "'%(pattern)s' has an octet with leading zeros: some programs read 010 as "
                "decimal 10, others as octal 8, so it is unclear which hosts match."
            ),
            line=line.number,
            hint=_("Write %(fixed)s if you mean decimal."),
            pattern=pattern,
            fixed=fixed + slash + length,
        )
    if any(int(chunk) > 255 for chunk in chunks):
        return make(
            Level.ERROR,
            "relay.E002",
            _("'%(pattern)s' has an octet above 255; this line never matches."),
            line=line.number,
            hint=_("Each of the four numbers of an IPv4 address is 0 to 255."),
            pattern=pattern,
        )
    if len(parts) > 4 or ("*" not in pattern and len(parts) != 4):
        return make(
            Level.ERROR,
            "relay.E003",
            _(
                "'%(pattern)s' has %(count)s octets; an IPv4 address has four "
                "(e.g. 192.168.1.10), so this line never matches."
            ),
            line=line.number,
            hint=_("Write all four numbers, or end with * for a range (192.168.1.*)."),
            pattern=pattern,
            count=len(parts),
        )
    if slash:
        return make(
            Level.ERROR,
            "relay.E005",
            _("'%(pattern)s' has an invalid prefix length; it must be a number from 0 to 32."),
            line=line.number,
            hint=_("For example 192.168.1.0/24 for 192.168.1.0 to 192.168.1.255."),
            pattern=pattern,
        )
    return None


# --- order-dependent checks -----------------------------------------------------------------


def _check_header(rules: Sequence[EffectLine]) -> Iterator[Finding]:
    head: list[EffectLine] = []
    for line in rules:
        if line.pattern_kind not in _SESSION_KEYWORDS:
            break
        head.append(line)
    expected = (
        (
            "#<> default",
            PatternKind.NULL_SENDER,
            "relay.W017",
            _(
                "The default line '#<> default' is missing: the null sender (bounces) is then "
                "decided by the lines below."
            ),
            _(
                "'%(text)s' should read exactly '#<> default' and sit at the top, above every "
                "other rule."
            ),
        ),
        (
            "#blank false",
            PatternKind.BLANK_SENDER,
            "relay.W018",
            _(
                "The default line '#blank false' is missing: an empty MAIL FROM is no longer "
                "refused."
            ),
            _(
                "'%(text)s' should read exactly '#blank false' and sit at the top, above every "
                "other rule."
            ),
        ),
    )
    for text, kind, code, missing, altered in expected:
        if any(line.text == text for line in head):
            continue
        found = next((line for line in rules if line.pattern_kind is kind), None)
        hint = _("The vendor's two default lines are '#<> default' and '#blank false'.")
        if found is None:
            yield make(Level.WARNING, code, missing, hint=hint)
        else:
            yield make(Level.WARNING, code, altered, line=found.number, hint=hint, text=found.text)


def _check_order(rules: Sequence[_Rule], reported: set[int]) -> Iterator[Finding]:
    """Duplicates, shadowed lines and misplaced keywords; adds the lines it reports on to
    ``reported``. Each line is compared only with the lines that can cover it (indexes)."""
    covers = _first_covers(rules)
    catch_all: EffectLine | None = None
    seen: dict[tuple[object, ...], EffectLine] = {}
    clients_above: list[int] = []
    for index, rule in enumerate(rules):
        line = rule.line
        if catch_all is not None:
            reported.add(line.number)
            yield make(
                Level.WARNING,
                "relay.W006",
                _(
                    "'%(text)s' is never used: the catch-all '%(catch_all)s' on line "
                    "%(catch_line)s above it already decides every session."
                ),
                line=line.number,
                hint=_("Move this line above line %(catch_line)s, or delete it."),
                text=line.text,
                catch_all=catch_all.text,
                catch_line=catch_all.number,
            )
            continue
        first = seen.get(rule.key)
        if first is not None:
            reported.add(line.number)
            yield make(
                Level.WARNING,
                "relay.W010",
                _(
                    "'%(text)s' repeats the pattern of line %(first_line)s ('%(first_text)s'); "
                    "the first matching line decides, so this line never takes effect."
                ),
                line=line.number,
                hint=_("Delete this line, or change line %(first_line)s instead."),
                text=line.text,
                first_line=first.number,
                first_text=first.text,
            )
        else:
            seen[rule.key] = line
            cover = covers.get(index)
            if cover is not None:
                reported.add(line.number)
                yield _shadowed(line, rules[cover].line)
        if line.pattern_kind in _SESSION_KEYWORDS and clients_above:
            above = clients_above
            shown = ", ".join(map(str, above[:3])) + (", ..." if len(above) > 3 else "")
            yield make(
                Level.WARNING,
                "relay.W007",
                _(
                    "'%(text)s' comes after IP rules (lines %(lines)s): sessions from clients "
                    "those lines match are decided there and never reach this line."
                ),
                line=line.number,
                hint=_("Keep '#<> default' and '#blank false' at the very top of the file."),
                text=line.text,
                lines=shown,
            )
        if rule.is_client and len(clients_above) < 4:
            clients_above.append(line.number)
        if line.matches_every_client:
            catch_all = line


def _shadowed(line: EffectLine, first: EffectLine) -> Finding:
    if line.effective is first.effective:
        return make(
            Level.INFO,
            "relay.I003",
            _(
                "'%(text)s' is redundant: line %(first_line)s ('%(first_text)s') already matches "
                "every session it matches, with the same effect."
            ),
            line=line.number,
            hint=_("You can delete this line."),
            text=line.text,
            first_line=first.number,
            first_text=first.text,
        )
    return make(
        Level.WARNING,
        "relay.W011",
        _(
            "'%(text)s' never takes effect: line %(first_line)s ('%(first_text)s') matches "
            "every session it matches and comes first."
        ),
        line=line.number,
        hint=_("Move this line above line %(first_line)s if it is an exception."),
        text=line.text,
        first_line=first.number,
        first_text=first.text,
    )


def _first_covers(rules: Sequence[_Rule]) -> dict[int, int]:
    """For each rule index, the index of the earliest earlier rule matching every session it
    matches (client rules by address ranges, sender rules by pattern), where there is one."""
    covers = _client_covers(rules)
    covers.update(_sender_covers_all(rules))
    return covers


class _MinTree:
    """A Fenwick tree over positions 1..size answering "smallest value among 1..n"."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._tree = [1 << 62] * (size + 1)

    def update(self, position: int, value: int) -> None:
        while position <= self._size:
            if value < self._tree[position]:
                self._tree[position] = value
            position += position & -position

    def query(self, position: int) -> int:
        best = 1 << 62
        while position > 0:
            best = min(best, self._tree[position])
            position -= position & -position
        return best


def _client_covers(rules: Sequence[_Rule]) -> dict[int, int]:
    clients = [index for index, rule in enumerate(rules) if rule.is_client]
    candidate: dict[int, int] = {}
    for version in (4, 6):
        ranges = [
            (first, last, index)
            for index in clients
            for first, last in rules[index].space.ranges(version)
        ]
        if not ranges:
            continue
        # Ranks of the range ends, largest first: "ends at or after b" is a prefix of ranks.
        ends = sorted({last for _first, last, _index in ranges}, reverse=True)
        rank = {last: position for position, last in enumerate(ends, start=1)}
        tree = _MinTree(len(ends))
        by_start = sorted(ranges)
        inserted = 0
        for first, last, index in sorted(ranges, key=lambda item: (item[0], -item[1])):
            while inserted < len(by_start) and by_start[inserted][0] <= first:
                _start, end, owner = by_start[inserted]
                tree.update(rank[end], owner)
                inserted += 1
            # Every end >= last has a rank <= rank[last] (ranks count down from the largest).
            best = tree.query(rank[last])
            candidate[index] = max(candidate.get(index, -1), best)
    covers: dict[int, int] = {}
    for index, best in candidate.items():
        if best < index and _inside(rules[index].space, rules[best].space):
            covers[index] = best
    return covers


def _inside(inner: Space, outer: Space) -> bool:
    return all(
        any(o_first <= first and last <= o_last for o_first, o_last in outer.ranges(version))
        for version in (4, 6)
        for first, last in inner.ranges(version)
    )


_GLOB_CHECKS = 256  # sender globs compared per line at most (only a warning depends on it)


def _sender_covers_all(rules: Sequence[_Rule]) -> dict[int, int]:
    domains: dict[str, int] = {}
    subdomains: dict[str, int] = {}
    globs: dict[str, list[int]] = {}  # glob rules by their domain ("" when it holds a *)
    covers: dict[int, int] = {}
    for index, rule in enumerate(rules):
        line = rule.line
        kind = line.pattern_kind
        pattern = line.pattern.lower()
        found: list[int] = []
        if kind is PatternKind.SENDER_ADDRESS and "*" not in pattern:
            domain = pattern.rpartition("@")[2]
            found += [domains[domain]] if domain in domains else []
            found += _suffix_hits(domain, subdomains)
            candidates = (*globs.get(domain, ()), *globs.get("", ()))
            for other in candidates[:_GLOB_CHECKS]:
                if _sender_covers(rules[other].line, line):
                    found.append(other)
                    break
        elif kind is PatternKind.SENDER_DOMAIN:
            found += _suffix_hits(pattern.removeprefix("*."), subdomains)
        if found:
            covers[index] = min(found)
        if kind is PatternKind.SENDER_DOMAIN:
            if pattern.startswith("*."):
                subdomains.setdefault(pattern[2:], index)
            else:
                domains.setdefault(pattern, index)
        elif kind is PatternKind.SENDER_ADDRESS and "*" in pattern:
            domain = pattern.rpartition("@")[2]
            globs.setdefault("" if "*" in domain else domain, []).append(index)
    return covers


def _suffix_hits(domain: str, subdomains: dict[str, int]) -> list[int]:
    """Earlier ``*.x`` rules whose ``.x`` ends ``domain``."""
    hits = []
    dot = domain.find(".")
    while dot >= 0:
        hit = subdomains.get(domain[dot + 1 :])
        if hit is not None:
            hits.append(hit)
        dot = domain.find(".", dot + 1)
    return hits


def _check_terminator(
    rules: Sequence[_Rule], *, gateway_mode: bool, aliases_exist: bool = False
) -> Iterator[Finding]:
    catch_all = next((rule.line for rule in rules if rule.line.matches_every_client), None)
    protected = catch_all is not None and catch_all.effective in _TERMINATORS
    if gateway_mode and catch_all is None:
        yield make(
            Level.ERROR,
            "relay.E013",
            _(
                "There is no final '*.*.*.* norelay' line: outside hosts can relay through this "
                "gateway by claiming a sender in one of your domains."
            ),
            hint=_("Add '*.*.*.* norelay' as the last line, below your LAN addresses."),
        )
    elif gateway_mode and catch_all is not None and not protected:
        yield make(
            Level.ERROR,
            "relay.E013",
            _(
                "The catch-all '%(text)s' does not forbid relaying: outside hosts can relay "
                "through this gateway by claiming a sender in one of your domains."
            ),
            line=catch_all.number,
            hint=_("Change it to '*.*.*.* norelay'."),
            text=catch_all.text,
        )
    elif not gateway_mode and catch_all is None and not aliases_exist:
        yield make(
            Level.INFO,
            "relay.I001",
            _(
                "No final catch-all line. That is fine for a mail server, which refuses "
                "outside-to-outside relaying by default; a gateway would need '*.*.*.* norelay'."
            ),
        )
    if catch_all is not None and catch_all.effective is Modifier.FALSE:
        yield make(
            Level.WARNING,
            "relay.W015",
            _(
                "'%(text)s' refuses every client not listed above it: all outside mail is "
                "refused, inbound mail for your own users included."
            ),
            line=catch_all.number,
            hint=_("Use '*.*.*.* norelay' to stop relaying but keep receiving inbound mail."),
            text=catch_all.text,
        )
    if gateway_mode and catch_all is not None and protected:
        for rule in rules:
            line = rule.line
            if line is catch_all:
                break
            if line.pattern_kind in _ADDRESS_LIKE and line.effective is Modifier.DEFAULT:
                yield make(
                    Level.WARNING,
                    "relay.W016",
                    _(
                        "'%(text)s' comes before the final '%(catch_all)s': a host anywhere "
                        "that claims this sender stops here, never reaches the final line, and "
                        "gets the built-in table, which lets local senders relay."
                    ),
                    line=line.number,
                    hint=_("Remove this line, or use 'false' to refuse such senders."),
                    text=line.text,
                    catch_all=catch_all.text,
                )
