"""Log reading and replay: ``python -m tests.bench.bench_maillogs [--lines N] [--sessions N]``.

1. Read + aggregate: a generated inlog of ``--lines`` lines (LAN staff, inbound mail, bounces
   without a sender, home users, odd lines, an abuse burst; see ``loggen.py``) is read by the
   pure reader and aggregator in a child process (so its peak RSS is the read's own), side by
   side with ``grep -c`` and ``awk '{print $3}' | sort | uniq -c`` over the same file.
   Targets: at most 15 s of CPU on one core, peak RSS under 300 MB.
2. Replay: ``--sessions`` stored sessions (client IP, sender, recipient drawn from realistic
   pools, so some are identical) against a 500-line effect.dat and 100,000 aliases, compiled
   once. Target: 50,000 sessions/s. Identical sessions are evaluated once (counted), and the
   figure is also given for sessions that are all distinct.
No Django needed; not collected by pytest (the file name is ``bench_*.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controlcenter.simulation import compile_policy
from maillogs import analysis, logfile
from tests.bench.loggen import INNER, write_inlog
from tests.bench.policydata import DOMAINS, make_aliases, make_effect

READ_CPU_TARGET = 15.0
READ_RSS_TARGET_MB = 300
REPLAY_TARGET = 50_000


def read_child(path: Path) -> None:
    """Runs in the child: read and aggregate, print the figures as JSON."""
    gc.disable()
    start = time.perf_counter()
    cpu = time.process_time()
    aggregator = analysis.Aggregator(local_domains=[INNER], is_inside=analysis.private_address)
    for source in logfile.iter_sources(path):
        for record in logfile.read_source(source):
            aggregator.add(record)
    result = aggregator.analysis
    abuse = analysis.detect_abuse(result, local_domains=[INNER])
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "cpu": time.process_time() - cpu,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "mails": result.mails,
                "relayed_outside": abuse.relayed_outside,
                "sessions": len(result.sessions),
                "sessions_dropped": result.sessions_dropped,
                "unknown": result.unknown,
                "spikes": len(abuse.spikes),
            }
        )
    )


def timed_shell(command: str) -> float:
    """The CPU seconds (user + system) the shell pipeline used: comparable on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_read(lines: int) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inlog"
        with path.open("wb") as stream:
            truth = write_inlog(stream, lines)
        size = path.stat().st_size
        child = subprocess.run(
            [sys.executable, "-m", "tests.bench.bench_maillogs", "--read-child", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(child.stdout)
        grep = timed_shell(f"LC_ALL=C grep -c . {path}")
        awk = timed_shell(f"LC_ALL=C awk '{{print $3}}' {path} | LC_ALL=C sort | uniq -c")
    seconds = figures["seconds"]
    print(f"inlog:                   {lines:,} lines, {size / 2**20:.0f} MiB")
    print(
        f"read + aggregate:        {seconds:.1f} s wall, {figures['cpu']:.1f} s CPU, "
        f"{lines / seconds:,.0f} lines/s"
    )
    print(f"peak RSS:                {figures['rss_mb']:.0f} MiB")
    print(
        f"found:                   {figures['mails']:,} mails, {figures['relayed_outside']:,} "
        f"relayed for outside clients (truth {truth.abuse_mails + truth.home_mails:,}), "
        f"{figures['unknown']} unknown lines, {figures['spikes']} spike hours"
    )
    print(
        f"sessions kept:           {figures['sessions']:,} ({figures['sessions_dropped']:,} "
        "over the limits, counted only)"
    )
    cpu = figures["cpu"]
    print(f"grep -c:                 {grep:.2f} s CPU  (ratio {cpu / max(grep, 0.01):.0f}x)")
    print(f"awk | sort | uniq -c:    {awk:.2f} s CPU  (ratio {cpu / max(awk, 0.01):.1f}x)")
    ok = bool(figures["cpu"] <= READ_CPU_TARGET and figures["rss_mb"] < READ_RSS_TARGET_MB)
    print(
        f"target <= {READ_CPU_TARGET:.0f} s CPU, < {READ_RSS_TARGET_MB} MB: "
        f"{'met' if ok else 'MISSED'}"
    )
    return ok


def make_stored(rng: random.Random, count: int, *, distinct: bool) -> list[analysis.StoredSession]:
    clients = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.0.{n}" for n in range(2_000)]
    lan = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{n}" for n in range(200)]
    senders = [f"user{rng.randrange(99_980):06d}@{rng.choice(DOMAINS)}" for _ in range(3_000)]
    senders += [f"someone{n}@isp{n % 50}.example" for n in range(3_000)]
    senders += ["<>", "", "anyone@example.co.jp"]
    local = [f"user{rng.randrange(99_980):06d}@{rng.choice(DOMAINS)}" for _ in range(3_000)]
    outside = [f"victim{n}@relay-test{n % 30}.invalid" for n in range(3_000)]
    seen: set[tuple[str, str, str]] = set()
    sessions: list[analysis.StoredSession] = []
    if not distinct:  # several reads of overlapping periods: each session stored ~3 times
        unique = make_stored(rng, count // 3, distinct=True)
        return sorted(
            (rng.choice(unique) for _ in range(count)),
            key=lambda s: (s.client_ip, s.sender, s.recipient),
        )
    while len(sessions) < count:
        inside = rng.random() < 0.3
        client = rng.choice(lan if inside else clients)
        relayed = rng.random() < 0.4
        key = (client, rng.choice(senders), rng.choice(outside if relayed else local))
        if distinct:
            if key in seen:
                continue
            seen.add(key)
        sessions.append(analysis.StoredSession(*key, rng.randrange(1, 5), relayed, inside))
    sessions.sort(key=lambda s: (s.client_ip, s.sender, s.recipient))  # as the service reads them
    return sessions


def bench_replay(count: int) -> bool:
    rng = random.Random(3)
    effect, aliases = make_effect(rng), make_aliases()
    start = time.perf_counter()
    policy = compile_policy(
        effect=effect, aliases=aliases, local_domains=DOMAINS, gateway_mode=True
    )
    compile_seconds = time.perf_counter() - start
    known = frozenset(a.pattern for a in aliases[:50_000])
    results = {}
    for distinct in (False, True):
        sessions = make_stored(rng, count, distinct=distinct)
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        report = analysis.replay_sessions(policy, sessions, known_senders=known)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        # One core: the CPU time is the figure (the wall clock counts the other processes).
        results[distinct] = count / cpu
        label = "all distinct" if distinct else "with repeats"
        print(
            f"replay ({label}):{' ' * (12 - len(label))}{count / cpu:,.0f} sessions/s CPU, "
            f"{count / seconds:,.0f} wall ({count:,} sessions, {report.duplicates:,} "
            "duplicates evaluated once)"
        )
        del sessions
    print(
        f"policy:                  {len(effect.lines)} lines, {len(aliases):,} aliases, "
        f"compiled once in {compile_seconds * 1000:.0f} ms"
    )
    ok = results[True] >= REPLAY_TARGET
    print(f"target {REPLAY_TARGET:,}/s (all distinct): {'met' if ok else 'MISSED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--read-child", type=Path)
    args = parser.parse_args(argv)
    if args.read_child:
        read_child(args.read_child)
        return 0
    ok = bench_read(args.lines)
    ok = bench_replay(args.sessions) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
