import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliases.aliasfile import Alias
from controlcenter.simulation import (
    REPLY_FALSE,
    AddressClass,
    Policy,
    Reason,
    RuleRef,
    Session,
    SessionResult,
    compile_policy,
    evaluate_session,
)
from relaypolicy.effectfile import parse_effect
from relaypolicy.table import Row, RowKind, Table, render_table

DOMAIN = "example.co.jp"
OUTSIDE = "203.0.113.50"
LAN = "192.168.1.20"
VICTIM = "victim@relay-test.invalid"
HARDENED = "#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* norelay\n"
NO_TERMINATOR = "#<> default\n#blank false\n192.168.1.0/24 default\n"
WILDCARD = Alias(f"*@{DOMAIN}", f"*@{DOMAIN}")
BOSS = Alias(f"boss@{DOMAIN}", "boss@inner.example.co.jp")

OK_MAIL = "250 2.1.0 Sender OK"
OK_RCPT = "250 2.1.5 Recipient OK"
BAD_MAIL = "501 5.1.7 Bad sender address syntax"
BAD_RCPT = "501 5.1.3 Bad recipient address syntax"
NEED_MAIL = "503 5.5.1 Need MAIL command"
USER_UNKNOWN = "550 5.1.1 User unknown"
SENDER_UNKNOWN = "550 5.1.0 Sender address rejected: User unknown"
RELAY_DENIED = "550 5.7.1 Relaying denied"


def make_policy(
    effect: str = HARDENED,
    aliases: tuple[Alias, ...] = (WILDCARD,),
    domains: tuple[str, ...] = (DOMAIN,),
    *,
    gateway_mode: bool = True,
) -> Policy:
    return compile_policy(
        effect=parse_effect(effect),
        aliases=aliases,
        local_domains=domains,
        gateway_mode=gateway_mode,
    )


def evaluate(
    policy: Policy, mail_from: str, *rcpt: str, client: str = OUTSIDE, auth: bool = False
) -> SessionResult:
    return evaluate_session(policy, Session(client, mail_from, rcpt, auth))


def answers(result: SessionResult) -> list[tuple[str, str, str]]:
    return [(r.address, r.verdict, r.reply) for r in result.rcpt]


# --- the decision table (spec §3) ---------------------------------------------------------------

# One row per effect.dat line x sender class. Cells: the answer to a local-existing (LE),
# local-unknown (LU) and external (EXT) recipient, without and with SMTP AUTH.
#   D deliver  R relay  U 550 5.1.1  S 550 5.1.0 (sender)  N 550 5.7.1  M 503 (MAIL refused)
DECISIONS = """
line                     sender          LE LU EXT   AUTH: LE LU EXT
203.0.113.50             local-existing  D  U  R           D  U  R
203.0.113.50             local-unknown   D  U  R           D  U  R
203.0.113.50             external        D  U  R           D  U  R
203.0.113.50             null            D  U  R           D  U  R
203.0.113.50             empty           D  U  R           D  U  R
203.0.113.50_true        local-existing  D  U  R           D  U  R
203.0.113.50_true        local-unknown   D  U  R           D  U  R
203.0.113.50_true        external        D  U  R           D  U  R
203.0.113.50_true        null            D  U  R           D  U  R
203.0.113.50_true        empty           D  U  R           D  U  R
203.0.113.50_only        local-existing  D  U  R           D  U  R
203.0.113.50_only        local-unknown   D  U  R           D  U  R
203.0.113.50_only        external        D  U  R           D  U  R
203.0.113.50_only        null            D  U  R           D  U  R
203.0.113.50_only        empty           D  U  R           D  U  R
203.0.113.50_false       local-existing  M  M  M           M  M  M
203.0.113.50_false       local-unknown   M  M  M           M  M  M
203.0.113.50_false       external        M  M  M           M  M  M
203.0.113.50_false       null            M  M  M           M  M  M
203.0.113.50_false       empty           M  M  M           M  M  M
203.0.113.50_default     local-existing  D  U  R           D  U  R
203.0.113.50_default     local-unknown   S  U  N           D  U  R
203.0.113.50_default     external        D  U  N           D  U  R
203.0.113.50_default     null            D  U  N           D  U  R
203.0.113.50_default     empty           D  U  N           D  U  R
192.0.2.99_true          local-existing  D  U  R           D  U  R
192.0.2.99_true          local-unknown   S  U  N           D  U  R
192.0.2.99_true          external        D  U  N           D  U  R
192.0.2.99_true          null            D  U  N           D  U  R
192.0.2.99_true          empty           D  U  N           D  U  R
203.0.113.50_relay       local-existing  D  U  R           D  U  R
203.0.113.50_relay       local-unknown   S  U  N           D  U  R
203.0.113.50_relay       external        D  U  N           D  U  R
203.0.113.50_relay       null            D  U  N           D  U  R
203.0.113.50_relay       empty           D  U  N           D  U  R
203.0.113.50__norelay    local-existing  D  U  R           D  U  R
203.0.113.50__norelay    local-unknown   S  U  N           D  U  R
203.0.113.50__norelay    external        D  U  N           D  U  R
203.0.113.50__norelay    null            D  U  N           D  U  R
203.0.113.50__norelay    empty           D  U  N           D  U  R
203.0.113.50_norelay     local-existing  D  U  N           D  U  R
203.0.113.50_norelay     local-unknown   S  U  N           D  U  R
203.0.113.50_norelay     external        D  U  N           D  U  R
203.0.113.50_norelay     null            D  U  N           D  U  R
203.0.113.50_norelay     empty           D  U  N           D  U  R
203.0.113.50_norelay,1   local-existing  D  U  N           D  U  R
203.0.113.50_norelay,1   local-unknown   S  U  N           D  U  R
203.0.113.50_norelay,1   external        D  U  N           D  U  R
203.0.113.50_norelay,1   null            D  U  N           D  U  R
203.0.113.50_norelay,1   empty           D  U  N           D  U  R
203.0.113.50_norelay,2   local-existing  D  U  N           D  U  R
203.0.113.50_norelay,2   local-unknown   S  U  N           D  U  R
203.0.113.50_norelay,2   external        D  U  N           D  U  R
203.0.113.50_norelay,2   null            D  U  N           D  U  R
203.0.113.50_norelay,2   empty           D  U  N           D  U  R
203.0.113.50_norelay,0   local-existing  D  U  N           D  U  N
203.0.113.50_norelay,0   local-unknown   S  U  N           S  U  N
203.0.113.50_norelay,0   external        D  U  N           D  U  N
203.0.113.50_norelay,0   null            D  U  N           D  U  N
203.0.113.50_norelay,0   empty           D  U  N           D  U  N
"""
# Line spellings above: "_" is one space; "203.0.113.50" alone is the bare (trusted) form;
# "192.0.2.99 true" matches nobody here (no match = default); "relay" is an unrecognised
# modifier and "__norelay" a doubled space, both of which act as default.

