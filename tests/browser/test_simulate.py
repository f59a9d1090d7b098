from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from aliases.models import Alias, LocalDomain
from controlcenter.roles import Role
from controlcenter.services import policy_selftest
from relaypolicy.models import RelayPolicy


def test_viewer_runs_a_simulation_and_the_self_test(login: Callable[..., Any]) -> None:
    domain = LocalDomain.objects.create(name="example.co.jp")
    Alias.objects.create(
        position=1, pattern="*@example.co.jp", key="*@example.co.jp", target="*@example.co.jp",
        domain=domain,
    )  # fmt: skip
    RelayPolicy.objects.update_or_create(pk=1, defaults={"terminator": ""})
    page = login(role=Role.VIEWER, username="viewer")

    page.goto("/system/")
    page.locator("[data-menu='simulate']").click()
    form = page.get_by_test_id("simulate-form")
    form.locator("[name=client_ip]").fill("203.0.113.9")
    form.locator("[name=mail_from]").fill("forged@example.co.jp")
    form.locator("[name=rcpt_to]").fill("victim@other.example\nstaff@example.co.jp")
    form.locator("button[type=submit]").click()
    result = page.get_by_test_id("simulate-result")
    expect(
        result.locator("tr[data-address='victim@other.example'] [data-verdict]")
    ).to_have_attribute("data-verdict", "relay")
    expect(
        result.locator("tr[data-address='staff@example.co.jp'] [data-verdict]")
    ).to_have_attribute("data-verdict", "deliver")

    page.get_by_test_id("tab-selftest").click()
    expect(page.get_by_test_id("selftest-status")).to_have_attribute("data-status", "open")
    expect(page.locator("[data-code='selftest.E001']").first).to_contain_text("*@example.co.jp")
    expected_failures = len(policy_selftest().failures)
    assert expected_failures >= 1
    expect(page.locator("tr[data-passed='false']")).to_have_count(expected_failures)

    page.goto("/")
    expect(page.get_by_test_id("relay-status")).to_have_attribute("data-status", "open")
