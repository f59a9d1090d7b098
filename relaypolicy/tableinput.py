"""What may be stored in the relay table: the editor's and the import's input, cleaned (no Django).

Every string of the table ends up as (part of) one effect.dat line, so every one is checked the
same way, whether typed in the editor, imported, or sent in a hidden field: no control character
(a CR, VT, FF or NUL could hide a second line from the validator, and the daemon's reading of
it is unknown), a TAB only where the daemon is known to treat it as a separator, and no field
longer than its database column, so that SQLite and PostgreSQL refuse the same input.
"""

from __future__ import annotations

import re
from dataclasses import replace

from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _
from relaypolicy.effectfile import EffectLine, LineKind, decode_effect, parse_line
from relaypolicy.table import Owner, Part, RenderedTable, Row, Table

#: Database column sizes (``relaypolicy.models``); checked here so both databases agree.
MAX_PATTERN = 255
MAX_MODIFIER = 32
MAX_COMMENT = 255
MAX_TEXT = 1024
MAX_HEADER = 255
#: Control characters, line and paragraph separators; TAB is handled apart (see above).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
#: Findings of one kind reported per file before a summary takes over (a binary file has many).
MAX_REPORTED = 20


def control_character(text: str, *, tab_allowed: bool = True) -> str | None:
    """The first control character in ``text`` (a TAB only when not ``tab_allowed``), or None."""
    found = CONTROL_CHARACTERS.search(text)
    if found is not None:
        return found.group()
    return None if tab_allowed or "\t" not in text else "\t"


def line_control_character(text: str) -> str | None:
    """The first control character that may not stand in the effect.dat line ``text``.

    A TAB may separate the pattern from the modifier (the daemon then ignores the modifier,
    which the validator explains), end the line, or stand in a comment; anywhere else it is
    refused like any other control character.
    """
    found = control_character(text)
    if found is not None or "\t" not in text:
        return found
    line = parse_line(text)
    if line.kind in (LineKind.COMMENT, LineKind.BLANK):
        return None
    if line.text.startswith("\t"):
        return None  # kept as an unparsable line, reported by the validator (relay.E001)
    return "\t" if "\t" in line.modifier_text else None


def visible(text: str) -> str:
    """``text`` with each control character shown as its Unicode control picture (U+2400...)."""
    return CONTROL_CHARACTERS.sub(_picture, text)


