from __future__ import annotations

import io
from datetime import date

import pytest

from aliases.aliasfile import Alias
from controlcenter.simulation import compile_policy
from maillogs import analysis, logfile
from maillogs.logfile import Source
from relaypolicy.effectfile import parse_effect
from tests.bench.loggen import HOME_USERS, INNER, LAN, Truth, inlog_lines

HARDENED = "#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* norelay\n"
WILDCARD_ONLY = "#<> default\n#blank false\n"


def parsed_in(text: str) -> logfile.InRecord:
    record = logfile.parse_inlog(text)
    assert record is not None
    return record


def parsed_other(log: logfile.LogName, text: str) -> logfile.OtherRecord:
    record = logfile.parse_other(log, text)
    assert record is not None
    return record


def lan(ip: str) -> bool:
    return ip.startswith(LAN)


def analyse(lines: int = 20_000) -> tuple[analysis.Analysis, Truth]:
    truth = Truth()
    data = "".join(inlog_lines(lines, truth=truth, days=3)).encode("cp932")
    source = Source("inlog/gw/1", "inlog", len(data), lambda: io.BytesIO(data))
    aggregator = analysis.Aggregator(local_domains=[INNER], is_inside=lan)
    return aggregator.add_all(logfile.read_source(source)), truth


@pytest.fixture(scope="module")
def generated() -> tuple[analysis.Analysis, Truth]:
    return analyse()


def policy(effect: str):
    return compile_policy(
        effect=parse_effect(effect),
        aliases=[Alias(f"*@{INNER}", f"*@{INNER}")],
        local_domains=[INNER],
        gateway_mode=True,
    )


def stored(result: analysis.Analysis) -> list[analysis.StoredSession]:
    return [
        analysis.StoredSession(ip, sender, rcpt, s.count, s.relayed, s.inside)
        for (ip, sender, rcpt), s in result.sessions.items()
    ]


def known(result: analysis.Analysis) -> frozenset[str]:
    inside = {sender.lower() for (_ip, sender, _r), s in result.sessions.items() if s.inside}
    return frozenset(set(result.recipients) | inside)


def test_every_abusive_session_is_found_and_no_lan_session_flagged(generated):
    result, truth = generated
    outside_relayed = {
        key for key, stats in result.sessions.items() if stats.relayed and not stats.inside
    }
    home = {key for key in outside_relayed if (key[0], key[1]) in HOME_USERS}
    assert outside_relayed - home == truth.abuse_sessions
    assert result.relayed_outside == truth.abuse_mails + truth.home_mails
    assert result.forged == truth.abuse_mails + truth.home_mails  # home users claim INNER too
    assert result.mails == truth.mails
    assert result.unknown == truth.garbage
    assert result.missing_sender == truth.missing_sender
    assert result.sessions_dropped == 0
    flagged = {key[0] for key in outside_relayed}
    assert not flagged & truth.lan_clients
    assert all(stats.inside for key, stats in result.sessions.items() if key[0].startswith(LAN))


def test_detect_abuse_groups_by_client_and_sender_and_finds_the_burst_hours(generated):
    result, truth = generated
    report = analysis.detect_abuse(result, local_domains=[INNER])
    assert report.found
    assert report.relayed_outside == truth.abuse_mails + truth.home_mails
    assert not any(row.client_ip.startswith(LAN) for row in report.by_client)
    assert all(row.client_ip.startswith(("185.220.", "198.51.100.")) for row in report.by_client)
    assert all(row.forged for row in report.by_sender)
    burst_day = date(2026, 11, 4)  # the last of three days: the burst is at 02:00-05:00
    assert {(spike.hour.date(), spike.hour.hour) for spike in report.spikes} == {
        (burst_day, 2),
        (burst_day, 3),
        (burst_day, 4),
    }


def test_a_log_without_outside_relays_finds_no_abuse():
    result = analysis.Aggregator(local_domains=[INNER], is_inside=lan).add_all(
        [
            parsed_in(f"<B1@gw> [11/Nov/2017:17:58:25] 192.168.1.5 pc a@{INNER} b@partner.example"),
            parsed_in(f"<B2@gw> [11/Nov/2017:17:58:25] 203.0.113.5 mx b@partner.example a@{INNER}"),
        ]
    )
    report = analysis.detect_abuse(result, local_domains=[INNER])
    assert (report.found, report.relayed_outside, report.forged) == (False, 0, 0)
    assert result.days[date(2017, 11, 11)] == [2, 1, 1, 1, 1, 0]
    assert result.forged_inbound == 0


