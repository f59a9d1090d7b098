"""Page load at a real site's size: ``python -m tests.bench.bench_pages [--clients 1,8,32]``.

Runs against ``make serve`` (gunicorn, DEBUG=0) on a free loopback port and the PostgreSQL
database named by ``DATABASE_URL``; with any other database it says so and skips (SQLite is
not what a site of this size runs on). ``--setup`` first loads the benchmark's policy into that
database (500 effect.dat lines, 100,000 aliases, an unlimited licence) through the management
commands, replacing what is there: never point it at a database you care about. A bounded pool
of logged-in clients (one thread, one session cookie each) requests each page in turn for
``--seconds``; per page and client count it prints p50, p95, requests/s, errors and the size.
``--url`` measures an already running server instead (log in with ``--user``/``--password``).

Targets (2-core machine): every page p50 <= 150 ms for one client, the dashboard >= 30
requests/s at 8 clients. Not collected by pytest (the file name is ``bench_*.py``).
"""

from __future__ import annotations

import argparse
import csv
import html
import http.cookiejar
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.bench.policydata import make_aliases, make_effect_text

ROOT = Path(__file__).resolve().parents[2]
PAGES = (
    ("トップ", "/"),
    ("エイリアス管理", "/aliases/"),
    ("エイリアス管理 deep page", "/aliases/?page=1500"),
    ("alias search", "/aliases/?q=user0421"),
    ("マシンごとの中継", "/relay/machines/"),
    ("設定の反映", "/system/publish/"),
    ("セルフテスト", "/relay/test/selftest/"),
    (
        "中継テスト",
        "/relay/test/?client_ip=203.0.113.9&mail_from=someone%40example.net"
        "&rcpt_to=victim%40relay-test.invalid",
    ),
)
USER = "benchadmin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def load_policy(env: dict[str, str], *, aliases: int, lines: int) -> None:
    """The benchmark's policy through the public commands (replaces rules and adds aliases)."""
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as folder:
        effect, table = Path(folder, "effect.dat"), Path(folder, "aliases.csv")
        effect.write_text(make_effect_text(rng, lines), encoding="ascii")
        with table.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            for alias in make_aliases(aliases):
                writer.writerow([alias.pattern, alias.target])
        _manage(env, "migrate", "--no-input", "-v0")
        _manage(env, "configure", "--licence", "unlimited")
        _manage(env, "import_effect", str(effect), "--replace")
        _manage(env, "import_aliases", str(table), "--add-domains")
        # One export, then one more alias: 設定の反映 shows a small pending change, as usual.
        _manage(env, "export_config")
        table.write_text("bench-new@example.co.jp,user000001@mbox.example.net\n", encoding="utf-8")
        _manage(env, "import_aliases", str(table))


