"""Alias table services: validation, CRUD, CSV export and the upload confirmation; the CSV
import itself is :mod:`aliases.importing` (its names are re-exported here).

Every write runs in one transaction, under the settings row lock (:func:`_lock_aliases`), and
re-validates the table as it would be after the change: an error-level finding or a licence
overflow refuses the write, warnings never block. Every write is in the audit log.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import hashlib
import io
import itertools
import secrets
import threading
import unicodedata
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, BinaryIO, Literal, TypeVar, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, Count, F, Func, Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from aliases.aliasfile import (
    WILDCARD,
    AliasIndex,
    AliasSyntaxError,
    parse_alias_pattern,
    render_csv_table,
)
from aliases.aliasfile import Alias as Entry
from aliases.aliasfile import render_alias_csv as render_csv
from aliases.importing import PREVIEW_LIMIT as PREVIEW_LIMIT
from aliases.importing import ImportReport as ImportReport
from aliases.importing import ImportRow as ImportRow
from aliases.importing import RowStatus as RowStatus
from aliases.importing import StaleImportError as StaleImportError
from aliases.importing import aliases_import_csv as aliases_import_csv
from aliases.models import Alias, AliasUpload, LocalDomain
from aliases.validation import (
    AliasValidation,
    LicenceUsage,
    check_licence,
    licence_usage,
    shadowed_finding,
    validate_alias_rows,
    validate_table,
)
from controlcenter.audit import AuditAction, alias_state, audit_record
from controlcenter.findings import (
    Finding,
    Level,
    is_policy_risk,
    sort_findings,
)
from controlcenter.models import ServerSettings
from relaypolicy.services import relay_table

UPLOAD_LIFETIME = timedelta(hours=24)
UPLOADS_PER_USER = 5
_BATCH = 2000
_T = TypeVar("_T")


# --- the stored table -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    domains: frozenset[str]
    gateway_mode: bool
    relay_terminated: bool
    licence: int | None
    accounts: int
    mailing_lists: int


def _context(extra_domains: Iterable[str] = ()) -> _Context:
    server = ServerSettings.load()
    return _Context(
        domains=frozenset(LocalDomain.objects.values_list("name", flat=True)) | set(extra_domains),
        gateway_mode=server.is_gateway,
        relay_terminated=relay_table().terminator != "",
        licence=server.licence_limit,
        accounts=server.accounts,
        mailing_lists=server.mailing_lists,
    )


def alias_fingerprint() -> str:
    """A digest of everything the alias validation depends on; any write changes it.

    Cheap at 100,000 aliases (aggregates over indexed columns), so pages and the upload
    guard can compare it on every request instead of hashing the table.
    """
    aliases = Alias.objects.aggregate(n=Count("id"), top=Max("id"), at=Max("updated_at"))
    domains = LocalDomain.objects.aggregate(n=Count("id"), top=Max("id"))
    server = ServerSettings.load()
    state = (
        aliases["n"],
        aliases["top"],
        aliases["at"].isoformat() if aliases["at"] else None,
        domains["n"],
        domains["top"],
        server.mode,
        server.licence,
        server.accounts,
        server.mailing_lists,
        relay_table().terminator,
    )
    return hashlib.sha256(repr(state).encode()).hexdigest()


_memo_lock = threading.Lock()
_memo: dict[tuple[str, str], object] = {}


def _memoised(kind: str, key: str, compute: Callable[[], _T]) -> _T:
    """``compute()``, kept per process until :func:`alias_fingerprint` changes."""
    cached = _memo.get((kind, key))
    if cached is not None:
        return cast(_T, cached)
    value = compute()
    with _memo_lock:
        for stale in [k for k in _memo if k[0] == kind]:
            del _memo[stale]
        _memo[(kind, key)] = value
    return value


def _ordered_ids() -> list[int]:
    """Every alias id in storage order: one ``fetchall`` instead of the queryset's chunks of
    100 rows, a third of the time at 100,000 aliases."""
    sql, params = Alias.objects.order_by("position").values_list("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [alias_id for (alias_id,) in cursor.fetchall()]


def alias_check() -> AliasValidation:
    """Every finding about the stored aliases, domains, licence and relay terminator.

    Validates every row as stored (the lint must see rows written around the services too),
    memoised per process by :func:`alias_fingerprint`.
    """

    def compute() -> AliasValidation:
        context = _context()
        rows = Alias.objects.order_by("position").values_list(
            "pattern", "target", "option", "comment"
        )
        return validate_alias_rows(
            [Entry(p, t, o, c) for p, t, o, c in rows],
            local_domains=context.domains,
            gateway_mode=context.gateway_mode,
            relay_terminated=context.relay_terminated,
            licence=context.licence,
            accounts=context.accounts,
            mailing_lists=context.mailing_lists,
        )

    return _memoised("check", alias_fingerprint(), compute)


@dataclass(frozen=True)
class AliasOverview:
    """What the alias list shows: each alias's row number and findings, the first findings
    of the whole table in :func:`sort_findings` order, their total and the licence usage."""

    row_by_id: Mapping[int, int]
    summary: tuple[Finding, ...]
    total: int
    usage: LicenceUsage
    flagged: Mapping[int, tuple[Finding, ...]]
    # Aliases whose only finding is alias.W002: id -> (pattern, the wildcard's row).
    shadowed: Mapping[int, tuple[str, int]]
    wildcards: Mapping[int, Entry]

    def findings_for(self, alias_id: int) -> tuple[Finding, ...]:
        flagged = self.flagged.get(alias_id)
        if flagged is not None:
            return flagged
        shadowed = self.shadowed.get(alias_id)
        if shadowed is None:
            return ()
        pattern, row = shadowed
        return (shadowed_finding(Entry(pattern, ""), self.wildcards[row], row),)


def alias_overview(*, limit: int) -> AliasOverview:
    """The list screen's view of the stored table, ``limit`` findings in the summary.

    The same findings as :func:`alias_check` for every table the services wrote (valid rows,
    unique keys), without validating every row: SQL picks the rows that can have a finding
    (a ``*`` on either side, or a pattern outside its local domain) and only those are
    validated; the others can at most be shadowed by a wildcard (``alias.W002``), which is
    tested against the wildcards alone. Memoised per process by :func:`alias_fingerprint`.
    """
    return _memoised(f"overview:{limit}", alias_fingerprint(), lambda: _overview(limit))


def _overview(limit: int) -> AliasOverview:
    context = _context()
    ids = _ordered_ids()
    row_by_id = {alias_id: row for row, alias_id in enumerate(ids)}
    # The key holds the pattern's domain lower-cased, as Entry.domain does (one LIKE per
    # local domain: a join on the domain's name costs more than the whole page).
    in_domains = Q()
    for domain in sorted(context.domains):
        in_domains |= Q(key__endswith=f"@{domain}")
    queryset = Alias.objects.order_by()
    if context.domains:
        queryset = queryset.filter(
            Q(pattern__contains=WILDCARD) | Q(target__contains=WILDCARD) | ~in_domains
        )
    fetched = queryset.values_list("id", "position", "pattern", "target", "option", "comment")
    suspects: dict[int, Entry] = {}
    stored_position: dict[int, int] = {}
    # Rows added since _ordered_ids() are left out: they changed the fingerprint, so the
    # next request computes the overview again.
    known = [r for r in fetched if r[0] in row_by_id]
    for alias_id, position, p, t, o, c in sorted(known, key=lambda r: row_by_id[r[0]]):
        row = row_by_id[alias_id]
        suspects[row], stored_position[row] = Entry(p, t, o, c), position
    found = _validate_subset(suspects, suspects, context)
    wildcards = {row: e for row, e in suspects.items() if WILDCARD in e.local_part}
    shadowed = _shadowed_rows(wildcards, stored_position, row_by_id, skip=suspects)
    usage, general = validate_table(
        len(ids),
        gateway_mode=context.gateway_mode,
        licence=context.licence,
        accounts=context.accounts,
        mailing_lists=context.mailing_lists,
    )
    # Storage order, as validate_alias_rows lists them; past the first `limit` shadowed rows
    # none can reach the summary, as sort_findings keeps storage order within a code.
    first_shadowed = sorted((row_by_id[i], i) for i in shadowed)[:limit]
    by_row = dict(found)
    for row, alias_id in first_shadowed:
        pattern, wild_row = shadowed[alias_id]
        by_row[row] = (shadowed_finding(Entry(pattern, ""), wildcards[wild_row], wild_row),)
    listed = [f for row in sorted(by_row) for f in by_row[row]] + list(general)
    return AliasOverview(
        row_by_id=row_by_id,
        summary=tuple(sort_findings(listed)[:limit]),
        total=sum(len(f) for f in found.values()) + len(shadowed) + len(general),
        usage=usage,
        flagged={ids[row]: findings for row, findings in found.items()},
        shadowed=shadowed,
        wildcards=wildcards,
    )


def _shadowed_rows(
    wildcards: Mapping[int, Entry],
    stored_position: Mapping[int, int],
    row_by_id: Mapping[int, int],
    *,
    skip: Container[int],
) -> dict[int, tuple[str, int]]:
    """The aliases below a wildcard of their domain that it shadows (``alias.W002``), by id,
    leaving out the rows in ``skip``: id -> (pattern, the wildcard's row). ``wildcards`` maps
    rows to aliases in row order, ``stored_position`` their rows to ``Alias.position``."""
    rows = list(wildcards)
    index = AliasIndex.build(list(wildcards.values()))
    first: dict[str, int] = {}
    for wild_row, entry in wildcards.items():
        first.setdefault(entry.domain, stored_position[wild_row])
    shadowed: dict[int, tuple[str, int]] = {}
    for domain, top in sorted(first.items()):
        # Not position__gt: positions may tie, and the row decides (shadowing_of below).
        candidates = Alias.objects.filter(key__endswith=f"@{domain}", position__gte=top)
        for alias_id, pattern in candidates.values_list("id", "pattern").iterator(_BATCH):
            row = row_by_id.get(alias_id)
            if row is None or row in skip:
                continue
            shadow = index.shadowing_of(Entry(pattern, ""), bisect.bisect_left(rows, row))
            if shadow is not None:
                shadowed[alias_id] = (pattern, rows[shadow])
    return shadowed


def _validate_subset(
    entries: Mapping[int, Entry], wanted: Iterable[int], context: _Context
) -> dict[int, tuple[Finding, ...]]:
    """The findings of ``entries[i]`` for each wanted ``i``, as a full validation of the
    table would report them, without validating every row.

    ``entries`` maps rows to aliases in row order and holds at least every wildcard and the
    first row of each wanted row's key. Only rows that can affect a wanted row are validated:
    every wildcard (shadowing) and the first row of each wanted key (duplicates). Row
    numbers in the messages are mapped back.
    """
    wanted = sorted(set(wanted))
    if not wanted:
        return {}
    first_by_key: dict[str, int] = {}
    for position, entry in entries.items():
        first_by_key.setdefault(entry.key, position)
    keep = sorted(
        {i for i, entry in entries.items() if WILDCARD in entry.local_part}
        | set(wanted)
        | {first_by_key[entries[i].key] for i in wanted}
    )
    validation = validate_alias_rows(
        [entries[i] for i in keep],
        local_domains=context.domains,
        gateway_mode=context.gateway_mode,
        relay_terminated=context.relay_terminated,
        licence=None,
        accounts=context.accounts,
    )
    wanted_set = set(wanted)
    found: dict[int, tuple[Finding, ...]] = {}
    for sub, findings in validation.by_position.items():
        if keep[sub] in wanted_set:
            found[keep[sub]] = tuple(_renumber(f, keep) for f in findings)
    return found


def _renumber(finding: Finding, keep: Sequence[int]) -> Finding:
    if not any(name in ("first_row", "earlier_row") for name, _v in finding.params):
        return finding
    params = tuple(
        (name, keep[int(str(value)) - 1] + 1 if name in ("first_row", "earlier_row") else value)
        for name, value in finding.params
    )
    return replace(finding, params=params)


def _licence_findings(total: int, context: _Context) -> list[Finding]:
    usage = licence_usage(total, context.accounts, context.mailing_lists, context.licence)
    return check_licence(usage, total, context.accounts, context.mailing_lists)


def _lock_aliases() -> None:
    """Serialise the alias writes with each other and with settings saves (the same row
    lock): each checks the whole table (licence, duplicates, positions) before it writes,
    so two writers must not both pass their checks on the same state. Inside a transaction.

    Also counts the write (``ServerSettings.alias_revision``, part of the policy cache's key:
    committed or rolled back with it).
    """
    ServerSettings.objects.select_for_update().get_or_create(pk=1)
    ServerSettings.objects.filter(pk=1).update(alias_revision=F("alias_revision") + 1)


# --- the list: search and pages ----------------------------------------------------------

# Up to this many matches a search counts them exactly; beyond, it estimates the total.
SEARCH_EXACT_COUNT = 10_000


class _SearchText(Func):
    """``UPPER(pattern || LF || target)``: what the search matches a substring in. On
    PostgreSQL exactly the expression of the pg_trgm index (migration 0004), so that a
    ``LIKE '%…%'`` on it uses the index; the line feed never occurs in a query."""

    output_field = CharField()

    def __init__(self) -> None:
        super().__init__(F("pattern"), F("target"))

    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        pattern, pattern_params = compiler.compile(self.source_expressions[0])
        target, target_params = compiler.compile(self.source_expressions[1])
        if connection.vendor == "postgresql":
            sql = f"UPPER(({pattern})::text || chr(10) || ({target})::text)"
        else:
            sql = f"UPPER({pattern} || char(10) || {target})"
        return sql, [*pattern_params, *target_params]


def alias_search(*, query: str = "", domain: LocalDomain | None = None) -> QuerySet[Alias]:
    """The aliases in storage order whose alias or real address contains ``query``
    (case-insensitive), of ``domain`` when given.

    On PostgreSQL the match is on :class:`_SearchText`, which the pg_trgm index serves; on
    SQLite two ``LIKE`` (case-insensitive for ASCII there), a scan of the table in C that
    :func:`alias_page` runs once per page. SQLite's FTS5 trigram index was measured and
    left out: its triggers made the 100,000-row import nine times slower."""
    queryset = Alias.objects.order_by("position")
    text = "".join(ch for ch in query if ch.isprintable()).strip()
    if text and connection.vendor == "postgresql":
        queryset = queryset.alias(search=_SearchText()).filter(search__contains=text.upper())
    elif text:
        queryset = queryset.filter(Q(pattern__icontains=text) | Q(target__icontains=text))
    if domain is not None:
        queryset = queryset.filter(domain=domain)
    return queryset


@dataclass(frozen=True)
class AliasPage:
    """One page of a search: its aliases, and the number of matches, exact up to
    :data:`SEARCH_EXACT_COUNT` and estimated beyond (``exact`` is then False)."""

    aliases: list[Alias]
    number: int
    per_page: int
    count: int
    exact: bool

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.per_page))


PAGE_FIELDS = ("id", "position", "pattern", "target", "option", "comment")


def alias_page(
    queryset: QuerySet[Alias],
    *,
    number: str | int,
    per_page: int,
    scope: QuerySet[Alias] | None = None,
) -> AliasPage:
    """Page ``number`` (clamped to the pages there are) of ``queryset`` in storage order.

    Without a text search (``scope`` None) the count is exact, from an index. With one,
    ``scope`` is the same table without the text filter, and one query fetches the ids of
    the first :data:`SEARCH_EXACT_COUNT` + 1 matches: their number is the count when it
    is below that, and the page is cut from them; past it the total is estimated from how
    far into ``scope`` that many matches reach. Either way the page's rows are then read by
    id, so a deep page never reads the rows it skips.
    """
    try:
        wanted = max(1, int(number))
    except (TypeError, ValueError):
        wanted = 1
    head: list[tuple[int, int]] | None = None
    if scope is None:
        count, exact = queryset.order_by().count(), True
    else:
        head = list(queryset.values_list("id", "position")[: SEARCH_EXACT_COUNT + 1])
        count, exact = len(head), len(head) <= SEARCH_EXACT_COUNT
        if not exact:
            # N+1 matches among the rows of ``scope`` up to the last of them: about that
            # share of the rest match too.
            reached = scope.order_by().filter(position__lte=head[-1][1]).count()
            total = scope.order_by().count()
            count = max(count, round(count * total / max(reached, 1)))
    page = min(wanted, max(1, -(-count // per_page))) if exact else wanted
    ids = _page_ids(queryset, head, page, per_page)
    if not exact and not ids and page > 1:
        # Past the estimated end: count exactly and show the last page there is.
        count, exact = queryset.order_by().count(), True
        page = max(1, -(-count // per_page))
        ids = _page_ids(queryset, head, page, per_page)
    if not exact and len(ids) < per_page:
        count, exact = (page - 1) * per_page + len(ids), True
    aliases = list(Alias.objects.filter(pk__in=ids).order_by("position").only(*PAGE_FIELDS))
    return AliasPage(aliases, page, per_page, count, exact)


def _page_ids(
    queryset: QuerySet[Alias], head: list[tuple[int, int]] | None, page: int, per_page: int
) -> list[int]:
    start = (page - 1) * per_page
    if head is not None and start + per_page <= len(head):
        return [alias_id for alias_id, _position in head[start : start + per_page]]
    return list(queryset.values_list("id", flat=True)[start : start + per_page])


# --- single aliases -------------------------------------------------------------------------


class AliasRefused(Exception):
    """A write would produce error-level findings; nothing was written."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        super().__init__("; ".join(f.render() for f in self.findings))


@dataclass(frozen=True)
class AliasSaveReport:
    alias: Alias
    created: bool
    findings: tuple[Finding, ...]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]


