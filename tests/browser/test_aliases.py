from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aliases.models import Alias, LocalDomain
from controlcenter.models import ServerSettings

HEADER = "エイリアス,実アドレス,コメント\r\n"


def test_upload_cp932_fix_error_and_confirm(login: Callable[..., Any], tmp_path: Path) -> None:
    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "100"})
    LocalDomain.objects.create(name="example.co.jp")
    page = login()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        (
            HEADER
            + "yamada@example.co.jp,yamada@mail.example.co.jp,山田 太郎\r\n"
            + "suzuki@example.co.jp,suzuki@mail.example.co.jp%x,鈴木\r\n"
        ).encode("cp932")
    )
    page.goto("/aliases/upload/")
    page.locator("input[name=file]").set_input_files(str(bad))
    page.locator("select[name=encoding]").select_option("cp932")
    page.locator("[data-testid=preview]").click()
    error_row = page.locator("[data-testid=preview-table] tr[data-line='3']")
    assert error_row.get_attribute("data-status") == "error"
    assert (
        page.locator("[data-testid=preview-table] tr[data-line='2']").get_attribute("data-status")
        == "created"
    )
    assert page.locator("[data-testid=preview-refused]").count() == 1
    assert page.locator("[data-testid=confirm]").count() == 0

    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(
        (
            HEADER
            + "yamada@example.co.jp,yamada@mail.example.co.jp,山田 太郎\r\n"
            + "suzuki@example.co.jp,suzuki@mail.example.co.jp,鈴木\r\n"
        ).encode("cp932")
    )
    page.locator("input[name=file]").set_input_files(str(fixed))
    page.locator("[data-testid=preview]").click()
    assert page.locator("[data-testid=preview-table] tr[data-status=created]").count() == 2
    page.locator("[data-testid=confirm]").click()
    page.wait_for_url("**/aliases/")
    rows = page.locator("[data-testid=alias-table] tbody tr[data-alias]")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.alias)") == [
        "yamada@example.co.jp",
        "suzuki@example.co.jp",
    ]
    assert list(Alias.objects.values_list("comment", flat=True)) == ["山田 太郎", "鈴木"]
