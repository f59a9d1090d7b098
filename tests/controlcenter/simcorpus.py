"""A seeded corpus for the simulator's differential and golden tests (not collected by pytest).

Two policies: the benchmark's site (500 effect.dat lines, 100,000 aliases, ``policydata``) and an
edge-case file with every kind of line (keywords, globs, subdomains, IPv6, ``only``, ignored
modifiers, appended ``<IP> false`` lines below the terminator) in both server modes. Sessions:
the realistic mix, a cold mix (every address new), and every relay trick of spec §7 crossed
with the odd senders (null, empty, domain-less, literals) and odd client texts.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Iterable

from aliases.aliasfile import Alias
from controlcenter.simulation import Policy, Session, SessionResult, compile_policy
from relaypolicy.effectfile import parse_effect
from tests.bench.policydata import DOMAINS, make_aliases, make_effect, make_sessions

EDGE_DOMAINS = ("example.co.jp", "domain.jp", "sub.example.ne.jp")

EDGE_EFFECT = """\
#<> default
#blank false
'comment line
192.168.1.0/24 default
192.168.2.* norelay
192.168.3.7 true
192.168.4.0/28 norelay,0
192.168.5.0/24 norelay,2
192.168.6.0/24 norelay,1
192.168.7.0/24 only
192.168.8.0/24  norelay
192.168.9.0/24 frobnicate
192.168.10.0/24
2001:db8:1::/48 default
2001:db8:2::5 true
10.1* default
#host default
#number norelay
#nodomain false
spam.example false
*.evil.example false
boss@example.co.jp true
*@news.example false
*@NEWS2.Example norelay
a*b@glob.example false
*x*@twostar.example false
*@*.wild.example false
*@[192.0.2.1] false
trusted.example true
198.51.100.0/24 false
*.*.*.* norelay
203.0.113.66 false
2001:db8:66::1 false
"""

EDGE_ALIASES = (
    Alias("boss@example.co.jp", "boss@inner.example.net"),
    Alias("Mixed.Case@example.co.jp", "mixed@inner.example.net"),
    Alias("2009*@example.co.jp", "2009*@inner.example.net"),
    Alias("*-ml@domain.jp", "*@lists.example.net"),
    Alias("postmaster@domain.jp", "admin@inner.example.net"),
    Alias("a%b@domain.jp", "ab@inner.example.net"),
    Alias("*@sub.example.ne.jp", "*@inner.example.net"),
    Alias("x*y@domain.jp", "xy@inner.example.net"),
    Alias("*@domain.jp", "catch@inner.example.net"),
)

_LOCALS = (
    "boss",
    "Boss",
    "mixed.case",
    "2009",
    "2009abc",
    "team-ml",
    "-ml",
    "postmaster",
    "Postmaster",
    "nobody",
    "xy",
    "xZy",
    "a%b",
    "user%relay-test.invalid",
    "relay-test.invalid!user",
    '"user@relay-test.invalid"',
    '"a b"',
    '"quoted"',
    '"q\\"x"',
    "a..b",
    ".a",
    "a.",
    "a b",
    "x" * 64,
    "x" * 65,
    "ünï",
    "user@other.example",
)
_DOMAINS = (
    "example.co.jp",
    "EXAMPLE.CO.JP",
    "example.co.jp.",
    "example.co.jp..",
    "domain.jp",
    "notdomain.jp",
    "domain.jp.evil.example",
    "sub.domain.jp",
    "sub.example.ne.jp",
    "news.example",
    "news2.example",
    "glob.example",
    "twostar.example",
    "a.wild.example",
    "spam.example",
    "x.evil.example",
    "trusted.example",
    "relay-test.invalid",
    "192.0.2.1",
    "localhost",
    "[192.0.2.1]",
    "[IPv6:2001:DB8:0::1]",
    "[IPv6:::ffff:192.0.2.1]",
    "[192.0.2.256]",
    "[foo:bar]",
    "-bad.example",
    "a" * 64 + ".example",
    "",
)
ODD_PATHS = (
    "",
    "<>",
    " <> ",
    "<",
    ">",
    "<<a@domain.jp>>",
    "<a@domain.jp> x",
    "<a@domain.jp",
    "a@domain.jp>",
    "spamtest",
    "<spamtest>",
    "host!user",
    "<postmaster>",
    "postmaster",
    "<POSTMASTER>",
    "<@domain.jp>",
    "<@a.example,@b.example:u@c.example>",
    "<@domain.jp:victim@relay-test.invalid>",
    "<@a.example:>",
    "<@a..example:u@c.example>",
    "@a.example,b.example:u@c.example",
    '"unterminated@domain.jp',
    '"a"b@domain.jp',
    '"postmaster"',
    "\tboss@example.co.jp\t",
    "boss@example.co.jp\x00",
    "x@" + "a." * 130 + "jp",
    "<victim@relay-test.invalid@example.co.jp>",
    "<victim%relay-test.invalid@example.co.jp>",
    "<relay-test.invalid!victim@example.co.jp>",
    '<"victim@relay-test.invalid"@example.co.jp>',
    "<victim@relay-test.invalid.>",
    "<victim@[example.co.jp]>",
)
CLIENTS = (
    "203.0.113.50",
    "203.0.113.66",
    "198.51.100.9",
    "192.168.1.20",
    "192.168.2.20",
    "192.168.3.7",
    "192.168.4.3",
    "192.168.5.3",
    "192.168.6.3",
    "192.168.7.3",
    "192.168.8.3",
    "192.168.9.3",
    "192.168.10.3",
    "10.1.2.3",
    "10.10.2.3",
    "010.1.2.3",
    " 192.168.1.20",
    "2001:db8:1::9",
    "2001:DB8:1:0::9",
    "2001:db8:2::5",
    "2001:db8:66::1",
    "::ffff:192.168.1.20",
    "not-an-ip",
    "",
)


def addresses() -> list[str]:
    """Every local part at every domain, bare and in angle brackets, and the odd paths."""
    plain = [f"{local}@{domain}" if domain else local for local in _LOCALS for domain in _DOMAINS]
    return [*plain, *(f"<{text}>" for text in plain[::3]), *ODD_PATHS]


def edge_policies() -> list[tuple[str, Policy]]:
    effect = parse_effect(EDGE_EFFECT)
    return [
        (
            f"edge-{mode}",
            compile_policy(
                effect=effect,
                aliases=EDGE_ALIASES,
                local_domains=EDGE_DOMAINS,
                gateway_mode=mode == "gateway",
            ),
        )
        for mode in ("gateway", "mailserver")
    ]


def edge_sessions(rng: random.Random, count: int) -> list[Session]:
    """Every address as a sender once (crossed with every client), then random sessions."""
    pool = addresses()
    sessions = [
        Session(client, sender, (rng.choice(pool), rng.choice(pool)), auth=index % 3 == 0)
        for index, (client, sender) in enumerate(itertools.product(CLIENTS, pool))
        if index % 7 == 0 or client == CLIENTS[0]
    ]
    sessions += [Session(CLIENTS[0], "x@relay-test.invalid", (rcpt,)) for rcpt in pool]
    sessions += [
        Session(
            rng.choice(CLIENTS),
            rng.choice(pool),
            tuple(rng.choice(pool) for _ in range(rng.randrange(1, 6))),
            auth=rng.random() < 0.3,
        )
        for _ in range(count)
    ]
    return sessions


def site_policy() -> Policy:
    """The benchmarks' site: 500 effect.dat lines, 100,000 aliases."""
    return compile_policy(
        effect=make_effect(random.Random(5)),
        aliases=make_aliases(),
        local_domains=DOMAINS,
        gateway_mode=True,
    )


def site_sessions(count: int, *, seed: int = 11) -> list[Session]:
    rng = random.Random(seed)
    return [*make_sessions(rng, count), *make_sessions(rng, count // 4, fresh=True)]


def digest(results: Iterable[SessionResult]) -> str:
    """One hash of every field of every result (``repr`` shows even ``Mailbox.quoted``)."""
    hasher = hashlib.sha256()
    for result in results:
        hasher.update(repr(result).encode("utf-8") + b"\n")
    return hasher.hexdigest()


def corpus() -> Iterable[tuple[str, Policy, list[Session]]]:
    for name, policy in edge_policies():
        yield name, policy, edge_sessions(random.Random(name), 4_000)
    yield "site", site_policy(), site_sessions(20_000)


def run(evaluate: Callable[[Policy, Session], SessionResult]) -> dict[str, str]:
    """The digest of each part of the corpus, by name (``edge-gateway``, ``site``, ...)."""
    return {
        name: digest(evaluate(policy, session) for session in sessions)
        for name, policy, sessions in corpus()
    }