def _check_one(entry: Entry, *, replacing: int | None) -> tuple[Finding, ...]:
    """The findings of ``entry`` appended to the table, or in place of the alias with id
    ``replacing``; raises :class:`AliasRefused` when the table would have errors.

    Reads only the rows that can affect it: every wildcard and the aliases with its key.
    """
    context = _context()
    ids = _ordered_ids()
    row_by_id = {alias_id: row for row, alias_id in enumerate(ids)}
    position = len(ids) if replacing is None else row_by_id[replacing]
    related = Alias.objects.filter(Q(pattern__contains=WILDCARD) | Q(key=entry.key))
    if replacing is not None:
        related = related.exclude(pk=replacing)
    rows = {
        row_by_id[alias_id]: Entry(p, t, o, c)
        for alias_id, p, t, o, c in related.values_list(
            "id", "pattern", "target", "option", "comment"
        )
        if alias_id in row_by_id  # not added since _ordered_ids(): the key is unique anyway
    }
    rows[position] = entry
    entries = dict(sorted(rows.items()))
    # A duplicate stored below the changed row carries the error on its own row.
    same_key = [row for row, other in entries.items() if other.key == entry.key]
    found = _validate_subset(entries, [position, *same_key], context)
    own = found.get(position, ())
    licence = _licence_findings(len(ids) + 1, context) if replacing is None else []
    errors = [f for row in found.values() for f in row if f.is_error]
    errors += [f for f in licence if f.is_error]
    errors += _new_relay_risks(entry)
    if errors:
        raise AliasRefused(errors)
    return own


