"""The list's moves (to a position, above the shadowing wildcard) and the preview's refused
lines: the services added beside ``alias_move`` in :mod:`aliases.services`."""

from __future__ import annotations

import codecs
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliases import services
from aliases.models import Alias, LocalDomain
from controlcenter.models import AuditEntry, ServerSettings

pytestmark = pytest.mark.django_db

DOMAIN = "example.co.jp"


@pytest.fixture
def domain() -> LocalDomain:
    server = ServerSettings.load()
    server.licence = "unlimited"
    server.save()
    return LocalDomain.objects.create(name=DOMAIN)


def add(*locals_: str) -> list[Alias]:
    return [
        services.alias_create(pattern=f"{local}@{DOMAIN}", target=f"{local}@inner.jp").alias
        for local in locals_
    ]


def order() -> list[str]:
    return [
        p.split("@")[0]
        for p in Alias.objects.order_by("position").values_list("pattern", flat=True)
    ]


def test_move_to_shifts_the_rows_between_by_one_either_way(domain: LocalDomain) -> None:
    a, _b, _c, d, e = add("a", "b", "c", "d", "e")
    report = services.alias_move_to(alias=d, row=2)
    assert (report.before, report.after, report.moved, report.wildcard) == (4, 2, True, "")
    assert order() == ["a", "d", "b", "c", "e"]
    report = services.alias_move_to(alias=a, row=4)
    assert (report.before, report.after) == (1, 4)
    assert order() == ["d", "b", "c", "a", "e"]
    # Only the rows between moved: the rows outside keep their positions.
    assert Alias.objects.get(pk=e.pk).position == 5


def test_move_to_clamps_to_the_table_and_a_no_op_is_said(domain: LocalDomain) -> None:
    a, _b, c = add("a", "b", "c")
    assert services.alias_move_to(alias=a, row=99).after == 3
    assert services.alias_move_to(alias=c, row=0).after == 1
    report = services.alias_move_to(alias=c, row=1)
    assert (report.before, report.after, report.moved) == (1, 1, False)
    assert order() == ["c", "b", "a"]


def test_move_to_takes_a_free_number_and_repairs_tied_positions(domain: LocalDomain) -> None:
    a, b, c, d = add("a", "b", "c", "d")
    for alias, position in ((a, 3), (b, 10), (c, 11), (d, 40)):
        Alias.objects.filter(pk=alias.pk).update(position=position)
    services.alias_move_to(alias=d, row=2)
    assert order() == ["a", "d", "b", "c"]
    # A free number between the neighbours: only the moved alias is written.
    assert positions() == [3, 4, 10, 11]
    # Tied positions (a write around the services): numbered first, in the order shown.
    Alias.objects.filter(pk__in=[a.pk, d.pk]).update(position=7)
    shown = order()
    services.alias_move_to(alias=c, row=1)
    assert order() == ["c", *[name for name in shown if name != "c"]]
    assert positions() == sorted(set(positions()))


def positions() -> list[int]:
    return list(Alias.objects.order_by("position").values_list("position", flat=True))


def changed_by(call: Any) -> int:
    """How many rows ``call`` renumbered."""
    before = dict(Alias.objects.values_list("pk", "position"))
    call()
    after = dict(Alias.objects.values_list("pk", "position"))
    return sum(before[pk] != after[pk] for pk in before)


