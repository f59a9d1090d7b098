"""effect.dat, E-Post's per-machine relay table: parse and render, without Django.

Grammar (one physical line each; ``../shared/spec/epost-relay.md`` §2)::

    line      = rule / comment / blank
    rule      = PATTERN [ " " MODIFIER ]    ; exactly ONE space before the modifier
    comment   = ( "'" / " " ) *CHAR         ; first character is an apostrophe or a space
    blank     = ""                          ; skipped (so is a line of only TABs/CRs)
    MODIFIER  = "true" / "false" / "default" / "norelay" / "norelay,0" / "norelay,1"
              / "norelay,2" / "only"        ; case-insensitive; none at all = trusted

``#`` is **not** a comment marker: it starts a sender keyword. Patterns (:class:`PatternKind`):

=================  ==============================  =========================================
kind               examples                        matches
=================  ==============================  =========================================
CATCH_ALL          ``*.*.*.*``, ``*``              every client
IPV4_WILDCARD      ``10.*.*.*``, ``192.168.1.*``   client IP *string* starts with the text
                                                   before the first ``*`` (``192.168.1*``
                                                   also matches 192.168.10.x, 192.168.100.x;
                                                   ``192.168.*.5`` means ``192.168.``)
CIDR               ``192.168.1.0/28``              client IPv4 in the network (host bits are
                                                   masked off)
IPV4               ``192.168.0.100``               that client IPv4
IPV6               ``2001:db8::1``, ``fd00::/8``   client IPv6 (literal or prefix/len)
SENDER_DOMAIN      ``abc.co.jp``, ``*.abc.co.jp``  the sender's domain, case-insensitively;
                                                   ``*.abc.co.jp`` matches subdomains only
SENDER_ADDRESS     ``a@abc.co.jp``,                the whole sender, case-insensitively,
                   ``*@abc.co.jp``                 ``*`` (at most two) = any text
NULL_SENDER        ``#<>``                         the null sender ``MAIL FROM:<>``
BLANK_SENDER       ``#blank``                      an empty ``MAIL FROM:``
KEYWORD            ``#number`` ``#nodomain``       sender domain of digits and dots only /
                   ``#host``                       sender without a domain / a domain
                                                   without a dot; an address literal
                                                   (``[192.0.2.1]``) counts as both
                                                   ``#number`` and ``#host`` (spec §3.1)
=================  ==============================  =========================================

Keywords are recognised in lower case only, as the vendor writes them.

Ordering: the **first matching rule decides**, top to bottom; no match means ``default``.
Only RULE lines match (comments, blank and unparsable lines never do), and anything below a
catch-all is unreachable. :func:`relaypolicy.effectmatch.compile_rules` answers "which line
decides?" from indexes instead of scanning the file. Worked example (the vendor's hardened
gateway)::

    #<> default            <- MAIL FROM:<> gets the built-in table (deliver locally only)
    #blank false           <- an empty MAIL FROM: is refused with 550 5.1.7
    192.168.1.0/24 default <- the LAN: built-in table, so local senders may relay
    *.*.*.* norelay        <- everyone else: no relaying to outside domains

A client 192.168.1.20 sending ``MAIL FROM:<a@x.jp>`` stops at line 3 (``default``); a client
203.0.113.9 with the same sender stops at line 4 (``norelay``); ``MAIL FROM:<>`` from anywhere stops
at line 1.

Decisions this module makes where the daemon's behaviour is only observed (obs):

- **Separator.** The pattern runs to the first space or TAB. Unless that whitespace is exactly one
  space, the modifier is ignored and the line behaves like ``default``; so does an unrecognised
  modifier. Trailing spaces/TABs/CRs are ignored (the daemon copes with CRLF, so it trims line
  ends), but the validator still flags them. A line starting with a TAB is not a comment: it is
  kept as UNPARSABLE.
- **Effective modifier** (:attr:`EffectLine.effective`): a bare rule and ``true`` both return
  ``Modifier.TRUE``; ``norelay,1`` returns ``Modifier.NORELAY`` (documented as unused, acts like
  norelay). Everything else is returned as written, or ``DEFAULT`` when ignored.
- **Senders** are passed to the matchers (:mod:`relaypolicy.effectmatch`) as the mailbox
  without angle brackets (``"user@domain.jp"``; ``"<user@domain.jp>"`` is accepted too); the
  null sender as ``"<>"``; an empty ``MAIL FROM:`` as ``None`` or ``""`` (the CLI's
  ``--mail-from ''``). The domain is the text after the last ``@`` (the final mailbox of a
  source route).
- **Line endings.** LF and CRLF. The first line ending seen decides (:attr:`EffectFile.newline`);
  under CRLF a line's CR is removed, under LF a stray CR stays in the line text. Rendering uses
  the one newline throughout, so every file with consistent line endings round-trips exactly;
  a CRLF file containing bare LF lines is rewritten with CRLF everywhere. An import
  (:func:`relaypolicy.tableinput.clean_effect_text`) also drops the CR ending a line of an LF file
  (mixed endings), and refuses CR-only line endings and every other control character.
- **Encoding.** ASCII; CP932 (Shift_JIS) is tolerated and reported (:func:`decode_effect`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Modifier(StrEnum):
    BARE = ""
    TRUE = "true"
    FALSE = "false"
    DEFAULT = "default"
    NORELAY = "norelay"
    NORELAY_0 = "norelay,0"
    NORELAY_1 = "norelay,1"
    NORELAY_2 = "norelay,2"
    ONLY = "only"


#: The modifiers offered for the final catch-all line, safest-for-inbound first.
TERMINATOR_MODIFIERS = (Modifier.NORELAY, Modifier.NORELAY_2, Modifier.NORELAY_0, Modifier.FALSE)

#: The vendor's two default lines, which stay at the top of every file.
DEFAULT_HEADER = ("#<> default", "#blank false")

_MODIFIERS = {m.value: m for m in Modifier}
# What the daemon does with a recognised modifier: both trusted spellings behave alike, and
# norelay,1 is documented as unused and acts like norelay.
_BEHAVES_LIKE = {Modifier.BARE: Modifier.TRUE, Modifier.NORELAY_1: Modifier.NORELAY}


def parse_modifier(text: str) -> Modifier | None:
    """The modifier written as ``text`` (case-insensitive, exact otherwise); None if unknown."""
    return _MODIFIERS.get(text.lower())


class PatternKind(StrEnum):
    IPV4_WILDCARD = "ipv4_wildcard"
    CATCH_ALL = "catch_all"
    CIDR = "cidr"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    SENDER_DOMAIN = "sender_domain"
    SENDER_ADDRESS = "sender_address"
    NULL_SENDER = "null_sender"
    BLANK_SENDER = "blank_sender"
    KEYWORD = "keyword"
    INVALID = "invalid"
    #: Comments and blank lines have no pattern.
    NONE = "none"


#: Patterns decided by the client's IP address; every other valid kind is decided by the sender.
CLIENT_KINDS = frozenset(
    {
        PatternKind.CATCH_ALL,
        PatternKind.IPV4_WILDCARD,
        PatternKind.CIDR,
        PatternKind.IPV4,
        PatternKind.IPV6,
    }
)
SENDER_KINDS = frozenset(
    {
        PatternKind.SENDER_DOMAIN,
        PatternKind.SENDER_ADDRESS,
        PatternKind.NULL_SENDER,
        PatternKind.BLANK_SENDER,
        PatternKind.KEYWORD,
    }
)

_KEYWORDS = {
    "#<>": PatternKind.NULL_SENDER,
    "#blank": PatternKind.BLANK_SENDER,
    "#number": PatternKind.KEYWORD,
    "#nodomain": PatternKind.KEYWORD,
    "#host": PatternKind.KEYWORD,
}
_IPV4_CHARS = frozenset("0123456789./*")
# No leading zeros: inet_aton() reads 010 as octal 8, other code as decimal 10.
_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
_PREFIX_LEN = re.compile(r"0|[1-9][0-9]?")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)+{_LABEL}")
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9*._-]+")
_MAX_ADDRESS_STARS = 2


def _is_octet(text: str) -> bool:
    return _OCTET.fullmatch(text) is not None and int(text) <= 255


def _classify_ipv4(pattern: str) -> PatternKind:
    if "*" in pattern:
        parts = pattern.split(".")
        if "/" in pattern or len(parts) > 4:
            return PatternKind.INVALID
        for part in parts:
            chunks = part.split("*")
            # A part is an octet or digits around stars; every digit run must read as an octet.
            if not part or any(chunk and not _is_octet(chunk) for chunk in chunks):
                return PatternKind.INVALID
        return PatternKind.IPV4_WILDCARD
    address, slash, length = pattern.partition("/")
    parts = address.split(".")
    if len(parts) != 4 or not all(_is_octet(part) for part in parts):
        return PatternKind.INVALID
    if not slash:
        return PatternKind.IPV4
    if _PREFIX_LEN.fullmatch(length) is None or int(length) > 32:
        return PatternKind.INVALID
    return PatternKind.CIDR


def _classify_ipv6(pattern: str) -> PatternKind:
    if "%" in pattern:  # a zone index never matches a client address
        return PatternKind.INVALID
    try:
        network = ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return PatternKind.INVALID
    return PatternKind.IPV6 if network.version == 6 else PatternKind.INVALID


def classify_pattern(pattern: str) -> PatternKind:
    """The kind of an effect.dat pattern (the text before the separator); INVALID if none."""
    if pattern in ("*", "*.*.*.*"):
        return PatternKind.CATCH_ALL
    if pattern.startswith("#"):
        return _KEYWORDS.get(pattern, PatternKind.INVALID)
    if "@" in pattern:
        if pattern.count("*") <= _MAX_ADDRESS_STARS and _ADDRESS.fullmatch(pattern):
            return PatternKind.SENDER_ADDRESS
        return PatternKind.INVALID
    if ":" in pattern:
        return _classify_ipv6(pattern)
    if pattern and set(pattern) <= _IPV4_CHARS:
        return _classify_ipv4(pattern)
    if _DOMAIN.fullmatch(pattern):
        return PatternKind.SENDER_DOMAIN
    return PatternKind.INVALID


@lru_cache(maxsize=4096)
def pattern_network(pattern: str) -> IPNetwork:
    """The network of a CIDR, IPV4 or IPV6 pattern (host bits masked off, a host as /32, /128)."""
    return ipaddress.ip_network(pattern, strict=False)


class LineKind(StrEnum):
    RULE = "rule"
    COMMENT = "comment"
    BLANK = "blank"
    UNPARSABLE = "unparsable"


@dataclass(frozen=True, slots=True)
class EffectLine:
    """One physical line; ``text`` is exactly as written (without the line ending)."""

    number: int
    text: str
    kind: LineKind
    pattern: str = ""
    modifier_text: str = ""
    separator: str = ""
    pattern_kind: PatternKind = PatternKind.NONE

    @property
    def modifier(self) -> Modifier | None:
        """The modifier as written (whatever the separator); None if unrecognised or no rule."""
        if self.kind in (LineKind.COMMENT, LineKind.BLANK):
            return None
        return parse_modifier(self.modifier_text)

    @property
    def effective(self) -> Modifier:
        """What the daemon applies when this line matches; see :func:`effective_modifier`."""
        return effective_modifier(self)

    @property
    def separator_ok(self) -> bool:
        """True unless whitespace other than exactly one space precedes the modifier."""
        return self.separator == " " or not self.modifier_text

    @property
    def trailing(self) -> str:
        """The spaces, TABs and CRs ending the line, which the daemon ignores."""
        return self.text[len(self.text.rstrip(_TRAILING)) :]

    @property
    def is_catch_all(self) -> bool:
        """A rule written ``*.*.*.*`` or ``*``, the only forms accepted as the terminator."""
        return self.kind is LineKind.RULE and self.pattern_kind is PatternKind.CATCH_ALL

    @property
    def wildcard_prefix(self) -> str | None:
        """The client-IP string prefix of a wildcard or catch-all rule; None for other lines."""
        if self.pattern_kind is PatternKind.CATCH_ALL:
            return ""
        if self.pattern_kind is PatternKind.IPV4_WILDCARD:
            return self.pattern.split("*", 1)[0]
        return None

    @property
    def matches_every_client(self) -> bool:
        """A rule that matches every session: a catch-all, or a wildcard such as ``*.5``."""
        return self.kind is LineKind.RULE and self.wildcard_prefix == ""


def effective_modifier(line: EffectLine) -> Modifier:
    """What the daemon applies when ``line`` matches.

    A bad separator or an unrecognised modifier gives DEFAULT; bare and ``true`` give TRUE;
    ``norelay,1`` gives NORELAY. Lines that are not rules never match; they report DEFAULT.
    """
    if line.kind is not LineKind.RULE or not line.separator_ok:
        return Modifier.DEFAULT
    modifier = parse_modifier(line.modifier_text)
    if modifier is None:
        return Modifier.DEFAULT
    return _BEHAVES_LIKE.get(modifier, modifier)


_TRAILING = " \t\r"
_SPLIT = re.compile(r"([^ \t]*)([ \t]*)(.*)", re.DOTALL)


def parse_line(text: str, number: int = 1) -> EffectLine:
    """Classify one line (``text`` without its line ending); never raises."""
    if text == "":
        return EffectLine(number, text, LineKind.BLANK)
    if text[0] in "' ":
        return EffectLine(number, text, LineKind.COMMENT)
    content = text.rstrip(_TRAILING)
    if content == "":
        return EffectLine(number, text, LineKind.BLANK)
    split = _SPLIT.fullmatch(content)
    assert split is not None  # the expression matches every string
    pattern, separator, modifier_text = split.groups()
    pattern_kind = classify_pattern(pattern)
    kind = LineKind.UNPARSABLE if pattern_kind is PatternKind.INVALID else LineKind.RULE
    return EffectLine(number, text, kind, pattern, modifier_text, separator, pattern_kind)


@dataclass(frozen=True, slots=True)
class EffectFile:
    lines: tuple[EffectLine, ...] = ()
    newline: str = "\n"
    final_newline: bool = True

    @property
    def rules(self) -> tuple[EffectLine, ...]:
        """The RULE lines in file order (comments, blanks and unparsable lines left out)."""
        return tuple(line for line in self.lines if line.kind is LineKind.RULE)


def parse_effect(text: str) -> EffectFile:
    """Parse a whole file losslessly: every line is kept, unparsable ones verbatim."""
    first = text.find("\n")
    newline = "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"
    if not text:
        return EffectFile((), newline, final_newline=False)
    pieces = text.split("\n")
    final_newline = pieces[-1] == ""
    if final_newline:
        pieces.pop()
    if newline == "\r\n":
        # Only pieces that were followed by "\n" carried the CR of a CRLF.
        terminated = len(pieces) if final_newline else len(pieces) - 1
        pieces = [
            piece[:-1] if index < terminated and piece.endswith("\r") else piece
            for index, piece in enumerate(pieces)
        ]
    lines = tuple(parse_line(piece, number) for number, piece in enumerate(pieces, start=1))
    return EffectFile(lines, newline, final_newline)


def render_effect(file: EffectFile) -> str:
    """The file's text: every line as written, joined by its newline."""
    if not file.lines:
        return ""
    body = file.newline.join(line.text for line in file.lines)
    return body + file.newline if file.final_newline else body


