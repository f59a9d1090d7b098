"""Every page, for each role, at desktop (1366 px) and phone (390 px) width.

One crawl per module (one browser context per role and width, pages reused) records what each
page did; the tests below then assert one thing each about one page, so a page owned by another
line of work can be marked ``xfail(strict=True)`` for exactly the check it still fails.

The checks: no sideways scrolling at 390 px; no serious or critical axe-core violation; no English
words in the Japanese interface outside codes, addresses and file content (elements marked
``translate="no"``, ``<code>``, ``<pre>``, ``<kbd>``, ``<samp>`` and ``lang="en"``); no console
errors. Pages are enumerated from the URL resolver, so a new page is swept without editing this
file (one with URL arguments needs a sample in ``_sample_kwargs``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from controlcenter.roles import Role

WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}
ROLES = [Role.VIEWER, Role.EDITOR, Role.ADMINISTRATOR]
CHECKS = ["no-sideways-scroll", "axe", "japanese-only", "no-console-errors"]

# Words that are names, not English prose: protocol verbs, formats, products and units.
ALLOWED_WORDS = {
    "E-POST", "SMTP", "AUTH", "CSV", "IP", "LAN", "MAIL", "FROM", "RCPT", "TO", "HELO", "EHLO",
    "DATA", "effect", "dat", "norelay", "sha256", "ID", "OK", "Excel", "UTF-8", "BOM", "JST",
    "DNS", "TLS", "epstman", "NA", "root", "CR", "LF", "CRLF", "URL", "PC", "IPv4", "IPv6",
    "CIDR", "RFC", "English", "MB", "KB", "ASCII", "CC", "BCC", "Linux", "Windows", "SHA-256",
    "E-Post", "Mail", "Server", "POP", "IMAP", "Shift", "JIS", "CP932",
    "SSH", "SFTP", "OpenSSH", "PEM", "STARTTLS", "RSET", "QUIT",
}  # fmt: skip
_NOT_PROSE = re.compile(
    r"[\w.+*-]*@[\w.-]*|"  # addresses and patterns (also "user@", "*@domain")
    r"(?:[\w-]+\.)+[a-z]{2,}\b|"  # domain and file names
    r"(?:/[\w.@-]+)+/?|"  # paths
    r"\b[a-z]+\.[A-Z]\d{3}\b|"  # finding codes
    r"\b\w+[%!]\S*|"  # routing notations: user%host, host!user
    r"\b\w+=\S*|"  # command arguments: mode=NA
    r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|"  # environment variables: CC_LOG_WORK_DIR
    r"\b\w*\d\w*\b"  # identifiers with digits: queue file B0000001035, CP932
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]|[A-Za-z]")

# Pages whose URL arguments have no sample in _sample_kwargs: skipped, with the reason.
UNSAMPLED: set[str] = set()

# Data, not interface: the user names the crawl logs in with and shows.
USER_NAMES = {"kanri", "sweep-viewer", "sweep-editor", "sweep-administrator"}

# Pages still owned by other lines of work this session: (page name, check) -> reason.
OWNED_ELSEWHERE: dict[tuple[str, str], str] = {}


@dataclass
class Visit:
    path: str
    status: int = 0
    scroll_width: int = 0
    too_wide: list[str] = field(default_factory=list)
    serious: list[str] = field(default_factory=list)
    english: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


def _pages() -> list[tuple[str, str, tuple[str, ...]]]:
    """(url name, route, argument names) of every named page, Django's admin excepted."""
    found: list[tuple[str, str, tuple[str, ...]]] = []

    def walk(patterns: list[Any], namespace: str = "") -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace == "admin":
                    continue
                walk(entry.url_patterns, f"{namespace}{entry.namespace}:" * bool(entry.namespace))
            elif isinstance(entry, URLPattern) and entry.name:
                view = getattr(entry.callback, "view_class", None)
                methods = getattr(view, "http_method_names", ["get"])
                if view is not None and ("get" not in methods or not hasattr(view, "get")):
                    continue
                found.append(
                    (namespace + entry.name, str(entry.pattern), tuple(entry.pattern.converters))
                )

    walk(get_resolver().url_patterns)
    return sorted(found)


PAGES = [name for name, _route, _args in _pages() if name not in {"logout", "set_language"}]
# Pages that no URL name reaches: Django's admin and the page for a missing address.
EXTRA = {
    "admin:index": "/admin/",
    "not-found": "/no-such-page/",
    "simulate-result": "/relay/test/?client_ip=203.0.113.9&mail_from=%3C%3E"
    "&rcpt_to=someone%40example.co.jp%0D%0Avictim%40example.net",
}
PAGES += sorted(EXTRA)