SENDERS = {
    "local-existing": "boss@example.co.jp",
    "local-unknown": "nobody@example.co.jp",
    "external": "someone@outside.example",
    "null": "<>",
    "empty": "",
}
RECIPIENTS = ("boss@example.co.jp", "nobody@example.co.jp", VICTIM)
CELLS = {
    "D": ("deliver", OK_RCPT),
    "R": ("relay", OK_RCPT),
    "U": ("reject", USER_UNKNOWN),
    "S": ("reject", SENDER_UNKNOWN),
    "N": ("reject", RELAY_DENIED),
    "M": ("reject", NEED_MAIL),
}


def decision_rows() -> list[tuple[str, str, bool, tuple[str, str, str]]]:
    rows = []
    for text in DECISIONS.strip().splitlines()[1:]:
        line, sender, *cells = text.replace("AUTH:", "").split()
        spelled = line.replace("_", " ")
        rows.append((spelled, sender, False, (cells[0], cells[1], cells[2])))
        rows.append((spelled, sender, True, (cells[3], cells[4], cells[5])))
    return rows


def test_decision_table_covers_every_modifier_and_sender_class() -> None:
    rows = decision_rows()
    assert len(rows) == 12 * 5 * 2
    assert {sender for _, sender, _, _ in rows} == set(SENDERS)


@pytest.mark.parametrize(("line", "sender", "auth", "cells"), decision_rows())
def test_decision_table(line: str, sender: str, auth: bool, cells: tuple[str, str, str]) -> None:
    policy = make_policy(f"{line}\n", aliases=(BOSS,))
    result = evaluate(policy, SENDERS[sender], *RECIPIENTS, auth=auth)

    assert [(r.verdict, r.reply) for r in result.rcpt] == [CELLS[cell] for cell in cells]
    refused = line.endswith(" false")
    assert (result.mail.verdict, result.mail.reply) == (
        ("reject", REPLY_FALSE) if refused else ("accept", OK_MAIL)
    )
    assert result.mail.rule == (None if line.startswith("192.0.2.99") else RuleRef(1, line))
    assert result.mail.sender_class is AddressClass(sender)


def test_local_unknown_sender_is_refused_by_the_built_in_table_with_a_sender_reply() -> None:
    policy = make_policy("", aliases=(BOSS,))
    result = evaluate(policy, "nobody@example.co.jp", "boss@example.co.jp", VICTIM)

    assert answers(result) == [
        ("boss@example.co.jp", "reject", SENDER_UNKNOWN),
        (VICTIM, "reject", RELAY_DENIED),
    ]
    assert [r.reason for r in result.rcpt] == [Reason.UNKNOWN_SENDER, Reason.UNKNOWN_SENDER]
    assert [str(note) for note in result.rcpt[0].notes] == [
        "the sender nobody@example.co.jp is in the managed domain example.co.jp but matches "
        "no alias: the built-in table refuses it"
    ]


def test_reasons_name_why_each_recipient_was_answered() -> None:
    policy = make_policy(NO_TERMINATOR, aliases=(BOSS,))
    result = evaluate(policy, "boss@example.co.jp", "boss@example.co.jp", "x@example.co.jp", VICTIM)

    assert [r.reason for r in result.rcpt] == [
        Reason.LOCAL_RECIPIENT,
        Reason.UNKNOWN_RECIPIENT,
        Reason.LOCAL_SENDER,
    ]
    assert [r.rule for r in result.rcpt] == [None, None, None]


def test_norelay_0_says_that_auth_was_ignored() -> None:
    policy = make_policy("*.*.*.* norelay,0\n", aliases=(BOSS,))
    result = evaluate(policy, "boss@example.co.jp", VICTIM, auth=True)

    assert answers(result) == [(VICTIM, "reject", RELAY_DENIED)]
    assert result.rcpt[0].note_codes == ("auth-ignored",)


