import ipaddress
import re
import string
from typing import Literal, NamedTuple

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from controlcenter import smtppath
from controlcenter.smtppath import Mailbox, ParsedPath, PathError, PathKind, parse_path

MAIL = "501 5.1.7 Bad sender address syntax"
RCPT = "501 5.1.3 Bad recipient address syntax"
ALNUM = string.ascii_letters + string.digits
SPECIALS = "!#$%&'*+-/=?^_`{|}~"
ATEXT = ALNUM + SPECIALS

LOCAL_64 = "u" * 64
DOMAIN_189 = "a" * 63 + "." + "b" * 63 + "." + "c" * 61  # <64@189> is exactly 256 octets


class Seen(NamedTuple):
    """What a caller reads from a parsed mailbox path."""

    local: str
    domain: str
    routing: tuple[str, ...] = ()
    quoted: bool = False
    route: tuple[str, ...] = ()


def mailbox_of(text: str, role: Literal["mail", "rcpt"] = "rcpt") -> Mailbox:
    mailbox = parse_path(text, role=role).mailbox
    assert mailbox is not None
    return mailbox


def seen(path: ParsedPath) -> Seen:
    assert path.kind is PathKind.MAILBOX
    assert path.mailbox is not None
    box = path.mailbox
    return Seen(box.local_part, box.domain, box.routing_chars, box.quoted, path.source_route)


@pytest.mark.parametrize("role", ["mail", "rcpt"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # forged local senders parse fine: the relay policy decides, not the syntax
        ("<anyone@domain.jp>", Seen("anyone", "domain.jp")),
        ("<postmaster@domain.jp>", Seen("postmaster", "domain.jp")),
        # brackets optional, spaces and tabs around stripped
        ("user@domain.jp", Seen("user", "domain.jp")),
        (" \t<user@domain.jp>  ", Seen("user", "domain.jp")),
        # percent hack
        ("<user%other.example@domain.jp>", Seen("user%other.example", "domain.jp", ("%",))),
        # quoted local parts hiding routing characters
        ('<"user@other.example"@domain.jp>', Seen("user@other.example", "domain.jp", ("@",), True)),
        ('<"user%other.example"@domain.jp>', Seen("user%other.example", "domain.jp", ("%",), True)),
        ('<"other.example!user"@domain.jp>', Seen("other.example!user", "domain.jp", ("!",), True)),
        ('<"@relay.example:u@x.example"@domain.jp>',
         Seen("@relay.example:u@x.example", "domain.jp", ("@", ":"), True)),
        ('<"<u@x.example>"@domain.jp>', Seen("<u@x.example>", "domain.jp", ("@", "<", ">"), True)),
        ('<"a,b"@domain.jp>', Seen("a,b", "domain.jp", (",",), True)),
        ('<"a\\"b"@domain.jp>', Seen('a"b', "domain.jp", ('"',), True)),
        ('<"a\\\\b"@domain.jp>', Seen("a\\b", "domain.jp", ("\\",), True)),
        ('<"a\\b"@domain.jp>', Seen("ab", "domain.jp", (), True)),
        ('<"john doe"@domain.jp>', Seen("john doe", "domain.jp", (), True)),
        ('<"user"@domain.jp>', Seen("user", "domain.jp", (), True)),
        # source routes: reported, the final mailbox decides
        ("<@a.example,@b.example:user@c.example>",
         Seen("user", "c.example", route=("a.example", "b.example"))),
        ("<@Relay.Example.:user@x.example>", Seen("user", "x.example", route=("relay.example",))),
        ("@domain.jp:user@x.example", Seen("user", "x.example", route=("domain.jp",))),
        ('<@domain.jp:"user@x.example"@domain.jp>',
         Seen("user@x.example", "domain.jp", ("@",), True, ("domain.jp",))),
        # bang paths
        ("<other.example!user@domain.jp>", Seen("other.example!user", "domain.jp", ("!",))),
        ("<a.example!u%b.example@domain.jp>",
         Seen("a.example!u%b.example", "domain.jp", ("%", "!"))),
        # IP literals, both families, normalised
        ("<user@[192.0.2.1]>", Seen("user", "[192.0.2.1]")),
        ("<user@[127.0.0.1]>", Seen("user", "[127.0.0.1]")),
        ("<user@[IPv6:2001:db8::1]>", Seen("user", "[IPv6:2001:db8::1]")),
        ("<user@[ipv6:2001:DB8:0:0:0:0:0:1]>", Seen("user", "[IPv6:2001:db8::1]")),
        ("<user@[IPv6:::1]>", Seen("user", "[IPv6:::1]")),
        ("<user@[IPv6:::FFFF:192.0.2.1]>", Seen("user", "[IPv6:::ffff:192.0.2.1]")),
        ("<user@[IPv6:::ffff:c000:201]>", Seen("user", "[IPv6:::ffff:192.0.2.1]")),
        # case and one trailing dot
        ("<User@Domain.JP.>", Seen("User", "domain.jp")),
        ("<USER@DOMAIN.JP>", Seen("USER", "domain.jp")),
        # look-alike domains and subdomains stay what they are
        ("<user@notdomain.jp>", Seen("user", "notdomain.jp")),
        ("<user@domain.jp.evil.example>", Seen("user", "domain.jp.evil.example")),
        ("<user@sub.domain.jp>", Seen("user", "sub.domain.jp")),
        ("<user@domain-jp.example>", Seen("user", "domain-jp.example")),
        ("<user@xn--dmain-jua.jp>", Seen("user", "xn--dmain-jua.jp")),
        # names effect.dat classifies itself (#number, #host) are plain domains here
        ("<user@192.0.2.1>", Seen("user", "192.0.2.1")),
        ("<user@localhost>", Seen("user", "localhost")),
        # every atext character, dots, and the limits themselves
        ("<" + SPECIALS + "@domain.jp>", Seen(SPECIALS, "domain.jp", ("%", "!"))),
        ("<" + ALNUM + "@domain.jp>", Seen(ALNUM, "domain.jp")),
        ("<a.b.c@domain.jp>", Seen("a.b.c", "domain.jp")),
        (f"<{LOCAL_64}@{DOMAIN_189}>", Seen(LOCAL_64, DOMAIN_189)),
        (f"<user@{'l' * 63}.jp>", Seen("user", "l" * 63 + ".jp")),
    ],
)  # fmt: skip
def test_parse_path_reads_mailbox(text, role, expected):
    path = parse_path(text, role=role)

    assert seen(path) == expected
    assert path.original == text


