"""Aliases, their matching, the alias CSV and the registration script: the Django-free core.

Alias grammar
=============

An alias maps one *pattern* to one *target* (the vendor's エイリアス and 実アドレス)::

    alias      = local "@" domain              ; local holds at most one "*"
    mapped_to  = target [ "," option ]          ; spaces around the comma are ignored
    target     = local "@" domain              ; local holds at most one "*"
    option     = "0" / "1"                      ; 0: keep the envelope recipient, 1: rewrite it
    local      = 1*64 ( ALPHA / DIGIT / "." / "*" /
                        "#" "$" "&" "'" "+" "-" "/" "=" "?" "^" "_" "`" "{" "|" "}" "~" )
    domain     = label 1*( "." label )          ; fully qualified, no trailing dot, <= 253
    label      = LETDIG [ *61( LETDIG / "-" ) LETDIG ]

- Both sides need a domain. The domain never holds a ``*`` and is not an IP literal.
- Routing characters are refused in a local part: ``%`` (``user%other@d``), ``!`` (bang
  paths), ``"`` and ``\\`` (quoting that can hide an ``@``) and a second ``@``. Control
  characters, spaces and non-ASCII characters are refused too;
  :func:`normalise_fullwidth` turns what a Japanese IME types in full-width mode
  (``ｕｓｅｒ＠ｄ．ｊｐ``) back into ASCII.
- Dots are allowed anywhere in the local part: legacy Japanese mobile addresses such as
  ``taro..yamada.@docomo.ne.jp`` are real targets.

Pattern kinds (:class:`AliasKind`):

=================  ===================  ==============================================
kind               example              matches
=================  ===================  ==============================================
EXACT              ``user@d.jp``        that address only
FULL_WILDCARD      ``*@d.jp``           every address in ``d.jp``
PARTIAL_WILDCARD   ``2009*@d.jp``       prefix form: local parts starting with ``2009``
PARTIAL_WILDCARD   ``*-sales@d.jp``     suffix form: local parts ending in ``-sales``
PARTIAL_WILDCARD   ``abc-*-jp@d.jp``    both: fixed text before and after the ``*``
=================  ===================  ==============================================

Matching rules (ours where the vendor is silent):

- ``*`` matches **zero** or more characters (spec §3.1: where the vendor is silent, the
  reading under which more mail is accepted): ``2009*@d.jp`` matches ``2009@d.jp``. The full
  wildcard ``*@d.jp`` still needs a local part, as every address has one.
- The domain compares exactly after lower-casing: no subdomains, no trailing-dot variants,
  ``d.jp.evil.example`` is not ``d.jp``.
- The local part compares ASCII case-insensitively: ``User@d.jp`` and ``user@d.jp`` are the
  same alias. A case-sensitive match would let ``User@d.jp`` slip past an exact alias into a
  later wildcard, and the CSV duplicate check would miss look-alike rows.
- A ``*`` in the target is replaced by the characters the alias ``*`` matched, as received:
  ``*@a.jp -> *@b.jp`` sends ``Taro@a.jp`` to ``Taro@b.jp``. A target without ``*`` is used
  as written. A target ``*`` under an alias without one is an error (``alias.E005``).
- Aliases are checked in storage order and the **first match wins**: an exact alias stored
  below ``*@d.jp`` is never used. :class:`AliasIndex` answers in O(1) for exact aliases plus
  the wildcards of the address's own domain, stopping at the first one that matches.
- An alias whose pattern is malformed (two ``*``, no ``@``) never matches anything.

Worked example, in storage order::

    0  sales@example.co.jp  -> team@inner.example.co.jp
    1  2009*@example.co.jp  -> 2009*@inner.example.co.jp,0
    2  *@example.co.jp      -> *@inner.example.co.jp

    Sales@EXAMPLE.co.jp       -> position 0, team@inner.example.co.jp
    2009tanaka@example.co.jp  -> position 1, 2009tanaka@inner.example.co.jp (option 0)
    2009@example.co.jp        -> position 1, 2009@inner.example.co.jp (the "*" matched nothing)
    sales@example.co.jp.evil  -> no match

The alias CSV
=============

The upload and export format (``aliases.csv``)::

    alias,mapped_to,comment
    sales@example.co.jp,team@inner.example.co.jp,営業部
    2009*@example.co.jp,"2009*@inner.example.co.jp,0","2009年入社, 全員"
    info@example.co.jp,info@inner.example.co.jp,'=SUM(A1)

- Columns ``alias``, ``mapped_to`` and an optional ``comment``. Trailing empty cells that
  spreadsheets add are ignored, rows whose cells are all blank are skipped, anything else with
  fewer than 2 or more than 3 cells is an error. A third cell that is just ``0`` or ``1`` is
  refused as an unquoted option: write ``"real@x.jp,0"``.
- The first non-blank row is a header when its cells are the column names in that order,
  English (``alias``, ``mapped_to``, ``comment``) or Japanese
  (``エイリアス``, ``実アドレス``, ``コメント``), compared case-insensitively after NFKC
  (so half-width ｶﾅ works) and ignoring surrounding spaces. The header is optional.
- Excel quoting (RFC 4180): quoted fields may hold commas, doubled quotes and newlines.
  Malformed quoting is an error on the row's line.
- Encodings: ``auto`` reads UTF-8 with or without a BOM and falls back to CP932 (Shift_JIS as
  written by Japanese Excel); ``utf-8`` and ``cp932`` force one. UTF-16 (Excel's "Unicode
  text") is refused. A line that does not decode is an error naming that line. ``auto``
  decides in a first pass over the file: UTF-8 when every line is UTF-8, else CP932 when
  every line decodes as CP932 (a file with UTF-8 text besides its CP932 lines then warns,
  ``csv.W003``, on the first line that is not UTF-8: that line decided), else the encoding
  with fewer undecodable lines.
- The file is read as a stream, a block of whole lines at a time, the usual unquoted row
  matched in place and anything else handed to the csv module line by line
  (:class:`AliasCsvReader`; :meth:`~AliasCsvReader.records` gives the rows as plain tuples):
  memory stays bounded by the findings kept and one key per row, whatever the file holds.
- Line endings CRLF, LF (or old-Mac CR). Line numbers count **physical** lines from 1, header
  included: a row that starts on line 7 and spans two lines is line 7, the next row is line 9.
- The ``alias`` and ``mapped_to`` cells are stripped of surrounding spaces; full-width
  characters in them are converted to ASCII **with a warning** on that line (never silently).
  Comments are stripped but otherwise kept as written (Japanese text stays full-width).
- Formula neutralisation: on export (of any table, through :func:`render_csv_table`) a cell
  that would start a spreadsheet formula (first character ``=``, ``+``, ``-``, ``@``, TAB or
  CR, possibly after leading ``'``) is prefixed with one ``'``; on import exactly that ``'``
  is removed again. A comment ``=SUM(A1)`` therefore survives the round trip without ever
  becoming a live formula, and a cell typed as ``'=SUM(A1)`` imports as ``=SUM(A1)``.

CSV finding codes (``alias.*`` codes live in :mod:`aliases.validation`):

=========  =====================================================================
csv.E001   a line cannot be decoded in the file's encoding
csv.E002   the file is UTF-16
csv.E003   malformed quoting (for example an unterminated quoted field)
csv.E004   wrong number of columns
csv.E005   header row with the right names in the wrong order
csv.E006   invalid alias address
csv.E007   invalid mapped_to address (or option)
csv.E008   routing characters (``%``, ``!``, quotes, a second ``@``) in a local part
csv.E009   control characters in a cell
csv.E010   alias domain is not a managed local domain (only when domains are given)
csv.E011   the alias already appears on an earlier line
csv.E012   ``*`` in mapped_to but none in the alias
csv.E013   a third cell of just ``0``/``1``: an unquoted option
csv.W001   full-width characters converted to ASCII
csv.W002   the file holds no alias rows
csv.W003   UTF-8 lines in a file read as CP932 (mixed encodings): they will be garbled
=========  =====================================================================
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import shlex
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import BinaryIO, TypeVar

from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _

__all__ = [
    "AddressPattern",
    "AddressProblem",
    "Alias",
    "AliasCsvReader",
    "AliasIndex",
    "AliasKind",
    "AliasMatch",
    "AliasSyntaxError",
    "CsvParseResult",
    "CsvRow",
    "neutralise_formula",
    "normalise_fullwidth",
    "parse_alias_csv",
    "parse_alias_pattern",
    "parse_target",
    "render_alias_csv",
    "render_csv_table",
    "render_register_script",
]

WILDCARD = "*"
OPTIONS = frozenset({"0", "1"})
MAX_LOCAL = 64
MAX_DOMAIN = 253

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LOCAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.*#$&'+-/=?^_`{|}~"
)
_ROUTING_CHARS = frozenset('%!"\\')
_T = TypeVar("_T")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def _fold(text: str) -> str:
    """Lower-case ASCII letters only, so that lengths (and slices) are preserved."""
    # str.lower() is many times faster than translate() and the same on ASCII text.
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


class AliasKind(StrEnum):
    EXACT = "exact"
    FULL_WILDCARD = "full_wildcard"
    PARTIAL_WILDCARD = "partial_wildcard"


@dataclass(frozen=True, slots=True)
class Alias:
    """One alias as stored: ``pattern`` and ``target`` as the admin wrote them."""

    pattern: str
    target: str
    option: str = ""
    comment: str = ""

    @property
    def local_part(self) -> str:
        local, at, _domain = self.pattern.rpartition("@")
        return local if at else self.pattern

    @property
    def domain(self) -> str:
        _local, at, domain = self.pattern.rpartition("@")
        return domain.lower() if at else ""

    @property
    def kind(self) -> AliasKind:
        local = self.local_part
        if local == WILDCARD:
            return AliasKind.FULL_WILDCARD
        if WILDCARD in local:
            return AliasKind.PARTIAL_WILDCARD
        return AliasKind.EXACT

    @property
    def target_text(self) -> str:
        """The 実アドレス as the vendor writes it: the target plus ``,option`` when set."""
        return f"{self.target},{self.option}" if self.option else self.target

    @property
    def key(self) -> str:
        """The case-folded pattern: two aliases with the same key are duplicates."""
        local, at, domain = self.pattern.rpartition("@")
        return f"{_fold(local)}@{domain.lower()}" if at else _fold(self.pattern)

    def rewrite(self, address: str) -> str | None:
        """The target for ``address`` when this alias matches it, else ``None``."""
        local, at, domain = address.rpartition("@")
        if not at or not local or domain.lower() != self.domain:
            return None
        matcher = _Matcher.of(self, 0)
        if matcher is None:
            return None
        captured = matcher.capture(local)
        if captured is None:
            return None
        return self.target.replace(WILDCARD, captured) if matcher.wildcard else self.target


# --- addresses --------------------------------------------------------------------------


class AddressProblem(StrEnum):
    SYNTAX = "syntax"
    ROUTING = "routing"
    CONTROL = "control"


class AliasSyntaxError(ValueError):
    """A malformed alias or target; ``message`` is a translatable template for ``params``."""

    def __init__(
        self, message: str, *, problem: AddressProblem = AddressProblem.SYNTAX, **params: object
    ) -> None:
        self.message = message
        self.problem = problem
        self.params: dict[str, object] = params
        super().__init__(message % params)


@dataclass(frozen=True, slots=True)
class AddressPattern:
    """A parsed alias pattern or target: ``local`` as written, ``domain`` lower-cased."""

    local: str
    domain: str

    @property
    def text(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def has_wildcard(self) -> bool:
        return WILDCARD in self.local

    @property
    def kind(self) -> AliasKind:
        return Alias(self.text, "").kind


def _visible(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN`` / ``\\uNNNN`` escapes."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) == "Cc" else ch
        for ch in text
    )


_LOCAL_CHAR = r"[A-Za-z0-9.#$&'+\-/=?^_`{|}~]"
_ANY_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Every well-formed address in one C-level match (bar the length limits and the all-digit last
# label, checked after it): at 100,000 rows the character-by-character checks below cost
# seconds, so they only run to name the problem of an address this does not match.
_PLAIN_ADDRESS = re.compile(
    rf"({_LOCAL_CHAR}*+(?:\*{_LOCAL_CHAR}*+)?)@({_ANY_LABEL}(?:\.{_ANY_LABEL})+)"
)


# The same addresses with the length limits and the all-digit last label inside the
# expression: the CSV reader's fast path (AliasCsvReader._fast_row) needs no other check.
_FAST_LOCAL = rf"(?=[^@]{{1,{MAX_LOCAL}}}@)({_LOCAL_CHAR}*+(?:\*{_LOCAL_CHAR}*+)?)"
_FAST_DOMAIN = (
    rf"(?=[^@]{{1,{MAX_DOMAIN}}}(?:\Z|[ \t]*,))((?:{_ANY_LABEL}\.)+(?![0-9]+\b){_ANY_LABEL})"
)
_FAST_ADDRESS = re.compile(rf"{_FAST_LOCAL}@{_FAST_DOMAIN}")
# A whole unquoted line ``alias,target[,comment]`` (no option: that needs quotes) matched in
# place inside a block of decoded lines, each address starting with a character that no
# formula guard or quoting can precede. Groups: the alias, its local part, its domain, the
# target, the comment.
_FAST_LINE = re.compile(
    rf"(?=[A-Za-z0-9*._])(?=[^@,\r\n]{{1,{MAX_LOCAL}}}@)"
    rf"(({_LOCAL_CHAR}*+(?:\*{_LOCAL_CHAR}*+)?)"
    rf"@(?=[^,\r\n]{{1,{MAX_DOMAIN}}},)((?:{_ANY_LABEL}\.)+(?![0-9]+\b){_ANY_LABEL})),"
    rf"((?=[A-Za-z0-9*._])(?=[^@,\r\n]{{1,{MAX_LOCAL}}}@){_LOCAL_CHAR}*+(?:\*{_LOCAL_CHAR}*+)?"
    rf"@(?=[^,\r\n]{{1,{MAX_DOMAIN}}}(?:,|\r|\n|\Z))"
    rf"(?:{_ANY_LABEL}\.)+(?![0-9]+\b){_ANY_LABEL})"
    r"(?:,([^\",\r\n]*))?(?:\r\n|\r|\n|\Z)"
)
# One physical line (CRLF, LF or CR ending), as io.StringIO(newline="") splits them.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_FAST_TARGET = re.compile(rf"{_FAST_LOCAL}@{_FAST_DOMAIN}(?:[ \t]*,[ \t]*([01]))?")


def _parse_address(text: str) -> AddressPattern:
    plain = _PLAIN_ADDRESS.fullmatch(text)
    if plain is not None:
        local, domain = plain.groups()
        if (
            0 < len(local) <= MAX_LOCAL
            and len(domain) <= MAX_DOMAIN
            and not domain.rpartition(".")[2].isdigit()
        ):
            return AddressPattern(local, domain.lower())
    return _parse_address_slowly(text)


def _parse_address_slowly(text: str) -> AddressPattern:
    if not text:
        raise AliasSyntaxError(_("the address is empty"))
    shown = _visible(text)
    for ch in text:
        if unicodedata.category(ch) == "Cc":
            raise AliasSyntaxError(
                _("%(value)s contains the control character %(char)s"),
                problem=AddressProblem.CONTROL,
                value=shown,
                char=_visible(ch),
            )
    if any(ch.isspace() for ch in text):
        raise AliasSyntaxError(_("%(value)s contains a space"), value=shown)
    at_signs = text.count("@")
    if at_signs == 0:
        raise AliasSyntaxError(
            _("%(value)s has no @domain: both sides of an alias need a domain"), value=shown
        )
    if at_signs > 1:
        raise AliasSyntaxError(
            _("%(value)s contains a second @: routing through another host is refused"),
            problem=AddressProblem.ROUTING,
            value=shown,
        )
    local, _at, domain = text.partition("@")
    if not local:
        raise AliasSyntaxError(_("%(value)s has nothing before the @"), value=shown)
    for ch in local:
        if ch in _ROUTING_CHARS:
            raise AliasSyntaxError(
                _("%(value)s contains the routing character %(char)s in its local part"),
                problem=AddressProblem.ROUTING,
                value=shown,
                char=ch,
            )
    for ch in text:
        if not ch.isascii():
            raise AliasSyntaxError(
                _("%(value)s contains the non-ASCII character %(char)s"), value=shown, char=ch
            )
    if local.count(WILDCARD) > 1:
        raise AliasSyntaxError(_("%(value)s has more than one * in its local part"), value=shown)
    for ch in local:
        if ch not in _LOCAL_CHARS:
            raise AliasSyntaxError(
                _("%(value)s contains %(char)s, which is not allowed in an address"),
                value=shown,
                char=ch,
            )
    if len(local) > MAX_LOCAL:
        raise AliasSyntaxError(
            _("%(value)s has a local part longer than %(limit)s characters"),
            value=shown,
            limit=MAX_LOCAL,
        )
    return AddressPattern(local, _parse_domain(domain, shown))


def _parse_domain(domain: str, shown: str) -> str:
    if not domain:
        raise AliasSyntaxError(_("%(value)s has nothing after the @"), value=shown)
    if WILDCARD in domain:
        raise AliasSyntaxError(
            _("%(value)s has a * in its domain: wildcards are only allowed before the @"),
            value=shown,
        )
    if domain.startswith("["):
        raise AliasSyntaxError(
            _("%(value)s has an IP-literal domain: use a domain name"), value=shown
        )
    if domain.endswith("."):
        raise AliasSyntaxError(_("%(value)s has a domain ending in a dot"), value=shown)
    if len(domain) > MAX_DOMAIN:
        raise AliasSyntaxError(
            _("%(value)s has a domain longer than %(limit)s characters"),
            value=shown,
            limit=MAX_DOMAIN,
        )
    lowered = domain.lower()
    labels = lowered.split(".")
    if len(labels) < 2:
        raise AliasSyntaxError(
            _("%(value)s has no dot in its domain: write the full domain name"), value=shown
        )
    for label in labels:
        if not _LABEL.match(label):
            raise AliasSyntaxError(
                _("%(value)s has an invalid domain label %(label)s"),
                value=shown,
                label=repr(label),
            )
    if labels[-1].isdigit():
        raise AliasSyntaxError(
            _("%(value)s has an IP address as its domain: use a domain name"), value=shown
        )
    return lowered


def parse_alias_pattern(text: str) -> AddressPattern:
    """Parse the alias side; raises :class:`AliasSyntaxError` naming the problem."""
    return _parse_address(text.strip())


def parse_target(text: str) -> tuple[str, str]:
    """Split and check ``target[,option]``; returns ``(target, option)`` with option ``""``,
    ``"0"`` or ``"1"``. Raises :class:`AliasSyntaxError`."""
    address, comma, option = text.strip().partition(",")
    address, option = address.strip(), option.strip()
    if comma and option not in OPTIONS:
        raise AliasSyntaxError(
            _("%(value)s has the option %(option)s: only ,0 and ,1 exist"),
            value=_visible(text.strip()),
            option=repr(option),
        )
    _parse_address(address)
    return address, option


def normalise_fullwidth(text: str) -> tuple[str, bool]:
    """Convert full-width ASCII (U+FF01-FF5E) and the ideographic space to ASCII; tell
    whether anything changed. Other characters (kana, kanji) are left alone."""
    if text.isascii():
        return text, False
    converted = text.translate(_FULLWIDTH)
    return converted, converted != text


_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


# --- matching -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Matcher:
    """A compiled pattern: the folded local part, or the folded text around the ``*``."""

    position: int
    wildcard: bool
    prefix: str
    suffix: str

    @classmethod
    def of(cls, alias: Alias, position: int) -> _Matcher | None:
        local, at, _domain = alias.pattern.rpartition("@")
        if not at or not local:
            return None
        stars = local.count(WILDCARD)
        if stars == 0:
            return cls(position, False, _fold(local), "")
        if stars > 1:
            return None
        prefix, _star, suffix = local.partition(WILDCARD)
        return cls(position, True, _fold(prefix), _fold(suffix))

    def capture(self, local: str, folded: str | None = None) -> str | None:
        """What the ``*`` matched in ``local`` (``""`` for an exact match), else ``None``;
        ``folded`` is ``_fold(local)`` when the caller already has it."""
        if folded is None:
            folded = _fold(local)
        if not self.wildcard:
            return "" if folded == self.prefix else None
        if (
            len(local) >= len(self.prefix) + len(self.suffix)
            and folded.startswith(self.prefix)
            and folded.endswith(self.suffix)
        ):
            return local[len(self.prefix) : len(local) - len(self.suffix)]
        return None

    def covers(self, other: _Matcher) -> bool:
        """True when every local part ``other`` matches is matched by this wildcard."""
        if not self.wildcard:
            return False
        if not other.wildcard:
            return self.capture(other.prefix) is not None
        return other.prefix.startswith(self.prefix) and other.suffix.endswith(self.suffix)


@dataclass(frozen=True, slots=True)
class AliasMatch:
    """The first alias matching an address; ``target`` has the ``*`` carry-over applied."""

    position: int
    alias: Alias
    target: str

    @property
    def option(self) -> str:
        return self.alias.option

    @property
    def target_text(self) -> str:
        return f"{self.target},{self.option}" if self.option else self.target


# Up to this many wildcards in a domain, shadowing is found by asking each in turn.
_SCAN_WILDCARDS = 64


class AliasIndex:
    """First-match lookup over aliases in storage order, fast at 100,000 aliases.

    Exact aliases sit in a dict (folded address -> first position); wildcards are grouped by
    domain in position order. A lookup costs one dict probe plus a walk over the wildcards of
    the address's domain that come before the exact hit.
    """

    __slots__ = ("_aliases", "_by_affixes", "_exact", "_wildcards")

    def __init__(
        self,
        aliases: tuple[Alias, ...],
        exact: Mapping[str, int],
        wildcards: Mapping[str, tuple[_Matcher, ...]],
    ) -> None:
        self._aliases = aliases
        self._exact = exact
        self._wildcards = wildcards
        # domain -> prefix -> suffix -> wildcards in position order, built on first use.
        self._by_affixes: dict[str, dict[str, dict[str, list[_Matcher]]]] = {}

    @classmethod
    def build(cls, aliases: Sequence[Alias]) -> AliasIndex:
        stored = tuple(aliases)
        exact: dict[str, int] = {}
        wildcards: dict[str, list[_Matcher]] = {}
        for position, alias in enumerate(stored):
            local, at, domain = alias.pattern.rpartition("@")
            if not at or not local:
                continue
            if WILDCARD not in local:
                # Most aliases: skip building a matcher that would only hold the folded text.
                exact.setdefault(f"{_fold(local)}@{domain.lower()}", position)
                continue
            matcher = _Matcher.of(alias, position)
            if matcher is not None:
                wildcards.setdefault(domain.lower(), []).append(matcher)
        return cls(stored, exact, {domain: tuple(ms) for domain, ms in wildcards.items()})

    @property
    def aliases(self) -> tuple[Alias, ...]:
        return self._aliases

    def __len__(self) -> int:
        return len(self._aliases)

    def lookup(self, address: str) -> AliasMatch | None:
        """The first alias in storage order that matches ``address`` (``local@domain``)."""
        local, at, domain = address.rpartition("@")
        if not at or not local:
            return None
        domain = domain.lower()
        folded = _fold(local)
        best = self._exact.get(f"{folded}@{domain}")
        for matcher in self._wildcards.get(domain, ()):
            if best is not None and matcher.position > best:
                break
            captured = matcher.capture(local, folded)
            if captured is not None:
                alias = self._aliases[matcher.position]
                return AliasMatch(matcher.position, alias, alias.target.replace(WILDCARD, captured))
        if best is None:
            return None
        return AliasMatch(best, self._aliases[best], self._aliases[best].target)

    def shadowing(self, position: int) -> int | None:
        """The earlier wildcard of the same domain that matches everything the alias at
        ``position`` would, so that it is never used; ``None`` when there is none."""
        return self.shadowing_of(self._aliases[position], position)

    def shadowing_of(self, alias: Alias, position: int) -> int | None:
        """Like :meth:`shadowing` for an alias that would sit at ``position`` (it need not
        be in the index): the first wildcard above it that matches everything it would."""
        wildcards = self._wildcards.get(alias.domain)
        if not wildcards or wildcards[0].position >= position:
            return None
        own = _Matcher.of(alias, position)
        if own is None:
            return None
        if len(wildcards) <= _SCAN_WILDCARDS:
            for matcher in wildcards:
                if matcher.position >= position:
                    return None
                if matcher.covers(own):
                    return matcher.position
            return None
        return self._shadowing_indexed(alias.domain, own, position)

    def _shadowing_indexed(self, domain: str, own: _Matcher, position: int) -> int | None:
        """:meth:`shadowing_of` for a domain with many wildcards, without comparing the
        alias with each: a wildcard that covers it has a prefix that starts its text and a
        suffix that ends it, so only the wildcards filed under those are asked."""
        by_affixes = self._by_affixes.get(domain)
        if by_affixes is None:
            by_affixes = {}
            for matcher in self._wildcards[domain]:
                by_affixes.setdefault(matcher.prefix, {}).setdefault(matcher.suffix, [])
                by_affixes[matcher.prefix][matcher.suffix].append(matcher)
            self._by_affixes[domain] = by_affixes
        head = own.prefix  # the whole folded local part of an exact alias
        tail = own.suffix if own.wildcard else own.prefix
        best: int | None = None
        for end in range(len(head) + 1):
            by_suffix = by_affixes.get(head[:end])
            if by_suffix is None:
                continue
            for start in range(len(tail) + 1):
                for matcher in by_suffix.get(tail[start:], ()):
                    limit = position if best is None else best
                    if matcher.position >= limit:
                        break
                    if matcher.covers(own):
                        best = matcher.position
                        break
        return best


# --- CSV ----------------------------------------------------------------------------------

COLUMNS = ("alias", "mapped_to", "comment")
COLUMNS_JA = ("エイリアス", "実アドレス", "コメント")
FORMULA_STARTS = frozenset("=+-@\t\r")
ENCODINGS = ("auto", "utf-8", "cp932")


@dataclass(frozen=True, slots=True)
class CsvRow:
    """A valid row: its first physical line, the alias, and the alias's key and domain
    (``Alias.key``, ``Alias.domain``), which the reader has at hand."""

    line: int
    alias: Alias
    key: str = field(default="", compare=False)
    domain: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class CsvParseResult:
    """The valid rows, every finding with its line, and how the file was read."""

    rows: tuple[CsvRow, ...]
    findings: tuple[Finding, ...]
    encoding: str
    bom: bool = False
    header_line: int | None = None
    errors: int = 0
    warnings: int = 0
    omitted: int = 0

    @property
    def has_errors(self) -> bool:
        return self.errors > 0 or any(f.level is Level.ERROR for f in self.findings)

    @property
    def aliases(self) -> tuple[Alias, ...]:
        return tuple(row.alias for row in self.rows)


def _needs_guard(cell: str) -> bool:
    rest = cell.lstrip("'")
    return bool(rest) and rest[0] in FORMULA_STARTS


def neutralise_formula(cell: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula."""
    return "'" + cell if _needs_guard(cell) else cell