def _sample_kwargs(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "controlcenter:user-edit": {"pk": data["user"].pk},
        "controlcenter:user-password": {"pk": data["user"].pk},
        "controlcenter:export-detail": {"pk": data["export"].pk},
        "controlcenter:export-rollback": {"pk": data["first_export"].pk},
        "aliases:alias-edit": {"pk": data["alias"].pk},
        "aliases:alias-delete": {"pk": data["alias"].pk},
        "aliases:domain-delete": {"pk": data["domain"].pk},
        "aliases:alias-upload-report": {"token": "x"},
        "jobs:detail": {"pk": data["job"].pk},
        "jobs:progress": {"pk": data["job"].pk},
        "maillogs:run-detail": {"pk": data["run"].pk},
        "maillogs:run-delete": {"pk": data["run"].pk},
        "maillogs:job-result": {"job": data["job"].pk},
        "gateways:gateway-detail": {"pk": data["gateway"].pk},
        "gateways:gateway-edit": {"pk": data["gateway"].pk},
        "gateways:publication-detail": {"pk": data["publication"].pk},
        "gateways:check-detail": {"pk": data["check"].pk},
    }


def _seed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from django.apps import apps
    from django.contrib.auth.models import User

    from aliases.models import Alias, LocalDomain
    from controlcenter import services
    from controlcenter.models import ServerSettings
    from controlcenter.roles import sync_role_groups
    from controlcenter.services.demo import demo_load
    from jobs.models import Job
    from maillogs.services import log_read, path_sources
    from tests.maillogs.conftest import write_archive

    sync_role_groups(apps)
    demo_load()
    server = ServerSettings.load()
    server.export_dir = str(tmp_path_factory.mktemp("export"))
    server.save()
    admin = services.user_create(username="kanri", password="x" * 20, role=Role.ADMINISTRATOR)
    first = services.config_export(user=admin).export
    Alias.objects.filter(pk=Alias.objects.order_by("pk").first().pk).delete()  # type: ignore[union-attr]
    second = services.config_export(user=admin).export
    job = Job.objects.create(
        kind="sweep.read", title="ログの読み込み", status="running", done=3, total=10,
        stage="読み込み中", created_by=User.objects.get(pk=admin.pk), next_url="/",
    )  # fmt: skip
    archive = tmp_path_factory.mktemp("logs") / "logs.zip"
    write_archive(archive, lines=300)
    run = log_read(
        sources=path_sources([archive]),
        source_kind="upload",
        label="logs.zip",
        user=admin,
        job_id=job.pk,
    )
    gateway, publication, check = _seed_gateways(admin)
    return {
        "gateway": gateway,
        "publication": publication,
        "check": check,
        "run": run,
        "user": admin,
        "first_export": first,
        "export": second,
        "alias": Alias.objects.order_by("pk").first(),
        "domain": LocalDomain.objects.order_by("pk").first(),
        "job": job,
    }


