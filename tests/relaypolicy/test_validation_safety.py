"""The lint and the simulator agree on open relays: a hypothesis invariant and a world corpus.

Whenever the simulator lets a public client relay, ``validate_rules`` has an error on the line
that decided (or, when no line decided, on the file). The corpus pins the verdicts of both on
hand-written worlds (public and private ranges, IPv4 and IPv6, string-prefix wildcards,
declared outside sites).
"""

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliases.aliasfile import Alias
from controlcenter.simulation import Session, compile_policy, evaluate_session
from relaypolicy.effectfile import parse_effect, render_lines
from relaypolicy.validation import validate_rules

DOMAIN = "example.co.jp"
WILDCARD = Alias(f"*@{DOMAIN}", f"*@{DOMAIN}")
BOSS = Alias(f"boss@{DOMAIN}", "boss@inner.example.co.jp")
PARTIAL = Alias(f"2009*@{DOMAIN}", f"2009*@inner.{DOMAIN}")
OTHER = Alias("info@other.example", "info@inner.example.co.jp")
VICTIM = "victim@relay-test.invalid"
SENDERS = (
    f"boss@{DOMAIN}",
    f"anyone@{DOMAIN}",
    f"2009@{DOMAIN}",
    "info@other.example",
    "probe@relay-test.invalid",
    "spamtest",
    "<>",
    "",
    "spam@[192.0.2.1]",
)
PUBLIC_PROBES = (
    "8.8.8.8",
    "1.1.1.1",
    "1.2.3.4",
    "11.0.0.1",
    "100.0.0.1",
    "128.0.0.1",
    "150.1.2.3",
    "203.0.114.1",
    "210.1.2.3",
    "2001:4860::1",
    "2a00::1",
    "1::1",
    "20::1",
    "3fff::1",
)
SITE_LIMIT = 256


def _boundaries(effect_text: str) -> list[str]:
    """Public addresses at the edges of every network written in the file (independently of
    the analysis under test): first, last and the neighbours outside."""
    found: list[str] = []
    for text in effect_text.splitlines():
        pattern = text.split(" ")[0].split("\t")[0]
        try:
            net = ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            continue
        last = (1 << net.max_prefixlen) - 1
        for value in (
            int(net.network_address),
            int(net.broadcast_address),
            int(net.network_address) - 1,
            int(net.broadcast_address) + 1,
        ):
            if 0 <= value <= last:
                address = (
                    ipaddress.ip_address(value)
                    if net.version == 4
                    else ipaddress.IPv6Address(value)
                )
                found.append(str(address))
    return found


def relaying_lines(effect_text, aliases, *, gateway_mode, sites=(), extra=()):
    """{deciding line or None} for every public probe that relays, declared sites left out."""
    effect = parse_effect(effect_text)
    policy = compile_policy(
        effect=effect,
        aliases=aliases,
        local_domains=(DOMAIN,),
        gateway_mode=gateway_mode,
        outside_sites=sites,
    )
    findings = validate_rules(
        effect, gateway_mode=gateway_mode, aliases=aliases, outside_sites=sites
    )
    exempt = {f.line for f in findings if f.code == "relay.W020"}  # declared sites within the limit
    decided: set[int | None] = set()
    for client in (*PUBLIC_PROBES, *_boundaries(effect_text), *extra):
        if not ipaddress.ip_address(client).is_global:
            continue
        for sender in SENDERS:
            result = evaluate_session(policy, Session(client, sender, (VICTIM,)))
            if result.rcpt[0].verdict == "relay":
                line = result.mail.rule.line if result.mail.rule else None
                if line not in exempt:
                    decided.add(line)
    return decided, findings


def assert_lint_errs_where_simulator_relays(decided, findings):
    error_lines = {f.line for f in findings if f.is_error}
    for line in decided:
        assert line in error_lines, (line, [(f.code, f.line) for f in findings])


# --- the hypothesis invariant ------------------------------------------------------------------