def test_auth_relay_is_explained() -> None:
    policy = make_policy(HARDENED, aliases=(BOSS,))
    result = evaluate(policy, "someone@outside.example", VICTIM, auth=True)

    assert answers(result) == [(VICTIM, "relay", OK_RCPT)]
    assert (result.rcpt[0].reason, result.rcpt[0].note_codes) == (Reason.AUTH, ("auth",))


def test_trusted_line_note_names_the_line() -> None:
    policy = make_policy("#<> default\n*.*.*.* true\n")
    result = evaluate(policy, "someone@outside.example", VICTIM)

    assert [str(note) for note in result.rcpt[0].notes] == [
        "line 2 `*.*.*.* true` trusts the session: it may relay anywhere"
    ]


@pytest.mark.parametrize(
    ("effect", "codes"),
    [
        ("", ("no-match",)),
        ("*.*.*.* false\n", ("false",)),
        ("*.*.*.* only\n", ("only",)),
        ("*.*.*.* Norelay\n", ()),
        ("*.*.*.* norelay,9\n", ("ignored-modifier",)),
        ("*.*.*.*\tnorelay\n", ("ignored-modifier",)),
        ("*.*.*.* default\n", ()),
    ],
)
def test_mail_notes_explain_the_deciding_line(effect: str, codes: tuple[str, ...]) -> None:
    result = evaluate(make_policy(effect), "someone@outside.example", VICTIM)

    assert tuple(note.code for note in result.mail.notes) == codes


def test_client_that_is_not_an_ip_address_is_noted_and_still_evaluated() -> None:
    result = evaluate(make_policy(), "someone@outside.example", VICTIM, client="mx.example")

    assert [str(note) for note in result.mail.notes] == [
        "mx.example is not an IP address: only wildcard lines can match it"
    ]
    assert answers(result) == [(VICTIM, "reject", RELAY_DENIED)]
    assert result.mail.rule is not None
    assert result.mail.rule.line == 4


def test_each_recipient_gets_its_own_answer() -> None:
    policy = make_policy(HARDENED, aliases=(BOSS,))
    result = evaluate(
        policy, "someone@outside.example", "boss@example.co.jp", "nobody@example.co.jp", VICTIM, "x"
    )

    assert answers(result) == [
        ("boss@example.co.jp", "deliver", OK_RCPT),
        ("nobody@example.co.jp", "reject", USER_UNKNOWN),
        (VICTIM, "reject", RELAY_DENIED),
        ("x", "reject", USER_UNKNOWN),
    ]
    assert [r.stage for r in result.rcpt] == ["rcpt"] * 4


def test_session_without_recipients_answers_mail_only() -> None:
    result = evaluate(make_policy(), "someone@outside.example")

    assert result.as_dict()["rcpt"] == []
    assert result.mail.verdict == "accept"


# --- sender lines and precedence ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("effect", "mail_from", "line", "verdict"),
    [
        # a sender-domain line above the catch-all decides for every client
        ("example.co.jp true\n*.*.*.* norelay\n", "anyone@example.co.jp", 1, "relay"),
        # the sender is read as its parsed final mailbox: case, trailing dot and source route
        ("example.co.jp true\n*.*.*.* norelay\n", "Anyone@EXAMPLE.co.jp.", 1, "relay"),
        ("example.co.jp true\n*.*.*.* norelay\n", "<@relay.example:a@example.co.jp>", 1, "relay"),
        ("*@example.co.jp true\n*.*.*.* norelay\n", '"a b"@example.co.jp', 1, "relay"),
        # look-alike sender domains do not match
        ("example.co.jp true\n*.*.*.* norelay\n", "anyone@notexample.co.jp", 2, "reject"),
        ("example.co.jp true\n*.*.*.* norelay\n", "a@example.co.jp.evil.example", 2, "reject"),
        # first line wins: a sender line below the catch-all is unreachable
        ("*.*.*.* norelay\nexample.co.jp true\n", "anyone@example.co.jp", 1, "reject"),
        # an IP line above a sender line wins
        ("203.0.113.0/24 norelay\nexample.co.jp true\n", "anyone@example.co.jp", 1, "reject"),
        ("#<> true\n*.*.*.* norelay\n", "<>", 1, "relay"),
        ("#blank true\n*.*.*.* norelay\n", "", 1, "relay"),
    ],
)
def test_first_matching_line_decides(effect: str, mail_from: str, line: int, verdict: str) -> None:
    result = evaluate(make_policy(effect), mail_from, VICTIM)

    assert result.mail.rule is not None
    assert result.mail.rule.line == line
    assert result.rcpt[0].verdict == verdict


def test_lines_numbers_come_from_the_rendered_table() -> None:
    table = Table(rows=(Row(RowKind.RULE, pattern="192.168.1.0/24", modifier="default"),))
    effect = render_table(table).effect
    policy = compile_policy(
        effect=effect, aliases=[WILDCARD], local_domains=[DOMAIN], gateway_mode=True
    )
    result = evaluate(policy, "anyone@example.co.jp", VICTIM)

    assert result.mail.rule is not None
    assert (result.mail.rule.line, result.mail.rule.text) == (5, "*.*.*.* norelay")