def _seed_gateways(admin: Any) -> tuple[Any, Any, Any]:
    """An SSH gateway whose host key changed, a publication that failed on it and succeeded
    on this machine's folder, and the connection test after it: every block those pages have."""
    import asyncssh
    from django.utils import timezone

    from gateways import keys
    from gateways.models import Gateway, GatewayKind, GatewayResult, Publication, SmtpCheck

    def public_key() -> str:
        return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()

    pinned, offered = public_key(), public_key()
    now = timezone.now()
    local = Gateway.objects.create(name="このマシン", kind=GatewayKind.LOCAL)
    gateway = Gateway.objects.create(
        name="本社ゲートウェイ", kind=GatewayKind.SSH, host="192.0.2.25", username="epost",
        key_path="/etc/relaycc/id_ed25519", host_key=pinned,
        host_key_fingerprint=keys.fingerprint(pinned), host_key_confirmed_at=now,
        host_key_confirmed_by=admin.username, offered_host_key=offered,
        offered_fingerprint=keys.fingerprint(offered), offered_at=now, logs_pulled_at=now,
        retry_queue={"envelopes": 3, "bytes": 5120, "incoming": 1, "outside": [
            {"domain": "example.net", "envelopes": 2, "bytes": 4096}]},
    )  # fmt: skip
    publication = Publication.objects.create(
        number=900, username=admin.username, status="partial", finished_at=now,
        error="本社ゲートウェイ: …",
    )  # fmt: skip
    GatewayResult.objects.create(
        publication=publication, gateway=local, gateway_name=local.name, address=local.address,
        status="succeeded", verified=True, finished_at=now,
        drift=[{"file": "effect.dat", "kind": "daemon"}],
        daemon_lines=[{"line": 9, "text": "203.0.113.7 false", "origin": "appended"}],
        recovered="前回中断された反映を先に元に戻しました(戻したファイル: effect.dat)。",
    )  # fmt: skip
    GatewayResult.objects.create(
        publication=publication, gateway=gateway, gateway_name=gateway.name,
        address=gateway.address, status="failed", finished_at=now, script_status=3,
        script_output="./epstman: alias add failed\n", replaced={"aliases.csv": "a@b,c@d\r\n"},
        drift=[{"file": "aliases.csv", "kind": "modified"}],
    )  # fmt: skip
    probe = {
        "sender_kind": "outside", "mail_from": "", "recipient_kind": "outside",
        "rcpt_to": "victim@example.net", "expected": "reject",
        "expected_reply": "550 5.7.1 Relaying denied", "address_class": "outside",
        "code": 250, "reply": "250 2.1.5 Ok", "stage": "rcpt", "mismatch": True,
        "dangerous": True,
    }  # fmt: skip
    check = SmtpCheck.objects.create(
        username=admin.username, publication=publication, status="partial", finished_at=now,
        mismatches=2, dangerous=1,
        results=[
            {"gateway": gateway.name, "host": gateway.host, "port": 25,
             "client_ip": "192.0.2.1", "tls": True, "banner": "220 mx.example.co.jp ESMTP",
             "error": "", "seconds": 1.5,
             "probes": [probe, probe | {"expected": "deliver", "code": 550,
                                        "reply": "550 5.1.1 User unknown",
                                        "dangerous": False, "mail_from": "a@example.co.jp"}]},
            {"gateway": "大阪支店", "host": "192.0.2.26", "port": 25, "client_ip": "",
             "tls": False, "banner": "", "seconds": 10.0, "probes": [],
             "error": "192.0.2.26:25: 応答がありません(タイムアウト)"},
        ],
    )  # fmt: skip
    return gateway, publication, check


# The outermost elements that stick out on the right: what to fix when a page scrolls sideways.
_TOO_WIDE_JS = r"""() => {
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.getBoundingClientRect().right <= window.innerWidth + 1) continue;
    if (el.parentElement && el.parentElement.getBoundingClientRect().right > window.innerWidth + 1)
      continue;
    const classes = String(el.className || '').trim().split(/\s+/).filter(Boolean);
    out.push([el.tagName.toLowerCase(), ...classes].join('.'));
    if (out.length >= 3) break;
  }
  return out;
}"""

_ENGLISH_JS = """() => {
  const skip = 'code, pre, kbd, samp, script, style, [translate="no"], [lang="en"]';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest(skip)) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    out.push(node.textContent);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label], img[alt]')) {
    if (el.closest(skip)) continue;
    for (const a of ['placeholder', 'title', 'aria-label', 'alt']) {
      if (el.hasAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  out.push(document.title);
  return out.join('\\n');
}"""


def english_words(text: str) -> list[str]:
    """The English words left in ``text`` once addresses, names and allowed terms are removed."""
    text = _NOT_PROSE.sub(" ", text)
    allowed = ALLOWED_WORDS | USER_NAMES
    return sorted({w for w in _WORD.findall(text) if w not in allowed and len(w) > 1})


@dataclass
class Console:
    page: Any = None
    errors: list[str] = field(default_factory=list)

    def record(self, message: Any) -> None:
        # The document's own 403 or 404 is the page under test (a role without the permission,
        # the missing-page page), not an error of the page.
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and (
            message.location.get("url", "") == self.page.url
        ):
            return
        self.errors.append(message.text)


