"""Order-dependent checks: the vendor's header lines, duplicates and shadowed lines (found
through coverage indexes, not by comparing every pair) and the final catch-all (relay.E013,
W006, W007, W010, W011, W015-W018, I001, I003)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _
from relaypolicy.addrspace import Space
from relaypolicy.effectfile import EffectLine, Modifier, PatternKind
from relaypolicy.validation.rule import ADDRESS_LIKE, TERMINATORS, Rule, sender_covers

_SESSION_KEYWORDS = frozenset({PatternKind.NULL_SENDER, PatternKind.BLANK_SENDER})


def check_header(rules: Sequence[EffectLine]) -> Iterator[Finding]:
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


def check_order(rules: Sequence[Rule], reported: set[int]) -> Iterator[Finding]:
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


def _first_covers(rules: Sequence[Rule]) -> dict[int, int]:
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


def _client_covers(rules: Sequence[Rule]) -> dict[int, int]:
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


def _sender_covers_all(rules: Sequence[Rule]) -> dict[int, int]:
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
                if sender_covers(rules[other].line, line):
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


def check_terminator(
    rules: Sequence[Rule], *, gateway_mode: bool, aliases_exist: bool = False
) -> Iterator[Finding]:
    catch_all = next((rule.line for rule in rules if rule.line.matches_every_client), None)
    protected = catch_all is not None and catch_all.effective in TERMINATORS
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
            if line.pattern_kind in ADDRESS_LIKE and line.effective is Modifier.DEFAULT:
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