@pytest.mark.parametrize("text", ["<Postmaster>", "postmaster", " <POSTMASTER> "])
def test_parse_path_accepts_bare_postmaster_as_recipient(text):
    assert parse_path(text, role="rcpt") == ParsedPath(
        PathKind.MAILBOX, Mailbox("postmaster", ""), original=text
    )


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("<User@Domain.JP.>", "User@domain.jp"),
        ('<"user"@domain.jp>', "user@domain.jp"),
        ('<"user@other.example"@domain.jp>', '"user@other.example"@domain.jp'),
        ('<"john doe"@domain.jp>', '"john doe"@domain.jp'),
        ('<"a\\"b\\\\c"@domain.jp>', '"a\\"b\\\\c"@domain.jp'),
        ('<"a..b"@domain.jp>', '"a..b"@domain.jp'),
        ('<".a"@domain.jp>', '".a"@domain.jp'),
        ("<user%other.example@domain.jp>", "user%other.example@domain.jp"),
        ("<@a.example:user@[IPv6:2001:DB8::1]>", "user@[IPv6:2001:db8::1]"),
        ("<postmaster>", "postmaster"),
    ],
)
def test_address_requotes_the_local_part_only_when_needed(text, address):
    assert mailbox_of(text).address == address


@pytest.mark.parametrize(
    ("text", "is_ip_literal"),
    [
        ("<user@[192.0.2.1]>", True),
        ("<user@[IPv6:2001:db8::1]>", True),
        ("<user@192.0.2.1>", False),
        ("<user@domain.jp>", False),
        ("<postmaster>", False),
    ],
)
def test_is_ip_literal_only_for_bracketed_domains(text, is_ip_literal):
    assert mailbox_of(text).is_ip_literal is is_ip_literal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<>", ParsedPath(PathKind.NULL, original="<>")),
        (" <> ", ParsedPath(PathKind.NULL, original=" <> ")),
        ("", ParsedPath(PathKind.EMPTY, original="")),
        (" \t ", ParsedPath(PathKind.EMPTY, original=" \t ")),
    ],
)
def test_parse_path_reads_null_and_empty_senders(text, expected):
    assert parse_path(text, role="mail") == expected


