"""Alias import, upload memory and list-page figures at 100,000 aliases.

Run: ``DEBUG=1 .venv/bin/python -m tests.bench.bench_aliases`` (a temporary SQLite database
unless DATABASE_URL is set; run it once per database; ``--part import --rows 1000000`` for the
import at a million rows). What it measures, in one run:

- the import of a 100,000-row CSV into an empty table against Postfix ``postmap`` building a
  hash map of the same 100,000 pairs (the anchor, measured in the same run when ``postmap`` is
  installed): target import <= 8x postmap;
- the peak memory of the upload page (preview, then confirmation) at the upload limit, each
  case in a fresh process: a 20 MiB CSV of valid rows, the same file with every row refused,
  and a 10 MB file with an unclosed quote: target < 300 MB;
- the エイリアス管理 page: page 1, a deep page, a search, p50/p95 of 20 requests each through
  Django's test client (server time, no network): target p50 <= 150 ms.

The machine may be shared: figures are wall-clock; the ratio to postmap is the stable one.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROWS = 100_000
DOMAIN = "example.co.jp"
UPLOAD_BUDGET_MB = 300
PAGE_BUDGET_MS = 150
POSTMAP_RATIO = 8


def _setup() -> None:
    if "DATABASE_URL" not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="bench-aliases-"))
        os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlcenter.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # DEBUG keeps every SQL statement (a 20 MB upload's parameters included) in memory.
    settings.DEBUG = False


def _rows(count: int) -> list[tuple[str, str, str]]:
    return [
        (f"user{i:07d}@{DOMAIN}", f"user{i:07d}@inner.{DOMAIN}", f"社員 {i}") for i in range(count)
    ]


def _csv(rows: list[tuple[str, str, str]]) -> bytes:
    lines = ["alias,mapped_to,comment", *(",".join(row) for row in rows)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _peak_mb() -> float:
    """This process's peak resident memory. On Linux VmHWM, not ru_maxrss: that one is
    inherited through fork and exec, so a child would report its parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _fresh_table() -> None:
    from django.db import connection

    from aliases.models import Alias, LocalDomain
    from controlcenter.models import ServerSettings

    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "unlimited"})
    with connection.cursor() as cursor:
        # Not QuerySet.delete(): it would load every row as a model instance first.
        cursor.execute(f"DELETE FROM {Alias._meta.db_table}")
    if connection.vendor == "postgresql":
        # Earlier runs' deleted rows would otherwise be scanned until autovacuum comes by.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {Alias._meta.db_table}")
    LocalDomain.objects.get_or_create(name=DOMAIN)