def _new_relay_risks(entry: Entry) -> list[Finding]:
    """The relay risks saving ``entry`` would open in the stored relay table.

    A ``default`` line the Internet reaches is harmless while no alias exists and an open
    relay from the first one on; a ``default`` sender line opens once an alias makes its
    senders local. These findings only grow with the aliases, and each needs a single alias,
    so the table checked with ``entry`` alone shows every risk it adds (the form refuses new
    risks; an import may bring the server's own).
    """
    from controlcenter import policycache
    from relaypolicy.services import relay_check

    def keys(findings: Iterable[Finding]) -> dict[tuple[str, int | None], Finding]:
        return {(f.code, f.line): f for f in findings if is_policy_risk(f)}

    with_entry = keys(relay_check(aliases=[entry]).findings)
    without = keys(relay_check(aliases=[]).findings)
    candidates = {key: f for key, f in with_entry.items() if key not in without}
    if not candidates:
        # The usual case: no rule lets aliases open a relay, so the stored verdict (a check
        # with every stored alias) is not needed.
        return []
    stored = keys(policycache.relay_report().findings)
    return [finding for key, finding in candidates.items() if key not in stored]


@transaction.atomic
def alias_create(
    *, pattern: str, target: str, option: str = "", comment: str = ""
) -> AliasSaveReport:
    """Append an alias at the end; raises :class:`AliasRefused` with the blocking findings."""
    _lock_aliases()
    entry = Entry(pattern.strip(), target.strip(), option, comment.strip())
    findings = _check_one(entry, replacing=None)
    top = Alias.objects.aggregate(top=Max("position"))["top"] or 0
    alias = Alias.objects.create(
        position=top + 1,
        pattern=entry.pattern,
        key=entry.key,
        target=entry.target,
        option=entry.option,
        comment=entry.comment,
        domain=LocalDomain.objects.get(name=entry.domain),
        updated_at=timezone.now(),
    )
    audit_record(action=AuditAction.ALIAS_CREATE, target=alias.pattern, after=alias_state(alias))
    return AliasSaveReport(alias, True, findings)


