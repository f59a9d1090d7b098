import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlcenter.findings import Level
from relaypolicy.effectfile import (
    DEFAULT_HEADER,
    TERMINATOR_MODIFIERS,
    EffectFile,
    EffectLine,
    LineKind,
    Modifier,
    PatternKind,
    classify_pattern,
    decode_effect,
    effective_modifier,
    format_comment,
    format_rule,
    parse_effect,
    parse_line,
    parse_modifier,
    render_effect,
    render_lines,
)

DATA = Path(__file__).parent / "data"


def dump(effect: EffectFile) -> str:
    """One tab-separated row per line; strings JSON-quoted so whitespace is visible."""
    rows = [f"newline={json.dumps(effect.newline)} final_newline={effect.final_newline}"]
    for line in effect.lines:
        modifier = "?" if line.modifier is None else json.dumps(line.modifier.value)
        fields = [
            str(line.number),
            line.kind.value,
            line.pattern_kind.value,
            json.dumps(line.pattern),
            json.dumps(line.separator),
            json.dumps(line.modifier_text),
            modifier,
            json.dumps(line.effective.value),
            json.dumps(line.text, ensure_ascii=False),
        ]
        rows.append("\t".join(fields))
    return "\n".join(rows) + "\n"


# --- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "decode_findings"),
    [
        ("hardened", []),
        ("crlf", []),
        ("comments", [("relay.W019", Level.WARNING, 6)]),
        ("odd", []),
    ],
)
def test_golden_file_parses_to_expected_dump_and_renders_same_bytes(name, decode_findings):
    data = (DATA / f"{name}.dat").read_bytes()
    text, findings = decode_effect(data)
    effect = parse_effect(text)

    assert dump(effect) == (DATA / f"{name}.txt").read_text(encoding="utf-8")
    assert render_effect(effect).encode("cp932") == data
    assert [(f.code, f.level, f.line) for f in findings] == decode_findings


def test_golden_cp932_comment_is_decoded_to_japanese():
    text, _findings = decode_effect((DATA / "comments.dat").read_bytes())

    assert parse_effect(text).lines[5].text == "' 社内LAN (office)"


# --- parse and render ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "newline", "final_newline", "texts"),
    [
        ("", "\n", False, []),
        ("\n", "\n", True, [""]),
        ("\r\n", "\r\n", True, [""]),
        ("a", "\n", False, ["a"]),
        ("a\nb\n", "\n", True, ["a", "b"]),
        ("a\r\nb\r\n", "\r\n", True, ["a", "b"]),
        ("a\r\nb\r", "\r\n", False, ["a", "b\r"]),
        ("a\rb\n", "\n", True, ["a\rb"]),
        ("x\nb\r\n", "\n", True, ["x", "b\r"]),
    ],
)
def test_parse_splits_lines_and_detects_line_ending(text, newline, final_newline, texts):
    effect = parse_effect(text)

    assert (effect.newline, effect.final_newline) == (newline, final_newline)
    assert [line.text for line in effect.lines] == texts
    assert [line.number for line in effect.lines] == list(range(1, len(texts) + 1))
    assert render_effect(effect) == text


def test_render_rewrites_bare_lf_in_a_crlf_file_with_crlf():
    assert render_effect(parse_effect("a\r\nb\nc\r\n")) == "a\r\nb\r\nc\r\n"


def test_rules_lists_rule_lines_only():
    effect = parse_effect("' c\n#<> default\n\ngarbage!\n10.0.0.1\n")

    assert [line.number for line in effect.rules] == [2, 5]


_LINE_TEXT = st.text(alphabet=" \t'\"#*.@/:,<>-_0123456789abcfnorelyTRUE\u3042", max_size=24)


@settings(max_examples=300)
@given(
    texts=st.lists(_LINE_TEXT, max_size=12),
    newline=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)
def test_render_of_parse_reproduces_any_text(texts, newline, final_newline):
    text = newline.join(texts) + (newline if final_newline and texts else "")

    assert render_effect(parse_effect(text)) == text


