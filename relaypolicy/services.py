from __future__ import annotations

import base64
import binascii
import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min

from aliases import aliasfile
from aliases.models import Alias as AliasModel
from controlcenter.audit import AuditAction, audit_relay_table
from controlcenter.findings import (
    Finding,
    Level,
    blocking_errors,
    has_errors,
    is_policy_risk,
    make,
    sort_findings,
)
from controlcenter.findings import gettext_noop as _
from controlcenter.models import ServerSettings
from relaypolicy.effectfile import parse_effect
from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.table import (
    Owner,
    Part,
    RenderedTable,
    Row,
    RowKind,
    Table,
    outside_site_lines,
    render_table,
    table_from_effect,
)
from relaypolicy.tableinput import (
    clean_effect_text,
    read_effect_bytes,
    sanitize_table,
    table_field_findings,
)
from relaypolicy.validation import validate_rules


class RelayTableNotSaved(Exception):
    """Nothing was written; ``report`` is the table's check, to show on the rows, and
    ``refused`` the errors that refused it (a policy risk the stored table already has
    does not refuse a save)."""

    def __init__(self, report: RelayReport, refused: list[Finding] | None = None) -> None:
        super().__init__(report)
        self.report = report
        self.refused = report.findings if refused is None else refused


class StaleTableError(RelayTableNotSaved):
    """Someone saved the table after the editor loaded it; nothing was written."""


class RelayTableRefused(RelayTableNotSaved, ValueError):
    """The table has error-level findings; nothing was written."""


class RelayRulesExistError(Exception):
    """An import without ``replace`` found rules already stored."""


class RelayImportRefused(Exception):
    """The imported file has errors that are not policy risks (malformed lines); nothing was
    written. ``preview`` holds the findings, numbered by the file's lines."""

    def __init__(self, preview: ImportReport) -> None:
        super().__init__(preview)
        self.preview = preview


@dataclass(frozen=True)
class RelayReport:
    """A table rendered to effect.dat and everything the validator says about it."""

    table: Table
    rendered: RenderedTable
    findings: list[Finding]

    @property
    def has_errors(self) -> bool:
        return has_errors(self.findings)

    @property
    def text(self) -> str:
        return "\n".join(self.rendered.lines) + "\n"

    def findings_for(self, part: Part, index: int = 0) -> list[Finding]:
        wanted = Owner(part, index)
        return [f for f in self.findings if f.line and self.rendered.owner(f.line) == wanted]


class StaleImportError(Exception):
    """A previewed import can no longer be confirmed; ``text`` is what was previewed, if known."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class ImportReport:
    """An imported file: the table it becomes, and findings numbered by the file's own lines."""

    report: RelayReport
    findings: list[Finding] = field(default_factory=list)
    data: bytes = b""
    #: True when ``data`` is pasted text (UTF-8 of what was typed), never decoded as CP932.
    pasted: bool = False
    #: The file's lines as read (control characters shown as pictures), numbered as findings.
    lines: tuple[str, ...] = ()

    @property
    def blocking(self) -> list[Finding]:
        """The errors that refuse the import: malformed lines, not policy risks."""
        # The table as it would be stored is checked too (its lines are numbered differently):
        # should it find an error the file's own lines do not show, that still refuses.
        return blocking_errors(self.findings) or blocking_errors(self.report.findings)

    @property
    def risks(self) -> list[Finding]:
        """The policy risks (open relay, missing terminator) the file brings with it."""
        return [f for f in self.findings if is_policy_risk(f)]

    @property
    def confirmable(self) -> bool:
        return not self.blocking


def relay_table() -> Table:
    """The stored table: header, rows in order, terminator."""
    return relay_table_snapshot()[0]


def relay_table_snapshot() -> tuple[Table, int]:
    """The stored table and the version it belongs to, read as one consistent snapshot.

    Every write of the rules bumps the version in the same transaction, after locking the
    policy row. Here the policy row is read with a share lock (PostgreSQL), so a save in
    progress is waited for and none can start until the rows are read; on SQLite the
    transaction begins IMMEDIATE (settings), which excludes writers the same way. An editor
    page therefore never carries a version newer than its rows.
    """
    with transaction.atomic():
        RelayPolicy.load()  # the singleton exists before it can be locked
        policy = _policy_for_share()
        rows = RelayRule.stored_rows()
    table = Table(
        header=policy.header,
        rows=rows,
        terminator=policy.terminator,
        terminator_pattern=policy.terminator_pattern,
    )
    return table, int(policy.version)