@transaction.atomic
def alias_update(
    *, alias: Alias, pattern: str, target: str, option: str = "", comment: str = ""
) -> AliasSaveReport:
    """Change an alias in place (its order stays); raises :class:`AliasRefused`."""
    _lock_aliases()
    # The instance may predate a move made meanwhile: saving its position would tie two rows.
    alias.refresh_from_db()
    entry = Entry(pattern.strip(), target.strip(), option, comment.strip())
    findings = _check_one(entry, replacing=alias.pk)
    before = alias_state(alias)
    alias.pattern, alias.key, alias.target = entry.pattern, entry.key, entry.target
    alias.option, alias.comment = entry.option, entry.comment
    alias.domain = LocalDomain.objects.get(name=entry.domain)
    alias.updated_at = timezone.now()
    alias.save()
    audit_record(
        action=AuditAction.ALIAS_UPDATE,
        target=alias.pattern,
        before=before,
        after=alias_state(alias),
    )
    return AliasSaveReport(alias, False, findings)


@transaction.atomic
def aliases_delete(*, ids: Iterable[int]) -> int:
    """Delete the aliases with these ids; returns how many were deleted."""
    _lock_aliases()
    ids = list(ids)
    before = [alias_state(alias) for alias in Alias.objects.filter(pk__in=ids).order_by("position")]
    deleted, _detail = Alias.objects.filter(pk__in=ids).delete()
    if deleted:
        audit_record(
            action=AuditAction.ALIAS_DELETE,
            target=", ".join(str(row["pattern"]) for row in before)[:255],
            before=before,
        )
    return deleted