@settings(max_examples=300, deadline=None)
@given(
    client=st.sampled_from(
        ["203.0.113.50", "192.168.1.20", "192.168.10.7", "10.1.2.3", "2001:db8::1", "x", ""]
    ),
    sender=st.sampled_from(
        ["<>", "", "a@example.co.jp", "b@sub.example.co.jp", "c@spam.example", "d@host", "e@1.2"]
    ),
    lines=st.lists(
        st.sampled_from(
            [
                "#<> default",
                "#blank false",
                "192.168.1.0/24 default",
                "192.168.1* true",
                "10.*.*.* norelay",
                "2001:db8::/32 true",
                "example.co.jp false",
                "*.example.co.jp norelay,2",
                "*@spam.example false",
                "a@example.co.jp true",
                "#nodomain false",
                "#host false",
                "#number norelay",
                "*.*.*.* norelay",
                "* false",
            ]
        ),
        max_size=8,
    ),
)
def test_split_rule_lookup_agrees_with_compiled_rules(
    client: str, sender: str, lines: list[str]
) -> None:
    policy = make_policy("".join(f"{line}\n" for line in lines))
    result = evaluate(policy, sender, VICTIM, client=client)

    expected = policy.rules.first_match(client, sender)
    assert (result.mail.rule.line if result.mail.rule else None) == (
        expected.number if expected else None
    )


# --- the vendor's hardened example ----------------------------------------------------------------


def test_hardened_file_blocks_a_forged_local_sender_from_outside() -> None:
    result = evaluate(make_policy(HARDENED), "anyone@example.co.jp", VICTIM)

    assert (result.mail.verdict, result.mail.rule) == ("accept", RuleRef(4, "*.*.*.* norelay"))
    assert answers(result) == [(VICTIM, "reject", RELAY_DENIED)]


def test_wildcard_alias_without_terminator_lets_a_forged_sender_relay() -> None:
    result = evaluate(make_policy(NO_TERMINATOR), "anyone@example.co.jp", VICTIM)

    assert result.mail.rule is None
    assert result.mail.sender_class is AddressClass.LOCAL_EXISTING
    assert answers(result) == [(VICTIM, "relay", OK_RCPT)]
    assert result.rcpt[0].reason is Reason.LOCAL_SENDER
    assert [str(note) for note in result.rcpt[0].notes] == [
        "relayed because the sender anyone@example.co.jp is local through alias "
        "*@example.co.jp: anyone can forge a local sender"
    ]


@pytest.mark.parametrize("effect", [HARDENED, NO_TERMINATOR])
def test_lan_client_relays_for_a_local_sender(effect: str) -> None:
    result = evaluate(make_policy(effect), "anyone@example.co.jp", VICTIM, client=LAN)

    assert answers(result) == [(VICTIM, "relay", OK_RCPT)]
    assert result.mail.rule is not None
    assert result.mail.rule.line == 3


@pytest.mark.parametrize("client", [OUTSIDE, LAN])
def test_hardened_null_sender_delivers_locally_only(client: str) -> None:
    result = evaluate(make_policy(HARDENED), "<>", "boss@example.co.jp", VICTIM, client=client)

    assert result.mail.rule is not None
    assert (result.mail.rule.line, result.mail.sender_class) == (1, AddressClass.NULL)
    assert answers(result) == [
        ("boss@example.co.jp", "deliver", OK_RCPT),
        (VICTIM, "reject", RELAY_DENIED),
    ]


def test_hardened_empty_sender_is_refused_at_mail_from() -> None:
    result = evaluate(make_policy(HARDENED), "", "boss@example.co.jp", VICTIM)

    assert (result.mail.verdict, result.mail.reply) == ("reject", REPLY_FALSE)
    assert result.mail.rule is not None
    assert result.mail.rule.line == 2
    assert answers(result) == [
        ("boss@example.co.jp", "reject", NEED_MAIL),
        (VICTIM, "reject", NEED_MAIL),
    ]
    assert [r.stage for r in result.rcpt] == ["mail", "mail"]
    assert [str(n) for n in result.rcpt[0].notes] == [
        f"MAIL FROM was refused ({REPLY_FALSE}), so no recipient is accepted"
    ]


def test_empty_sender_without_a_matching_line_is_an_external_sender() -> None:
    result = evaluate(make_policy("", aliases=(BOSS,)), "", "boss@example.co.jp", VICTIM)

    assert (result.mail.verdict, result.mail.sender_class) == ("accept", AddressClass.EMPTY)
    assert answers(result) == [
        ("boss@example.co.jp", "deliver", OK_RCPT),
        (VICTIM, "reject", RELAY_DENIED),
    ]


# --- path parser integration (501) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail_from", "note"),
    [
        ('<"user">', "unreadable path: unqualified address: a domain is required (user@domain)"),
        (
            "user@relay-test.invalid@example.co.jp",
            "unreadable path: more than one unquoted @: the address can be read two ways",
        ),
        ("<a@example.co.jp", "unreadable path: angle brackets are unbalanced or nested"),
        (
            "a b@example.co.jp",
            "unreadable path: spaces are only allowed inside a quoted local part",
        ),
        (
            "ユーザー@example.co.jp",
            "unreadable path: non-ASCII address: it needs SMTPUTF8, which "
            "the gateway does not offer",
        ),
        (
            "a@[192.0.2.256]",
            "unreadable path: the address literal is not a valid IPv4 or IPv6 address",
        ),
    ],
)
def test_unparsable_sender_is_refused_with_501(mail_from: str, note: str) -> None:
    result = evaluate(make_policy("*.*.*.* true\n"), mail_from, VICTIM, "boss@example.co.jp")

    assert (result.mail.verdict, result.mail.reply, result.mail.rule) == ("reject", BAD_MAIL, None)
    assert result.mail.sender_class is AddressClass.INVALID
    assert result.mail.reason is Reason.SYNTAX
    assert [str(n) for n in result.mail.notes] == [note]
    assert answers(result) == [
        (VICTIM, "reject", NEED_MAIL),
        ("boss@example.co.jp", "reject", NEED_MAIL),
    ]
    assert [r.stage for r in result.rcpt] == ["mail", "mail"]


