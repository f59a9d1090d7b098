"""The alias CSV import (``import_aliases`` and the upload page): one pass, all-or-nothing.

The file is read as a stream (:meth:`aliases.aliasfile.AliasCsvReader.records`, plain tuples),
each row classified against the stored table by its case-folded key (new, changed,
unchanged) and written as it is read, in the import's transaction, which rolls every row
back when the file turns out to have errors. Only what the table checks and the preview
need is kept as objects: the wildcards, the rows a wildcard may shadow, the first rows and
the rows with findings.

A large import (:data:`REBUILD_INDEX_ROWS` new rows, or a third of the table) sets the
table's secondary indexes and its unique and foreign-key constraints aside before its first
row and builds them again at the end, inside the same transaction: a sorted build is several
times cheaper than upkeep row by row, and adding a constraint back makes the database check
every row again, so integrity never rests on the import's own checks.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import TracebackType
from typing import Any, BinaryIO

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from aliases.aliasfile import WILDCARD, AliasCsvReader, AliasIndex, Record
from aliases.aliasfile import Alias as Entry
from aliases.models import Alias, LocalDomain
from controlcenter.audit import AuditAction, audit_record
from controlcenter.findings import (
    Finding,
    Level,
    blocking_errors,
    gettext_noop,
    is_policy_risk,
    make,
)

PREVIEW_LIMIT = 1000
# Errors (and as many warnings) an import report keeps; the rest are counted.
FINDINGS_LIMIT = 10_000
# New rows sent to the database at a time (COPY on PostgreSQL, executemany on SQLite).
BATCH = 5000
# An import adding this many rows (or a third of the table, if more) sets the secondary
# indexes and constraints aside and builds them again at the end.
REBUILD_INDEX_ROWS = 20_000
# The trigram index of the search (migration 0004, PostgreSQL with pg_trgm only).
SEARCH_INDEX = "aliases_alias_search_trgm"
SEARCH_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {SEARCH_INDEX} ON aliases_alias "
    "USING gin ((upper((pattern)::text || chr(10) || (target)::text)) gin_trgm_ops)"
)


class StaleImportError(Exception):
    """The aliases, domains or settings changed since the preview; nothing was written."""


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
    # Every error and warning, counting those past the limit that ``findings`` keeps.
    error_count: int = 0
    warning_count: int = 0
    findings_omitted: int = 0
    # The rows of the file (valid or refused); ``rows`` holds the preview's share of them.
    rows_total: int = 0
    # Errors that refuse the import (every error but the policy risks), kept or not.
    blocking_count: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]

    @property
    def has_errors(self) -> bool:
        return self.error_count > 0 or bool(self.errors)

    @property
    def rows_hidden(self) -> int:
        return max(0, self.rows_total - len(self.rows))

    @property
    def blocking(self) -> list[Finding]:
        """The errors that refuse the import: malformed rows, not policy risks."""
        return blocking_errors(self.findings)

    @property
    def refused(self) -> bool:
        return self.blocking_count > 0 or bool(self.blocking)

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
            "error_count": self.error_count,
            "warning_count": self.warning_count,
            "findings_omitted": self.findings_omitted,
            "blocking_count": self.blocking_count,
            "dry_run": self.dry_run,
            "written": self.written,
            "encoding": self.encoding,
        }


_COMMENT_LIMIT = Alias._meta.get_field("comment").max_length or 0
_ADDRESS_LIMIT = min(
    Alias._meta.get_field("pattern").max_length or 0,
    Alias._meta.get_field("target").max_length or 0,
)
_LENGTH_MESSAGES = {
    "pattern": gettext_noop("the alias is %(length)s characters long; at most %(limit)s"),
    "target": gettext_noop("the real address is %(length)s characters long; at most %(limit)s"),
    "comment": gettext_noop("the comment is %(length)s characters long; at most %(limit)s"),
}


def _length_findings(record: Record) -> list[Finding]:
    """``csv.E040`` for a field longer than its column: checked here, so that SQLite (which
    would store it) and PostgreSQL (which would fail) refuse the same file. (A domain is at
    most 253 characters by the CSV grammar, as long as its column.)"""
    line, pattern, target, _option, comment, _key, _domain = record
    fields = {
        "pattern": (pattern, _ADDRESS_LIMIT),
        "target": (target, _ADDRESS_LIMIT),
        "comment": (comment, _COMMENT_LIMIT),
    }
    return [
        make(
            Level.ERROR,
            "csv.E040",
            _LENGTH_MESSAGES[name],
            line=line,
            hint=gettext_noop("Shorten it and upload the file again."),
            length=len(value),
            limit=limit,
        )
        for name, (value, limit) in fields.items()
        if len(value) > limit
    ]


# --- writing ---------------------------------------------------------------------------------

_INSERT_FIELDS = ("position", "pattern", "key", "target", "option", "comment", "domain")
# COPY's text format: these four would end a field or a row, or start an escape.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _plain(text: str) -> bool:
    """No character COPY escapes (isprintable() is False for tabs and line breaks)."""
    return text.isprintable() and "\\" not in text


class _Writer:
    """Writes an import's rows as they are read: new aliases in batches of :data:`BATCH`
    (one COPY stream on PostgreSQL, one ``executemany`` per batch on SQLite), changed ones
    with one ``executemany`` per batch. Runs inside the import's transaction, which rolls
    every row back when the file turns out to have errors; use it as a context manager, so
    that an exception ends a COPY in progress.

    The first :data:`REBUILD_INDEX_ROWS` new rows are held: a smaller import writes them with
    the indexes in place, a larger one first sets the secondary indexes and constraints aside
    (:meth:`_set_aside`), or later, once its new rows reach a third of a large table."""

    def __init__(self, *, top: int) -> None:
        meta = Alias._meta
        quote = connection.ops.quote_name
        self.postgresql = connection.vendor == "postgresql"
        self.table = meta.db_table
        self.domain_ids = dict(LocalDomain.objects.values_list("name", "id"))
        self.domains_added: list[str] = []
        self.position = top
        now = timezone.now()
        self.stamp: Any = (
            now.isoformat()
            if self.postgresql
            else meta.get_field("updated_at").get_db_prep_save(now, connection)
        )
        self.created: list[Record] = []  # held until the next write
        self.updated: list[tuple[Any, ...]] = []
        columns = [
            quote(str(meta.get_field(name).column))  # type: ignore[union-attr]
            for name in (*_INSERT_FIELDS, "updated_at")
        ]
        self.insert_columns = ", ".join(columns)
        self.insert_sql = (
            f"INSERT INTO {quote(self.table)} ({self.insert_columns}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})"
        )
        changed = [
            quote(str(meta.get_field(name).column))  # type: ignore[union-attr]
            for name in ("target", "option", "comment", "updated_at")
        ]
        self.update_sql = (
            f"UPDATE {quote(self.table)} "
            f"SET {', '.join(f'{column} = %s' for column in changed)} "
            f"WHERE {quote(str(meta.pk.column))} = %s"
        )
        self.bulk_at = max(REBUILD_INDEX_ROWS, top // 3)
        self.count = 0  # new rows written or being written
        # The first rows are held until they decide a small import; never more than this.
        self.limit = REBUILD_INDEX_ROWS
        # Set aside by _set_aside: (constraint name, definition) and index definitions.
        self.constraints: list[tuple[str, str]] | None = None
        self.indexes: list[str] = []
        # An open COPY: its context manager, the Copy object, the cursor.
        self._copying: Any = None
        self._copy: Any = None
        self._cursor: Any = None

    def __enter__(self) -> _Writer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._end_copy(kind, error, traceback)

    def domain_id(self, name: str) -> int:
        domain_id = self.domain_ids.get(name)
        if domain_id is None:
            self._end_copy(None, None, None)  # no other statement while a COPY is open
            domain_id = LocalDomain.objects.create(name=name, created_at=timezone.now()).pk
            self.domain_ids[name] = domain_id
            self.domains_added.append(name)
        return domain_id

    def create(self, record: Record) -> None:
        """Store a new row (a reader record) after the others."""
        self.created.append(record)
        if len(self.created) >= self.limit:
            self._write_created()

    def update(self, alias_id: int, target: str, option: str, comment: str) -> None:
        self.updated.append((target, option, comment, self.stamp, alias_id))
        if len(self.updated) >= BATCH:
            self._write_updated()

    def pause(self) -> None:
        """End a COPY in progress, so that other statements can run (rows held stay held)."""
        self._end_copy(None, None, None)

    def finish(self) -> None:
        """Write what is held and build what :meth:`_set_aside` set aside."""
        self._write_created()
        self._end_copy(None, None, None)
        self._write_updated()
        if self.constraints is not None:
            with connection.cursor() as cursor:
                for sql in self.indexes:
                    cursor.execute(sql)
                quote = connection.ops.quote_name
                for name, definition in self.constraints:
                    # Adding a constraint checks every row of the table.
                    cursor.execute(
                        f"ALTER TABLE {quote(self.table)} ADD CONSTRAINT {quote(name)} {definition}"
                    )
            self.constraints = None

    # --- internals

    def _write_created(self) -> None:
        if not self.created:
            return
        records, self.created = self.created, []
        self.count += len(records)
        if self.constraints is None and self.count >= self.bulk_at:
            # Usually before the first row; past a third of a large table, half-way.
            self._end_copy(None, None, None)
            self._set_aside()
        self.limit = BATCH
        ids = self.domain_ids
        for domain in {record[6] for record in records} - ids.keys():
            self.domain_id(domain)
        top, stamp = self.position, self.stamp
        self.position += len(records)
        # One comprehension per batch: the rows as the database takes them, in file order.
        if not self.postgresql:
            rows = [
                (top + n, pattern, key, target, option, comment, ids[domain], stamp)
                for n, (_l, pattern, target, option, comment, key, domain) in enumerate(records, 1)
            ]
            with connection.cursor() as cursor:
                cursor.executemany(self.insert_sql, rows)
            return
        # COPY's text format. Addresses hold none of the characters it escapes (the CSV
        # grammar refuses backslashes and control characters in them); a comment may.
        text = "".join(
            [
                f"{top + n}\t{pattern}\t{key}\t{target}\t{option}\t"
                f"{comment if _plain(comment) else comment.translate(_COPY_ESCAPES)}"
                f"\t{ids[domain]}\t{stamp}\n"
                for n, (_l, pattern, target, option, comment, key, domain) in enumerate(records, 1)
            ]
        )
        if self._copy is None:
            # One COPY for every batch: the server stores rows while the file is still read.
            self._cursor = connection.cursor()
            sql = f"COPY {connection.ops.quote_name(self.table)} ({self.insert_columns}) FROM STDIN"
            self._copying = self._cursor.cursor.copy(sql)
            self._copy = self._copying.__enter__()
        self._copy.write(text)

    def _end_copy(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        copying, cursor = self._copying, self._cursor
        self._copying = self._copy = self._cursor = None
        if copying is not None:
            try:
                copying.__exit__(kind, error, traceback)
            finally:
                cursor.close()

    def _write_updated(self) -> None:
        if not self.updated:
            return
        self._end_copy(None, None, None)  # no other statement while a COPY is open
        rows, self.updated = self.updated, []
        with connection.cursor() as cursor:
            cursor.executemany(self.update_sql, rows)

    def _set_aside(self) -> None:
        """Drop the table's secondary indexes (the search index included) and, on
        PostgreSQL, its unique and foreign-key constraints, keeping their definitions for
        :meth:`finish`. In the import's transaction: a refused import brings them back."""
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            if self.postgresql:
                # Pending checks of rows written earlier in the transaction would stop the
                # ALTER TABLE: run them now, then defer again as the constraints were.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                cursor.execute(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname",
                    [self.table],
                )
                constraints = [(str(name), str(sql)) for name, sql in cursor.fetchall()]
                cursor.execute(
                    "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
                    "AND i.indexrelid NOT IN (SELECT conindid FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'x')) "
                    "ORDER BY c.relname",
                    [self.table, self.table],
                )
                indexes = [(str(name), str(sql)) for name, sql in cursor.fetchall()]
                if constraints:
                    drops = ", ".join(
                        f"DROP CONSTRAINT {quote(name)}" for name, _sql in constraints
                    )
                    cursor.execute(f"ALTER TABLE {quote(self.table)} {drops}")
            else:
                # SQLite keeps its unique and foreign-key constraints in the table itself.
                constraints = []
                cursor.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = %s AND sql IS NOT NULL ORDER BY name",
                    [self.table],
                )
                indexes = [(str(name), str(sql)) for name, sql in cursor.fetchall()]
            for name, _sql in indexes:
                cursor.execute(f"DROP INDEX {quote(name)}")
        self.constraints = constraints
        self.indexes = [sql for _name, sql in indexes]


