"""The Japanese catalogue is complete and the committed .mo matches the .po."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"


def _entries(po: Path) -> list[tuple[str, str, bool]]:
    """(msgid with context, msgstr, fuzzy) for every entry of a .po file but the header."""
    entries = []
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#~")]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        fields: dict[str, str] = {}
        current = ""
        for line in lines:
            if line.startswith("#"):
                continue
            if line.startswith('"'):
                fields[current] += ast.literal_eval(line)
                continue
            current, _, value = line.partition(" ")
            fields[current] = ast.literal_eval(value)
        if fields.get("msgid"):
            key = fields["msgid"]
            if "msgctxt" in fields:
                key = f"{fields['msgctxt']}\x04{key}"
            entries.append((key, fields.get("msgstr", fields.get("msgstr[0]", "")), fuzzy))
    return entries


def test_japanese_catalogue_has_no_untranslated_or_fuzzy_entry() -> None:
    entries = _entries(LOCALE / "ja" / "LC_MESSAGES" / "django.po")
    assert len(entries) > 300
    assert [key for key, msgstr, fuzzy in entries if not msgstr or fuzzy] == []


@pytest.mark.parametrize("language", ["ja", "en"])
def test_compiled_catalogue_matches_the_source(language: str) -> None:
    folder = LOCALE / language / "LC_MESSAGES"
    with (folder / "django.mo").open("rb") as stream:
        compiled = gettext.GNUTranslations(stream)
    catalog = compiled._catalog  # type: ignore[attr-defined]
    stale = [
        key
        for key, msgstr, _fuzzy in _entries(folder / "django.po")
        if msgstr and catalog.get(key, catalog.get((key, 0))) != msgstr
    ]
    assert stale == [], "run `make messages` to recompile the catalogues"


def _template_messages(po: Path) -> list[tuple[str, str, str]]:
    """(first template reference, msgid, msgstr) of the entries used by a template."""
    found = []
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        refs = [
            ref
            for line in block.splitlines()
            if line.startswith("#: ")
            for ref in line[3:].split()
            if ref.startswith("templates/")
        ]
        if refs:
            text = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
            found.append((refs[0], text, text))
    return found


# A "<" that opens no tag the text means (<IP>, MAIL FROM:<>), or a bare "&".
_RAW_MARKUP = r"<(?!/?(?:code|span|strong|em|kbd|br)\b)|&(?![a-z]+;|#\d+;)"

# Owned by another line of work this session (the lead removes it after merging).
_OWNED_ELSEWHERE = {"templates/relaypolicy/relayrule_form.html"}


@pytest.mark.parametrize("language", ["ja", "en"])
def test_template_text_never_holds_raw_markup_characters(language: str) -> None:
    # A template's own text ({% translate "…" %}, {% blocktranslate %}) is trusted markup: Django
    # does not escape it, so "<IP> false" vanished as an unknown tag. Write &lt;IP&gt; instead.
    bad = [
        ref
        for ref, text, _ in _template_messages(LOCALE / language / "LC_MESSAGES" / "django.po")
        if re.search(_RAW_MARKUP, text)
    ]
    assert [ref for ref in bad if ref.split(":")[0] not in _OWNED_ELSEWHERE] == []