def _postmap(rows: list[tuple[str, str, str]], folder: Path) -> float | None:
    """Seconds for ``postmap hash:`` over the same pairs (a private config folder, so no
    Postfix set-up is needed); None without postmap."""
    postmap = shutil.which("postmap", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if postmap is None:
        return None
    (folder / "main.cf").write_text("")
    source = folder / "virtual"
    source.write_text("".join(f"{alias} {target}\n" for alias, target, _c in rows))
    best = float("inf")
    for _ in range(3):
        (folder / "virtual.db").unlink(missing_ok=True)
        start = time.perf_counter()
        subprocess.run([postmap, "-c", str(folder), f"hash:{source}"], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def bench_import(count: int = ROWS) -> None:
    from aliases import importing
    from aliases.models import Alias

    rows = _rows(count)
    data = _csv(rows)
    folder = Path(tempfile.mkdtemp(prefix="bench-postmap-"))
    print(f"CSV: {count:,} rows, {len(data) / 1e6:.1f} MB; database {os.environ['DATABASE_URL']}")

    def run(dry_run: bool) -> importing.ImportReport:
        return importing.aliases_import_csv(
            data=data, encoding="auto", add_domains=False, dry_run=dry_run
        )

    timings = []
    for _ in range(3):
        _fresh_table()
        start = time.perf_counter()
        report = run(False)
        timings.append(time.perf_counter() - start)
        assert (report.created, report.written) == (count, True), report.findings[:3]
    imported = min(timings)
    anchor = _postmap(rows, folder)
    print(f"{f'import {count:,} new rows (best of 3)':<44} {imported:8.3f} s")
    if anchor is None:
        print("postmap: not installed (apt-get install postfix); no ratio")
    else:
        ratio = imported / anchor
        verdict = "ok" if ratio <= POSTMAP_RATIO else "OVER"
        print(f"{f'postmap hash: same {count:,} pairs (best of 3)':<44} {anchor:8.3f} s")
        target = f"target <= {POSTMAP_RATIO} x: {verdict}"
        print(f"{'ratio import / postmap':<44} {ratio:8.1f} x   ({target})")
    start = time.perf_counter()
    report = run(True)
    print(f"{'re-import preview (all unchanged)':<44} {time.perf_counter() - start:8.3f} s")
    assert report.unchanged == count
    print(f"{'peak memory of this process':<44} {_peak_mb():8.1f} MB")
    assert Alias.objects.count() == count
    shutil.rmtree(folder, ignore_errors=True)


def _timed_pages(client: Any, label: str, url: str, runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    p50 = statistics.median(times)
    p95 = sorted(times)[int(0.95 * (len(times) - 1))]
    verdict = "ok" if p50 <= PAGE_BUDGET_MS else "OVER"
    print(f"{label:<44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({verdict})")
    return p50


def bench_pages() -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    user, _created = User.objects.get_or_create(username="bench", defaults={"is_superuser": True})
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    start = time.perf_counter()
    client.get("/aliases/")
    print(f"{'list page 1, first request (cold)':<44} {time.perf_counter() - start:8.3f} s")
    _timed_pages(client, "list page 1", "/aliases/")
    _timed_pages(client, "list page 1000 (deep)", "/aliases/?page=1000")
    _timed_pages(client, "list page 2000 (last)", "/aliases/?page=2000")
    _timed_pages(client, "search 'user0099999' (1 hit)", "/aliases/?q=user0099999")
    _timed_pages(client, "search 'ser00123' (100 hits)", "/aliases/?q=ser00123")
    _timed_pages(client, "search 'inner' (all rows), page 1", "/aliases/?q=inner")
    _timed_pages(client, "search 'inner' (all rows), page 1500", "/aliases/?q=inner&page=1500", 5)


def _upload_files(folder: Path) -> dict[str, Path]:
    from django.conf import settings

    limit = settings.CC_UPLOAD_MAX_BYTES
    files = {}
    valid = folder / "valid.csv"
    with valid.open("wb") as out:
        out.write(b"alias,mapped_to,comment\r\n")
        size, i = 25, 0
        while True:
            line = f"u{i:07d}@{DOMAIN},u{i:07d}@inner.{DOMAIN},社員 {i}\r\n".encode()
            if size + len(line) > limit:
                break
            out.write(line)
            size, i = size + len(line), i + 1
    files["valid rows at the limit"] = valid
    refused = folder / "refused.csv"
    body = valid.read_bytes().replace(DOMAIN.encode(), b"unknown.example.jp")[:limit]
    refused.write_bytes(body[: body.rindex(b"\n") + 1])
    files["every row refused (unknown domain)"] = refused
    quote = folder / "quote.csv"
    body = valid.read_bytes()[:10_000_000]
    quote.write_bytes(b'"a@example.co.jp,b@example.co.jp\r\n' + body[body.index(b"\n") + 1 :])
    files["10 MB, unclosed quote on line 1"] = quote
    return files


def bench_upload_memory() -> None:
    """Each case in a fresh process: ru_maxrss is a high-water mark."""
    folder = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    for label, path in _upload_files(folder).items():
        result = subprocess.run(
            [sys.executable, "-m", "tests.bench.bench_aliases", "--upload", str(path)],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ | {"DATABASE_URL": os.environ["DATABASE_URL"]},
        )
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            raise SystemExit(f"upload case failed: {label}")
        print(f"{label:<44} {result.stdout.strip()}")
    shutil.rmtree(folder, ignore_errors=True)


def upload_once(path: Path) -> None:
    """Preview (and confirm, when importable) ``path`` through the upload page."""
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import setup_test_environment

    from aliases.models import Alias

    setup_test_environment()  # the test client's response.context
    _fresh_table()
    user, _created = User.objects.get_or_create(username="bench", defaults={"is_superuser": True})
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    before = _peak_mb()
    start = time.perf_counter()
    with path.open("rb") as stream:
        response = client.post("/aliases/upload/", {"file": stream, "encoding": "auto"})
    assert response.status_code == 200, response.status_code
    preview = time.perf_counter() - start
    report = response.context["report"]
    confirm = 0.0
    if not report.has_errors:
        start = time.perf_counter()
        token = response.context["upload"].token
        response = client.post("/aliases/upload/confirm/", {"token": token})
        assert response.status_code == 302, response.status_code
        confirm = time.perf_counter() - start
    peak = _peak_mb()
    verdict = "ok" if peak < UPLOAD_BUDGET_MB else "OVER"
    print(
        f"{path.stat().st_size / 1e6:5.1f} MB: preview {preview:6.2f} s, confirm {confirm:6.2f} s, "
        f"{report.created:,} new, {report.error_count:,} errors, {Alias.objects.count():,} stored; "
        f"peak {peak:6.1f} MB (before {before:5.1f})  ({verdict}, budget {UPLOAD_BUDGET_MB} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upload", type=Path, help="(internal) one upload-memory case")
    parser.add_argument(
        "--part", choices=["import", "pages", "upload"], action="append", help="only these"
    )
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the import's CSV")
    args = parser.parse_args()
    _setup()
    if args.upload:
        upload_once(args.upload)
        return
    parts = args.part or ["import", "pages", "upload"]
    if "import" in parts:
        bench_import(args.rows)
    if "pages" in parts:
        bench_pages()
    if "upload" in parts:
        print("upload page peak memory (each in a fresh process):")
        bench_upload_memory()


if __name__ == "__main__":
    main()
