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


# --- エイリアス管理: selection, bulk delete, moves; CSVアップロード: what the preview says ------

WIDTHS = [(1366, 900), (390, 844)]


def _axe_serious(page: Any) -> list[str]:
    """Serious and critical axe-core violations of the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(Axe().axe_script)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes'][:3]]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _page_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def _seed_aliases(*patterns: str) -> None:
    from aliases import services

    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "unlimited"})
    LocalDomain.objects.get_or_create(name="example.co.jp")
    for pattern in patterns:
        target = "*@mail.example.co.jp" if pattern.startswith("*") else "x@mail.example.co.jp"
        services.alias_create(pattern=f"{pattern}@example.co.jp", target=target)


def _shown_order(page: Any) -> list[str]:
    rows = page.locator("[data-testid=alias-table] tbody tr[data-alias]")
    return [a.split("@")[0] for a in rows.evaluate_all("rows => rows.map(r => r.dataset.alias)")]


def test_select_all_by_keyboard_and_bulk_delete_names_the_count(
    login: Callable[..., Any],
) -> None:
    page = login()
    page.emulate_media(reduced_motion="reduce")  # axe must not read colours mid-transition
    for width, height in WIDTHS:
        Alias.objects.all().delete()
        _seed_aliases("a", "b", "c")
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/aliases/")
        select_all = page.get_by_label("このページのエイリアスをすべて選択")
        select_all.focus()
        page.keyboard.press("Space")
        boxes = page.locator("[data-select-row]")
        assert boxes.evaluate_all("bs => bs.map(b => b.checked)") == [True, True, True]
        count = page.locator("[data-selected-count]")
        assert count.inner_text() == "このページの 3 件中 3 件を選択中"
        page.get_by_label("b@example.co.jp を選択").uncheck()
        assert select_all.evaluate("b => [b.checked, b.indeterminate]") == [False, True]
        assert count.inner_text() == "このページの 3 件中 2 件を選択中"
        assert _axe_serious(page) == []
        assert _page_width(page) <= width

        page.locator("[data-testid=bulk-delete]").click()
        page.wait_for_url("**/aliases/delete/")
        assert page.locator("[data-testid=bulk-delete-count]").inner_text() == (
            "次の 2 件のエイリアスを削除しますか？変更を反映すると、これらのアドレス宛ての"
            "メールは拒否されます。"
        )
        listed = page.locator("[data-testid=bulk-delete-list] tbody tr")
        assert listed.evaluate_all("rows => rows.map(r => r.dataset.alias)") == [
            "a@example.co.jp",
            "c@example.co.jp",
        ]
        assert Alias.objects.count() == 3
        assert _axe_serious(page) == []
        assert _page_width(page) <= width
        page.get_by_role("button", name="2 件のエイリアスを削除").click()
        page.wait_for_url("**/aliases/")
        assert _shown_order(page) == ["b"]
        assert (
            "2 件のエイリアスを削除しました。" in page.locator("main .alert-success").inner_text()
        )

        # Nothing selected: refused, saying what to do.
        page.locator("[data-testid=bulk-delete]").click()
        page.wait_for_url("**/aliases/")
        assert "エイリアスが選択されていません。" in page.locator("main .alert-danger").inner_text()
        assert Alias.objects.count() == 1


def test_move_to_position_and_above_the_wildcard(login: Callable[..., Any]) -> None:
    page = login()
    page.emulate_media(reduced_motion="reduce")  # axe must not read colours mid-transition
    for width, height in WIDTHS:
        Alias.objects.all().delete()
        _seed_aliases("a", "*", "b", "c")
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/aliases/")
        assert page.locator("[data-testid=alias-table] th").nth(1).inner_text() == "順序"
        lines = (
            "el => { const r = document.createRange(); r.selectNodeContents(el); "
            "return new Set([...r.getClientRects()].map(q => Math.round(q.top))).size; }"
        )
        # One line each: 「順序」, not 「順/序」, in the header and in the cells.
        assert page.locator("[data-testid=alias-table] th").nth(1).evaluate(lines) == 1
        assert (
            page.locator("[data-testid=alias-table] tbody td.text-nowrap").first.evaluate(lines)
            == 1
        )

        row_c = page.locator("tr[data-alias='c@example.co.jp']")
        row_c.locator("[data-testid=move-to] summary").focus()
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        position = row_c.get_by_label("移動先")
        assert position.evaluate("el => el === document.activeElement") is True
        assert position.input_value() == "4"
        assert _axe_serious(page) == []
        assert _page_width(page) <= width
        position.fill("1")
        position.press("Enter")
        page.wait_for_url("**/aliases/?page=1#alias-*")
        assert _shown_order(page) == ["c", "a", "*", "b"]
        assert (
            "c@example.co.jp を 4 番目から 1 番目へ移動しました。"
            in page.locator("main .alert-success").inner_text()
        )

        # b is shadowed by *@example.co.jp: one click puts it above.
        page.locator("tr[data-alias='b@example.co.jp'] [data-testid=move-above-wildcard]").click()
        page.wait_for_url("**/aliases/?page=1#alias-*")
        assert _shown_order(page) == ["c", "a", "b", "*"]
        assert page.locator("[data-testid=move-above-wildcard]").count() == 0
        assert _axe_serious(page) == []


def test_upload_preview_shows_refused_lines_keeps_missing_aliases_and_offers_no_empty_import(
    login: Callable[..., Any], tmp_path: Path
) -> None:
    _seed_aliases("kept", "same")
    page = login()
    page.emulate_media(reduced_motion="reduce")  # axe must not read colours mid-transition
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/aliases/upload/")
        assert (
            "ファイルにないエイリアスはそのまま残ります。"
            in page.locator("[data-testid=upload-keeps]").inner_text()
        )
        bad = tmp_path / "bad.csv"
        bad.write_bytes(
            (
                HEADER + "same@example.co.jp,x@mail.example.co.jp\r\n<i>oops</i>,x@mail.jp,営業\r\n"
            ).encode()
        )
        page.locator("input[name=file]").set_input_files(str(bad))
        page.locator("[data-testid=preview]").click()
        error_row = page.locator("[data-testid=preview-table] tr[data-line='3']")
        assert error_row.locator("[data-testid=raw-line]").inner_text() == (
            "<i>oops</i>,x@mail.jp,営業"
        )
        assert error_row.locator("[data-cell=alias]").inner_text() == "<i>oops</i>"
        assert error_row.locator("[data-cell=mapped_to]").inner_text() == "x@mail.jp"
        assert page.locator("[data-count=kept]").inner_text() == "ファイルにない (そのまま残す): 1"
        assert _axe_serious(page) == []
        assert _page_width(page) <= width

        same = tmp_path / "same.csv"
        same.write_bytes((HEADER + "same@example.co.jp,x@mail.example.co.jp\r\n").encode())
        page.locator("input[name=file]").set_input_files(str(same))
        page.locator("[data-testid=preview]").click()
        assert page.locator("[data-testid=confirm]").count() == 0
        assert (
            page.locator("[data-testid=preview-no-changes]")
            .inner_text()
            .startswith("このファイルのエイリアスはすべて同じ内容で登録済みです。")
        )
        assert _axe_serious(page) == []
        assert _page_width(page) <= width
    assert Alias.objects.count() == 2
