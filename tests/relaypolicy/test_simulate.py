from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.asserts import assertContains

from aliases.models import Alias, LocalDomain
from relaypolicy import services
from relaypolicy.models import RelayPolicy
from relaypolicy.table import Row, RowKind, Table

pytestmark = pytest.mark.django_db

LAN = Table(rows=(Row(RowKind.RULE, "192.168.1.0/24", "default"),))


@pytest.fixture
def wildcard_gateway() -> None:
    """The seed's problem: a wildcard alias for the inner domain."""
    services.relay_table_save(table=LAN, version=0)
    domain = LocalDomain.objects.create(name="example.co.jp")
    Alias.objects.create(
        position=1,
        pattern="*@example.co.jp",
        key="*@example.co.jp",
        target="*@example.co.jp",
        domain=domain,
    )


def _simulate(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    call_command("simulate_relay", *args, "--json")
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_hardened_gateway_refuses_a_forged_local_sender_from_outside(
    wildcard_gateway: None, capsys: pytest.CaptureFixture[str]
) -> None:
    [result] = _simulate(
        capsys,
        "--client-ip", "203.0.113.9",
        "--mail-from", "anyone@example.co.jp",
        "--rcpt-to", "victim@other.example",
        "--rcpt-to", "<staff@example.co.jp>",
    )  # fmt: skip
    assert result["mail"] == {
        "verdict": "accept",
        "reply": "250 2.1.0 Sender OK",
        "rule": {"line": 5, "text": "*.*.*.* norelay"},
        **{
            k: result["mail"][k]
            for k in ("notes", "class", "modifier", "mailbox", "alias", "reason")
        },
    }
    rcpt = result["rcpt"]
    assert [(r["address"], r["verdict"], r["reply"]) for r in rcpt] == [
        ("victim@other.example", "reject", "550 5.7.1 Relaying denied"),
        ("<staff@example.co.jp>", "deliver", "250 2.1.5 Recipient OK"),
    ]


def test_without_the_terminator_the_forged_sender_relays(
    wildcard_gateway: None, capsys: pytest.CaptureFixture[str]
) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    [result] = _simulate(
        capsys,
        "--client-ip", "203.0.113.9",
        "--mail-from", "anyone@example.co.jp",
        "--rcpt-to", "victim@other.example",
    )  # fmt: skip
    assert [(r["verdict"], r["rule"]) for r in result["rcpt"]] == [("relay", None)]


def test_batch_mode_answers_one_line_per_session_in_order(
    wildcard_gateway: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "sessions.jsonl"
    batch.write_text(
        '{"client_ip": "192.168.1.20", "mail_from": "a@example.co.jp", "rcpt_to": ["x@gmail.jp"]}\n'
        "\n"
        '{"client_ip": "203.0.113.9", "mail_from": "<>", "rcpt_to": ["x@gmail.jp"], "auth": true}\n'
    )
    results = _simulate(capsys, "--batch", str(batch))
    assert [r["rcpt"][0]["verdict"] for r in results] == ["relay", "relay"]
    assert sorted(results[0]) == ["mail", "rcpt"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"client_ip": "1.2.3.4"}\n', "line 1: missing key 'mail_from'"),
        (
            '{"client_ip": 5, "mail_from": "", "rcpt_to": []}\n',
            "line 1: client_ip must be a string",
        ),
        ("not json\n", "line 1: Expecting value"),
    ],
)
def test_batch_mode_names_the_bad_line(tmp_path: Path, content: str, message: str) -> None:
    batch = tmp_path / "bad.jsonl"
    batch.write_text(content)
    with pytest.raises(CommandError) as caught:
        call_command("simulate_relay", "--batch", str(batch))
    assert caught.value.returncode == 2
    assert message in str(caught.value)


def test_single_mode_needs_every_part_of_the_session() -> None:
    with pytest.raises(
        CommandError, match=r"^missing --mail-from, --rcpt-to \(or use --batch FILE\)$"
    ):
        call_command("simulate_relay", "--client-ip", "1.2.3.4")


def test_empty_mail_from_is_refused_by_the_blank_line(capsys: pytest.CaptureFixture[str]) -> None:
    [result] = _simulate(
        capsys, "--client-ip", "192.168.1.5", "--mail-from", "", "--rcpt-to", "a@b.jp"
    )
    assert result["mail"]["verdict"] == "reject"
    assert result["mail"]["reply"] == "550 5.1.7 Please, mail from a valid IP or Domain address."
    assert [r["verdict"] for r in result["rcpt"]] == ["reject"]


def test_viewer_runs_a_simulation_on_the_page(
    viewer_client: Client, wildcard_gateway: None
) -> None:
    response = viewer_client.get(
        "/relay/test/",
        {"client_ip": "203.0.113.9", "mail_from": "x@example.co.jp", "rcpt_to": "v@other.example"},
    )
    result = response.context["result"]
    assert [r.verdict for r in result.rcpt] == ["reject"]
    assertContains(response, 'data-verdict="reject"')
    assertContains(response, 'href="/relay/machines/?line=5#line-5"')


