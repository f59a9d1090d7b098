from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.db import transaction
from django.db.models import F

from aliases import aliasfile
from aliases.models import Alias as AliasModel
from controlcenter.audit import AuditAction, audit_relay_table
from controlcenter.findings import Finding, has_errors, sort_findings
from controlcenter.models import ServerSettings
from relaypolicy.effectfile import decode_effect, parse_effect
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
from relaypolicy.validation import validate_rules


class RelayTableNotSaved(Exception):
    """Nothing was written; ``report`` is the table's check, to show on the rows."""

    def __init__(self, report: RelayReport) -> None:
        super().__init__(report)
        self.report = report


class StaleTableError(RelayTableNotSaved):
    """Someone saved the table after the editor loaded it; nothing was written."""


class RelayTableRefused(RelayTableNotSaved, ValueError):
    """The table has error-level findings; nothing was written."""


class RelayRulesExistError(Exception):
    """An import without ``replace`` found rules already stored."""


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


def relay_table() -> Table:
    """The stored table: header, rows in order, terminator."""
    policy = RelayPolicy.load()
    return Table(
        header=policy.header,
        rows=tuple(rule.as_row() for rule in RelayRule.objects.all()),
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


def relay_check(
    table: Table | None = None,
    *,
    server: ServerSettings | None = None,
    aliases: Sequence[aliasfile.Alias] | None = None,
) -> RelayReport:
    """Render ``table`` (default: the stored one) and validate it for the server's mode, the
    stored aliases (``default`` relays forged local senders) and the declared outside sites."""
    table = relay_table() if table is None else table
    server = ServerSettings.load() if server is None else server
    rendered = render_table(table)
    findings = validate_rules(
        rendered.effect,
        gateway_mode=server.is_gateway,
        aliases=stored_aliases() if aliases is None else aliases,
        outside_sites=outside_site_lines(table, rendered),
        outside_site_limit=server.outside_site_limit,
    )
    return RelayReport(table, rendered, sort_findings(findings))


@transaction.atomic
def relay_table_save(
    *, table: Table, version: int, user: AbstractBaseUser | AnonymousUser | None = None
) -> RelayReport:
    """Replace the whole table in one transaction if nobody saved since ``version``.

    Raises RelayTableRefused when the table has errors and StaleTableError on a concurrent
    save; in both cases nothing is written and the exception carries the check's report.
    """
    report = relay_check(table)
    if report.has_errors:
        raise RelayTableRefused(report)
    _lock_policy()
    bumped = RelayPolicy.objects.filter(pk=1, version=version).update(version=version + 1)
    if not bumped:
        raise StaleTableError(report)
    before = relay_table()
    _store_table(table, user)
    audit_relay_table(action=AuditAction.RELAY_SAVE, before=before, after=table, user=user)
    return report


def relay_import_preview(*, data: bytes) -> ImportReport:
    """Decode and parse an existing effect.dat; nothing is stored."""
    text, decode_findings = decode_effect(data)
    effect = parse_effect(text)
    table, table_findings = table_from_effect(effect)
    server = ServerSettings.load()
    file_findings = validate_rules(
        effect,
        gateway_mode=server.is_gateway,
        aliases=stored_aliases(),
        outside_site_limit=server.outside_site_limit,
    )
    return ImportReport(
        relay_check(table, server=server),
        sort_findings([*decode_findings, *table_findings, *file_findings]),
        data,
    )


_IMPORT_SALT = "relaypolicy.import"
IMPORT_TOKEN_MAX_AGE = 3600  # seconds a preview stays confirmable


def relay_import_token(preview: ImportReport) -> str:
    """A signed token carrying the previewed bytes and the table version they replace."""
    payload = {"data": base64.b64encode(preview.data).decode("ascii"), "version": _version()}
    return signing.dumps(payload, salt=_IMPORT_SALT, compress=True)


def relay_import_confirm(
    *, token: str, user: AbstractBaseUser | AnonymousUser | None = None
) -> ImportReport:
    """Import exactly the previewed bytes, unless the table changed or the token is bad or old."""
    try:
        payload = signing.loads(token, salt=_IMPORT_SALT, max_age=IMPORT_TOKEN_MAX_AGE)
        data = base64.b64decode(payload["data"], validate=True)
    except (signing.BadSignature, KeyError, TypeError, ValueError, binascii.Error):
        raise StaleImportError from None
    text = data.decode("utf-8", errors="replace")
    with transaction.atomic():
        _lock_policy()
        if not RelayPolicy.objects.filter(pk=1, version=payload["version"]).exists():
            raise StaleImportError(text)
        return relay_rules_import(data=data, replace=True, user=user)


def _version() -> int:
    return int(RelayPolicy.load().version)


@transaction.atomic
def relay_rules_import(
    *, data: bytes, replace: bool, user: AbstractBaseUser | AnonymousUser | None = None
) -> ImportReport:
    """Replace the table by an existing effect.dat, keeping every line (cli.md import_effect).

    Unlike the editor, an import is not refused for findings: the file is what the daemon runs
    today, so it is taken as it is and its problems are reported, never dropped.
    """
    preview = relay_import_preview(data=data)
    if not replace and RelayRule.objects.exists():
        raise RelayRulesExistError
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


def _store_table(table: Table, user: AbstractBaseUser | AnonymousUser | None) -> None:
    policy = RelayPolicy.objects.select_for_update().get(pk=1)
    header = (*table.header, "", "")
    policy.header_null, policy.header_blank = header[0], header[1]
    policy.terminator = table.terminator
    policy.terminator_pattern = table.terminator_pattern
    policy.updated_by = user if user is not None and user.is_authenticated else None  # type: ignore[assignment]
    policy.save()
    RelayRule.objects.all().delete()
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
        for position, row in enumerate(table.rows, start=1)
    )


DEMO_ROWS = (Row(RowKind.RULE, pattern="192.168.1.0/24", modifier="default", comment="LAN"),)


def demo_load() -> list[str]:
    """The vendor's hardened gateway for the demo LAN, unless rules were already entered."""
    if RelayRule.objects.exists():
        return [f"relay rules: {RelayRule.objects.count()} row(s) kept as they are"]
    policy = RelayPolicy.load()
    table = Table(rows=DEMO_ROWS)
    relay_table_save(table=table, version=policy.version)
    return ["relay rules: the hardened example for 192.168.1.0/24 (norelay terminator)"]