def unneutralise_formula(cell: str) -> str:
    """Undo :func:`neutralise_formula`: drop exactly one leading ``'`` it would have added."""
    return cell[1:] if cell.startswith("'") and _needs_guard(cell[1:]) else cell


_BLOCK = 1 << 20


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream in blocks of about :data:`_BLOCK` bytes, each ending after a line break
    (bar the last), so that every block decodes on its own and a CRLF is never split."""
    rest = b""
    while True:
        chunk = stream.read(_BLOCK)
        if not chunk:
            if rest:
                yield rest
            return
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n")
        if cut == -1:
            # CR-only line endings, or one very long line: cut after a CR that is not last.
            cut = data.rfind(b"\r", 0, len(data) - 1)
        if cut == -1:
            rest = data
            continue
        rest = data[cut + 1 :]
        yield data[: cut + 1]


def _line_count(block: bytes) -> int:
    """Physical lines in a block from :func:`_blocks` (CRLF, LF or CR endings)."""
    count = block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
    return count + (not block.endswith((b"\n", b"\r")))


@dataclass(frozen=True, slots=True)
class _Sniffed:
    """What the ``auto`` pre-pass learnt: the codec and, for a file read as CP932 that also
    holds UTF-8 text, the first line that is not UTF-8 (it decided) and the first UTF-8 one."""

    codec: str
    deciding_line: int | None = None
    utf8_line: int | None = None


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _sniff(stream: BinaryIO, skip: int) -> _Sniffed:
    """Choose UTF-8 or CP932 for ``auto`` in one pass over the stream (bounded memory):
    UTF-8 when every line decodes as UTF-8, else CP932 when every line decodes as CP932,
    else the one with fewer undecodable lines (CP932 on a tie, as Japanese Excel writes)."""
    stream.seek(skip)
    # The usual file is UTF-8 throughout: one decode per block says so, without the per-line
    # counts that only a file with a line that is not UTF-8 needs.
    if all(block.isascii() or _decodes(block, "utf-8") for block in _blocks(stream)):
        stream.seek(skip)
        return _Sniffed("utf-8")
    stream.seek(skip)
    number = utf8_bad = cp932_bad = 0
    first_bad: int | None = None
    first_utf8: int | None = None
    for block in _blocks(stream):
        if block.isascii():
            number += _line_count(block)
            continue
        utf8_ok, cp932_ok = _decodes(block, "utf-8"), _decodes(block, "cp932")
        if utf8_ok and cp932_ok and first_utf8 is not None:
            number += _line_count(block)
            continue
        for line in block.splitlines():
            number += 1
            if line.isascii():
                continue
            if _decodes(line, "utf-8"):
                first_utf8 = first_utf8 or number
            else:
                utf8_bad += 1
                first_bad = first_bad or number
            if not cp932_ok and not _decodes(line, "cp932"):
                cp932_bad += 1
    stream.seek(skip)
    if not utf8_bad or utf8_bad < cp932_bad:
        return _Sniffed("utf-8")
    return _Sniffed("cp932", first_bad, first_utf8)


def _header_kind(cells: list[str]) -> str:
    """``"header"``, ``"misordered"`` (names in the wrong order) or ``"data"``."""
    names = [unicodedata.normalize("NFKC", cell).strip().casefold() for cell in cells]
    if not 2 <= len(names) <= 3:
        return "data"
    if all(name in (COLUMNS[i], COLUMNS_JA[i]) for i, name in enumerate(names)):
        return "header"
    known = set(COLUMNS) | set(COLUMNS_JA)
    return "misordered" if all(name in known for name in names) else "data"


_PROBLEM_CODES = {
    AddressProblem.ROUTING: "csv.E008",
    AddressProblem.CONTROL: "csv.E009",
}
# A cell starting with one of these takes the slow path (formula guard, quoting, spaces).
_PLAIN_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*._")


# A valid row as the import stores it: (line, pattern, target, option, comment, key, domain).
Record = tuple[int, str, str, str, str, str, str]


class _LineSource:
    """The decoded stream for :meth:`AliasCsvReader.records`: the current segment ``text``
    (a block of whole lines, or one line of a block that did not decode) read from ``pos``,
    either matched in place or one physical line at a time for the csv module."""

    __slots__ = ("clean", "pos", "reader", "segments", "text")

    def __init__(self, reader: AliasCsvReader, segments: Iterator[tuple[str, bool]]) -> None:
        self.reader = reader
        self.segments = segments
        self.text = ""
        self.pos = 0
        self.clean = True

    def advance(self) -> bool:
        """Move to the next segment; False at the end of the stream."""
        for text, clean in self.segments:
            self.text, self.pos, self.clean = text, 0, clean
            return True
        return False

    def readline(self) -> str:
        """The next physical line, its end kept; ``""`` at the end of the stream. Reading a
        line that did not decode marks the reader's current record."""
        while self.pos >= len(self.text):
            if not self.advance():
                return ""
        if not self.clean:
            self.reader._touched = True
        line = _LINE.match(self.text, self.pos)
        assert line is not None  # matches any text, and there is some
        self.pos = line.end()
        return line.group()


