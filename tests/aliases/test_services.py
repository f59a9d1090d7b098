from __future__ import annotations

import pytest

from aliases import services
from aliases.models import Alias, LocalDomain
from controlcenter.models import ServerSettings
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


def test_import_refuses_to_exceed_the_licence(domain: LocalDomain) -> None:
    make_licence("50", accounts=45)
    rows = [f"u{i}@{DOMAIN},u{i}@inner.jp" for i in range(6)]
    report = services.aliases_import_csv(
        data=csv_bytes(*rows), encoding="auto", add_domains=False, dry_run=False
    )
    assert [(f.line, f.code) for f in report.errors] == [(None, "alias.E007")]
    assert Alias.objects.count() == 0


def test_import_wildcard_without_norelay_is_an_error_on_its_line(domain: LocalDomain) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    report = services.aliases_import_csv(
        data=csv_bytes(f"a@{DOMAIN},a@inner.jp", f"*@{DOMAIN},*@inner.jp"),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    assert [(f.line, f.code) for f in report.errors] == [(3, "alias.E006")]
    assert Alias.objects.count() == 0


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
        with pytest.raises(services.UploadNotFound):
            services.upload_confirm(token=upload.token[:-1] + "0", user=user)
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