@transaction.atomic
def alias_move(*, alias: Alias, direction: Literal["up", "down"]) -> bool:
    """Swap an alias with its neighbour; False when it is already first (or last)."""
    _lock_aliases()
    # The instance may predate another move: swap from where the alias is now.
    current = Alias.objects.filter(pk=alias.pk).values_list("position", flat=True).first()
    if current is None:
        return False
    alias.position = current
    neighbours = Alias.objects.select_for_update()
    if direction == "up":
        other = neighbours.filter(position__lt=alias.position).order_by("-position").first()
    else:
        other = neighbours.filter(position__gt=alias.position).order_by("position").first()
    if other is None:
        return False
    now = timezone.now()
    Alias.objects.filter(pk=alias.pk).update(position=other.position, updated_at=now)
    Alias.objects.filter(pk=other.pk).update(position=alias.position, updated_at=now)
    alias.position, other.position = other.position, alias.position
    audit_record(
        action=AuditAction.ALIAS_MOVE,
        target=alias.pattern,
        summary=direction,
        before={"position": other.position},
        after={"position": alias.position},
    )
    return True


@dataclass(frozen=True)
class AliasMoveReport:
    """Where a move left an alias: its row before and after (1-based, as the list numbers
    them) and, for a move above a wildcard, that wildcard's pattern."""

    alias: Alias
    before: int
    after: int
    wildcard: str = ""

    @property
    def moved(self) -> bool:
        return self.before != self.after


def _stored_order() -> tuple[list[int], list[int]]:
    """The ids and positions of every alias in storage order (one ``fetchall``)."""
    sql, params = (
        Alias.objects.order_by("position").values_list("id", "position").query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return [alias_id for alias_id, _p in fetched], [position for _i, position in fetched]


def _move_row(alias: Alias, *, to: int, wildcard: str = "") -> AliasMoveReport:
    """Move the (locked) alias to 0-based row ``to`` (clamped); inside the caller's
    transaction. The other rows keep their order and, where a free position number lies
    at the target, their numbers too (:func:`_free_position`)."""
    ids, positions = _stored_order()
    old = ids.index(alias.pk)
    new = min(max(to, 0), len(ids) - 1)
    if new == old:
        return AliasMoveReport(alias, old + 1, old + 1, wildcard)
    now = timezone.now()
    if any(a >= b for a, b in itertools.pairwise(positions)):
        # Tied positions (a writer around the services): number every row first, in the
        # order the list shows, so that no row can tie with or pass another.
        positions = list(range(1, len(ids) + 1))
        Alias.objects.bulk_update(
            [Alias(pk=i, position=p, updated_at=now) for i, p in zip(ids, positions, strict=True)],
            ["position", "updated_at"],
            batch_size=_BATCH,
        )
    others = positions[:old] + positions[old + 1 :]
    target = _free_position(alias.pk, others, new, positions[old])
    # The rows that only shifted keep their updated_at: the moved alias's is the latest,
    # which is what the table's fingerprint reads (and the alias revision was counted).
    Alias.objects.filter(pk=alias.pk).update(position=target, updated_at=now)
    alias.position = target
    audit_record(
        action=AuditAction.ALIAS_MOVE,
        target=alias.pattern,
        summary="up" if new < old else "down",
        before={"position": old + 1},
        after={"position": new + 1},
    )
    return AliasMoveReport(alias, old + 1, new + 1, wildcard)


def _free_position(alias_id: int, others: list[int], new: int, start: int) -> int:
    """A position number for the alias (now at ``start``) between ``others[new - 1]`` and
    ``others[new]`` (the other rows' numbers, ascending): a free one when there is one, else
    one made by shifting by one the fewest rows that keep the order, in one UPDATE (which
    takes their row locks): the rows after the slot up, the rows before it down, or the rows
    between the slot and the place the alias leaves toward it."""
    before = others[new - 1] if new > 0 else None
    after = others[new] if new < len(others) else None
    if after is None:
        return others[-1] + 1
    if before is None and after > 0:
        return after - 1
    if before is not None and after - before > 1:
        return before + 1
    rest = Alias.objects.exclude(pk=alias_id)
    moving_up = start > after
    shifts = {
        "after": len(others) - new,
        "before": new if others[0] > 0 else len(others) + 1,
        "between": sum(1 for p in others if after <= p < start)
        if moving_up
        else sum(1 for p in others if start < p <= (before or 0)),
    }
    cheapest = min(shifts, key=lambda name: shifts[name])
    if cheapest == "after":
        rest.filter(position__gte=after).update(position=F("position") + 1)
        return after
    if cheapest == "before":
        rest.filter(position__lte=before).update(position=F("position") - 1)
        return cast(int, before)
    if moving_up:
        rest.filter(position__gte=after, position__lt=start).update(position=F("position") + 1)
        return after
    rest.filter(position__gt=start, position__lte=before).update(position=F("position") - 1)
    return cast(int, before)


@transaction.atomic
def alias_move_to(*, alias: Alias, row: int) -> AliasMoveReport:
    """Move an alias to ``row`` (1-based, clamped to the table); the other rows keep their
    order. Raises ``Alias.DoesNotExist`` when it was deleted meanwhile."""
    _lock_aliases()
    current = Alias.objects.select_for_update().get(pk=alias.pk)
    return _move_row(current, to=row - 1)


@transaction.atomic
def alias_move_above_wildcard(*, alias: Alias) -> AliasMoveReport:
    """Move an alias just above the first wildcard of its domain that shadows it
    (``alias.W002``), so that it is used again; not moved when none does."""
    _lock_aliases()
    current = Alias.objects.select_for_update().get(pk=alias.pk)
    ids, positions = _stored_order()
    row = ids.index(current.pk)
    entry = current.as_entry()
    row_by_id = {alias_id: index for index, alias_id in enumerate(ids)}
    wildcards = Alias.objects.filter(
        key__endswith=f"@{entry.domain}",
        pattern__contains=WILDCARD,
        position__lte=positions[row],
    ).values_list("id", "pattern")
    above = sorted(
        (row_by_id[i], pattern)
        for i, pattern in wildcards
        if i != current.pk and row_by_id.get(i, row) < row
    )
    index = AliasIndex.build([Entry(pattern, "") for _row, pattern in above])
    shadow = index.shadowing_of(Entry(current.pattern, ""), len(above))
    if shadow is None:
        return AliasMoveReport(current, row + 1, row + 1)
    wild_row, pattern = above[shadow]
    return _move_row(current, to=wild_row, wildcard=pattern)


# --- the preview's refused lines ------------------------------------------------------------

#: Characters of a refused line (and of each of its cells) that the preview shows.
RAW_LINE_LIMIT = 300


@dataclass(frozen=True)
class RawLine:
    """A physical line of an uploaded file as the preview shows it: its text with control
    characters made visible, and the cells the CSV rules read from it (as far as they got)."""

    text: str
    cells: tuple[str, ...]

    @property
    def extra_cells(self) -> int:
        """Cells past the alias, mapped_to and comment columns."""
        return max(0, len(self.cells) - 3)


def _shown(text: str) -> str:
    """``text`` with control and format characters (bidi overrides, zero-width ones) as
    ``\\xNN`` / ``\\uNNNN`` escapes, cut at :data:`RAW_LINE_LIMIT` characters."""
    visible = "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf")
        else ch
        for ch in text
    )
    return visible if len(visible) <= RAW_LINE_LIMIT else visible[:RAW_LINE_LIMIT] + "…"


