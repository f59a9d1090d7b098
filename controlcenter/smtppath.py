"""Strict RFC 5321 envelope paths, as the relay simulator and the open-relay self-test read them.

``parse_path(text, role="mail" | "rcpt")`` takes what follows ``MAIL FROM:`` / ``RCPT TO:``
(ESMTP parameters already split off) and returns a :class:`ParsedPath`, or raises
:class:`PathError` carrying the 501 reply the gateway would give. It never guesses: an address
that could be read two ways is refused, because a relay that decides on one reading while the
next hop delivers on another is exactly how relay testers get through (spec §7).

Grammar accepted (RFC 5321 §4.1.2, ABNF strings case-insensitive)::

    reverse-path  = path / "<>" / ""          ; "<>" = NULL, "" = EMPTY: role "mail" only
    forward-path  = path / "<postmaster>"     ; bare postmaster: role "rcpt" only
    path          = ["<"] [a-d-l ":"] mailbox [">"]   ; brackets optional, but both or neither
    a-d-l         = "@" domain *("," "@" domain)      ; source route: reported, never decides
    mailbox       = local-part "@" (domain / address-literal)
    local-part    = dot-string / quoted-string        ; at most 64 octets as written
    dot-string    = 1*atext *("." 1*atext)
    atext         = ALPHA / DIGIT / "!#$%&'*+-/=?^_`{|}~"
    quoted-string = DQUOTE *(%d32-33 / %d35-91 / %d93-126 / "\\" %d32-126) DQUOTE
    domain        = label *("." label) ["."]          ; one trailing dot allowed
    label         = let-dig [*(let-dig / "-") let-dig]  ; at most 63 octets
    address-literal = "[" (IPv4 / "IPv6:" IPv6) "]"   ; checked with ``ipaddress``

Only spaces and tabs around the path are stripped. Anything outside printable ASCII is refused:
the gateway does not advertise SMTPUTF8, so a non-ASCII address is bad syntax to it. The path
(with its brackets) may be at most 256 octets, which also keeps the domain under RFC 5321's 255.

Normal forms: the local part is kept as the daemon sees it (case kept, quotes and quoted-pair
backslashes removed); the domain is lower-cased and loses one trailing dot; an IPv4 literal is
``[192.0.2.1]``, an IPv6 literal ``[IPv6:2001:db8::1]`` (RFC 5952, IPv4-mapped as
``[IPv6:::ffff:192.0.2.1]``). Domains are compared exactly by the callers, so look-alikes stay
what they are.

Trick forms (spec §7) and how they parse (domain ``domain.jp`` is the managed one)::

    text                                role   result
    <anyone@domain.jp>                  any    mailbox anyone@domain.jp (a forged local sender
                                               parses fine: the policy decides, not the syntax)
    <>                                  mail   NULL;   rcpt: error
    (empty)                             mail   EMPTY;  rcpt: error
    <user>                              any    error: unqualified
    <Postmaster>                        rcpt   mailbox postmaster, domain "" (RFC 5321 special)
    <user%other.example@domain.jp>      any    local user%other.example, routing ("%",)
    <"user@other.example"@domain.jp>    any    local user@other.example, routing ("@",), quoted
    <user@other.example@domain.jp>      any    error: two unquoted @
    <@a.example,@b.example:u@c.example> any    route (a.example, b.example), mailbox u@c.example
    <other.example!user@domain.jp>      any    local other.example!user, routing ("!",)
    <other.example!user>                any    error: unqualified bang path
    <user@[192.0.2.1]>                  any    domain [192.0.2.1], is_ip_literal
    <user@[IPv6:2001:DB8:0::1]>         any    domain [IPv6:2001:db8::1], is_ip_literal
    <user@[192.0.2.256]>                any    error: bad address literal
    <User@Domain.JP.>                   any    local User, domain domain.jp
    <user@domain.jp..>                  any    error: empty label
    <user@notdomain.jp>                 any    domain notdomain.jp (not domain.jp)
    <user@domain.jp.evil.example>       any    domain domain.jp.evil.example
    <user@sub.domain.jp>                any    domain sub.domain.jp
    <user@192.0.2.1>                    any    domain 192.0.2.1 (a name: effect.dat ``#number``)
"""

from __future__ import annotations

