"""relaypolicy.effectmatch: which line decides a session, line by line and compiled."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaypolicy.effectfile import parse_effect, parse_line, render_lines
from relaypolicy.effectmatch import compile_rules, line_matches


@pytest.mark.parametrize(
    ("pattern", "client_ip", "sender", "expected"),
    [
        # catch-all
        ("*", "203.0.113.9", "a@x.jp", True),
        ("*.*.*.*", "2001:db8::1", None, True),
        # IPv4 wildcards are plain string prefixes of the client IP
        ("192.168.1.*", "192.168.1.77", "a@x.jp", True),
        ("192.168.1.*", "192.168.10.77", "a@x.jp", False),
        ("192.168.1*", "192.168.1.77", "a@x.jp", True),
        ("192.168.1*", "192.168.10.77", "a@x.jp", True),
        ("192.168.1*", "192.168.199.1", "a@x.jp", True),
        ("192.168.1*", "192.168.2.1", "a@x.jp", False),
        ("192.168.*.5", "192.168.7.9", "a@x.jp", True),
        ("10.*.*.*", "10.255.0.1", "a@x.jp", True),
        ("10.*.*.*", "110.0.0.1", "a@x.jp", False),
        ("*.5", "198.51.100.1", "a@x.jp", True),
        # CIDR and single addresses, compared as addresses
        ("192.168.1.0/28", "192.168.1.15", None, True),
        ("192.168.1.0/28", "192.168.1.16", None, False),
        ("192.168.1.5/24", "192.168.1.200", None, True),
        ("0.0.0.0/0", "203.0.113.9", None, True),
        ("0.0.0.0/0", "2001:db8::1", None, False),
        ("192.168.0.100", "192.168.0.100", None, True),
        ("192.168.0.100", "192.168.0.10", None, False),
        ("192.168.0.100", "not-an-ip", None, False),
        # IPv6
        ("2001:db8::1", "2001:DB8:0::1", "a@x.jp", True),
        ("2001:db8::/32", "2001:db8:ffff::1", "a@x.jp", True),
        ("2001:db8::/32", "2001:db9::1", "a@x.jp", False),
        ("::/0", "192.168.1.1", "a@x.jp", False),
        # sender domain: the domain part of the envelope sender, case-insensitive
        ("abc.co.jp", "203.0.113.9", "User@ABC.co.jp", True),
        ("abc.co.jp", "203.0.113.9", "<user@abc.co.jp>", True),
        ("abc.co.jp", "203.0.113.9", "user@sub.abc.co.jp", False),
        ("abc.co.jp", "203.0.113.9", "user@notabc.co.jp", False),
        ("abc.co.jp", "203.0.113.9", "abc.co.jp", False),
        ("abc.co.jp", "203.0.113.9", "<>", False),
        ("*.abc.co.jp", "203.0.113.9", "user@mail.abc.co.jp", True),
        ("*.abc.co.jp", "203.0.113.9", "user@abc.co.jp", False),
        ("*.abc.co.jp", "203.0.113.9", "user@xabc.co.jp", False),
        # sender address: glob over the whole address, case-insensitive
        ("abc@abc.co.jp", "203.0.113.9", "ABC@abc.co.jp", True),
        ("abc@abc.co.jp", "203.0.113.9", "xabc@abc.co.jp", False),
        ("*@abc.co.jp", "203.0.113.9", "anyone@abc.co.jp", True),
        ("*@abc.co.jp", "203.0.113.9", "anyone@abc.co.jp.evil.example", False),
        ("*spam*@abc.co.jp", "203.0.113.9", "nospamplease@abc.co.jp", True),
        ("a.b+c@x.jp", "203.0.113.9", "aXb+c@x.jp", False),
        # null and empty senders
        ("#<>", "203.0.113.9", "<>", True),
        ("#<>", "203.0.113.9", None, False),
        ("#<>", "203.0.113.9", "", False),
        ("#blank", "203.0.113.9", None, True),
        ("#blank", "203.0.113.9", "", True),
        ("#blank", "203.0.113.9", "<>", False),
        ("#blank", "203.0.113.9", "a@x.jp", False),
        # keywords
        ("#number", "203.0.113.9", "a@192.0.2.1", True),
        ("#number", "203.0.113.9", "a@[192.0.2.1]", True),
        ("#number", "203.0.113.9", "a@x1.jp", False),
        ("#nodomain", "203.0.113.9", "postmaster", True),
        ("#nodomain", "203.0.113.9", "a@", True),
        ("#nodomain", "203.0.113.9", "a@x.jp", False),
        ("#nodomain", "203.0.113.9", "<>", False),
        ("#host", "203.0.113.9", "a@mailhost", True),
        ("#host", "203.0.113.9", "a@x.jp", False),
        ("#host", "203.0.113.9", "postmaster", False),
    ],
)
def test_line_matches(pattern, client_ip, sender, expected):
    assert line_matches(parse_line(f"{pattern} default"), client_ip, sender) is expected


@pytest.mark.parametrize("text", ["' *.*.*.* true", "", "garbage! true", "1.2.3 true"])
def test_lines_that_are_not_rules_never_match(text):
    line = parse_line(text)

    assert line_matches(line, "1.2.3.4", "a@x.jp") is False
    assert compile_rules([line]).first_match("1.2.3.4", "a@x.jp") is None


def test_first_match_returns_the_first_matching_line():
    effect = parse_effect(
        "#<> default\n#blank false\n' LAN\n192.168.1.5 false\n192.168.1.0/24 default\n"
        "192.168.*.* true\nabc.co.jp false\n*.*.*.* norelay\n"
    )
    rules = compile_rules(effect.lines)

    assert [
        getattr(rules.first_match(ip, sender), "number", None)
        for ip, sender in [
            ("192.168.1.5", "a@x.jp"),
            ("192.168.1.6", "a@x.jp"),
            ("192.168.2.6", "a@abc.co.jp"),
            ("203.0.113.9", "a@abc.co.jp"),
            ("203.0.113.9", "<>"),
            ("192.168.1.5", None),
            ("203.0.113.9", "a@x.jp"),
        ]
    ] == [4, 5, 6, 7, 1, 2, 8]
    assert compile_rules(parse_effect("10.0.0.1\n").lines).first_match("10.0.0.2", "a@x.jp") is None


_PATTERNS = st.sampled_from(
    [
        "*", "*.*.*.*", "*.5", "10.*.*.*", "10.1*", "10.1.*", "10.10.*.*", "10.1.2.*",
        "192.168.*.5", "192.168.1*", "1*", "10.1.2.3", "10.10.0.0/16", "10.1.0.0/15",
        "10.1.2.0/24", "10.1.2.3/32", "0.0.0.0/0", "0.0.0.0/1", "192.168.1.0/24",
        "2001:db8::1", "2001:db8::/32", "::/0", "abc.co.jp", "*.abc.co.jp", "*.co.jp",
        "sub.abc.co.jp", "a@abc.co.jp", "*@abc.co.jp", "a*@*.co.jp", "*@*", "A@ABC.CO.JP",
        "#<>", "#blank", "#number", "#nodomain", "#host", "' comment", "garbage!", "",
    ]
)  # fmt: skip
_MODS = st.sampled_from(["", " default", " norelay", " false", " true", "  norelay"])
_CLIENTS = st.sampled_from(
    [
        "10.1.2.3", "10.1.2.4", "10.10.9.9", "10.100.0.1", "10.0.0.1", "192.168.1.5",
        "192.168.10.5", "192.168.7.5", "1.1.1.1", "203.0.113.9", "2001:db8::1",
        "2001:db8::2", "1::1", "bogus",
    ]
)  # fmt: skip
_SENDERS = st.sampled_from(
    [
        None, "", "<>", "a@abc.co.jp", "b@abc.co.jp", "A@Sub.Abc.Co.Jp", "x@co.jp",
        "postmaster", "a@", "a@192.0.2.1", "a@mailhost", "<a@abc.co.jp>", "a@abc.co.jp.evil",
    ]
)  # fmt: skip


@settings(max_examples=400)
@given(
    rules=st.lists(st.tuples(_PATTERNS, _MODS), max_size=15),
    sessions=st.lists(st.tuples(_CLIENTS, _SENDERS), min_size=1, max_size=10),
)
def test_compiled_first_match_agrees_with_linear_scan(rules, sessions):
    effect = parse_effect(render_lines(pattern + modifier for pattern, modifier in rules))
    compiled = compile_rules(reversed(effect.lines))  # input order must not matter

    for client_ip, sender in sessions:
        naive = next((line for line in effect.lines if line_matches(line, client_ip, sender)), None)
        assert compiled.first_match(client_ip, sender) == naive
