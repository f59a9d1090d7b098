"""Relay validation and the policy self-test at scale: ``python -m tests.bench.bench_relay_safety``.

Builds effect.dat files of 500, 5,000 and 50,000 lines (the header, LAN networks, public
``false`` bans, string-prefix wildcards, single hosts, sender lines, IPv6 networks and the
terminator, in random order and overlapping), with 1,000 aliases, and measures:

- ``validate_rules`` (the whole lint of the relay table, address-space analysis included);
- ``analyse`` alone (the reachable set of every client-IP line);
- the self-test (battery plus the address probes derived from the rules): how many probes ran,
  how many were public, how many ranges they covered, and how long it took.

Target (issue 13): 5,000 lines validated in at most 0.5 s. Figures depend on the machine (and on
whatever else it runs); the script prints them and exits 1 only if the 5,000-line validation
misses the target by more than a factor of two. Not collected by pytest (``bench_*.py``).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from aliases.aliasfile import Alias
from controlcenter.selftest import run_selftest
from controlcenter.simulation import compile_policy
from relaypolicy.addrspace import analyse
from relaypolicy.effectfile import EffectFile, parse_effect
from relaypolicy.validation import validate_rules

TARGET_5000 = 0.5


def make_effect(rng: random.Random, lines: int) -> EffectFile:
    text = ["#<> default", "#blank false"]
    while len(text) < lines - 1:
        kind = rng.randrange(9)
        b, c, d = (rng.randrange(256) for _ in range(3))
        if kind == 0:
            text.append(f"192.168.{b}.0/24 default")
        elif kind == 1:
            text.append(f"10.{b}.{c}.0/{rng.choice((16, 20, 24, 28))} default")
        elif kind == 2:
            text.append(f"{rng.randrange(1, 224)}.{b}.{c}.{d} false")
        elif kind == 3:
            text.append(f"172.{rng.randrange(16, 32)}.{c}* default")
        elif kind == 4:
            text.append(f"{rng.randrange(1, 224)}.{b}.0.0/16 norelay,2")
        elif kind == 5:
            text.append(f"spam{b}-{c}.example false")
        elif kind == 6:
            text.append(f"*@news{b}-{c}.example false")
        elif kind == 7:
            text.append(f"fd{b:02x}:{c:x}::/48 default")
        else:
            text.append(f"2001:db8:{b:x}{c:02x}::/64 false")
    text.append("*.*.*.* norelay")
    return parse_effect("\n".join(text) + "\n")


def timed(function, *args, repeat: int = 3, **kwargs):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,5000,50000")
    args = parser.parse_args()
    rng = random.Random(13)
    aliases = [Alias(f"user{n}@example.co.jp", f"user{n}@inner.example.co.jp") for n in range(999)]
    aliases.append(Alias("2009*@example.co.jp", "2009*@inner.example.co.jp"))
    status = 0
    for size in (int(part) for part in args.sizes.split(",")):
        effect = make_effect(rng, size)
        repeat = 1 if size > 10_000 else 3
        seconds, findings = timed(
            validate_rules, effect, gateway_mode=True, aliases=aliases, repeat=repeat
        )
        errors = sum(1 for f in findings if f.is_error)
        print(
            f"validate_rules {size:>6} lines: {seconds:7.3f} s "
            f"({len(findings)} findings, {errors} errors)"
        )
        analysis_seconds, analysis = timed(analyse, effect.lines, repeat=repeat)
        print(
            f"analyse        {size:>6} lines: {analysis_seconds:7.3f} s "
            f"({len(analysis.lines)} client lines)"
        )
        if size == 5000 and seconds > 2 * TARGET_5000:
            status = 1
        if size <= 5000:
            policy = compile_policy(
                effect=effect, aliases=aliases, local_domains=["example.co.jp"], gateway_mode=True
            )
            start = time.perf_counter()
            report = run_selftest(policy, lan_ip="192.168.1.1")
            elapsed = time.perf_counter() - start
            covered = sum(1 for item in report.coverage if item.probes)
            print(
                f"self-test      {size:>6} lines: {elapsed:7.3f} s, "
                f"{len(report.results)} sessions, "
                f"{len(report.addresses)} address probes ({report.public_probe_count} public) "
                f"covering {covered} line ranges; passed={report.passed}"
            )
    print(f"target: 5,000 lines validated in <= {TARGET_5000} s; load average {os.getloadavg()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