# --- lines ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", EffectLine(1, "", LineKind.BLANK)),
        ("\t \r", EffectLine(1, "\t \r", LineKind.BLANK)),
        ("' note", EffectLine(1, "' note", LineKind.COMMENT)),
        (" 10.0.0.1 true", EffectLine(1, " 10.0.0.1 true", LineKind.COMMENT)),
        (
            "192.168.1.0/24 default",
            EffectLine(
                1, "192.168.1.0/24 default", LineKind.RULE, "192.168.1.0/24", "default", " ",
                PatternKind.CIDR,
            ),
        ),
        (
            "10.0.0.1",
            EffectLine(1, "10.0.0.1", LineKind.RULE, "10.0.0.1", "", "", PatternKind.IPV4),
        ),
        (
            "10.0.0.1 \t",
            EffectLine(1, "10.0.0.1 \t", LineKind.RULE, "10.0.0.1", "", "", PatternKind.IPV4),
        ),
        (
            "10.0.0.1\t norelay,2  ",
            EffectLine(
                1, "10.0.0.1\t norelay,2  ", LineKind.RULE, "10.0.0.1", "norelay,2", "\t ",
                PatternKind.IPV4,
            ),
        ),
        (
            "#<> no relay",
            EffectLine(
                1, "#<> no relay", LineKind.RULE, "#<>", "no relay", " ", PatternKind.NULL_SENDER
            ),
        ),
        (
            "\tfoo",
            EffectLine(1, "\tfoo", LineKind.UNPARSABLE, "", "foo", "\t", PatternKind.INVALID),
        ),
        (
            "1.2.3 false",
            EffectLine(1, "1.2.3 false", LineKind.UNPARSABLE, "1.2.3", "false", " ",
                       PatternKind.INVALID),
        ),
    ],
)  # fmt: skip
def test_parse_line_fields(text, expected):
    assert parse_line(text) == expected


@pytest.mark.parametrize(
    ("text", "modifier"),
    [
        ("", Modifier.BARE),
        ("true", Modifier.TRUE),
        ("TRUE", Modifier.TRUE),
        ("False", Modifier.FALSE),
        ("default", Modifier.DEFAULT),
        ("NoRelay", Modifier.NORELAY),
        ("norelay,0", Modifier.NORELAY_0),
        ("norelay,1", Modifier.NORELAY_1),
        ("NORELAY,2", Modifier.NORELAY_2),
        ("only", Modifier.ONLY),
        ("norelay, 2", None),
        ("norelay,3", None),
        (" true", None),
        ("norealy", None),
        ("ｔｒｕｅ", None),
    ],
)
def test_parse_modifier(text, modifier):
    assert parse_modifier(text) is modifier