@pytest.mark.parametrize(
    ("mail_from", "shown"),
    [
        ("<>", "MAIL FROM:&lt;&gt;</td>"),  # the null sender, never <<>>
        ("", "MAIL FROM:</td>"),  # an empty MAIL FROM: stays empty
        ("x@example.co.jp", "MAIL FROM:&lt;x@example.co.jp&gt;</td>"),
        ("<x@example.co.jp>", "MAIL FROM:&lt;x@example.co.jp&gt;</td>"),
    ],
)
def test_page_shows_the_commands_as_typed(
    viewer_client: Client, wildcard_gateway: None, mail_from: str, shown: str
) -> None:
    response = viewer_client.get(
        "/relay/test/",
        {"client_ip": "203.0.113.9", "mail_from": mail_from, "rcpt_to": "v@other.example"},
    )
    assertContains(response, shown)
    assertContains(response, "RCPT TO:&lt;v@other.example&gt;</td>")


def test_simulation_form_names_the_bad_field(viewer_client: Client) -> None:
    response = viewer_client.get("/relay/test/", {"client_ip": "999.1.1.1", "rcpt_to": ""})
    assert sorted(response.context["form"].errors) == ["client_ip", "rcpt_to"]
    assert "result" not in response.context


def test_selftest_page_reports_the_open_relay(
    viewer_client: Client, wildcard_gateway: None
) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    response = viewer_client.get("/relay/test/selftest/")
    assertContains(response, 'data-status="open"')
    assert "selftest.E001" in [f.code for f in response.context["findings"]]


def test_selftest_page_passes_for_the_hardened_gateway(
    viewer_client: Client, wildcard_gateway: None
) -> None:
    response = viewer_client.get("/relay/test/selftest/")
    assert response.context["report"].outside_relay_failures == ()
    assert [f.code for f in response.context["findings"] if f.is_error] == []
    assertContains(response, '<h1 class="h3 mb-3">セルフテスト</h1>', html=True)  # the title


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"client_ip": "1.2.3.4", "mail_from": "", "rcpt_to": ["a@b.jp"], "auth": "no"}',
            "line 1: auth must be true or false",
        ),
        (
            '{"client_ip": "x", "mail_from": "", "rcpt_to": ["a@b.jp"]}',
            "line 1: 'x' is not an IPv4 or IPv6 address",
        ),
    ],
)
def test_batch_mode_refuses_ambiguous_values(tmp_path: Path, line: str, message: str) -> None:
    batch = tmp_path / "bad.jsonl"
    batch.write_text(line + "\n")
    with pytest.raises(CommandError) as caught:
        call_command("simulate_relay", "--batch", str(batch))
    assert (caught.value.returncode, str(caught.value).endswith(message)) == (2, True)


def test_single_mode_refuses_a_bad_client_ip() -> None:
    with pytest.raises(CommandError) as caught:
        call_command(
            "simulate_relay", "--client-ip", "999.1.1.1", "--mail-from", "", "--rcpt-to", "a@b.jp"
        )
    assert (caught.value.returncode, str(caught.value)) == (
        2,
        "--client-ip: '999.1.1.1' is not an IPv4 or IPv6 address",
    )


def test_selftest_page_lists_every_probe_and_recipient_once_grouped(
    viewer_client: Client, wildcard_gateway: None
) -> None:
    from controlcenter.services import policy_selftest

    report = policy_selftest()
    response = viewer_client.get("/relay/test/selftest/")
    page = response.context["page"]
    assert page.probe_count == len(report.results)
    # Every passing probe is listed once, in a group with the same answers and findings.
    assertContains(response, 'data-passed="true"', count=len(report.results))
    assert sum(len(group.probes) for group in page.groups) == len(report.results)
    for result in report.results:
        [group] = [
            g
            for g in page.groups
            if result.probe.session.mail_from
            in [p.mail_from for p in g.probes if p.client_ip == result.probe.session.client_ip]
        ]
        answers = {a: v for v, addresses in group.by_verdict for a in addresses}
        assert answers == {r.address: str(r.verdict) for r in result.result.rcpt}
        assert group.findings == result.findings
    assert page.check_count == sum(len(r.result.rcpt) for r in report.results)
    assertContains(response, 'data-testid="selftest-group"', count=len(page.groups))


BATCH = [
    {"client_ip": "203.0.113.9", "mail_from": "anyone@example.co.jp", "rcpt_to": ["v@x.example"]},
    {"client_ip": "192.168.1.5", "mail_from": "<>", "rcpt_to": ["a@example.co.jp", "b@x.example"]},
    {"client_ip": "203.0.113.9", "mail_from": "anyone@example.co.jp", "rcpt_to": ["v@x.example"]},
    {"client_ip": "2001:db8::1", "mail_from": "", "rcpt_to": ["v%x.example@example.co.jp"]},
]


