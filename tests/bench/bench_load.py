"""Load test: 20 logged-in clients, mixed reads and writes, on `make serve`'s gunicorn.

Run: ``DATABASE_URL=postgres://… DEBUG=1 .venv/bin/python -m tests.bench.bench_load
[--clients 20] [--duration 120]``. Creates a throwaway database (``test_<name>_load``, dropped
at the end; without DATABASE_URL a temporary SQLite file), 20 editors and a domain, starts
``make serve`` (check --deploy, migrate, ensure_admin, gunicorn with 4 workers) on a free
loopback port, and lets every client log in and loop until the time is up:

- first every client logs in (timed apart: the password hash is slow on purpose);
- reads (about half): トップ, エイリアス管理 (list and a search), 変更履歴, 中継の制限,
  マシンごとの中継 and 履歴;
- writes: add an alias of its own (open the form, post it), or change the comment of one of
  its aliases (the last acknowledged comment must be the stored one).

A write is acknowledged when the server answers with its redirect. Afterwards, with the server
stopped, every acknowledged write must be in the database and in the audit log. Prints
requests/s, p50/p95 per kind, errors (5xx, time-outs, broken connections) and lost writes;
exit 1 when a write was lost or an error occurred. Bounded: at most 64 clients and 600 s,
loopback only, 30 s per request.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PASSWORD = "load-test-password-8472"
DOMAIN = "load.example.co.jp"
READS = [
    ("dashboard", "/"),
    ("alias list", "/aliases/"),
    ("audit log", "/system/audit/"),
    ("relay restriction", "/relay/"),
    ("machine relay", "/relay/machines/"),
    ("export history", "/system/publish/history/"),
]
_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _setup(clients: int) -> tuple[Any, str, str]:
    """The throwaway database with its users; returns (connection, original name, URL)."""
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlcenter.settings")
    os.environ.setdefault("DEBUG", "1")
    import django
    from django.conf import settings

    django.setup()
    from django.db import connection

    database = settings.DATABASES["default"]
    original = database["NAME"]
    if connection.vendor == "sqlite":
        database["TEST"] |= {"NAME": str(work / "load.sqlite3")}
    else:
        database["TEST"] |= {"NAME": f"test_{original}_load"}
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    if connection.vendor == "sqlite":
        url = f"sqlite:///{name}"
    else:
        url = (
            f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
            f"{database['PORT'] or 5432}/{name}"
        )
    from aliases import services as alias_services
    from controlcenter import services
    from controlcenter.roles import Role

    services.server_settings_update(changes={"licence": "unlimited"})
    alias_services.domain_create(name=DOMAIN)
    for index in range(clients):
        services.user_create(username=f"load{index:02d}", password=PASSWORD, role=Role.EDITOR)
    from django.db import connections

    connections.close_all()
    return connection, original, url


def _serve(url: str, port: int, var: Path) -> subprocess.Popen[bytes]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CC_", "DJANGO_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"))
    }
    environment |= {
        "DATABASE_URL": url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": HOST,
        "CC_BIND": f"{HOST}:{port}",
        "CC_WORKERS": "4",
        "CC_VAR_DIR": str(var),
        "CC_EXPORT_DIR": str(var / "export"),
        "CC_SSL_REDIRECT": "0",  # plain HTTP on loopback
        "CC_SECURE_COOKIES": "0",
        "CC_ADMIN_PASSWORD": secrets.token_urlsafe(16),
    }
    log = (var / "serve.log").open("wb")
    return subprocess.Popen(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped as one
    )


def _wait_until_up(port: int, server: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("make serve stopped before the server answered")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/accounts/login/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not answer in time")


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    refused: int = 0
    created: list[str] = field(default_factory=list)
    comments: dict[str, tuple[str, int]] = field(default_factory=dict)  # pattern: (last, n)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One logged-in browser: a keep-alive connection and its cookies."""

    def __init__(self, port: int, stats: Stats) -> None:
        self.port = port
        self.stats = stats
        self.cookies: dict[str, str] = {}
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)

    def request(
        self, kind: str, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        headers = {"Host": HOST, "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        start = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
            with self.stats.lock:
                self.stats.errors.append(f"{method} {path}: {type(error).__name__} {error}")
            return 0, "", ""
        elapsed = time.perf_counter() - start
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        with self.stats.lock:
            self.stats.latencies[kind].append(elapsed)
            if response.status >= 500:
                self.stats.errors.append(f"{method} {path}: HTTP {response.status}")
        return response.status, response.headers.get("Location", ""), text

    def token(self, kind: str, path: str) -> str:
        _status, _location, text = self.request(kind, "GET", path)
        match = _TOKEN.search(text)
        return match.group(1) if match else ""

    def login(self, username: str) -> None:
        token = self.token("login", "/accounts/login/")
        status, _location, _text = self.request(
            "login",
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD},
        )
        if status != 302:
            raise SystemExit(f"{username} could not log in (HTTP {status})")


def _log_in(clients: list[Client]) -> None:
    """Every client logs in before the clock starts (the password hash is slow on purpose)."""
    failures: list[str] = []

    def log_in(index: int, client: Client) -> None:
        client.connection.timeout = 120
        try:
            client.login(f"load{index:02d}")
        except SystemExit as error:
            failures.append(str(error))
        client.connection.close()
        client.connection = http.client.HTTPConnection(HOST, client.port, timeout=30)

    threads = [
        threading.Thread(target=log_in, args=(index, client))
        for index, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit("; ".join(failures))


def _run_client(client: Client, index: int, stats: Stats, until: float, seed: int) -> None:
    rng = random.Random(seed + index)
    client.stats = stats
    mine: dict[str, int] = {}  # pattern: pk
    serial = 0
    while time.monotonic() < until:
        roll = rng.random()
        if roll < 0.5:
            kind, path = rng.choice(READS)
            if kind == "alias list" and mine and rng.random() < 0.5:
                kind, path = "alias search", "/aliases/?" + urlencode({"q": f"c{index:02d}-"})
            client.request(kind, "GET", path)
        elif roll < 0.75 or not mine:
            serial += 1
            pattern = f"c{index:02d}-{serial:05d}@{DOMAIN}"
            token = client.token("alias form", "/aliases/add/")
            status, location, _text = client.request(
                "alias add",
                "POST",
                "/aliases/add/",
                {
                    "csrfmiddlewaretoken": token,
                    "pattern": pattern,
                    "target": f"user{index}@inner.example.co.jp",
                    "option": "",
                    "comment": "created",
                },
            )
            if status == 302 and location.startswith("/aliases/"):
                with stats.lock:
                    stats.created.append(pattern)
                _status, _location, text = client.request(
                    "alias search", "GET", "/aliases/?" + urlencode({"q": pattern})
                )
                found = re.search(r'href="/aliases/(\d+)/"', text)
                if found:
                    mine[pattern] = int(found.group(1))
            elif status in (200, 409):
                with stats.lock:
                    stats.refused += 1
        else:
            pattern, pk = rng.choice(sorted(mine.items()))
            token = client.token("alias form", f"/aliases/{pk}/")
            comment = f"edit {serial} {rng.randrange(1_000_000)}"
            serial += 1
            status, _location, _text = client.request(
                "alias edit",
                "POST",
                f"/aliases/{pk}/",
                {
                    "csrfmiddlewaretoken": token,
                    "pattern": pattern,
                    "target": f"user{index}@inner.example.co.jp",
                    "option": "",
                    "comment": comment,
                },
            )
            if status == 302:
                with stats.lock:
                    count = stats.comments.get(pattern, ("", 0))[1]
                    stats.comments[pattern] = (comment, count + 1)
            elif status in (200, 409):
                with stats.lock:
                    stats.refused += 1


def _lost_writes(stats: Stats) -> list[str]:
    from django.db.models import Count

    from aliases.models import Alias
    from controlcenter.models import AuditEntry

    stored = dict(Alias.objects.values_list("pattern", "comment"))
    audited = {
        (action, target): n
        for action, target, n in AuditEntry.objects.filter(
            action__in=("alias.create", "alias.update")
        )
        .values_list("action", "target")
        .annotate(n=Count("id"))
    }
    lost = []
    for pattern in stats.created:
        if pattern not in stored:
            lost.append(f"{pattern}: acknowledged, not in the database")
        if audited.get(("alias.create", pattern), 0) != 1:
            lost.append(f"{pattern}: acknowledged, not once in the audit log")
    for pattern, (comment, count) in stats.comments.items():
        if stored.get(pattern) != comment:
            lost.append(f"{pattern}: last acknowledged comment {comment!r} is not stored")
        if audited.get(("alias.update", pattern), 0) != count:
            lost.append(f"{pattern}: {count} acknowledged edits, not all in the audit log")
    return lost


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    clients = max(1, min(options.clients, 64))
    duration = max(1.0, min(options.duration, 600.0))
    connection, original, url = _setup(clients)
    var = Path(tempfile.mkdtemp(prefix="bench-load-var-"))
    port = _free_port()
    server = _serve(url, port, var)
    stats, logins = Stats(), Stats()
    try:
        _wait_until_up(port, server)
        browsers = [Client(port, logins) for _ in range(clients)]
        started = time.perf_counter()
        _log_in(browsers)
        print(f"{clients} clients logged in in {time.perf_counter() - started:.1f} s")
        until = time.monotonic() + duration
        threads = [
            threading.Thread(target=_run_client, args=(browsers[i], i, stats, until, options.seed))
            for i in range(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=duration + 120)
        elapsed = time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    try:
        lost = _lost_writes(stats)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0, keepdb=False)
    every = [value for values in stats.latencies.values() for value in values]
    print(f"database: {connection.vendor}; gunicorn: 4 workers; {clients} clients; {elapsed:.0f} s")
    print(f"requests: {len(every)}  ({len(every) / elapsed:.1f}/s)")
    print(f"overall: p50 {_percentile(every, 0.5):.0f} ms, p95 {_percentile(every, 0.95):.0f} ms")
    for kind, values in sorted(stats.latencies.items()):
        print(
            f"  {kind:<18} {len(values):>6}  p50 {_percentile(values, 0.5):>6.0f} ms"
            f"  p95 {_percentile(values, 0.95):>6.0f} ms"
            f"  mean {statistics.mean(values) * 1000:.0f} ms"
        )
    print(
        f"acknowledged writes: {len(stats.created)} aliases added, "
        f"{sum(n for _c, n in stats.comments.values())} edits; refused by validation: "
        f"{stats.refused}"
    )
    login = logins.latencies["login"]
    print(
        f"logins (before the clock, not counted above): {len(login)}, "
        f"p50 {_percentile(login, 0.5):.0f} ms, p95 {_percentile(login, 0.95):.0f} ms"
    )
    print(f"errors: {len(stats.errors)}")
    for error in stats.errors[:20]:
        print(f"  {error}")
    print(f"lost writes: {len(lost)}")
    for problem in lost[:20]:
        print(f"  {problem}")
    return 1 if lost or stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
