from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import expect

from controlcenter.roles import Role
from controlcenter.services import user_role


def test_administrator_adds_a_user_and_finds_it_in_the_change_history(
    login: Callable[..., Any],
) -> None:
    page = login()
    page.goto("/system/")
    page.locator("[data-menu='users']").click()
    page.locator("a[href='/system/users/add/']").click()
    page.locator("#id_username").fill("tanaka")
    page.locator("#id_last_name").fill("田中")
    page.locator("#id_role").select_option("editor")
    page.locator("#id_password1").fill("a-long-pass-phrase-9")
    page.locator("#id_password2").fill("a-long-pass-phrase-9")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_test_id("user-table")).to_contain_text("tanaka")
    assert user_role(User.objects.get(username="tanaka")) is Role.EDITOR

    page.goto("/system/")
    page.locator("[data-menu='history']").click()
    filter_form = page.get_by_test_id("audit-filter")
    filter_form.locator("[name=user]").fill("operator")
    filter_form.locator("[name=action]").select_option("user.create")
    filter_form.locator("button[type=submit]").click()
    rows = page.locator("[data-testid='audit-table'] tr[data-action]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("tanaka")
    expect(rows.first).to_contain_text("operator")
