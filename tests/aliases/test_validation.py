import pytest

from aliases.aliasfile import Alias
from aliases.validation import (
    LicenceUsage,
    check_licence,
    licence_usage,
    validate_alias_rows,
    validate_aliases,
)
from controlcenter.findings import Level

DOMAINS = frozenset({"d.jp", "other.jp"})


def validate(
    aliases,
    *,
    local_domains=DOMAINS,
    gateway_mode=True,
    relay_terminated=True,
    licence=None,
    accounts=1,
    mailing_lists=0,
):
    return validate_aliases(
        aliases,
        local_domains=local_domains,
        gateway_mode=gateway_mode,
        relay_terminated=relay_terminated,
        licence=licence,
        accounts=accounts,
        mailing_lists=mailing_lists,
    )


def summary(findings):
    return [(f.level, f.code, f.obj, f.render()) for f in findings]


def per_address(count):
    return [Alias(f"user{n}@d.jp", f"user{n}@inner.d.jp") for n in range(count)]


def test_clean_table_has_no_findings():
    aliases = [Alias("a@d.jp", "a@inner.d.jp"), Alias("B@Other.jp", "b@inner.d.jp", "0")]

    assert validate(aliases) == []


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        (
            Alias("nodomain", "x@inner.d.jp"),
            "nodomain has no @domain: both sides of an alias need a domain",
        ),
        (Alias("a**@d.jp", "x@inner.d.jp"), "a**@d.jp has more than one * in its local part"),
        (
            Alias("user%evil@d.jp", "x@inner.d.jp"),
            "user%evil@d.jp contains the routing character % in its local part",
        ),
        (
            Alias("a@*.d.jp", "x@inner.d.jp"),
            "a@*.d.jp has a * in its domain: wildcards are only allowed before the @",
        ),
    ],
)
def test_E001_malformed_pattern(alias, message):
    assert summary(validate([alias])) == [
        (Level.ERROR, "alias.E001", f"alias:{alias.pattern}", message)
    ]


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        (Alias("a@d.jp", "inner"), "inner has no @domain: both sides of an alias need a domain"),
        (
            Alias("a@d.jp", "x@inner.d.jp", "2"),
            "x@inner.d.jp,2 has the option '2': only ,0 and ,1 exist",
        ),
        (
            Alias("a@d.jp", "x!y@inner.d.jp"),
            "x!y@inner.d.jp contains the routing character ! in its local part",
        ),
    ],
)
def test_E002_malformed_target(alias, message):
    assert summary(validate([alias])) == [(Level.ERROR, "alias.E002", "alias:a@d.jp", message)]


def test_E003_domain_not_managed_here():
    assert summary(validate([Alias("a@D.example", "a@inner.d.jp")])) == [
        (
            Level.ERROR,
            "alias.E003",
            "alias:a@D.example",
            "a@D.example is in d.example, which is not a local domain managed here",
        )
    ]


def test_E003_domains_compare_case_insensitively():
    assert validate([Alias("a@D.JP", "a@inner.d.jp")], local_domains=frozenset({"d.JP"})) == []


def test_E004_duplicate_names_the_first_row():
    aliases = [
        Alias("x@d.jp", "x@inner.d.jp"),
        Alias("a@d.jp", "1@e.jp"),
        Alias("A@D.JP", "2@e.jp"),
    ]

    assert summary(validate(aliases)) == [
        (
            Level.ERROR,
            "alias.E004",
            "alias:A@D.JP",
            "A@D.JP duplicates a@d.jp on row 2: only the first is used",
        )
    ]


def test_E005_target_star_without_alias_star():
    assert summary(validate([Alias("a@d.jp", "*@inner.d.jp")])) == [
        (
            Level.ERROR,
            "alias.E005",
            "alias:a@d.jp",
            "the target *@inner.d.jp has a * but a@d.jp has none to carry over",
        )
    ]


def test_E006_full_wildcard_in_gateway_mode_without_norelay_is_an_open_relay():
    findings = validate(
        [Alias("*@domain.jp", "inner@gw.jp")],
        local_domains=frozenset({"domain.jp"}),
        relay_terminated=False,
    )

    assert summary(findings) == [
        (
            Level.ERROR,
            "alias.E006",
            "alias:*@domain.jp",
            "wildcard *@domain.jp relays everything: any sender in domain.jp can relay "
            "from any host",
        )
    ]
    assert findings[0].render_hint() == (
        "Add the final *.*.*.* norelay line to effect.dat (the vendor's first counter-measure)."
    )


