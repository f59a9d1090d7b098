"""Alias table services: validation, CRUD, CSV import/export and the upload confirmation.

Every write runs in one transaction, under the settings row lock (:func:`_lock_aliases`), and
re-validates the table as it would be after the change: an error-level finding or a licence
overflow refuses the write, warnings never block. Every write is in the audit log.
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import itertools
import secrets
import threading
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from aliases.aliasfile import (
    WILDCARD,
    AliasIndex,
    AliasSyntaxError,
    CsvRow,
    parse_alias_csv,
    parse_alias_pattern,
    render_csv_table,
)
from aliases.aliasfile import Alias as Entry
from aliases.aliasfile import render_alias_csv as render_csv
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
    blocking_errors,
    gettext_noop,
    is_policy_risk,
    make,
    sort_findings,
)
from controlcenter.models import ServerSettings
from relaypolicy.services import relay_table

UPLOAD_LIFETIME = timedelta(hours=24)
PREVIEW_LIMIT = 1000
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
    if errors:
        raise AliasRefused(errors)
    return own


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


# --- CSV import -----------------------------------------------------------------------------


class RowStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class ImportRow:
    line: int
    entry: Entry | None
    change: RowStatus
    findings: tuple[Finding, ...] = ()

    @property
    def status(self) -> RowStatus:
        """One status per row: an error or warning outranks the kind of change."""
        if any(f.is_error for f in self.findings):
            return RowStatus.ERROR
        if any(f.level is Level.WARNING for f in self.findings):
            return RowStatus.WARNING
        return self.change


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or would do): the counts of the cli.md contract and every row."""

    created: int
    updated: int
    unchanged: int
    findings: tuple[Finding, ...]
    domains_added: tuple[str, ...]
    rows: tuple[ImportRow, ...]
    encoding: str
    written: bool
    dry_run: bool

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    @property
    def blocking(self) -> list[Finding]:
        """The errors that refuse the import: malformed rows, not policy risks."""
        return blocking_errors(self.findings)

    @property
    def refused(self) -> bool:
        return bool(self.blocking)

    @property
    def risks(self) -> list[Finding]:
        """Policy risks (a wildcard without the final norelay line, a licence overflow): an
        import is not refused for them, since the file is what the server has today."""
        return [f for f in self.findings if is_policy_risk(f)]

    def as_dict(self) -> dict[str, object]:
        """The JSON report of ``import_aliases`` (../shared/spec/cli.md)."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [
                {"line": f.line, "message": f.render(_), "code": f.code} for f in self.errors
            ],
            "warnings": [
                {"line": f.line, "code": f.code, "message": f.render(_)} for f in self.warnings
            ],
            "policy_risks": [
                {"line": f.line, "code": f.code, "message": f.render(_)} for f in self.risks
            ],
            "domains_added": list(self.domains_added),
            "dry_run": self.dry_run,
            "written": self.written,
            "encoding": self.encoding,
        }


@dataclass
class _Plan:
    entries: list[Entry]
    ids: list[int | None]
    rows: list[tuple[int, Entry, RowStatus, int]] = field(default_factory=list)


def _shadow_suspects(entries: Sequence[Entry], positions: Iterable[int]) -> set[int]:
    """Positions of exact aliases that some earlier wildcard matches (candidates for W002)."""
    wild_positions = [i for i, e in enumerate(entries) if WILDCARD in e.local_part]
    if not wild_positions:
        return set()
    index = AliasIndex.build([entries[i] for i in wild_positions])
    suspects: set[int] = set()
    for position in positions:
        entry = entries[position]
        if WILDCARD in entry.local_part:
            continue
        match = index.lookup(entry.pattern)
        if match is not None and wild_positions[match.position] < position:
            suspects.add(position)
    return suspects


def aliases_import_csv(
    *,
    data: bytes,
    encoding: str,
    add_domains: bool,
    dry_run: bool,
    expected_fingerprint: str | None = None,
) -> ImportReport:
    """Import an alias CSV all-or-nothing (cli.md ``import_aliases``).

    Existing patterns (case-insensitive) are updated in place, new ones appended in file
    order. An error in a row writes nothing; policy risks alone (a full wildcard without the
    final norelay line, a licence overflow) do not refuse the import: the file is what the
    server has today, and the export stays blocked until they are fixed. With
    ``expected_fingerprint`` the import refuses (:class:`StaleImportError`) when the table
    changed since that fingerprint was taken.
    """
    with transaction.atomic():
        if not dry_run:
            _lock_aliases()
        if expected_fingerprint is not None and alias_fingerprint() != expected_fingerprint:
            raise StaleImportError
        known = frozenset(LocalDomain.objects.values_list("name", flat=True))
        parsed = parse_alias_csv(
            data, encoding=encoding, local_domains=None if add_domains else known
        )
        domains_added = (
            tuple(sorted({row.alias.domain for row in parsed.rows} - known)) if add_domains else ()
        )
        context = _context(domains_added)
        plan = _plan(parsed.rows)
        imported = [
            position
            for _line, _entry, status, position in plan.rows
            if status is not RowStatus.UNCHANGED
        ]
        checked = set(imported) & (
            {i for i in imported if WILDCARD in plan.entries[i].local_part}
            | _shadow_suspects(plan.entries, imported)
        )
        table_findings = _validate_subset(dict(enumerate(plan.entries)), checked, context)
        line_of = {position: line for line, _e, _s, position in plan.rows}
        findings = [*parsed.findings, *_length_findings(parsed.rows, domains_added)]
        row_findings: dict[int, list[Finding]] = {}
        for finding in findings:
            if finding.line is not None:
                row_findings.setdefault(finding.line, []).append(finding)
        for position, found in table_findings.items():
            for finding in found:
                if finding.level is Level.INFO:
                    continue
                placed = replace(finding, line=line_of[position])
                findings.append(placed)
                row_findings.setdefault(placed.line or 0, []).append(placed)
        counts = {status: 0 for status in RowStatus}
        for _line, _entry, status, _position in plan.rows:
            counts[status] += 1
        if counts[RowStatus.CREATED]:
            # Only new aliases take seats: an import that adds none is never refused for them.
            findings.extend(_licence_findings(len(plan.entries), context))
        rows = _report_rows(plan, row_findings)
        written = not dry_run and not blocking_errors(findings)
        if written:
            _write(plan, domains_added)
            audit_record(
                action=AuditAction.ALIAS_IMPORT,
                target="aliases.csv",
                summary=f"created {counts[RowStatus.CREATED]}, updated {counts[RowStatus.UPDATED]}",
                after={
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "created": counts[RowStatus.CREATED],
                    "updated": counts[RowStatus.UPDATED],
                    "domains_added": list(domains_added),
                },
            )
    return ImportReport(
        created=counts[RowStatus.CREATED],
        updated=counts[RowStatus.UPDATED],
        unchanged=counts[RowStatus.UNCHANGED],
        findings=tuple(sorted(findings, key=lambda f: (f.line is None, f.line or 0, -f.level))),
        domains_added=domains_added,
        rows=rows,
        encoding=parsed.encoding,
        written=written,
        dry_run=dry_run,
    )


_FIELD_LIMITS = (
    ("pattern", Alias._meta.get_field("pattern").max_length or 0),
    ("target", Alias._meta.get_field("target").max_length or 0),
    ("comment", Alias._meta.get_field("comment").max_length or 0),
)
_DOMAIN_LIMIT = LocalDomain._meta.get_field("name").max_length or 0
_LENGTH_MESSAGES = {
    "pattern": gettext_noop("the alias is %(length)s characters long; at most %(limit)s"),
    "target": gettext_noop("the real address is %(length)s characters long; at most %(limit)s"),
    "comment": gettext_noop("the comment is %(length)s characters long; at most %(limit)s"),
    "domain": gettext_noop("the domain is %(length)s characters long; at most %(limit)s"),
}


def _length_findings(rows: Iterable[CsvRow], domains_added: Sequence[str]) -> list[Finding]:
    """``csv.E040`` for a field longer than its column: checked here, so that SQLite (which
    would store it) and PostgreSQL (which would fail) refuse the same file."""
    found = []
    added = set(domains_added)
    for row in rows:
        values = [(name, str(getattr(row.alias, name)), limit) for name, limit in _FIELD_LIMITS]
        if row.alias.domain in added:
            values.append(("domain", row.alias.domain, _DOMAIN_LIMIT))
        for name, value, limit in values:
            if len(value) > limit:
                found.append(
                    make(
                        Level.ERROR,
                        "csv.E040",
                        _LENGTH_MESSAGES[name],
                        line=row.line,
                        hint=gettext_noop("Shorten it and upload the file again."),
                        length=len(value),
                        limit=limit,
                    )
                )
    return found


def _plan(csv_rows: Iterable[CsvRow]) -> _Plan:
    existing = list(
        Alias.objects.order_by("position").values_list(
            "id", "key", "pattern", "target", "option", "comment"
        )
    )
    plan = _Plan(
        entries=[Entry(p, t, o, c) for _id, _key, p, t, o, c in existing],
        ids=[row[0] for row in existing],
    )
    position_by_key = {row[1]: position for position, row in enumerate(existing)}
    for row in csv_rows:
        line, entry = row.line, row.alias
        position = position_by_key.get(entry.key)
        if position is None:
            plan.entries.append(entry)
            plan.ids.append(None)
            plan.rows.append((line, entry, RowStatus.CREATED, len(plan.entries) - 1))
            continue
        stored = plan.entries[position]
        if (stored.target, stored.option, stored.comment) == (
            entry.target,
            entry.option,
            entry.comment,
        ):
            plan.rows.append((line, entry, RowStatus.UNCHANGED, position))
        else:
            # The stored spelling of the pattern stays; only the mapping changes.
            plan.entries[position] = replace(entry, pattern=stored.pattern)
            plan.rows.append((line, entry, RowStatus.UPDATED, position))
    return plan


def _report_rows(plan: _Plan, row_findings: dict[int, list[Finding]]) -> tuple[ImportRow, ...]:
    rows = [
        ImportRow(line, entry, status, tuple(row_findings.get(line, ())))
        for line, entry, status, _position in plan.rows
    ]
    seen = {row.line for row in rows}
    rows.extend(
        ImportRow(line, None, RowStatus.ERROR, tuple(found))
        for line, found in row_findings.items()
        if line not in seen and line
    )
    return tuple(sorted(rows, key=lambda row: row.line))


def _write(plan: _Plan, domains_added: Sequence[str]) -> None:
    now = timezone.now()
    LocalDomain.objects.bulk_create(
        LocalDomain(name=name, created_at=now) for name in domains_added
    )
    domain_ids = dict(LocalDomain.objects.values_list("name", "id"))
    top = Alias.objects.aggregate(top=Max("position"))["top"] or 0
    updated = [position for _l, _e, status, position in plan.rows if status is RowStatus.UPDATED]
    created = [position for _l, _e, status, position in plan.rows if status is RowStatus.CREATED]
    # Model instances are heavy: build them one batch at a time to keep the peak memory low.
    for start in range(0, len(updated), 500):
        Alias.objects.bulk_update(
            [
                Alias(
                    pk=plan.ids[position],
                    target=plan.entries[position].target,
                    option=plan.entries[position].option,
                    comment=plan.entries[position].comment,
                    updated_at=now,
                )
                for position in updated[start : start + 500]
            ],
            ["target", "option", "comment", "updated_at"],
        )
    _insert(
        (top + offset, e.pattern, e.key, e.target, e.option, e.comment, domain_ids[e.domain])
        for offset, e in enumerate((plan.entries[position] for position in created), start=1)
    )


_INSERT_FIELDS = ("position", "pattern", "key", "target", "option", "comment", "domain")


def _insert(rows: Iterable[tuple[int | str, ...]]) -> None:
    """INSERT the new aliases without the ORM: its per-field preparation in ``bulk_create``
    costs seconds at 100,000 rows, and the values here are plain strings and integers.
    PostgreSQL takes them through COPY (one statement per row costs a round trip each);
    SQLite, in process, through ``executemany``."""
    meta = Alias._meta
    columns = [meta.get_field(name).column for name in (*_INSERT_FIELDS, "updated_at")]  # type: ignore[union-attr]
    stamp = meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)
    table = connection.ops.quote_name(meta.db_table)
    names = ", ".join(connection.ops.quote_name(str(column)) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*row, stamp))
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append((*row, stamp))
            if len(batch) == _BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


# --- the upload page ------------------------------------------------------------------------


class StaleImportError(Exception):
    """The aliases, domains or settings changed since the preview; nothing was written."""


class UploadNotFound(Exception):
    """No stored upload with that token for this user (tampered, expired or foreign)."""


def _user_id(user: AbstractBaseUser | AnonymousUser) -> int:
    if user.pk is None:
        raise UploadNotFound
    return int(user.pk)


@transaction.atomic
def upload_store(
    *,
    user: AbstractBaseUser | AnonymousUser,
    data: bytes,
    filename: str,
    encoding: str,
    add_domains: bool,
) -> AliasUpload:
    """Keep the uploaded bytes for the confirmation, bound to the user and the table state."""
    AliasUpload.objects.filter(created_at__lt=timezone.now() - UPLOAD_LIFETIME).delete()
    digest = hashlib.sha256(data).hexdigest()
    token = hashlib.sha256(secrets.token_bytes(32) + digest.encode()).hexdigest()
    return AliasUpload.objects.create(
        token=token,
        user_id=_user_id(user),
        filename=filename[:255],
        data=data,
        sha256=digest,
        encoding=encoding,
        add_domains=add_domains,
        fingerprint=alias_fingerprint(),
    )


def upload_get(*, token: str, user: AbstractBaseUser | AnonymousUser) -> AliasUpload:
    upload = AliasUpload.objects.filter(
        token=token, user_id=_user_id(user), created_at__gte=timezone.now() - UPLOAD_LIFETIME
    ).first()
    if upload is None or hashlib.sha256(bytes(upload.data)).hexdigest() != upload.sha256:
        raise UploadNotFound
    return upload


@transaction.atomic
def upload_confirm(*, token: str, user: AbstractBaseUser | AnonymousUser) -> ImportReport:
    """Import exactly the previewed bytes; refuses when the table changed since the preview."""
    _lock_aliases()
    upload = upload_get(token=token, user=user)
    report = aliases_import_csv(
        data=bytes(upload.data),
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
    """What the upload page shows of a stored upload: the dry run's report and up to
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
    report = _dry_run(upload)
    return UploadPreview(
        upload, report, _preview_rows(report.rows, limit), max(0, len(report.rows) - limit)
    )