@pytest.mark.parametrize(
    "rcpt",
    [
        "<>",
        "",
        '"victim"',
        "victim@relay-test.invalid@example.co.jp",
        "<victim@relay-test.invalid",
        "victim@[192.0.2.256]",
        "victim@example.co.jp..",
        "<@example.co.jp>",
        "<@:victim@relay-test.invalid>",
    ],
)
def test_unparsable_recipient_is_refused_with_501(rcpt: str) -> None:
    result = evaluate(make_policy("*.*.*.* true\n"), "boss@example.co.jp", rcpt, VICTIM)

    assert answers(result) == [(rcpt, "reject", BAD_RCPT), (VICTIM, "relay", OK_RCPT)]
    assert (result.rcpt[0].stage, result.rcpt[0].rule, result.rcpt[0].reason) == (
        "rcpt",
        None,
        Reason.SYNTAX,
    )
    assert result.rcpt[0].address_class is AddressClass.INVALID


# --- every relay trick of spec §7 -------------------------------------------------------------

TRICKS = [
    # (recipient, verdict, reply, class, note codes) under the hardened file + wildcard alias
    (VICTIM, "reject", RELAY_DENIED, "external", ()),
    ("victim%relay-test.invalid@example.co.jp", "deliver", OK_RCPT, "local-existing", ("routing",)),
    (
        '"victim@relay-test.invalid"@example.co.jp',
        "deliver",
        OK_RCPT,
        "local-existing",
        ("quoted", "routing"),
    ),
    ("victim@relay-test.invalid@example.co.jp", "reject", BAD_RCPT, "invalid", ("syntax",)),
    (
        "<@example.co.jp:victim@relay-test.invalid>",
        "reject",
        RELAY_DENIED,
        "external",
        ("source-route",),
    ),
    (
        "<@a.example,@b.example:victim@example.co.jp>",
        "deliver",
        OK_RCPT,
        "local-existing",
        ("source-route",),
    ),
    ("relay-test.invalid!victim@example.co.jp", "deliver", OK_RCPT, "local-existing", ("routing",)),
    (
        "relay-test.invalid!victim",
        "reject",
        USER_UNKNOWN,
        "local-unknown",
        ("nodomain-recipient",),
    ),
    ("victim", "reject", USER_UNKNOWN, "local-unknown", ("nodomain-recipient",)),
    ("victim@[192.0.2.1]", "reject", RELAY_DENIED, "external", ("ip-literal",)),
    ("victim@[IPv6:2001:db8::1]", "reject", RELAY_DENIED, "external", ("ip-literal",)),
    ("victim@RELAY-TEST.INVALID.", "reject", RELAY_DENIED, "external", ("trailing-dot",)),
    ("Boss@EXAMPLE.CO.JP.", "deliver", OK_RCPT, "local-existing", ("trailing-dot",)),
    ("victim@notexample.co.jp", "reject", RELAY_DENIED, "external", ("lookalike",)),
    (
        "victim@example.co.jp.relay-test.invalid",
        "reject",
        RELAY_DENIED,
        "external",
        ("lookalike",),
    ),
    ("victim@sub.example.co.jp", "reject", RELAY_DENIED, "external", ("lookalike",)),
    ("victim@example.co", "reject", RELAY_DENIED, "external", ()),
    ("victim@192.0.2.1", "reject", RELAY_DENIED, "external", ()),
    ("<postmaster>", "deliver", OK_RCPT, "local-existing", ("postmaster",)),
    ("<Postmaster>", "deliver", OK_RCPT, "local-existing", ("postmaster",)),
]


@pytest.mark.parametrize(("rcpt", "verdict", "reply", "cls", "codes"), TRICKS)
def test_relay_tricks_from_outside_with_forged_sender(
    rcpt: str, verdict: str, reply: str, cls: str, codes: tuple[str, ...]
) -> None:
    result = evaluate(make_policy(HARDENED), "anyone@example.co.jp", rcpt)

    answer = result.rcpt[0]
    assert (answer.verdict, answer.reply, answer.address_class.value) == (verdict, reply, cls)
    assert answer.note_codes == codes