def test_move_shifts_the_fewest_rows_of_a_dense_table(domain: LocalDomain) -> None:
    u = add(*(f"u{i}" for i in range(10)))
    assert positions() == list(range(1, 11))
    # Last to second: the first row moves down to 0 rather than eight rows up.
    assert changed_by(lambda: services.alias_move_to(alias=u[9], row=2)) == 2
    assert order() == ["u0", "u9", *(f"u{i}" for i in range(1, 9))]
    assert positions() == [0, 1, *range(2, 10)]
    # To the end, or into a free number: one row.
    assert changed_by(lambda: services.alias_move_to(alias=u[0], row=10)) == 1
    assert changed_by(lambda: services.alias_move_to(alias=u[1], row=1)) == 1
    assert order() == ["u1", "u9", *(f"u{i}" for i in range(2, 9)), "u0"]
    # No free number near the top any more: the rows between shift (here two).
    assert changed_by(lambda: services.alias_move_to(alias=u[3], row=2)) == 3
    assert order() == ["u1", "u3", "u9", "u2", *(f"u{i}" for i in range(4, 9)), "u0"]
    assert positions() == sorted(set(positions()))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # Gaps of 0 tie two rows (a write around the services), the first gap may start at 0.
    gaps=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=8),
    data=st.data(),
)
def test_move_to_is_a_list_move(domain: LocalDomain, gaps: list[int], data: Any) -> None:
    Alias.objects.all().delete()
    names = [f"u{i}" for i in range(len(gaps))]
    aliases = add(*names)
    position = 0
    for alias, gap in zip(aliases, gaps, strict=True):
        position += gap
        Alias.objects.filter(pk=alias.pk).update(position=position)
    names = order()  # ties: the order the list shows
    aliases = [Alias.objects.get(pattern=f"{name}@{DOMAIN}") for name in names]
    source = data.draw(st.integers(min_value=0, max_value=len(names) - 1))
    row = data.draw(st.integers(min_value=1, max_value=len(names)))

    services.alias_move_to(alias=aliases[source], row=row)

    expected = names[:source] + names[source + 1 :]
    expected.insert(row - 1, names[source])
    assert order() == expected


