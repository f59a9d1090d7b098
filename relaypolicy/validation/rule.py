"""What a rule covers: the sessions one effect.dat rule matches, for the order and reach checks.

A client rule covers address ranges (:mod:`relaypolicy.addrspace`), a sender rule a pattern;
:func:`sender_covers` says whether an earlier sender rule matches every sender a later one does.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaypolicy.addrspace import EMPTY, Space, client_space
from relaypolicy.effectfile import (
    CLIENT_KINDS,
    TERMINATOR_MODIFIERS,
    EffectLine,
    Modifier,
    PatternKind,
)

#: The modifiers that stop relaying on the final catch-all.
TERMINATORS = frozenset(TERMINATOR_MODIFIERS)
#: Sender rules decided by the sender's address (not the null or blank sender).
ADDRESS_LIKE = frozenset(
    {PatternKind.SENDER_DOMAIN, PatternKind.SENDER_ADDRESS, PatternKind.KEYWORD}
)


@dataclass(frozen=True, slots=True)
class Rule:
    line: EffectLine
    prefix: str | None
    space: Space  # IPv4/IPv6 addresses matched; EMPTY for sender rules
    key: tuple[object, ...]  # equal keys = the same pattern written twice
    effective: Modifier

    @classmethod
    def of(cls, line: EffectLine) -> Rule:
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


def sender_covers(earlier: EffectLine, later: EffectLine) -> bool:
    wide, narrow = earlier.pattern.lower(), later.pattern.lower()
    if later.pattern_kind is PatternKind.SENDER_ADDRESS and "*" not in narrow:
        if earlier.pattern_kind is PatternKind.SENDER_ADDRESS:
            return "*" in wide and glob_matches(wide, narrow)
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


def glob_matches(glob: str, text: str) -> bool:
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