BAD_PATHS = [
    # null, empty and unqualified
    ("<>", "rcpt", smtppath.NULL_RCPT),
    ("", "rcpt", smtppath.EMPTY_RCPT),
    ("  ", "rcpt", smtppath.EMPTY_RCPT),
    ("<user>", "mail", smtppath.UNQUALIFIED),
    ("user", "rcpt", smtppath.UNQUALIFIED),
    ("<postmaster>", "mail", smtppath.UNQUALIFIED),
    ("<@relay.example:postmaster>", "rcpt", smtppath.UNQUALIFIED),
    ('<"postmaster">', "rcpt", smtppath.UNQUALIFIED),
    ('<"user@other.example">', "rcpt", smtppath.UNQUALIFIED),
    ("<user%other.example>", "rcpt", smtppath.UNQUALIFIED),
    ("other.example!user", "rcpt", smtppath.UNQUALIFIED_BANG),
    ("<a.example!b.example!user>", "mail", smtppath.UNQUALIFIED_BANG),
    # double @: no reading is picked
    ("user@other.example@domain.jp", "rcpt", smtppath.DOUBLE_AT),
    ("<user@other.example@domain.jp>", "mail", smtppath.DOUBLE_AT),
    ('<"user"@other.example@domain.jp>', "rcpt", smtppath.DOUBLE_AT),
    ("<user@@domain.jp>", "rcpt", smtppath.DOUBLE_AT),
    ("<user@[192.0.2.1]@domain.jp>", "rcpt", smtppath.DOUBLE_AT),
    # brackets
    ("<user@domain.jp", "rcpt", smtppath.UNBALANCED),
    ("user@domain.jp>", "rcpt", smtppath.UNBALANCED),
    ("<<user@domain.jp>>", "rcpt", smtppath.UNBALANCED),
    ("<user@domain.jp>>", "rcpt", smtppath.UNBALANCED),
    ("<user<@domain.jp>", "rcpt", smtppath.UNBALANCED),
    ("user>@domain.jp", "rcpt", smtppath.UNBALANCED),
    (">user@domain.jp<", "rcpt", smtppath.UNBALANCED),
    ("<user@domain.jp> SIZE=100", "mail", smtppath.TRAILING_TEXT),
    ("<user@domain.jp>user@other.example", "rcpt", smtppath.TRAILING_TEXT),
    # spaces inside
    ("<user @domain.jp>", "rcpt", smtppath.SPACE),
    ("<user@ domain.jp>", "rcpt", smtppath.SPACE),
    ("<user@domain .jp>", "rcpt", smtppath.SPACE),
    ("<john doe@domain.jp>", "rcpt", smtppath.SPACE),
    ("< user@domain.jp>", "rcpt", smtppath.SPACE),
    ("< >", "mail", smtppath.SPACE),
    # local part
    ("<@domain.jp>", "rcpt", smtppath.EMPTY_LOCAL),
    ("@domain.jp", "mail", smtppath.EMPTY_LOCAL),
    ('<""@domain.jp>', "rcpt", smtppath.EMPTY_LOCAL),
    (".user@domain.jp", "rcpt", smtppath.BAD_DOTS),
    ("user.@domain.jp", "rcpt", smtppath.BAD_DOTS),
    ("us..er@domain.jp", "rcpt", smtppath.BAD_DOTS),
    ('us"er@domain.jp', "rcpt", smtppath.BAD_LOCAL_CHAR),
    ("user(comment)@domain.jp", "rcpt", smtppath.BAD_LOCAL_CHAR),
    ("us\\er@domain.jp", "rcpt", smtppath.BAD_LOCAL_CHAR),
    ("a,b@domain.jp", "rcpt", smtppath.BAD_LOCAL_CHAR),
    ("a:b@domain.jp", "rcpt", smtppath.BAD_LOCAL_CHAR),
    ("a[b]@domain.jp", "rcpt", smtppath.BAD_LOCAL_CHAR),
    ('<"user@domain.jp>', "rcpt", smtppath.UNTERMINATED_QUOTE),
    ('"user\\"@domain.jp', "rcpt", smtppath.UNTERMINATED_QUOTE),
    ('"user\\', "rcpt", smtppath.UNTERMINATED_QUOTE),
    ('<"user"x@domain.jp>', "rcpt", smtppath.AFTER_QUOTE),
    ('<"a"."b"@domain.jp>', "rcpt", smtppath.AFTER_QUOTE),
    # domain
    ("<user@>", "rcpt", smtppath.EMPTY_DOMAIN),
    ("<user@.>", "rcpt", smtppath.EMPTY_LABEL),
    ("<user@.domain.jp>", "rcpt", smtppath.EMPTY_LABEL),
    ("<user@domain..jp>", "rcpt", smtppath.EMPTY_LABEL),
    ("<user@domain.jp..>", "rcpt", smtppath.EMPTY_LABEL),
    ("<user@-domain.jp>", "rcpt", smtppath.BAD_LABEL),
    ("<user@domain-.jp>", "rcpt", smtppath.BAD_LABEL),
    ("<user@do_main.jp>", "rcpt", smtppath.BAD_LABEL),
    ("<user@domain.jp:25>", "rcpt", smtppath.BAD_LABEL),
    ("<user@*.domain.jp>", "rcpt", smtppath.BAD_LABEL),
    # source routes
    ("<@a.example,@b.example>", "rcpt", smtppath.EMPTY_LOCAL),
    ("<@a.example:>", "rcpt", smtppath.BAD_ROUTE),
    ("<@a.example,b.example:user@c.example>", "rcpt", smtppath.BAD_ROUTE),
    ("<@a.example, @b.example:user@c.example>", "rcpt", smtppath.BAD_ROUTE),
    ("<@:user@c.example>", "rcpt", smtppath.BAD_ROUTE),
    ("<@[192.0.2.1]:user@c.example>", "rcpt", smtppath.BAD_ROUTE),
    ("<@a..example:user@c.example>", "rcpt", smtppath.BAD_ROUTE),
    # address literals
    ("<user@[192.0.2.256]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[192.0.2]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[010.0.0.1]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[ 192.0.2.1]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[192.0.2.1>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[192.0.2.1].>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[192.0.2.1]]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[IPv6:2001:db8::g]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[IPv6:fe80::1%eth0]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[IPv6:192.0.2.1]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[IPv6:1:2:3:4:5:6:7:8:9]>", "rcpt", smtppath.BAD_LITERAL),
    ("<user@[2001:db8::1]>", "rcpt", smtppath.GENERAL_LITERAL),
    ("<user@[x400:c=jp]>", "rcpt", smtppath.GENERAL_LITERAL),
    # lengths
    (f"<{'u' * 65}@domain.jp>", "rcpt", smtppath.LOCAL_TOO_LONG),
    (f'<"{"u" * 63}"@domain.jp>', "rcpt", smtppath.LOCAL_TOO_LONG),
    (f"<user@{'l' * 64}.jp>", "rcpt", smtppath.LABEL_TOO_LONG),
    (f"<{LOCAL_64}@{DOMAIN_189}c>", "rcpt", smtppath.PATH_TOO_LONG),
    (f"{LOCAL_64}@{DOMAIN_189}c", "rcpt", smtppath.PATH_TOO_LONG),
    # SMTPUTF8 is not offered
    ("<ユーザー@domain.jp>", "rcpt", smtppath.NON_ASCII),
    ("<user@dömain.jp>", "mail", smtppath.NON_ASCII),
    ("<\uff55ser@domain.jp>", "rcpt", smtppath.NON_ASCII),  # full-width u
    ("\u00a0<user@domain.jp>", "rcpt", smtppath.NON_ASCII),
    # control characters, including a line ending left on the command
    ("<user@domain.jp>\r\n", "mail", smtppath.CONTROL_CHAR),
    ("<us\x00er@domain.jp>", "rcpt", smtppath.CONTROL_CHAR),
    ("<user@domain.jp\n>", "rcpt", smtppath.CONTROL_CHAR),
    ('<"a\tb"@domain.jp>', "rcpt", smtppath.CONTROL_CHAR),
    ('<"a\x7fb"@domain.jp>', "rcpt", smtppath.CONTROL_CHAR),
]