import ipaddress
import re
import string
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal

from controlcenter.findings import gettext_noop as _

MAX_PATH: Final = 256
MAX_LOCAL_PART: Final = 64
MAX_LABEL: Final = 63

#: Characters an inner mailer may read as routing or re-tokenise, in reporting order:
#: ``@`` another domain, ``%`` percent hack, ``!`` UUCP bang path, ``:`` and ``,`` RFC 822
#: source route, ``"`` and ``\\`` quoting, ``<`` and ``>`` a nested path.
ROUTING_CHARS: Final = ("@", "%", "!", ":", ",", '"', "\\", "<", ">")

REPLY_MAIL: Final = "501 5.1.7 Bad sender address syntax"
REPLY_RCPT: Final = "501 5.1.3 Bad recipient address syntax"

NON_ASCII: Final = _("non-ASCII address: it needs SMTPUTF8, which the gateway does not offer")
CONTROL_CHAR: Final = _("control characters are not allowed in an address")
PATH_TOO_LONG: Final = _("the path is longer than 256 octets")
LOCAL_TOO_LONG: Final = _("the local part is longer than 64 octets")
LABEL_TOO_LONG: Final = _("a domain label is longer than 63 octets")
UNBALANCED: Final = _("angle brackets are unbalanced or nested")
TRAILING_TEXT: Final = _("text after the closing angle bracket")
NULL_RCPT: Final = _("the null path <> is only allowed as a sender")
EMPTY_RCPT: Final = _("the recipient is empty")
SPACE: Final = _("spaces are only allowed inside a quoted local part")
UNQUALIFIED: Final = _("unqualified address: a domain is required (user@domain)")
UNQUALIFIED_BANG: Final = _("unqualified bang path (host!user): a domain is required")
DOUBLE_AT: Final = _("more than one unquoted @: the address can be read two ways")
EMPTY_LOCAL: Final = _("the local part is empty")
BAD_DOTS: Final = _("an unquoted local part must not start or end with a dot or contain '..'")
BAD_LOCAL_CHAR: Final = _("character not allowed in an unquoted local part")
UNTERMINATED_QUOTE: Final = _("unterminated quoted local part")
AFTER_QUOTE: Final = _("a quoted local part must be followed by @domain")
EMPTY_DOMAIN: Final = _("the domain is empty")
EMPTY_LABEL: Final = _("the domain has an empty label (leading dot, '..' or two trailing dots)")
BAD_LABEL: Final = _("a domain label must be letters, digits and inner hyphens")
BAD_LITERAL: Final = _("the address literal is not a valid IPv4 or IPv6 address")
GENERAL_LITERAL: Final = _("only IPv4 and IPv6 address literals are supported")
BAD_ROUTE: Final = _("malformed source route (expected <@host,@host:user@domain>)")

_ATEXT: Final = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_IPV6_CHARS: Final = frozenset(string.hexdigits + ":.")