class Client:
    """One browser: a cookie jar, logged in once."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = self.opener.open(f"{base}/accounts/login/", timeout=60).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "no CSRF token on the login page"
        data = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": html.unescape(token[1]), "username": user, "password": password}
        ).encode()
        request = urllib.request.Request(
            f"{base}/accounts/login/", data=data, headers={"Referer": f"{base}/accounts/login/"}
        )
        landed = self.opener.open(request, timeout=120)
        assert "/accounts/login/" not in landed.geturl(), "login failed"

    def get(self, path: str) -> tuple[float, int, bool]:
        start = time.perf_counter()
        try:
            with self.opener.open(f"{self.base}{path}", timeout=300) as response:
                size = len(response.read())
                ok = response.status == 200 and "/accounts/login/" not in response.geturl()
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            size, ok = 0, False
        return time.perf_counter() - start, size, ok


def measure(clients: list[Client], path: str, seconds: float) -> dict[str, float]:
    """Every client requests ``path`` back to back for ``seconds`` (at least twice each)."""
    times: list[float] = []
    sizes: list[int] = []
    errors = [0]
    lock = threading.Lock()

    def work(client: Client) -> None:
        done = 0
        while done < 2 or time.perf_counter() < deadline:
            elapsed, size, ok = client.get(path)
            done += 1
            with lock:
                times.append(elapsed)
                sizes.append(size)
                errors[0] += not ok

    for client in clients:  # warm-up requests (several workers), not measured
        client.get(path)
    start = time.perf_counter()
    deadline = start + seconds
    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    times.sort()
    return {
        "p50": statistics.median(times) * 1000,
        "p95": times[min(len(times) - 1, int(len(times) * 0.95))] * 1000,
        "rps": len(times) / wall,
        "n": len(times),
        "errors": errors[0],
        "kib": max(sizes) / 1024,
    }


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env={**env, "CC_BIND": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=30)
            return server
        except OSError:  # refused, reset or timed out while the workers start
            if server.poll() is not None:
                raise SystemExit("make serve stopped; run it by hand to see why") from None
            time.sleep(0.5)
    os.killpg(server.pid, 15)
    raise SystemExit("make serve did not answer within 5 minutes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--setup", action="store_true", help="load the benchmark policy first")
    parser.add_argument("--aliases", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--workers", default="4")
    parser.add_argument("--pages", default="", help="comma-separated page names (default: all)")
    parser.add_argument("--url", help="an already running server")
    parser.add_argument("--user", default=USER)
    parser.add_argument("--password", default="")
    args = parser.parse_args(argv)

    database = os.environ.get("DATABASE_URL", "")
    if not args.url and not database.startswith(("postgres://", "postgresql://")):
        print("skipped: set DATABASE_URL to a PostgreSQL database (its policy is replaced)")
        return 0
    password = args.password or secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CC_SSL_REDIRECT": "0",
        "CC_SECURE_COOKIES": "0",
        "CC_HSTS_SECONDS": "0",
        "CC_WORKERS": args.workers,
        "CC_LOGIN_FAILURE_LIMIT": "1000",
    }
    server = None
    if args.url:
        base, user = args.url.rstrip("/"), args.user
    else:
        if args.setup:
            load_policy({**env, "DEBUG": "1"}, aliases=args.aliases, lines=args.lines)
        user = USER
        # ensure_admin sets the password of an existing administrator only when it is created:
        # a dedicated account whose password is set every run.
        subprocess.run(
            [sys.executable, "-c", _SET_PASSWORD, user, password],
            cwd=ROOT,
            env={**env, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "controlcenter.settings"},
            check=True,
        )
        port = _free_port()
        server = serve(env, port)
        base = f"http://127.0.0.1:{port}"
    wanted = {name.strip() for name in args.pages.split(",") if name.strip()}
    pages = [(name, path) for name, path in PAGES if not wanted or name in wanted]
    try:
        counts = [int(n) for n in args.clients.split(",")]
        pool = [Client(base, user, password) for _ in range(max(counts))]
        print(
            f"{'page':<28}{'clients':>8}{'p50 ms':>10}{'p95 ms':>10}{'req/s':>8}"
            f"{'n':>6}{'err':>5}{'KiB':>8}",
            flush=True,
        )
        for name, path in pages:
            for count in counts:
                row = measure(pool[:count], path, args.seconds)
                print(
                    f"{name:<28}{count:>8}{row['p50']:>10.0f}{row['p95']:>10.0f}"
                    f"{row['rps']:>8.1f}{row['n']:>6.0f}{row['errors']:>5.0f}{row['kib']:>8.0f}",
                    flush=True,
                )
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
    return 0


_SET_PASSWORD = """
import sys, django
django.setup()
from controlcenter.roles import Role
from controlcenter.services import user_create, user_set_password
from django.contrib.auth import get_user_model
name, password = sys.argv[1], sys.argv[2]
user = get_user_model().objects.filter(username=name).first()
if user is None:
    user_create(username=name, password=password, role=Role.ADMINISTRATOR)
else:
    user_set_password(user=user, password=password)
"""

if __name__ == "__main__":
    sys.exit(main())
