from __future__ import annotations

import pytest

from relaypolicy import services
from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.table import Part, Row, RowKind, Table

pytestmark = pytest.mark.django_db

LAN = Row(RowKind.RULE, "192.168.1.0/24", "default", comment="LAN")


def test_save_stores_rows_in_order_and_bumps_the_version() -> None:
    table = Table(rows=(LAN, Row(RowKind.BLANK), Row(RowKind.RULE, "10.1.1.1", "norelay,2")))
    report = services.relay_table_save(table=table, version=0)
    assert report.has_errors is False
    assert services.relay_table() == table
    assert list(RelayRule.objects.values_list("position", "kind")) == [
        (1, "rule"),
        (2, "blank"),
        (3, "rule"),
    ]
    assert RelayPolicy.load().version == 1


def test_save_refuses_a_stale_version_and_writes_nothing() -> None:
    services.relay_table_save(table=Table(rows=(LAN,)), version=0)
    with pytest.raises(services.StaleTableError):
        services.relay_table_save(table=Table(), version=0)
    assert services.relay_table().rows == (LAN,)
    assert RelayPolicy.load().version == 1


def test_save_refuses_a_table_with_errors_and_writes_nothing() -> None:
    trusted = Table(rows=(Row(RowKind.RULE, "*.*.*.*", "true"),))
    with pytest.raises(services.RelayTableRefused):
        services.relay_table_save(table=trusted, version=0)
    assert (RelayRule.objects.count(), RelayPolicy.load().version) == (0, 0)


def test_findings_for_returns_the_findings_of_one_row() -> None:
    report = services.relay_check(Table(rows=(LAN, Row(RowKind.RULE, "192.168.1.5", "default"))))
    # Row 1 (line 6) is redundant after the /24 on line 5.
    assert [(f.code, f.line) for f in report.findings_for(Part.ROW, 1)] == [("relay.I003", 6)]
    assert report.findings_for(Part.ROW, 0) == []


def test_import_preview_stores_nothing_and_confirm_needs_the_same_version() -> None:
    preview = services.relay_import_preview(data=b"#<> default\n#blank false\n10.0.0.1 default\n")
    token = services.relay_import_token(preview)
    assert RelayRule.objects.count() == 0
    services.relay_table_save(table=Table(rows=(LAN,)), version=0)
    with pytest.raises(services.StaleImportError) as caught:
        services.relay_import_confirm(token=token)
    assert caught.value.text == "#<> default\n#blank false\n10.0.0.1 default\n"
    assert services.relay_table().rows == (LAN,)


def test_import_confirm_imports_exactly_the_previewed_bytes() -> None:
    preview = services.relay_import_preview(data=b"#<> default\n#blank false\n10.0.0.1 default\n")
    report = services.relay_import_confirm(token=services.relay_import_token(preview))
    assert report.report.table.rows == (Row(RowKind.RULE, "10.0.0.1", "default"),)
    assert services.relay_table().rows == (Row(RowKind.RULE, "10.0.0.1", "default"),)


def test_demo_keeps_rules_that_were_entered() -> None:
    services.relay_table_save(
        table=Table(rows=(Row(RowKind.RULE, "172.16.0.0/16", "default"),)), version=0
    )
    assert services.demo_load() == ["relay rules: 1 row(s) kept as they are"]
    assert [row.pattern for row in services.relay_table().rows] == ["172.16.0.0/16"]


def test_only_the_editor_refuses_a_new_non_ascii_comment() -> None:
    japanese = Table(rows=(Row(RowKind.RULE, "192.168.1.0/24", "default", comment="本社LAN"),))
    with pytest.raises(services.RelayTableRefused) as refused:
        services.relay_table_save(table=japanese, version=0, typed=True)
    assert [(f.code, f.line) for f in refused.value.refused] == [("relay.E046", 4)]
    # A rollback restores an exported (imported) comment as it was.
    services.relay_table_save(table=japanese, version=0)
    assert services.relay_table().rows[0].comment == "本社LAN"
    # Kept as it is, the editor saves it again.
    services.relay_table_save(table=japanese, version=1, typed=True)
    assert RelayPolicy.load().version == 2


def test_the_snapshot_reads_the_table_and_its_version() -> None:
    services.relay_table_save(table=Table(rows=(LAN,)), version=0)
    assert services.relay_table_snapshot() == (Table(rows=(LAN,)), 1)


def _rules(*patterns: str) -> Table:
    return Table(rows=tuple(Row(RowKind.RULE, p, "default") for p in patterns))


@pytest.mark.parametrize(
    "after",
    [
        ("a", "b", "X", "d", "e"),  # one row changed in the middle
        ("a", "b", "d", "e"),  # one deleted
        ("a", "b", "c", "N", "d", "e"),  # one added
        ("b", "a", "c", "d", "e"),  # two swapped at the start
        ("e",),  # most deleted
        (),  # all deleted
        ("a", "b", "c", "d", "e", "f", "g"),  # appended
        ("Z", "a", "b", "c", "d", "e"),  # prepended
        ("a", "a", "a"),
    ],
)
def test_a_save_rewrites_only_the_changed_rows(after: tuple[str, ...]) -> None:
    def ip(letter: str) -> str:
        return f"192.168.{ord(letter)}.1"

    services.relay_table_save(table=_rules(*map(ip, "abcde")), version=0)
    kept = dict(RelayRule.objects.values_list("pattern", "pk"))
    services.relay_table_save(table=_rules(*map(ip, after)), version=1)
    stored = list(RelayRule.objects.order_by("position").values_list("position", "pattern", "pk"))
    assert [(position, pattern) for position, pattern, _pk in stored] == [
        (number, ip(letter)) for number, letter in enumerate(after, start=1)
    ]
    assert services.relay_table() == _rules(*map(ip, after))
    # The unchanged beginning and end keep their rows (nothing else is written).
    same = 0
    while same < min(len(after), 5) and after[same] == "abcde"[same]:
        same += 1
    assert [pk for _position, _pattern, pk in stored[:same]] == [
        kept[ip(letter)] for letter in after[:same]
    ]
