"""Alias import and list-page figures at 100,000 aliases.

Run: ``DEBUG=1 .venv/bin/python -m tests.bench.bench_aliases`` (a temporary SQLite database
unless DATABASE_URL is set). Budgets: preview + import <= 10 s, peak memory <= 300 MB,
list page or search <= 200 ms server time, also the first one after a change (the list's
findings are memoised per table state), and a single alias edit < 300 ms.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROWS = 100_000
DOMAIN = "example.co.jp"


def _setup() -> None:
    if "DATABASE_URL" not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="bench-aliases-"))
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlcenter.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _csv() -> bytes:
    lines = ["alias,mapped_to,comment"]
    lines += [f"user{i:06d}@{DOMAIN},user{i:06d}@inner.{DOMAIN},社員 {i}" for i in range(ROWS)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _timed(label: str, run: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = run()
    print(f"{label:<40} {time.perf_counter() - start:8.3f} s")
    return result


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    _setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from aliases import services
    from aliases.models import Alias, LocalDomain
    from controlcenter.models import ServerSettings

    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "unlimited"})
    Alias.objects.all().delete()
    if connection.vendor == "postgresql":
        # Earlier runs' 100,000 deleted rows would otherwise be scanned by every query until
        # autovacuum comes by, and the figures would depend on how many runs came before.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {Alias._meta.db_table}")
    LocalDomain.objects.get_or_create(name=DOMAIN)
    data = _csv()
    print(f"CSV: {ROWS} rows, {len(data) / 1e6:.1f} MB; database {os.environ['DATABASE_URL']}")

    def importer(dry_run: bool) -> Callable[[], services.ImportReport]:
        return lambda: services.aliases_import_csv(
            data=data, encoding="auto", add_domains=False, dry_run=dry_run
        )

    print(f"{'memory before (max RSS)':<40} {_peak_mb():8.1f} MB")
    start = time.perf_counter()
    # Keep only the counts: the page and the command each hold one report at a time.
    created = _timed("preview (dry run)", importer(True)).created
    print(f"{'peak memory after preview (max RSS)':<40} {_peak_mb():8.1f} MB")
    report = _timed("import", importer(False))
    total = time.perf_counter() - start
    print(f"{'preview + import':<40} {total:8.3f} s   (budget 10 s)")
    assert (created, report.created, report.written) == (ROWS, ROWS, True)
    del report
    print(f"{'peak memory (max RSS)':<40} {_peak_mb():8.1f} MB  (budget 300 MB)")
    unchanged = _timed("re-import preview (all unchanged)", importer(True)).unchanged
    assert unchanged == ROWS

    user, _created = User.objects.get_or_create(username="bench", defaults={"is_superuser": True})
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)

    def page(query: str) -> Callable[[], int]:
        def get() -> int:
            response = client.get(f"/aliases/{query}")
            assert response.status_code == 200, response.status_code
            return response.status_code

        return get

    _timed("list page 1 (cold: first request)", page(""))
    for label, query in [
        ("list page 1", ""),
        ("list page 1000 (last)", "?page=1000"),
        ("list page 2000 (last)", "?page=2000"),
        ("search 'user09999' (11 hits)", "?q=user09999"),
        ("search 'inner' (all rows), page 1500", "?q=inner&page=1500"),
        ("filter by domain, page 1000", "?domain=1&page=1000"),
    ]:
        _timed(label, page(query))
    _timed("CSV download (all)", lambda: client.get("/aliases/aliases.csv").content)

    middle = Alias.objects.order_by("position")[ROWS // 2]
    _timed(
        "edit one alias (row 50,001)",
        lambda: services.alias_update(alias=middle, pattern=middle.pattern, target="x@inner.jp"),
    )
    _timed("list page 1000 (first after the edit)", page("?page=1000"))
    _timed(
        "add one wildcard alias",
        lambda: services.alias_create(pattern=f"new*@{DOMAIN}", target="*@inner.jp"),
    )
    _timed("list page 1 (first after the add)", page(""))
    _timed("delete one alias", lambda: services.aliases_delete(ids=[middle.pk]))
    _timed("search 'user09999' (first after the delete)", page("?q=user09999"))


if __name__ == "__main__":
    main()