def test_E007_licence_exceeded_states_used_and_licence():
    findings = validate(per_address(48), licence=50, accounts=2, mailing_lists=1)

    assert summary(findings) == [
        (
            Level.ERROR,
            "alias.E007",
            "licence",
            "licence exceeded: 51 of 50 seats used (2 accounts + 48 aliases + 1 mailing lists); "
            "entries beyond the licence answer 'user unknown'",
        )
    ]


def test_W001_full_wildcard_behind_norelay_still_warns_about_backscatter():
    findings = validate([Alias("*@d.jp", "*@inner.d.jp")])

    assert [(f.level, f.code) for f in findings] == [
        (Level.WARNING, "alias.W001"),
        (Level.INFO, "alias.I002"),
    ]
    assert findings[0].render() == (
        "wildcard *@d.jp accepts every address in d.jp: forged senders are accepted inbound and "
        "their bounces hit innocent people (backscatter)"
    )
    assert findings[0].render_hint() == (
        "Register one alias per real address (user@domain -> user@domain), the vendor's second "
        "counter-measure; partial wildcards such as 2009*@domain are a middle ground."
    )


@pytest.mark.parametrize(
    ("patterns", "shadowed_row", "message"),
    [
        (
            ["*@d.jp", "boss@d.jp"],
            1,
            "boss@d.jp is never used: the earlier wildcard *@d.jp on row 1 already matches "
            "every address it would",
        ),
        (
            ["a@other.jp", "2009*@d.jp", "2009tanaka@D.JP"],
            2,
            "2009tanaka@D.JP is never used: the earlier wildcard 2009*@d.jp on row 2 already "
            "matches every address it would",
        ),
        (
            ["*-sales@d.jp", "*-tokyo-sales@d.jp"],
            1,
            "*-tokyo-sales@d.jp is never used: the earlier wildcard *-sales@d.jp on row 1 "
            "already matches every address it would",
        ),
    ],
)
def test_W002_alias_shadowed_by_an_earlier_wildcard(patterns, shadowed_row, message):
    aliases = [Alias(p, "fixed@inner.d.jp") for p in patterns]

    found = validate_alias_rows(
        aliases,
        local_domains=DOMAINS,
        relay_terminated=True,
        gateway_mode=True,
        licence=None,
        accounts=1,
    )

    shadowing = [f for f in found.by_position[shadowed_row] if f.code == "alias.W002"]
    assert [f.render() for f in shadowing] == [message]


@pytest.mark.parametrize(
    "patterns",
    [
        ["boss@d.jp", "*@d.jp"],
        ["2009*@d.jp", "2008*@d.jp"],
        ["*@other.jp", "boss@d.jp"],
        ["2009*@d.jp", "2010@d.jp"],
    ],
)
def test_W002_not_reported_when_the_later_alias_can_still_match(patterns):
    findings = validate([Alias(p, "fixed@inner.d.jp") for p in patterns])

    assert [f.code for f in findings if f.code == "alias.W002"] == []


def test_W003_partial_wildcard_in_open_gateway():
    findings = validate([Alias("2009*@d.jp", "fixed@inner.d.jp")], relay_terminated=False)

    assert summary(findings) == [
        (
            Level.WARNING,
            "alias.W003",
            "alias:2009*@d.jp",
            "partial wildcard 2009*@d.jp: any sender whose address matches it can relay "
            "from any host",
        )
    ]


@pytest.mark.parametrize(
    ("aliases", "expected"), [(44, ["alias.W004"]), (45, ["alias.W004"]), (43, [])]
)
def test_W004_licence_above_90_percent(aliases, expected):
    # 1 account + N aliases + 1 mailing list against 50 seats: 43 aliases make exactly 90 %.
    findings = validate(per_address(aliases), licence=50, mailing_lists=1)

    assert [f.code for f in findings] == expected
    if expected:
        used = aliases + 2
        assert findings[0].render() == (
            f"licence nearly full: {used} of 50 seats used ({used * 2}%)"
        )


@pytest.mark.parametrize(
    ("gateway_mode", "licence", "expected"),
    [(True, 50, ["alias.W005"]), (True, None, []), (False, 50, [])],
)
def test_W005_gateway_without_an_account(gateway_mode, licence, expected):
    findings = validate([], accounts=0, gateway_mode=gateway_mode, licence=licence)

    assert [(f.code, f.obj) for f in findings] == [(code, "settings") for code in expected]


