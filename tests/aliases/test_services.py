from __future__ import annotations

import codecs
import csv
import io
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import gettext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliases import importing, services
from aliases.aliasfile import Alias as Entry
from aliases.aliasfile import AliasCsvReader
from aliases.models import Alias, AliasUpload, LocalDomain
from controlcenter.findings import sort_findings
from controlcenter.models import AuditEntry, ServerSettings
from controlcenter.services import policy_lint
from relaypolicy.models import RelayPolicy

pytestmark = pytest.mark.django_db

DOMAIN = "example.co.jp"


@pytest.fixture
def domain() -> LocalDomain:
    make_licence()
    return LocalDomain.objects.create(name=DOMAIN)


def make_licence(licence: str = "unlimited", accounts: int = 1) -> None:
    server = ServerSettings.load()
    server.licence, server.accounts = licence, accounts
    server.save()


def csv_bytes(*rows: str, header: bool = True) -> bytes:
    lines = (["alias,mapped_to,comment"] if header else []) + list(rows)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def stored() -> list[tuple[str, str, str, str]]:
    return list(Alias.objects.values_list("pattern", "target", "option", "comment"))


def test_import_creates_updates_and_keeps_unchanged(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp", comment="old")
    services.alias_create(pattern=f"b@{DOMAIN}", target="b@inner.jp")
    data = csv_bytes(
        f"A@{DOMAIN},a@inner.jp,new", f"b@{DOMAIN},b@inner.jp,", f'c@{DOMAIN},"c@inner.jp,0",'
    )
    report = services.aliases_import_csv(
        data=data, encoding="auto", add_domains=False, dry_run=False
    )
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    assert report.errors == []
    assert report.written is True
    assert stored() == [
        (f"a@{DOMAIN}", "a@inner.jp", "", "new"),
        (f"b@{DOMAIN}", "b@inner.jp", "", ""),
        (f"c@{DOMAIN}", "c@inner.jp", "0", ""),
    ]
    assert [(row.line, row.status) for row in report.rows] == [
        (2, "updated"),
        (3, "unchanged"),
        (4, "created"),
    ]


def test_import_error_on_last_of_10000_rows_writes_nothing(domain: LocalDomain) -> None:
    rows = [f"u{i}@{DOMAIN},u{i}@inner.jp" for i in range(9999)] + ["broken,u@inner.jp"]
    report = services.aliases_import_csv(
        data=csv_bytes(*rows), encoding="auto", add_domains=False, dry_run=False
    )
    assert [(f.line, f.code) for f in report.errors] == [(10001, "csv.E006")]
    assert report.written is False
    assert Alias.objects.count() == 0


def test_import_dry_run_writes_nothing(domain: LocalDomain) -> None:
    report = services.aliases_import_csv(
        data=csv_bytes(f"x@{DOMAIN},x@inner.jp"), encoding="auto", add_domains=False, dry_run=True
    )
    assert (report.created, report.written, Alias.objects.count()) == (1, False, 0)


def test_import_unknown_domain_is_an_error_without_add_domains() -> None:
    report = services.aliases_import_csv(
        data=csv_bytes("x@new.example.jp,x@inner.jp"),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    assert [(f.line, f.code) for f in report.errors] == [(2, "csv.E010")]
    assert LocalDomain.objects.count() == 0


def test_import_add_domains_registers_missing_domains() -> None:
    report = services.aliases_import_csv(
        data=csv_bytes("x@new.example.jp,x@inner.jp", "y@Other.example.jp,y@inner.jp"),
        encoding="auto",
        add_domains=True,
        dry_run=False,
    )
    assert report.domains_added == ("new.example.jp", "other.example.jp")
    assert sorted(LocalDomain.objects.values_list("name", flat=True)) == [
        "new.example.jp",
        "other.example.jp",
    ]
    assert Alias.objects.get(pattern="y@Other.example.jp").domain.name == "other.example.jp"


def test_import_over_the_licence_is_stored_as_a_policy_risk(domain: LocalDomain) -> None:
    make_licence("50", accounts=45)
    rows = [f"u{i}@{DOMAIN},u{i}@inner.jp" for i in range(6)]
    report = services.aliases_import_csv(
        data=csv_bytes(*rows), encoding="auto", add_domains=False, dry_run=False
    )
    assert [(f.line, f.code) for f in report.errors] == [(None, "alias.E007")]
    assert [(f.line, f.code) for f in report.risks] == [(None, "alias.E007")]
    assert (report.written, report.refused) == (True, False)
    assert Alias.objects.count() == 6
    assert report.as_dict()["policy_risks"] == [
        {"line": None, "code": "alias.E007", "message": report.risks[0].render(gettext)}
    ]


def test_import_wildcard_without_norelay_is_stored_with_the_error_on_its_line(
    domain: LocalDomain,
) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    report = services.aliases_import_csv(
        data=csv_bytes(f"a@{DOMAIN},a@inner.jp", f"*@{DOMAIN},*@{DOMAIN}"),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    assert [(f.line, f.code) for f in report.errors] == [(3, "alias.E006")]
    assert [(f.line, f.code) for f in report.risks] == [(3, "alias.E006")]
    assert report.written is True
    assert list(Alias.objects.values_list("pattern", "target")) == [
        (f"a@{DOMAIN}", "a@inner.jp"),
        (f"*@{DOMAIN}", f"*@{DOMAIN}"),
    ]
    assert "alias.E006" in {f.code for f in policy_lint() if f.is_error}


def test_import_with_a_malformed_row_and_a_risk_writes_nothing(domain: LocalDomain) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    report = services.aliases_import_csv(
        data=csv_bytes(f"*@{DOMAIN},*@inner.jp", "not an address,a@inner.jp"),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    assert report.refused is True
    assert "alias.E006" in {f.code for f in report.risks}
    assert (report.written, Alias.objects.count()) == (False, 0)


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (f"a@{DOMAIN},a@inner.jp," + "c" * 256, "csv.E040"),
        (f"a@{DOMAIN}," + "t" * 321 + "@inner.jp", "csv.E007"),  # the parser's own check
    ],
)
def test_import_refuses_a_field_longer_than_its_column_on_every_database(
    domain: LocalDomain, row: str, code: str
) -> None:
    report = services.aliases_import_csv(
        data=csv_bytes(row), encoding="auto", add_domains=False, dry_run=False
    )
    assert [f.code for f in report.blocking if f.line == 2] == [code]
    assert (report.written, Alias.objects.count()) == (False, 0)


def test_a_255_character_comment_is_stored(domain: LocalDomain) -> None:
    report = services.aliases_import_csv(
        data=csv_bytes(f"a@{DOMAIN},a@inner.jp," + "c" * 255),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    assert report.written is True
    assert len(Alias.objects.get().comment) == 255


def test_import_warns_about_alias_shadowed_by_earlier_wildcard(domain: LocalDomain) -> None:
    make_licence()
    services.alias_create(pattern=f"2009*@{DOMAIN}", target="2009*@inner.jp")
    report = services.aliases_import_csv(
        data=csv_bytes(f"2009abe@{DOMAIN},abe@inner.jp"),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    assert [(f.line, f.code) for f in report.warnings] == [(2, "alias.W002")]
    assert dict(report.warnings[0].params)["earlier_row"] == 1
    assert report.rows[0].status == "warning"
    assert report.written is True


def test_import_appends_new_aliases_after_the_stored_ones(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"z@{DOMAIN}", target="z@inner.jp")
    services.aliases_import_csv(
        data=csv_bytes(f"b@{DOMAIN},b@inner.jp", f"a@{DOMAIN},a@inner.jp", header=False),
        encoding="utf-8",
        add_domains=False,
        dry_run=False,
    )
    assert [a.pattern for a in Alias.objects.order_by("position")] == [
        f"z@{DOMAIN}",
        f"b@{DOMAIN}",
        f"a@{DOMAIN}",
    ]


def test_create_refuses_unmanaged_domain() -> None:
    with pytest.raises(services.AliasRefused) as refused:
        services.alias_create(pattern="a@nowhere.example.jp", target="a@inner.jp")
    assert [f.code for f in refused.value.findings] == ["alias.E003"]


def test_create_refuses_duplicate_case_insensitively(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp")
    with pytest.raises(services.AliasRefused) as refused:
        services.alias_create(pattern=f"A@{DOMAIN.upper()}", target="b@inner.jp")
    assert [(f.code, dict(f.params)["first_row"]) for f in refused.value.findings] == [
        ("alias.E004", 1)
    ]


def test_create_refuses_open_relay_wildcard_in_gateway_mode(domain: LocalDomain) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    with pytest.raises(services.AliasRefused) as refused:
        services.alias_create(pattern=f"*@{DOMAIN}", target="*@inner.jp")
    assert [f.code for f in refused.value.findings] == ["alias.E006"]
    assert "relays everything" in refused.value.findings[0].render()


def test_create_with_norelay_wildcard_saves_with_a_warning(domain: LocalDomain) -> None:
    report = services.alias_create(pattern=f"*@{DOMAIN}", target="*@inner.jp")
    assert [f.code for f in report.warnings] == ["alias.W001"]
    assert Alias.objects.count() == 1


def test_create_refuses_beyond_the_licence(domain: LocalDomain) -> None:
    make_licence("50", accounts=50)
    with pytest.raises(services.AliasRefused) as refused:
        services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp")
    assert [f.code for f in refused.value.findings] == ["alias.E007"]
    assert Alias.objects.count() == 0


def test_update_keeps_position_and_refuses_errors(domain: LocalDomain) -> None:
    first = services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp").alias
    services.alias_create(pattern=f"b@{DOMAIN}", target="b@inner.jp")
    services.alias_update(alias=first, pattern=f"c@{DOMAIN}", target="c@inner.jp", option="1")
    assert stored()[0] == (f"c@{DOMAIN}", "c@inner.jp", "1", "")
    with pytest.raises(services.AliasRefused) as refused:
        services.alias_update(alias=first, pattern=f"b@{DOMAIN}", target="x@inner.jp")
    assert [f.code for f in refused.value.findings] == ["alias.E004"]


def test_move_up_and_down_swaps_neighbours(domain: LocalDomain) -> None:
    a = services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp").alias
    b = services.alias_create(pattern=f"b@{DOMAIN}", target="b@inner.jp").alias
    assert services.alias_move(alias=b, direction="up") is True
    assert [x.pattern for x in Alias.objects.all()] == [f"b@{DOMAIN}", f"a@{DOMAIN}"]
    b.refresh_from_db()
    assert services.alias_move(alias=b, direction="up") is False
    a.refresh_from_db()
    assert services.alias_move(alias=a, direction="down") is False


def test_bulk_delete_counts(domain: LocalDomain) -> None:
    ids = [
        services.alias_create(pattern=f"{n}@{DOMAIN}", target="x@inner.jp").alias.pk for n in "abc"
    ]
    assert services.aliases_delete(ids=ids[:2]) == 2
    assert [a.pattern for a in Alias.objects.all()] == [f"c@{DOMAIN}"]


def test_domain_delete_refused_while_aliases_use_it(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp")
    with pytest.raises(services.DomainInUse):
        services.domain_delete(domain=domain)
    Alias.objects.all().delete()
    services.domain_delete(domain=domain)
    assert LocalDomain.objects.count() == 0


def test_domain_create_lower_cases_and_refuses_duplicates() -> None:
    from django.core.exceptions import ValidationError

    assert services.domain_create(name=" Example.CO.jp ").name == DOMAIN
    with pytest.raises(ValidationError) as error:
        services.domain_create(name=DOMAIN)
    assert error.value.code == "duplicate"
    with pytest.raises(ValidationError) as error:
        services.domain_create(name="*.example.jp")
    assert error.value.code == "invalid_domain"


def test_domain_error_names_the_domain_not_the_probe_address() -> None:
    with pytest.raises(ValidationError) as error:
        services.domain_create(name="domain.jp.")
    assert error.value.code == "invalid_domain"
    assert error.value.messages == ["domain.jp. のドメインがドットで終わっています"]


def test_alias_check_reports_shadowing_by_row(domain: LocalDomain) -> None:
    make_licence()
    services.alias_create(pattern=f"2009*@{DOMAIN}", target="2009*@inner.jp")
    services.alias_create(pattern=f"2009abe@{DOMAIN}", target="abe@inner.jp")
    validation = services.alias_check()
    assert [f.code for f in validation.by_position[1]] == ["alias.W002"]
    assert [f.code for f in validation.findings] == ["alias.I001", "alias.I002", "alias.W002"]


def test_alias_check_sees_changes_made_outside_the_services(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp")
    assert services.alias_check().findings == []
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    Alias.objects.update(pattern=f"*@{DOMAIN}", target="*@inner.jp")
    ServerSettings.objects.filter(pk=1).update(accounts=2)  # any settings change
    assert [f.code for f in services.alias_check().findings] == ["alias.E006", "alias.I002"]


def test_export_csv_has_bom_and_reimports_unchanged(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp", option="0", comment="=SUM(1)")
    data = services.aliases_export_csv(Alias.objects.all())
    assert data == (
        b'\xef\xbb\xbfalias,mapped_to,comment\r\na@example.co.jp,"a@inner.jp,0",\'=SUM(1)\r\n'
    )
    report = services.aliases_import_csv(
        data=data, encoding="auto", add_domains=False, dry_run=False
    )
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)


def test_demo_load_is_idempotent() -> None:
    first = services.demo_load()
    assert first == ["domain: example.co.jp (added)", "aliases: 11 added, 0 present"]
    assert services.demo_load() == [
        "domain: example.co.jp (present)",
        "aliases: 0 added, 11 present",
    ]
    assert (
        Alias.objects.filter(
            pattern="yamada@example.co.jp", target="yamada@mail.example.co.jp"
        ).count()
        == 1
    )
    assert Alias.objects.filter(pattern="2009*@example.co.jp").count() == 1


class TestUploadGuard:
    def test_confirm_imports_the_stored_bytes(self, domain: LocalDomain, django_user_model) -> None:
        user = django_user_model.objects.create_user("u", password="x")
        upload = services.upload_store(
            user=user,
            data=csv_bytes(f"a@{DOMAIN},a@inner.jp"),
            filename="a.csv",
            encoding="auto",
            add_domains=False,
        )
        report = services.upload_confirm(token=upload.token, user=user)
        assert (report.created, report.written) == (1, True)

    def test_tampered_token_is_refused(self, domain: LocalDomain, django_user_model) -> None:
        user = django_user_model.objects.create_user("u", password="x")
        upload = services.upload_store(
            user=user,
            data=csv_bytes(f"a@{DOMAIN},a@inner.jp"),
            filename="a.csv",
            encoding="auto",
            add_domains=False,
        )
        flipped = "1" if upload.token.endswith("0") else "0"  # never the same token
        with pytest.raises(services.UploadNotFound):
            services.upload_confirm(token=upload.token[:-1] + flipped, user=user)
        other = django_user_model.objects.create_user("v", password="x")
        with pytest.raises(services.UploadNotFound):
            services.upload_confirm(token=upload.token, user=other)
        assert Alias.objects.count() == 0

    def test_tampered_stored_bytes_are_refused(
        self, domain: LocalDomain, django_user_model
    ) -> None:
        user = django_user_model.objects.create_user("u", password="x")
        upload = services.upload_store(
            user=user,
            data=csv_bytes(f"a@{DOMAIN},a@inner.jp"),
            filename="a.csv",
            encoding="auto",
            add_domains=False,
        )
        type(upload).objects.filter(pk=upload.pk).update(data=b"evil")
        with pytest.raises(services.UploadNotFound):
            services.upload_confirm(token=upload.token, user=user)

    def test_change_since_preview_is_refused(self, domain: LocalDomain, django_user_model) -> None:
        user = django_user_model.objects.create_user("u", password="x")
        upload = services.upload_store(
            user=user,
            data=csv_bytes(f"a@{DOMAIN},a@inner.jp"),
            filename="a.csv",
            encoding="auto",
            add_domains=False,
        )
        services.alias_create(pattern=f"b@{DOMAIN}", target="b@inner.jp")
        with pytest.raises(services.StaleImportError):
            services.upload_confirm(token=upload.token, user=user)
        assert [a.pattern for a in Alias.objects.all()] == [f"b@{DOMAIN}"]


# --- locking, atomicity and the audit trail of the write services ---------------------------

WRITES = {
    "alias_create": [("alias.create", f"c@{DOMAIN}")],
    "alias_update": [("alias.update", f"a@{DOMAIN}")],
    "aliases_delete": [("alias.delete", f"a@{DOMAIN}")],
    "aliases_delete_bulk": [("alias.delete", f"a@{DOMAIN}, b@{DOMAIN}")],
    "alias_move": [("alias.move", f"a@{DOMAIN}")],
    "domain_create": [("domain.create", "new.example.jp")],
    "domain_delete": [("domain.delete", "spare.example.jp")],
    "aliases_import_csv": [("alias.import", "aliases.csv")],
    "upload_confirm": [("alias.import", "aliases.csv")],
}


def prepare_write(name: str, user: Any) -> Callable[[], object]:
    """Store what the write ``name`` needs and return the call, ready to run."""
    a = services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp").alias
    b = services.alias_create(pattern=f"b@{DOMAIN}", target="b@inner.jp").alias
    spare = LocalDomain.objects.create(name="spare.example.jp")
    new_csv = csv_bytes(f"c@{DOMAIN},c@inner.jp")
    upload = services.upload_store(
        user=user, data=new_csv, filename="c.csv", encoding="auto", add_domains=False
    )
    calls: dict[str, Callable[[], object]] = {
        "alias_create": lambda: services.alias_create(pattern=f"c@{DOMAIN}", target="c@inner.jp"),
        "alias_update": lambda: services.alias_update(
            alias=a, pattern=a.pattern, target="new@inner.jp"
        ),
        "aliases_delete": lambda: services.aliases_delete(ids=[a.pk]),
        "aliases_delete_bulk": lambda: services.aliases_delete(ids=[a.pk, b.pk]),
        "alias_move": lambda: services.alias_move(alias=a, direction="down"),
        "domain_create": lambda: services.domain_create(name="new.example.jp"),
        "domain_delete": lambda: services.domain_delete(domain=spare),
        "aliases_import_csv": lambda: services.aliases_import_csv(
            data=new_csv, encoding="auto", add_domains=False, dry_run=False
        ),
        "upload_confirm": lambda: services.upload_confirm(token=upload.token, user=user),
    }
    return calls[name]


@pytest.mark.parametrize("name", [*WRITES, "demo_load"])
def test_every_alias_write_first_locks_the_settings_row_in_its_transaction(
    name: str, domain: LocalDomain, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("u", password="x")
    call = services.demo_load if name == "demo_load" else prepare_write(name, user)
    outer = len(connection.savepoint_ids)
    executed: list[tuple[str, tuple[Any, ...], int]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            executed.append((sql, tuple(params or ()), len(connection.savepoint_ids)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        call()

    sql, params, depth = executed[0]
    table = '"controlcenter_serversettings"'
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    assert sql.endswith(f'FROM {table} WHERE {table}."id" = %s LIMIT 21{lock}')
    assert (params, depth) == ((1,), outer + 1)


@pytest.mark.parametrize(("name", "expected"), WRITES.items())
def test_every_alias_write_records_its_audit_entry(
    name: str, expected: list[tuple[str, str]], domain: LocalDomain, django_user_model: Any
) -> None:
    call = prepare_write(name, django_user_model.objects.create_user("u", password="x"))
    known = list(AuditEntry.objects.values_list("pk", flat=True))

    call()

    assert (
        list(
            AuditEntry.objects.exclude(pk__in=known).order_by("pk").values_list("action", "target")
        )
        == expected
    )


def test_import_dry_run_takes_no_lock_and_records_nothing(domain: LocalDomain) -> None:
    known = AuditEntry.objects.count()
    with CaptureQueriesContext(connection) as queries:
        services.aliases_import_csv(
            data=csv_bytes(f"x@{DOMAIN},x@inner.jp"),
            encoding="auto",
            add_domains=False,
            dry_run=True,
        )
    assert [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]] == []
    assert AuditEntry.objects.count() == known


def test_domain_create_turns_a_concurrent_duplicate_into_the_validation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services.domain_create(name=DOMAIN)
    with pytest.raises(ValidationError) as checked:
        services.domain_create(name=DOMAIN)
    audited = AuditEntry.objects.count()
    # Another writer inserted the name between the check and the INSERT.
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)

    with pytest.raises(ValidationError) as raced:
        services.domain_create(name=DOMAIN)

    assert (raced.value.code, raced.value.messages) == ("duplicate", checked.value.messages)
    assert list(LocalDomain.objects.values_list("name", flat=True)) == [DOMAIN]
    assert AuditEntry.objects.count() == audited


def test_domain_create_writes_nothing_when_its_audit_entry_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_audit(**kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "audit_record", broken_audit)

    with pytest.raises(RuntimeError, match="audit log unavailable"):
        services.domain_create(name=DOMAIN)
    assert LocalDomain.objects.count() == 0


def test_update_of_a_stale_instance_keeps_the_current_position(domain: LocalDomain) -> None:
    a = services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp").alias
    b = services.alias_create(pattern=f"b@{DOMAIN}", target="b@inner.jp").alias
    stale = Alias.objects.get(pk=a.pk)
    services.alias_move(alias=a, direction="down")

    services.alias_update(alias=stale, pattern=stale.pattern, target="new@inner.jp")

    assert list(Alias.objects.order_by("position").values_list("pk", "position", "target")) == [
        (b.pk, 1, "b@inner.jp"),
        (a.pk, 2, "new@inner.jp"),
    ]


def test_move_of_a_stale_instance_moves_from_the_current_position(domain: LocalDomain) -> None:
    a = services.alias_create(pattern=f"a@{DOMAIN}", target="a@inner.jp").alias
    b = services.alias_create(pattern=f"b@{DOMAIN}", target="b@inner.jp").alias
    stale = Alias.objects.get(pk=a.pk)
    services.alias_move(alias=a, direction="down")

    assert services.alias_move(alias=stale, direction="down") is False
    assert list(Alias.objects.order_by("position").values_list("pk", "position")) == [
        (b.pk, 1),
        (a.pk, 2),
    ]


def race_two_creates(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Create first@ and second@ in two threads, second@ starting while first@ sits between
    its checks and its INSERT; each result is the new position or the refusal's codes."""
    inside = threading.Event()
    check_one = services._check_one

    def slow_check(entry: Entry, *, replacing: int | None) -> object:
        found = check_one(entry, replacing=replacing)
        if entry.pattern.startswith("first@"):
            inside.set()
            time.sleep(0.5)  # without the lock, second@ passes its checks meanwhile
        return found

    monkeypatch.setattr(services, "_check_one", slow_check)
    results: dict[str, object] = {}

    def create(local: str) -> None:
        try:
            alias = services.alias_create(pattern=f"{local}@{DOMAIN}", target="x@inner.jp").alias
            results[local] = alias.position
        except services.AliasRefused as refused:
            results[local] = [f.code for f in refused.findings]
        finally:
            connection.close()

    first = threading.Thread(target=create, args=("first",))
    first.start()
    assert inside.wait(timeout=10)
    second = threading.Thread(target=create, args=("second",))
    second.start()
    first.join(timeout=30)
    second.join(timeout=30)
    return results


needs_row_locks = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has no row locks; CI runs this on PostgreSQL"
)


@needs_row_locks
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_are_serialised_in_arrival_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_licence()
    LocalDomain.objects.create(name=DOMAIN)

    assert race_two_creates(monkeypatch) == {"first": 1, "second": 2}


@needs_row_locks
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_cannot_both_take_the_last_licence_seat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_licence("50", accounts=1)
    LocalDomain.objects.create(name=DOMAIN)
    rows = [f"u{i}@{DOMAIN},u{i}@inner.jp" for i in range(48)]  # 1 account + 48: one seat left
    services.aliases_import_csv(
        data=csv_bytes(*rows), encoding="auto", add_domains=False, dry_run=False
    )

    assert race_two_creates(monkeypatch) == {"first": 49, "second": ["alias.E007"]}
    assert Alias.objects.count() == 49


# --- the upload page ------------------------------------------------------------------------


def test_upload_preview_shows_rows_with_findings_first_up_to_the_limit(
    domain: LocalDomain, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("u", password="x")
    data = csv_bytes(*[f"u{i}@{DOMAIN},u{i}@inner.jp" for i in range(3)], "broken,x@inner.jp")
    upload = services.upload_store(
        user=user, data=data, filename="a.csv", encoding="auto", add_domains=False
    )

    preview = services.upload_preview(token=upload.token, user=user, limit=2)

    assert preview.upload == upload
    assert [(row.line, row.status) for row in preview.rows] == [(2, "created"), (5, "error")]
    assert preview.hidden == 2
    assert (preview.report.created, preview.report.written) == (3, False)


def test_upload_findings_csv_is_excel_ready_and_formula_safe(
    domain: LocalDomain, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("u", password="x")
    data = csv_bytes(
        f"ok@{DOMAIN},ok@inner.jp", "=HYPERLINK(x),x@inner.jp", f"ｙ＠{DOMAIN},y@inner.jp"
    )
    upload = services.upload_store(
        user=user, data=data, filename="a.csv", encoding="auto", add_domains=False
    )
    error, warning = services.aliases_import_csv(
        data=data, encoding="auto", add_domains=False, dry_run=True
    ).findings

    out = services.upload_findings_csv(token=upload.token, user=user)

    assert out.startswith(codecs.BOM_UTF8)
    assert out.count(b"\r\n") == 3
    assert list(csv.reader(io.StringIO(out[3:].decode("utf-8"), newline=""))) == [
        ["line", "level", "code", "message"],
        ["3", "error", "csv.E006", "'" + error.render(gettext)],
        ["4", "warning", "csv.W001", warning.render(gettext)],
    ]
    assert error.render(gettext).startswith("=HYPERLINK(x)")
    with pytest.raises(services.UploadNotFound):
        services.upload_findings_csv(token=upload.token[::-1], user=user)


# --- the list screen's overview -------------------------------------------------------------

overview_row = st.tuples(
    st.sampled_from(["a", "Ab", "2009", "2009x", "x-sales", "*", "20*", "*-sales", "a*b"]),
    st.sampled_from([DOMAIN, "Example.CO.jp", "other.jp", "gone.jp"]),
    st.sampled_from(["t@inner.jp", "*@inner.jp", "t-*@inner.jp"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(overview_row, max_size=12),
    mode=st.sampled_from(["gateway", "mailserver", "both"]),
    terminator=st.sampled_from(["", "norelay"]),
    licence=st.sampled_from(["unlimited", "50"]),
    accounts=st.sampled_from([0, 1, 46]),
    limit=st.integers(1, 6),
)
def test_alias_overview_reports_what_alias_check_does(
    rows, mode, terminator, licence, accounts, limit
) -> None:
    Alias.objects.all().delete()
    LocalDomain.objects.all().delete()
    domains = {
        name: LocalDomain.objects.create(name=name) for name in (DOMAIN, "other.jp", "gone.jp")
    }
    entries = {
        Entry(f"{local}@{domain}", target).key: (local, domain, target)
        for local, domain, target in rows
    }
    Alias.objects.bulk_create(
        Alias(
            position=10 * n,
            pattern=f"{local}@{domain}",
            key=key,
            target=target,
            domain=domains[domain.lower()],
        )
        for n, (key, (local, domain, target)) in enumerate(entries.items())
    )
    # Renamed around the services: its aliases are no longer in a local domain (alias.E003).
    LocalDomain.objects.filter(name="gone.jp").update(name="renamed.jp")
    ServerSettings.objects.filter(pk=1).update(mode=mode, licence=licence, accounts=accounts)
    RelayPolicy.objects.filter(pk=1).update(terminator=terminator)
    services._memo.clear()

    check = services.alias_check()
    overview = services.alias_overview(limit=limit)

    ids = list(Alias.objects.order_by("position").values_list("id", flat=True))
    assert overview.row_by_id == {alias_id: row for row, alias_id in enumerate(ids)}
    assert [overview.findings_for(alias_id) for alias_id in ids] == [
        check.by_position.get(row, ()) for row in range(len(ids))
    ]
    everything = sort_findings(check.findings)
    assert list(overview.summary) == everything[:limit]
    assert (overview.total, overview.usage) == (len(everything), check.usage)


def test_alias_overview_names_rows_shadowed_beyond_the_summary(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"*@{DOMAIN}", target="*@inner.jp")
    for n in range(5):
        services.alias_create(pattern=f"u{n}@{DOMAIN}", target="u@inner.jp")

    overview = services.alias_overview(limit=3)

    last = Alias.objects.get(pattern=f"u4@{DOMAIN}")
    assert [(f.code, f.render()) for f in overview.findings_for(last.pk)] == [
        (
            "alias.W002",
            f"u4@{DOMAIN} is never used: the earlier wildcard *@{DOMAIN} on row 1 already "
            "matches every address it would",
        )
    ]
    assert [(f.code, f.obj) for f in overview.summary] == [
        ("alias.W001", f"alias:*@{DOMAIN}"),
        ("alias.W002", f"alias:u0@{DOMAIN}"),
        ("alias.W002", f"alias:u1@{DOMAIN}"),
    ]
    assert overview.total == 7  # W001 + I002 on the wildcard, W002 on each of the five


def test_single_alias_writes_number_rows_of_the_whole_table(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"2009*@{DOMAIN}", target="2009*@inner.jp")
    Alias.objects.bulk_create(
        Alias(
            position=10 + n,
            pattern=f"u{n}@{DOMAIN}",
            key=f"u{n}@{DOMAIN}",
            target="t@inner.jp",
            domain=domain,
        )
        for n in range(20_000)
    )
    report = services.alias_create(pattern=f"2009abe@{DOMAIN}", target="abe@inner.jp")
    with pytest.raises(services.AliasRefused) as refused:
        services.alias_update(alias=report.alias, pattern=f"U7@{DOMAIN}", target="x@inner.jp")

    assert [f.code for f in report.findings] == ["alias.W002"]
    assert [(f.code, dict(f.params)["first_row"]) for f in refused.value.findings] == [
        ("alias.E004", 9)
    ]


# --- stored uploads: quota, refused files, expiry ------------------------------------------


def receive(user: Any, data: bytes, name: str = "a.csv") -> services.UploadPreview:
    return services.upload_receive(
        user=user, file=io.BytesIO(data), filename=name, encoding="auto", add_domains=False
    )


def test_upload_with_errors_keeps_only_its_findings_report(
    domain: LocalDomain, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("u", password="x")

    preview = receive(user, csv_bytes(f"ok@{DOMAIN},ok@inner.jp", "broken,x@inner.jp"))

    stored = AliasUpload.objects.get()
    assert (stored.refused, bytes(stored.data), stored.size) == (
        True,
        b"",
        len(bytes(stored.findings_csv)),
    )
    assert [(r.line, r.status) for r in preview.rows] == [(2, "created"), (3, "error")]
    with pytest.raises(services.UploadNotFound):
        services.upload_confirm(token=stored.token, user=user)
    report = services.upload_findings_csv(token=stored.token, user=user)
    assert report.decode("utf-8-sig").splitlines()[1].startswith("3,error,csv.E006,")
    assert Alias.objects.count() == 0


def test_upload_quota_lets_the_oldest_previews_of_that_user_go(
    domain: LocalDomain, django_user_model: Any, settings: Any
) -> None:
    user = django_user_model.objects.create_user("u", password="x")
    other = django_user_model.objects.create_user("v", password="x")
    data = csv_bytes(f"a@{DOMAIN},a@inner.jp")
    settings.CC_UPLOAD_QUOTA_BYTES = 2 * len(data)
    theirs = receive(other, data).upload
    first, second, third = (receive(user, data, f"{n}.csv").upload for n in range(3))

    assert set(AliasUpload.objects.values_list("pk", flat=True)) == {
        theirs.pk,
        second.pk,
        third.pk,
    }
    with pytest.raises(services.UploadNotFound):
        services.upload_preview(token=first.token, user=user)
    assert services.upload_preview(token=second.token, user=user).report.created == 1


def test_upload_keeps_at_most_five_previews_per_user(
    domain: LocalDomain, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("u", password="x")
    data = csv_bytes(f"a@{DOMAIN},a@inner.jp")
    uploads = [receive(user, data).upload for _ in range(7)]

    assert list(AliasUpload.objects.order_by("pk").values_list("pk", flat=True)) == [
        upload.pk for upload in uploads[2:]
    ]


def test_expired_uploads_are_cleaned_on_the_next_upload(
    domain: LocalDomain, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("u", password="x")
    old = receive(user, csv_bytes(f"a@{DOMAIN},a@inner.jp")).upload
    AliasUpload.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - services.UPLOAD_LIFETIME - timedelta(seconds=1)
    )

    new = receive(user, csv_bytes(f"b@{DOMAIN},b@inner.jp")).upload

    assert list(AliasUpload.objects.values_list("pk", flat=True)) == [new.pk]
    assert services.uploads_clean() == 0


def test_import_report_counts_findings_past_the_limit_and_keeps_the_first(
    domain: LocalDomain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "FINDINGS_LIMIT", 3)
    data = csv_bytes(*[f"bad{i},x@inner.jp" for i in range(10)], f"ok@{DOMAIN},ok@inner.jp")

    report = services.aliases_import_csv(
        data=data, encoding="auto", add_domains=False, dry_run=False, preview_limit=4
    )

    assert (report.error_count, report.findings_omitted, report.written) == (10, 7, False)
    assert [f.line for f in report.findings] == [2, 3, 4]
    assert [(r.line, r.status) for r in report.rows] == [
        (2, "error"),
        (3, "error"),
        (4, "error"),
        (12, "created"),
    ]
    assert (report.rows_total, report.rows_hidden) == (11, 7)
    assert Alias.objects.count() == 0


def test_import_rolls_back_rows_written_before_a_late_error(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"keep@{DOMAIN}", target="old@inner.jp")
    rows = [f"u{i}@{DOMAIN},u{i}@inner.jp" for i in range(5000)]
    data = csv_bytes(f"keep@{DOMAIN},new@inner.jp", *rows, "broken,x@inner.jp")

    report = services.aliases_import_csv(
        data=data, encoding="auto", add_domains=True, dry_run=False
    )

    assert (report.created, report.updated, report.written) == (5000, 1, False)
    assert stored() == [(f"keep@{DOMAIN}", "old@inner.jp", "", "")]
    assert list(LocalDomain.objects.values_list("name", flat=True)) == [DOMAIN]


# --- the list: search and pages --------------------------------------------------------------


def make_rows(count: int, *, target: str = "inner.jp") -> None:
    services.aliases_import_csv(
        data=csv_bytes(*[f"u{i:04d}@{DOMAIN},u{i:04d}@{target}" for i in range(count)]),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )


def test_search_matches_alias_or_real_address_case_insensitively(domain: LocalDomain) -> None:
    make_rows(3)
    services.alias_create(pattern=f"Sales@{DOMAIN}", target="team@Other.jp")

    def found(query: str) -> list[str]:
        return [a.pattern for a in services.alias_search(query=query)]

    assert found("SALES") == [f"Sales@{DOMAIN}"]
    assert found("other.JP") == [f"Sales@{DOMAIN}"]
    assert found("u0001") == [f"u0001@{DOMAIN}"]
    assert found("u00\n01") == [f"u0001@{DOMAIN}"]
    assert found("%") == []
    assert found("jp\nteam") == []
    assert len(found("")) == 4


def test_page_counts_exactly_up_to_the_threshold(domain: LocalDomain) -> None:
    make_rows(12)

    page = services.alias_page(
        services.alias_search(query="u00"), number=3, per_page=5, scope=services.alias_search()
    )

    assert (page.count, page.exact, page.number, page.num_pages) == (12, True, 3, 3)
    assert [a.pattern for a in page.aliases] == [f"u{i:04d}@{DOMAIN}" for i in (10, 11)]


def test_page_number_is_clamped_to_the_pages_there_are(domain: LocalDomain) -> None:
    make_rows(12)

    cases: list[tuple[str | int, int]] = [(99, 3), (0, 1), ("x", 1)]
    for number, expected in cases:
        page = services.alias_page(services.alias_search(), number=number, per_page=5)
        assert (page.number, page.count, page.exact) == (expected, 12, True)


def test_page_estimates_the_count_past_the_threshold(
    domain: LocalDomain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "SEARCH_EXACT_COUNT", 4)
    services.aliases_import_csv(
        data=csv_bytes(
            *[f"u{i:04d}@{DOMAIN},u{i:04d}@{'hit' if i % 2 else 'miss'}.jp" for i in range(40)]
        ),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    search = services.alias_search(query="hit")

    first = services.alias_page(search, number=1, per_page=3, scope=services.alias_search())
    last = services.alias_page(search, number=7, per_page=3, scope=services.alias_search())
    beyond = services.alias_page(search, number=50, per_page=3, scope=services.alias_search())

    # 5 hits within the first 10 rows: about 5 per 10 of the 40 rows.
    assert (first.count, first.exact, first.number) == (20, False, 1)
    assert [a.pattern for a in first.aliases] == [f"u{i:04d}@{DOMAIN}" for i in (1, 3, 5)]
    assert (last.count, last.exact, len(last.aliases)) == (20, True, 2)
    assert (beyond.count, beyond.exact, beyond.number) == (20, True, 7)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram index exists on PostgreSQL only"
)
def test_search_uses_the_trigram_index_on_postgresql(domain: LocalDomain) -> None:
    make_rows(3)
    sql, params = services.alias_search(query="u0001")[:50].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")  # not the position index + filter
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "aliases_alias_search_trgm" in plan


def search_index_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [importing.SEARCH_INDEX])
        return cursor.fetchone() is not None


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram index exists on PostgreSQL only"
)
@pytest.mark.parametrize("late_error", [False, True])
def test_large_import_rebuilds_the_search_index_or_keeps_it_when_refused(
    domain: LocalDomain, monkeypatch: pytest.MonkeyPatch, late_error: bool
) -> None:
    monkeypatch.setattr(importing, "REBUILD_INDEX_ROWS", 5)
    monkeypatch.setattr(importing, "BATCH", 4)
    rows = [f"u{i:04d}@{DOMAIN},u{i:04d}@inner.jp" for i in range(30)]
    assert search_index_exists()

    report = services.aliases_import_csv(
        data=csv_bytes(*rows, *(["broken,x@inner.jp"] if late_error else [])),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )

    assert (report.written, Alias.objects.count()) == (not late_error, 0 if late_error else 30)
    assert search_index_exists()
    assert [a.pattern for a in services.alias_search(query="U0029")] == (
        [] if late_error else [f"u0029@{DOMAIN}"]
    )


# --- an alias may not open a relay through the stored relay table -----------------------------


def _relay_table(tmp_path: Any, *rules: str) -> None:
    from django.core.management import call_command

    path = tmp_path / "effect.dat"
    path.write_text("\n".join(["#<> default", "#blank false", *rules, "*.*.*.* norelay", ""]))
    call_command("import_effect", str(path), "--replace", verbosity=0)


def test_the_first_alias_is_refused_when_a_default_line_reaches_the_internet(
    domain: LocalDomain, tmp_path: Any
) -> None:
    # Harmless while no alias exists: nobody is a local sender yet.
    _relay_table(tmp_path, "0.0.0.0/1 default")

    with pytest.raises(services.AliasRefused) as refused:
        services.alias_create(pattern=f"taro@{DOMAIN}", target="taro@inner.example.jp")

    assert [(f.code, f.line) for f in refused.value.findings] == [("relay.E016", 4)]
    assert Alias.objects.count() == 0


def test_a_sender_line_applying_default_refuses_the_alias_that_makes_it_local(
    domain: LocalDomain, tmp_path: Any
) -> None:
    services.alias_create(pattern=f"hanako@{DOMAIN}", target="hanako@inner.example.jp")
    _relay_table(tmp_path, f"boss@{DOMAIN} default")

    with pytest.raises(services.AliasRefused) as refused:
        services.alias_create(pattern=f"boss@{DOMAIN}", target="boss@inner.example.jp")

    assert [f.code for f in refused.value.findings] == ["relay.E017"]
    assert Alias.objects.count() == 1


def test_a_risk_the_server_already_has_does_not_block_other_aliases(
    domain: LocalDomain, tmp_path: Any
) -> None:
    # Imported as the server has it: the open relay is shown and blocks 設定の反映 ...
    services.alias_create(pattern=f"hanako@{DOMAIN}", target="hanako@inner.example.jp")
    _relay_table(tmp_path, "0.0.0.0/1 default")
    assert "relay.E016" in {f.code for f in policy_lint() if f.is_error}

    # ... but adding one more alias opens nothing new.
    report = services.alias_create(pattern=f"taro@{DOMAIN}", target="taro@inner.example.jp")

    assert report.created is True


# --- a large import sets indexes and constraints aside -------------------------------------------


def table_schema() -> list[str]:
    """The definitions of every index and constraint of the alias table."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid = 'aliases_alias'::regclass UNION ALL "
                "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'aliases_alias'::regclass"
            )
        else:
            cursor.execute(
                "SELECT coalesce(sql, name) FROM sqlite_master "
                "WHERE tbl_name = 'aliases_alias' AND type != 'table'"
            )
        return sorted(str(sql) for (sql,) in cursor.fetchall())


@pytest.fixture
def small_bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of 5 new rows or more take the bulk path, in batches of 4."""
    monkeypatch.setattr(importing, "REBUILD_INDEX_ROWS", 5)
    monkeypatch.setattr(importing, "BATCH", 4)


@pytest.mark.usefixtures("small_bulk")
def test_large_import_builds_every_index_and_constraint_again(domain: LocalDomain) -> None:
    services.alias_create(pattern=f"keep@{DOMAIN}", target="old@inner.jp")
    before = table_schema()
    rows = [f"u{i:02d}@{DOMAIN},u{i:02d}@inner.jp,c{i}" for i in range(30)]

    report = services.aliases_import_csv(
        data=csv_bytes(f"KEEP@{DOMAIN},new@inner.jp", *rows, f"x@{DOMAIN},x@inner.jp"),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )

    assert (report.created, report.updated, report.written) == (31, 1, True)
    assert table_schema() == before
    assert stored()[:2] == [
        (f"keep@{DOMAIN}", "new@inner.jp", "", ""),
        (f"u00@{DOMAIN}", "u00@inner.jp", "", "c0"),
    ]
    assert list(Alias.objects.values_list("position", flat=True)) == list(range(1, 33))


@pytest.mark.usefixtures("small_bulk")
def test_large_import_refused_late_keeps_the_table_and_its_indexes(domain: LocalDomain) -> None:
    before = table_schema()
    rows = [f"u{i:02d}@{DOMAIN},u{i:02d}@inner.jp" for i in range(30)]

    report = services.aliases_import_csv(
        data=csv_bytes(*rows, "broken,x@inner.jp"),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )

    assert (report.created, report.written, report.blocking_count) == (30, False, 1)
    assert (table_schema(), Alias.objects.count()) == (before, 0)


@pytest.mark.usefixtures("small_bulk")
def test_large_import_keeps_comments_with_tabs_backslashes_and_line_breaks(
    domain: LocalDomain,
) -> None:
    comments = ["a\tb", "c:\\share\\d", "two\r\nlines", "\\N", "全角　空白"]
    rows = [f'u{i}@{DOMAIN},u{i}@inner.jp,"{c}"' for i, c in enumerate(comments * 2)]

    report = services.aliases_import_csv(
        data=csv_bytes(*rows), encoding="auto", add_domains=False, dry_run=False
    )

    assert report.written is True
    assert [c for _p, _t, _o, c in stored()] == comments * 2


@pytest.mark.usefixtures("small_bulk")
def test_large_import_adds_domains_on_the_way(domain: LocalDomain) -> None:
    rows = [f"u{i:02d}@{DOMAIN},u{i:02d}@inner.jp" for i in range(10)]
    rows += [f"v{i:02d}@new{i % 3}.example.jp,v@inner.jp" for i in range(10)]

    report = services.aliases_import_csv(
        data=csv_bytes(*rows), encoding="auto", add_domains=True, dry_run=False
    )

    assert (report.created, report.written) == (20, True)
    assert report.domains_added == ("new0.example.jp", "new1.example.jp", "new2.example.jp")
    assert Alias.objects.filter(domain__name="new1.example.jp").count() == 3


def test_alias_writes_each_count_a_revision_the_import_included(domain: LocalDomain) -> None:
    before = ServerSettings.load().alias_revision

    services.aliases_import_csv(
        data=csv_bytes(f"a@{DOMAIN},a@inner.jp"), encoding="auto", add_domains=False, dry_run=False
    )
    services.aliases_import_csv(
        data=csv_bytes(f"b@{DOMAIN},b@inner.jp"), encoding="auto", add_domains=False, dry_run=True
    )

    assert ServerSettings.load().alias_revision == before + 1


def test_import_into_a_large_table_sets_indexes_aside_half_way(
    domain: LocalDomain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "REBUILD_INDEX_ROWS", 2)
    monkeypatch.setattr(importing, "BATCH", 2)
    make_rows(12)  # a third of the table is 4 rows: more than the 2 held first
    before = table_schema()
    rows = [f"n{i:02d}@{DOMAIN},n{i:02d}@inner.jp" for i in range(9)]

    report = services.aliases_import_csv(
        data=csv_bytes(*rows), encoding="auto", add_domains=False, dry_run=False
    )

    assert (report.created, report.written) == (9, True)
    assert table_schema() == before
    assert [p for p, _t, _o, _c in stored()][11:] == [f"u0011@{DOMAIN}"] + [
        f"n{i:02d}@{DOMAIN}" for i in range(9)
    ]


@pytest.mark.usefixtures("small_bulk")
def test_an_exception_half_way_through_an_import_writes_nothing(
    domain: LocalDomain, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = table_schema()
    records = AliasCsvReader.records

    def failing(self: AliasCsvReader) -> Any:
        for number, record in enumerate(records(self)):
            if number == 25:
                raise RuntimeError("disk gone")
            yield record

    monkeypatch.setattr(AliasCsvReader, "records", failing)
    rows = [f"u{i:02d}@{DOMAIN},u{i:02d}@inner.jp" for i in range(30)]

    with pytest.raises(RuntimeError, match="disk gone"):
        services.aliases_import_csv(
            data=csv_bytes(*rows), encoding="auto", add_domains=False, dry_run=False
        )

    assert (table_schema(), Alias.objects.count()) == (before, 0)
    assert Alias.objects.filter(pattern__startswith="x").count() == 0  # the connection works
