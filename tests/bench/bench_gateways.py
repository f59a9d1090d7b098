"""Publishing to gateways and the SMTP check: ``python -m tests.bench.bench_gateways``.

Starts 10 OpenSSH servers on loopback (throwaway keys, a temporary folder each, a stub
epstman) and publishes one export (a 200-line effect.dat, 200 aliases: the stub epstman
forks once per alias) to one of them, then to all 10 concurrently, and to all 10 one after
the other for comparison (wall time). Then starts Postfix on loopback as a closed relay and
times the connection test's 60 probes at the default rate limit and without it. Needs
/usr/sbin/sshd and Postfix (run as root). Not collected by pytest (``bench_*.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from aliases.aliasfile import Alias
from controlcenter.publishing import ExportSource
from controlcenter.simulation import compile_policy
from gateways import smtpcheck
from gateways.publish import publish_ssh
from gateways.transport import SshTarget
from relaypolicy.effectfile import parse_effect
from relaypolicy.table import parse_table
from tests.servers import POSTFIX, SSHD, SshServer, postfix_server, ssh_server

DOMAIN = "example.co.jp"


def make_source(rules: int = 200, aliases: int = 200) -> ExportSource:
    lines = ["#<> default", "#blank false", "192.168.1.0/24 default"]
    lines += [f"10.{i // 250}.{i % 250}.0/24 default" for i in range(rules - 4)]
    lines.append("*.*.*.* norelay")
    table, _findings = parse_table("\n".join(lines) + "\n")
    return ExportSource(
        table=table,
        aliases=tuple(Alias(f"user{i}@{DOMAIN}", f"user{i}@mail.{DOMAIN}") for i in range(aliases)),
    )


def target(server: SshServer) -> SshTarget:
    return SshTarget(
        "127.0.0.1",
        server.port,
        server.username,
        host_key=server.host_key,
        private_key=server.client_key,
    )


async def publish(servers: list[SshServer], source: ExportSource, number: int) -> float:
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(
            publish_ssh(target(s), str(s.program_folder), source, export_number=number)
            for s in servers
        )
    )
    elapsed = time.perf_counter() - started
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"publish failed: {failed}")
    return elapsed


def bench_publish(count: int, aliases: int) -> None:
    source = make_source(aliases=aliases)
    with tempfile.TemporaryDirectory() as base, contextlib.ExitStack() as stack:
        servers = [stack.enter_context(ssh_server(Path(base) / f"s{i}")) for i in range(count)]
        asyncio.run(publish(servers[:1], source, 1))  # warm up (imports, first connection)
        one = min(asyncio.run(publish(servers[:1], source, n)) for n in (2, 3, 4))
        together = min(asyncio.run(publish(servers, source, n)) for n in (5, 6, 7))
        started = time.perf_counter()
        for n, server in enumerate(servers, start=8):
            asyncio.run(publish([server], source, n))
        in_turn = time.perf_counter() - started
    print(f"{aliases} aliases (the stub epstman runs once per alias)")
    print(f"publish to 1 gateway:                {one:6.2f} s")
    print(
        f"publish to {count} gateways concurrently: {together:6.2f} s ({together / one:.1f}x one)"
    )
    print(f"publish to {count} gateways in turn:      {in_turn:6.2f} s")


def bench_smtp(probes_wanted: int) -> None:
    effect = parse_effect("#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* norelay\n")
    aliases = [Alias(f"{name}@{DOMAIN}", f"{name}@mail.{DOMAIN}") for name in ("a", "b", "c")]
    aliases.append(Alias(f"2009*@{DOMAIN}", f"2009*@mail.{DOMAIN}"))
    policy = compile_policy(
        effect=effect, aliases=aliases, local_domains=[DOMAIN], gateway_mode=True
    )
    probes = smtpcheck.plan_probes(policy, limit=probes_wanted)
    with postfix_server(open_relay=False, domain=DOMAIN) as server:
        for label, rate in (("default rate limit", smtpcheck.DEFAULT_RATE), ("no rate limit", 0.0)):
            result = smtpcheck.check_gateway("127.0.0.1", server.port, policy, probes, rate=rate)
            assert not result.error, result.error
            print(
                f"SMTP check, {len(result.probes)} probes, {label} ({rate:g}/s): "
                f"{result.seconds:6.2f} s, {result.mismatches} mismatches"
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateways", type=int, default=10)
    parser.add_argument("--probes", type=int, default=60)
    parser.add_argument("--aliases", type=int, default=200, help="0: measure the transport alone")
    args = parser.parse_args()
    if not SSHD.exists() or not POSTFIX.exists():
        print("needs /usr/sbin/sshd and /usr/sbin/postfix: skipped")
        return 0
    bench_publish(args.gateways, args.aliases)
    bench_smtp(args.probes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
