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


def test_screens_of_later_issues_are_marked_not_available(login: Callable[..., Any]) -> None:
    page = login()
    page.goto("/system/")
    unavailable = page.locator("[data-menu][aria-disabled=true]")
    for index in range(unavailable.count()):
        expect(unavailable.nth(index)).to_contain_text("準備中")
    assert page.locator("[data-menu='settings']").get_attribute("href") == "/system/settings/"