def test_W005_message():
    (finding,) = validate([], accounts=0, licence=100)

    assert finding.render() == (
        "no mailbox account: a gateway needs at least one (dummy) account, otherwise the "
        "product demands an unlimited licence"
    )


def test_W006_full_wildcard_on_a_plain_mail_server_without_norelay():
    findings = validate(
        [Alias("*@d.jp", "fixed@inner.d.jp")], gateway_mode=False, relay_terminated=False
    )

    assert summary(findings) == [
        (
            Level.WARNING,
            "alias.W006",
            "alias:*@d.jp",
            "wildcard *@d.jp makes any sender in d.jp a local user: if this server also works as "
            "a gateway, any host can relay with such a sender",
        )
    ]


@pytest.mark.parametrize(
    ("gateway_mode", "relay_terminated"), [(True, True), (False, False), (False, True)]
)
def test_I001_partial_wildcard_is_a_middle_ground(gateway_mode, relay_terminated):
    findings = validate(
        [Alias("*-sales@d.jp", "team@inner.d.jp")],
        gateway_mode=gateway_mode,
        relay_terminated=relay_terminated,
    )

    assert summary(findings) == [
        (
            Level.INFO,
            "alias.I001",
            "alias:*-sales@d.jp",
            "partial wildcard *-sales@d.jp is a middle ground: it takes one licence seat but "
            "accepts every matching address, real or not",
        )
    ]


def test_I002_wildcard_target_carries_routing_characters():
    findings = validate([Alias("2009*@d.jp", "2009*@inner.d.jp")])

    assert [(f.level, f.code) for f in findings] == [
        (Level.INFO, "alias.I001"),
        (Level.INFO, "alias.I002"),
    ]
    assert findings[1].render() == (
        "2009*@d.jp passes any matching local part on to 2009*@inner.d.jp, routing characters "
        "included (user%host, host!user): the inner server decides what happens next"
    )
    assert findings[1].render_hint() == "Make sure the inner server does not honour % or ! routing."


def test_findings_are_grouped_by_storage_position():
    aliases = [
        Alias("ok@d.jp", "ok@inner.d.jp"),
        Alias("*@d.jp", "*@inner.d.jp"),
        Alias("boss@d.jp", "boss@inner.d.jp"),
        Alias("ok@d.jp", "again@inner.d.jp"),
    ]

    report = validate_alias_rows(
        aliases,
        local_domains=DOMAINS,
        gateway_mode=True,
        relay_terminated=False,
        licence=4,
        accounts=1,
    )

    assert {p: [f.code for f in fs] for p, fs in report.by_position.items()} == {
        1: ["alias.E006", "alias.I002"],
        2: ["alias.W002"],
        3: ["alias.E004"],
    }
    assert [f.code for f in report.general] == ["alias.E007"]
    assert report.usage == LicenceUsage(used=5, limit=4, ratio=1.25, exceeded=True)
    assert report.has_errors is True
    assert [f.code for f in report.findings] == [
        "alias.E006",
        "alias.I002",
        "alias.W002",
        "alias.E004",
        "alias.E007",
    ]
    assert all(f.line is None for f in report.findings)


@pytest.mark.parametrize(
    ("args", "expected", "percent", "near"),
    [
        ((10, 1, 0, 50), LicenceUsage(11, 50, 0.22, False), 22, False),
        ((48, 1, 1, 50), LicenceUsage(50, 50, 1.0, False), 100, True),
        ((49, 1, 1, 50), LicenceUsage(51, 50, 1.02, True), 102, False),
        ((10_000, 1, 0, None), LicenceUsage(10_001, None, None, False), None, False),
        ((0, 0, 0, 0), LicenceUsage(0, 0, 0.0, False), 0, False),
    ],
)
def test_licence_usage(args, expected, percent, near):
    usage = licence_usage(*args)

    assert (usage, usage.percent, usage.near_limit) == (expected, percent, near)


@pytest.mark.parametrize(
    ("aliases", "licence", "expected"),
    [
        (49, 50, [(Level.ERROR, "alias.E007")]),
        (48, 50, [(Level.WARNING, "alias.W004")]),
        (43, 50, []),
        (10_000, None, []),
    ],
)
def test_check_licence_is_public_and_grades_the_usage(aliases, licence, expected):
    # 1 account + N aliases + 1 mailing list: 48 aliases fill 50 seats, 49 exceed them.
    usage = licence_usage(aliases, 1, 1, licence)

    findings = check_licence(usage, aliases, 1, 1)

    assert [(f.level, f.code) for f in findings] == expected