# --- reading ---------------------------------------------------------------------------------

# key -> (position, id, pattern, target, option, comment) of a stored alias
_Stored = tuple[int, int, str, str, str, str]


class _Import:
    """One pass over the CSV rows: classifies each against the stored table (new, changed,
    unchanged), writes it when ``writer`` is given, and keeps only what the table checks
    and the preview need: every wildcard of the table as it would be, the imported rows
    a wildcard may shadow, the first rows and the rows with findings."""

    def __init__(self, reader: AliasCsvReader, *, writer: _Writer | None, preview: int) -> None:
        self.reader = reader
        self.writer = writer
        self.preview = preview
        self.by_key, self.wildcards = _stored_aliases()
        self.stored = len(self.by_key)
        self.wild_domains = {entry.domain for entry in self.wildcards.values()}
        self.created = self.updated = self.unchanged = 0
        self.new_domains: set[str] = set()
        # position -> (line, entry as it would be stored, change): rows for the table checks
        self.checked: dict[int, tuple[int, Entry, RowStatus]] = {}
        # line -> (entry, change): the preview's rows that a finding may need
        self.shown: dict[int, tuple[Entry, RowStatus]] = {}
        self.head: list[int] = []
        self.length_findings: list[Finding] = []

    def run(self) -> None:
        reader, writer, by_key = self.reader, self.writer, self.by_key
        wild_domains, checked, new_domains = self.wild_domains, self.checked, self.new_domains
        findings, preview, shown = reader.findings, self.preview, self.shown
        create = writer.create if writer is not None else None
        update = writer.update if writer is not None else None
        created = updated = unchanged = 0
        for record in reader.records():
            line, pattern, target, option, comment, key, domain = record
            if len(comment) > _COMMENT_LIMIT or len(target) > _ADDRESS_LIMIT:
                # The database would refuse it (PostgreSQL) or keep it (SQLite): refuse it
                # here, the same on both, before it is written.
                self.length_findings.extend(_length_findings(record))
                continue
            stored = by_key.get(key)
            if stored is None:
                position = self.stored + created
                created += 1
                change = RowStatus.CREATED
                new_domains.add(domain)
                if create is not None:
                    create(record)
            else:
                position, alias_id, stored_pattern, *mapping = stored
                if mapping == [target, option, comment]:
                    unchanged += 1
                    change = RowStatus.UNCHANGED
                else:
                    # The stored spelling of the pattern stays; only the mapping changes.
                    pattern = stored_pattern
                    updated += 1
                    change = RowStatus.UPDATED
                    if update is not None:
                        update(alias_id, target, option, comment)
            if change is not RowStatus.UNCHANGED:
                if WILDCARD in pattern:
                    entry = Entry(pattern, target, option, comment)
                    self.wildcards[position] = entry
                    wild_domains.add(domain)
                    checked[position] = (line, entry, change)
                elif domain in wild_domains:
                    # Only a wildcard above it can shadow it, and those are all known now.
                    checked[position] = (line, Entry(pattern, target, option, comment), change)
            if len(self.head) < preview:
                self.head.append(line)
                shown[line] = (Entry(pattern, target, option, comment), change)
            elif findings and findings[-1].line == line and len(shown) < 2 * preview:
                shown[line] = (Entry(pattern, target, option, comment), change)
        self.created, self.updated, self.unchanged = created, updated, unchanged

    def table_findings(self, context: services._Context) -> list[tuple[int, Finding]]:
        """(line, finding) of the table checks of the imported rows: the wildcards among
        them (alias.E006, W001, W003...) and the exact rows an earlier wildcard shadows
        (alias.W002), validated with every wildcard of the table as it would be."""
        wild_positions = sorted(self.wildcards)
        index = AliasIndex.build([self.wildcards[p] for p in wild_positions])
        entries: dict[int, Entry] = dict(self.wildcards)
        wanted: dict[int, int] = {}
        for position, (line, entry, change) in self.checked.items():
            if WILDCARD not in entry.local_part:
                match = index.lookup(entry.pattern)
                if match is None or wild_positions[match.position] >= position:
                    continue
            entries[position] = entry
            wanted[position] = line
            self.shown.setdefault(line, (entry, change))
        found = services._validate_subset(dict(sorted(entries.items())), wanted, context)
        return [
            (wanted[position], replace(finding, line=wanted[position]))
            for position, findings in sorted(found.items(), key=lambda item: wanted[item[0]])
            for finding in findings
            if finding.level is not Level.INFO
        ]

    def rows(self, findings: Sequence[Finding]) -> tuple[ImportRow, ...]:
        """Up to ``preview`` rows, those with findings first, in line order."""
        by_line: dict[int, list[Finding]] = {}
        for finding in findings:
            if finding.line is not None:
                by_line.setdefault(finding.line, []).append(finding)
        lines = set(sorted(by_line)[: self.preview])
        for line in self.head:
            if len(lines) >= self.preview:
                break
            lines.add(line)
        rows = []
        for line in sorted(lines):
            entry, change = self.shown.get(line, (None, RowStatus.ERROR))
            rows.append(ImportRow(line, entry, change, tuple(by_line.get(line, ()))))
        return tuple(rows)


