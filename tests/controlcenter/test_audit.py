"""変更履歴: what is recorded, from where, and that nothing can change it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import translation
from pytest_django.asserts import assertContains, assertNotContains

from controlcenter import services
from controlcenter.audit import COMMAND_LINE, AuditAction, audit_context, audit_record
from controlcenter.audit import entry_summary as audit_summary
from controlcenter.models import AppendOnlyError, AuditEntry
from controlcenter.roles import Role
from relaypolicy.models import RelayPolicy
from relaypolicy.services import relay_table_save
from relaypolicy.table import Row, RowKind, Table
from tests.conftest import PASSWORD
from tests.controlcenter.test_access import PRIVATE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site_language_afterwards() -> Iterator[None]:
    """Requests in English leave English active in this thread; later tests expect ja."""
    yield
    translation.deactivate()


@pytest.fixture
def entry() -> AuditEntry:
    return audit_record(action=AuditAction.SETTINGS_CHANGE, target="settings", summary="x")


# --- append-only ------------------------------------------------------------------------------


def test_an_entry_cannot_be_changed_or_deleted_through_the_orm(entry: AuditEntry) -> None:
    entry.summary = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(summary="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError), transaction.atomic():
        AuditEntry.objects.bulk_update([entry], ["summary"])
    assert AuditEntry.objects.get().summary == "x"


def test_admin_shows_the_log_read_only(entry: AuditEntry, administrator_client: Client) -> None:
    base = "/admin/controlcenter/auditentry/"
    assert administrator_client.get(base).status_code == 200
    assert administrator_client.get(f"{base}{entry.pk}/change/").status_code == 200
    assert (
        administrator_client.post(f"{base}{entry.pk}/change/", {"summary": "y"}).status_code == 403
    )
    assert administrator_client.get(f"{base}{entry.pk}/delete/").status_code == 403
    assert (
        administrator_client.post(f"{base}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert administrator_client.get(f"{base}add/").status_code == 403
    response = administrator_client.post(
        base, {"action": "delete_selected", "_selected_action": [entry.pk]}
    )
    assert response.status_code in (200, 302)
    assert AuditEntry.objects.get(pk=entry.pk).summary == "x"


def test_no_page_changes_an_existing_entry(
    entry: AuditEntry, make_user: Callable[..., User]
) -> None:
    before = list(AuditEntry.objects.values())
    user = make_user(username="boss", role=Role.ADMINISTRATOR)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    for page in PRIVATE:
        if page.name == "logout":
            continue
        client.post(page.path.replace("/1/", f"/{entry.pk}/"), {"summary": "rewritten"})
    client.get(f"/system/audit/?user={entry.actor_name}")
    assert list(AuditEntry.objects.filter(pk__in=[row["id"] for row in before]).values()) == before


def test_viewers_read_the_log_but_nobody_has_a_write_permission(
    make_user: Callable[..., User],
) -> None:
    for role in Role:
        user = make_user(username=f"u-{role.value}", role=role)
        assert user.has_perm("controlcenter.view_auditentry")
        assert user.has_perm("controlcenter.view_export")
        for codename in ("add", "change", "delete"):
            assert not user.has_perm(f"controlcenter.{codename}_auditentry")
            assert not user.has_perm(f"controlcenter.{codename}_export")


# --- what is recorded --------------------------------------------------------------------------


def test_login_success_and_failure_are_recorded_with_the_peer_address(
    make_user: Callable[..., User],
) -> None:
    make_user(username="alice", role=Role.VIEWER)
    client = Client(REMOTE_ADDR="192.0.2.40", HTTP_X_FORWARDED_FOR="10.9.9.9")
    client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    rows = list(
        AuditEntry.objects.order_by("pk").values_list(
            "action", "actor_kind", "actor_name", "target", "source_ip"
        )
    )
    assert rows[-2:] == [
        ("login_failed", "anonymous", "", "alice", "192.0.2.40"),
        ("login", "user", "alice", "alice", "192.0.2.40"),
    ]


def test_trusted_proxy_address_is_believed(
    make_user: Callable[..., User], settings: object
) -> None:
    settings.CC_TRUSTED_PROXIES = ["127.0.0.1"]  # type: ignore[attr-defined]
    make_user(username="alice", role=Role.VIEWER)
    client = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.50")
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert AuditEntry.objects.get(action=AuditAction.LOGIN).source_ip == "203.0.113.50"


def test_relay_save_records_actor_address_and_a_line_diff(make_user: Callable[..., User]) -> None:
    user = make_user(username="ed")
    with audit_context(user=user, source_ip="192.0.2.41"):
        relay_table_save(
            table=Table(rows=(Row(RowKind.RULE, pattern="192.168.1.0/24", modifier="default"),)),
            version=RelayPolicy.load().version,
            user=user,
        )
    entry = AuditEntry.objects.get(action=AuditAction.RELAY_SAVE)
    assert (entry.actor, entry.actor_name, entry.source_ip) == (user, "ed", "192.0.2.41")
    assert entry.diff.splitlines() == [
        "--- before",
        "+++ after",
        "@@ -1,3 +1,4 @@",
        " #<> default",
        " #blank false",
        "+192.168.1.0/24 default",
        " *.*.*.* norelay",
    ]


def test_settings_change_through_the_page_is_recorded(administrator_client: Client) -> None:
    from controlcenter.forms import ServerSettingsForm
    from controlcenter.models import ServerSettings

    server = ServerSettings.load()
    data = {name: getattr(server, name) for name in ServerSettingsForm.Meta.fields}
    data["accounts"] = 3
    response = administrator_client.post("/system/settings/", data, REMOTE_ADDR="192.0.2.42")
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action=AuditAction.SETTINGS_CHANGE)
    assert (entry.summary, entry.source_ip) == ("accounts", "192.0.2.42")
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["accounts"], entry.after["accounts"]) == (1, 3)


def test_user_changes_are_recorded_without_passwords(make_user: Callable[..., User]) -> None:
    user = make_user(username="carol", role=Role.VIEWER)
    services.user_update(user=user, role=Role.EDITOR, is_active=True, email="c@example.jp")
    services.user_set_password(user=user, password="another-long-password-9")
    rows = list(
        AuditEntry.objects.filter(target="carol")
        .order_by("pk")
        .values_list("action", "actor_name", "before", "after")
    )
    assert [row[0] for row in rows] == ["user.create", "user.update", "user.password"]
    assert rows[0][1] == COMMAND_LINE
    assert rows[1][2]["role"] == "viewer"
    assert rows[1][3]["role"] == "editor"
    assert rows[2][2:] == (None, None)
    assert all("password" not in (row[3] or {}) for row in rows)


# --- the page ----------------------------------------------------------------------------------


def test_audit_page_filters_by_user_action_and_date(viewer_client: Client) -> None:
    audit_record(action=AuditAction.ALIAS_CREATE, target="a@x.jp", actor_name="dave", actor=None)
    audit_record(action=AuditAction.EXPORT, target="#9", actor_name="erin", actor=None)
    old = AuditEntry.objects.create(
        created_at=datetime(2024, 1, 1, 15, 30, tzinfo=UTC), action="login", actor_name="dave"
    )
    response = viewer_client.get("/system/audit/", {"user": "dave"})
    assertContains(response, "a@x.jp")
    assertNotContains(response, "#9")
    response = viewer_client.get("/system/audit/", {"action": "config.export"})
    assertContains(response, "#9")
    assertNotContains(response, "a@x.jp")
    # 2024-01-01 15:30 UTC is 2024-01-02 00:30 in Japan.
    response = viewer_client.get(
        "/system/audit/", {"date_from": "2024-01-02", "date_to": "2024-01-02"}
    )
    assert [e.pk for e in response.context["object_list"]] == [old.pk]
    assertContains(response, "2024-01-02 00:30</td>")  # one date format: 2026-12-02 19:49


def test_audit_filter_keeps_users_whose_names_differ_in_case_apart(
    viewer_client: Client, make_user: Callable[..., User]
) -> None:
    # "Admin" wrote entries before user names became unique regardless of case (the
    # migration renamed that login); "admin" is today's user.
    audit_record(action=AuditAction.ALIAS_CREATE, target="old@x.jp", actor_name="Admin", actor=None)
    admin = make_user(username="admin", role=Role.ADMINISTRATOR)
    audit_record(action=AuditAction.ALIAS_CREATE, target="new@x.jp", actor=admin)
    for typed in ("admin", "ADMIN"):
        response = viewer_client.get("/system/audit/", {"user": typed, "action": "alias.create"})
        assert [e.target for e in response.context["object_list"]] == ["new@x.jp"]
    response = viewer_client.get("/system/audit/", {"user": "Admin", "action": "alias.create"})
    assert [e.target for e in response.context["object_list"]] == ["new@x.jp"]
    response = viewer_client.get("/system/audit/", {"user": "nobody"})
    assert list(response.context["object_list"]) == []


def test_audit_csv_is_utf8_with_bom_in_japan_time(viewer_client: Client) -> None:
    AuditEntry.objects.create(
        created_at=datetime(2024, 1, 1, 15, 30, tzinfo=UTC),
        action="alias.create",
        actor_name="山田",
        target="=cmd|' /C calc'!A0",
        source_ip="192.0.2.5",
    )
    response = viewer_client.get("/system/audit/csv/", {"user": "山田"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.decode("utf-8-sig").splitlines() == [
        "日時 (日本時間),ユーザー,接続元IPアドレス,操作,対象,概要,変更内容",
        "2024-01-02 00:30:00,山田,192.0.2.5,エイリアスの追加,'=cmd|' /C calc'!A0,,",
    ]
    assert response.content.startswith(b"\xef\xbb\xbf")


def test_command_line_actor_is_stored_as_a_marker_and_shown_translated(
    viewer_client: Client,
) -> None:
    # viewer_client's user was created outside a request: by the command line, too.
    entry = audit_record(action=AuditAction.SETTINGS_CHANGE, target="settings")
    # as migration 0006 marks the rows written before actor_kind existed
    legacy = AuditEntry.objects.create(
        action="login", actor_name="(command line)", actor_kind="command_line", target="old"
    )
    assert (entry.actor, entry.actor_name) == (None, "")
    created = AuditEntry.objects.get(action=AuditAction.USER_CREATE)
    response = viewer_client.get("/system/audit/")
    assertContains(response, "<td>(コマンドライン)</td>", count=3)
    response = viewer_client.get("/system/audit/", {"user": "(コマンドライン)"})
    assert [e.pk for e in response.context["object_list"]] == [legacy.pk, entry.pk, created.pk]
    query = {"action": "settings.change"}
    rows = viewer_client.get("/system/audit/csv/", query).content.decode("utf-8-sig").splitlines()
    assert [row.split(",")[1] for row in rows] == ["ユーザー", "(コマンドライン)"]
    viewer_client.post("/i18n/setlang/", {"language": "en"})
    rows = viewer_client.get("/system/audit/csv/", query).content.decode("utf-8-sig").splitlines()
    assert [row.split(",")[1] for row in rows] == ["User", "(command line)"]


def test_audit_pages_refuse_post(viewer_client: Client) -> None:
    assert viewer_client.post("/system/audit/").status_code == 405
    assert viewer_client.post("/system/audit/csv/").status_code == 405


def test_alias_and_domain_changes_are_recorded() -> None:
    from aliases import services as alias_services

    domain = alias_services.domain_create(name="example.co.jp")
    report = alias_services.alias_create(
        pattern="sales@example.co.jp", target="team@inner.example.co.jp"
    )
    alias_services.aliases_delete(ids=[report.alias.pk])
    alias_services.domain_delete(domain=domain)
    rows = list(
        AuditEntry.objects.order_by("pk").values_list("action", "target", "before", "after")
    )
    expected_alias = {
        "position": 1,
        "pattern": "sales@example.co.jp",
        "target": "team@inner.example.co.jp",
        "comment": "",
    }
    assert rows == [
        ("domain.create", "example.co.jp", None, ""),
        ("alias.create", "sales@example.co.jp", None, expected_alias),
        ("alias.delete", "sales@example.co.jp", [expected_alias], None),
        ("domain.delete", "example.co.jp", "", None),
    ]


# --- actor kind --------------------------------------------------------------------------------


def test_a_failed_login_named_like_the_command_line_shows_as_not_signed_in(
    viewer_client: Client,
) -> None:
    Client(REMOTE_ADDR="192.0.2.41").post(
        "/accounts/login/", {"username": "(command line)", "password": "wrong"}
    )
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN_FAILED)
    assert (entry.actor_id, entry.actor_kind, entry.actor_name, entry.target) == (
        None,
        "anonymous",
        "",
        "(command line)",
    )
    assert (entry.is_command_line, entry.actor_display) == (False, "(未ログイン)")
    response = viewer_client.get("/system/audit/", {"user": "(command line)"})
    assert entry not in response.context["object_list"]
    viewer_client.post("/i18n/setlang/", {"language": "en"})
    query = {"action": "login_failed"}
    rows = viewer_client.get("/system/audit/csv/", query).content.decode("utf-8-sig").splitlines()
    assert [row.split(",")[1] for row in rows] == ["User", "(not signed in)"]


def test_deleting_a_user_leaves_the_audit_rows_untouched(make_user: Callable[..., User]) -> None:
    carol = make_user(username="carol", role=Role.EDITOR)
    entry = audit_record(action=AuditAction.ALIAS_CREATE, target="a@x.jp", actor=carol)
    carol_id = carol.pk
    carol.delete()
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert (entry.actor_id, entry.actor_kind, entry.actor_display) == (carol_id, "user", "carol")


def test_migration_0006_marks_the_existing_rows() -> None:
    from importlib import import_module

    from django.apps import apps

    migration = import_module("controlcenter.migrations.0006_audit_actor_kind")
    blank = AuditEntry.objects.create(action="settings.change", actor_name="")
    legacy = AuditEntry.objects.create(action="login", actor_name="(command line)")
    failed = AuditEntry.objects.create(action="login_failed", actor_name="(command line)")
    named = AuditEntry.objects.create(action="alias.create", actor_name="dave")
    migration.set_actor_kind(apps, None)
    rows = AuditEntry.objects.filter(pk__in=[blank.pk, legacy.pk, failed.pk, named.pk])
    assert dict(rows.values_list("pk", "actor_kind")) == {
        blank.pk: "command_line",
        legacy.pk: "command_line",
        failed.pk: "anonymous",
        named.pk: "user",
    }
    assert AuditEntry.objects.get(pk=failed.pk).actor_name == ""


def test_summaries_and_changes_read_in_japanese_on_the_page_and_in_the_csv(
    viewer_client: Client,
) -> None:
    AuditEntry.objects.create(
        action="alias.import", target="aliases.csv", summary="created 4, updated 0"
    )
    AuditEntry.objects.create(action="config.rollback", target="#3", summary="relay, aliases")
    AuditEntry.objects.create(action="alias.move", target="a@x.jp", summary="up")
    AuditEntry.objects.create(
        action="settings.change", target="settings", summary="accounts, mailing_lists"
    )
    AuditEntry.objects.create(
        action="relay.save", target="effect.dat", summary="terminator: norelay -> norelay,2"
    )
    AuditEntry.objects.create(
        action="user.update",
        target="sato",
        before={"username": "sato", "role": "viewer", "is_active": True},
        after={"username": "sato", "role": "administrator", "is_active": False},
    )
    response = viewer_client.get("/system/audit/")
    summaries = {e.action: audit_summary(e) for e in response.context["object_list"] if e.summary}
    assert summaries == {
        "relay.save": "最終行: norelay → norelay,2",
        "settings.change": "メールボックスアカウント数、メーリングリスト数",
        "alias.move": "上へ移動",
        "config.rollback": "中継ルールと最終行、エイリアス",
        "alias.import": "追加: 4、変更: 0",
    }
    assertContains(response, '<td translate="no">閲覧者</td><td translate="no">管理者</td>')
    assertNotContains(response, "&quot;role&quot;")
    query = {"action": "user.update"}
    text = viewer_client.get("/system/audit/csv/", query).content.decode("utf-8-sig")
    assert text.split("\r\n")[1].endswith(
        ',管理ユーザーの変更,sato,,"ロール: 閲覧者 → 管理者\n有効: はい → いいえ"'
    )
