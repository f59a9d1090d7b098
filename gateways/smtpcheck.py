"""接続テスト: replay a safe subset of the self-test against a real gateway over SMTP (no Django).

Only ``EHLO``, ``STARTTLS`` (when offered), ``MAIL FROM``, ``RCPT TO``, ``RSET`` and ``QUIT`` are
ever sent; :func:`_command` refuses any other verb, so ``DATA`` can never go out and no mail is
ever accepted for delivery. The caller decides which hosts are probed (only configured
gateways).

The probes are the self-test's (:func:`controlcenter.selftest.build_probes`) from the one
client this machine can be: itself. The gateway sees our source address, so each session is
evaluated by the simulator with that address as the client: every sender of the battery
(forged local senders, alias senders, an outside sender, ``<>``, an empty ``MAIL FROM:``) with
the relay tricks of spec §7 as recipients. One probe is one ``RCPT TO``.

Per session: connect (timeout), ``EHLO``, ``STARTTLS`` and ``EHLO`` again when offered,
``MAIL FROM``, at most :data:`RCPTS_PER_SESSION` ``RCPT TO`` (so a server's error limit is
never reached), ``RSET``, ``QUIT``. ``RCPT`` commands are spaced by the rate limit.

Each real reply is compared with the simulator's verdict: a 2xx reply is "accepted", anything
else is "refused". A mismatch where the gateway **accepted** a recipient the simulator
**rejects** is dangerous (red): the daemon relays what the simulator rejects. The other way
round (the gateway refuses what the simulator accepts) is a mismatch too, shown as a warning.
"""

from __future__ import annotations

import errno
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from controlcenter.selftest import OUTSIDE_IP, build_probes
from controlcenter.simulation import Policy, Session, evaluate_session

ALLOWED_VERBS = frozenset({"EHLO", "STARTTLS", "MAIL", "RCPT", "RSET", "QUIT"})
RCPTS_PER_SESSION = 8
TIMEOUT = 10.0
DEFAULT_RATE = 20.0  # RCPT commands per second, per gateway
DEFAULT_LIMIT = 200  # probes per gateway


class ForbiddenCommand(RuntimeError):
    """A command outside ALLOWED_VERBS was about to be sent (a programming error)."""


@dataclass(frozen=True)
class Probe:
    """One RCPT TO from one sender, with what the simulator says (filled per client)."""

    sender_kind: str
    mail_from: str
    recipient_kind: str
    rcpt_to: str