def render_lines(texts: Iterable[str], newline: str = "\n") -> str:
    """Join line texts with ``newline`` and end with one; ValueError on a text holding a break."""
    if newline not in ("\n", "\r\n"):
        raise ValueError(f"newline must be LF or CRLF, not {newline!r}")
    items = list(texts)
    for text in items:
        if "\n" in text or "\r" in text:
            raise ValueError(f"a line may not contain a line break: {text!r}")
    return newline.join(items) + newline if items else ""


def format_rule(pattern: str, modifier: Modifier) -> str:
    """The canonical rule line ``PATTERN MODIFIER`` (one space), or ``PATTERN`` when bare.

    Raises ValueError for an empty pattern or one containing whitespace, which would change
    how the daemon splits the line.
    """
    if not pattern or any(char.isspace() for char in pattern):
        raise ValueError(f"a pattern may not be empty or contain whitespace: {pattern!r}")
    return f"{pattern} {modifier.value}" if modifier is not Modifier.BARE else pattern


def format_comment(text: str) -> str:
    """A comment line: ``'`` followed by ``text``; ValueError if ``text`` holds a line break."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"a comment may not contain a line break: {text!r}")
    return f"'{text}"


def decode_effect(data: bytes) -> tuple[str, list[Finding]]:
    """Decode effect.dat bytes line by line: ASCII, else CP932 (warning), else replaced (error).

    Nothing is dropped: undecodable bytes become U+FFFD and are reported with their line number.
    """
    texts: list[str] = []
    findings: list[Finding] = []
    # 0x0A is never a CP932 trail byte, so splitting the bytes first is safe.
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            texts.append(raw.decode("ascii"))
            continue
        except UnicodeDecodeError:
            pass
        try:
            texts.append(raw.decode("cp932"))
        except UnicodeDecodeError:
            texts.append(raw.decode("cp932", errors="replace"))
            findings.append(
                make(
                    Level.ERROR,
                    "relay.E014",
                    _(
                        "Line %(number)s holds bytes that are neither ASCII nor CP932 "
                        "(Shift_JIS); they were replaced by U+FFFD so the line can be shown."
                    ),
                    line=number,
                    hint=_("Retype this line in ASCII; the daemon compares the raw bytes."),
                    number=number,
                )
            )
        else:
            findings.append(
                make(
                    Level.WARNING,
                    "relay.W019",
                    _("Line %(number)s is not ASCII; it was read as CP932 (Shift_JIS)."),
                    line=number,
                    hint=_(
                        "effect.dat should be plain ASCII: write comments in English or romaji."
                    ),
                    number=number,
                )
            )
    return "\n".join(texts), findings