@pytest.mark.parametrize(
    ("rcpt", "verdict", "reply", "codes"),
    [
        ("victim%relay-test.invalid@example.co.jp", "reject", USER_UNKNOWN, ()),
        ('"victim@relay-test.invalid"@example.co.jp', "reject", USER_UNKNOWN, ("quoted",)),
        ("relay-test.invalid!victim@example.co.jp", "reject", USER_UNKNOWN, ()),
        ("postmaster@example.co.jp", "reject", USER_UNKNOWN, ("postmaster-alias",)),
        ("BOSS@example.co.jp", "deliver", OK_RCPT, ()),
        ('"boss"@example.co.jp', "deliver", OK_RCPT, ("quoted",)),
    ],
)
def test_relay_tricks_without_a_wildcard_alias_are_unknown_users(
    rcpt: str, verdict: str, reply: str, codes: tuple[str, ...]
) -> None:
    result = evaluate(make_policy(HARDENED, aliases=(BOSS,)), "someone@outside.example", rcpt)

    assert (result.rcpt[0].verdict, result.rcpt[0].reply) == (verdict, reply)
    assert result.rcpt[0].note_codes == codes


@pytest.mark.parametrize(
    ("rcpt", "verdict"),
    [
        (VICTIM, "relay"),
        ("<@example.co.jp:victim@relay-test.invalid>", "relay"),
        ("victim@RELAY-TEST.INVALID.", "relay"),
        ("victim@[192.0.2.1]", "relay"),
        ("victim@notexample.co.jp", "relay"),
        ("victim%relay-test.invalid@example.co.jp", "deliver"),
        ("victim@relay-test.invalid@example.co.jp", "reject"),
    ],
)
def test_open_gateway_relays_disguised_outside_recipients(rcpt: str, verdict: str) -> None:
    result = evaluate(make_policy(NO_TERMINATOR), "anyone@example.co.jp", rcpt)

    assert result.rcpt[0].verdict == verdict


def test_routing_note_says_the_inner_server_decides() -> None:
    result = evaluate(make_policy(), "someone@outside.example", "a!b%c@example.co.jp")

    assert [str(n) for n in result.rcpt[0].notes] == [
        "the local part a!b%c still contains routing characters (% !) and was accepted by "
        "alias *@example.co.jp: the inner server decides what happens next"
    ]


def test_routing_note_only_on_delivery() -> None:
    policy = make_policy("*.*.*.* norelay\n")
    result = evaluate(policy, "nobody@example.co.jp", "a%b@example.co.jp", auth=False)
    unknown_sender = make_policy(
        "*.*.*.* norelay\n", aliases=(Alias("a*@example.co.jp", "a@x.jp"),)
    )
    refused = evaluate(unknown_sender, "nobody@example.co.jp", "a%b@example.co.jp")

    assert result.rcpt[0].note_codes == ("routing",)
    assert (refused.rcpt[0].reply, refused.rcpt[0].note_codes) == (
        SENDER_UNKNOWN,
        ("unknown-sender",),
    )


@pytest.mark.parametrize(
    ("mail_from", "cls", "codes"),
    [
        ("anyone@example.co.jp", AddressClass.LOCAL_EXISTING, ()),
        (
            "<@relay-test.invalid:anyone@example.co.jp>",
            AddressClass.LOCAL_EXISTING,
            ("source-route",),
        ),
        ("anyone@[192.0.2.1]", AddressClass.EXTERNAL, ("ip-literal",)),
        ("anyone@sub.example.co.jp", AddressClass.EXTERNAL, ("lookalike",)),
        ("<>", AddressClass.NULL, ()),
        ("", AddressClass.EMPTY, ()),
    ],
)
def test_sender_tricks_are_classified(
    mail_from: str, cls: AddressClass, codes: tuple[str, ...]
) -> None:
    result = evaluate(make_policy("*.*.*.* norelay\n"), mail_from, VICTIM)

    assert result.mail.sender_class is cls
    assert tuple(note.code for note in result.mail.notes) == codes


def test_alias_outside_the_local_domains_still_makes_an_address_local() -> None:
    policy = make_policy("", aliases=(Alias("info@other.example", "info@inner.example"),))

    result = evaluate(policy, "someone@outside.example", "info@other.example")

    assert (result.rcpt[0].verdict, result.rcpt[0].address_class) == (
        "deliver",
        AddressClass.LOCAL_EXISTING,
    )


def test_local_domains_compare_case_insensitively() -> None:
    policy = make_policy(HARDENED, aliases=(), domains=("Example.CO.JP.",))

    assert policy.local_domains == frozenset({"example.co.jp"})
    result = evaluate(policy, "someone@outside.example", "x@example.co.jp")
    assert result.rcpt[0].reply == USER_UNKNOWN


def test_mail_server_mode_notes_that_accounts_are_unknown() -> None:
    policy = make_policy(HARDENED, aliases=(BOSS,), gateway_mode=False)
    result = evaluate(policy, "someone@outside.example", "taro@example.co.jp")

    assert [str(n) for n in result.rcpt[0].notes] == [
        "in mail-server mode a mailbox account may exist for taro@example.co.jp; the simulator "
        "knows aliases only"
    ]


# --- the JSON contract (cli.md simulate_relay) ------------------------------------------------


