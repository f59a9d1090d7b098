from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlcenter.simulation import Session, SessionResult, evaluate_session
from controlcenter.simulation import batch as batch_module
from controlcenter.simulation.batch import (
    BatchError,
    JsonLines,
    ResultJson,
    Spool,
    plain_json,
    read_sessions,
    run_batch,
    text_answer,
)
from tests.controlcenter import simcorpus


def _numbered(*lines: str) -> list[tuple[int, str]]:
    return list(enumerate(lines, start=1))


def _plain(result: SessionResult) -> str:
    return json.dumps(result.as_dict(), ensure_ascii=False)


def test_result_json_is_the_plain_encoding_of_every_kind_of_result() -> None:
    for name, policy in simcorpus.edge_policies():
        results = [
            evaluate_session(policy, session)
            for session in simcorpus.edge_sessions(random.Random(name), 1_000)
        ]
        encoder = ResultJson()
        first = [encoder.session(result.mail, result.rcpt) for result in results]
        again = [encoder.session(result.mail, result.rcpt) for result in results]
        expected = [_plain(result) for result in results]
        assert (first, again) == (expected, expected)


def test_json_text_is_no_part_of_a_result_s_value() -> None:
    [(_, policy), _] = simcorpus.edge_policies()
    session = Session("203.0.113.50", "<>", ("boss@example.co.jp",))
    result = evaluate_session(policy, session)
    before = (repr(result), hash(result.rcpt[0]))
    ResultJson().session(result.mail, result.rcpt)
    assert result.rcpt[0].json_text == json.dumps(result.rcpt[0].as_dict(), ensure_ascii=False)
    assert (repr(result), hash(result.rcpt[0])) == before
    assert "json_text" not in result.rcpt[0].as_dict()


def test_json_lines_compose_until_the_shape_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    [(_, policy), _] = simcorpus.edge_policies()
    fields = ("203.0.113.50", "a@relay-test.invalid", ("boss@example.co.jp",), False)
    lines = JsonLines(policy)
    assert lines.line(*fields) == _plain(evaluate_session(policy, Session(*fields)))
    assert lines.composed
    plain = SessionResult.as_dict
    monkeypatch.setattr(SessionResult, "as_dict", lambda self: {**plain(self), "extra": 1})
    assert json.loads(lines.line(*fields))["extra"] == 1
    assert not lines.composed


def test_read_sessions_normalises_clients_and_skips_blank_lines() -> None:
    got = list(
        read_sessions(
            _numbered(
                '{"client_ip": " 2001:DB8::1", "mail_from": "<>", "rcpt_to": "a@b.jp"}\n',
                "   \n",
                '  {"client_ip": "1.2.3.4", "mail_from": "", "rcpt_to": [], "auth": true}  \n',
                '{"client_ip": "1.2.3.4", "mail_from": "x", "rcpt_to": ["a", "b"]}',
            )
        )
    )
    assert got == [
        ("2001:db8::1", "<>", ("a@b.jp",), False),
        ("1.2.3.4", "", (), True),
        ("1.2.3.4", "x", ("a", "b"), False),
    ]


_HEAD = '"client_ip": "1.2.3.4", "mail_from": ""'


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ('{"client_ip": 5}', "client_ip must be a string"),
        ('{"client_ip": "1.2.3.4", "mail_from": 1}', "mail_from must be a string"),
        ('{"client_ip": "1.2.3.4"}', "missing key 'mail_from'"),
        (f"{{{_HEAD}}}", "missing key 'rcpt_to'"),
        (
            '{"client_ip": "x", "mail_from": "", "rcpt_to": [1]}',
            "'x' is not an IPv4 or IPv6 address",
        ),
        (f'{{{_HEAD}, "rcpt_to": [1]}}', "rcpt_to must be a list of strings"),
        (f'{{{_HEAD}, "rcpt_to": {{}}}}', "rcpt_to must be a list of strings"),
        (f'{{{_HEAD}, "rcpt_to": [], "auth": 1}}', "auth must be true or false"),
        ("[1]", "each line must be a JSON object"),
        ("not json", "Expecting value: line 1 column 1 (char 0)"),
        ('{"a": 1} {"b": 2}', "Extra data: line 1 column 10 (char 9)"),
        (
            '\ufeff{"client_ip": "1.2.3.4"}',
            "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
        ),
    ],
)
def test_read_sessions_names_the_first_bad_line(line: str, detail: str) -> None:
    good = '{"client_ip": "1.2.3.4", "mail_from": "", "rcpt_to": []}\n'
    with pytest.raises(BatchError) as caught:
        list(read_sessions(_numbered(good, "\n", line + "\n", "also bad\n")))
    assert (caught.value.number, caught.value.detail) == (3, detail)


_JSON_PIECES = st.sampled_from(
    ['{"a": 1}', "[1, 2]", '"s"', "1", " ", "\t", "\ufeff", "{", "}", ",", "\r", "\n", "x", "null"]
)


@given(st.lists(_JSON_PIECES, max_size=6).map("".join))
def test_decode_reads_a_line_as_json_loads_does(line: str) -> None:
    def outcome(decode: object) -> object:
        try:
            return ("value", decode(line))  # type: ignore[operator]
        except ValueError as error:
            return ("error", str(error))

    assert outcome(batch_module._decode) == outcome(json.loads)


def test_spool_keeps_the_output_in_order_in_memory_and_beyond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = [f"línea {n} ✓" for n in range(50)]
    expected = ("\n".join(lines) + "\n").encode()
    for limit in (10**6, 40):
        monkeypatch.setattr(batch_module, "SPOOL_LIMIT", limit)
        with Spool() as spool:
            for start in range(0, 50, 7):
                chunk = lines[start : start + 7]
                spool.write(chunk)
                assert chunk == []
            assert (spool.file is not None) == (limit == 40)
            assert b"".join(spool.blocks(size=5)) == expected


def test_run_batch_answers_each_session_in_order_in_json_and_text() -> None:
    [(name, policy), _] = simcorpus.edge_policies()
    sessions = simcorpus.edge_sessions(random.Random(name), 300)
    numbered = _numbered(
        *(json.dumps(session.as_dict(), ensure_ascii=False) + "\n" for session in sessions)
    )
    numbered = [(n, line) for n, line in numbered if _is_ip(json.loads(line)["client_ip"])]
    fields = list(read_sessions(numbered))
    expected_json = [plain_json(evaluate_session(policy, Session(*f))) for f in fields]
    expected_text = [text_answer(evaluate_session(policy, Session(*f))) for f in fields]
    for as_json, expected in ((True, expected_json), (False, expected_text)):
        with Spool() as spool:
            run_batch(policy, numbered, spool, as_json=as_json)
            assert b"".join(spool.blocks()).decode() == "".join(f"{e}\n" for e in expected)


def _is_ip(text: str) -> bool:
    try:
        batch_module.client_ip_text(text)
    except ValueError:
        return False
    return True
