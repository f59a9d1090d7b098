"""Alias table services: validation, CRUD, CSV import/export and the upload confirmation.

Every write runs in one transaction and re-validates the table as it would be after the
change: an error-level finding or a licence overflow refuses the write, warnings never block.
"""

from __future__ import annotations

import codecs
import hashlib
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from aliases.aliasfile import (
    WILDCARD,
    AliasIndex,
    AliasSyntaxError,
    CsvRow,
    parse_alias_csv,
    parse_alias_pattern,
)
from aliases.aliasfile import Alias as Entry
from aliases.aliasfile import render_alias_csv as render_csv
from aliases.models import Alias, AliasUpload, LocalDomain
from aliases.validation import (
    AliasValidation,
    _check_licence,
    licence_usage,
    validate_alias_rows,
)
from controlcenter.findings import Finding, Level
from controlcenter.models import ServerSettings
from relaypolicy.services import relay_table

UPLOAD_LIFETIME = timedelta(hours=24)
_BATCH = 2000


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


@dataclass(frozen=True)
class AliasTable:
    """The stored aliases' ids in storage order with their validation."""

    ids: tuple[int, ...]
    validation: AliasValidation
    row_by_id: dict[int, int]

    def findings_for(self, alias_id: int) -> tuple[Finding, ...]:
        row = self.row_by_id.get(alias_id)
        return () if row is None else self.validation.by_position.get(row, ())


_memo_lock = threading.Lock()
_memo: dict[str, AliasTable] = {}


def alias_table() -> AliasTable:
    """Validate the stored table, memoised per process by :func:`alias_fingerprint`."""
    key = alias_fingerprint()
    cached = _memo.get(key)
    if cached is not None:
        return cached
    rows = list(
        Alias.objects.order_by("position").values_list(
            "id", "pattern", "target", "option", "comment"
        )
    )
    context = _context()
    validation = validate_alias_rows(
        [Entry(p, t, o, c) for _id, p, t, o, c in rows],
        local_domains=context.domains,
        gateway_mode=context.gateway_mode,
        relay_terminated=context.relay_terminated,
        licence=context.licence,
        accounts=context.accounts,
        mailing_lists=context.mailing_lists,
    )
    ids = tuple(row[0] for row in rows)
    table = AliasTable(ids, validation, {alias_id: row for row, alias_id in enumerate(ids)})
    with _memo_lock:
        _memo.clear()
        _memo[key] = table
    return table


def alias_check() -> AliasValidation:
    """Every finding about the stored aliases, domains, licence and relay terminator."""
    return alias_table().validation


