"""A generator of realistic gateway logs (inlog, acceptlog) with a known truth.

Traffic, by share of lines: staff on the LAN (192.168.1.0/24, senders in the inner domain)
sending out and inside; outside servers delivering inbound mail to staff; bounces without a
sender field; two staff members relaying from home (198.51.100.77 and .78) without SMTP AUTH;
odd lines (garbage, a CP932 HELO); and an abuse burst: clients in 185.220.0.0/16 with forged
senders in the inner domain relaying to outside addresses within a few hours.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO

INNER = "example.co.jp"
GATEWAY = "gw.example.co.jp"
LAN = "192.168.1."
HOME_USERS = (("198.51.100.77", f"staff007@{INNER}"), ("198.51.100.78", f"staff011@{INNER}"))
PARTNERS = tuple(f"partner{n}.example" for n in range(40))
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Truth:
    lines: int = 0
    mails: int = 0
    abuse_mails: int = 0
    home_mails: int = 0
    lan_relayed: int = 0
    garbage: int = 0
    missing_sender: int = 0
    abuse_sessions: set[tuple[str, str, str]] = field(default_factory=set)
    lan_clients: set[str] = field(default_factory=set)
    staff_received: set[str] = field(default_factory=set)


def _time(moment: datetime) -> str:
    return f"[{moment.day:02d}/{MONTHS[moment.month - 1]}/{moment.year}:{moment:%H:%M:%S}]"


def inlog_lines(
    count: int,
    *,
    seed: int = 7,
    start: datetime = datetime(2026, 11, 2, 0, 0, 0),  # noqa: DTZ001
    days: int = 7,
    burst_share: float = 0.05,
    staff: int = 200,
    truth: Truth | None = None,
) -> Iterator[str]:
    """``count`` inlog lines (with a line ending) in time order over ``days`` days; the burst
    takes ``burst_share`` of them in three hours of the fifth day."""
    rng = random.Random(seed)
    truth = truth if truth is not None else Truth()
    span = days * 86400
    burst_start = start + timedelta(days=min(4, days - 1), hours=2)
    burst_lines = int(count * burst_share)
    step = span / max(1, count - burst_lines)
    burst_step = 3 * 3600 / max(1, burst_lines)
    normal_at = 0.0
    burst_at = 0.0
    burst_done = 0
    message = 1000
    for _ in range(count):
        message += 1
        normal_time = start + timedelta(seconds=normal_at)
        burst_time = burst_start + timedelta(seconds=burst_at)
        if burst_done < burst_lines and burst_time <= normal_time:
            burst_done += 1
            burst_at += burst_step
            ip = f"185.220.{rng.randrange(0, 4)}.{rng.randrange(1, 255)}"
            sender = f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}{rng.randrange(100000)}@{INNER}"
            rcpt = f"user{rng.randrange(10**6)}@victim{rng.randrange(500)}.example"
            truth.abuse_mails += 1
            truth.mails += 1
            truth.abuse_sessions.add((ip, sender, rcpt))
            yield f"<B{message:010d}@{GATEWAY}> {_time(burst_time)} {ip} unknown {sender} {rcpt}\n"
            continue
        normal_at += step
        roll = rng.random()
        moment = _time(normal_time)
        person = f"staff{rng.randrange(staff):03d}@{INNER}"
        if roll < 0.0004:
            truth.garbage += 1
            yield rng.choice(
                (
                    "garbage line without any structure\n",
                    f"<B{message}@{GATEWAY}> [99/Foo/2026:25:00:00] 1.2.3.4 x a@b c@d\n",
                    f"<B{message}@{GATEWAY}> {moment} not-an-ip helo a@b c@d\n",
                )
            )
            continue
        if roll < 0.35:
            host = f"{LAN}{rng.randrange(10, 250)}"
            truth.lan_clients.add(host)
            if rng.random() < 0.6:
                rcpt = f"contact{rng.randrange(500)}@{rng.choice(PARTNERS)}"
                truth.lan_relayed += 1
            else:
                rcpt = f"staff{rng.randrange(staff):03d}@{INNER}"
                truth.staff_received.add(rcpt)
            truth.mails += 1
            helo = f"pc{host.rsplit('.', 1)[1]}.{INNER}"
            yield f"<B{message:010d}@{GATEWAY}> {moment} {host} {helo} {person} {rcpt}\n"
        elif roll < 0.9:
            ip = f"203.0.113.{rng.randrange(1, 255)}"
            partner = rng.choice(PARTNERS)
            truth.staff_received.add(person)
            truth.mails += 1
            yield (
                f"<B{message:010d}@{GATEWAY}> {moment} {ip} mx.{partner} "
                f"info{rng.randrange(50)}@{partner} {person}\n"
            )
        elif roll < 0.95:
            ip = f"203.0.113.{rng.randrange(1, 255)}"
            truth.missing_sender += 1
            truth.staff_received.add(person)
            truth.mails += 1
            yield f"<B{message:010d}@{GATEWAY}> {moment}\t{ip}\tmx.bounce.example\t{person}\n"
        elif roll < 0.951:
            ip, sender = HOME_USERS[rng.randrange(2)]
            truth.home_mails += 1
            truth.mails += 1
            rcpt = f"client{rng.randrange(50)}@{rng.choice(PARTNERS)}"
            yield f"<B{message:010d}@{GATEWAY}> {moment} {ip} home-pc {sender} {rcpt}\n"
        else:
            ip = f"{LAN}{rng.randrange(10, 250)}"
            truth.lan_clients.add(ip)
            rcpt = f"staff{rng.randrange(staff):03d}@{INNER}"
            truth.staff_received.add(rcpt)
            truth.mails += 1
            yield f"<B{message:010d}@{GATEWAY}> {moment} {ip} 営業部PC {person} {rcpt}\n"
    truth.lines = count


def write_inlog(stream: IO[bytes], count: int, **options: object) -> Truth:
    """Write ``count`` lines (CP932 where a HELO is Japanese) and return the truth."""
    truth = Truth()
    for line in inlog_lines(count, truth=truth, **options):  # type: ignore[arg-type]
        stream.write(line.encode("cp932"))
    return truth


def acceptlog_lines(count: int, *, seed: int = 11) -> Iterator[str]:
    """Connection and result records, some aborted, some without a result."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 2, 0, 0, 0)  # noqa: DTZ001
    for n in range(count):
        moment = _time(start + timedelta(seconds=n * 30))
        ip = f"203.0.113.{rng.randrange(1, 255)}"
        yield f"{moment}, ({GATEWAY}), [{ip}]:25, Client accept now.\n"
        roll = rng.random()
        if roll < 0.8:
            yield (
                f"{moment}, ({GATEWAY}), mx.partner.example [{ip}], "
                f"someone@partner.example,<B{n:010d}>,ok\n"
            )
        elif roll < 0.95:
            yield f"{moment}, ({GATEWAY}), unknown [{ip}], abort\n"
