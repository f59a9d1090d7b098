from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from pytest_django.asserts import (
    assertContains,
    assertFormError,
    assertNotContains,
    assertRedirects,
)

from controlcenter.models import ServerSettings
from controlcenter.roles import Role
from controlcenter.services import server_settings_findings, user_role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SETTINGS = {
    "mode": "gateway",
    "licence": "100",
    "accounts": "2",
    "mailing_lists": "0",
    "max_message_size": "10485760",
    "max_recipients": "50",
    "export_dir": "",
    "export_line_ending": "lf",
    "console_folder": "/usr/local/mta/bin",
    "console_command": "./epstman",
    "console_mode_word": "NA",
}


def test_dashboard_shows_the_server_and_the_menu(editor_client: Client) -> None:
    response = editor_client.get("/")
    assertContains(response, "SMTPゲートウェイ")
    assertContains(response, "全設定(サーバー環境設定)")


def test_english_is_selectable(editor_client: Client) -> None:
    response = editor_client.post("/i18n/setlang/", {"language": "en", "next": "/system/"})
    assertRedirects(response, "/system/", fetch_redirect_response=False)
    response = editor_client.get("/system/")
    assertContains(response, '<html lang="en">')
    assertContains(response, "System management menu")


def test_settings_form_saves(editor_client: Client) -> None:
    response = editor_client.post("/system/settings/", SETTINGS)
    assertRedirects(response, "/system/settings/")
    server = ServerSettings.load()
    assert (server.licence, server.accounts, server.max_message_size, server.max_recipients) == (
        "100",
        2,
        10485760,
        50,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "export_dir",
            "relative/path",
            "/usr/local/mta/bin のような絶対パスのフォルダを指定するか、空欄にしてください。",
        ),
        (
            "console_command",
            "./epstman; rm -rf /",
            "英数字と . / _ - だけを使ってください(例: ./epstman)。",
        ),
        ("console_mode_word", "N A", "英数字と _ だけを使ってください(例: NA)。"),
        ("accounts", "-1", "この値は 0 以上でなければなりません。"),
    ],
)
def test_settings_form_rerenders_with_the_users_input_and_a_message(
    administrator_client: Client, field: str, value: str, message: str
) -> None:
    response = administrator_client.post("/system/settings/", SETTINGS | {field: value})
    assert response.status_code == 200
    assertFormError(response.context["form"], field, message)
    assertContains(response, f'value="{value}"' if field != "accounts" else 'value="-1"')
    assert ServerSettings.load().licence == "50"


def test_saving_settings_with_a_warning_says_how_many_and_the_page_shows_the_finding_once(
    editor_client: Client,
) -> None:
    response = editor_client.post("/system/settings/", SETTINGS | {"accounts": "0"}, follow=True)
    assert [f.code for f in server_settings_findings(ServerSettings.load())] == ["settings.W001"]
    assert [(m.level_tag, str(m.message)) for m in response.context["messages"]] == [
        ("warning", "サーバー環境設定を保存しました。警告が 1 件あります(下記参照)。"),
    ]
    finding = "メールボックスアカウントがありません。ゲートウェイにもダミーアカウントが少なくとも"
    assertContains(response, finding, count=1)
    assertContains(response, '<li class="finding alert alert-warning', count=1)
    assertContains(response, 'data-code="settings.W001" data-level="warning"')


def test_saving_settings_without_findings_says_saved(editor_client: Client) -> None:
    response = editor_client.post("/system/settings/", SETTINGS, follow=True)
    assert [(m.level_tag, str(m.message)) for m in response.context["messages"]] == [
        ("success", "サーバー環境設定を保存しました。"),
    ]
    assertNotContains(response, 'data-testid="findings"')


EXPORT_SETTINGS = {
    "export_dir": "/srv/elsewhere",
    "console_folder": "/tmp",
    "console_command": "./evil",
    "console_mode_word": "X",
}


def test_only_administrators_hold_the_export_settings_permission(
    make_user: Callable[..., User],
) -> None:
    holders = {
        role: make_user(username=role.value, role=role).has_perm(
            "controlcenter.change_export_settings"
        )
        for role in Role
    }
    assert holders == {Role.VIEWER: False, Role.EDITOR: False, Role.ADMINISTRATOR: True}


def test_editor_sees_the_export_settings_disabled_and_cannot_change_them(
    editor_client: Client,
) -> None:
    response = editor_client.get("/system/settings/")
    assertContains(response, 'data-testid="export-locked"')
    assertContains(
        response,
        'name="console_command" value="./epstman" maxlength="64" '
        'class="textinput form-control" required disabled',
    )
    response = editor_client.post("/system/settings/", SETTINGS | EXPORT_SETTINGS)
    assertRedirects(response, "/system/settings/")
    server = ServerSettings.load()
    assert [getattr(server, name) for name in ServerSettings.EXPORT_SETTINGS_FIELDS] == [
        "",
        "/usr/local/mta/bin",
        "./epstman",
        "NA",
    ]
    assert server.licence == "100"


