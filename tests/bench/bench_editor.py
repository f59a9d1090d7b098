"""Every page with a long relay table: ``python -m tests.bench.bench_editor [--lines 5000]``.

Loads a ``--lines``-line effect.dat (and ``--aliases`` aliases, one export) through the
management commands into the database named by ``DATABASE_URL`` (replacing what is there:
never point it at a database you care about) or, without it, into a new SQLite file. Then,
in this process through Django's test client (no network, no server), it requests every page
a logged-in administrator can open, including the pages of マシンごとの中継, and saves one page
of the relay table. Per page: the first request after the import (the cached results are
computed then), the warm p50 of ``--repeat`` requests, and the size.

Targets (issues 13 and 14, 2-core machine): every page warm p50 <= 300 ms at 5,000 rules;
マシンごとの中継 under 150 KB at 500 rules (``--lines 500``). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 300.0
TARGET_KIB = 150.0


def _setup(lines: int, aliases: int, folder: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(folder, 'bench.sqlite3')}")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlcenter.settings")
    from tests.bench.bench_pages import load_policy

    load_policy(dict(os.environ), aliases=aliases, lines=lines)


def _pages() -> list[tuple[str, str]]:
    """(name, path) of every page without URL arguments, and samples of those with them."""
    from django.urls import URLPattern, URLResolver, get_resolver, reverse

    from controlcenter.models import Export
    from relaypolicy.models import RelayRule

    found: list[tuple[str, str]] = []

    def walk(patterns: list[Any], namespace: str = "") -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace != "admin":
                    walk(
                        entry.url_patterns, f"{namespace}{entry.namespace}:" * bool(entry.namespace)
                    )
            elif isinstance(entry, URLPattern) and entry.name and not entry.pattern.converters:
                view = getattr(entry.callback, "view_class", None)
                if view is not None and "get" in view.http_method_names and hasattr(view, "get"):
                    found.append((namespace + entry.name, reverse(namespace + entry.name)))

    walk(get_resolver().url_patterns)
    skip = {"logout", "set_language", "controlcenter:audit-log-csv", "aliases:alias-export"}
    pages = [(name, path) for name, path in sorted(found) if name not in skip]
    rules = RelayRule.objects.count()
    export = Export.objects.order_by("-pk").first()
    if export is not None:
        pages.append(("export-detail", reverse("controlcenter:export-detail", args=[export.pk])))
    pages += [
        ("machine-relay middle page", f"/relay/machines/?row={rules // 2}"),
        ("machine-relay last page", f"/relay/machines/?row={rules}"),
        ("machine-relay ?line=", f"/relay/machines/?line={rules // 3}"),
        (
            "simulate (one session)",
            "/relay/test/?client_ip=203.0.113.9&mail_from=someone%40example.net"
            "&rcpt_to=victim%40relay-test.invalid",
        ),
    ]
    return pages


def _time(client: Any, path: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, response.status_code, len(response.content)


def _save_a_page(client: Any) -> tuple[float, float, int]:
    """Save the middle page of the relay table with one row changed; then the page after."""
    from django.test.utils import setup_test_environment

    from tests.relaypolicy.test_editor_pages import _page_data

    setup_test_environment()  # response.context
    from relaypolicy.models import RelayRule

    rules = RelayRule.objects.count()
    data = _page_data(client.get(f"/relay/machines/?row={rules // 2}"))
    data["form-0-comment"] = "bench"
    start = time.perf_counter()
    response = client.post("/relay/machines/", data)
    saved = (time.perf_counter() - start) * 1000
    assert response.status_code == 302, response.status_code
    after, _status, _size = _time(client, response["Location"])
    return saved, after, response.status_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--aliases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        _setup(args.lines, args.aliases, folder)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client

        from relaypolicy.models import RelayRule

        user = get_user_model().objects.create_superuser("bench-editor", "", "x" * 20)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        print(
            f"{connection.vendor}: {RelayRule.objects.count()} rows in マシンごとの中継, "
            f"{args.aliases} aliases",
            flush=True,
        )
        print(f"{'page':<44}{'first ms':>10}{'p50 ms':>10}{'KiB':>8}{'status':>8}", flush=True)
        worst: list[tuple[float, str]] = []
        editor_kib = 0.0
        for name, path in _pages():
            first, status, size = _time(client, path)
            warm = [_time(client, path)[0] for _ in range(args.repeat)]
            p50 = statistics.median(warm)
            worst.append((p50, name))
            if name == "relaypolicy:machine-relay":
                editor_kib = size / 1024
            print(f"{name:<44}{first:>10.0f}{p50:>10.0f}{size / 1024:>8.0f}{status:>8}", flush=True)
        saved, after, _status = _save_a_page(client)
        print(f"{'save one page of the relay table':<44}{saved:>10.0f}", flush=True)
        print(f"{'  the page after the save':<44}{after:>10.0f}", flush=True)
        worst.sort(reverse=True)
        slowest, name = worst[0]
        print(
            f"slowest warm page: {name} {slowest:.0f} ms (target <= {TARGET_MS:.0f} ms: "
            f"{'met' if slowest <= TARGET_MS else 'NOT met'}); "
            f"マシンごとの中継 {editor_kib:.0f} KiB (target < {TARGET_KIB:.0f} KiB at 500 rules)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