def _picture(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


def describe_character(char: str) -> str:
    """``U+000D (CR)`` and the like, for messages."""
    names = {"\x00": "NUL", "\t": "TAB", "\n": "LF", "\x0b": "VT", "\x0c": "FF", "\r": "CR"}
    name = names.get(char)
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _control_finding(number: int, char: str) -> Finding:
    return make(
        Level.ERROR,
        "relay.E040",
        _(
            "Line %(number)s contains the control character %(character)s. An effect.dat line "
            "is plain text: the daemon's reading of this line is unknown, so it is not stored."
        ),
        line=number,
        hint=_("Remove the character, or retype the line."),
        number=number,
        character=describe_character(char),
    )


_LENGTH_MESSAGES = {
    "pattern": _(
        "The pattern on line %(number)s is %(length)s characters long; at most %(limit)s."
    ),
    "modifier": _(
        "The modifier on line %(number)s is %(length)s characters long; at most %(limit)s "
        "(E-Post's modifiers are at most 9)."
    ),
    "comment": _(
        "The comment on line %(number)s is %(length)s characters long; at most %(limit)s."
    ),
    "line": _("Line %(number)s is %(length)s characters long; at most %(limit)s."),
}


def _length_finding(number: int, field: str, length: int, limit: int) -> Finding:
    return make(
        Level.ERROR,
        "relay.E044",
        _LENGTH_MESSAGES[field],
        line=number,
        hint=_("Shorten it; effect.dat lines are at most 255 bytes."),
        number=number,
        length=length,
        limit=limit,
    )


def _line_length_findings(line: EffectLine) -> list[Finding]:
    number = line.number
    if len(line.text) > MAX_TEXT:
        return [_length_finding(number, "line", len(line.text), MAX_TEXT)]
    if line.kind is LineKind.COMMENT:
        if len(line.text) - 1 > MAX_COMMENT:
            return [_length_finding(number, "comment", len(line.text) - 1, MAX_COMMENT)]
        return []
    found = []
    if len(line.pattern) > MAX_PATTERN:
        found.append(_length_finding(number, "pattern", len(line.pattern), MAX_PATTERN))
    if len(line.modifier_text) > MAX_MODIFIER:
        found.append(_length_finding(number, "modifier", len(line.modifier_text), MAX_MODIFIER))
    return found


def clean_effect_text(text: str) -> tuple[str, list[Finding]]:
    """An imported file's text made safe to parse and show, and what was wrong with it.

    The lines are those of :func:`parse_effect` (split at LF). A CR ending a line is a line
    ending and is dropped (a file mixing CRLF and LF is noted once). Any other control character
    is an error on its line (``relay.E040``, a file with CR-only line endings ``relay.E041``) and
    is replaced by its control picture, so the preview shows it and nothing downstream can
    mistake it for a line break. Fields longer than their column are ``relay.E044``.
    """
    findings: list[Finding] = []
    if "\r" in text and "\n" not in text.rstrip("\r\n"):
        findings.append(
            make(
                Level.ERROR,
                "relay.E041",
                _(
                    "The file's lines end with CR only (old Macintosh line endings): the daemon "
                    "reads such a file as one line."
                ),
                line=1,
                hint=_("Save the file with CRLF (Windows) or LF line endings and import it again."),
            )
        )
        return visible(text), findings
    pieces = text.split("\n")
    crlf = pieces[0].endswith("\r") and len(pieces) > 1
    mixed_at: int | None = None
    reported = 0
    cleaned: list[str] = []
    for number, piece in enumerate(pieces, start=1):
        if piece.endswith("\r"):
            piece = piece[:-1]
            if not crlf and mixed_at is None and number < len(pieces):
                mixed_at = number
        elif crlf and number < len(pieces) and mixed_at is None:
            mixed_at = number
        char = line_control_character(piece)
        if char is not None:
            reported += 1
            if reported <= MAX_REPORTED:
                findings.append(_control_finding(number, char))
            piece = visible(piece).replace("\t", "\u2409") if char == "\t" else visible(piece)
        elif not piece.isascii() and "\ufffd" not in piece:
            findings.extend(_unwritable_findings(number, piece))
        if len(piece) > MAX_MODIFIER:  # shorter lines cannot overflow a field: skip the parse
            findings.extend(_line_length_findings(parse_line(piece, number)))
        cleaned.append(piece)
    if reported > MAX_REPORTED:
        findings.append(
            make(
                Level.ERROR,
                "relay.E043",
                _(
                    "%(count)s more lines contain control characters: is this a binary file or "
                    "a UTF-16 text?"
                ),
                hint=_("effect.dat is a text file in ASCII (or Shift_JIS)."),
                count=reported - MAX_REPORTED,
            )
        )
    if mixed_at is not None:
        findings.append(
            make(
                Level.INFO,
                "relay.I104",
                _(
                    "The file mixes CRLF and LF line endings (first at line %(number)s); the "
                    "export writes the line ending set in the server settings throughout."
                ),
                line=mixed_at,
                number=mixed_at,
            )
        )
    return "\n".join(cleaned), findings


def _unwritable_findings(number: int, text: str) -> list[Finding]:
    """``relay.E045`` when pasted text holds a character effect.dat (CP932 at most) cannot
    hold: the export would write ``?`` instead, and the file would not be what was shown."""
    for char in text:
        try:
            char.encode("cp932")
        except UnicodeEncodeError:
            return [
                make(
                    Level.ERROR,
                    "relay.E045",
                    _(
                        "Line %(number)s contains %(character)s, which effect.dat cannot hold "
                        "(it is ASCII, with Shift_JIS comments at most)."
                    ),
                    line=number,
                    hint=_("Retype the line in ASCII."),
                    number=number,
                    character=f"'{char}' (U+{ord(char):04X})",
                )
            ]
    return []


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_effect_bytes(data: bytes) -> tuple[str, list[Finding]]:
    """Decode an uploaded effect.dat (:func:`decode_effect`) and clean it; UTF-16 is refused."""
    findings: list[Finding] = []
    if data.startswith(_UTF16_BOMS) or b"\x00" in data:
        findings.append(
            make(
                Level.ERROR,
                "relay.E042",
                _("The file looks like UTF-16 or binary data, not an effect.dat text file."),
                line=1,
                hint=_("Save it as ASCII (or Shift_JIS) text and import it again."),
            )
        )
    text, decode_findings = decode_effect(data)
    cleaned, clean_findings = clean_effect_text(text)
    return cleaned, [*findings, *decode_findings, *clean_findings]


def sanitize_table(table: Table) -> Table:
    """``table`` with every control character but TAB shown as its picture: safe to render."""

    def fix(text: str) -> str:
        return visible(text) if CONTROL_CHARACTERS.search(text) else text

    def fix_row(row: Row) -> Row:
        if not any(
            CONTROL_CHARACTERS.search(value)
            for value in (row.pattern, row.modifier, row.comment, row.text)
        ):
            return row  # the usual case: no copy
        return replace(
            row,
            pattern=fix(row.pattern),
            modifier=fix(row.modifier),
            comment=fix(row.comment),
            text=fix(row.text),
        )

    return replace(
        table,
        header=tuple(fix(text) for text in table.header),
        rows=tuple(fix_row(row) for row in table.rows),
    )


def table_field_findings(table: Table, rendered: RenderedTable) -> list[Finding]:
    """Control characters and over-long fields anywhere in ``table`` (header lines included),
    numbered by the lines of ``rendered`` (the rendering of :func:`sanitize_table`)."""
    last_line: dict[Owner, int] = {}
    first_line: dict[Owner, int] = {}
    for number, owner in enumerate(rendered.owners, start=1):
        first_line.setdefault(owner, number)
        last_line[owner] = number
    findings: list[Finding] = []
    for index, text in enumerate(table.header):
        number = first_line[Owner(Part.HEADER, index)]
        char = line_control_character(text)
        if char is not None:
            findings.append(_control_finding(number, char))
        if len(text) > MAX_HEADER:
            findings.append(_length_finding(number, "line", len(text), MAX_HEADER))
        else:
            findings.extend(_line_length_findings(parse_line(text, number)))
    for index, row in enumerate(table.rows):
        owner = Owner(Part.ROW, index)
        comment_line, rule_line = first_line[owner], last_line[owner]
        char = control_character(row.comment)
        if char is not None:
            findings.append(_control_finding(comment_line, char))
        if len(row.comment) > MAX_COMMENT:
            findings.append(_length_finding(comment_line, "comment", len(row.comment), MAX_COMMENT))
        char = (
            line_control_character(row.text)
            or control_character(row.pattern, tab_allowed=False)
            or control_character(row.modifier, tab_allowed=False)
        )
        if char is not None:
            findings.append(_control_finding(rule_line, char))
        for name, value, limit in (
            ("pattern", row.pattern, MAX_PATTERN),
            ("modifier", row.modifier, MAX_MODIFIER),
            ("line", row.text, MAX_TEXT),
        ):
            if len(value) > limit:
                findings.append(_length_finding(rule_line, name, len(value), limit))
    return findings