def _read_table() -> Table:
    policy = RelayPolicy.load()
    return Table(
        header=policy.header,
        rows=RelayRule.stored_rows(),
        terminator=policy.terminator,
        terminator_pattern=policy.terminator_pattern,
    )


def stored_aliases() -> list[aliasfile.Alias]:
    """The stored aliases in storage order, as the pure core reads them."""
    return [
        aliasfile.Alias(pattern, target, option)
        for pattern, target, option in AliasModel.objects.order_by("position").values_list(
            "pattern", "target", "option"
        )
    ]


def _policy_for_share() -> RelayPolicy:
    if connection.vendor == "postgresql":
        # FOR SHARE: readers do not queue behind each other, only behind (and before) a save.
        table = connection.ops.quote_name(RelayPolicy._meta.db_table)
        return RelayPolicy.objects.raw(f"SELECT * FROM {table} WHERE id = 1 FOR SHARE")[0]
    return RelayPolicy.objects.select_for_update().get(pk=1)


def relay_check(
    table: Table | None = None,
    *,
    server: ServerSettings | None = None,
    aliases: Sequence[aliasfile.Alias] | None = None,
) -> RelayReport:
    """Render ``table`` (default: the stored one) and validate it for the server's mode, the
    stored aliases (``default`` relays forged local senders) and the declared outside sites.

    Every stored string is checked too (control characters, column sizes), so a table that
    could not be written, or written differently on SQLite and PostgreSQL, has errors.
    """
    table = relay_table() if table is None else table
    server = ServerSettings.load() if server is None else server
    safe = sanitize_table(table)
    rendered = render_table(safe)
    findings = [
        *table_field_findings(table, rendered),
        *validate_rules(
            rendered.effect,
            gateway_mode=server.is_gateway,
            aliases=stored_aliases() if aliases is None else aliases,
            outside_sites=outside_site_lines(safe, rendered),
            outside_site_limit=server.outside_site_limit,
        ),
    ]
    return RelayReport(table, rendered, sort_findings(findings))


@transaction.atomic
def relay_table_save(
    *,
    table: Table,
    version: int,
    user: AbstractBaseUser | AnonymousUser | None = None,
    typed: bool = False,
) -> RelayReport:
    """Replace the whole table in one transaction if nobody saved since ``version``.

    Raises RelayTableRefused when the table has errors (other than policy risks the stored
    table already has) and StaleTableError on a concurrent save; in both cases nothing is
    written and the exception carries the check's report. ``typed``: the table comes from
    the editor, so a non-ASCII comment it does not already hold is refused (``relay.E046``);
    a rollback restores exported comments as they were.
    """
    from controlcenter import policycache  # it builds on this module

    inputs = policycache.relay_inputs()
    report = relay_check(table)
    before = _read_table()  # no share lock here: two savers holding one would deadlock
    comments = _comment_findings(table, report.rendered, before) if typed else []
    if comments:
        report = dataclasses.replace(report, findings=sort_findings([*report.findings, *comments]))
    if report.has_errors:
        refused = _new_errors(report, _report_of(before))
        if refused:
            raise RelayTableRefused(report, refused)
    _lock_policy()
    bumped = RelayPolicy.objects.filter(pk=1, version=version).update(version=version + 1)
    if not bumped:
        raise StaleTableError(report)
    before = relay_table()
    _store_table(table, user, before)
    audit_relay_table(action=AuditAction.RELAY_SAVE, before=before, after=table, user=user)
    policycache.remember_relay_report(report, inputs)
    return report


def _report_of(table: Table) -> RelayReport:
    """``relay_check(table)`` for the stored table: the one kept for the current state."""
    from controlcenter import policycache  # it builds on this module

    kept = policycache.relay_report()
    return kept if kept.table == table else relay_check(table)


def _new_errors(report: RelayReport, stored: RelayReport) -> list[Finding]:
    """The errors of ``report`` that block a save: every error that is not a policy risk,
    and the policy risks the stored table does not have already (the same code on a line of
    the same text), so an imported risky table can be edited but never made riskier."""
    texts = report.rendered.lines
    old_texts = stored.rendered.lines

    def key(finding: Finding, lines: tuple[str, ...]) -> tuple[str, str | None]:
        text = lines[finding.line - 1] if finding.line and finding.line <= len(lines) else None
        return finding.code, text

    allowed = Counter(key(f, old_texts) for f in stored.findings if is_policy_risk(f))
    refused: list[Finding] = []
    for finding in report.findings:
        if not finding.is_error:
            continue
        if is_policy_risk(finding) and allowed[key(finding, texts)] > 0:
            allowed[key(finding, texts)] -= 1
            continue
        refused.append(finding)
    return refused