def _dry_run(upload: AliasUpload) -> ImportReport:
    return aliases_import_csv(
        data=bytes(upload.data),
        encoding=upload.encoding,
        add_domains=upload.add_domains,
        dry_run=True,
    )


def _preview_rows(rows: Sequence[ImportRow], limit: int) -> tuple[ImportRow, ...]:
    if len(rows) <= limit:
        return tuple(rows)
    shown = [row for row in rows if row.findings][:limit]
    rest = [row for row in rows if not row.findings][: limit - len(shown)]
    return tuple(sorted([*shown, *rest], key=lambda row: row.line))


FINDINGS_CSV_COLUMNS = ("line", "level", "code", "message")


def upload_findings_csv(*, token: str, user: AbstractBaseUser | AnonymousUser) -> bytes:
    """The stored upload's errors and warnings against the table as it is now, as CSV for
    Excel (:data:`FINDINGS_CSV_COLUMNS`); raises :class:`UploadNotFound`."""
    report = _dry_run(upload_get(token=token, user=user))
    rows = (
        (str(f.line or ""), f.level.label, f.code, f.render(_))
        for f in report.findings
        if f.level is not Level.INFO
    )
    return _excel_csv(render_csv_table(itertools.chain([FINDINGS_CSV_COLUMNS], rows)))


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