@pytest.mark.parametrize(
    ("text", "modifier", "effective"),
    [
        ("10.0.0.1", Modifier.BARE, Modifier.TRUE),
        ("10.0.0.1 true", Modifier.TRUE, Modifier.TRUE),
        ("10.0.0.1 false", Modifier.FALSE, Modifier.FALSE),
        ("10.0.0.1 Default", Modifier.DEFAULT, Modifier.DEFAULT),
        ("*.*.*.* NORELAY", Modifier.NORELAY, Modifier.NORELAY),
        ("*.*.*.* norelay,0", Modifier.NORELAY_0, Modifier.NORELAY_0),
        ("*.*.*.* norelay,1", Modifier.NORELAY_1, Modifier.NORELAY),
        ("*.*.*.* norelay,2", Modifier.NORELAY_2, Modifier.NORELAY_2),
        ("10.0.0.1 only", Modifier.ONLY, Modifier.ONLY),
        ("*.*.*.* norelay  ", Modifier.NORELAY, Modifier.NORELAY),
        ("*.*.*.*  norelay", Modifier.NORELAY, Modifier.DEFAULT),
        ("*.*.*.*\tnorelay", Modifier.NORELAY, Modifier.DEFAULT),
        ("*.*.*.* norealy", None, Modifier.DEFAULT),
        ("' *.*.*.* true", None, Modifier.DEFAULT),
        ("", None, Modifier.DEFAULT),
        ("1.2.3 true", Modifier.TRUE, Modifier.DEFAULT),
    ],
)
def test_modifier_as_written_and_effective(text, modifier, effective):
    line = parse_line(text)

    assert line.modifier is modifier
    assert line.effective is effective
    assert effective_modifier(line) is effective


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [
        ("*", PatternKind.CATCH_ALL),
        ("*.*.*.*", PatternKind.CATCH_ALL),
        ("*.*", PatternKind.IPV4_WILDCARD),
        ("10.*.*.*", PatternKind.IPV4_WILDCARD),
        ("10.*", PatternKind.IPV4_WILDCARD),
        ("192.168.1.*", PatternKind.IPV4_WILDCARD),
        ("192.168.1*", PatternKind.IPV4_WILDCARD),
        ("192.168.*.5", PatternKind.IPV4_WILDCARD),
        ("192.168.*.", PatternKind.INVALID),
        ("192.168.300*", PatternKind.INVALID),
        ("010.*", PatternKind.INVALID),
        ("1.2.3.4.*", PatternKind.INVALID),
        ("10.*/8", PatternKind.INVALID),
        ("192.168.1.0/28", PatternKind.CIDR),
        ("192.168.1.5/24", PatternKind.CIDR),
        ("0.0.0.0/0", PatternKind.CIDR),
        ("192.168.1.0/33", PatternKind.INVALID),
        ("192.168.1.0/", PatternKind.INVALID),
        ("192.168.1.0/08", PatternKind.INVALID),
        ("010.0.0.0/8", PatternKind.INVALID),
        ("192.168.0.100", PatternKind.IPV4),
        ("192.168.0.256", PatternKind.INVALID),
        ("192.168.0", PatternKind.INVALID),
        ("192.168.00.1", PatternKind.INVALID),
        ("2001:db8::1", PatternKind.IPV6),
        ("2001:DB8::/32", PatternKind.IPV6),
        ("::/0", PatternKind.IPV6),
        ("fe80::1%eth0", PatternKind.INVALID),
        ("2001:db8::/129", PatternKind.INVALID),
        ("2001:db8:::1", PatternKind.INVALID),
        ("abc.co.jp", PatternKind.SENDER_DOMAIN),
        ("*.abc.co.jp", PatternKind.SENDER_DOMAIN),
        ("ABC.Example", PatternKind.SENDER_DOMAIN),
        ("abc*.co.jp", PatternKind.INVALID),
        ("localhost", PatternKind.INVALID),
        ("abc@abc.co.jp", PatternKind.SENDER_ADDRESS),
        ("*@abc.co.jp", PatternKind.SENDER_ADDRESS),
        ("*spam*@abc.co.jp", PatternKind.SENDER_ADDRESS),
        ("*a*b*@abc.co.jp", PatternKind.INVALID),
        ("a@b@abc.co.jp", PatternKind.INVALID),
        ("#<>", PatternKind.NULL_SENDER),
        ("#blank", PatternKind.BLANK_SENDER),
        ("#number", PatternKind.KEYWORD),
        ("#nodomain", PatternKind.KEYWORD),
        ("#host", PatternKind.KEYWORD),
        ("#BLANK", PatternKind.INVALID),
        ("#", PatternKind.INVALID),
        ("", PatternKind.INVALID),
        ("garbage!", PatternKind.INVALID),
    ],
)
def test_classify_pattern(pattern, kind):
    assert classify_pattern(pattern) is kind