@pytest.mark.parametrize(("text", "role", "reason"), BAD_PATHS)
def test_parse_path_refuses_with_reason_and_reply(text, role, reason):
    with pytest.raises(PathError) as caught:
        parse_path(text, role=role)

    assert (caught.value.reason, caught.value.reply) == (reason, MAIL if role == "mail" else RCPT)
    assert str(caught.value) == reason


@pytest.mark.parametrize(("role", "reply"), [("mail", MAIL), ("rcpt", RCPT)])
def test_reply_names_the_command(role, reply):
    with pytest.raises(PathError) as caught:
        parse_path("user@other.example@domain.jp", role=role)

    assert caught.value.reply == reply


def test_path_error_is_a_value_error():
    assert issubclass(PathError, ValueError)


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (smtppath.UNQUALIFIED, "unqualified address: a domain is required (user@domain)"),
        (smtppath.UNQUALIFIED_BANG, "unqualified bang path (host!user): a domain is required"),
        (smtppath.DOUBLE_AT, "more than one unquoted @: the address can be read two ways"),
        (
            smtppath.NON_ASCII,
            "non-ASCII address: it needs SMTPUTF8, which the gateway does not offer",
        ),
    ],
)
def test_reason_wording_is_plain_english(reason, text):
    assert reason == text


