from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from aliases.models import Alias
from controlcenter import services
from controlcenter.models import ServerSettings
from controlcenter.roles import Role
from controlcenter.services import user_role
from relaypolicy.models import RelayPolicy, RelayRule

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_fresh_database_is_a_gateway_with_a_50_user_licence_and_one_account(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call_command("configure", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "gateway"
    assert report["licence"] == "50"
    assert report["accounts"] == 1


def test_configure_changes_and_prints_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    call_command(
        "configure", "--mode", "both", "--licence", "unlimited", "--accounts", "3", "--json"
    )
    report = json.loads(capsys.readouterr().out)
    assert (report["mode"], report["licence"], report["accounts"]) == ("both", "unlimited", 3)
    server = ServerSettings.load()
    assert (server.mode, server.licence, server.accounts) == ("both", "unlimited", 3)


def test_configure_warns_when_a_gateway_has_no_account(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("configure", "--accounts", "0")
    assert capsys.readouterr().err.startswith("warning: settings.W001 ")


def test_configure_refuses_bad_values_like_the_form() -> None:
    with pytest.raises(CommandError) as caught:
        call_command("configure", "--accounts", "-1")
    assert caught.value.returncode == 2
    assert str(caught.value).startswith("--accounts: ")
    assert ServerSettings.load().accounts == 1


def test_configure_refuses_settings_that_exceed_the_licence() -> None:
    from aliases import services as alias_services

    alias_services.domain_create(name="example.co.jp")
    for index in range(11):
        alias_services.alias_create(pattern=f"u{index}@example.co.jp", target=f"u{index}@in.jp")
    with pytest.raises(CommandError) as caught:
        call_command("configure", "--licence", "50", "--accounts", "60")
    assert caught.value.returncode == 2
    # Commands speak the site language (LANGUAGE_CODE = ja), like the screens.
    assert str(caught.value) == (
        "ライセンスは 50 ユーザーまでですが、71 ユーザー分を使用することになります "
        "(エイリアス 11、アカウント 60、メーリングリスト 0)。"
    )
    server = ServerSettings.load()
    assert (server.licence, server.accounts) == ("50", 1)


def test_the_command_line_may_change_the_export_settings() -> None:
    services.server_settings_update(
        changes={"console_command": "./epstman2", "console_folder": "/opt/mta/bin"}
    )
    server = ServerSettings.load()
    assert (server.console_command, server.console_folder) == ("./epstman2", "/opt/mta/bin")


@pytest.mark.parametrize(
    "args",
    [["--licence", "77"], ["--mode", "relay"], ["--accounts", "many"]],
)
def test_configure_bad_input_is_one_line_on_stderr_with_status_2(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "configure", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"DEBUG": "1", "PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:///:memory:"},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_ensure_admin_creates_one_administrator_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CC_ADMIN_PASSWORD", raising=False)
    call_command("ensure_admin")
    out = capsys.readouterr().out
    assert out.startswith(
        "Created the administrator 'admin'.\nIts password, shown only this once: "
    )
    password = out.split("shown only this once: ")[1].split("\n")[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(password)
    assert user_role(admin) is Role.ADMINISTRATOR
    assert admin.is_staff is True
    call_command("ensure_admin")
    assert capsys.readouterr().out == "An administrator already exists; nothing to do.\n"
    assert get_user_model().objects.count() == 1


def test_ensure_admin_takes_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CC_ADMIN_PASSWORD", "from-the-environment-123")
    call_command("ensure_admin", "--username", "root-admin")
    assert "shown only this once" not in capsys.readouterr().out
    assert (
        get_user_model()
        .objects.get(username="root-admin")
        .check_password("from-the-environment-123")
    )


def test_ensure_admin_refuses_a_password_the_validators_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CC_ADMIN_PASSWORD", "a")
    with pytest.raises(CommandError) as raised:
        call_command("ensure_admin")
    assert raised.value.returncode == 2
    assert str(raised.value) == (
        "CC_ADMIN_PASSWORD is refused: このパスワードは短すぎます。最低 8 文字以上必要です。 "
        "このパスワードは一般的すぎます。"
    )
    assert get_user_model().objects.count() == 0


def test_ensure_admin_gives_the_role_back_to_an_existing_user(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CC_ADMIN_PASSWORD", "from-the-environment-123")
    user = services.user_create(username="admin", password=None, role=Role.VIEWER)
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    call_command("ensure_admin")
    assert capsys.readouterr().out == (
        "No active administrator was left: 'admin' is an administrator again.\n"
    )
    user.refresh_from_db()
    assert (user_role(user), user.is_active) == (Role.ADMINISTRATOR, True)
    assert user.check_password("from-the-environment-123") is True
    assert get_user_model().objects.count() == 1


def test_load_demo_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("load_demo")
    call_command("load_demo")
    second = capsys.readouterr().out.splitlines()[-3:]
    assert second == [
        "relay rules: 1 row(s) kept as they are",
        "domain: example.co.jp (present)",
        "aliases: 0 added, 11 present",
    ]
    assert Alias.objects.count() == 11
    server = ServerSettings.load()
    assert (server.mode, server.licence, server.accounts) == ("gateway", "100", 1)
    assert list(RelayRule.objects.values_list("pattern", "modifier", "comment")) == [
        ("192.168.1.0/24", "default", "LAN")
    ]
    assert RelayPolicy.load().terminator == "norelay"
