"""エイリアス管理's moves at 100,000 aliases: "move to position N" and "move above the wildcard".

Run: ``DEBUG=1 .venv/bin/python -m tests.bench.bench_alias_moves`` (a temporary SQLite database
unless DATABASE_URL is set; run it once per database). Each move is one request's service call:
the write lock, the table's order read once, at most one UPDATE shifting rows by one, the audit
entry. A move into a free position number (the top, the end, a gap) writes one row; a move into
a dense stretch shifts the fewest rows that keep the order, which is worst in the middle.
Target: p50 <= 1 s per pair of moves at 100,000 aliases, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROWS = 100_000
DOMAIN = "example.co.jp"
BUDGET_S = 1.0


def _setup() -> None:
    if "DATABASE_URL" not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="bench-moves-"))
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlcenter.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    settings.DEBUG = False


def _fill() -> None:
    """100,000 aliases in a dense order, the full wildcard in the middle."""
    from aliases import services
    from aliases.models import Alias, LocalDomain
    from controlcenter.models import ServerSettings

    Alias.objects.all().delete()
    server = ServerSettings.load()
    server.licence = "unlimited"
    server.save()
    LocalDomain.objects.get_or_create(name=DOMAIN)
    rows = [f"user{i:07d}@{DOMAIN},user{i:07d}@inner.{DOMAIN}" for i in range(ROWS - 1)]
    rows.insert(ROWS // 2, f"*@{DOMAIN},*@inner.{DOMAIN}")
    report = services.aliases_import_csv(
        data="\n".join(rows).encode(), encoding="auto", add_domains=False, dry_run=False
    )
    assert report.written
    assert Alias.objects.count() == ROWS


def _timed(label: str, call: Callable[[], object], runs: int = 5) -> None:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    p50 = statistics.median(times)
    verdict = "ok" if p50 <= BUDGET_S else "OVER"
    print(f"{label:<56} p50 {p50:7.3f} s  max {max(times):7.3f} s  ({verdict})")


def main() -> None:
    _setup()
    from aliases import services
    from aliases.models import Alias

    print(f"database {os.environ['DATABASE_URL']}, {ROWS:,} aliases")
    _fill()
    last = Alias.objects.order_by("-position").first()
    assert last is not None

    def top_and_back() -> None:
        services.alias_move_to(alias=last, row=1)
        services.alias_move_to(alias=last, row=ROWS)

    def middle_and_back() -> None:
        services.alias_move_to(alias=last, row=ROWS // 4)
        services.alias_move_to(alias=last, row=ROWS)

    def above_wildcard_and_back() -> None:
        report = services.alias_move_above_wildcard(alias=last)
        assert (report.after, report.wildcard) == (ROWS // 2 + 1, f"*@{DOMAIN}")
        services.alias_move_to(alias=last, row=ROWS)

    _timed("last -> 1 and back to the end (2 moves, free numbers)", top_and_back)
    _timed("last -> 25,000 and back (2 moves, 25,000 rows shift)", middle_and_back)
    _timed("last -> above *@ at 50,001 and back (2 moves)", above_wildcard_and_back)
    _timed(
        "alias_move up one, for comparison", lambda: services.alias_move(alias=last, direction="up")
    )


if __name__ == "__main__":
    main()
