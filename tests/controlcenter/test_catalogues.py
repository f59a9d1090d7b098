"""The Japanese catalogue is complete and the committed .mo matches the .po."""

from __future__ import annotations

import ast
import gettext
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
