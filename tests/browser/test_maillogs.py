from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aliases import services as alias_services
from controlcenter.models import ServerSettings
from relaypolicy import services as relay_services
from tests.bench.loggen import INNER
from tests.maillogs.conftest import HARDENED, OPEN, write_archive


@pytest.mark.parametrize("width", [1280, 390])
def test_upload_archive_watch_progress_see_abuse_replay_and_draft(
    login: Callable[..., Any], job_worker: None, tmp_path: Path, settings: Any, width: int
) -> None:
    settings.CC_LOG_UPLOAD_DIR = tmp_path / "uploads"
    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "250"})
    alias_services.domain_create(name=INNER)
    alias_services.alias_create(pattern=f"*@{INNER}", target=f"*@{INNER}")
    relay_services.relay_rules_import(data=OPEN, replace=True)
    archive = tmp_path / "epms-logs.zip"
    truth = write_archive(archive, 5000)

    page = login()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/logs/")
    page.locator("input[name=logs]").set_input_files(str(archive))
    page.locator("[data-testid=log-upload]").click()
    page.wait_for_url("**/logs/")
    progress = page.locator("[data-testid=job-progress]").first
    assert progress.get_attribute("data-status") in ("queued", "running", "succeeded")
    page.locator("[data-testid=job-progress][data-status=succeeded]").wait_for(timeout=60_000)
    assert page.locator(".job-progress-bar").first.get_attribute("data-percent") == "100"
    page.locator("[data-testid=job-result]").click()
    page.wait_for_url("**/logs/runs/*/")
    assert page.locator("[data-testid=abuse-banner]").is_visible()
    chart = page.locator("[data-testid=chart-relayed]")
    assert chart.is_visible()
    title = chart.locator("title").first.text_content()
    assert title == "1日あたりのメール：内部への配送と外部への中継"
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] <= width
    assert page.locator("[data-testid=run-mails]").text_content() == str(truth.mails)

    page.goto("/")
    banner = page.locator("[data-testid=abuse-banner]")
    assert banner.is_visible()
    assert "2026-11-02" in banner.text_content()

    relay_services.relay_rules_import(data=HARDENED, replace=True)  # the pending change
    page.goto("/logs/")
    page.locator("[data-testid=tab-replay]").click()
    page.wait_for_url("**/logs/replay/")
    assert page.locator("[data-testid=replay-safe]").is_visible()
    assert page.locator("[data-count=stopped]").text_content() == (
        f"{truth.abuse_mails} / {truth.abuse_mails}"
    )
    home = page.locator("[data-testid=replay-changed] tr[data-sender='staff007@example.co.jp']")
    assert home.get_attribute("data-hint") == "smtp-auth"

    page.locator("[data-testid=tab-migration]").click()
    page.wait_for_url("**/logs/migration/")
    drafts = int(page.locator("[data-count=drafts]").text_content() or "0")
    assert drafts == len(truth.staff_received)
    page.locator("[data-testid=migration-draft]").click()
    page.locator("[data-testid=preview-result]").wait_for()
    assert page.locator("[data-count=created]").text_content() == f"新規: {drafts}"
    assert page.locator("[data-testid=confirm]").is_visible()
    # no horizontal scrolling of the page itself at phone width
    assert page.evaluate("document.documentElement.scrollWidth") <= max(width, 1280)