def _visit(page: Any, console: Console, url: str) -> Visit:
    console.page, console.errors = page, []
    visit = Visit(url)
    response = page.goto(url)
    visit.status = response.status if response else 0
    visit.scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if visit.scroll_width > page.viewport_size["width"]:
        visit.too_wide = page.evaluate(_TOO_WIDE_JS)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    for violation in results["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [" ".join(map(str, n["target"])) for n in violation["nodes"][:3]]
            visit.serious.append(f"{violation['id']}: {targets}")
    visit.english = english_words(page.evaluate(_ENGLISH_JS))
    visit.console = list(console.errors)
    return visit


@pytest.fixture(scope="module")
def crawl(
    browser: Any,
    live_server: Any,
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, str, str], Visit]]:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
    from django.core.management import call_command

    axe_script = Axe().axe_script
    # `make screenshots`: every page as the administrator at both widths, for a reviewer.
    shots = Path(os.environ["CC_SCREENSHOTS"]) if os.environ.get("CC_SCREENSHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    visits: dict[tuple[str, str, str], Visit] = {}
    with django_db_blocker.unblock():
        try:
            data = _seed(tmp_path_factory)
            samples = _sample_kwargs(data)
            urls = []
            for name in PAGES:
                try:
                    urls.append((name, EXTRA.get(name) or reverse(name, kwargs=samples.get(name))))
                except NoReverseMatch:
                    UNSAMPLED.add(name)  # a page with arguments and no sample yet
            urls = [(name, url) for name, url in urls if not _is_not_a_page(data["user"], url)]
            for role in ROLES:
                user = services_user(role)
                client = Client()
                client.force_login(user)
                cookie = {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
                for width_name, (width, height) in WIDTHS.items():
                    context = browser.new_context(
                        locale="ja-JP",
                        base_url=live_server.url,
                        viewport={"width": width, "height": height},
                    )
                    context.set_default_timeout(15_000)
                    context.add_cookies([cookie])
                    context.add_init_script(axe_script)  # injected on every load, CSP or not
                    page = context.new_page()
                    console = Console()
                    page.on("console", console.record)
                    page.on("pageerror", lambda e, c=console: c.errors.append(str(e)))
                    for name, url in urls:
                        visits[(name, role.value, width_name)] = _visit(page, console, url)
                        if shots and role is Role.ADMINISTRATOR:
                            file = f"{name.replace(':', '-')}-{width_name}.png"
                            page.screenshot(path=str(shots / file), full_page=True)
                    context.close()
            if os.environ.get("CC_SWEEP_DUMP"):
                dump = {" ".join(key): vars(visit) for key, visit in visits.items()}
                Path(os.environ["CC_SWEEP_DUMP"]).write_text(json.dumps(dump, indent=1))
            yield visits
        finally:
            call_command("flush", interactive=False, verbosity=0)


def _is_not_a_page(user: Any, url: str) -> bool:
    """A download, a file shown as text, or an htmx fragment (no document of its own)."""
    client = Client()
    client.force_login(user)
    response = client.get(url, follow=True)
    return (
        "attachment" in response.get("Content-Disposition", "")
        or not response.get("Content-Type", "").startswith("text/html")
        or not response.content.lstrip().lower().startswith(b"<!doctype html")
    )


def services_user(role: Role) -> Any:
    from controlcenter import services

    return services.user_create(username=f"sweep-{role.value}", password="x" * 20, role=role)


def _params() -> list[Any]:
    params = []
    for name in PAGES:
        for check in CHECKS:
            reason = OWNED_ELSEWHERE.get((name, check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(name, check, id=f"{name}-{check}", marks=marks))
    return params


@pytest.mark.parametrize(("name", "check"), _params())
def test_page(crawl: dict[tuple[str, str, str], Visit], name: str, check: str) -> None:
    if name in UNSAMPLED:
        pytest.skip(f"{name} takes URL arguments: add a sample to _sample_kwargs")
    problems = []
    for (page_name, role, width), visit in sorted(crawl.items()):
        if page_name != name:
            continue
        where = f"{visit.path} as {role} at {width}"
        if check == "no-sideways-scroll" and visit.scroll_width > WIDTHS[width][0]:
            problems.append(f"{where}: {visit.scroll_width} px wide: {visit.too_wide}")
        elif check == "axe" and visit.serious:
            problems.append(f"{where}: {visit.serious}")
        elif check == "japanese-only" and visit.english:
            problems.append(f"{where}: {visit.english}")
        elif check == "no-console-errors" and visit.console:
            problems.append(f"{where}: {visit.console}")
    assert problems == []


def test_every_page_was_visited(crawl: dict[tuple[str, str, str], Visit]) -> None:
    visited = {name for name, _role, _width in crawl}
    not_pages = {
        "aliases:alias-export",
        "controlcenter:audit-log-csv",
        "controlcenter:publish-diff",  # htmx fragment of 設定の反映
        "jobs:progress",
        "maillogs:impact",
    }
    assert set(PAGES) - visited - UNSAMPLED == not_pages


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("変更履歴 created 4, updated 0", ["created", "updated"]),
        ("送信者 someone@example.co.jp は /usr/local/mta/bin の effect.dat", []),
        ("relay.I002 情報 SMTP AUTH、*@domain.jp と 2009*@domain", []),
        ("ルーティング文字 (user%host, host!user) と mode=NA", []),
        ("CC_LOG_WORK_DIR の B0000001035 (CP932)", []),
    ],
)
def test_english_words_ignores_addresses_paths_and_codes(text: str, words: list[str]) -> None:
    assert english_words(text) == words