def _physical_lines(stream: BinaryIO, codec: str) -> Iterator[str]:
    """Decoded physical lines (CRLF, LF or CR), ends kept, as the CSV reader numbers them."""
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    rest = ""
    while True:
        block = stream.read(1 << 20)
        lines = io.StringIO(rest + decoder.decode(block, final=not block), newline="")
        split = lines.readlines()
        if not block:
            yield from split
            return
        # The last line may go on in the next block (or be a CR whose LF comes next).
        rest = split.pop() if split else ""
        yield from split


def upload_lines(
    *, data: bytes | memoryview | BinaryIO, encoding: str, lines: Iterable[int]
) -> dict[int, RawLine]:
    """The given physical lines (1-based) of an uploaded file, decoded as the import read
    it (``ImportReport.encoding``), for the preview's refused rows; undecodable bytes show
    as U+FFFD."""
    wanted = set(lines)
    if not wanted:
        return {}
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    stream.seek(0)
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    last = max(wanted)
    found: dict[int, RawLine] = {}
    for number, line in enumerate(_physical_lines(stream, codec), start=1):
        if number in wanted:
            text = line.rstrip("\r\n")
            cells = next(csv.reader([text], strict=False), [])
            found[number] = RawLine(_shown(text), tuple(_shown(cell) for cell in cells))
        if number >= last:
            break
    stream.seek(0)
    return found


# --- domains --------------------------------------------------------------------------------


class DomainInUse(Exception):
    """The domain still has aliases."""


@transaction.atomic
def domain_create(*, name: str, comment: str = "") -> LocalDomain:
    """Register a managed local domain; raises ValidationError for a bad or known name."""
    _lock_aliases()
    name = name.strip().lower()
    try:
        parsed = _parse_domain(name)
    except AliasSyntaxError as error:
        # The domain is checked as the address x@<domain>: name the domain, not that probe.
        params = {
            key: str(value)[2:] if key == "value" and str(value).startswith("x@") else value
            for key, value in error.params.items()
        }
        raise ValidationError(_(error.message) % params, code="invalid_domain") from None
    duplicate = ValidationError(
        _("%(domain)s is already a local domain.") % {"domain": parsed}, code="duplicate"
    )
    if LocalDomain.objects.filter(name=parsed).exists():
        raise duplicate
    try:
        # A savepoint: a writer that bypasses the lock (a shell, a script) may have added it.
        with transaction.atomic():
            domain = LocalDomain.objects.create(name=parsed, comment=comment.strip())
    except IntegrityError:
        raise duplicate from None
    audit_record(action=AuditAction.DOMAIN_CREATE, target=domain.name, after=domain.comment)
    return domain