def test_forged_inner_senders_delivered_inside_are_counted():
    result = analysis.Aggregator(local_domains=[INNER], is_inside=lan).add_all(
        [parsed_in(f"<B1@gw> [11/Nov/2017:17:58:25] 203.0.113.5 mx boss@{INNER} a@{INNER}")]
    )
    assert (result.forged_inbound, result.forged, result.relayed_outside) == (1, 0, 0)


def test_retry_lines_are_counted_per_outside_domain_through_the_message_id():
    records: list[logfile.Record] = [
        parsed_in(f"<B7@gw> [11/Nov/2017:17:58:25] 185.220.0.1 x a@{INNER} v@victim.example"),
        parsed_other("senderlog", "<B7-R0001@gw> [11/Nov/2017:18:00:00] retry"),
        parsed_other("senderlog", "<B7@gw> [11/Nov/2017:18:00:00] first try"),
        parsed_other("faillog", "<B7@gw> [12/Nov/2017:18:00:00] [Unable to deliver]"),
        parsed_other("faillog", "<B8@gw> [12/Nov/2017:18:00:00] to [z@other.example]"),
    ]
    result = analysis.Aggregator(local_domains=[INNER], is_inside=lan).add_all(records)
    assert result.retries == {"victim.example": [1, 1], "other.example": [0, 1]}
    assert result.other_days["faillog"] == {date(2017, 11, 12): 2}


def test_replay_against_the_hardened_example(generated):
    result, truth = generated
    report = analysis.replay_sessions(policy(HARDENED), stored(result), known_senders=known(result))
    assert report.abuse == truth.abuse_mails
    assert report.abuse_stopped == truth.abuse_mails
    assert report.abuse_open == 0
    # LAN mail unchanged; the two home users are listed, by sender and IP, with the AUTH hint
    assert not any(row.inside for row in report.changed)
    assert {(row.sender, row.client_ip, row.hint) for row in report.changed} == {
        (sender, ip, "smtp-auth") for ip, sender in HOME_USERS
    }
    assert sum(row.mails for row in report.changed) == truth.home_mails
    assert report.mails == truth.mails


def test_replay_of_the_open_gateway_still_relays_the_burst(generated):
    result, truth = generated
    report = analysis.replay_sessions(
        policy(WILDCARD_ONLY), stored(result), known_senders=known(result)
    )
    assert report.abuse_open == truth.abuse_mails
    assert not report.safe
    assert report.changed == ()


def test_replay_evaluates_identical_sessions_once_and_counts_them():
    session = analysis.StoredSession(
        "185.220.0.1", f"x@{INNER}", "v@victim.example", 3, True, False
    )
    report = analysis.replay_sessions(
        policy(HARDENED), [session, session], known_senders=frozenset()
    )
    assert (report.sessions, report.duplicates, report.mails, report.abuse_stopped) == (1, 1, 6, 6)


ALIASES = [Alias("boss@example.co.jp", "boss@example.co.jp"), Alias(f"*@{INNER}", f"*@{INNER}")]


def test_migration_draft_with_a_licence_tier_change():
    received = {f"2009{n:03d}@{INNER}": 2 for n in range(60)}
    received |= {"boss@example.co.jp": 9, "rare@example.co.jp": 1, "x@elsewhere.example": 5}
    plan = analysis.plan_migration(
        received=received,
        aliases=ALIASES,
        local_domains=[INNER],
        accounts=1,
        mailing_lists=0,
        licence=50,
        tiers=(50, 100, 250),
        min_mails=2,
    )
    assert [d.pattern for d in plan.drafts][:2] == [f"2009000@{INNER}", f"2009001@{INNER}"]
    assert len(plan.drafts) == 60
    assert plan.drafts[0] == analysis.DraftAlias(
        f"2009000@{INNER}", f"2009000@{INNER}", 2, f"*@{INNER}"
    )
    assert (plan.covered, plan.skipped) == (1, 1)
    assert plan.wildcards == (f"*@{INNER}",)
    assert (plan.seats_now, plan.seats_after) == (3, 62)
    assert (plan.tier_now, plan.tier_needed, plan.tier_changes) == (50, 100, True)
    assert plan.prefixes == (analysis.PrefixSuggestion(f"20090*@{INNER}", 60),)
    assert plan.csv().splitlines()[:2] == [
        "alias,mapped_to,comment",
        f"2009000@{INNER},2009000@{INNER},",
    ]


