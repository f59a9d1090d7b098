"""The benchmarks' site: a 500-line effect.dat, 100,000 aliases and realistic SMTP sessions.

Pure and deterministic for a given ``random.Random``; used by the simulator, CLI and page
benchmarks (and by ``bench_pages --setup`` to load a database).

The session mix (:func:`make_sessions`), as a day of an SMTP gateway's inlog looks:
clients from the LAN (the rules' ``10.x``/``172.x`` ranges) and from outside; senders that are
local and exist, local and unknown, external, forged (a local domain from outside), the null
sender ``<>`` and the empty one; 1–5 recipients each, local-existing, local-unknown or external;
and in 20 % of the sessions a relay trick as a recipient (``%`` hack, source route, quoted local
part with ``@``, bang path, trailing dot, a local domain in brackets). Addresses repeat as in real
traffic: 3,000 active users, 5,000 outside correspondents, 3,400 client addresses.
"""

from __future__ import annotations

import random

from aliases.aliasfile import Alias
from controlcenter.simulation import Session
from relaypolicy.effectfile import EffectFile, parse_effect

# Sixteen managed domains, as a group company's gateway has: the self-test derives its probes
# from each of them.
DOMAINS = (
    "example.co.jp",
    "example.jp",
    "inner.example.ne.jp",
    "sales.example.com",
    *(f"branch{n:02d}.example.co.jp" for n in range(1, 13)),
)
EXISTING = 99_980  # aliases user000000 .. user099979 exist


def make_effect_text(rng: random.Random, lines: int = 500) -> str:
    """A realistic file: the header, daemon-appended bans, LAN ranges, senders, a terminator."""
    text = ["#<> default", "#blank false", "'generated for the benchmark"]
    kinds = ("ban", "cidr", "wildcard", "domain", "address", "glob")
    while len(text) < lines - 1:
        kind = rng.choice(kinds)
        a, b, c = rng.randrange(1, 224), rng.randrange(256), rng.randrange(256)
        if kind == "ban":
            text.append(f"{a}.{b}.{c}.{rng.randrange(1, 255)} false")
        elif kind == "cidr":
            text.append(f"10.{b}.{c}.0/{rng.choice((24, 26, 28))} default")
        elif kind == "wildcard":
            text.append(f"172.{rng.randrange(16, 32)}.{c}.* default")
        elif kind == "domain":
            text.append(f"spam{b}-{c}.example false")
        elif kind == "address":
            text.append(f"bulk{b}.{c}@marketing.example false")
        else:
            text.append(f"*@news{b}-{c}.example false")
    text.append("*.*.*.* norelay")
    return "\n".join(text) + "\n"


def make_effect(rng: random.Random, lines: int = 500) -> EffectFile:
    return parse_effect(make_effect_text(rng, lines))


def make_aliases(count: int = 100_000) -> list[Alias]:
    """``count`` aliases: plain ones, 16 prefix wildcards and a ``*@domain`` per domain last."""
    aliases = [
        Alias(f"user{n:06d}@{DOMAINS[n % len(DOMAINS)]}", f"user{n:06d}@mbox.example.net")
        for n in range(count - 20)
    ]
    for n in range(16):
        domain = DOMAINS[n % len(DOMAINS)]
        aliases.append(Alias(f"{2000 + n}*@{domain}", f"{2000 + n}*@mbox.example.net"))
    aliases.extend(Alias(f"*@{domain}", "*@mbox.example.net") for domain in DOMAINS)
    return aliases


class _Pools:
    """The addresses a day of traffic draws from: active users write again and again."""

    def __init__(self, rng: random.Random) -> None:
        users = rng.sample(range(EXISTING), 3_000)
        self.local = [f"user{n:06d}@{DOMAINS[n % len(DOMAINS)]}" for n in users]
        self.unknown = [f"nobody{n}@{rng.choice(DOMAINS)}" for n in range(500)]
        self.external = [
            f"person{rng.randrange(100_000)}@isp{rng.randrange(200)}.example.net"
            for _ in range(5_000)
        ]
        self.tricks = [_trick(rng) for _ in range(500)]
        self.lan = [
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{n % 250 + 1}" for n in range(300)
        ]
        self.lan += [
            f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{n + 1}" for n in range(100)
        ]
        self.outside = [
            f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{n % 250 + 1}"
            for n in range(3_000)
        ]
        self.outside += [f"2001:db8:{n:x}::25" for n in range(100)]


def _trick(rng: random.Random) -> str:
    victim = f"victim{rng.randrange(1_000)}"
    outside = f"relay-test{rng.randrange(30)}.invalid"
    local = rng.choice(DOMAINS)
    return rng.choice(
        (
            f"{victim}%{outside}@{local}",
            f"<@{local}:{victim}@{outside}>",
            f'"{victim}@{outside}"@{local}',
            f"{outside}!{victim}@{local}",
            f"{victim}@{outside}.",
            f"{victim}@[{local}]",
            f"{victim}@{outside}@{local}",
        )
    )


def make_sessions(rng: random.Random, count: int, *, fresh: bool = False) -> list[Session]:
    """``count`` sessions in the realistic mix; ``fresh``: every address new (the cold path)."""
    pools = _Pools(rng)
    sessions = []
    for n in range(count):
        client = rng.choice(pools.lan) if rng.random() < 0.3 else rng.choice(pools.outside)
        roll = rng.random()
        if fresh:
            sender = f"fresh{n}@{rng.choice(DOMAINS)}"
        elif roll < 0.45:
            sender = rng.choice(pools.local)  # forged when the client is outside
        elif roll < 0.55:
            sender = rng.choice(pools.unknown)
        elif roll < 0.85:
            sender = rng.choice(pools.external)
        elif roll < 0.90:
            sender = f"bulk{rng.randrange(256)}.{rng.randrange(256)}@marketing.example"
        elif roll < 0.96:
            sender = "<>"
        else:
            sender = ""
        rcpts: list[str] = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 5))):
            kind = rng.random()
            if fresh:
                rcpts.append(f"new{n}.{len(rcpts)}@{rng.choice((*DOMAINS, 'relay.invalid'))}")
            elif kind < 0.5:
                rcpts.append(rng.choice(pools.local))
            elif kind < 0.6:
                rcpts.append(rng.choice(pools.unknown))
            else:
                rcpts.append(rng.choice(pools.external))
        if rng.random() < 0.2:
            rcpts[rng.randrange(len(rcpts))] = rng.choice(pools.tricks)
        sessions.append(Session(client, sender, tuple(rcpts), auth=rng.random() < 0.05))
    return sessions