def _stored_aliases() -> tuple[dict[str, _Stored], dict[int, Entry]]:
    """key -> (position, id, pattern, target, option, comment) of every stored alias, and
    the stored wildcards by position (0-based storage order): one ``fetchall``."""
    sql, params = (
        Alias.objects.order_by("position")
        .values_list("id", "key", "pattern", "target", "option", "comment")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    by_key = {}
    wildcards = {}
    for position, (alias_id, key, pattern, target, option, comment) in enumerate(fetched):
        by_key[key] = (position, alias_id, pattern, target, option, comment)
        if WILDCARD in pattern:
            wildcards[position] = Entry(pattern, target, option, comment)
    return by_key, wildcards


class _Kept:
    """At most ``limit`` errors and ``limit`` warnings, in arrival order; counts them all."""

    def __init__(self, reader: AliasCsvReader, limit: int) -> None:
        self.limit = limit
        self.findings = list(reader.findings)
        self.errors, self.warnings, self.omitted = reader.errors, reader.warnings, reader.omitted
        # Every error the reader finds is about the file's own rows: none is a policy risk.
        self.blocking = reader.errors
        self._kept = {
            level: sum(1 for f in self.findings if f.level is level)
            for level in (Level.ERROR, Level.WARNING)
        }

    def add(self, finding: Finding) -> None:
        if finding.is_error:
            self.errors += 1
            self.blocking += not is_policy_risk(finding)
        elif finding.level is Level.WARNING:
            self.warnings += 1
        else:
            return
        if self._kept[finding.level] >= self.limit:
            self.omitted += 1
            return
        self._kept[finding.level] += 1
        self.findings.append(finding)


class _ImportRefused(Exception):
    """Rolls back the rows an import wrote before its errors were known."""


def aliases_import_csv(
    *,
    data: bytes | memoryview | BinaryIO,
    encoding: str,
    add_domains: bool,
    dry_run: bool,
    expected_fingerprint: str | None = None,
    preview_limit: int = PREVIEW_LIMIT,
) -> ImportReport:
    """Import an alias CSV all-or-nothing (cli.md ``import_aliases``).

    Existing patterns (case-insensitive) are updated in place, new ones appended in file
    order. An error in a row writes nothing; policy risks alone (a full wildcard without the
    final norelay line, a licence overflow) do not refuse the import: the file is what the
    server has today, and the export stays blocked until they are fixed. With
    ``expected_fingerprint`` the import refuses (:class:`StaleImportError`) when the table
    changed since that fingerprint was taken. The file is read as a stream and written as
    it is read, in the import's transaction, rolled back on any error; the report keeps
    at most :data:`FINDINGS_LIMIT` errors (and as many warnings) and ``preview_limit``
    rows, and counts the rest.
    """
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    outcome: list[ImportReport] = []
    try:
        with transaction.atomic():
            if not dry_run:
                services._lock_aliases()
            if (
                expected_fingerprint is not None
                and services.alias_fingerprint() != expected_fingerprint
            ):
                raise StaleImportError
            report = _import(stream, encoding, add_domains, dry_run, preview_limit)
            outcome.append(report)
            if not dry_run and not report.written:
                raise _ImportRefused
    except _ImportRefused:
        pass
    return outcome[0]


def _import(
    stream: BinaryIO, encoding: str, add_domains: bool, dry_run: bool, preview_limit: int
) -> ImportReport:
    known = frozenset(LocalDomain.objects.values_list("name", flat=True))
    reader = AliasCsvReader(
        stream,
        encoding=encoding,
        local_domains=None if add_domains else known,
        finding_limit=FINDINGS_LIMIT,
    )
    writer = None
    if not dry_run:
        top = Alias.objects.aggregate(top=Max("position"))["top"] or 0
        writer = _Writer(top=top)
    run = _Import(reader, writer=writer, preview=preview_limit)
    if writer is None:
        run.run()
        domains_added, kept = _checked(run, reader, add_domains, known)
    else:
        with writer:
            run.run()
            writer.pause()
            domains_added, kept = _checked(run, reader, add_domains, known)
            if kept.blocking == 0:
                writer.finish()
    written = not dry_run and kept.blocking == 0
    if written:
        audit_record(
            action=AuditAction.ALIAS_IMPORT,
            target="aliases.csv",
            summary=f"created {run.created}, updated {run.updated}",
            after={
                "sha256": _sha256(stream),
                "created": run.created,
                "updated": run.updated,
                "domains_added": list(domains_added),
            },
        )
    findings = sorted(kept.findings, key=lambda f: (f.line is None, f.line or 0, -f.level))
    return ImportReport(
        created=run.created,
        updated=run.updated,
        unchanged=run.unchanged,
        findings=tuple(findings),
        domains_added=domains_added,
        rows=run.rows(findings),
        encoding=reader.encoding,
        written=written,
        dry_run=dry_run,
        error_count=kept.errors,
        warning_count=kept.warnings,
        findings_omitted=kept.omitted,
        rows_total=reader.rows_read + reader.refused_lines,
        blocking_count=kept.blocking,
    )


def _checked(
    run: _Import, reader: AliasCsvReader, add_domains: bool, known: frozenset[str]
) -> tuple[tuple[str, ...], _Kept]:
    """The domains the import adds and every finding of the file: the reader's, the table
    checks of the imported rows, the licence (when rows are added) and the lengths."""
    domains_added = tuple(sorted(run.new_domains - known)) if add_domains else ()
    context = services._context(domains_added)
    kept = _Kept(reader, FINDINGS_LIMIT)
    for _line, finding in run.table_findings(context):
        kept.add(finding)
    if run.created:
        # Only new aliases take seats: an import that adds none is never refused for them.
        for finding in services._licence_findings(run.stored + run.created, context):
            kept.add(finding)
    for finding in run.length_findings:
        kept.add(finding)
    return domains_added, kept


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    while block := stream.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


# Last: services imports this module's names, and this module calls its table helpers.
from aliases import services  # noqa: E402