def test_migration_keeps_the_wildcards_target_rewrite():
    plan = analysis.plan_migration(
        received={f"ann@{INNER}": 1},
        aliases=[Alias(f"*@{INNER}", "*@mail.inner.example", "0")],
        local_domains=[INNER],
        accounts=1,
        mailing_lists=0,
        licence=None,
        tiers=(50,),
    )
    assert plan.drafts == (
        analysis.DraftAlias(f"ann@{INNER}", "ann@mail.inner.example,0", 1, f"*@{INNER}"),
    )
    assert plan.tier_needed == 50
    assert plan.tier_changes  # unlimited today, 50 users would do


@pytest.mark.parametrize(
    ("seats", "tier"), [(0, 50), (50, 50), (51, 100), (10_000, 10_000), (10_001, None)]
)
def test_licence_tier(seats, tier):
    assert analysis.licence_tier(seats, (50, 100, 250, 500, 1000, 2000, 3000, 5000, 10000)) == tier


def test_suggest_prefixes_takes_the_longest_shared_prefix_of_disjoint_groups():
    locals_ = [f"2009{n}" for n in range(5)] + [f"sales{n}" for n in range(6)] + ["ab", "abc"]
    assert analysis.suggest_prefixes({"d.jp": locals_}) == (
        analysis.PrefixSuggestion("sales*@d.jp", 6),
        analysis.PrefixSuggestion("2009*@d.jp", 5),
    )


def test_scan_retry_queue_counts_envelopes_and_bodies_per_domain(tmp_path):
    victim = tmp_path / "domains" / "victim.example"
    victim.mkdir(parents=True)
    (victim / "Domain.mri").write_text(
        "Domain-name: victim.example\nLast-tried: 2017/11/30 09:00\nTry-number: 3\nErr-code: 421\n"
    )
    (victim / "A1.RCP").write_bytes(b"x" * 10)
    (victim / "A2.RCP").write_bytes(b"x" * 20)
    inner = tmp_path / "domains" / INNER
    inner.mkdir()
    (inner / "B1.RCP").write_bytes(b"x")
    (tmp_path / "holding").mkdir()
    (tmp_path / "holding" / "A1.MSG").write_bytes(b"y" * 100)
    (tmp_path / "holding" / "ZZ.MSG").write_bytes(b"y" * 7)
    (tmp_path / "incoming").mkdir()
    queue = analysis.scan_retry_queue(tmp_path, local_domains=[INNER])
    first, second = queue.domains
    assert (
        first.domain,
        first.envelopes,
        first.envelope_bytes,
        first.bodies,
        first.body_bytes,
    ) == (
        "victim.example",
        2,
        30,
        1,
        100,
    )
    assert (first.try_number, first.err_code, first.local) == ("3", "421", False)
    assert (second.domain, second.local) == (INNER, True)
    assert (queue.unassigned_bodies, queue.unassigned_bytes, queue.incoming) == (1, 7, 0)
    assert queue.total_bytes == 30 + 100 + 1 + 7


@pytest.mark.parametrize(
    ("ip", "private"),
    [
        ("192.168.1.5", True),
        ("10.1.2.3", True),
        ("172.31.0.1", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("fd00::5", True),
        ("::ffff:192.168.1.5", True),
        ("203.0.113.5", False),  # documentation ranges are outside hosts
        ("198.51.100.77", False),
        ("172.32.0.1", False),
        ("8.8.8.8", False),
        ("not-an-ip", False),
    ],
)
def test_private_address(ip, private):
    assert analysis.private_address(ip) is private