@dataclass
class ProbeOutcome:
    sender_kind: str
    mail_from: str
    recipient_kind: str
    rcpt_to: str
    expected: str  # the simulator's verdict: relay, deliver or reject
    expected_reply: str
    address_class: str
    code: int | None = None  # the gateway's reply code to RCPT (or to MAIL when it refused)
    reply: str = ""
    stage: str = "rcpt"  # mail: MAIL FROM was refused; connect: no session
    mismatch: bool = False
    dangerous: bool = False

    @property
    def accepted(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


@dataclass
class GatewayCheck:
    """The check of one gateway."""

    host: str
    port: int
    client_ip: str = ""
    tls: bool = False
    banner: str = ""
    error: str = ""  # one English line; error_reason and error_detail word it for the page
    error_reason: str = ""
    error_detail: str = ""
    probes: list[ProbeOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mismatches(self) -> int:
        return sum(1 for probe in self.probes if probe.mismatch)

    @property
    def dangerous(self) -> int:
        return sum(1 for probe in self.probes if probe.dangerous)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["mismatches"] = self.mismatches
        data["dangerous"] = self.dangerous
        return data


def plan_probes(policy: Policy, *, limit: int = DEFAULT_LIMIT) -> list[Probe]:
    """The self-test's outside-client probes, one per (sender, recipient), at most ``limit``."""
    probes: list[Probe] = []
    for probe in build_probes(policy, outside_ip=OUTSIDE_IP):
        for recipient in probe.recipients:
            probes.append(
                Probe(
                    probe.sender.value,
                    probe.session.mail_from,
                    recipient.kind.value,
                    recipient.address,
                )
            )
    return probes[:limit]


def judge(probe: ProbeOutcome) -> None:
    """Compare the real reply with the simulator's verdict (sets mismatch and dangerous).

    Dangerous: the gateway accepted a recipient the simulator rejects, unless it is the real
    local address of the battery (inbound mail). An accepted routing trick
    (``victim%relay-test.invalid@D``) counts as dangerous although its domain is local: from
    the reply alone nobody can tell whether the daemon will route it onwards.
    """
    if probe.code is None:
        return
    expected_accept = probe.expected in ("relay", "deliver")
    probe.mismatch = probe.accepted != expected_accept
    probe.dangerous = probe.accepted and not expected_accept and probe.recipient_kind != "inbound"


def _sessions(probes: list[Probe]) -> Iterator[tuple[str, str, list[Probe]]]:
    """(sender kind, MAIL FROM, recipients) in order, at most RCPTS_PER_SESSION each."""
    index = 0
    while index < len(probes):
        first = probes[index]
        chunk = [first]
        index += 1
        while (
            index < len(probes)
            and probes[index].mail_from == first.mail_from
            and probes[index].sender_kind == first.sender_kind
            and len(chunk) < RCPTS_PER_SESSION
        ):
            chunk.append(probes[index])
            index += 1
        yield first.sender_kind, first.mail_from, chunk


def _path(address: str) -> str:
    return address if address.startswith("<") else f"<{address}>"


def _command(smtp: smtplib.SMTP, verb: str, argument: str = "") -> tuple[int, str]:
    if verb not in ALLOWED_VERBS:
        raise ForbiddenCommand(verb)
    code, message = smtp.docmd(verb, argument)
    return code, " ".join(f"{code} {message.decode('utf-8', 'replace')}".split())


def _open(host: str, port: int, timeout: float, ehlo_name: str) -> tuple[smtplib.SMTP, str, bool]:
    """A session after EHLO (and STARTTLS with a second EHLO when offered): (smtp, banner, tls)."""
    smtp = smtplib.SMTP(timeout=timeout)
    # connect() does not record the host; STARTTLS needs it (an empty server name is refused).
    smtp._host = host  # type: ignore[attr-defined]
    try:
        code, banner = smtp.connect(host, port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, banner)
        smtp.ehlo(ehlo_name)
        tls = False
        if smtp.has_extn("starttls"):
            # The check is about relaying, not the certificate: gateways often use their own.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            smtp.starttls(context=context)
            smtp.ehlo(ehlo_name)
            tls = True
    except BaseException:
        smtp.close()
        raise
    return smtp, f"{code} {banner.decode('utf-8', 'replace')}", tls


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "refused",
    errno.ETIMEDOUT: "timeout",
    errno.EHOSTUNREACH: "host_unreachable",
    errno.ENETUNREACH: "network_unreachable",
    errno.ECONNRESET: "reset",
}


def _fail(result: GatewayCheck, error: OSError | smtplib.SMTPException) -> None:
    """Record why the session failed: a stable reason, the system's words and one English line."""
    detail = ""
    if isinstance(error, smtplib.SMTPServerDisconnected):
        reason = "disconnected"
    elif isinstance(error, smtplib.SMTPConnectError):
        reason, detail = "greeting", str(error.smtp_code)
    elif isinstance(error, smtplib.SMTPException):
        reason, detail = "smtp", str(error)
    elif isinstance(error, TimeoutError):
        reason = "timeout"
    elif isinstance(error, socket.gaierror):
        reason = "unknown_host"
    elif error.errno in _ERRNO_REASONS:
        reason = _ERRNO_REASONS[error.errno]
    else:
        reason, detail = "system", error.strerror or str(error)
    result.error_reason, result.error_detail = reason, detail
    result.error = f"{result.host}:{result.port}: {error}"


def check_gateway(
    host: str,
    port: int,
    policy: Policy,
    probes: list[Probe],
    *,
    timeout: float = TIMEOUT,
    rate: float = DEFAULT_RATE,
    ehlo_name: str = "relay-check.invalid",
    sleep: Callable[[float], None] = time.sleep,
) -> GatewayCheck:
    """Run ``probes`` against ``host:port``; never raises for the gateway's failures."""
    started = time.monotonic()
    result = GatewayCheck(host, port)
    interval = 1.0 / rate if rate > 0 else 0.0
    last = 0.0
    for sender_kind, mail_from, chunk in _sessions(probes):
        try:
            smtp, banner, tls = _open(host, port, timeout, ehlo_name)
        except (OSError, smtplib.SMTPException) as error:
            _fail(result, error)
            break
        try:
            result.banner = result.banner or " ".join(banner.split())
            result.tls = result.tls or tls
            assert smtp.sock is not None
            result.client_ip = smtp.sock.getsockname()[0]
            sim = evaluate_session(
                policy, Session(result.client_ip, mail_from, tuple(p.rcpt_to for p in chunk))
            )
            mail_arg = "FROM:" if mail_from == "" else f"FROM:{_path(mail_from)}"
            mail_code, mail_reply = _command(smtp, "MAIL", mail_arg)
            for probe, answer in zip(chunk, sim.rcpt, strict=True):
                outcome = ProbeOutcome(
                    sender_kind,
                    mail_from,
                    probe.recipient_kind,
                    probe.rcpt_to,
                    answer.verdict,
                    answer.reply,
                    answer.address_class.value,
                )
                if not 200 <= mail_code < 300:
                    outcome.code, outcome.reply, outcome.stage = mail_code, mail_reply, "mail"
                else:
                    wait = last + interval - time.monotonic()
                    if wait > 0:
                        sleep(wait)
                    last = time.monotonic()
                    outcome.code, outcome.reply = _command(
                        smtp, "RCPT", f"TO:{_path(probe.rcpt_to)}"
                    )
                judge(outcome)
                result.probes.append(outcome)
            _command(smtp, "RSET")
            _command(smtp, "QUIT")
        except (OSError, smtplib.SMTPException) as error:
            _fail(result, error)
            break
        finally:
            smtp.close()
    result.seconds = round(time.monotonic() - started, 3)
    return result
