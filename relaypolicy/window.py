"""マシンごとの中継 a page at a time: which rows a page shows and how its edits go back.

No Django here. A table of up to :data:`PAGE_ROWS` rows is edited on one page, as the
vendor's screen does. A longer one (a site may keep thousands of lines) is edited a window at
a time: the page shows the rows ``start .. start + count`` of the stored table and posts back
that window, edited. The rows outside the window stay as they are. A row of the window may be
given a position outside it ("move to No. N"): it leaves the window and lands exactly at that
position of the saved table.

Positions are 1-based row numbers of the rule list (the pinned header and the final line are
not rows). The page carries the table's version, so a window is only ever applied to the rows
it was cut from; a table saved by someone else in between is refused before this runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

#: Rows on one page of the editor. Up to this many rows the whole table is one page.
PAGE_ROWS = 50

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """Rows ``start .. start + count`` of a table of ``total`` rows."""

    start: int
    count: int
    total: int

    @classmethod
    def for_page(cls, page: int, total: int, size: int = PAGE_ROWS) -> Window:
        """Page ``page`` (1-based, clamped to the pages there are)."""
        pages = max(1, -(-total // size))
        page = min(max(page, 1), pages)
        start = (page - 1) * size
        return cls(start=start, count=min(size, max(total - start, 0)), total=total)

    @classmethod
    def for_position(cls, position: int, total: int, size: int = PAGE_ROWS) -> Window:
        """The page holding row ``position`` (1-based)."""
        return cls.for_page((max(position, 1) - 1) // size + 1, total, size)

    @property
    def page(self) -> int:
        return self.start // PAGE_ROWS + 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_ROWS))

    @property
    def paged(self) -> bool:
        """Whether the table needs more than one page."""
        return self.total > PAGE_ROWS

    @property
    def is_first(self) -> bool:
        return self.start == 0

    @property
    def is_last(self) -> bool:
        return self.start + self.count >= self.total

    def page_ranges(self) -> list[tuple[int, int, int]]:
        """(page, first No., last No.) of every page of the table."""
        return [
            (page, (page - 1) * PAGE_ROWS + 1, min(page * PAGE_ROWS, self.total))
            for page in range(1, self.pages + 1)
        ]


def apply_window(
    rows: Sequence[T], start: int, count: int, edited: Sequence[tuple[int | None, T]]
) -> tuple[list[T], list[int]]:
    """The table after a page's edits, and where each edited row landed.

    ``rows`` is the stored table; the page showed ``rows[start:start + count]`` and posts
    ``edited``: the rows it keeps (deleted ones left out, new ones added), each with the
    position the user gave it (``None``: where it stands on the page). Positions inside the
    window's range, ``start + 1 .. start + len(edited)``, order the rows within the window
    (ties keep the page's order); a position outside it moves the row out of the window to
    exactly that position of the result (clamped to the table). Returns the new rows and, for
    each entry of ``edited`` in its given order, its 0-based index in them.
    """
    start = min(max(start, 0), len(rows))
    count = min(max(count, 0), len(rows) - start)
    low, high = start + 1, start + len(edited)
    staying: list[tuple[int, int]] = []  # (position, index in edited)
    moving: list[tuple[int, int]] = []
    for number, (position, _row) in enumerate(edited):
        if position is None or low <= position <= high:
            staying.append((start + number + 1 if position is None else position, number))
        else:
            moving.append((position, number))
    staying.sort()
    order: list[int | None] = [None] * start  # None: a stored row outside the window
    order += [number for _position, number in staying]
    order += [None] * (len(rows) - start - count)
    for position, number in sorted(moving):
        order.insert(min(max(position, 1), len(order) + 1) - 1, number)
    outside = iter([*rows[:start], *rows[start + count :]])
    result: list[T] = []
    landed = [0] * len(edited)
    for index, slot in enumerate(order):
        if slot is None:
            result.append(next(outside))
        else:
            result.append(edited[slot][1])
            landed[slot] = index
    return result, landed
