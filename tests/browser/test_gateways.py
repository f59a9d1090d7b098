"""反映先 in the browser: add a gateway, confirm its host key, publish, 接続テスト."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from playwright.sync_api import expect

from controlcenter.services.demo import demo_load
from gateways.models import Gateway
from tests.servers import postfix_server, ssh_server


def _fits(page: Any) -> None:
    """The page's own content needs no sideways scrolling (wide tables scroll in their own
    box; the shared header is base.html's)."""
    assert page.evaluate(
        "Math.max(...[...document.querySelectorAll('main *')]"
        ".filter(e => !e.closest('.table-responsive') && e.offsetParent !== null)"
        ".map(e => e.getBoundingClientRect().right)) <= window.innerWidth + 1"
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_add_a_gateway_confirm_its_key_publish_and_run_the_connection_test(
    login: Callable[..., Any], job_worker: None, tmp_path: Path, settings: Any, width: int
) -> None:
    settings.CC_EXPORT_DIR = tmp_path / "export"
    demo_load()
    with (
        ssh_server(tmp_path / "sshd") as sshd,
        postfix_server(open_relay=False, domain="example.co.jp") as postfix,
    ):
        page = login()
        page.set_viewport_size({"width": width, "height": 900})
        page.goto("/system/")
        page.locator("[data-menu='gateways']").click()
        page.get_by_test_id("gateway-add").click()
        page.get_by_label("名前").fill("primary-mx")
        page.get_by_label("種類").select_option("ssh")
        page.get_by_label("ホスト", exact=True).fill("127.0.0.1")
        page.get_by_label("SSH ポート").fill(str(sshd.port))
        page.get_by_label("ユーザー", exact=True).fill(sshd.username)
        page.get_by_label("秘密鍵", exact=True).fill(sshd.client_key)
        page.get_by_label("プログラムフォルダ").fill(str(sshd.program_folder))
        page.get_by_label("メール作業フォルダ").fill(str(sshd.work_folder))
        page.get_by_label("SMTP ポート").fill(str(postfix.port))
        page.get_by_role("button", name="保存").click()
        expect(page.locator("h1")).to_have_text("primary-mx")
        _fits(page)

        page.get_by_test_id("fetch-key").click()
        fingerprint = asyncssh.import_public_key(sshd.host_key).get_fingerprint()
        expect(page.get_by_test_id("offered-fingerprint")).to_have_text(fingerprint)
        page.get_by_test_id("confirm-key").click()
        expect(page.get_by_test_id("pinned-fingerprint")).to_have_text(fingerprint)
        assert Gateway.objects.get().host_key == sshd.host_key

        page.get_by_role("link", name="反映先", exact=True).click()
        page.get_by_test_id("publish-gateways").click()
        expect(page).to_have_url(re.compile(r"/system/gateways/publications/\d+/$"))
        row = page.locator("[data-testid='result-row'][data-gateway='primary-mx']")
        expect(row).to_have_attribute("data-status", "succeeded", timeout=30_000)
        expect(row).to_contain_text("ハッシュが一致しました")
        expect(page.get_by_test_id("status-succeeded").first).to_have_text("成功")
        _fits(page)
        assert (sshd.program_folder / "effect.dat").exists()
        assert len(sshd.calls) > 0

        page.get_by_test_id("smtp-check").click()
        section = page.locator("[data-testid='check-gateway'][data-gateway='primary-mx']")
        expect(section).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("no-mismatch").or_(page.locator(".badge.text-bg-warning")))
        assert page.locator("[data-testid='probe'][data-dangerous]").count() == 0
        assert page.locator("[data-testid='probe']").count() > 20
        expect(section).to_contain_text("Relay access denied")
        _fits(page)
