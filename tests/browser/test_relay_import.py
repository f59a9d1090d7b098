from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from relaypolicy.models import RelayRule

# What a server that was never hardened has today: no final '*.*.*.* norelay' line.
OPEN = "#<> default\n#blank false\n'本社LAN\n192.168.1.0/24 default\n"


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_import_the_servers_open_file_see_it_refused_when_malformed_then_stored_red(
    login: Callable[..., Any], width: int
) -> None:
    page = login()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/relay/machines/import/")

    # A malformed line: the preview says why and offers no replacement.
    page.get_by_label("effect.dat の貼り付け").fill(OPEN + "192.168.1.300 default\n")
    page.get_by_role("button", name="プレビュー").click()
    expect(page.get_by_test_id("import-refused")).to_be_visible()
    expect(page.locator("[data-code='relay.E002'][data-line='5']")).to_be_visible()
    expect(page.locator("button[name='confirm']")).to_have_count(0)

    # Only policy risks: the preview names them, the pasted Japanese is shown as typed.
    page.get_by_label("effect.dat の貼り付け").fill(OPEN)
    page.get_by_role("button", name="プレビュー").click()
    expect(page.get_by_test_id("import-risks")).to_be_visible()
    expect(page.get_by_test_id("import-lines")).to_contain_text("'本社LAN")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("button[name='confirm']").click()

    expect(page.locator(".alert-danger").first).to_contain_text(
        "これはサーバーの現在の設定です。赤で示したエラーを直すまで、設定の反映はできません。"
    )
    assert list(RelayRule.objects.values_list("pattern", "comment")) == [
        ("192.168.1.0/24", "本社LAN")
    ]
    page.goto("/")
    expect(page.get_by_test_id("error-count")).to_be_visible()
