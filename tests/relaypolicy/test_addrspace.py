import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaypolicy import addrspace
from relaypolicy.addrspace import Space, analyse, client_space, global_space, space_text
from relaypolicy.effectfile import parse_effect, parse_line, render_lines
from relaypolicy.effectmatch import compile_rules


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("192.168.1.0/24", "192.168.1.0/24"),
        ("192.168.1.7/24", "192.168.1.0/24"),
        ("192.168.0.100", "192.168.0.100"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("*.*.*.*", "0.0.0.0/0, ::/0"),
        ("192.168.*.5", "192.168.0.0/16"),
        ("1*", "1.0.0.0/8, 10.0.0.0–19.255.255.255, 100.0.0.0–199.255.255.255, 1::/16, … (+3)"),
        (
            "192.168.1*",
            "192.168.1.0/24, 192.168.10.0–192.168.19.255, 192.168.100.0–192.168.199.255",
        ),
        ("192.168.1.25*", "192.168.1.25, 192.168.1.250–192.168.1.255"),
        ("abc.co.jp", ""),
    ],
)
def test_client_space_turns_every_pattern_into_exact_ranges(pattern, text):
    assert space_text(client_space(parse_line(pattern))) == text


def test_dotless_prefix_also_matches_ipv6_texts():
    space = client_space(parse_line("20* default"))

    assert ipaddress.ip_address("2001:db8::1") in space
    assert ipaddress.ip_address("20.1.2.3") in space
    assert ipaddress.ip_address("3001::1") not in space
    assert ipaddress.ip_address("0.2.0.0") not in space


@given(
    pattern=st.from_regex(r"\A(?:[1-9][0-9]?|0)(?:\.(?:[1-9][0-9]?|0)){0,3}\*\Z"),
    value=st.integers(0, (1 << 32) - 1),
)
@settings(max_examples=300)
def test_prefix_space_agrees_with_the_string_prefix_match(pattern, value):
    line = parse_line(pattern)
    address = ipaddress.IPv4Address(value)
    if line.wildcard_prefix is None:
        return
    assert (address in client_space(line)) == str(address).startswith(line.wildcard_prefix)


@given(
    prefix=st.sampled_from(["1", "2", "20", "200", "25", "0", "3", "9"]),
    value=st.integers(0, (1 << 128) - 1),
)
@settings(max_examples=300)
def test_ipv6_prefix_space_agrees_with_the_rfc5952_text(prefix, value):
    address = ipaddress.IPv6Address(value)
    text = str(address)
    inside = address in client_space(parse_line(f"{prefix}* default"))
    if prefix == "0" and text.startswith("0:0:"):
        return  # the documented under-approximation of "0*"
    assert inside == text.startswith(prefix)


def test_global_space_agrees_with_ipaddress_on_random_and_boundary_addresses():
    table = global_space()
    rng = random.Random(7)
    samples = [rng.getrandbits(32) for _ in range(5000)]
    for first, last in table.v4:
        samples += [first - 1, first, last, last + 1]
    for value in samples:
        if 0 <= value < 1 << 32:
            address = ipaddress.IPv4Address(value)
            assert (address in table) == address.is_global, address
    samples = [rng.getrandbits(128) for _ in range(5000)]
    samples += [
        int(ipaddress.IPv6Address("::ffff:10.0.0.1")),
        int(ipaddress.IPv6Address("::ffff:8.8.8.8")),
    ]
    for first, last in table.v6:
        samples += [first - 1, first, last, last + 1]
    for value in samples:
        if 0 <= value < 1 << 128:
            address6 = ipaddress.IPv6Address(value)
            assert (address6 in table) == address6.is_global, address6


def test_analysis_gives_each_line_what_reaches_it_first():
    effect = parse_effect(
        "#<> default\n192.168.1.0/24 default\n0.0.0.0/1 default\n1* true\n*.*.*.* norelay\n"
    )
    reaches = analyse(effect.lines).by_number()

    assert space_text(reaches[2].reachable) == "192.168.1.0/24"
    assert reaches[2].public.is_empty
    assert space_text(reaches[3].reachable) == "0.0.0.0/1"
    assert reaches[3].public.size() == 2_092_957_696
    assert space_text(reaches[4].reachable, limit=2) == (
        "128.0.0.0–192.168.0.255, 192.168.2.0–199.255.255.255, … (+4)"
    )
    assert space_text(reaches[5].reachable, limit=1).startswith("200.0.0.0–255.255.255.255,")


def test_unmatched_space_is_what_no_client_line_matches():
    analysis = analyse(parse_effect("10.0.0.0/8 default\nabc.co.jp false\n").lines)

    assert analysis.unmatched.v4 == ((0, (10 << 24) - 1), (11 << 24, (1 << 32) - 1))
    assert analysis.unmatched.v6 == ((0, (1 << 128) - 1),)
    assert analysis.unmatched_public.size(4) == global_space().size(4)


_PATTERNS = st.one_of(
    st.from_regex(r"\A(?:[1-9][0-9]?)(?:\.(?:[1-9][0-9]?|0)){0,2}\*\Z"),
    st.builds(
        lambda a, b, n: f"{a}.{b}.0.0/{n}",
        st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 32),
    ),
    st.just("*.*.*.*"),
)


@given(patterns=st.lists(_PATTERNS, min_size=1, max_size=8), value=st.integers(0, (1 << 32) - 1))
@settings(max_examples=300)
def test_the_line_reached_is_the_first_matching_line(patterns, value):
    effect = parse_effect(render_lines(f"{p} default" for p in patterns))
    address = ipaddress.IPv4Address(value)
    first = compile_rules(effect.lines).first_match(str(address), "<>")
    owners = [reach.number for reach in analyse(effect.lines).lines if address in reach.reachable]

    assert owners == ([first.number] if first is not None else [])


def test_sampling_is_deterministic_and_covers_both_sides_of_each_octet_step():
    first, last = int(ipaddress.IPv4Address("10.0.0.0")), int(ipaddress.IPv4Address("10.0.1.255"))
    probes = addrspace.sample_range(4, first, last, seed="x")

    assert probes == addrspace.sample_range(4, first, last, seed="x")
    texts = [addrspace.address_text(4, value) for value in probes[:6]]
    assert texts == [
        "10.0.0.0",
        "10.0.1.255",
        "9.255.255.255",
        "10.0.2.0",
        "10.0.0.255",
        "10.0.1.0",
    ]


def test_space_contains_only_its_version():
    space = Space(((0, 10),), ())

    assert ipaddress.IPv4Address(5) in space
    assert ipaddress.IPv6Address(5) not in space
