from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from controlcenter.models import Export


def test_edit_a_rule_see_the_diff_publish_and_find_the_export_in_the_history(
    login: Callable[..., Any], tmp_path: Path, settings: Any
) -> None:
    settings.CC_EXPORT_DIR = tmp_path / "export"
    page = login()
    page.goto("/relay/machines/")
    rows = page.locator("#rule-table tbody[data-row]")
    rows.nth(0).locator("input[name$='-pattern']").fill("192.168.1.0/24")
    page.get_by_role("button", name="設定").click()
    expect(page.locator(".alert-success")).to_be_visible()

    page.goto("/system/")
    page.locator("[data-menu='publish']").click()
    expect(page.get_by_test_id("pending")).to_have_attribute("data-pending", "yes")
    diff = page.locator("[data-testid='diff'][data-file='effect.dat']")
    expect(diff.locator(".diff-add", has_text="192.168.1.0/24 default")).to_be_visible()

    page.get_by_test_id("publish-button").click()
    expect(page.locator(".alert-success")).to_contain_text("#1")
    assert (tmp_path / "export" / "effect.dat").read_text().splitlines()[3] == (
        "192.168.1.0/24 default"
    )

    page.goto("/system/publish/history/")
    row = page.locator("[data-testid='export-table'] tr[data-number='1']")
    expect(row).to_have_attribute("data-status", "exported")
    row.get_by_role("link", name="#1").click()
    expect(page.locator("[data-testid='export-file'][data-file='effect.dat'] pre")).to_contain_text(
        "192.168.1.0/24 default"
    )
    assert Export.objects.get().username == "operator"


def test_overwriting_a_hand_edited_file_needs_the_tick_and_shows_in_the_history(
    login: Callable[..., Any], tmp_path: Path, settings: Any
) -> None:
    folder = tmp_path / "export"
    settings.CC_EXPORT_DIR = folder
    page = login()
    page.goto("/system/publish/")
    page.get_by_test_id("publish-button").click()
    expect(page.locator(".alert-success")).to_contain_text("#1")
    with (folder / "effect.dat").open("a") as stream:
        stream.write("10.9.9.9 true\n")

    page.goto("/system/publish/")
    expect(page.locator("[data-testid='drift'] li[data-file='effect.dat']")).to_have_attribute(
        "data-kind", "modified"
    )
    page.get_by_test_id("publish-button").click()  # the browser refuses: the tick is required
    expect(page).to_have_url(re.compile(r"/system/publish/$"))
    assert Export.objects.count() == 1
    page.get_by_test_id("overwrite").check()
    page.get_by_test_id("publish-button").click()
    expect(page.locator(".alert-success")).to_contain_text("#2")
    assert "10.9.9.9 true" not in (folder / "effect.dat").read_text()
    replaced = page.locator("[data-testid='replaced-file'][data-file='effect.dat'] pre")
    expect(replaced).to_contain_text("10.9.9.9 true")


@pytest.mark.parametrize("width", [1366, 390])
def test_rollback_from_the_history_asks_first_and_says_what_is_lost(
    login: Callable[..., Any], tmp_path: Path, settings: Any, width: int
) -> None:
    from relaypolicy.models import RelayRule

    settings.CC_EXPORT_DIR = tmp_path / "export"
    page = login()
    page.set_viewport_size({"width": width, "height": 844})
    page.goto("/system/publish/")
    page.get_by_test_id("publish-button").click()
    expect(page.locator(".alert-success")).to_contain_text("#1")
    page.goto("/relay/machines/")
    page.locator("#rule-table tbody[data-row]").nth(0).locator("input[name$='-pattern']").fill(
        "192.168.1.0/24"
    )
    page.get_by_role("button", name="設定").click()
    expect(page.locator(".alert-success")).to_be_visible()

    page.goto("/system/publish/history/")
    row = page.locator("[data-testid='export-table'] tr[data-number='1']")
    row.get_by_test_id("rollback-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("出力 #1 へのロールバック")
    expect(page.locator("[data-testid='rollback-delta'] li[data-part='relay']")).to_contain_text(
        "今日のエントリー 1 件が失われ"
    )
    assert RelayRule.objects.filter(pattern="192.168.1.0/24").exists()  # nothing changed yet
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.get_by_test_id("rollback-button").click()
    expect(page.locator(".alert-success")).to_contain_text("#2")
    assert not RelayRule.objects.filter(pattern="192.168.1.0/24").exists()
