"""Per-line checks: what is wrong with one effect.dat line on its own (relay.E001-E010,
E021-E023, W001-W005, W012-W014, I002), and what a mistyped modifier most likely meant."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _
from relaypolicy.addrspace import _runs, octet_values
from relaypolicy.effectfile import (
    EffectLine,
    LineKind,
    Modifier,
    PatternKind,
    format_rule,
    pattern_network,
)

MAX_LINE_BYTES = 255
_NORELAYS = frozenset({Modifier.NORELAY, Modifier.NORELAY_0, Modifier.NORELAY_2})
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


def check_line(line: EffectLine) -> Iterator[Finding]:
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