def _validate_subset(
    entries: Sequence[Entry], wanted: Iterable[int], context: _Context
) -> dict[int, tuple[Finding, ...]]:
    """The findings of ``entries[i]`` for each wanted ``i``, as a full validation of
    ``entries`` would report them, without validating every row.

    Only rows that can affect a wanted row are validated: every wildcard (shadowing) and the
    first row of each wanted key (duplicates). Row numbers in the messages are mapped back.
    """
    wanted = sorted(set(wanted))
    first_by_key: dict[str, int] = {}
    for position, entry in enumerate(entries):
        first_by_key.setdefault(entry.key, position)
    keep = sorted(
        {i for i, entry in enumerate(entries) if WILDCARD in entry.local_part}
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
    return _check_licence(usage, total, context.accounts, context.mailing_lists)


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


def _entries() -> tuple[list[int], list[Entry]]:
    rows = Alias.objects.order_by("position").values_list(
        "id", "pattern", "target", "option", "comment"
    )
    ids: list[int] = []
    entries: list[Entry] = []
    for alias_id, pattern, target, option, comment in rows:
        ids.append(alias_id)
        entries.append(Entry(pattern, target, option, comment))
    return ids, entries


def _check_one(entries: list[Entry], position: int, *, creating: bool) -> tuple[Finding, ...]:
    context = _context()
    key = entries[position].key
    # A duplicate stored below the changed row carries the error on its own row.
    same_key = [i for i, entry in enumerate(entries) if entry.key == key]
    found = _validate_subset(entries, [position, *same_key], context)
    own = found.get(position, ())
    licence = _licence_findings(len(entries), context) if creating else []
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
    _ids, entries = _entries()
    entry = Entry(pattern.strip(), target.strip(), option, comment.strip())
    entries.append(entry)
    findings = _check_one(entries, len(entries) - 1, creating=True)
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
    return AliasSaveReport(alias, True, findings)


@transaction.atomic
def alias_update(
    *, alias: Alias, pattern: str, target: str, option: str = "", comment: str = ""
) -> AliasSaveReport:
    """Change an alias in place (its order stays); raises :class:`AliasRefused`."""
    ids, entries = _entries()
    position = ids.index(alias.pk)
    entry = Entry(pattern.strip(), target.strip(), option, comment.strip())
    entries[position] = entry
    findings = _check_one(entries, position, creating=False)
    alias.pattern, alias.key, alias.target = entry.pattern, entry.key, entry.target
    alias.option, alias.comment = entry.option, entry.comment
    alias.domain = LocalDomain.objects.get(name=entry.domain)
    alias.updated_at = timezone.now()
    alias.save()
    return AliasSaveReport(alias, False, findings)


@transaction.atomic
def aliases_delete(*, ids: Iterable[int]) -> int:
    """Delete the aliases with these ids; returns how many were deleted."""
    deleted, _detail = Alias.objects.filter(pk__in=list(ids)).delete()
    return deleted


@transaction.atomic
def alias_move(*, alias: Alias, direction: Literal["up", "down"]) -> bool:
    """Swap an alias with its neighbour; False when it is already first (or last)."""
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
    return True


# --- domains --------------------------------------------------------------------------------


class DomainInUse(Exception):
    """The domain still has aliases."""


def domain_create(*, name: str, comment: str = "") -> LocalDomain:
    """Register a managed local domain; raises ValidationError for a bad or known name."""
    name = name.strip().lower()
    try:
        parsed = _parse_domain(name)
    except AliasSyntaxError as error:
        raise ValidationError(_(error.message) % error.params, code="invalid_domain") from None
    if LocalDomain.objects.filter(name=parsed).exists():
        raise ValidationError(
            _("%(domain)s is already a local domain.") % {"domain": parsed}, code="duplicate"
        )
    return LocalDomain.objects.create(name=parsed, comment=comment.strip())


def _parse_domain(name: str) -> str:
    return parse_alias_pattern(f"x@{name}").domain


@transaction.atomic
def domain_delete(*, domain: LocalDomain) -> None:
    """Delete a local domain; raises :class:`DomainInUse` while aliases still use it."""
    if Alias.objects.filter(domain=domain).exists():
        raise DomainInUse(domain.name)
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
    order. Any error, including a licence overflow, writes nothing. With
    ``expected_fingerprint`` the import refuses (:class:`StaleImportError`) when the table
    changed since that fingerprint was taken.
    """
    with transaction.atomic():
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
        table_findings = _validate_subset(plan.entries, checked, context)
        line_of = {position: line for line, _e, _s, position in plan.rows}
        findings = list(parsed.findings)
        row_findings: dict[int, list[Finding]] = {}
        for finding in parsed.findings:
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
        has_errors = any(f.is_error for f in findings)
        written = not dry_run and not has_errors
        if written:
            _write(plan, domains_added)
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
        (
            top + offset,
            plan.entries[position].pattern,
            plan.entries[position].key,
            plan.entries[position].target,
            plan.entries[position].option,
            plan.entries[position].comment,
            domain_ids[plan.entries[position].domain],
        )
        for offset, position in enumerate(created, start=1)
    )


_INSERT_FIELDS = ("position", "pattern", "key", "target", "option", "comment", "domain")


def _insert(rows: Iterable[tuple[int | str, ...]]) -> None:
    """INSERT through ``executemany``: the ORM's per-field preparation in ``bulk_create``
    costs seconds at 100,000 rows; the values here are plain strings and integers."""
    meta = Alias._meta
    columns = [meta.get_field(name).column for name in (*_INSERT_FIELDS, "updated_at")]  # type: ignore[union-attr]
    stamp = meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        connection.ops.quote_name(meta.db_table),
        ", ".join(connection.ops.quote_name(str(column)) for column in columns),
        ", ".join(["%s"] * len(columns)),
    )
    batch: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
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


# --- CSV export and demo --------------------------------------------------------------------


def aliases_export_csv(queryset: QuerySet[Alias]) -> bytes:
    """The aliases in upload format, UTF-8 with a BOM so that Excel opens it; re-imports."""
    rows = queryset.order_by("position").values_list("pattern", "target", "option", "comment")
    text = render_csv(Entry(p, t, o, c) for p, t, o, c in rows.iterator(chunk_size=_BATCH))
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
    domain, created = LocalDomain.objects.get_or_create(
        name=DEMO_DOMAIN, defaults={"comment": "Demo company"}
    )
    report = [f"domain: {domain.name} ({'added' if created else 'present'})"]
    wanted = [
        (f"{name}@{DEMO_DOMAIN}", f"{name}@mail.{DEMO_DOMAIN}", "", "") for name in DEMO_STAFF
    ]
    wanted.append((f"2009*@{DEMO_DOMAIN}", f"2009*@mail.{DEMO_DOMAIN}", "", "2009 intake"))
    added = 0
    for pattern, target, option, comment in wanted:
        if Alias.objects.filter(key=Entry(pattern, "").key).exists():
            continue
        alias_create(pattern=pattern, target=target, option=option, comment=comment)
        added += 1
    report.append(f"aliases: {added} added, {len(wanted) - added} present")
    return report
