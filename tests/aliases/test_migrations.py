"""The PostgreSQL-only search index migration, with and without the pg_trgm extension."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import ProgrammingError

migration = importlib.import_module("aliases.migrations.0004_search_index")

pytestmark = pytest.mark.django_db


class FakeCursor:
    def __init__(self, refuse_extension: bool) -> None:
        self.refuse_extension = refuse_extension
        self.executed: list[str] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: Any = None) -> None:
        if self.refuse_extension and "EXTENSION" in sql:
            raise ProgrammingError('permission denied to create extension "pg_trgm"\nHINT: …')
        self.executed.append(sql)


def editor(vendor: str, cursor: FakeCursor) -> Any:
    connection = SimpleNamespace(vendor=vendor, alias="default", cursor=lambda: cursor)
    return SimpleNamespace(connection=connection)


def test_index_is_created_with_the_searched_expression() -> None:
    cursor = FakeCursor(refuse_extension=False)

    migration.create_index(None, editor("postgresql", cursor))

    assert cursor.executed == [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "CREATE INDEX IF NOT EXISTS aliases_alias_search_trgm ON aliases_alias USING gin "
        "((upper((pattern)::text || chr(10) || (target)::text)) gin_trgm_ops)",
    ]


def test_without_the_extension_the_migration_warns_and_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cursor = FakeCursor(refuse_extension=True)

    migration.create_index(None, editor("postgresql", cursor))

    assert cursor.executed == []
    assert capsys.readouterr().err == (
        "  warning: the pg_trgm extension could not be created (permission denied to create "
        'extension "pg_trgm"); the alias search will scan the table. A superuser can run '
        "CREATE EXTENSION pg_trgm; in this database, then 'migrate aliases 0003' and "
        "'migrate aliases' add the index.\n"
    )


def test_sqlite_gets_no_index() -> None:
    cursor = FakeCursor(refuse_extension=False)

    migration.create_index(None, editor("sqlite", cursor))

    assert cursor.executed == []


def test_the_import_rebuilds_the_index_the_migration_creates() -> None:
    from aliases import importing

    cursor = FakeCursor(refuse_extension=False)
    migration.create_index(None, editor("postgresql", cursor))

    assert cursor.executed[1] == importing.SEARCH_INDEX_SQL