def test_as_dict_matches_the_cli_contract_exactly() -> None:
    policy = make_policy(HARDENED, aliases=(BOSS, WILDCARD))
    result = evaluate(policy, "anyone@example.co.jp", "boss@example.co.jp", VICTIM, "bad@@x")

    assert result.as_dict() == {
        "mail": {
            "verdict": "accept",
            "reply": "250 2.1.0 Sender OK",
            "rule": {"line": 4, "text": "*.*.*.* norelay"},
            "notes": [],
            "class": "local-existing",
            "modifier": "norelay",
            "mailbox": "anyone@example.co.jp",
            "alias": {
                "pattern": "*@example.co.jp",
                "target": "anyone@example.co.jp",
                "position": 1,
            },
            "reason": "accepted",
        },
        "rcpt": [
            {
                "address": "boss@example.co.jp",
                "verdict": "deliver",
                "reply": "250 2.1.5 Recipient OK",
                "rule": {"line": 4, "text": "*.*.*.* norelay"},
                "notes": [],
                "stage": "rcpt",
                "class": "local-existing",
                "alias": {
                    "pattern": "boss@example.co.jp",
                    "target": "boss@inner.example.co.jp",
                    "position": 0,
                },
                "mailbox": "boss@example.co.jp",
                "reason": "local-recipient",
            },
            {
                "address": "victim@relay-test.invalid",
                "verdict": "reject",
                "reply": "550 5.7.1 Relaying denied",
                "rule": {"line": 4, "text": "*.*.*.* norelay"},
                "notes": [],
                "stage": "rcpt",
                "class": "external",
                "alias": None,
                "mailbox": "victim@relay-test.invalid",
                "reason": "relay-denied",
            },
            {
                "address": "bad@@x",
                "verdict": "reject",
                "reply": "501 5.1.3 Bad recipient address syntax",
                "rule": None,
                "notes": [
                    "unreadable path: more than one unquoted @: the address can be read two ways"
                ],
                "stage": "rcpt",
                "class": "invalid",
                "alias": None,
                "mailbox": None,
                "reason": "syntax",
            },
        ],
    }


CONTRACT_MAIL = {"verdict", "reply", "rule"}
CONTRACT_RCPT = {"address", "verdict", "reply", "rule", "notes"}


@pytest.mark.parametrize(
    ("effect", "mail_from"),
    [(HARDENED, "anyone@example.co.jp"), (HARDENED, ""), ("", "<>"), ("", "bad sender")],
)
def test_as_dict_keeps_every_contract_key_and_is_json(effect: str, mail_from: str) -> None:
    result = evaluate(make_policy(effect), mail_from, VICTIM, "x@example.co.jp")
    data = json.loads(json.dumps(result.as_dict()))

    assert set(data["mail"]) >= CONTRACT_MAIL
    assert data["mail"]["verdict"] in ("accept", "reject")
    assert data["mail"]["rule"] is None or set(data["mail"]["rule"]) == {"line", "text"}
    for rcpt in data["rcpt"]:
        assert set(rcpt) >= CONTRACT_RCPT
        assert rcpt["verdict"] in ("relay", "deliver", "reject")
        assert rcpt["rule"] is None or set(rcpt["rule"]) == {"line", "text"}
        assert all(isinstance(note, str) for note in rcpt["notes"])
    if data["mail"]["verdict"] == "reject":
        assert [rcpt["verdict"] for rcpt in data["rcpt"]] == ["reject", "reject"]


def test_as_dict_translates_notes() -> None:
    result = evaluate(make_policy(), "someone@outside.example", "victim@[192.0.2.1]")

    data = result.as_dict(lambda message: "[ja] " + message)

    assert data["rcpt"][0]["notes"] == [  # type: ignore[index]
        "[ja] the IP-literal domain [192.0.2.1] is never a managed local domain: "
        "treated as external"
    ]


def test_as_dict_translates_the_parser_reason_inside_a_note() -> None:
    result = evaluate(make_policy(), '<"user">')
    table = {
        "unreadable path: %(reason)s": "読めないパス: %(reason)s",
        "unqualified address: a domain is required (user@domain)": "ドメインがありません",
    }

    data = result.mail.as_dict(lambda message: table.get(message, message))

    assert (data["notes"], data["modifier"], data["class"]) == (
        ["読めないパス: ドメインがありません"],
        None,
        "invalid",
    )


# --- robustness and caching -------------------------------------------------------------------

ANY_TEXT = st.text(max_size=80) | st.sampled_from(
    ["<>", "", "<postmaster>", "a@example.co.jp", '"a@b"@example.co.jp', "<@x:a@b.c>"]
)


@settings(max_examples=400, deadline=None)
@given(
    client=st.text(max_size=40),
    mail_from=ANY_TEXT,
    rcpt=st.lists(ANY_TEXT, max_size=4),
    auth=st.booleans(),
)
def test_evaluation_never_raises(client: str, mail_from: str, rcpt: list[str], auth: bool) -> None:
    policy = POLICY_FOR_PROPERTIES
    result = evaluate_session(policy, Session(client, mail_from, tuple(rcpt), auth))

    data = json.loads(json.dumps(result.as_dict()))
    assert len(data["rcpt"]) == len(rcpt)
    assert [r["address"] for r in data["rcpt"]] == rcpt
    if result.mail.verdict == "reject":
        assert {r["verdict"] for r in data["rcpt"]} <= {"reject"}


POLICY_FOR_PROPERTIES = make_policy(
    HARDENED + "example.co.jp true\n*@x.example only\n",
    aliases=(BOSS, Alias("20*@example.co.jp", "x@y.jp"), WILDCARD, Alias("broken", "x")),
)


def test_repeated_evaluation_gives_equal_results() -> None:
    policy = make_policy()
    session = Session(OUTSIDE, "anyone@example.co.jp", (VICTIM, "a%b@example.co.jp"))

    assert evaluate_session(policy, session) == evaluate_session(policy, session)


