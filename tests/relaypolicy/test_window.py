"""The editor's page window (relaypolicy.window): which rows a page holds, and how a page's
edits go back into the whole table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaypolicy.window import PAGE_ROWS, Window, apply_window

ROWS = [f"r{number}" for number in range(1, 11)]  # r1 .. r10, positions 1 .. 10


def test_a_short_table_is_one_page() -> None:
    window = Window.for_page(1, PAGE_ROWS)
    assert (window.start, window.count, window.paged, window.is_first, window.is_last) == (
        0,
        PAGE_ROWS,
        False,
        True,
        True,
    )


def test_pages_of_a_long_table() -> None:
    total = PAGE_ROWS * 2 + 7
    assert Window.for_page(2, total) == Window(PAGE_ROWS, PAGE_ROWS, total)
    last = Window.for_page(3, total)
    assert (last.start, last.count, last.pages, last.is_last, last.is_first) == (
        PAGE_ROWS * 2,
        7,
        3,
        True,
        False,
    )
    assert Window.for_page(99, total) == last  # clamped
    assert Window.for_page(0, total).page == 1
    assert Window.for_position(PAGE_ROWS + 1, total).page == 2
    assert Window.for_position(PAGE_ROWS, total).page == 1
    assert last.page_ranges() == [
        (1, 1, PAGE_ROWS),
        (2, PAGE_ROWS + 1, PAGE_ROWS * 2),
        (3, PAGE_ROWS * 2 + 1, total),
    ]


def test_an_empty_table_has_one_empty_page() -> None:
    assert Window.for_page(1, 0) == Window(0, 0, 0)


def test_an_unchanged_window_gives_the_same_table() -> None:
    edited = [(None, row) for row in ROWS[3:6]]
    assert apply_window(ROWS, 3, 3, edited) == (ROWS, [3, 4, 5])


def test_rows_reordered_on_the_page_stay_in_the_window() -> None:
    edited = [(6, "r4"), (4, "r5"), (5, "r6")]
    rows, landed = apply_window(ROWS, 3, 3, edited)
    assert rows == ["r1", "r2", "r3", "r5", "r6", "r4", "r7", "r8", "r9", "r10"]
    assert landed == [5, 3, 4]


def test_a_deleted_row_goes_and_a_new_one_lands_at_the_end_of_the_window() -> None:
    edited = [(4, "r4"), (6, "r6"), (None, "new")]
    rows, landed = apply_window(ROWS, 3, 3, edited)
    assert rows == ["r1", "r2", "r3", "r4", "r6", "new", "r7", "r8", "r9", "r10"]
    assert landed == [3, 4, 5]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (1, ["r5", "r1", "r2", "r3", "r4", "r6", "r7", "r8", "r9", "r10"]),
        (2, ["r1", "r5", "r2", "r3", "r4", "r6", "r7", "r8", "r9", "r10"]),
        (9, ["r1", "r2", "r3", "r4", "r6", "r7", "r8", "r9", "r5", "r10"]),
        (10, ["r1", "r2", "r3", "r4", "r6", "r7", "r8", "r9", "r10", "r5"]),
        (999, ["r1", "r2", "r3", "r4", "r6", "r7", "r8", "r9", "r10", "r5"]),
        (0, ["r5", "r1", "r2", "r3", "r4", "r6", "r7", "r8", "r9", "r10"]),
    ],
)
def test_a_position_off_the_page_moves_the_row_exactly_there(
    target: int, expected: list[str]
) -> None:
    # The page shows r4 .. r6 (positions 4 .. 6); r5 is sent to ``target``.
    rows, landed = apply_window(ROWS, 3, 3, [(4, "r4"), (target, "r5"), (6, "r6")])
    assert rows == expected
    assert rows[landed[1]] == "r5"
    assert [rows[index] for index in landed] == ["r4", "r5", "r6"]


@given(
    total=st.integers(min_value=0, max_value=30),
    data=st.data(),
)
def test_every_row_is_kept_once_and_moved_rows_land_where_asked(
    total: int, data: st.DataObject
) -> None:
    rows = [f"r{number}" for number in range(total)]
    start = data.draw(st.integers(min_value=0, max_value=total))
    count = data.draw(st.integers(min_value=0, max_value=total - start))
    page = rows[start : start + count]
    kept = data.draw(st.lists(st.sampled_from(page), unique=True) if page else st.just([]))
    added = [f"new{number}" for number in range(data.draw(st.integers(0, 3)))]
    positions = st.none() | st.integers(min_value=-2, max_value=total + 5)
    edited = [(data.draw(positions), row) for row in [*kept, *added]]
    result, landed = apply_window(rows, start, count, edited)
    # Nothing outside the window is lost or duplicated, nothing deleted comes back.
    outside = rows[:start] + rows[start + count :]
    assert sorted(result) == sorted(outside + [row for _position, row in edited])
    assert [row for row in result if row in outside] == outside  # their order is kept
    assert [result[index] for index in landed] == [row for _position, row in edited]
    low, high = start + 1, start + len(edited)
    moved = sorted(
        (position, number)
        for number, (position, _row) in enumerate(edited)
        if position is not None and not low <= position <= high
    )
    if len(moved) == 1:
        position, number = moved[0]
        assert landed[number] == min(max(position, 1), len(result)) - 1
