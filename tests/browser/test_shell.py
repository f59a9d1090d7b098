from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from controlcenter.models import ServerSettings


def test_login_switch_language_walk_the_menu_and_save_a_setting(
    login: Callable[..., Any],
) -> None:
    page = login()
    expect(page.get_by_role("heading", name="トップ")).to_be_visible()

    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Top")).to_be_visible()
    page.get_by_role("button", name="日本語").click()
    expect(page.get_by_role("heading", name="トップ")).to_be_visible()

    page.get_by_role("link", name="メールサーバ管理").click()
    expect(page.get_by_role("heading", name="システム管理メニュー")).to_be_visible()
    page.get_by_role("link", name="全設定(サーバー環境設定)").click()
    expect(page.get_by_role("heading", name="全設定(サーバー環境設定)")).to_be_visible()
    breadcrumbs = page.get_by_role("navigation", name="パンくずリスト")
    expect(breadcrumbs.get_by_role("listitem")).to_have_text(
        ["トップ", "メールサーバ管理", "システム管理メニュー", "全設定(サーバー環境設定)"]
    )

    page.get_by_label("メールボックスアカウント数").fill("3")
    page.get_by_role("button", name="設定").click()
    expect(page.get_by_role("alert").first).to_contain_text("サーバー環境設定を保存しました。")
    assert ServerSettings.load().accounts == 3


def test_every_menu_entry_leads_to_its_screen(login: Callable[..., Any]) -> None:
    page = login()
    page.goto("/system/")
    assert page.locator("[data-menu][aria-disabled=true]").count() == 0
    hrefs = {
        entry.get_attribute("data-menu"): entry.get_attribute("href")
        for entry in page.locator("a[data-menu]").all()
    }
    assert hrefs == {
        "settings": "/system/settings/",
        "relay": "/relay/",
        "aliases": "/aliases/",
        "publish": "/system/publish/",
        "gateways": "/system/gateways/",
        "simulate": "/relay/test/",
        "history": "/system/audit/",
        "users": "/system/users/",
        "jobs": "/system/jobs/",
        "logs": "/logs/",
    }