REASONS = [
    smtppath.NON_ASCII,
    smtppath.CONTROL_CHAR,
    smtppath.PATH_TOO_LONG,
    smtppath.LOCAL_TOO_LONG,
    smtppath.LABEL_TOO_LONG,
    smtppath.UNBALANCED,
    smtppath.TRAILING_TEXT,
    smtppath.NULL_RCPT,
    smtppath.EMPTY_RCPT,
    smtppath.SPACE,
    smtppath.UNQUALIFIED,
    smtppath.UNQUALIFIED_BANG,
    smtppath.DOUBLE_AT,
    smtppath.EMPTY_LOCAL,
    smtppath.BAD_DOTS,
    smtppath.BAD_LOCAL_CHAR,
    smtppath.UNTERMINATED_QUOTE,
    smtppath.AFTER_QUOTE,
    smtppath.EMPTY_DOMAIN,
    smtppath.EMPTY_LABEL,
    smtppath.BAD_LABEL,
    smtppath.BAD_LITERAL,
    smtppath.GENERAL_LITERAL,
    smtppath.BAD_ROUTE,
]


def test_every_reason_is_distinct_and_exercised():
    assert len(set(REASONS)) == len(REASONS)
    assert {reason for _, _, reason in BAD_PATHS} == set(REASONS)


def test_quoting_is_spelling_not_identity():
    quoted = mailbox_of('"user"@domain.jp')
    plain = mailbox_of("user@domain.jp")

    assert quoted == plain == Mailbox("user", "domain.jp")
    assert hash(quoted) == hash(plain)
    assert (quoted.quoted, plain.quoted) == (True, False)


# --- round trip --------------------------------------------------------------------------

_DOT_STRING = re.compile(r"[%s]+(?:\.[%s]+)*" % ((re.escape(ATEXT),) * 2))

atoms = st.text(alphabet=ATEXT, min_size=1, max_size=12)
dot_strings = st.lists(atoms, min_size=1, max_size=4).map(".".join)
printable = st.characters(min_codepoint=32, max_codepoint=126)
quoted_contents = st.text(alphabet=printable, min_size=1, max_size=40)
labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
names = st.lists(labels, min_size=1, max_size=5).map(".".join)


def _ipv6_literal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return f"[IPv6:::ffff:{address.ipv4_mapped}]"
    return f"[IPv6:{address.compressed}]"


ip_literals = st.one_of(
    st.ip_addresses(v=4).map(lambda address: f"[{address}]"),
    st.ip_addresses(v=6).map(_ipv6_literal),
)


@st.composite
def mailboxes(draw: st.DrawFn) -> Mailbox:
    local = draw(st.one_of(dot_strings, quoted_contents))
    domain = draw(st.one_of(names, ip_literals))
    return Mailbox(local, domain, quoted=not _DOT_STRING.fullmatch(local))


@given(mailboxes(), st.sampled_from(["mail", "rcpt"]), st.booleans())
def test_parse_path_round_trips_mailbox_address(mailbox, role, bracketed):
    address = mailbox.address
    assume(len(address.rpartition("@")[0]) <= 64 and len(address) + 2 <= 256)
    text = f"<{address}>" if bracketed else address

    parsed = mailbox_of(text, role)

    assert parsed == mailbox
    assert (parsed.quoted, parsed.address) == (mailbox.quoted, address)