def test_administrator_changes_the_export_settings(administrator_client: Client) -> None:
    response = administrator_client.get("/system/settings/")
    assert b'data-testid="export-locked"' not in response.content
    response = administrator_client.post("/system/settings/", SETTINGS | EXPORT_SETTINGS)
    assertRedirects(response, "/system/settings/")
    server = ServerSettings.load()
    assert [getattr(server, name) for name in ServerSettings.EXPORT_SETTINGS_FIELDS] == [
        "/srv/elsewhere",
        "/tmp",
        "./evil",
        "X",
    ]


def test_administrator_adds_a_user_with_a_role(administrator_client: Client) -> None:
    response = administrator_client.post(
        "/system/users/add/",
        {
            "username": "tanaka",
            "last_name": "田中",
            "first_name": "一郎",
            "email": "tanaka@example.co.jp",
            "role": "editor",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assertRedirects(response, "/system/users/")
    user = User.objects.get(username="tanaka")
    assert user_role(user) is Role.EDITOR
    assert user.check_password("a-long-pass-phrase-9")
    assert user.is_staff is False


def test_user_form_refuses_mismatched_passwords(administrator_client: Client) -> None:
    response = administrator_client.post(
        "/system/users/add/",
        {"username": "x", "role": "viewer", "password1": "a-long-pass-9", "password2": "other-9"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"] == ["確認用パスワードが一致しません。"]
    assert not User.objects.filter(username="x").exists()


def test_the_last_administrator_cannot_be_demoted(
    administrator_client: Client,
) -> None:
    admin = User.objects.get(username="user-administrator")
    response = administrator_client.post(
        f"/system/users/{admin.pk}/", {"role": "viewer", "is_active": "on"}
    )
    assert response.status_code == 200
    # At the field that would demote them, not at the top of the form.
    assert response.context["form"].errors == {
        "role": ["user-administrator は最後の有効な管理者です。先に別の管理者を任命してください。"]
    }
    assert user_role(User.objects.get(pk=admin.pk)) is Role.ADMINISTRATOR


def test_disabling_the_last_administrator_is_refused_at_the_active_field(
    administrator_client: Client,
) -> None:
    admin = User.objects.get(username="user-administrator")
    response = administrator_client.post(f"/system/users/{admin.pk}/", {"role": "administrator"})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["is_active"]
    assert User.objects.get(pk=admin.pk).is_active is True


@pytest.mark.parametrize("username", ["ｔａｎａｋａ", "田中", "tanaka san", "josé"])
def test_user_names_are_half_width_as_the_help_text_says(
    administrator_client: Client, username: str
) -> None:
    response = administrator_client.post(
        "/system/users/add/",
        {
            "username": username,
            "role": "viewer",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 200
    assert [e.code for e in response.context["form"].errors.as_data()["username"]] == ["invalid"]
    assert not User.objects.filter(username=username).exists()


def test_administrator_changes_role_and_password(
    administrator_client: Client, make_user: Callable[..., User]
) -> None:
    other = make_user(username="sato", role=Role.VIEWER)
    response = administrator_client.post(f"/system/users/{other.pk}/", {"role": "administrator"})
    assertRedirects(response, "/system/users/")
    other.refresh_from_db()
    assert (user_role(other), other.is_active, other.is_staff) == (Role.ADMINISTRATOR, False, True)
    response = administrator_client.post(
        f"/system/users/{other.pk}/password/",
        {"password1": "new-pass-phrase-77", "password2": "new-pass-phrase-77"},
    )
    assertRedirects(response, "/system/users/")
    other.refresh_from_db()
    assert other.check_password("new-pass-phrase-77")
    assert not other.check_password(PASSWORD)


def test_user_list_shows_roles(administrator_client: Client) -> None:
    assertContains(administrator_client.get("/system/users/"), "<td>管理者</td>", html=True)


def test_dashboard_is_green_for_the_hardened_gateway(editor_client: Client) -> None:
    from io import StringIO

    from django.core.management import call_command

    call_command("load_demo", stdout=StringIO())
    response = editor_client.get("/")
    assertContains(response, 'data-status="safe"')
    assert response.context["error_count"] == 0
    assert (response.context["rule_count"], response.context["alias_count"]) == (1, 11)


def test_dashboard_turns_red_for_a_wildcard_alias_without_the_terminator(
    editor_client: Client,
) -> None:
    from aliases.models import Alias, LocalDomain
    from relaypolicy.models import RelayPolicy

    domain = LocalDomain.objects.create(name="example.co.jp")
    Alias.objects.create(
        position=1,
        pattern="*@example.co.jp",
        key="*@example.co.jp",
        target="*@example.co.jp",
        domain=domain,
    )
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    response = editor_client.get("/")
    assertContains(response, 'data-status="open"')
    assert [f.code for f in response.context["open_relay"]] == ["selftest.E001"]
    assert "selftest.E001" in [f.code for f in response.context["findings"]]


def test_menu_marks_entries_the_user_may_not_open(viewer_client: Client) -> None:
    response = viewer_client.get("/system/")
    menu = {
        item.entry.key: (item.url is not None, item.allowed) for item in response.context["menu"]
    }
    assert menu["users"] == (True, False)
    assert menu["simulate"] == (True, True)
    assertContains(response, 'data-menu="users"')


def test_a_user_without_a_role_is_told_to_ask_for_one(
    role_client: Callable[[Role | None], Client],
) -> None:
    response = role_client(None).get("/")
    assert response.status_code == 403
    assertContains(response, "ロールがまだありません", status_code=403)


def test_editor_reads_why_the_export_settings_are_locked_in_japanese(
    editor_client: Client,
) -> None:
    response = editor_client.get("/system/settings/")
    assertContains(
        response,
        '<p class="form-text" data-testid="export-locked">'
        "出力先フォルダとエイリアス登録コマンドを変更できるのは管理者だけです。</p>",
    )
    assertContains(response, 'data-testid="settings-machine-relay" href="/relay/machines/">')


@pytest.mark.parametrize("debug", [True, False])
def test_missing_page_is_japanese_with_the_layout_and_a_way_back(
    viewer_client: Client, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    response = viewer_client.get("/no-such-page/")
    assert response.status_code == 404
    if not debug:
        assertContains(response, '<html lang="ja">', status_code=404)
        assertContains(response, "このページは存在しません", status_code=404)
        assertContains(response, '<a href="/">トップへ戻る</a>', status_code=404)
        assertContains(response, 'class="navbar-brand', status_code=404)


def test_server_error_page_is_japanese_with_the_layout_and_a_way_back() -> None:
    from django.views.defaults import server_error

    response = server_error(RequestFactory().get("/"))
    text = response.content.decode()
    assert response.status_code == 500
    assert '<html lang="ja">' in text
    assert "サーバーで問題が発生しました" in text
    assert '<a href="/">トップへ戻る</a>' in text


def test_forbidden_page_has_a_way_back(viewer_client: Client) -> None:
    response = viewer_client.get("/system/users/")
    assertContains(response, '<a href="/">トップへ戻る</a>', status_code=403)


def test_admin_is_branded_as_the_product(administrator_client: Client) -> None:
    response = administrator_client.get("/admin/")
    assertContains(response, "E-POSTコントロールセンター 中継コントロールセンター(閲覧専用)")
    assertContains(response, '<link rel="icon" href="/static/favicon.svg"')
    assertNotContains(response, "Django")


def test_favicon_is_served_locally_to_anyone(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (302, "/static/favicon.svg")
    assert (settings.BASE_DIR / "static" / "favicon.svg").read_text().startswith("<svg")


def test_every_page_has_a_skip_link_to_the_content(viewer_client: Client) -> None:
    response = viewer_client.get("/system/")
    assertContains(response, 'href="#content">本文へ移動</a>')
    assertContains(response, '<main class="container-xl pb-5" id="content" tabindex="-1">')


def test_breadcrumbs_link_each_page_once_and_never_the_page_itself(viewer_client: Client) -> None:
    response = viewer_client.get("/system/audit/")
    assert [(str(label), url) for label, url in response.context["breadcrumbs"]] == [
        ("トップ", "/"),
        ("メールサーバ管理", None),
        ("システム管理メニュー", "/system/"),
        ("変更履歴", None),
    ]
    response = viewer_client.get("/system/")
    assert [url for _label, url in response.context["breadcrumbs"]] == ["/", None, None]


def test_dates_read_the_same_everywhere(administrator_client: Client) -> None:
    from datetime import UTC, datetime

    User.objects.filter(username="user-administrator").update(
        last_login=datetime(2026, 12, 2, 10, 49, tzinfo=UTC)
    )
    response = administrator_client.get("/system/users/")
    assertContains(response, '<td class="text-nowrap">2026-12-02 19:49</td>')  # JST


def test_admin_refuses_a_logged_in_user_without_loop(viewer_client: Client) -> None:
    response = viewer_client.get("/admin/", follow=True)
    assert response.redirect_chain == [("/admin/login/?next=/admin/", 302)]
    assertContains(response, "トップへ戻る", status_code=403)


@pytest.fixture
def five_hundred_aliases(tmp_path: Path, settings: Any) -> None:
    from django.core.management import call_command

    settings.CC_EXPORT_DIR = tmp_path / "export"
    call_command("configure", "--licence", "unlimited", stdout=StringIO())
    table = tmp_path / "aliases.csv"
    table.write_text(
        "".join(f"user{n:03d}@example.co.jp,box{n}@inner.example\n" for n in range(500))
    )
    call_command("import_aliases", str(table), "--add-domains", stdout=StringIO())


def test_publish_page_shows_the_start_of_a_big_diff_and_links_the_whole(
    make_user: Callable[..., User], five_hundred_aliases: None
) -> None:
    client = Client()
    client.force_login(make_user(username="admin", role=Role.ADMINISTRATOR))
    response = client.get("/system/publish/")
    [script] = [d for d in response.context["status"].plan.diffs if d.name == "register_aliases.sh"]
    # The header comment lines and one command per alias.
    assert (len(script.lines), script.added, script.removed) == (400, 505, 0)
    assertContains(response, 'data-testid="diff-truncated"', count=2)  # the script and the CSV
    assertContains(response, 'href="/system/publish/diff/"', count=2)
    whole = client.get("/system/publish/diff/")
    assert whole["Content-Type"] == "text/x-diff; charset=utf-8"
    assert whole["Content-Disposition"] == 'attachment; filename="export-1.diff"'
    text = whole.content.decode()
    assert text.count("\n+./epstman ") == 500
    assert "+user499@example.co.jp,box499@inner.example," in text


def test_publish_diff_download_needs_a_login(client: Client) -> None:
    response = client.get("/system/publish/diff/")
    assert (response.status_code, response["Location"]) == (
        302,
        "/accounts/login/?next=/system/publish/diff/",
    )


def _open_relay_by_wildcard_alias() -> None:
    from aliases.models import Alias, LocalDomain
    from relaypolicy.models import RelayPolicy

    domain = LocalDomain.objects.create(name="example.co.jp")
    Alias.objects.create(
        position=1,
        pattern="*@example.co.jp",
        key="*@example.co.jp",
        target="*@example.co.jp",
        domain=domain,
    )
    RelayPolicy.objects.filter(pk=1).update(terminator="")


def test_dashboard_shows_each_finding_once_summary_box_counts_and_links(
    editor_client: Client,
) -> None:
    from django.utils.translation import gettext

    _open_relay_by_wildcard_alias()
    response = editor_client.get("/")
    open_relay = response.context["open_relay"]
    findings = response.context["findings"]
    assertContains(response, 'data-testid="open-relay-count" data-count="1"')
    assertContains(response, 'href="#findings"')
    assertContains(response, '<section class="findings mb-3" aria-label="検査結果"')
    for finding in findings:
        assertContains(response, finding.render(gettext), count=1)
    assertContains(response, 'data-open-relay="1"', count=len(open_relay))
    errors = sum(1 for f in findings if f.is_error)
    assertContains(response, f'data-testid="finding-counts" data-error="{errors}"')


def test_dashboard_counts_every_line_of_effect_dat_labelled(editor_client: Client) -> None:
    from io import StringIO

    from django.core.management import call_command

    from relaypolicy.models import RelayPolicy

    call_command("load_demo", stdout=StringIO())
    response = editor_client.get("/")
    lines = response.context["relay_lines"]
    assert (lines.header, lines.rules, lines.terminator, lines.total) == (2, 1, 1, 4)
    assertContains(response, 'data-testid="relay-lines" data-total="4"')
    assertContains(response, "既定行 2・ルール 1・最終行 1")

    RelayPolicy.objects.filter(pk=1).update(terminator="")
    response = editor_client.get("/")
    assertContains(response, 'data-testid="relay-lines" data-total="3"')
    assertContains(response, "既定行 2・ルール 1・最終行 0")


def test_findings_show_the_message_first_the_code_muted_and_a_colour_per_level() -> None:
    import re

    from django.template.loader import render_to_string
    from django.utils import translation

    from controlcenter.findings import Level, make

    findings = [
        make(Level.ERROR, "relay.E999", "Broken", line=3),
        make(Level.WARNING, "relay.W999", "Risky"),
        make(Level.INFO, "relay.I999", "Worth knowing"),
    ]
    with translation.override("en"):
        html = render_to_string(
            "includes/findings.html", {"findings": findings, "heading": "Findings"}
        )
    items = re.findall(r'<li class="finding alert ([\w-]+)[^"]*"[^>]*>(.*?)</li>', html, re.S)
    assert [css for css, _body in items] == ["alert-danger", "alert-warning", "alert-info"]
    for (_css, body), finding in zip(items, findings, strict=True):
        message = body.index(f'<span class="finding-message">{finding.message}</span>')
        code = body.index(f'<code class="finding-code ms-auto">{finding.code}</code>')
        assert message < code
    assert 'data-level="info"' in html
    assert "text-bg-warning" not in items[2][1]  # information does not look like a warning
    assert 'data-error="1" data-warning="1" data-info="1"' in html