@pytest.mark.parametrize(
    ("text", "is_catch_all", "every_client", "prefix"),
    [
        ("*.*.*.* norelay", True, True, ""),
        ("* false", True, True, ""),
        ("*.5 norelay", False, True, ""),
        ("192.168.1* true", False, False, "192.168.1"),
        ("192.168.*.5", False, False, "192.168."),
        ("0.0.0.0/0 norelay", False, False, None),
        ("' *.*.*.* norelay", False, False, None),
    ],
)
def test_catch_all_and_wildcard_prefix(text, is_catch_all, every_client, prefix):
    line = parse_line(text)

    assert (line.is_catch_all, line.matches_every_client, line.wildcard_prefix) == (
        is_catch_all,
        every_client,
        prefix,
    )


def test_constants():
    assert DEFAULT_HEADER == ("#<> default", "#blank false")
    assert [m.value for m in TERMINATOR_MODIFIERS] == ["norelay", "norelay,2", "norelay,0", "false"]


# --- format -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "modifier", "text"),
    [
        ("192.168.1.0/24", Modifier.DEFAULT, "192.168.1.0/24 default"),
        ("192.168.1.5", Modifier.BARE, "192.168.1.5"),
        ("*.*.*.*", Modifier.NORELAY_2, "*.*.*.* norelay,2"),
        ("#<>", Modifier.DEFAULT, "#<> default"),
    ],
)
def test_format_rule(pattern, modifier, text):
    assert format_rule(pattern, modifier) == text


@pytest.mark.parametrize("pattern", ["", "10.0.0.1 true", "10.0.0.1\t", "a\nb"])
def test_format_rule_refuses_whitespace_in_pattern(pattern):
    with pytest.raises(ValueError, match="pattern may not be empty or contain whitespace"):
        format_rule(pattern, Modifier.DEFAULT)


def test_format_comment():
    assert format_comment("LAN of the Osaka office") == "'LAN of the Osaka office"
    with pytest.raises(ValueError, match="comment may not contain a line break"):
        format_comment("two\nlines")


@pytest.mark.parametrize(
    ("texts", "newline", "expected"),
    [
        ([], "\n", ""),
        (["#<> default", "#blank false"], "\n", "#<> default\n#blank false\n"),
        (["a", "", "b"], "\r\n", "a\r\n\r\nb\r\n"),
    ],
)
def test_render_lines(texts, newline, expected):
    assert render_lines(texts, newline) == expected


@pytest.mark.parametrize(
    ("texts", "newline", "message"),
    [
        (["a"], "\r", "newline must be LF or CRLF"),
        (["a\nb"], "\n", "may not contain a line break"),
        (["a\r"], "\r\n", "may not contain a line break"),
    ],
)
def test_render_lines_refuses_bad_input(texts, newline, message):
    with pytest.raises(ValueError, match=message):
        render_lines(texts, newline)


# --- decode ---------------------------------------------------------------------------------------


def test_decode_ascii_has_no_findings():
    assert decode_effect(b"#<> default\r\n#blank false\r\n") == (
        "#<> default\r\n#blank false\r\n",
        [],
    )


def test_decode_cp932_comment_warns_with_line_number():
    text, findings = decode_effect(b"#<> default\n' \x8e\xd0\x93\xe0\n")

    assert text == "#<> default\n' 社内\n"
    assert [(f.code, f.level, f.line, f.render()) for f in findings] == [
        (
            "relay.W019",
            Level.WARNING,
            2,
            "Line 2 is not ASCII; it was read as CP932 (Shift_JIS).",
        )
    ]


def test_decode_reports_and_replaces_undecodable_bytes():
    text, findings = decode_effect(b"#<> default\n#blank false\n10.0.0.1 \x81\x20x\n\xef\xbb\xbf\n")

    # a UTF-8 BOM is no CP932: its last two bytes read as half-width katakana
    assert text == "#<> default\n#blank false\n10.0.0.1 \ufffd x\n\ufffdｻｿ\n"
    assert [(f.code, f.level, f.line) for f in findings] == [
        ("relay.E014", Level.ERROR, 3),
        ("relay.E014", Level.ERROR, 4),
    ]
