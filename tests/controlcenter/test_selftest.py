import json

import pytest

from aliases.aliasfile import Alias
from controlcenter.findings import Level
from controlcenter.selftest import (
    ClientKind,
    RecipientKind,
    SenderKind,
    build_probes,
    run_selftest,
    selftest_findings,
)
from controlcenter.simulation import Policy, compile_policy
from relaypolicy.effectfile import parse_effect
from relaypolicy.table import Row, RowKind, Table, render_table

DOMAIN = "example.co.jp"
HARDENED = "#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* norelay\n"
NO_TERMINATOR = "#<> default\n#blank false\n192.168.1.0/24 default\n"
WILDCARD = Alias(f"*@{DOMAIN}", f"*@{DOMAIN}")
BOSS = Alias(f"boss@{DOMAIN}", "boss@inner.example.co.jp")
ROUTING_MESSAGE = (
    "victim%relay-test.invalid@example.co.jp was accepted for local delivery through alias "
    "*@example.co.jp although its local part victim%relay-test.invalid still holds routing "
    "characters (%): the inner server decides what happens next"
)
ROUTING_HINT = (
    "make sure the inner server refuses percent-hack, bang-path and quoted routing, or replace "
    "the wildcard alias by one alias per real address"
)


def make_policy(
    effect: str, aliases: tuple[Alias, ...] = (WILDCARD,), domains: tuple[str, ...] = (DOMAIN,)
) -> Policy:
    return compile_policy(
        effect=parse_effect(effect), aliases=aliases, local_domains=domains, gateway_mode=True
    )


def summary(policy: Policy, lan_ip: str | None = None) -> list[tuple[str, str, int | None, str]]:
    """(level, code, line, object) of every distinct finding."""
    report = run_selftest(policy, lan_ip=lan_ip)
    return [(f.level.label, f.code, f.line, f.obj) for f in selftest_findings(report)]


# --- the battery ------------------------------------------------------------------------------