_OCTET = st.integers(0, 255)
_CLIENT = st.one_of(
    st.builds(lambda a, b, n: f"{a}.{b}.0.0/{n}", _OCTET, _OCTET, st.integers(0, 32)),
    st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", _OCTET, _OCTET, _OCTET, _OCTET),
    st.sampled_from(
        [
            "1*",
            "2*",
            "20*",
            "8.*.*.*",
            "192.168.1*",
            "10.*",
            "*.*.*.*",
            "*",
            "0.0.0.0/1",
            "128.0.0.0/1",
            "::/0",
            "2000::/3",
            "2001:4860::/32",
            "fd00::/8",
            "2a00::1",
            "100.64.0.0/10",
            "203.0.113.0/24",
        ]
    ),
)
_SENDER = st.sampled_from(
    [
        DOMAIN,
        f"*.{DOMAIN}",
        "*.co.jp",
        f"*@{DOMAIN}",
        f"boss@{DOMAIN}",
        f"2009*@{DOMAIN}",
        "other.example",
        "#nodomain",
        "#host",
        "#number",
        "#<>",
        "#blank",
    ]
)
_MODIFIER = st.sampled_from(
    [" default", " true", "", " false", " norelay", " norelay,0", " norelay,2", " only",
     " flase", " norelay,3", "  norelay", "\tfalse", "  true", " bogus"]
)  # fmt: skip
_LINE = st.builds(lambda p, m: p + m, st.one_of(_CLIENT, _CLIENT, _SENDER), _MODIFIER)
_ALIASES = st.lists(st.sampled_from([WILDCARD, BOSS, PARTIAL, OTHER]), unique=True, max_size=3)


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_LINE, max_size=7),
    terminator=st.sampled_from(["*.*.*.* norelay", "* norelay,2", "*.*.*.* default", None]),
    aliases=_ALIASES,
    gateway_mode=st.booleans(),
    sites=st.sets(st.integers(1, 8), max_size=2),
    extra=st.lists(
        st.one_of(
            st.ip_addresses(v=4).map(str),
            st.ip_addresses(v=6).map(str),
        ),
        max_size=6,
    ),
)
def test_whenever_a_public_client_relays_the_lint_has_an_error_on_the_deciding_line(
    lines, terminator, aliases, gateway_mode, sites, extra
):
    text = render_lines([*lines, *([terminator] if terminator else [])])
    decided, findings = relaying_lines(
        text, tuple(aliases), gateway_mode=gateway_mode, sites=sites, extra=extra
    )

    assert_lint_errs_where_simulator_relays(decided, findings)


# --- the corpus ----------------------------------------------------------------------------------