def _parse_domain(name: str) -> str:
    return parse_alias_pattern(f"x@{name}").domain


@transaction.atomic
def domain_delete(*, domain: LocalDomain) -> None:
    """Delete a local domain; raises :class:`DomainInUse` while aliases still use it."""
    _lock_aliases()
    if Alias.objects.filter(domain=domain).exists():
        raise DomainInUse(domain.name)
    audit_record(action=AuditAction.DOMAIN_DELETE, target=domain.name, before=domain.comment)
    domain.delete()


# --- the upload page ------------------------------------------------------------------------


class UploadNotFound(Exception):
    """No stored upload with that token for this user (tampered, expired or foreign)."""


def _user_id(user: AbstractBaseUser | AnonymousUser) -> int:
    if user.pk is None:
        raise UploadNotFound
    return int(user.pk)


def uploads_clean() -> int:
    """Delete every stored upload past :data:`UPLOAD_LIFETIME`; returns how many."""
    deleted, _detail = AliasUpload.objects.filter(
        created_at__lt=timezone.now() - UPLOAD_LIFETIME
    ).delete()
    return deleted


def _make_room(user_id: int, size: int) -> None:
    """Delete the user's oldest stored uploads until one of ``size`` bytes fits the quota
    (``CC_UPLOAD_QUOTA_MB`` of stored files, at most :data:`UPLOADS_PER_USER` previews):
    the oldest previews give way, their confirmation then asks to upload again."""
    quota = settings.CC_UPLOAD_QUOTA_BYTES
    stored = list(
        AliasUpload.objects.filter(user_id=user_id)
        .order_by("-created_at", "-pk")
        .values_list("pk", "size")
    )
    keep_bytes = size
    doomed = []
    for index, (pk, stored_size) in enumerate(stored):
        if index + 1 >= UPLOADS_PER_USER or keep_bytes + stored_size > quota:
            doomed.append(pk)
        else:
            keep_bytes += stored_size
    if doomed:
        AliasUpload.objects.filter(pk__in=doomed).delete()


def _new_token(digest: str) -> str:
    return hashlib.sha256(secrets.token_bytes(32) + digest.encode()).hexdigest()


@transaction.atomic
def upload_store(
    *,
    user: AbstractBaseUser | AnonymousUser,
    data: bytes,
    filename: str,
    encoding: str,
    add_domains: bool,
    fingerprint: str | None = None,
) -> AliasUpload:
    """Keep the uploaded bytes for the confirmation, bound to the user and the table state
    (``fingerprint``, the table's now by default), within the user's quota."""
    user_id = _user_id(user)
    uploads_clean()
    _make_room(user_id, len(data))
    digest = hashlib.sha256(data).hexdigest()
    binary = connection.vendor == "postgresql"
    upload = AliasUpload.objects.create(
        token=_new_token(digest),
        user_id=user_id,
        filename=filename[:255],
        data=b"" if binary else data,
        size=len(data),
        sha256=digest,
        encoding=encoding,
        add_domains=add_domains,
        fingerprint=fingerprint or alias_fingerprint(),
    )
    if binary:
        _upload_data_write(upload.pk, data)
        upload.data = data
    return upload


# On PostgreSQL the file goes to and from its bytea column as a binary parameter: Django's
# client-side binding would spell 20 MB as 40 MB of hex inside an SQL string, twice over.
_DATA_SQL = "UPDATE aliases_aliasupload SET data = %b WHERE id = %s"


def _upload_data_write(pk: int, data: bytes) -> None:
    import psycopg  # PostgreSQL only

    connection.ensure_connection()
    # A server-side binding cursor on Django's connection (its own cursors bind client-side).
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_DATA_SQL, (data, pk))


def _upload_data_read(pk: int) -> bytes:
    if connection.vendor != "postgresql":
        return bytes(AliasUpload.objects.values_list("data", flat=True).get(pk=pk))
    import psycopg  # PostgreSQL only

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute("SELECT data FROM aliases_aliasupload WHERE id = %s", (pk,), binary=True)
        row = cursor.fetchone()
    return bytes(row[0]) if row else b""


@transaction.atomic
def upload_receive(
    *,
    user: AbstractBaseUser | AnonymousUser,
    file: BinaryIO,
    filename: str,
    encoding: str,
    add_domains: bool,
) -> UploadPreview:
    """The upload page's first step: dry-run the file as a stream, then keep it for the
    confirmation only when it can be imported. A refused file (it has errors) is not kept:
    only its findings report is stored, for the download link."""
    user_id = _user_id(user)
    fingerprint = alias_fingerprint()
    report = aliases_import_csv(data=file, encoding=encoding, add_domains=add_domains, dry_run=True)
    if report.refused:
        uploads_clean()
        findings_csv = _findings_csv(report)
        _make_room(user_id, len(findings_csv))
        upload = AliasUpload.objects.create(
            token=_new_token(hashlib.sha256(findings_csv).hexdigest()),
            user_id=user_id,
            filename=filename[:255],
            data=b"",
            size=len(findings_csv),
            sha256="",
            encoding=encoding,
            add_domains=add_domains,
            fingerprint=fingerprint,
            refused=True,
            findings_csv=findings_csv,
        )
    else:
        file.seek(0)
        upload = upload_store(
            user=user,
            data=file.read(),
            filename=filename,
            encoding=encoding,
            add_domains=add_domains,
            fingerprint=fingerprint,
        )
    return UploadPreview(upload, report, report.rows, report.rows_hidden)