def test_battery_senders_cover_domains_wildcards_aliases_and_special_senders() -> None:
    aliases = (
        BOSS,
        Alias("2009*@example.co.jp", "2009*@inner.example.co.jp"),
        WILDCARD,
        Alias("info@example.co.jp", "info@inner.example.co.jp"),
        Alias("sales@example.jp", "sales@inner.example.jp"),
        Alias("extra@example.jp", "extra@inner.example.jp"),
    )
    policy = make_policy(HARDENED, aliases, (DOMAIN, "example.jp"))

    probes = build_probes(policy, lan_ip="192.168.1.20")

    outside = [(p.sender.value, p.session.mail_from, p.source) for p in probes[: len(probes) // 2]]
    assert outside == [
        ("forged", "selftest-probe-00bbe5@example.co.jp", "example.co.jp"),
        ("forged", "selftest-probe-43f031@example.jp", "example.jp"),
        ("wildcard", "2009probe660e8c@example.co.jp", "2009*@example.co.jp"),
        ("wildcard", "probed03c41@example.co.jp", "*@example.co.jp"),
        ("alias", "boss@example.co.jp", "boss@example.co.jp"),
        ("alias", "info@example.co.jp", "info@example.co.jp"),
        ("alias", "sales@example.jp", "sales@example.jp"),
        ("outside", "probe@relay-test.invalid", ""),
        ("null", "<>", ""),
        ("empty", "", ""),
    ]
    assert {(p.client, p.session.client_ip) for p in probes} == {
        (ClientKind.OUTSIDE, "203.0.113.50"),
        (ClientKind.LAN, "192.168.1.20"),
    }
    assert [p.sender for p in probes[len(probes) // 2 :]] == [p.sender for p in probes[:10]]
    assert {p.session.auth for p in probes} == {False}


def test_battery_recipients_are_every_trick_against_every_domain() -> None:
    policy = make_policy(HARDENED, (BOSS,), (DOMAIN,))

    recipients = build_probes(policy)[0].recipients

    assert [(r.kind, r.address) for r in recipients] == [
        (RecipientKind.PLAIN, "victim@relay-test.invalid"),
        (RecipientKind.CASE_DOT, "victim@RELAY-TEST.INVALID."),
        (RecipientKind.IP_LITERAL, "victim@[192.0.2.1]"),
        (RecipientKind.PERCENT, "victim%relay-test.invalid@example.co.jp"),
        (RecipientKind.QUOTED, '"victim@relay-test.invalid"@example.co.jp'),
        (RecipientKind.DOUBLE_AT, "victim@relay-test.invalid@example.co.jp"),
        (RecipientKind.SOURCE_ROUTE, "<@example.co.jp:victim@relay-test.invalid>"),
        (RecipientKind.BANG, "relay-test.invalid!victim@example.co.jp"),
        (RecipientKind.LOOKALIKE_PREFIX, "victim@notexample.co.jp"),
        (RecipientKind.LOOKALIKE_SUFFIX, "victim@example.co.jp.relay-test.invalid"),
        (RecipientKind.SUBDOMAIN, "victim@selftest.example.co.jp"),
        (RecipientKind.INBOUND, "boss@example.co.jp"),
    ]


def test_battery_is_deterministic() -> None:
    policy = make_policy(HARDENED)

    assert build_probes(policy, lan_ip="10.0.0.1") == build_probes(policy, lan_ip="10.0.0.1")


def test_battery_without_domains_or_aliases_still_probes_special_senders() -> None:
    probes = build_probes(make_policy(HARDENED, (), ()))

    assert [(p.sender, p.session.mail_from) for p in probes] == [
        (SenderKind.OUTSIDE, "probe@relay-test.invalid"),
        (SenderKind.NULL, "<>"),
        (SenderKind.EMPTY, ""),
    ]
    assert len(probes[0].recipients) == 3


# --- the vendor's hardened example ----------------------------------------------------------------


def test_hardened_file_with_wildcard_passes_with_a_routing_warning() -> None:
    report = run_selftest(make_policy(HARDENED), lan_ip="192.168.1.20")

    assert (report.passed, report.failures, report.outside_relay_failures) == (True, (), ())
    findings = selftest_findings(report)
    assert [(f.level, f.code, f.line, f.obj) for f in findings] == [
        (Level.WARNING, "selftest.W001", None, "alias:*@example.co.jp")
    ]
    assert (findings[0].render(), findings[0].render_hint()) == (ROUTING_MESSAGE, ROUTING_HINT)


def test_wildcard_without_terminator_is_an_outside_relay_naming_alias_and_line() -> None:
    report = run_selftest(make_policy(NO_TERMINATOR))

    assert report.passed is False
    assert [(r.probe.client, r.probe.sender) for r in report.outside_relay_failures] == [
        (ClientKind.OUTSIDE, SenderKind.FORGED),
        (ClientKind.OUTSIDE, SenderKind.WILDCARD),
    ]
    error = selftest_findings(report)[0]
    assert (error.level, error.code, error.line, error.obj) == (
        Level.ERROR,
        "selftest.E001",
        None,
        "alias:*@example.co.jp",
    )
    assert error.render() == (
        "an outside client (203.0.113.50) can relay to victim@relay-test.invalid with the forged "
        "sender selftest-probe-00bbe5@example.co.jp: alias *@example.co.jp makes every forged "
        "sender in example.co.jp local"
    )
    assert error.render_hint() == (
        "no line matches 203.0.113.50: add the norelay terminator `*.*.*.* norelay` as the last "
        "line, after line 3 `192.168.1.0/24 default`"
    )


def test_forged_sender_relay_probe_shows_session_verdicts_and_why() -> None:
    report = run_selftest(make_policy(NO_TERMINATOR))
    failed = report.outside_relay_failures[0]

    relayed = [
        (r.address, r.reason.value)
        for r in failed.result.rcpt
        if r.verdict == "relay"  # the disguises that still reach the outside
    ]
    assert relayed == [
        ("victim@relay-test.invalid", "local-sender"),
        ("victim@RELAY-TEST.INVALID.", "local-sender"),
        ("victim@[192.0.2.1]", "local-sender"),
        ("<@example.co.jp:victim@relay-test.invalid>", "local-sender"),
        ("victim@notexample.co.jp", "local-sender"),
        ("victim@example.co.jp.relay-test.invalid", "local-sender"),
        ("victim@selftest.example.co.jp", "local-sender"),
    ]
    assert (failed.passed, failed.severity) == (False, Level.ERROR)
    assert [f.code for f in failed.findings].count("selftest.E001") == 7


def test_rendered_table_without_terminator_names_its_last_line() -> None:
    table = Table(
        rows=(Row(RowKind.RULE, pattern="192.168.1.0/24", modifier="default"),), terminator=""
    )
    policy = compile_policy(
        effect=render_table(table).effect,
        aliases=[WILDCARD],
        local_domains=[DOMAIN],
        gateway_mode=True,
    )

    hints = [f.render_hint() for f in selftest_findings(run_selftest(policy))]

    assert hints[0] == (
        "no line matches 203.0.113.50: add the norelay terminator `*.*.*.* norelay` as the last "
        "line, after line 4 `192.168.1.0/24 default`"
    )


# --- what each E001 says to change --------------------------------------------------------------


@pytest.mark.parametrize(
    ("effect", "aliases", "line", "obj", "message", "hint"),
    [
        (
            "#<> default\n#blank false\n192.168.1.0/24 default\n'home office\n*.*.*.* true\n",
            (BOSS,),
            5,
            "",
            "an outside client (203.0.113.50) can relay to victim@relay-test.invalid: line 5 "
            "`*.*.*.* true` trusts it",
            "line 5 `*.*.*.* true` lets 203.0.113.50 relay: change it to norelay",
        ),
        (
            "#<> default\n#blank false\n203.0.113.0/24\n*.*.*.* norelay\n",
            (BOSS,),
            3,
            "",
            "an outside client (203.0.113.50) can relay to victim@relay-test.invalid: line 3 "
            "`203.0.113.0/24` trusts it",
            "line 3 `203.0.113.0/24` lets 203.0.113.50 relay: change it to norelay",
        ),
        (
            "#<> default\n#blank false\nexample.co.jp true\n*.*.*.* norelay\n",
            (BOSS,),
            3,
            "",
            "an outside client (203.0.113.50) can relay to victim@relay-test.invalid: line 3 "
            "`example.co.jp true` trusts it",
            "line 3 `example.co.jp true` trusts a sender that anyone can forge: remove it or "
            "change it to norelay",
        ),
        (
            "#<> default\n#blank false\n*.*.*.* default\n",
            (WILDCARD,),
            3,
            "alias:*@example.co.jp",
            "an outside client (203.0.113.50) can relay to victim@relay-test.invalid with the "
            "forged sender selftest-probe-00bbe5@example.co.jp: alias *@example.co.jp makes every "
            "forged sender in example.co.jp local",
            "line 3 `*.*.*.* default` applies the built-in table to 203.0.113.50: change it to "
            "norelay",
        ),
        (
            "#<> default\n#blank false\n*.*.*.*  norelay\n",
            (WILDCARD,),
            3,
            "alias:*@example.co.jp",
            "an outside client (203.0.113.50) can relay to victim@relay-test.invalid with the "
            "forged sender selftest-probe-00bbe5@example.co.jp: alias *@example.co.jp makes every "
            "forged sender in example.co.jp local",
            "line 3 `*.*.*.*  norelay` acts as default because the daemon does not recognise its "
            "modifier: write `*.*.*.* norelay` with exactly one space",
        ),
        (
            NO_TERMINATOR,
            (BOSS,),
            None,
            "alias:boss@example.co.jp",
            "an outside client (203.0.113.50) can relay to victim@relay-test.invalid with the "
            "forged sender boss@example.co.jp: alias boss@example.co.jp is a real local address "
            "that anyone can forge",
            "no line matches 203.0.113.50: add the norelay terminator `*.*.*.* norelay` as the "
            "last line, after line 3 `192.168.1.0/24 default`",
        ),
        (
            "",
            (BOSS,),
            None,
            "alias:boss@example.co.jp",
            "an outside client (203.0.113.50) can relay to victim@relay-test.invalid with the "
            "forged sender boss@example.co.jp: alias boss@example.co.jp is a real local address "
            "that anyone can forge",
            "no line matches 203.0.113.50: add the norelay terminator `*.*.*.* norelay` as the "
            "last line",
        ),
    ],
)
def test_outside_relay_names_what_to_change(
    effect: str,
    aliases: tuple[Alias, ...],
    line: int | None,
    obj: str,
    message: str,
    hint: str,
) -> None:
    report = run_selftest(make_policy(effect, aliases))
    errors = [f for f in selftest_findings(report) if f.level is Level.ERROR]

    assert [(f.code, f.line, f.obj, f.render(), f.render_hint()) for f in errors] == [
        ("selftest.E001", line, obj, message, hint)
    ]
    assert report.outside_relay_failures != ()


# --- warnings and information ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effect", "aliases", "lan_ip", "expected"),
    [
        (HARDENED, (BOSS,), "192.168.1.20", []),
        (
            HARDENED,
            (WILDCARD,),
            None,
            [("warning", "selftest.W001", None, "alias:*@example.co.jp")],
        ),
        (
            "192.168.1.0/24 true\n*.*.*.* norelay\n",
            (BOSS,),
            "192.168.1.20",
            [("warning", "selftest.W002", 1, "")],
        ),
        (
            "#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* false\n",
            (BOSS,),
            None,
            [("warning", "selftest.W003", 4, "")],
        ),
        (HARDENED, (BOSS,), "10.0.0.5", [("info", "selftest.I001", 4, "")]),
    ],
)
def test_warnings_do_not_fail_the_self_test(
    effect: str,
    aliases: tuple[Alias, ...],
    lan_ip: str | None,
    expected: list[tuple[str, str, int | None, str]],
) -> None:
    policy = make_policy(effect, aliases)

    assert summary(policy, lan_ip) == expected
    assert run_selftest(policy, lan_ip=lan_ip).passed is True


def test_false_terminator_warning_says_inbound_mail_is_refused() -> None:
    policy = make_policy("#<> default\n#blank false\n*.*.*.* false\n", (BOSS,))

    [finding] = selftest_findings(run_selftest(policy))

    assert finding.render() == (
        "an outside sender cannot deliver to the local address boss@example.co.jp (550 5.1.7 "
        "Please, mail from a valid IP or Domain address.): inbound mail is refused"
    )
    assert finding.render_hint() == (
        "line 3 `*.*.*.* false` refuses all outside mail, inbound included: use norelay instead "
        "of false"
    )


def test_lan_null_sender_warning() -> None:
    policy = make_policy("192.168.1.0/24 true\n*.*.*.* norelay\n", (BOSS,))

    [finding] = selftest_findings(run_selftest(policy, lan_ip="192.168.1.20"))

    assert finding.render() == (
        "the LAN client 192.168.1.20 relays to victim@relay-test.invalid for the null (<>) sender "
        "(line 1)"
    )


def test_lan_that_cannot_relay_is_reported_as_information() -> None:
    [finding] = selftest_findings(run_selftest(make_policy(HARDENED, (BOSS,)), lan_ip="10.0.0.5"))

    assert (finding.render(), finding.render_hint()) == (
        "the LAN client 10.0.0.5 cannot relay to victim@relay-test.invalid for the real local "
        "sender boss@example.co.jp (550 5.7.1 Relaying denied): staff on the LAN need SMTP AUTH "
        "to send out",
        "if the LAN should relay, add `10.0.0.5 default` (or its network) above the terminator",
    )


# --- the report ----------------------------------------------------------------------------------


def test_findings_are_sorted_errors_first_and_deduplicated() -> None:
    report = run_selftest(make_policy(NO_TERMINATOR), lan_ip="192.168.1.20")

    assert [(f.code, f.obj) for f in selftest_findings(report)] == [
        ("selftest.E001", "alias:*@example.co.jp"),
        ("selftest.W001", "alias:*@example.co.jp"),
    ]


def test_report_as_dict_is_json_with_probes_and_findings() -> None:
    report = run_selftest(make_policy(NO_TERMINATOR), lan_ip="192.168.1.20")

    data = json.loads(json.dumps(report.as_dict()))

    assert (data["passed"], data["probes"], data["failures"]) == (False, 10, 2)
    assert (data["outside_ip"], data["lan_ip"]) == ("203.0.113.50", "192.168.1.20")
    assert [f["code"] for f in data["findings"]] == ["selftest.E001", "selftest.W001"]
    first = data["results"][0]
    assert set(first) == {"probe", "passed", "severity", "result", "findings"}
    assert first["probe"] == {
        "client": "outside",
        "sender": "forged",
        "source": "example.co.jp",
        "expectation": "an outside client must never relay, whatever the sender or the "
        "recipient's disguise",
        "session": {
            "client_ip": "203.0.113.50",
            "mail_from": "selftest-probe-00bbe5@example.co.jp",
            "rcpt_to": first["probe"]["session"]["rcpt_to"],
            "auth": False,
        },
    }
    assert (first["passed"], first["severity"]) == (False, "error")
    assert len(first["result"]["rcpt"]) == len(first["probe"]["session"]["rcpt_to"]) == 12


def test_self_test_on_many_aliases_stays_small() -> None:
    aliases = tuple(Alias(f"user{n}@{DOMAIN}", f"user{n}@inner.example.co.jp") for n in range(2000))
    report = run_selftest(make_policy(HARDENED, (*aliases, WILDCARD)))

    senders = [r.probe.sender for r in report.results]
    assert senders.count(SenderKind.ALIAS) == 3
    assert len(report.results) == 8


# --- address probes derived from the rules' address space ---------------------------------------


def test_address_probes_sample_every_rule_and_public_space_outside_all() -> None:
    report = run_selftest(make_policy(HARDENED))
    by_line: dict[int | None, list[str]] = {}
    for probe in report.addresses:
        by_line.setdefault(probe.sampled_from, []).append(probe.address)

    assert by_line[3][:4] == ["192.168.1.0", "192.168.1.255", "192.168.0.255", "192.168.2.0"]
    assert by_line[None][:3] == ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"]
    assert 4 in by_line
    assert report.passed
    assert [item.line for item in report.coverage] == [3, 4, None]
    assert report.coverage[0].ranges == "192.168.1.0/24"
    assert report.public_probe_count > 0
    assert report.as_dict()["address_probes"] == len(report.addresses)


def test_half_the_internet_on_default_is_found_from_a_sampled_public_address() -> None:
    policy = make_policy("#<> default\n#blank false\n0.0.0.0/1 default\n*.*.*.* norelay\n")
    report = run_selftest(policy)

    failing = [probe for probe in report.address_failures if probe.line == 3]
    assert failing
    assert failing[0].public
    assert ("error", "selftest.E001", 3) in [
        (lvl, code, line) for lvl, code, line, _o in summary(policy)
    ]


def test_a_declared_outside_site_within_the_limit_is_expected_to_relay() -> None:
    effect = "#<> default\n#blank false\n8.8.8.0/30 true\n*.*.*.* norelay\n"
    declared = compile_policy(
        effect=parse_effect(effect),
        aliases=(WILDCARD,),
        local_domains=(DOMAIN,),
        gateway_mode=True,
        outside_sites={3},
    )

    assert run_selftest(declared).passed
    assert all(probe.declared for probe in run_selftest(declared).addresses if probe.line == 3)
    assert not run_selftest(make_policy(effect)).passed


def test_address_probes_are_deterministic() -> None:
    policy = make_policy(
        "#<> default\n#blank false\n10.0.0.0/8 default\n1* norelay\n*.*.*.* norelay\n"
    )

    first = [probe.address for probe in run_selftest(policy).addresses]
    assert first == [probe.address for probe in run_selftest(policy).addresses]