def _comment_findings(table: Table, rendered: RenderedTable, before: Table) -> list[Finding]:
    """``relay.E046`` for a non-ASCII comment the stored table does not hold: the daemon's
    file is ASCII, and comments imported from the server's own file stay as they are."""
    kept = {row.comment for row in before.rows} | {row.text for row in before.rows}
    found = []
    for number, (text, owner) in enumerate(zip(rendered.lines, rendered.owners, strict=True), 1):
        if owner.part is not Part.ROW or text.isascii() or not text.startswith(("'", " ")):
            continue
        row = table.rows[owner.index]
        if row.comment in kept if row.kind is RowKind.RULE else row.text in kept:
            continue
        found.append(
            make(
                Level.ERROR,
                "relay.E046",
                _(
                    "The comment on line %(number)s contains non-ASCII characters: the "
                    "daemon's effect.dat is an ASCII file, so it cannot be written as typed."
                ),
                line=number,
                hint=_("Write the comment in English or romaji (half-width characters)."),
                number=number,
            )
        )
    return found


_UNREADABLE = frozenset({"relay.E040", "relay.E041", "relay.E042"})


def relay_import_preview(*, data: bytes = b"", text: str | None = None) -> ImportReport:
    """Read an existing effect.dat: uploaded ``data`` is decoded (ASCII, else CP932); pasted
    ``text`` is taken as it is. Nothing is stored."""
    if text is None:
        text, read_findings = read_effect_bytes(data)
        pasted = False
    else:
        text, read_findings = clean_effect_text(text)
        data, pasted = text.encode("utf-8"), True
    effect = parse_effect(text)
    table, table_findings = table_from_effect(effect)
    server = ServerSettings.load()
    file_findings = validate_rules(
        effect,
        gateway_mode=server.is_gateway,
        aliases=stored_aliases(),
        outside_site_limit=server.outside_site_limit,
    )
    # A control character is shown as its picture, which is not ASCII: say what it is, once.
    shown = {f.line for f in read_findings if f.code in _UNREADABLE}
    file_findings = [
        f for f in file_findings if not (f.code in ("relay.E010", "relay.E021") and f.line in shown)
    ]
    return ImportReport(
        relay_check(table, server=server),
        sort_findings([*read_findings, *table_findings, *file_findings]),
        data,
        pasted,
        tuple(line.text for line in effect.lines),
    )


_IMPORT_SALT = "relaypolicy.import"
IMPORT_TOKEN_MAX_AGE = 3600  # seconds a preview stays confirmable


def relay_import_token(preview: ImportReport) -> str:
    """A signed token carrying the previewed bytes and the table version they replace."""
    payload = {
        "data": base64.b64encode(preview.data).decode("ascii"),
        "pasted": preview.pasted,
        "version": _version(),
    }
    return signing.dumps(payload, salt=_IMPORT_SALT, compress=True)


def relay_import_confirm(
    *, token: str, user: AbstractBaseUser | AnonymousUser | None = None
) -> ImportReport:
    """Import exactly the previewed bytes, unless the table changed or the token is bad or old."""
    try:
        payload = signing.loads(token, salt=_IMPORT_SALT, max_age=IMPORT_TOKEN_MAX_AGE)
        data = base64.b64decode(payload["data"], validate=True)
        pasted = bool(payload.get("pasted", False))
    except (signing.BadSignature, KeyError, TypeError, ValueError, binascii.Error):
        raise StaleImportError from None
    text = data.decode("utf-8" if pasted else "cp932", errors="replace")
    with transaction.atomic():
        _lock_policy()
        if not RelayPolicy.objects.filter(pk=1, version=payload["version"]).exists():
            raise StaleImportError(text)
        return relay_rules_import(data=data, text=text if pasted else None, replace=True, user=user)


def _version() -> int:
    return int(RelayPolicy.load().version)