@given(dot_strings, names, st.booleans())
def test_parse_path_ignores_domain_case_and_one_trailing_dot(local, domain, trailing_dot):
    assume(len(local) <= 64 and len(local) + len(domain) + 4 <= 256)
    text = f"<{local}@{domain.upper()}{'.' if trailing_dot else ''}>"

    assert mailbox_of(text) == Mailbox(local, domain)


path_texts = st.text(alphabet=st.sampled_from('<>@"\\.:,[]%! aZ09-\t\x00é'), max_size=30)


@given(path_texts, st.sampled_from(["mail", "rcpt"]))
def test_parse_path_refuses_only_with_path_error_and_accepts_only_fixed_points(text, role):
    refused: PathError | None = None
    try:
        mailbox = parse_path(text, role=role).mailbox
    except PathError as exc:
        refused, mailbox = exc, None

    if refused is not None:
        assert refused.reply == (MAIL if role == "mail" else RCPT)
    elif mailbox is not None:
        assert mailbox_of(mailbox.address, role) == mailbox


# --- the fast path for plain mailboxes reads exactly as the full grammar ---------------------


def outcome(parse, text: str, role: Literal["mail", "rcpt"], unqualified: bool) -> object:
    """Everything a caller can see of a parse: the path with ``quoted``, or the refusal."""
    try:
        path = parse(text, role=role, unqualified=unqualified)
    except PathError as exc:
        return ("refused", exc.reason, exc.reply)
    mailbox = path.mailbox
    return (repr(path), mailbox.quoted if mailbox else None)


fast_path_texts = st.one_of(
    path_texts,
    st.text(alphabet=st.sampled_from(ATEXT + '.@<> \t"[]\\:,é\x7f'), max_size=40),
    st.builds(
        lambda local, domain, left, right: f"{left}{local}@{domain}{right}",
        st.one_of(dot_strings, st.text(alphabet=ATEXT + ".", min_size=1, max_size=70)),
        st.one_of(names, st.text(alphabet=ALNUM + ".-", min_size=1, max_size=70)),
        st.sampled_from(["", "<", " <", "\t", "< ", "<<", "@a.jp:"]),
        st.sampled_from(["", ">", "> ", " ", ">>", "\t", " >", "."]),
    ),
)


@given(fast_path_texts, st.sampled_from(["mail", "rcpt"]), st.booleans())
def test_parse_path_answers_as_the_full_grammar(text, role, unqualified):
    assert outcome(parse_path, text, role, unqualified) == outcome(
        smtppath.parse_path_strict, text, role, unqualified
    )


@pytest.mark.parametrize(
    "text",
    [
        f"<{LOCAL_64}@{DOMAIN_189}>",  # exactly 256 octets
        f"<{LOCAL_64}@{DOMAIN_189}a>",  # 257
        f"{LOCAL_64}x@a.jp",
        f"u@{'a' * 63}.jp",
        f"u@{'a' * 64}.jp",
        "u@a-.jp",
        "u@-a.jp",
        "u@a.jp.",
        "u@a..jp",
        "postmaster@a.jp",
        "<u@a.jp",
        "u@a.jp>",
        " <u@a.jp>\t",
        "< u@a.jp>",
        "u.@a.jp",
        ".u@a.jp",
        "u..v@a.jp",
        "U%x.example!y@A.JP",
        "u@a@b.jp",
        "u@[192.0.2.1]",
        "u@192.0.2.1",
        "u@a_b.jp",
        "u@a.jp\x00",
        "ü@a.jp",
    ],
)
@pytest.mark.parametrize("role", ["mail", "rcpt"])
def test_parse_path_answers_as_the_full_grammar_at_the_edges(text, role):
    for unqualified in (False, True):
        assert outcome(parse_path, text, role, unqualified) == outcome(
            smtppath.parse_path_strict, text, role, unqualified
        )


def _original_is_dot_string(local: str) -> bool:
    return all(atom and set(atom) <= set(ATEXT) for atom in local.split("."))


@given(st.text(alphabet=st.sampled_from(ATEXT + '.@ "\\é'), max_size=20))
def test_dot_string_test_is_the_original_one(local):
    assert smtppath._is_dot_string(local) == _original_is_dot_string(local)


@given(st.text(alphabet=st.sampled_from(ATEXT + '.@ "\\<>:,é'), max_size=20))
def test_routing_chars_are_those_present_in_reporting_order(local):
    expected = tuple(char for char in smtppath.ROUTING_CHARS if char in local)
    assert Mailbox(local, "d.jp").routing_chars == expected