# --- spec §3.1: where the vendor is silent, the reading under which more mail relays ------------


def note_codes(result: SessionResult) -> list[str]:
    return [note.code for note in result.mail.notes]


def test_sender_without_domain_is_accepted_and_matched_by_nodomain() -> None:
    policy = make_policy("#<> default\n#blank false\n#nodomain true\n*.*.*.* norelay\n")
    result = evaluate(policy, "<spamtest>", VICTIM)

    assert result.mail.verdict == "accept"
    assert result.mail.rule == RuleRef(3, "#nodomain true")
    assert result.mail.sender_class is AddressClass.EXTERNAL
    assert answers(result) == [(VICTIM, "relay", OK_RCPT)]
    assert "nodomain-sender" in note_codes(result)


def test_sender_without_domain_is_external_for_the_built_in_table() -> None:
    result = evaluate(make_policy(NO_TERMINATOR), "spamtest", VICTIM, f"boss@{DOMAIN}")

    assert answers(result) == [
        (VICTIM, "reject", RELAY_DENIED),
        (f"boss@{DOMAIN}", "deliver", OK_RCPT),
    ]


@pytest.mark.parametrize("rcpt", ["<someone>", "other.example!user"])
def test_recipient_without_domain_is_refused_as_unknown_local_user(rcpt: str) -> None:
    result = evaluate(make_policy(), "a@outside.example", rcpt)

    assert answers(result) == [(rcpt, "reject", USER_UNKNOWN)]
    assert result.rcpt[0].address_class is AddressClass.LOCAL_UNKNOWN


def test_postmaster_without_domain_is_delivered() -> None:
    result = evaluate(make_policy(), "a@outside.example", "<Postmaster>")

    assert answers(result) == [("<Postmaster>", "deliver", OK_RCPT)]


def test_partial_wildcard_star_matches_zero_characters() -> None:
    policy = make_policy(
        NO_TERMINATOR, aliases=(Alias(f"2009*@{DOMAIN}", f"2009*@inner.{DOMAIN}"),)
    )
    result = evaluate(policy, f"2009@{DOMAIN}", VICTIM)

    assert result.mail.sender_class is AddressClass.LOCAL_EXISTING
    assert answers(result) == [(VICTIM, "relay", OK_RCPT)]
    assert "empty-wildcard" in note_codes(result)


@pytest.mark.parametrize("auth", [False, True])
def test_authenticated_session_relays_whatever_the_sender_class(auth: bool) -> None:
    policy = make_policy(aliases=(BOSS,))
    result = evaluate(policy, f"nobody@{DOMAIN}", VICTIM, auth=auth, client=LAN)
    expected = (VICTIM, "relay", OK_RCPT) if auth else (VICTIM, "reject", RELAY_DENIED)

    assert answers(result) == [expected]


def test_quotes_that_are_not_needed_are_removed_before_matching() -> None:
    policy = make_policy(NO_TERMINATOR, aliases=(Alias(f"alice@{DOMAIN}", "alice@inner.jp"),))
    result = evaluate(policy, f'"alice"@{DOMAIN}', VICTIM)

    assert result.mail.sender_class is AddressClass.LOCAL_EXISTING
    assert answers(result) == [(VICTIM, "relay", OK_RCPT)]


@pytest.mark.parametrize("keyword", ["#host", "#number"])
@pytest.mark.parametrize("literal", ["[192.0.2.1]", "[IPv6:2001:db8::1]"])
def test_address_literal_is_matched_by_host_and_number(keyword: str, literal: str) -> None:
    policy = make_policy(f"#<> default\n#blank false\n{keyword} true\n*.*.*.* norelay\n")
    result = evaluate(policy, f"spam@{literal}", VICTIM)

    assert result.mail.rule == RuleRef(3, f"{keyword} true")
    assert answers(result) == [(VICTIM, "relay", OK_RCPT)]
    assert "literal-keyword" in note_codes(result)


def test_appended_false_lines_below_a_norelay_terminator_are_simulated_above_it() -> None:
    policy = make_policy(HARDENED + "198.51.100.7 false\n")
    result = evaluate(policy, "a@outside.example", VICTIM, client="198.51.100.7")

    assert result.mail.verdict == "reject"
    assert result.mail.rule == RuleRef(5, "198.51.100.7 false")
    assert "appended" in note_codes(result)
    assert evaluate(policy, "a@outside.example", VICTIM).mail.rule == RuleRef(4, "*.*.*.* norelay")


def test_a_tail_that_is_not_only_appended_lines_stays_below() -> None:
    policy = make_policy(HARDENED + "198.51.100.7 false\n198.51.100.8 true\n")
    result = evaluate(policy, "a@outside.example", VICTIM, client="198.51.100.7")

    assert result.mail.rule == RuleRef(4, "*.*.*.* norelay")


def test_client_addresses_are_compared_as_canonical_text() -> None:
    policy = make_policy("#<> default\n#blank false\n0* true\n*.*.*.* norelay\n")
    result = evaluate(policy, "a@outside.example", VICTIM, client="0:0:0:0:0:0:0:1")

    assert result.mail.rule == RuleRef(4, "*.*.*.* norelay")
    assert "client-text" in note_codes(result)
    assert evaluate(policy, "a@x.example", VICTIM, client="0:1::5").mail.rule == RuleRef(
        3, "0* true"
    )
