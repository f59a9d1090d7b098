"""What is wrong or risky in an effect.dat, as findings with effect.dat line numbers.

``validate_rules(effect, gateway_mode=...)`` never raises. ``gateway_mode`` is True for the
operating modes "gateway" and "both": there the file itself must stop outside hosts from relaying.
Every finding about a line carries that line's number; findings about the file as a whole
(a missing line) have ``line=None``.

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
relay.W001  warning unknown modifier: the line behaves like ``default``
relay.W002  warning two spaces or a TAB before the modifier: it is ignored, ``default`` applies
relay.W003  warning trailing spaces or TABs
relay.W004  warning CIDR with host bits set (the network is used)
relay.W005  warning ``*`` glued to digits or followed by more octets: says what it really matches
relay.W006  warning rule below a catch-all: never reached
relay.W007  warning ``#<>`` / ``#blank`` below IP rules: shadowed for those clients
relay.W008  warning trusted rule covering public (Internet) addresses
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
relay.I001  info    mail-server mode without a catch-all: fine, outside-to-outside relay is refused
relay.I002  info    non-ASCII characters in a comment
relay.I003  info    redundant: an earlier broader rule already gives the same effect
=========== ======= ===============================================================================

"Trusted" means the effective modifier lets matching sessions relay: bare, ``true`` and ``only``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _
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

MAX_LINE_BYTES = 255
# (version, first, last) address intervals: integer comparison keeps the O(n²) order checks fast.
Interval = tuple[int, int, int]

_V4_LAST = (1 << 32) - 1
_V6_LAST = (1 << 128) - 1
# Private meaning "not the Internet": RFC 1918, loopback, link-local, ULA. Python's is_private
# also counts the documentation ranges, which are public as far as this check is concerned.
_PRIVATE: tuple[Interval, ...] = tuple(
    (net.version, int(net.network_address), int(net.broadcast_address))
    for net in map(
        pattern_network,
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16"),
    )
) + tuple(
    (net.version, int(net.network_address), int(net.broadcast_address))
    for net in map(pattern_network, ("::1/128", "fc00::/7", "fe80::/10"))
)
_BROADEST_PRIVATE = {4: 1 << 16, 6: 1 << 80}  # a /16, a /48
_TRUSTED = (Modifier.TRUE, Modifier.ONLY)
_TERMINATORS = frozenset(TERMINATOR_MODIFIERS)
_NORELAYS = frozenset({Modifier.NORELAY, Modifier.NORELAY_0, Modifier.NORELAY_2})
_ADDRESS_LIKE = frozenset(
    {PatternKind.SENDER_DOMAIN, PatternKind.SENDER_ADDRESS, PatternKind.KEYWORD}
)
_SESSION_KEYWORDS = frozenset({PatternKind.NULL_SENDER, PatternKind.BLANK_SENDER})
_NETWORK_KINDS = frozenset({PatternKind.CIDR, PatternKind.IPV4, PatternKind.IPV6})


def validate_rules(effect: EffectFile, *, gateway_mode: bool) -> list[Finding]:
    """Every finding about ``effect``, ordered by line (file-wide findings last); never raises."""
    rules = [_Rule.of(line) for line in effect.rules]
    findings: list[Finding] = []
    for line in effect.lines:
        findings.extend(_check_line(line))
    findings.extend(_check_header(effect.rules))
    findings.extend(_check_order(rules))
    findings.extend(_check_terminator(rules, gateway_mode=gateway_mode))
    return sorted(findings, key=lambda f: (f.line is None, f.line or 0, f.code))


# --- what a rule covers ---------------------------------------------------------------------


def octet_values(partial: str) -> list[int]:
    """The octet values whose decimal text starts with ``partial`` (all 256 for "")."""
    return [value for value in range(256) if str(value).startswith(partial)]


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _wildcard_intervals(prefix: str) -> tuple[Interval, ...]:
    if prefix == "":
        return ((4, 0, _V4_LAST), (6, 0, _V6_LAST))
    *complete, partial = prefix.split(".")
    shift = 24 - 8 * len(complete)
    base = sum(int(octet) << (24 - 8 * index) for index, octet in enumerate(complete))
    return tuple(
        (4, base + (first << shift), base + ((last + 1) << shift) - 1)
        for first, last in _runs(octet_values(partial))
    )


@dataclass(frozen=True, slots=True)
class _Rule:
    line: EffectLine
    prefix: str | None
    intervals: tuple[Interval, ...]  # IPv4/IPv6 addresses matched; () for sender rules
    key: tuple[object, ...]  # equal keys = the same pattern written twice

    @classmethod
    def of(cls, line: EffectLine) -> _Rule:
        prefix = line.wildcard_prefix
        if prefix is not None:
            return cls(line, prefix, _wildcard_intervals(prefix), ("prefix", prefix))
        if line.pattern_kind in _NETWORK_KINDS:
            net = pattern_network(line.pattern)
            interval = (net.version, int(net.network_address), int(net.broadcast_address))
            return cls(line, None, (interval,), ("net", *interval))
        return cls(line, None, (), (line.pattern_kind, line.pattern.lower()))

    @property
    def is_client(self) -> bool:
        return self.line.pattern_kind in CLIENT_KINDS


def _inside(inner: Interval, outer: Interval) -> bool:
    return inner[0] == outer[0] and outer[1] <= inner[1] and inner[2] <= outer[2]


def _all_inside(inner: tuple[Interval, ...], outer: tuple[Interval, ...]) -> bool:
    return all(any(_inside(one, other) for other in outer) for one in inner)


def _covers(earlier: _Rule, later: _Rule) -> bool:
    """Whether ``earlier`` matches every session ``later`` matches."""
    if earlier.is_client != later.is_client:
        return False
    if earlier.is_client:
        if earlier.prefix is not None and later.prefix is not None:
            return later.prefix.startswith(earlier.prefix)
        if later.prefix is not None and "." not in later.prefix:
            return False  # a prefix such as "1" also matches IPv6 strings ("1::5")
        return _all_inside(later.intervals, earlier.intervals)
    return _sender_covers(earlier.line, later.line)


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
    size = len(line.text.encode("cp932", errors="replace"))
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
    ascii_only = line.text.isascii()
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
    yield from _check_trust(_Rule.of(line))


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


def _check_modifier(line: EffectLine) -> Iterator[Finding]:
    written = line.modifier
    if not line.separator_ok:
        canonical = (
            format_rule(line.pattern, written)
            if written is not None
            else f"{line.pattern} {line.modifier_text}"
        )
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


def _check_trust(rule: _Rule) -> Iterator[Finding]:
    line = rule.line
    if line.effective not in _TRUSTED:
        return
    if not rule.is_client:
        yield make(
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
        return
    if any(first == 0 and last in (_V4_LAST, _V6_LAST) for _v, first, last in rule.intervals):
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
        return
    if not _all_inside(rule.intervals, _PRIVATE):
        yield make(
            Level.WARNING,
            "relay.W008",
            _(
                "%(pattern)s is trusted and covers public Internet addresses: every host there "
                "may relay through this server."
            ),
            line=line.number,
            hint=_(
                "Trust only addresses you control; if this is your own fixed public address, "
                "write it as a single IP."
            ),
            pattern=line.pattern,
        )
    elif any(last - first + 1 > _BROADEST_PRIVATE[v] for v, first, last in rule.intervals):
        yield make(
            Level.WARNING,
            "relay.W009",
            _(
                "%(pattern)s trusts a very large private range (broader than a /16): any "
                "infected or guest machine in it may relay."
            ),
            line=line.number,
            hint=_("Narrow it to the subnets your mail clients really use, e.g. 192.168.1.0/24."),
            pattern=line.pattern,
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


def _check_order(rules: Sequence[_Rule]) -> Iterator[Finding]:
    catch_all: EffectLine | None = None
    seen: dict[tuple[object, ...], EffectLine] = {}
    earlier: list[_Rule] = []
    for rule in rules:
        line = rule.line
        if catch_all is not None:
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
            yield from _check_shadowed(rule, earlier)
        if line.pattern_kind in _SESSION_KEYWORDS:
            above = [other.line.number for other in earlier if other.is_client]
            if above:
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
        if line.matches_every_client:
            catch_all = line
        earlier.append(rule)


def _check_shadowed(rule: _Rule, earlier: Sequence[_Rule]) -> Iterator[Finding]:
    cover = next((other for other in earlier if _covers(other, rule)), None)
    if cover is None:
        return
    line, first = rule.line, cover.line
    if line.effective is first.effective:
        yield make(
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
    else:
        yield make(
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


def _check_terminator(rules: Sequence[_Rule], *, gateway_mode: bool) -> Iterator[Finding]:
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
    elif not gateway_mode and catch_all is None:
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