class AliasCsvReader:
    """Reads an alias CSV from a binary stream, one physical line at a time.

    Iterate it for the valid rows (:class:`CsvRow`, in file order); the findings come in
    line order as the rows are read. At most ``finding_limit`` errors and as many warnings
    are kept (``findings``); ``errors`` and ``warnings`` count all of them, ``omitted``
    those not kept. Memory stays bounded by the limit plus one key per valid row (the
    duplicate check), whatever the file holds. ``stream`` must be seekable for ``auto``.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        encoding: str = "auto",
        local_domains: frozenset[str] | None = None,
        finding_limit: int | None = None,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
        self.stream = stream
        self.requested = encoding
        self.local_domains = (
            None if local_domains is None else frozenset(d.lower() for d in local_domains)
        )
        self.finding_limit = finding_limit
        self.findings: list[Finding] = []
        self.errors = 0
        self.warnings = 0
        self.omitted = 0
        self.rows_read = 0
        self.refused_lines = 0
        self.encoding = "utf-8"
        self.bom = False
        self.header_line: int | None = None
        self.first_seen: dict[str, int] = {}
        self._touched = False
        self._started = False

    # --- findings

    def _add(self, finding: Finding) -> None:
        if finding.level is Level.ERROR:
            self.errors += 1
            kept = self.errors
        elif finding.level is Level.WARNING:
            self.warnings += 1
            kept = self.warnings
        else:
            kept = 0
        if self.finding_limit is not None and kept > self.finding_limit:
            self.omitted += 1
            return
        self.findings.append(finding)

    @property
    def has_errors(self) -> bool:
        return self.errors > 0

    # --- lines

    def _segments(self, codec: str) -> Iterator[tuple[str, bool]]:
        """The stream decoded, as ``(text, clean)``: a whole block of lines when it decodes,
        else its lines one at a time; a line that does not decode is reported
        (``csv.E001``), read with replacement characters and not ``clean``."""
        number = 0
        for block in _blocks(self.stream):
            try:
                text = block.decode(codec)
            except UnicodeDecodeError:
                pass
            else:
                yield text, True
                number += _line_count(block)
                continue
            for raw in block.splitlines(keepends=True):
                number += 1
                try:
                    yield raw.decode(codec), True
                except UnicodeDecodeError:
                    self._add(
                        make(
                            Level.ERROR,
                            "csv.E001",
                            _("line %(number)s cannot be decoded as %(encoding)s"),
                            line=number,
                            number=number,
                            hint=_("Save the file as CSV UTF-8 or as CSV (Shift_JIS / CP932)."),
                            encoding=codec,
                        )
                    )
                    yield raw.decode(codec, errors="replace"), False

    def _open(self) -> _LineSource | None:
        head = self.stream.read(3)
        self.stream.seek(0)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16"
            self._add(
                make(
                    Level.ERROR,
                    "csv.E002",
                    _("the file is UTF-16 (Excel's Unicode text)"),
                    line=1,
                    hint=_("Save it as CSV UTF-8 or as CSV (Shift_JIS / CP932)."),
                )
            )
            return None
        self.bom = self.requested != "cp932" and head == codecs.BOM_UTF8
        skip = len(codecs.BOM_UTF8) if self.bom else 0
        self.stream.seek(skip)
        if self.requested == "auto" and not self.bom:
            sniffed = _sniff(self.stream, skip)
            self.encoding = sniffed.codec
            if sniffed.deciding_line is not None and sniffed.utf8_line is not None:
                self._add(
                    make(
                        Level.WARNING,
                        "csv.W003",
                        _(
                            "line %(number)s is not UTF-8, so the whole file is read as "
                            "Shift_JIS (CP932), but line %(first)s is UTF-8: its Japanese "
                            "text, and that of every other UTF-8 line, will be garbled"
                        ),
                        line=sniffed.deciding_line,
                        hint=_(
                            "The file mixes two encodings: save it again as CSV UTF-8, or "
                            "choose the encoding of the upload yourself."
                        ),
                        number=sniffed.deciding_line,
                        first=sniffed.utf8_line,
                    )
                )
        else:
            self.encoding = "cp932" if self.requested == "cp932" else "utf-8"
        return _LineSource(self, self._segments(self.encoding))

    # --- rows

    def __iter__(self) -> Iterator[CsvRow]:
        for line, pattern, target, option, comment, key, domain in self.records():
            yield CsvRow(line, Alias(pattern, target, option, comment), key, domain)

    def records(self) -> Iterator[Record]:
        """The valid rows as plain tuples (:data:`Record`), what an import stores: the same
        rows as iterating the reader, without an object per row."""
        if self._started:
            raise RuntimeError("an AliasCsvReader reads its stream once")
        self._started = True
        source = self._open()
        if source is None:
            return
        fast_line = _FAST_LINE.match
        first_seen = self.first_seen
        local_domains = self.local_domains
        number = 0  # physical lines read
        seen_content = False
        while True:
            text, pos = source.text, source.pos
            if pos >= len(text):
                if source.advance():
                    continue
                break
            if seen_content and source.clean:
                # Most lines: one unquoted row, matched in place by one regular expression;
                # anything it cannot vouch for takes the csv module's path below.
                plain = fast_line(text, pos)
                if plain is not None:
                    pattern, local, domain, target, comment = plain.groups()
                    if comment:
                        comment = comment.strip()
                    if not comment:
                        comment = ""
                    elif comment[0] == "'" or comment in OPTIONS or not comment.isprintable():
                        plain = None
                    if plain is not None and WILDCARD in target and WILDCARD not in local:
                        plain = None
                    if plain is not None:
                        domain = domain.lower()
                        if local_domains is not None and domain not in local_domains:
                            plain = None
                    if plain is not None:
                        key = f"{local.lower()}@{domain}"
                        # A duplicate takes the slow path, which names the first line.
                        if first_seen.setdefault(key, number + 1) == number + 1:
                            number += 1
                            source.pos = plain.end()
                            self.rows_read += 1
                            yield number, pattern, target, "", comment, key, domain
                            continue
            # Anything else through the csv module, which reads on while a quote is open.
            self._touched = False
            number += 1
            start = number
            first = source.readline()
            reader = csv.reader(itertools.chain((first,), iter(source.readline, "")), strict=True)
            try:
                cells = next(reader)
            except csv.Error as error:
                number += reader.line_num - 1
                if not self._touched:
                    self._add(self._quoting_error(start, number, str(error)))
                self.refused_lines += 1
                continue
            number += reader.line_num - 1
            if self._touched:
                self.refused_lines += 1
                continue
            while cells and not cells[-1].strip():
                cells.pop()
            if not cells:
                continue
            if not seen_content:
                seen_content = True
                kind = _header_kind(cells)
                if kind == "header":
                    self.header_line = start
                    continue
                if kind == "misordered":
                    self._add(
                        make(
                            Level.ERROR,
                            "csv.E005",
                            _("the header must be alias, mapped_to, comment in that order"),
                            line=start,
                        )
                    )
                    self.refused_lines += 1
                    continue
            row = self._fast_row(start, cells)
            if row is None:
                row = self._row(start, cells)
            if row is None:
                self.refused_lines += 1
                continue
            self.rows_read += 1
            alias = row.alias
            yield (
                start,
                alias.pattern,
                alias.target,
                alias.option,
                alias.comment,
                row.key,
                row.domain,
            )
        if not self.rows_read and not self.errors:
            self._add(make(Level.WARNING, "csv.W002", _("the file holds no alias rows"), line=None))

    @staticmethod
    def _quoting_error(start: int, end: int, detail: str) -> Finding:
        if "NUL" in detail:
            return make(
                Level.ERROR,
                "csv.E009",
                _("line %(end)s contains the control character \\x00: is this a CSV file?"),
                line=start,
                hint=_("Save the file as CSV UTF-8 or as CSV (Shift_JIS / CP932)."),
                end=end,
            )
        if detail.startswith("field larger than field limit"):
            return make(
                Level.ERROR,
                "csv.E003",
                _(
                    "a cell starting on line %(start)s is longer than %(limit)s characters: "
                    "an unclosed quote, or not a CSV file?"
                ),
                line=start,
                start=start,
                limit=f"{csv.field_size_limit():,}",
                hint=_('Close the quote, or double quotes inside quoted text ("").'),
            )
        if detail.startswith("unexpected end of data"):
            return make(
                Level.ERROR,
                "csv.E003",
                _("a quoted field starting on line %(start)s is never closed"),
                line=start,
                start=start,
                hint=_('Close the quote, or double quotes inside quoted text ("").'),
            )
        return make(
            Level.ERROR,
            "csv.E003",
            _("malformed quoting on line %(end)s: %(detail)s"),
            line=start,
            hint=_('Double quotes inside quoted text ("") or quote the whole cell.'),
            end=end,
            detail=detail,
        )

    def _fast_row(self, line: int, cells: list[str]) -> CsvRow | None:
        """The common row (plain ASCII addresses, a printable comment) in two regular
        expression matches; ``None`` sends anything else to :meth:`_row`, which names its
        problems (and accepts the same rows: a test holds the two to the same answers)."""
        count = len(cells)
        if count != 2 and count != 3:
            return None
        alias_text, target_text = cells[0], cells[1]
        if (
            alias_text[:1] not in _PLAIN_START
            or target_text[:1] not in _PLAIN_START
            or not alias_text.isascii()
            or not target_text.isascii()
        ):
            return None
        comment = cells[2].strip() if count == 3 else ""
        if comment and (comment[0] == "'" or comment in OPTIONS or not comment.isprintable()):
            return None
        alias = _FAST_ADDRESS.fullmatch(alias_text)
        if alias is None:
            return None
        target = _FAST_TARGET.fullmatch(target_text)
        if target is None or (WILDCARD in target_text and WILDCARD not in alias_text):
            return None
        local, domain = alias.groups()
        domain = domain.lower()
        if self.local_domains is not None and domain not in self.local_domains:
            return None
        key = f"{local.lower()}@{domain}"
        if self.first_seen.setdefault(key, line) != line:
            return None  # a duplicate: the slow path names the first line
        entry = Alias(alias_text, target_text[: target.end(2)], target.group(3) or "", comment)
        return CsvRow(line, entry, key, domain)

    def _row(self, line: int, raw: list[str]) -> CsvRow | None:
        if not 2 <= len(raw) <= 3:
            self._add(
                make(
                    Level.ERROR,
                    "csv.E004",
                    _("expected 2 or 3 columns (alias, mapped_to, comment), found %(count)s"),
                    line=line,
                    hint=_("Quote a comment or a mapped_to,option that contains a comma.")
                    if len(raw) > 3
                    else _("Every row needs an alias and the address it is mapped to."),
                    count=len(raw),
                )
            )
            return None
        cells = [unneutralise_formula(cell) for cell in raw]
        errors_before = self.errors
        alias_text = self._address_cell(line, "alias", cells[0])
        target_text = self._address_cell(line, "mapped_to", cells[1])
        comment = cells[2].strip() if len(cells) == 3 else ""
        pattern = self._check(line, "csv.E006", lambda: parse_alias_pattern(alias_text))
        parsed_target = self._check(line, "csv.E007", lambda: parse_target(target_text))
        self._check_comment(line, comment)
        if pattern is not None:
            self._check_pattern(line, pattern, alias_text)
        if parsed_target is not None:
            target, option = parsed_target
            if pattern is not None and WILDCARD in target and not pattern.has_wildcard:
                self._add(
                    make(
                        Level.ERROR,
                        "csv.E012",
                        _("%(target)s has a * but the alias %(alias)s has none to carry over"),
                        line=line,
                        alias=alias_text,
                        target=target,
                    )
                )
            if not option and comment in OPTIONS:
                self._add(
                    make(
                        Level.ERROR,
                        "csv.E013",
                        _("the comment is just %(comment)s: is it an unquoted option?"),
                        line=line,
                        hint=_('Write the option inside quotes: "real@example.jp,0".'),
                        comment=comment,
                    )
                )
        if pattern is None or parsed_target is None or self.errors > errors_before:
            return None
        alias = Alias(alias_text, target, option, comment)
        return CsvRow(line, alias, alias.key, alias.domain)

    def _address_cell(self, line: int, column: str, cell: str) -> str:
        converted, changed = normalise_fullwidth(cell)
        if changed:
            self._add(
                make(
                    Level.WARNING,
                    "csv.W001",
                    _(
                        "full-width characters in %(column)s converted to ASCII: "
                        '"%(before)s" became "%(after)s"'
                    ),
                    line=line,
                    column=column,
                    before=_visible(cell),
                    after=_visible(converted.strip()),
                )
            )
        return converted.strip()

    def _check(self, line: int, code: str, parse: Callable[[], _T]) -> _T | None:
        try:
            return parse()
        except AliasSyntaxError as error:
            params = tuple(sorted(error.params.items()))
            code = _PROBLEM_CODES.get(error.problem, code)
            self._add(Finding(Level.ERROR, code, error.message, line, params=params))
            return None

    def _check_comment(self, line: int, comment: str) -> None:
        if comment.isprintable():
            return  # no control character (the loop below costs a second at 100,000 rows)
        for ch in comment:
            if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n":
                self._add(
                    make(
                        Level.ERROR,
                        "csv.E009",
                        _("%(value)s contains the control character %(char)s"),
                        line=line,
                        value=_visible(comment),
                        char=_visible(ch),
                    )
                )
                return

    def _check_pattern(self, line: int, pattern: AddressPattern, written: str) -> None:
        if self.local_domains is not None and pattern.domain not in self.local_domains:
            self._add(
                make(
                    Level.ERROR,
                    "csv.E010",
                    _("%(alias)s: %(domain)s is not a local domain managed here"),
                    line=line,
                    hint=_("Add the domain first, or correct the alias."),
                    alias=written,
                    domain=pattern.domain,
                )
            )
        key = Alias(pattern.text, "").key
        first = self.first_seen.setdefault(key, line)
        if first != line:
            self._add(
                make(
                    Level.ERROR,
                    "csv.E011",
                    _("%(alias)s is already on line %(first_line)s"),
                    line=line,
                    alias=written,
                    first_line=first,
                )
            )


def parse_alias_csv(
    data: bytes | BinaryIO,
    *,
    encoding: str = "auto",
    local_domains: frozenset[str] | None = None,
    finding_limit: int | None = None,
) -> CsvParseResult:
    """Read a whole alias CSV; every problem becomes a finding with its physical line number.

    ``rows`` holds only the valid rows; callers import all-or-nothing on ``has_errors``.
    For files too large to hold every row, iterate an :class:`AliasCsvReader` instead.
    """
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    reader = AliasCsvReader(
        stream, encoding=encoding, local_domains=local_domains, finding_limit=finding_limit
    )
    rows = tuple(reader)
    findings = sorted(reader.findings, key=lambda f: (f.line is None, f.line or 0))
    return CsvParseResult(
        rows,
        tuple(findings),
        reader.encoding,
        reader.bom,
        reader.header_line,
        errors=reader.errors,
        warnings=reader.warnings,
        omitted=reader.omitted,
    )


def render_csv_table(rows: Iterable[Iterable[str]]) -> str:
    """Rows as CSV text with CRLF endings and every cell formula-neutralised; the caller
    encodes it (UTF-8, with a BOM for Excel if wanted)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([neutralise_formula(cell) for cell in row] for row in rows)
    return out.getvalue()