def upload_get(*, token: str, user: AbstractBaseUser | AnonymousUser) -> AliasUpload:
    """The user's stored, importable upload with that token; raises :class:`UploadNotFound`
    for an unknown, foreign, expired, refused or tampered one."""
    upload = (
        AliasUpload.objects.filter(
            token=token,
            user_id=_user_id(user),
            created_at__gte=timezone.now() - UPLOAD_LIFETIME,
            refused=False,
        )
        .defer("data", "findings_csv")
        .first()
    )
    if upload is None:
        raise UploadNotFound
    upload.data = _upload_data_read(upload.pk)
    if hashlib.sha256(upload.data).hexdigest() != upload.sha256:
        raise UploadNotFound
    return upload


@transaction.atomic
def upload_confirm(*, token: str, user: AbstractBaseUser | AnonymousUser) -> ImportReport:
    """Import exactly the previewed bytes; refuses when the table changed since the preview."""
    _lock_aliases()
    upload = upload_get(token=token, user=user)
    report = aliases_import_csv(
        data=upload.data,
        encoding=upload.encoding,
        add_domains=upload.add_domains,
        dry_run=False,
        expected_fingerprint=upload.fingerprint,
    )
    if report.written:
        upload.delete()
    return report


@dataclass(frozen=True)
class UploadPreview:
    """What the upload page shows of an upload: the dry run's report and up to
    :data:`PREVIEW_LIMIT` of its rows (``hidden`` more are not shown)."""

    upload: AliasUpload
    report: ImportReport
    rows: tuple[ImportRow, ...]
    hidden: int


def upload_preview(
    *, token: str, user: AbstractBaseUser | AnonymousUser, limit: int = PREVIEW_LIMIT
) -> UploadPreview:
    """Dry-run the stored upload against the table as it is now; raises
    :class:`UploadNotFound`. Every row with a finding is shown before any without."""
    upload = upload_get(token=token, user=user)
    report = _dry_run(upload, limit)
    return UploadPreview(upload, report, report.rows, report.rows_hidden)


def _dry_run(upload: AliasUpload, limit: int = PREVIEW_LIMIT) -> ImportReport:
    return aliases_import_csv(
        data=upload.data,
        encoding=upload.encoding,
        add_domains=upload.add_domains,
        dry_run=True,
        preview_limit=limit,
    )


FINDINGS_CSV_COLUMNS = ("line", "level", "code", "message")


def _findings_csv(report: ImportReport) -> bytes:
    rows: list[tuple[str, ...]] = [
        (str(f.line or ""), f.level.label, f.code, f.render(_))
        for f in report.findings
        if f.level is not Level.INFO
    ]
    if report.findings_omitted:
        rows.append(
            (
                "",
                "",
                "",
                _("… and %(count)s more findings, not listed: fix these and upload again.")
                % {"count": report.findings_omitted},
            )
        )
    return _excel_csv(render_csv_table(itertools.chain([FINDINGS_CSV_COLUMNS], rows)))


def upload_findings_csv(*, token: str, user: AbstractBaseUser | AnonymousUser) -> bytes:
    """The upload's errors and warnings as CSV for Excel (:data:`FINDINGS_CSV_COLUMNS`):
    those of a refused upload as found at its preview, those of a kept one against the
    table as it is now; raises :class:`UploadNotFound`."""
    refused = AliasUpload.objects.filter(
        token=token,
        user_id=_user_id(user),
        created_at__gte=timezone.now() - UPLOAD_LIFETIME,
        refused=True,
    ).first()
    if refused is not None:
        return bytes(refused.findings_csv)
    return _findings_csv(_dry_run(upload_get(token=token, user=user)))


# --- CSV export and demo --------------------------------------------------------------------


def aliases_export_csv(queryset: QuerySet[Alias]) -> bytes:
    """The aliases in upload format, UTF-8 with a BOM so that Excel opens it; re-imports."""
    rows = queryset.order_by("position").values_list("pattern", "target", "option", "comment")
    return _excel_csv(
        render_csv(Entry(p, t, o, c) for p, t, o, c in rows.iterator(chunk_size=_BATCH))
    )


def _excel_csv(text: str) -> bytes:
    """CSV text from :mod:`aliases.aliasfile` (formula-neutralised) as Excel opens it: UTF-8
    only with a BOM."""
    return codecs.BOM_UTF8 + text.encode("utf-8")


DEMO_DOMAIN = "example.co.jp"
DEMO_STAFF = (
    "yamada", "suzuki", "takahashi", "tanaka", "watanabe",
    "ito", "nakamura", "kobayashi", "kato", "yoshida",
)  # fmt: skip


@transaction.atomic
def demo_load() -> list[str]:
    """Add the demo domain with one alias per staff address and one partial wildcard
    (idempotent: a second run changes nothing)."""
    _lock_aliases()
    domain, created = LocalDomain.objects.get_or_create(
        name=DEMO_DOMAIN, defaults={"comment": "デモ会社"}
    )
    report = [f"domain: {domain.name} ({'added' if created else 'present'})"]
    wanted = [
        (f"{name}@{DEMO_DOMAIN}", f"{name}@mail.{DEMO_DOMAIN}", "", "") for name in DEMO_STAFF
    ]
    wanted.append((f"2009*@{DEMO_DOMAIN}", f"2009*@mail.{DEMO_DOMAIN}", "", "2009年度入社"))
    added = 0
    for pattern, target, option, comment in wanted:
        if Alias.objects.filter(key=Entry(pattern, "").key).exists():
            continue
        alias_create(pattern=pattern, target=target, option=option, comment=comment)
        added += 1
    report.append(f"aliases: {added} added, {len(wanted) - added} present")
    return report
