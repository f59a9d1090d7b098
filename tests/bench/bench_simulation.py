"""Throughput of the relay simulator: ``python -m tests.bench.bench_simulation [--sessions N]``.

Builds a 500-line effect.dat and 100,000 aliases, compiles the policy once and evaluates
sessions drawn from realistic pools (a repeated mix of clients, senders and recipients, as in a
day of inlog), then a cold run where every address is new. The target is 20,000 sessions/s in
one process on the warm mix; the cold run shows the floor (strict path parsing dominates it).
No Django needed; not collected by pytest (the file name is ``bench_*.py``).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
import tracemalloc

from aliases.aliasfile import Alias
from controlcenter.selftest import run_selftest
from controlcenter.simulation import Policy, Session, compile_policy, evaluate_session
from relaypolicy.effectfile import EffectFile, parse_effect

DOMAINS = ("example.co.jp", "example.jp", "inner.example.ne.jp", "sales.example.com")
TARGET = 20_000


def make_effect(rng: random.Random, lines: int = 500) -> EffectFile:
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
    return parse_effect("\n".join(text) + "\n")


def make_aliases(count: int = 100_000) -> list[Alias]:
    aliases = [
        Alias(f"user{n:06d}@{DOMAINS[n % len(DOMAINS)]}", f"user{n:06d}@mbox.example.net")
        for n in range(count - 20)
    ]
    for n in range(16):
        domain = DOMAINS[n % len(DOMAINS)]
        aliases.append(Alias(f"{2000 + n}*@{domain}", f"{2000 + n}*@mbox.example.net"))
    aliases.extend(Alias(f"*@{domain}", "*@mbox.example.net") for domain in DOMAINS)
    return aliases


def make_sessions(rng: random.Random, count: int, *, fresh: bool = False) -> list[Session]:
    clients = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.0.{n}" for n in range(2_000)]
    clients += [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{n}" for n in range(200)]
    senders = [f"user{rng.randrange(99_980):06d}@{rng.choice(DOMAINS)}" for _ in range(3_000)]
    senders += [f"someone{n}@isp{n % 50}.example" for n in range(3_000)]
    senders += ["<>", "", "anyone@example.co.jp", "bulk1.2@marketing.example"]
    rcpts = [f"user{rng.randrange(99_980):06d}@{rng.choice(DOMAINS)}" for _ in range(3_000)]
    rcpts += [f"victim{n}@relay-test{n % 30}.invalid" for n in range(3_000)]
    rcpts += ["victim%relay-test.invalid@example.co.jp", "<@example.jp:v@relay-test.invalid>"]
    sessions = []
    for n in range(count):
        rcpt: tuple[str, ...]
        if fresh:
            sender = f"fresh{n}@{rng.choice(DOMAINS)}"
            rcpt = (f"new{n}@relay-test.invalid", f"2001x{n}@{rng.choice(DOMAINS)}")
        else:
            sender = rng.choice(senders)
            rcpt = tuple(rng.choice(rcpts) for _ in range(rng.choice((1, 1, 2, 3))))
        sessions.append(Session(rng.choice(clients), sender, rcpt, auth=rng.random() < 0.05))
    return sessions


def run(policy: Policy, sessions: list[Session], *, as_dict: bool = False) -> float:
    start = time.perf_counter()
    if as_dict:
        for session in sessions:
            evaluate_session(policy, session).as_dict()
    else:
        for session in sessions:
            evaluate_session(policy, session)
    return len(sessions) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    effect, aliases = make_effect(rng), make_aliases()
    gc.collect()
    start = time.perf_counter()
    policy = compile_policy(
        effect=effect, aliases=aliases, local_domains=DOMAINS, gateway_mode=True
    )
    compile_seconds = time.perf_counter() - start
    del policy
    gc.collect()
    tracemalloc.start()  # a second compile, traced: tracemalloc slows it down several times
    policy = compile_policy(
        effect=effect, aliases=aliases, local_domains=DOMAINS, gateway_mode=True
    )
    compiled_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    warm = make_sessions(rng, args.sessions)
    cold = make_sessions(rng, args.sessions // 4, fresh=True)
    warm_rate = run(policy, warm)
    warm_dict_rate = run(policy, warm, as_dict=True)
    cold_rate = run(policy, cold)
    start = time.perf_counter()
    report = run_selftest(policy, lan_ip="10.0.0.1")
    selftest_seconds = time.perf_counter() - start

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"effect.dat lines:        {len(effect.lines)} ({len(effect.rules)} rules)")
    print(f"aliases:                 {len(aliases):,}")
    print(f"compile:                 {compile_seconds * 1000:.0f} ms")
    print(f"compiled policy memory:  {compiled_bytes / 2**20:.1f} MiB (tracemalloc)")
    print(f"sessions/s (warm):       {warm_rate:,.0f}  ({len(warm):,} sessions)")
    print(f"sessions/s (+as_dict):   {warm_dict_rate:,.0f}")
    print(f"sessions/s (cold):       {cold_rate:,.0f}  ({len(cold):,} all-new addresses)")
    print(f"self-test:               {len(report.results)} probes in {selftest_seconds:.2f} s")
    print(f"peak RSS:                {rss_mib:.0f} MiB")
    # The target is for the warm mix: real traffic repeats clients, senders and recipients,
    # and each distinct address is parsed and classified once. The cold run is the floor.
    ok = warm_rate >= TARGET
    print(f"target {TARGET:,}/s (warm):   {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