class PathKind(StrEnum):
    MAILBOX = "mailbox"
    NULL = "null"  # <>
    EMPTY = "empty"  # nothing at all after MAIL FROM:


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One mailbox as the daemon sees it; build it with :func:`parse_path`.

    ``quoted`` records that the local part was written as a quoted string. It takes no part in
    equality: ``"abc"@d.jp`` and ``abc@d.jp`` are the same mailbox. ``domain`` is empty only
    for the RFC 5321 ``<postmaster>`` recipient.
    """

    local_part: str
    domain: str
    quoted: bool = field(default=False, compare=False)

    @property
    def is_ip_literal(self) -> bool:
        return self.domain.startswith("[")

    @property
    def routing_chars(self) -> tuple[str, ...]:
        """The :data:`ROUTING_CHARS` present in the local part, in that order."""
        local = self.local_part
        if _ROUTING.search(local) is None:  # the usual local part: one scan, not nine
            return ()
        return tuple(char for char in ROUTING_CHARS if char in local)

    @property
    def address(self) -> str:
        """``local@domain``, quoting the local part only when it is not a dot-string."""
        local = self.local_part
        if not _is_dot_string(local):
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{local}@{self.domain}" if self.domain else local


@dataclass(frozen=True, slots=True)
class ParsedPath:
    kind: PathKind
    mailbox: Mailbox | None = None
    source_route: tuple[str, ...] = ()
    original: str = ""


class PathError(ValueError):
    """An unreadable path: ``reason`` is an English template, ``reply`` the SMTP answer."""

    def __init__(self, reason: str, reply: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_path(
    text: str, *, role: Literal["mail", "rcpt"], unqualified: bool = False
) -> ParsedPath:
    """Parse a MAIL FROM (``role="mail"``) or RCPT TO (``role="rcpt"``) path strictly.

    Raises :class:`PathError` with a 501 reply for anything the gateway must refuse. With
    ``unqualified``, an unquoted mailbox without a domain (``<spamtest>``, ``<host!user>``) is
    returned with ``domain == ""`` instead (the simulator's reading of spec §3.1).
    """
    plain = _PLAIN.fullmatch(text)
    if plain is not None:
        local, domain = plain.group(2, 3)
        # Only the lengths are left for the strict reading to check.
        if len(local) <= MAX_LOCAL_PART and len(local) + len(domain) + 3 <= MAX_PATH:
            return ParsedPath(PathKind.MAILBOX, Mailbox(local, domain.lower()), (), text)
    return parse_path_strict(text, role=role, unqualified=unqualified)


def parse_path_strict(
    text: str, *, role: Literal["mail", "rcpt"], unqualified: bool = False
) -> ParsedPath:
    """:func:`parse_path` through the full grammar, without its fast path for plain mailboxes
    (the two give the same answer for every text; tests compare them)."""
    try:
        return _parse(text, role, unqualified)
    except _Invalid as exc:
        raise PathError(exc.reason, REPLY_MAIL if role == "mail" else REPLY_RCPT) from None


# The common case, ``<user@domain.example>`` or without brackets: a dot-string local part of
# atext and a domain of valid labels without a trailing dot, which the full grammar reads as
# this very mailbox. Everything else (quotes, routes, literals, trailing dots, postmaster, every
# trick of spec §7) does not match and takes the full grammar.
_ATOM: Final = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_NAME_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOT_STRING: Final = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_PLAIN: Final = re.compile(
    rf"[ \t]*(<)?({_ATOM}(?:\.{_ATOM})*)@({_NAME_LABEL}(?:\.{_NAME_LABEL})*)(?(1)>)[ \t]*"
)

_ROUTING: Final = re.compile("[" + re.escape("".join(ROUTING_CHARS)) + "]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _parse(text: str, role: Literal["mail", "rcpt"], unqualified: bool = False) -> ParsedPath:
    stripped = text.strip(" \t")
    if not stripped.isascii():
        raise _Invalid(NON_ASCII)
    if _CONTROL.search(stripped):
        raise _Invalid(CONTROL_CHAR)
    if not stripped:
        if role == "mail":
            return ParsedPath(PathKind.EMPTY, original=text)
        raise _Invalid(EMPTY_RCPT)
    inner = _unbracket(stripped)
    if len(inner) + 2 > MAX_PATH:
        raise _Invalid(PATH_TOO_LONG)
    if not inner:
        if role == "mail":
            return ParsedPath(PathKind.NULL, original=text)
        raise _Invalid(NULL_RCPT)
    route, rest = _split_route(inner)
    if role == "rcpt" and not route and rest.lower() == "postmaster":
        return ParsedPath(PathKind.MAILBOX, Mailbox("postmaster", ""), original=text)
    return ParsedPath(PathKind.MAILBOX, _parse_mailbox(rest, unqualified), route, text)


def _unbracket(text: str) -> str:
    if not text.startswith("<"):
        return text  # a stray ">" is caught as an unquoted bracket later
    close = _find_unquoted(text, ">")
    if close == -1:
        if text.endswith(">"):
            return text[1:-1]  # the ">" sits inside an unterminated quote: report that
        raise _Invalid(UNBALANCED)
    inner, rest = text[1:close], text[close + 1 :]
    if _find_unquoted(inner, "<") != -1 or "<" in rest or ">" in rest:
        raise _Invalid(UNBALANCED)
    if rest:
        raise _Invalid(TRAILING_TEXT)
    return inner


def _find_unquoted(text: str, wanted: str) -> int:
    in_quotes = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif in_quotes and char == "\\":
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
        elif char == wanted and not in_quotes:
            return index
    return -1


def _split_route(inner: str) -> tuple[tuple[str, ...], str]:
    if not inner.startswith("@"):
        return (), inner
    colon = inner.find(":")
    if colon == -1:
        raise _Invalid(EMPTY_LOCAL)  # "<@domain.jp>": no route, just nothing before the @
    hops = inner[:colon].split(",")
    try:
        route = tuple(_parse_name(hop[1:]) for hop in hops if hop.startswith("@"))
    except _Invalid:
        raise _Invalid(BAD_ROUTE) from None
    if len(route) != len(hops) or colon == len(inner) - 1:
        raise _Invalid(BAD_ROUTE)
    return route, inner[colon + 1 :]


def _parse_mailbox(text: str, unqualified: bool = False) -> Mailbox:
    if text.startswith('"'):
        local, end = _read_quoted(text)
        if end > MAX_LOCAL_PART:
            raise _Invalid(LOCAL_TOO_LONG)
        if not local:
            raise _Invalid(EMPTY_LOCAL)
        if end == len(text):
            raise _Invalid(UNQUALIFIED)
        if text[end] != "@":
            raise _Invalid(AFTER_QUOTE)
        return Mailbox(local, _parse_domain(text[end + 1 :]), quoted=True)
    local, at, domain = text.partition("@")
    _check_dot_string(local)
    if len(local) > MAX_LOCAL_PART:
        raise _Invalid(LOCAL_TOO_LONG)
    if not at:
        if unqualified:
            return Mailbox(local, "")
        raise _Invalid(UNQUALIFIED_BANG if "!" in local else UNQUALIFIED)
    return Mailbox(local, _parse_domain(domain))


def _read_quoted(text: str) -> tuple[str, int]:
    """The unquoted content of the quoted string opening ``text`` and the index after it."""
    chars: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(chars), index + 1
        if char == "\\":
            index += 1
            if index == len(text):
                break
            char = text[index]
        chars.append(char)
        index += 1
    raise _Invalid(UNTERMINATED_QUOTE)


def _check_dot_string(local: str) -> None:
    for char in local:
        if char == " ":
            raise _Invalid(SPACE)
        if char in "<>":
            raise _Invalid(UNBALANCED)
        if char != "." and char not in _ATEXT:
            raise _Invalid(BAD_LOCAL_CHAR)
    if not local:
        raise _Invalid(EMPTY_LOCAL)
    if "" in local.split("."):
        raise _Invalid(BAD_DOTS)


def _is_dot_string(local: str) -> bool:
    return _DOT_STRING.fullmatch(local) is not None


def _parse_domain(text: str) -> str:
    if "@" in text:
        raise _Invalid(DOUBLE_AT)
    if text.startswith("["):
        return _parse_literal(text)
    return _parse_name(text)


def _parse_name(text: str) -> str:
    if " " in text:
        raise _Invalid(SPACE)
    if "<" in text or ">" in text:
        raise _Invalid(UNBALANCED)
    name = text.removesuffix(".")
    if not text:
        raise _Invalid(EMPTY_DOMAIN)
    for label in name.split("."):
        if not label:
            raise _Invalid(EMPTY_LABEL)
        if len(label) > MAX_LABEL:
            raise _Invalid(LABEL_TOO_LONG)
        if not _LABEL.fullmatch(label):
            raise _Invalid(BAD_LABEL)
    return name.lower()


def _parse_literal(text: str) -> str:
    if not text.endswith("]") or text.count("]") != 1:
        raise _Invalid(BAD_LITERAL)
    body = text[1:-1]
    tag, colon, value = body.partition(":")
    try:
        if not colon:
            return f"[{ipaddress.IPv4Address(body)}]"
        if tag.lower() != "ipv6":
            raise _Invalid(GENERAL_LITERAL)
        if not set(value) <= _IPV6_CHARS:  # ipaddress would accept a "%scope"
            raise _Invalid(BAD_LITERAL)
        address = ipaddress.IPv6Address(value)
    except ipaddress.AddressValueError:
        raise _Invalid(BAD_LITERAL) from None
    # Spelled out because str() of a mapped address changed in Python 3.13.
    mapped = f"::ffff:{address.ipv4_mapped}" if address.ipv4_mapped is not None else str(address)
    return f"[IPv6:{mapped}]"
