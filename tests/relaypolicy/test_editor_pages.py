"""マシンごとの中継 for a long table: a page at a time, each finding once, nothing outside the
page touched by its save."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from controlcenter.findings import Level, make
from relaypolicy import services
from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.rowforms import RuleRowForm
from relaypolicy.table import Row, RowKind, Table, render_table
from relaypolicy.window import PAGE_ROWS

pytestmark = pytest.mark.django_db

TOTAL = PAGE_ROWS * 2 + 20  # three pages, the last one short


def _pattern(number: int) -> str:
    return f"192.168.{number // 200}.{number % 200 + 1}"


@pytest.fixture
def long_table() -> list[Row]:
    rows = [Row(RowKind.RULE, _pattern(number), "default") for number in range(TOTAL)]
    services.relay_table_save(table=Table(rows=tuple(rows)), version=0)
    return rows


def _patterns() -> list[str]:
    return list(RelayRule.objects.order_by("position").values_list("pattern", flat=True))


def _page_data(response: Any) -> dict[str, Any]:
    """What the browser posts for the page as shown (no JavaScript: positions as given)."""
    form = response.context["form"]
    management = form.rows.management_form
    data: dict[str, Any] = {
        management.add_prefix(name): value for name, value in management.initial.items()
    }
    for name in form.policy.fields:
        value = form.policy[name].value()
        data[name] = "" if value is None else value
    for row in form.rows.forms:
        for name in row.fields:
            value = row[name].value()
            if isinstance(value, bool) or value is None:
                if value:
                    data[row.add_prefix(name)] = "on"
                continue
            data[row.add_prefix(name)] = value
    return data


def _row_numbers(response: Any) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="row-no">(\d+)</span>', response.text)]


def test_a_long_table_is_shown_a_page_at_a_time(
    editor_client: Client, long_table: list[Row]
) -> None:
    first = editor_client.get("/relay/machines/")
    assert _row_numbers(first) == list(range(1, PAGE_ROWS + 1))
    assertContains(first, 'data-testid="header-null"')
    assertNotContains(first, 'data-testid="terminator"')
    assertContains(first, 'data-testid="table-pages"')
    assertContains(first, f"{TOTAL} 行中 1–{PAGE_ROWS} 行")

    last = editor_client.get("/relay/machines/?page=3")
    assert _row_numbers(last) == list(range(PAGE_ROWS * 2 + 1, TOTAL + 1))
    assertNotContains(last, 'data-testid="header-null"')
    assertContains(last, 'data-testid="terminator"')
    assertContains(last, 'data-testid="norelay-advice"')

    # A link to an effect.dat line opens the page that holds it (banner + 2 header lines).
    line = 3 + PAGE_ROWS + 5
    middle = editor_client.get(f"/relay/machines/?line={line}")
    assert _row_numbers(middle)[0] == PAGE_ROWS + 1
    assertContains(middle, f'id="line-{line}"')
    assert _row_numbers(editor_client.get(f"/relay/machines/?row={TOTAL}"))[0] == PAGE_ROWS * 2 + 1


def test_a_short_table_keeps_one_page_without_page_links(editor_client: Client) -> None:
    rows = tuple(Row(RowKind.RULE, _pattern(n), "default") for n in range(PAGE_ROWS))
    services.relay_table_save(table=Table(rows=rows), version=0)
    response = editor_client.get("/relay/machines/")
    assert _row_numbers(response) == list(range(1, PAGE_ROWS + 1))
    assertNotContains(response, 'data-testid="table-pages"')
    assertContains(response, 'data-testid="terminator"')


def test_saving_a_page_changes_only_its_rows(editor_client: Client, long_table: list[Row]) -> None:
    before = _patterns()
    page = editor_client.get("/relay/machines/?page=2")
    data = _page_data(page)
    data["form-0-pattern"] = "10.0.0.1"  # No. 51
    data["form-1-DELETE"] = "on"  # No. 52
    extra = data["form-TOTAL_FORMS"] - 1  # the empty row at the end of the page
    data[f"form-{extra}-pattern"] = "10.0.0.2"
    response = editor_client.post("/relay/machines/", data)
    assertRedirects(response, "/relay/machines/?page=2")
    expected = [
        *before[:PAGE_ROWS],
        "10.0.0.1",
        *before[PAGE_ROWS + 2 : PAGE_ROWS * 2],
        "10.0.0.2",
        *before[PAGE_ROWS * 2 :],
    ]
    assert _patterns() == expected
    policy = RelayPolicy.load()
    assert (policy.header, policy.terminator) == (("#<> default", "#blank false"), "norelay")


def test_a_row_can_be_sent_to_a_position_on_another_page(
    editor_client: Client, long_table: list[Row]
) -> None:
    before = _patterns()
    data = _page_data(editor_client.get("/relay/machines/?page=3"))
    data["form-4-ORDER"] = "3"  # No. 105 becomes No. 3
    assert editor_client.post("/relay/machines/", data).status_code == 302
    moved = before[PAGE_ROWS * 2 + 4]
    assert _patterns() == [*before[:2], moved, *[p for p in before[2:] if p != moved]]


def test_a_page_saved_after_someone_else_saved_changes_nothing(
    editor_client: Client, long_table: list[Row]
) -> None:
    data = _page_data(editor_client.get("/relay/machines/?page=2"))
    data["form-0-pattern"] = "10.0.0.1"
    services.relay_table_save(
        table=Table(rows=tuple(long_table[1:])), version=RelayPolicy.load().version
    )
    after_other = _patterns()
    response = editor_client.post("/relay/machines/", data)
    assert response.status_code == 409
    assertContains(response, "10.0.0.1", status_code=409)  # the user's input is kept
    assert _patterns() == after_other


def test_each_finding_is_shown_once_with_a_link_when_its_row_is_on_another_page(
    editor_client: Client, long_table: list[Row]
) -> None:
    rows = list(long_table)
    rows[PAGE_ROWS * 2 + 3] = Row(RowKind.RULE, _pattern(0), "default")  # a duplicate of No. 1
    table = Table(rows=tuple(rows))
    services.relay_table_save(table=table, version=RelayPolicy.load().version)
    report = services.relay_check()
    on_row = [
        f
        for f in report.findings
        if f.line and render_table(table).owners[f.line - 1].index == PAGE_ROWS * 2 + 3
    ]
    assert on_row, "the duplicate must be reported on its row"
    code, line = on_row[0].code, on_row[0].line

    first = editor_client.get("/relay/machines/")
    assertContains(first, 'data-testid="findings-elsewhere"')
    assertContains(first, f'href="?line={line}#line-{line}"')
    assertContains(first, f"番号 {PAGE_ROWS * 2 + 4}")

    last = editor_client.get("/relay/machines/?page=3")
    assert last.text.count(f'data-code="{code}"') == len(
        [f for f in report.findings if f.code == code and f in on_row]
    )
    assertNotContains(last, f'href="?line={line}#line-{line}"')


@pytest.mark.parametrize(
    ("levels", "tone"),
    [((), ""), ((Level.INFO,), ""), ((Level.INFO, Level.WARNING), "warning"),
     ((Level.WARNING, Level.ERROR), "danger")],
)  # fmt: skip
def test_a_row_with_only_notes_is_not_coloured_as_a_warning(
    levels: tuple[Level, ...], tone: str
) -> None:
    row = RuleRowForm()
    row.findings = [make(level, f"relay.T{n}", "x") for n, level in enumerate(levels)]
    assert row.tone == tone


def test_the_final_line_explains_what_norelay_costs_staff_outside(editor_client: Client) -> None:
    services.relay_table_save(
        table=Table(rows=(Row(RowKind.RULE, "192.168.1.0/24", "default"),)), version=0
    )
    response = editor_client.get("/relay/machines/")
    assertContains(response, 'data-testid="norelay-advice" data-terminator="norelay"')
    assertContains(response, "SMTP AUTH")


def test_two_findings_on_a_row_of_another_page_are_both_listed_in_order() -> None:
    from relaypolicy.services import RelayReport
    from relaypolicy.table import Owner, Part
    from relaypolicy.tableforms import RelayTableForm
    from relaypolicy.window import Window

    rows = tuple(Row(RowKind.RULE, _pattern(n), "default") for n in range(TOTAL))
    table = Table(rows=rows)
    rendered = render_table(table)
    line = 4 + PAGE_ROWS * 2  # banner and the two default lines first: No. 101
    assert rendered.owner(line) == Owner(Part.ROW, PAGE_ROWS * 2)
    first = make(Level.WARNING, "relay.T1", "first", line=line)
    second = make(Level.ERROR, "relay.T2", "second", line=line)
    form = RelayTableForm(table=table, version=1, window=Window.for_page(1, TOTAL))
    form.bind_table_rows()
    form.attach(RelayReport(table, rendered, [first, second]), block=False)
    assert form.elsewhere == [(PAGE_ROWS * 2 + 1, first), (PAGE_ROWS * 2 + 1, second)]
