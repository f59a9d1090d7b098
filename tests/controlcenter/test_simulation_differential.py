"""The optimised simulator answers exactly as the original one did, field for field.

Three witnesses: digests of a seeded corpus recorded with the original code (commit 8f3d347),
the original code kept as a reference (``simulation_reference``) compared session by session,
and hypothesis sessions built from the relay tricks of spec §7. Each optimised policy is asked
twice (the second time from its memo of answers) and in another order.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlcenter.simulation import Policy, Session, SessionResult, evaluate_session
from controlcenter.simulation import policy as policy_module
from controlcenter.simulation.policy import SenderRules
from relaypolicy.effectfile import CLIENT_KINDS, parse_effect
from relaypolicy.effectmatch import compile_rules
from tests.bench.policydata import make_effect
from tests.controlcenter import simcorpus, simulation_reference

#: ``simcorpus.run(evaluate_session)`` with the simulator of commit 8f3d347.
GOLDEN = {
    "edge-gateway": "6b9560f30bf09b99a853c92c89fafbf26b34860a2a5df9acca58d2a6fe53bf67",
    "edge-mailserver": "07aa321213e3f679f15222640dc9b6ab9d4c6afed0d83f55dac1e6071e66871b",
    "site": "3ac2da478350afed8cddb921d2aef14858eb3c3fb95bf281e115b7357391e8fe",
}


def _differences(
    policy: Policy, sessions: list[Session]
) -> list[tuple[Session, SessionResult, SessionResult]]:
    wrong = []
    for session in sessions:
        expected = simulation_reference.evaluate_session(policy, session)
        got = evaluate_session(policy, session)
        if repr(got) != repr(expected):
            wrong.append((session, got, expected))
    return wrong


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, Policy, list[Session]]]:
    return list(simcorpus.corpus())


def test_corpus_digests_are_those_recorded_before_the_optimisation(
    corpus: list[tuple[str, Policy, list[Session]]],
) -> None:
    first = {
        name: simcorpus.digest(evaluate_session(policy, s) for s in sessions)
        for name, policy, sessions in corpus
    }
    again = {  # now every answer comes from the policy's memo
        name: simcorpus.digest(evaluate_session(policy, s) for s in sessions)
        for name, policy, sessions in corpus
    }
    assert (first, again) == (GOLDEN, GOLDEN)


def test_reference_gives_the_recorded_digests(
    corpus: list[tuple[str, Policy, list[Session]]],
) -> None:
    assert {
        name: simcorpus.digest(simulation_reference.evaluate_session(policy, s) for s in sessions)
        for name, policy, sessions in corpus
    } == GOLDEN


def test_edge_corpus_matches_the_reference_session_by_session_in_any_order() -> None:
    for name, policy in simcorpus.edge_policies():
        sessions = simcorpus.edge_sessions(random.Random(name), 2_000)
        shuffled = sessions[::-1]
        random.Random(3).shuffle(shuffled)
        assert _differences(policy, shuffled) == []
        assert _differences(policy, sessions) == []


def test_answers_stay_exact_when_the_memo_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy_module, "ANSWER_LIMIT", 50)
    monkeypatch.setattr(policy_module, "CACHE_LIMIT", 40)
    [(name, edge), _] = simcorpus.edge_policies()
    sessions = simcorpus.edge_sessions(random.Random(name), 500)
    assert _differences(edge, sessions + sessions) == []
    assert edge._answers.size <= 50
    assert len(edge._recipients) <= 40


def test_a_result_is_handed_out_again_for_the_same_answer() -> None:
    [(_, edge), _] = simcorpus.edge_policies()
    session = Session("203.0.113.50", "a@relay-test.invalid", ("boss@example.co.jp",))
    first, second = evaluate_session(edge, session), evaluate_session(edge, session)
    assert (first.mail is second.mail, first.rcpt[0] is second.rcpt[0]) == (True, True)


_PATHS = st.sampled_from(simcorpus.addresses())
_PIECES = st.sampled_from(
    [
        "boss",
        "2009",
        "x",
        "y",
        "-ml",
        "postmaster",
        "victim",
        "@",
        "%",
        "!",
        ".",
        '"',
        "\\",
        "<",
        ">",
        ":",
        ",",
        " ",
        "[",
        "]",
        "example.co.jp",
        "domain.jp",
        "news.example",
        "glob.example",
        "a.wild.example",
        "relay-test.invalid",
        "192.0.2.1",
        "IPv6:",
        "::1",
        "B",
        "*",
        "ü",
    ]
)
_BUILT = st.lists(_PIECES, max_size=8).map("".join)
_ADDRESSES = st.one_of(_PATHS, _BUILT)


@settings(max_examples=400, deadline=None)
@given(
    client=st.sampled_from(simcorpus.CLIENTS),
    sender=_ADDRESSES,
    rcpt=st.lists(_ADDRESSES, max_size=5),
    auth=st.booleans(),
    mode=st.sampled_from([0, 1]),
)
def test_hypothesis_sessions_match_the_reference(
    client: str, sender: str, rcpt: list[str], auth: bool, mode: int
) -> None:
    edge = _EDGE[mode]
    session = Session(client, sender, tuple(rcpt), auth)
    assert _differences(edge, [session, session]) == []


_EDGE = [edge for _, edge in simcorpus.edge_policies()]


@settings(max_examples=300, deadline=None)
@given(sender=st.one_of(_ADDRESSES, st.sampled_from(["", "<>", "<x@News.example>", "<a@b>"])))
def test_sender_rules_pick_the_line_compiled_rules_pick(sender: str) -> None:
    for text in (simcorpus.EDGE_EFFECT, _BENCH_EFFECT):
        lines = [line for line in parse_effect(text).rules if line.pattern_kind not in CLIENT_KINDS]
        assert SenderRules(lines).first_match(sender) == compile_rules(lines).first_match(
            "", sender
        )


_BENCH_EFFECT = "".join(f"{line.text}\n" for line in make_effect(random.Random(5)).lines)


@pytest.mark.parametrize(
    ("sender", "line"),
    [
        ("x@news.example", 23),
        ("x@NEWS2.EXAMPLE", 24),
        ('"a@b"@news.example', 23),
        ("x@news.example.org", None),
        ("axxb@glob.example", 25),
        ("ab@glob.example", 25),
        ("a@twostar.example", None),
        ("x@twostar.example", 26),
        ("u@a.wild.example", 27),
        ("u@wild.example", None),
        ("boss@example.co.jp", 22),
        ("<>", 1),
        ("", 2),
    ],
)
def test_sender_rules_examples(sender: str, line: int | None) -> None:
    lines = [
        line
        for line in parse_effect(simcorpus.EDGE_EFFECT).rules
        if line.pattern_kind not in CLIENT_KINDS
    ]
    found = SenderRules(lines).first_match(sender)
    assert (found.number if found is not None else None) == line