def _expected(items: list[dict[str, Any]]) -> list[str]:
    from controlcenter.services import policy_compile
    from controlcenter.simulation import Session, evaluate_session

    policy = policy_compile()
    return [
        json.dumps(
            evaluate_session(
                policy, Session(i["client_ip"], i["mail_from"], tuple(i["rcpt_to"]))
            ).as_dict(),
            ensure_ascii=False,
        )
        for i in items
    ]


def test_batch_json_is_each_result_s_plain_encoding(
    tmp_path: Path, wildcard_gateway: None, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "sessions.jsonl"
    batch.write_text("".join(json.dumps(item) + "\n" for item in BATCH * 30))
    call_command("simulate_relay", "--batch", str(batch), "--json")
    assert capsys.readouterr().out.splitlines() == _expected(BATCH * 30)


def test_batch_reads_standard_input(
    wildcard_gateway: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = "".join(json.dumps(item) + "\n" for item in BATCH).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    call_command("simulate_relay", "--batch", "-", "--json")
    assert capsys.readouterr().out.splitlines() == _expected(BATCH)


def test_batch_with_a_bad_line_after_good_ones_writes_nothing(
    tmp_path: Path, wildcard_gateway: None, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "sessions.jsonl"
    batch.write_text("".join(json.dumps(item) + "\n" for item in BATCH) + "{not json\n")
    with pytest.raises(CommandError) as caught:
        call_command("simulate_relay", "--batch", str(batch), "--json")
    assert caught.value.returncode == 2
    assert str(caught.value).startswith(f"{batch} line 5: ")
    assert capsys.readouterr().out == ""


def test_batch_falls_back_to_the_plain_encoding_when_the_shape_differs(
    tmp_path: Path,
    wildcard_gateway: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from controlcenter.simulation import SessionResult

    plain = SessionResult.as_dict
    monkeypatch.setattr(SessionResult, "as_dict", lambda self: {**plain(self), "extra": 1})
    batch = tmp_path / "sessions.jsonl"
    batch.write_text("".join(json.dumps(item) + "\n" for item in BATCH))
    call_command("simulate_relay", "--batch", str(batch), "--json")
    assert [json.loads(line)["extra"] for line in capsys.readouterr().out.splitlines()] == [1] * 4


def test_batch_text_is_each_session_s_text_in_the_site_language(
    tmp_path: Path, wildcard_gateway: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.utils.translation import gettext

    from controlcenter.services import policy_compile
    from controlcenter.simulation import Session, evaluate_session
    from controlcenter.simulation.batch import text_answer

    batch = tmp_path / "sessions.jsonl"
    batch.write_text("".join(json.dumps(item) + "\n" for item in BATCH))
    call_command("simulate_relay", "--batch", str(batch))
    policy = policy_compile()
    items: list[dict[str, Any]] = BATCH
    expected = [
        text_answer(
            evaluate_session(policy, Session(i["client_ip"], i["mail_from"], tuple(i["rcpt_to"]))),
            gettext,
        )
        for i in items
    ]
    assert capsys.readouterr().out == "".join(f"{text}\n" for text in expected)
    assert "note:" in expected[3]


def test_batch_answers_as_the_original_simulator_to_every_trick(
    tmp_path: Path, wildcard_gateway: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the command, to a text stream, with the output spilled to a temporary file:
    byte for byte the plain encoding of the original simulator's answers."""
    import random

    from controlcenter.services import policy_compile
    from controlcenter.simulation import Session, batch
    from tests.controlcenter import simcorpus, simulation_reference

    monkeypatch.setattr(batch, "SPOOL_LIMIT", 4096)
    rng = random.Random(14)
    pool = simcorpus.addresses()
    clients = ["203.0.113.9", "192.168.1.5", "2001:DB8::1", "::ffff:192.168.1.5"]
    items: list[dict[str, Any]] = [
        {
            "client_ip": rng.choice(clients),
            "mail_from": rng.choice(pool),
            "rcpt_to": [rng.choice(pool) for _ in range(rng.randrange(1, 4))],
            "auth": rng.random() < 0.2,
        }
        for _ in range(400)
    ]
    source = tmp_path / "sessions.jsonl"
    source.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    out = io.StringIO()
    call_command("simulate_relay", "--batch", str(source), "--json", stdout=out)
    policy = policy_compile()
    expected = [
        json.dumps(
            simulation_reference.evaluate_session(
                policy,
                Session(
                    batch.client_ip_text(item["client_ip"]),
                    item["mail_from"],
                    tuple(item["rcpt_to"]),
                    item["auth"],
                ),
            ).as_dict(),
            ensure_ascii=False,
        )
        for item in items
    ]
    assert out.getvalue() == "".join(f"{line}\n" for line in expected)
