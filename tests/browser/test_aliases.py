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


def test_mixed_encoding_upload_warns_on_the_deciding_line_on_a_phone(
    login: Callable[..., Any], tmp_path: Path
) -> None:
    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "100"})
    LocalDomain.objects.create(name="example.co.jp")
    page = login()
    page.set_viewport_size({"width": 390, "height": 844})
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(
        "yamada@example.co.jp,yamada@mail.example.co.jp,営業部\r\n".encode()
        + "suzuki@example.co.jp,suzuki@mail.example.co.jp,鈴木\r\n".encode("cp932")
    )
    page.goto("/aliases/upload/")
    page.locator("input[name=file]").set_input_files(str(mixed))
    page.locator("[data-testid=preview]").click()

    warning = page.locator("[data-testid=findings] [data-code='csv.W003']")
    assert warning.get_attribute("data-line") == "2"
    assert "2 行目が UTF-8 ではない" in warning.inner_text()
    assert (
        page.locator("[data-testid=preview-table] tr[data-line='2']").get_attribute("data-status")
        == "warning"
    )
    assert page.locator("[data-testid=confirm]").count() == 1
    wide = page.evaluate(
        "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 392"
        " && !e.closest('.table-responsive')).map(e => e.tagName + '.' + e.className + ':' + "
        "Math.round(e.getBoundingClientRect().right)).slice(0, 8)"
    )
    assert wide == []


def test_search_counts_matches_and_pages_at_desktop_and_phone_width(
    login: Callable[..., Any],
) -> None:
    from aliases import services

    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "unlimited"})
    LocalDomain.objects.create(name="example.co.jp")
    rows = "".join(
        f"u{i:03d}@example.co.jp,u{i:03d}@{'sales' if i % 2 else 'dev'}.example.jp\r\n"
        for i in range(120)
    )
    services.aliases_import_csv(
        data=rows.encode(), encoding="auto", add_domains=False, dry_run=False
    )
    page = login()
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto("/aliases/")
        page.get_by_label("検索").fill("SALES.example")
        page.locator("[data-testid=alias-search] button[type=submit]").click()
        assert page.locator("[data-testid=search-count]").inner_text() == (
            "60 件のエイリアスが一致しました。"
        )
        table = page.locator("[data-testid=alias-table] tbody tr[data-alias]")
        assert table.count() == 50
        assert table.first.get_attribute("data-alias") == "u001@example.co.jp"
        page.get_by_role("link", name="次へ").click()
        assert table.evaluate_all("rows => rows.map(r => r.dataset.alias)") == [
            f"u{i:03d}@example.co.jp" for i in range(101, 120, 2)
        ]
        assert "2 / 2" in page.locator(".pagination").inner_text()