def render_alias_csv(aliases: Iterable[Alias], *, header: bool = True) -> str:
    """The aliases as CSV text with CRLF endings and formula-neutralised cells; the caller
    encodes it (UTF-8, with a BOM for Excel if wanted). Round-trips through the parser."""
    rows = ((alias.pattern, alias.target_text, alias.comment) for alias in aliases)
    return render_csv_table(itertools.chain([COLUMNS], rows) if header else rows)


# --- registration script ------------------------------------------------------------------


def render_register_script(
    aliases: Iterable[Alias],
    *,
    folder: str = "/usr/local/mta/bin",
    command: str = "./epstman",
    mode_word: str = "NA",
    newline: str = "\n",
) -> str:
    """A POSIX sh script registering every alias with the console tool, one command each,
    every argument shell-quoted (an unquoted ``*@domain.jp`` would be a glob)."""
    lines = [
        "#!/bin/sh",
        "# Generated by Relay Control Center: registers the aliases with the E-Post console tool.",
        "# Do not edit by hand; change the aliases in the control center and export again.",
        "set -eu",
        f"cd {shlex.quote(folder)}",
    ]
    lines.extend(
        " ".join(
            shlex.quote(word)
            for word in (
                command,
                f"mode={mode_word}",
                f"domname={alias.domain}",
                f"aliases={alias.pattern}",
                f"mappedto={alias.target_text}",
            )
        )
        for alias in aliases
    )
    return newline.join(lines) + newline
