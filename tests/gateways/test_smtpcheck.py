"""接続テスト against a real Postfix on loopback, closed and open, and the pure parts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from controlcenter.services.policy import policy_compile
from gateways import services, smtpcheck
from gateways.models import Gateway, GatewayKind, PublicationStatus
from jobs.services import job_run
from tests.servers import PostfixServer, free_port, postfix_server


@pytest.fixture(scope="module")
def closed_postfix() -> Iterator[PostfixServer]:
    with postfix_server(open_relay=False, domain="example.co.jp") as server:
        yield server


@pytest.fixture(scope="module")
def open_postfix() -> Iterator[PostfixServer]:
    with postfix_server(open_relay=True, domain="example.co.jp") as server:
        yield server


@pytest.fixture(scope="module")
def tls_postfix() -> Iterator[PostfixServer]:
    with postfix_server(open_relay=True, domain="example.co.jp", tls=True) as server:
        yield server


def _commands(server: PostfixServer) -> list[str]:
    """Every command Postfix received from us (debug_peer_list logs them)."""
    return [
        m.group(1).split(":")[0].split(" ")[0].upper()
        for m in re.finditer(r"< localhost\[127\.0\.0\.1\]: (\S.*)", server.log_text())
    ]


def _gateway(port: int, name: str = "gw") -> Gateway:
    return Gateway.objects.create(
        name=name, kind=GatewayKind.SSH, host="127.0.0.1", smtp_port=port, username="root"
    )


def _run(admin: User) -> object:
    check = services.smtp_check_start(user=admin)
    job = job_run(str(check.job_id))
    assert job is not None
    assert job.status == "succeeded", job.error
    check.refresh_from_db()
    return check


@pytest.mark.django_db
def test_closed_relay_matches_the_simulator_for_every_outside_recipient(
    policy: None, admin: User, closed_postfix: PostfixServer
) -> None:
    _gateway(closed_postfix.port)
    check = _run(admin)
    (result,) = check.results  # type: ignore[attr-defined]
    assert result["error"] == ""
    assert result["client_ip"] == "127.0.0.1"
    assert result["banner"] == "220 gateway.example.jp ESMTP"
    probes = result["probes"]
    assert len(probes) == len(smtpcheck.plan_probes(policy_compile()))
    assert check.dangerous == 0  # type: ignore[attr-defined]
    # Postfix takes inbound mail from a forged unknown local sender, which the E-Post built-in
    # table refuses: a mismatch, shown, but not a relay.
    assert [
        (p["sender_kind"], p["recipient_kind"], p["expected"], p["code"])
        for p in probes
        if p["mismatch"]
    ] == [("forged", "inbound", "reject", 250)]
    plain = [p for p in probes if p["recipient_kind"] == "plain" and p["stage"] == "rcpt"]
    assert plain
    assert {(p["expected"], p["code"]) for p in plain} == {("reject", 554)}
    assert all("Relay access denied" in p["reply"] for p in plain)
    # The empty MAIL FROM: the simulator refuses it (#blank false), Postfix too (501).
    empty = [p for p in probes if p["mail_from"] == ""]
    assert {(p["stage"], p["code"], p["mismatch"]) for p in empty} == {("mail", 501, False)}


@pytest.mark.django_db
def test_open_relay_is_flagged_red_against_the_simulator(
    policy: None, admin: User, open_postfix: PostfixServer
) -> None:
    _gateway(open_postfix.port)
    check = _run(admin)
    (result,) = check.results  # type: ignore[attr-defined]
    dangerous = [p for p in result["probes"] if p["dangerous"]]
    assert check.dangerous == len(dangerous) > 0  # type: ignore[attr-defined]
    plain = [p for p in dangerous if p["recipient_kind"] == "plain"]
    assert {(p["rcpt_to"], p["expected"], p["code"]) for p in plain} == {
        ("victim@relay-test.invalid", "reject", 250)
    }
    assert all(p["mismatch"] for p in dangerous)


@pytest.mark.django_db
def test_the_check_never_sends_data(policy: None, admin: User, open_postfix: PostfixServer) -> None:
    _gateway(open_postfix.port)
    _run(admin)
    commands = _commands(open_postfix)
    assert {"EHLO", "MAIL", "RCPT", "RSET", "QUIT"} <= set(commands)
    assert set(commands) <= {"EHLO", "STARTTLS", "MAIL", "RCPT", "RSET", "QUIT"}
    assert "DATA" not in commands
    assert "data=" not in open_postfix.log_text()


@pytest.mark.django_db
def test_an_unreachable_gateway_is_reported_and_the_others_checked(
    policy: None, admin: User, closed_postfix: PostfixServer
) -> None:
    _gateway(closed_postfix.port, "a")
    _gateway(free_port(), "b")
    check = _run(admin)
    assert check.status == PublicationStatus.PARTIAL  # type: ignore[attr-defined]
    by_name = {r["gateway"]: r for r in check.results}  # type: ignore[attr-defined]
    assert by_name["a"]["error"] == ""
    port = by_name["b"]["port"]
    assert by_name["b"]["error"] == (
        f"127.0.0.1:{port}: 接続を拒否されました(サービスは起動していますか?)"
    )
    assert by_name["b"]["error_reason"] == "refused"
    assert by_name["b"]["probes"] == []


def test_data_is_never_sent_even_by_mistake() -> None:
    class Fake:
        def docmd(self, verb: str, argument: str = "") -> tuple[int, bytes]:
            raise AssertionError("sent")

    with pytest.raises(smtpcheck.ForbiddenCommand):
        smtpcheck._command(Fake(), "DATA")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expected", "code", "kind", "mismatch", "dangerous"),
    [
        ("reject", 554, "plain", False, False),
        ("reject", 250, "plain", True, True),
        ("reject", 250, "percent", True, True),  # a routing trick accepted: maybe relayed
        ("reject", 250, "inbound", True, False),
        ("deliver", 550, "inbound", True, False),
        ("relay", 250, "plain", False, False),
        ("deliver", 451, "inbound", True, False),  # a temporary failure is not an acceptance
    ],
)
def test_judge(expected: str, code: int, kind: str, mismatch: bool, dangerous: bool) -> None:
    probe = smtpcheck.ProbeOutcome("forged", "a@b.jp", kind, "x@y", expected, "", "external", code)
    smtpcheck.judge(probe)
    assert (probe.mismatch, probe.dangerous) == (mismatch, dangerous)


@pytest.mark.django_db
def test_probes_are_rate_limited(policy: None, closed_postfix: PostfixServer) -> None:
    policy_ = policy_compile()
    probes = smtpcheck.plan_probes(policy_, limit=5)
    waits: list[float] = []
    smtpcheck.check_gateway(
        "127.0.0.1", closed_postfix.port, policy_, probes, rate=2.0, sleep=waits.append
    )
    assert len(waits) == 4  # no wait before the first RCPT
    assert all(0 < wait <= 0.5 for wait in waits)


@pytest.mark.django_db
def test_a_gateway_offering_starttls_is_checked_inside_tls(
    policy: None, admin: User, tls_postfix: PostfixServer
) -> None:
    _gateway(tls_postfix.port)
    check = _run(admin)
    (result,) = check.results  # type: ignore[attr-defined]
    assert (result["error"], result["tls"]) == ("", True)
    commands = _commands(tls_postfix)
    # STARTTLS first; what follows travels encrypted, so Postfix logs it as TLS traffic only.
    assert commands[:2] == ["EHLO", "STARTTLS"]
    assert "DATA" not in commands
    assert "Anonymous TLS connection established from localhost[127.0.0.1]" in (
        tls_postfix.log_text()
    )
    # An open relay stays red inside TLS too.
    assert check.dangerous > 0  # type: ignore[attr-defined]