@transaction.atomic
def relay_rules_import(
    *,
    data: bytes = b"",
    text: str | None = None,
    replace: bool,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> ImportReport:
    """Replace the table by an existing effect.dat, keeping every line (cli.md import_effect).

    Unlike the editor, an import is not refused for policy risks (an open relay, a missing
    final line): the file is what the daemon runs today, so it is stored, its risks are
    reported, and the export stays blocked until they are fixed. A malformed line (one the
    daemon cannot read as written, a control character, an over-long field) refuses the whole
    import with :class:`RelayImportRefused`; nothing is written.
    """
    preview = relay_import_preview(data=data, text=text)
    if not replace and RelayRule.objects.exists():
        raise RelayRulesExistError
    if not preview.confirmable:
        raise RelayImportRefused(preview)
    _lock_policy()
    RelayPolicy.objects.filter(pk=1).update(version=F("version") + 1)
    before = relay_table()
    _store_table(preview.report.table, user)
    audit_relay_table(
        action=AuditAction.RELAY_IMPORT, before=before, after=preview.report.table, user=user
    )
    return preview


def _lock_policy() -> None:
    """Take the export's lock (the settings row) before the relay row, in the export's order:
    an export then never renders a table that changes under it, and the two cannot deadlock."""
    ServerSettings.objects.select_for_update().get(pk=1)


def _store_table(
    table: Table, user: AbstractBaseUser | AnonymousUser | None, before: Table | None = None
) -> None:
    """Write ``table`` over the stored one (``before``, read under the same lock): only the
    rows between the unchanged beginning and the unchanged end are rewritten, so saving one
    page of a table of thousands of rows writes that page, not the table."""
    policy = RelayPolicy.objects.select_for_update().get(pk=1)
    header = (*table.header, "", "")
    policy.header_null, policy.header_blank = header[0], header[1]
    policy.terminator = table.terminator
    policy.terminator_pattern = table.terminator_pattern
    policy.updated_by = user if user is not None and user.is_authenticated else None  # type: ignore[assignment]
    policy.save()
    old = before.rows if before is not None else ()
    new = table.rows
    same_start = 0
    limit = min(len(old), len(new))
    while same_start < limit and old[same_start] == new[same_start]:
        same_start += 1
    same_end = 0
    while same_end < limit - same_start and old[-1 - same_end] == new[-1 - same_end]:
        same_end += 1
    numbered = RelayRule.objects.aggregate(low=Min("position"), high=Max("position"), n=Count("pk"))
    contiguous = numbered["n"] == len(old) and (
        not old or (numbered["low"], numbered["high"]) == (1, len(old))
    )
    if before is None or not contiguous:  # rewrite everything
        same_start = same_end = 0
        RelayRule.objects.all().delete()
    else:
        # Positions are 1-based: rewrite old same_start+1 .. len(old)-same_end.
        RelayRule.objects.filter(
            position__gt=same_start, position__lte=len(old) - same_end
        ).delete()
        shift = len(new) - len(old)
        if shift and same_end:
            tail = RelayRule.objects.filter(position__gt=len(old) - same_end)
            tail.update(position=F("position") + shift)
    RelayRule.objects.bulk_create(
        RelayRule(
            position=position,
            kind=row.kind.value,
            pattern=row.pattern,
            modifier=row.modifier,
            comment=row.comment,
            text=row.text,
            outside_site=row.outside_site,
            outside_site_note=row.site_note,
        )
        for position, row in enumerate(new[same_start : len(new) - same_end], start=same_start + 1)
    )


@dataclass(frozen=True)
class EffectFileView:
    """effect.dat exactly as the next export writes it (before any ``<IP> false`` lines the
    daemon appended are carried over): the bytes, their text, and the check of the table."""

    data: bytes
    lines: tuple[str, ...]
    report: RelayReport


def next_export_number() -> int:
    from controlcenter.models import Export  # the exporter imports this module

    return (Export.objects.aggregate(last=Max("number"))["last"] or 0) + 1


def relay_effect_file(number: int | None = None) -> EffectFileView:
    """The bytes テキスト表示 shows and downloads: the export's rendering and encoding, with
    the banner of export ``number`` (default: the next one)."""
    from controlcenter import publishing  # the exporter imports this module

    table = relay_table()
    server = ServerSettings.load()
    report = relay_check(table, server=server)
    number = next_export_number() if number is None else number
    text = publishing.render_effect_dat(
        sanitize_table(table), export_number=number, newline=server.newline
    )
    data = publishing.encode_file(publishing.EFFECT, text)
    shown = publishing.decode_file(publishing.EFFECT, data)
    return EffectFileView(data, tuple(shown.splitlines()), report)


DEMO_ROWS = (Row(RowKind.RULE, pattern="192.168.1.0/24", modifier="default", comment="LAN"),)


def demo_load() -> list[str]:
    """The vendor's hardened gateway for the demo LAN, unless rules were already entered."""
    if RelayRule.objects.exists():
        return [f"relay rules: {RelayRule.objects.count()} row(s) kept as they are"]
    policy = RelayPolicy.load()
    table = Table(rows=DEMO_ROWS)
    relay_table_save(table=table, version=policy.version)
    return ["relay rules: the hardened example for 192.168.1.0/24 (norelay terminator)"]