@pytest.mark.parametrize("move", ["to", "above"])
def test_moves_lock_the_settings_row_first_bump_the_revision_and_are_audited(
    domain: LocalDomain, move: str
) -> None:
    _wild, _other, shadowed = (
        services.alias_create(pattern=f"{local}@{DOMAIN}", target=target).alias
        for local, target in (("*", "*@inner.jp"), ("x", "x@inner.jp"), ("y", "y@inner.jp"))
    )
    revision = ServerSettings.load().alias_revision
    known = list(AuditEntry.objects.values_list("pk", flat=True))
    outer = len(connection.savepoint_ids)
    executed: list[tuple[str, int]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            executed.append((sql, len(connection.savepoint_ids)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        if move == "to":
            report = services.alias_move_to(alias=shadowed, row=1)
        else:
            report = services.alias_move_above_wildcard(alias=shadowed)

    sql, depth = executed[0]
    table = '"controlcenter_serversettings"'
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    assert sql.endswith(f'FROM {table} WHERE {table}."id" = %s LIMIT 21{lock}')
    assert depth == outer + 1
    if connection.features.has_select_for_update:
        locked = [s for s, _d in executed if s.endswith("FOR UPDATE") and '"aliases_alias"' in s]
        # The moved alias; the rows that shift are locked by the UPDATE that shifts them.
        assert len(locked) == 1
    assert ServerSettings.load().alias_revision == revision + 1
    assert (report.before, report.after) == (3, 1)
    assert order() == ["y", "*", "x"]
    entries = list(
        AuditEntry.objects.exclude(pk__in=known).values_list(
            "action", "target", "summary", "before", "after"
        )
    )
    assert entries == [("alias.move", f"y@{DOMAIN}", "up", {"position": 3}, {"position": 1})]


def test_move_of_a_deleted_alias_raises(domain: LocalDomain) -> None:
    (a,) = add("a")
    services.aliases_delete(ids=[a.pk])
    with pytest.raises(Alias.DoesNotExist):
        services.alias_move_to(alias=a, row=1)
    with pytest.raises(Alias.DoesNotExist):
        services.alias_move_above_wildcard(alias=a)


def test_move_above_wildcard_goes_above_the_first_wildcard_that_shadows_it(
    domain: LocalDomain,
) -> None:
    other = LocalDomain.objects.create(name="other.jp")
    services.alias_create(pattern="*@other.jp", target="*@inner.jp")
    add("20*", "first", "2009*", "*", "2009abe", "2010*")
    report = services.alias_move_above_wildcard(
        alias=Alias.objects.get(pattern=f"2009abe@{DOMAIN}")
    )
    # 20* at row 2 shadows it first (the other domain's wildcard does not count).
    assert (report.before, report.after, report.wildcard) == (6, 2, f"20*@{DOMAIN}")
    assert order() == ["*", "2009abe", "20*", "first", "2009*", "*", "2010*"]
    assert other.aliases.count() == 1


def test_move_above_wildcard_of_a_partial_wildcard_under_the_full_one(domain: LocalDomain) -> None:
    add("a", "*", "2010*")
    report = services.alias_move_above_wildcard(alias=Alias.objects.get(pattern=f"2010*@{DOMAIN}"))
    assert (report.after, report.wildcard) == (2, f"*@{DOMAIN}")
    assert order() == ["a", "2010*", "*"]


def test_move_above_wildcard_leaves_an_alias_no_wildcard_shadows(domain: LocalDomain) -> None:
    add("2009*", "2010abe", "abc*")
    revision = ServerSettings.load().alias_revision
    known = AuditEntry.objects.count()
    for pattern in ("2010abe", "abc*", "2009*"):
        report = services.alias_move_above_wildcard(
            alias=Alias.objects.get(pattern=f"{pattern}@{DOMAIN}")
        )
        assert (report.moved, report.wildcard) == (False, "")
    assert order() == ["2009*", "2010abe", "abc*"]
    assert AuditEntry.objects.count() == known
    assert ServerSettings.load().alias_revision == revision + 3  # locked like every write


# --- the preview's refused lines -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (b"a,b\r\nc,d\re,f\ng", "utf-8", {2: "c,d", 3: "e,f", 4: "g"}),
        (codecs.BOM_UTF8 + "エ,x\n".encode(), "utf-8", {1: "エ,x"}),
        ("山田,x\n".encode("cp932") + b"\x82\xff,y\n", "cp932", {1: "山田,x", 2: "\ufffd\uf8f3,y"}),
        ("a,b\r\nc,d\r\n".encode("utf-16"), "utf-16", {1: "a,b", 2: "c,d"}),
        (b"a\tb\x00,\xe2\x80\xae\n", "utf-8", {1: "a\\tb\\x00,\\u202e"}),
    ],
)
def test_upload_lines_reads_physical_lines_as_the_import_numbers_them(
    data: bytes, encoding: str, expected: dict[int, str]
) -> None:
    found = services.upload_lines(data=data, encoding=encoding, lines=expected)
    assert {line: raw.text for line, raw in found.items()} == expected


def test_upload_lines_splits_cells_as_far_as_they_go_and_cuts_long_text() -> None:
    long = "x" * 400
    data = f'a@x.jp,"b@y.jp,0\n{long},b,c,d\n'.encode()
    found = services.upload_lines(data=data, encoding="utf-8", lines=[1, 2, 9])
    assert found[1] == services.RawLine('a@x.jp,"b@y.jp,0', ("a@x.jp", "b@y.jp,0"))
    assert found[2].text == "x" * services.RAW_LINE_LIMIT + "…"
    assert found[2].cells == ("x" * services.RAW_LINE_LIMIT + "…", "b", "c", "d")
    assert found[2].extra_cells == 1
    assert 9 not in found


def test_upload_lines_across_block_boundaries() -> None:
    # A CRLF split between two reads, and a line that starts in one block and ends in the next.
    head = b"h" * ((1 << 20) - 1) + b"\r"
    data = head + b"\nsecond,line\r\nthird\n"
    found = services.upload_lines(data=data, encoding="utf-8", lines=[2, 3])
    assert {n: raw.text for n, raw in found.items()} == {2: "second,line", 3: "third"}