H = "#<> default\n#blank false\n"
T = "*.*.*.* norelay\n"
#: (name, effect.dat, aliases, gateway mode, declared site lines, simulator finds an open relay)
WORLDS = [
    ("hardened LAN", H + "192.168.1.0/24 default\n" + T, (WILDCARD,), True, (), False),
    ("no terminator, wildcard", H + "192.168.1.0/24 default\n", (WILDCARD,), True, (), True),
    ("no terminator, exact alias", H + "192.168.1.0/24 default\n", (BOSS,), True, (), True),
    ("no terminator, no alias", H + "192.168.1.0/24 default\n", (), True, (), False),
    ("half the Internet", H + "0.0.0.0/1 default\n" + T, (WILDCARD,), True, (), True),
    ("all IPv4 on default", H + "0.0.0.0/0 default\n" + T, (BOSS,), True, (), True),
    ("a /8 on default", H + "8.0.0.0/8 default\n" + T, (WILDCARD,), True, (), True),
    ("all IPv6 on default", H + "::/0 default\n" + T, (WILDCARD,), True, (), True),
    ("string prefix 1*", H + "1* default\n" + T, (WILDCARD,), True, (), True),
    ("string prefix 192.168.1*", H + "192.168.1* default\n" + T, (WILDCARD,), True, (), False),
    ("string prefix 10.*", H + "10.* true\n" + T, (WILDCARD,), True, (), False),
    ("trusted catch-all", H + "*.*.*.* true\n", (), True, (), True),
    ("trusted public host", H + "8.8.8.8 true\n" + T, (), True, (), True),
    ("trusted documentation net", H + "198.51.100.0/24 true\n" + T, (), True, (), False),
    ("CGNAT on default", H + "100.64.0.0/10 default\n" + T, (WILDCARD,), True, (), False),
    ("ULA IPv6 trusted", H + "fd00::/8 true\n" + T, (), True, (), False),
    ("public IPv6 trusted", H + "2001:4860::/32 true\n" + T, (), True, (), True),
    ("typo false on a public net", H + "8.8.8.0/24 flase\n" + T, (WILDCARD,), True, (), True),
    ("two spaces before norelay", H + "8.8.8.0/24  norelay\n" + T, (BOSS,), True, (), True),
    ("TAB before false, no alias", H + "8.8.8.0/24\tfalse\n" + T, (), True, (), False),
    ("norelay,3 on all IPv4", H + "0.0.0.0/0 norelay,3\n" + T, (WILDCARD,), True, (), True),
    ("sender default matches alias", H + f"*@{DOMAIN} default\n" + T, (WILDCARD,), True, (), True),
    ("sender default, other domain", H + "other.example default\n" + T, (WILDCARD,), True, (), False),  # noqa: E501
    ("nodomain trusted", H + "#nodomain true\n" + T, (), True, (), True),
    ("host keyword trusted", H + "#host true\n" + T, (), True, (), True),
    ("declared site /30", H + "8.8.8.0/30 true\n" + T, (WILDCARD,), True, (3,), False),
    ("declared site too large", H + "8.8.0.0/16 default\n" + T, (WILDCARD,), True, (3,), True),
    ("declared site IPv6 /120", H + "2001:4860::/120 default\n" + T, (BOSS,), True, (3,), False),
    ("mail server, no terminator", H + "192.168.1.0/24 default\n", (BOSS,), False, (), True),
    ("mail server, no alias", H + "192.168.1.0/24 default\n", (), False, (), False),
    ("mail server, terminator", H + "192.168.1.0/24 default\n" + T, (WILDCARD,), False, (), False),
    ("norelay,2 above the terminator", H + "0.0.0.0/0 norelay,2\n" + T, (WILDCARD,), True, (), False),  # noqa: E501
    ("false catch-all", H + "192.168.1.0/24 default\n*.*.*.* false\n", (WILDCARD,), True, (), False),  # noqa: E501
    ("partial alias, empty star", H + "192.168.1.0/24 default\n", (PARTIAL,), True, (), True),
    ("appended false lines", H + "192.168.1.0/24 default\n" + T + "8.8.8.8 false\n", (WILDCARD,), True, (), False),  # noqa: E501
    ("IPv4 covered, IPv6 open", H + "0.0.0.0/0 norelay\n2000::/3 default\n" + T, (WILDCARD,), True, (), True),  # noqa: E501
]  # fmt: skip

RELAYING_NOW = {
    "relay.E011",
    "relay.E012",
    "relay.E015",
    "relay.E016",
    "relay.E017",
    "relay.E018",
    "relay.E020",
}


def lint_says_open(findings, aliases):
    codes = {f.code for f in findings if f.is_error}
    return bool(codes & RELAYING_NOW) or ("relay.E013" in codes and bool(aliases))


def test_the_corpus_has_at_least_thirty_worlds_of_every_kind():
    assert len(WORLDS) >= 30
    assert {open_ for *_rest, open_ in WORLDS} == {True, False}
    assert any(sites for *_r, sites, _o in WORLDS)


@pytest.mark.parametrize(
    ("name", "effect", "aliases", "gateway_mode", "sites", "expected"),
    WORLDS,
    ids=[world[0] for world in WORLDS],
)
def test_simulator_and_lint_agree_on_the_corpus(
    name, effect, aliases, gateway_mode, sites, expected
):
    decided, findings = relaying_lines(effect, aliases, gateway_mode=gateway_mode, sites=sites)

    assert bool(decided) is expected
    assert lint_says_open(findings, aliases) is expected
    assert_lint_errs_where_simulator_relays(decided, findings)
