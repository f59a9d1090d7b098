import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliases.aliasfile import Alias
from controlcenter.findings import Finding, Level
from relaypolicy import effectfile, validation
from relaypolicy.addrspace import octet_values
from relaypolicy.effectfile import EffectFile, decode_effect, parse_effect, render_lines
from relaypolicy.validation import validate_rules

DATA = Path(__file__).parent / "data"
HEADER = ["#<> default", "#blank false"]


def make_effect(*body: str, terminator: str | None = "*.*.*.* norelay") -> EffectFile:
    """The vendor's header, ``body`` from line 3 on, then ``terminator``."""
    return parse_effect(render_lines([*HEADER, *body, *([terminator] if terminator else [])]))


def codes(effect: EffectFile, *, gateway_mode: bool = True) -> list[tuple[str, int | None]]:
    return [(f.code, f.line) for f in validate_rules(effect, gateway_mode=gateway_mode)]


def only_finding(effect: EffectFile, code: str) -> Finding:
    (finding,) = [f for f in validate_rules(effect, gateway_mode=True) if f.code == code]
    return finding


# --- whole files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hardened", []),
        ("crlf", []),
        ("comments", [("relay.I002", 6)]),
        (
            "odd",
            [
                ("relay.E023", 3),
                ("relay.W002", 4),
                ("relay.W003", 5),
                ("relay.E001", 6),
                ("relay.E001", 7),
                ("relay.W005", 8),
                ("relay.E003", 9),
                ("relay.W006", 11),
            ],
        ),
    ],
)
def test_golden_files_findings(name, expected):
    text, _findings = decode_effect((DATA / f"{name}.dat").read_bytes())

    assert codes(parse_effect(text)) == expected


@pytest.mark.parametrize("gateway_mode", [True, False])
def test_hardened_gateway_file_is_clean_in_every_mode(gateway_mode):
    assert codes(make_effect("192.168.1.0/24 default"), gateway_mode=gateway_mode) == []


def test_comments_and_blank_lines_before_the_header_are_fine():
    effect = parse_effect("' generated\n\n #\n#<> default\n#blank false\n*.*.*.* norelay\n")

    assert codes(effect) == []


def test_findings_are_ordered_by_line_with_file_wide_findings_last():
    effect = parse_effect("#blank false\n10.0.0.1 bogus\nabc.co.jp\n")

    assert codes(effect) == [
        ("relay.W001", 2),
        ("relay.E012", 3),
        ("relay.E013", None),
        ("relay.W017", None),
    ]


_LINE_TEXT = st.text(alphabet=" \t'#*.@/:,<>0123456789abcdefnorly\u3042", max_size=20)


@settings(max_examples=200)
@given(texts=st.lists(_LINE_TEXT, max_size=10), gateway_mode=st.booleans())
def test_validate_never_raises_and_line_findings_point_at_real_lines(texts, gateway_mode):
    effect = parse_effect(render_lines(texts))

    findings = validate_rules(effect, gateway_mode=gateway_mode)

    assert {f.line for f in findings} - {None} <= set(range(1, len(texts) + 1))
    rendered = [f.render() + f.render_hint() for f in findings]
    assert [text for text in rendered if "%(" in text] == []


def test_every_code_in_the_sources_is_in_the_docstring_table():
    parts = pkgutil.iter_modules(validation.__path__, prefix="relaypolicy.validation.")
    modules = [validation, effectfile, *(importlib.import_module(part.name) for part in parts)]
    used = {
        code
        for module in modules
        for code in re.findall(r'"(relay\.[EWI]\d{3})"', inspect.getsource(module))
    }
    documented = set(re.findall(r"^(relay\.[EWI]\d{3}) ", validation.__doc__ or "", re.M))

    retired = {"relay.W008"}
    assert used == documented - retired
    assert len(documented) == 48


# --- unparsable lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("garbage! false", "relay.E001"),
        ("\t10.0.0.1 false", "relay.E001"),
        ("10.*/8 false", "relay.E001"),
        ("192.168..1 false", "relay.E001"),
        ("300.1.1.1 false", "relay.E002"),
        ("192.168.1.256/24 false", "relay.E002"),
        ("192.168.300* false", "relay.E002"),
        ("192.168.1 false", "relay.E003"),
        ("1.2.3.4.5 false", "relay.E003"),
        ("1.2.3.4.5.* false", "relay.E003"),
        ("010.0.0.0/8 default", "relay.E004"),
        ("192.168.01.* default", "relay.E004"),
        ("192.168.1.0/33 default", "relay.E005"),
        ("192.168.1.0/ default", "relay.E005"),
        ("192.168.1.0/08 default", "relay.E005"),
        ("2001:db8:::1 default", "relay.E006"),
        ("2001:db8::/129 default", "relay.E006"),
        ("#BLANK false", "relay.E007"),
        ("#nobody false", "relay.E007"),
        ("*a*b*@abc.co.jp false", "relay.E008"),
    ],
)
def test_unparsable_line_gets_one_specific_error(line, code):
    assert codes(make_effect(line)) == [(code, 3)]


def test_leading_zero_error_explains_octal_and_suggests_decimal():
    finding = only_finding(make_effect("010.0.0.0/8 default"), "relay.E004")

    assert finding.level is Level.ERROR
    assert finding.render() == (
        "'010.0.0.0/8' has an octet with leading zeros: some programs read 010 as decimal 10, "
        "others as octal 8, so it is unclear which hosts match."
    )
    assert finding.render_hint() == "Write 10.0.0.0/8 if you mean decimal."


def test_line_starting_with_tab_is_not_a_comment():
    finding = only_finding(make_effect("\tLAN hosts"), "relay.E001")

    assert finding.render_hint() == (
        "A line starting with a TAB is not a comment: start comments with an apostrophe (')."
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("' " + "x" * 253, []),
        ("' " + "x" * 254, [("relay.E009", 3)]),
        ("' " + "社" * 127, [("relay.E009", 3), ("relay.I002", 3)]),
    ],
)
def test_line_longer_than_255_bytes_is_an_error(line, expected):
    assert codes(make_effect(line)) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("１０.0.0.1 false", [("relay.E010", 3)]),
        ("10.0.0.1 ｆａｌｓｅ", [("relay.E010", 3), ("relay.W001", 3)]),
        ("10.0.0.1\u3000false", [("relay.E010", 3)]),
        ("' 大阪支店のLAN", [("relay.I002", 3)]),
    ],
)
def test_non_ascii_is_an_error_in_rules_and_info_in_comments(line, expected):
    assert codes(make_effect(line)) == expected


# --- modifiers and separators ---------------------------------------------------------------


def test_unknown_modifier_behaves_like_default():
    effect = make_effect("192.168.1.0/24 bogus")

    assert codes(effect) == [("relay.W001", 3)]
    assert only_finding(effect, "relay.W001").render() == (
        "'bogus' is not a modifier E-Post knows; the daemon silently treats this line as 'default'."
    )


@pytest.mark.parametrize(
    ("line", "expected", "intended"),
    [
        ("192.168.1.0/24 flase", [("relay.E022", 3)], "false"),
        ("192.168.1.0/24 norelay,3", [("relay.E022", 3)], "norelay"),
        ("192.168.1.0/24 norelay2", [("relay.E022", 3)], "norelay"),
        ("192.168.1.0/24 ture", [("relay.W001", 3)], None),
        ("192.168.1.0/24 defualt", [("relay.W001", 3)], None),
    ],
)
def test_unknown_modifier_weaker_than_meant_is_an_error(line, expected, intended):
    effect = make_effect(line)

    assert codes(effect) == expected
    if intended is not None:
        finding = only_finding(effect, "relay.E022")
        assert finding.level is Level.ERROR
        assert finding.render_hint() == f"Write 192.168.1.0/24 {intended}"


@pytest.mark.parametrize("separator", ["  ", "\t", " \t"])
@pytest.mark.parametrize("modifier", ["false", "norelay", "norelay,0", "NORELAY,2"])
def test_ignored_modifier_weaker_than_written_is_an_error(separator, modifier):
    effect = make_effect(f"192.168.1.0/24{separator}{modifier}")
    finding = only_finding(effect, "relay.E023")

    assert [code for code, _line in codes(effect)] == ["relay.E023"]
    assert finding.render() == (
        f"'192.168.1.0/24{separator}{modifier}' is written with '{modifier}', but more than one "
        "space or a TAB separates it from the pattern: the daemon ignores it and applies "
        "'default', which is weaker. Matching clients are not restricted as written."
    )


@pytest.mark.parametrize("separator", ["  ", "\t", " \t"])
def test_ignored_modifier_not_weaker_is_a_warning(separator):
    effect = make_effect(f"192.168.1.0/24{separator}true")
    finding = only_finding(effect, "relay.W002")

    assert codes(effect) == [("relay.W002", 3)]
    assert finding.render() == (
        f"'192.168.1.0/24{separator}true' has more than one space or a TAB before 'true', so "
        "the daemon ignores 'true' and applies 'default' to matching sessions."
    )
    assert finding.render_hint() == (
        "Separate pattern and modifier with exactly one space: 192.168.1.0/24 true"
    )


def test_ignored_default_says_nothing_changes():
    finding = only_finding(make_effect("192.168.1.0/24  default"), "relay.W002")

    assert finding.render() == (
        "'192.168.1.0/24  default' has more than one space or a TAB before 'default': the daemon "
        "ignores the modifier, which changes nothing here because it applies 'default' anyway."
    )


@pytest.mark.parametrize(
    "line",
    ["default\x0b*.*.*.* true", "#<> default\x0c", "10.0.0.1\x1cfalse", "'comment\x00", "\x85"],
)
def test_control_characters_are_an_error_in_every_line(line):
    effect = make_effect(line)
    finding = only_finding(effect, "relay.E021")

    assert finding.line == 3
    assert finding.level is Level.ERROR


@pytest.mark.parametrize("line", ["192.168.1.0/24 default  ", "192.168.1.0/24\t", "\t"])
def test_trailing_whitespace_is_a_warning(line):
    assert codes(make_effect(line)) == [("relay.W003", 3)]


def test_only_is_a_warning_suggesting_norelay():
    assert codes(make_effect("192.168.1.0/24 only")) == [("relay.W012", 3)]


def test_norelay_1_is_documented_unused():
    assert codes(make_effect("192.168.1.0/24 norelay,1")) == [
        ("relay.W013", 3),
        ("relay.W014", 3),
    ]


@pytest.mark.parametrize("modifier", ["norelay", "norelay,0", "norelay,2", "NORELAY"])
def test_norelay_on_a_pattern_that_is_not_a_catch_all_can_leak(modifier):
    assert codes(make_effect(f"192.168.9.0/24 {modifier}")) == [("relay.W014", 3)]


# --- patterns ----------------------------------------------------------------------------------


def test_cidr_with_host_bits_suggests_the_network():
    effect = make_effect("192.168.1.5/24 default")
    finding = only_finding(effect, "relay.W004")

    assert codes(effect) == [("relay.W004", 3)]
    assert finding.render() == (
        "192.168.1.5/24 has host bits set: it matches the whole network 192.168.1.0/24, "
        "not just one host."
    )
    assert finding.render_hint() == (
        "Write 192.168.1.0/24 for the network, or the address alone for one host."
    )


@pytest.mark.parametrize(
    ("pattern", "message", "hint"),
    [
        (
            "192.168.1*",
            "'192.168.1*' matches every client whose address starts with '192.168.1' "
            "(compared as text, not by octet): 192.168.1.x, 192.168.10–19.x, 192.168.100–199.x.",
            "Write 192.168.1.* if you mean only 192.168.1.x.",
        ),
        (
            "10.2*.*.*",
            "'10.2*.*.*' matches every client whose address starts with '10.2' "
            "(compared as text, not by octet): 10.2.x.x, 10.20–29.x.x, 10.200–255.x.x.",
            "Write 10.2.*.* if you mean only 10.2.x.x.",
        ),
        (
            "192.168.1.1*",
            "'192.168.1.1*' matches every client whose address starts with '192.168.1.1' "
            "(compared as text, not by octet): 192.168.1.1, 192.168.1.10–19, "
            "192.168.1.100–199.",
            "Write 192.168.1.1 if you mean only 192.168.1.1.",
        ),
        (
            "192.168.*.5",
            "'192.168.*.5' matches every client whose address starts with '192.168.': "
            "everything after the first * ('.5') is ignored.",
            "Write 192.168.*.* to say what it matches, or list the hosts one by one.",
        ),
    ],
)
def test_star_glued_or_not_at_the_end_says_what_it_really_matches(pattern, message, hint):
    effect = make_effect(f"{pattern} default")
    finding = only_finding(effect, "relay.W005")

    assert codes(effect) == [("relay.W005", 3)]
    assert (finding.render(), finding.render_hint()) == (message, hint)


@pytest.mark.parametrize("pattern", ["10.*.*.*", "192.168.*", "192.168.1.*", "10.*"])
def test_clean_wildcards_have_no_star_warning(pattern):
    assert codes(make_effect(f"{pattern} default")) == []


def test_star_before_every_octet_matches_every_client():
    assert codes(make_effect("*.5 default")) == [
        ("relay.E013", 3),
        ("relay.W005", 3),
        ("relay.W006", 4),
    ]


@pytest.mark.parametrize(
    ("partial", "values"),
    [("", list(range(256))), ("25", [25, *range(250, 256)]), ("3", [3, *range(30, 40)])],
)
def test_octet_values(partial, values):
    assert octet_values(partial) == values


# --- trust -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "terminator", "expected"),
    [
        (["*.*.*.*"], None, [("relay.E011", 3), ("relay.E013", 3)]),
        (["* true"], None, [("relay.E011", 3), ("relay.E013", 3)]),
        ([], "*.*.*.* only", [("relay.E011", 3), ("relay.E013", 3), ("relay.W012", 3)]),
        (["0.0.0.0/0"], "*.*.*.* norelay", [("relay.E011", 3), ("relay.E019", 4)]),
        (["::/0 true"], "*.*.*.* norelay", [("relay.E011", 3), ("relay.E019", 4)]),
    ],
)
def test_trusted_catch_all_is_open_relay_error(body, terminator, expected):
    assert codes(make_effect(*body, terminator=terminator)) == expected


def test_trusted_catch_all_message_says_everyone_may_relay():
    finding = only_finding(make_effect("*.*.*.*", terminator=None), "relay.E011")

    assert finding.render() == (
        "*.*.*.* is trusted: every host on the Internet may relay through this server (open relay)."
    )


@pytest.mark.parametrize(
    "line", ["abc.co.jp", "*.abc.co.jp true", "*@abc.co.jp true", "boss@abc.co.jp", "#host only"]
)
def test_trusted_sender_rule_is_an_error(line):
    expected = [("relay.E012", 3)] + ([("relay.W012", 3)] if line.endswith("only") else [])

    assert codes(make_effect(line)) == expected


@pytest.mark.parametrize("line", ["8.8.8.8 true", "2001:4860::/32", "1.2.3.*", "0.0.0.0/1 only"])
def test_trusted_public_range_is_an_error(line):
    expected = [("relay.E015", 3)] + ([("relay.W012", 3)] if line.endswith("only") else [])
    assert codes(make_effect(line)) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("203.0.113.0/24", []),
        ("2001:db8::/48", []),
        ("2001:db8::/32", [("relay.W009", 3)]),
        ("100.64.0.0/10 true", [("relay.W009", 3)]),
    ],
)
def test_trusted_special_purpose_range_is_not_public(line, expected):
    assert codes(make_effect(line)) == expected


def test_glued_star_trusting_public_addresses_is_an_error_and_explained():
    assert codes(make_effect("1* true")) == [("relay.E015", 3), ("relay.W005", 3)]


@pytest.mark.parametrize("line", ["10.*.*.*", "172.16.0.0/12 true", "10.0.0.0/15", "fd00::/8"])
def test_very_broad_trusted_private_range_is_a_warning(line):
    assert codes(make_effect(line)) == [("relay.W009", 3)]


@pytest.mark.parametrize(
    "line", ["192.168.0.0/16", "10.1.*.*", "192.168.1.5", "127.0.0.1", "fd00:1:2::/48", "::1"]
)
def test_trusted_private_range_of_16_or_narrower_is_fine(line):
    assert codes(make_effect(line)) == []


@pytest.mark.parametrize("line", ["203.0.113.0/24 false", "10.*.*.* default", "abc.co.jp false"])
def test_untrusted_rules_are_fine_whatever_they_cover(line):
    assert codes(make_effect(line)) == []


# --- order ---------------------------------------------------------------------------------------


def test_every_rule_after_a_catch_all_is_unreachable():
    effect = make_effect(
        "192.168.1.0/24 default", "*.*.*.* norelay", "10.0.0.9 false", "' note", "garbage!",
        terminator="192.168.2.0/24 default",
    )  # fmt: skip

    assert codes(effect) == [("relay.W006", 5), ("relay.E001", 7), ("relay.W006", 8)]
    (first,) = [f for f in validate_rules(effect, gateway_mode=True) if f.line == 5]
    assert first.render() == (
        "'10.0.0.9 false' is never used: the catch-all '*.*.*.* norelay' on line 4 above it "
        "already decides every session."
    )


def test_sender_keyword_below_ip_rules_is_shadowed_for_those_clients():
    effect = parse_effect("#blank false\n192.168.1.0/24 default\n#<> default\n*.*.*.* norelay\n")

    assert codes(effect) == [("relay.W007", 3), ("relay.W017", 3)]
    assert only_finding(effect, "relay.W007").render() == (
        "'#<> default' comes after IP rules (lines 2): sessions from clients those lines match "
        "are decided there and never reach this line."
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("192.168.1.0/24 default", "192.168.1.0/24 false"),
        ("192.168.1.0/24 default", "192.168.1.7/24 default"),
        ("abc.co.jp false", "ABC.co.jp false"),
        ("10.1.*.* default", "10.1.* default"),
    ],
)
def test_exact_duplicate_is_a_warning_naming_the_first(first, second):
    effect = make_effect(first, second)
    finding = only_finding(effect, "relay.W010")

    assert (finding.line, finding.params[0]) == (4, ("first_line", 3))


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("192.168.0.0/16 default", "192.168.1.5 false", [("relay.W011", 4)]),
        ("192.168.0.0/16 default", "192.168.1.0/24 default", [("relay.I003", 4)]),
        ("192.168.*.* default", "192.168.1.0/24 false", [("relay.W011", 4)]),
        ("192.168.1.0/24 false", "192.168.1.* default", [("relay.W011", 4)]),
        ("10.1* false", "10.15.*.* default", [("relay.W005", 3), ("relay.W011", 4)]),
        ("1* false", "10.0.0.0/8 default", [("relay.W005", 3), ("relay.W011", 4)]),
        ("2001:db8::/32 default", "2001:db8:1::/48 false", [("relay.W011", 4)]),
        ("*.co.jp false", "abc.co.jp default", [("relay.W011", 4), ("relay.W016", 4)]),
        ("*.co.jp false", "*.abc.co.jp false", [("relay.I003", 4)]),
        ("abc.co.jp false", "boss@abc.co.jp default", [("relay.W011", 4), ("relay.W016", 4)]),
        ("*@abc.co.jp false", "boss@ABC.co.jp false", [("relay.I003", 4)]),
        ("b*s@*.jp false", "boss@abc.co.jp false", [("relay.I003", 4)]),
        # not covered: narrower first, other family, other version, glob that does not match
        ("192.168.1.0/24 false", "192.168.0.0/16 default", []),
        ("10.* false", "2001:db8::/32 default", []),
        ("abc.co.jp false", "*.abc.co.jp false", []),
        ("b*s@*.jp false", "bob@abc.co.jp false", []),
    ],
)
def test_rule_shadowed_by_an_earlier_broader_rule(first, second, expected):
    assert codes(make_effect(first, second)) == expected


def test_shadowed_rule_names_the_line_that_decides():
    finding = only_finding(make_effect("192.168.0.0/16 default", "192.168.1.5 false"), "relay.W011")

    assert finding.render() == (
        "'192.168.1.5 false' never takes effect: line 3 ('192.168.0.0/16 default') matches "
        "every session it matches and comes first."
    )


# --- header -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#blank false\n*.*.*.* norelay\n", [("relay.W017", None)]),
        ("#<> default\n*.*.*.* norelay\n", [("relay.W018", None)]),
        ("#blank false\n#<> default\n*.*.*.* norelay\n", []),
        ("#<> DEFAULT\n#blank false\n*.*.*.* norelay\n", [("relay.W017", 1)]),
        ("#<> default\n#blank  false\n*.*.*.* norelay\n", [("relay.E023", 2), ("relay.W018", 2)]),
        ("#<> true\n#blank false\n*.*.*.* norelay\n", [("relay.E012", 1), ("relay.W017", 1)]),
        ("#<> default\n#blank true\n*.*.*.* norelay\n", [("relay.E012", 2), ("relay.W018", 2)]),
        ("*.*.*.* norelay\n", [("relay.W017", None), ("relay.W018", None)]),
    ],
)
def test_default_lines_missing_or_altered(text, expected):
    assert codes(parse_effect(text)) == expected


def test_missing_blank_line_says_what_happens():
    finding = only_finding(parse_effect("#<> default\n*.*.*.* norelay\n"), "relay.W018")

    assert finding.render() == (
        "The default line '#blank false' is missing: an empty MAIL FROM is no longer refused."
    )


# --- terminator ---------------------------------------------------------------------------------


def test_gateway_without_terminator_is_an_open_relay_error():
    effect = make_effect("192.168.1.0/24 default", terminator=None)
    finding = only_finding(effect, "relay.E013")

    assert codes(effect) == [("relay.E013", None)]
    assert finding.render() == (
        "There is no final '*.*.*.* norelay' line: outside hosts can relay through this gateway "
        "by claiming a sender in one of your domains."
    )


@pytest.mark.parametrize(
    ("terminator", "expected"),
    [
        ("*.*.*.* default", [("relay.E013", 4)]),
        ("*  norelay", [("relay.E013", 4), ("relay.E023", 4)]),
        ("*.*.*.* norelay ", [("relay.W003", 4)]),
        ("* norelay", []),
        ("*.*.*.* norelay,0", []),
        ("*.*.*.* norelay,2", []),
        ("*.*.*.* norelay,1", [("relay.W013", 4)]),
    ],
)
def test_terminator_must_forbid_relaying(terminator, expected):
    assert codes(make_effect("192.168.1.0/24 default", terminator=terminator)) == expected


def test_terminator_followed_by_appended_lines_still_protects():
    effect = make_effect("*.*.*.* norelay", terminator="203.0.113.7 false")

    assert codes(effect) == [("relay.W006", 4)]


def test_mailserver_mode_without_terminator_is_only_info():
    effect = make_effect("192.168.1.0/24 default", terminator=None)

    assert codes(effect, gateway_mode=False) == [("relay.I001", None)]
    assert validate_rules(effect, gateway_mode=False)[0].level is Level.INFO


@pytest.mark.parametrize("gateway_mode", [True, False])
def test_false_catch_all_refuses_inbound_mail_too(gateway_mode):
    effect = make_effect("192.168.1.0/24 default", terminator="*.*.*.* false")

    assert codes(effect, gateway_mode=gateway_mode) == [("relay.W015", 4)]


def test_ip_false_line_is_fine():
    assert codes(make_effect("203.0.113.7 false")) == []


@pytest.mark.parametrize(
    ("line", "gateway_mode", "expected"),
    [
        ("*@abc.co.jp default", True, [("relay.W016", 3)]),
        ("abc.co.jp default", True, [("relay.W016", 3)]),
        ("#nodomain default", True, [("relay.W016", 3)]),
        ("abc.co.jp bogus", True, [("relay.W001", 3), ("relay.W016", 3)]),
        ("*@abc.co.jp default", False, []),
        ("*@abc.co.jp false", True, []),
    ],
)
def test_sender_default_rule_above_terminator_lets_forged_senders_relay(
    line, gateway_mode, expected
):
    assert codes(make_effect(line), gateway_mode=gateway_mode) == expected


# --- the address space: who reaches a line, and may relay there -----------------------------

ALIASES = (Alias("*@example.co.jp", "*@example.co.jp"),)
EXACT_ALIASES = (Alias("yamada@example.co.jp", "yamada@inner.example.co.jp"),)


def reach_codes(effect, *, aliases=ALIASES, gateway_mode=True, **kwargs):
    findings = validate_rules(effect, gateway_mode=gateway_mode, aliases=aliases, **kwargs)
    return [(f.code, f.line) for f in findings]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0.0.0.0/1 default", [("relay.E016", 3)]),
        ("0.0.0.0/0 default", [("relay.E016", 3), ("relay.E019", 4)]),
        ("8.0.0.0/8 default", [("relay.E016", 3)]),
        ("::/0 default", [("relay.E016", 3), ("relay.E019", 4)]),
        ("1* default", [("relay.E016", 3), ("relay.W005", 3)]),
        ("192.168.1.0/24  flase", [("relay.E022", 3)]),
        ("192.168.1.0/24 default", []),
        ("100.64.0.0/10 default", []),
        ("0.0.0.0/1 norelay", [("relay.W014", 3)]),
    ],
)
def test_default_reached_by_public_addresses_is_an_error_when_aliases_exist(line, expected):
    assert reach_codes(make_effect(line)) == expected


@pytest.mark.parametrize("aliases", [ALIASES, EXACT_ALIASES])
def test_any_alias_makes_default_for_public_clients_an_error(aliases):
    assert reach_codes(make_effect("8.0.0.0/8 default"), aliases=aliases) == [("relay.E016", 3)]


def test_default_for_public_clients_without_aliases_is_not_an_error():
    assert reach_codes(make_effect("0.0.0.0/1 default"), aliases=()) == []


def test_error_message_names_how_many_public_addresses_and_which():
    (finding,) = [
        f
        for f in validate_rules(
            make_effect("8.8.8.0/30 default"), gateway_mode=True, aliases=ALIASES
        )
        if f.code == "relay.E016"
    ]

    assert finding.render() == (
        "'8.8.8.0/30 default' applies the built-in table to 4 public Internet address(es) "
        "(8.8.8.0/30): a host there that forges a sender one of your aliases makes local (any "
        "real address will do) may relay anywhere."
    )


def test_lines_above_take_addresses_away_from_a_line():
    effect = make_effect("8.8.8.0/24 norelay", "8.8.8.0/23 default")

    assert reach_codes(effect) == [("relay.W014", 3), ("relay.E016", 4)]
    (finding,) = [
        f
        for f in validate_rules(effect, gateway_mode=True, aliases=ALIASES)
        if f.code == "relay.E016"
    ]
    assert dict(finding.params)["ranges"] == "8.8.9.0/24"
    assert dict(finding.params)["count"] == 256


def test_catch_all_default_above_the_terminator_makes_it_unreachable_and_says_so():
    effect = make_effect("0.0.0.0/0 default")
    (finding,) = [
        f for f in validate_rules(effect, gateway_mode=True, aliases=()) if f.code == "relay.E019"
    ]

    assert finding.line == 4
    assert finding.render() == (
        "The final line '*.*.*.* norelay' is never reached by IPv4 clients: the lines above it "
        "(line 3) match every IPv4 address first, so it stops no outside host of that kind from "
        "relaying."
    )


def test_terminator_taken_over_by_norelay_lines_is_only_unreachable():
    effect = make_effect("0.0.0.0/0 norelay,2")

    assert reach_codes(effect) == [("relay.W014", 3), ("relay.W021", 4)]


def test_line_covered_by_several_lines_above_is_unreachable():
    effect = make_effect("10.0.0.0/9 default", "10.128.0.0/9 false", "10.12* default")

    assert reach_codes(effect) == [("relay.W005", 5), ("relay.W021", 5)]


def test_mailserver_without_terminator_and_aliases_is_an_open_relay():
    effect = make_effect("192.168.1.0/24 default", terminator=None)

    assert reach_codes(effect, gateway_mode=False) == [("relay.E020", None)]
    assert reach_codes(effect, gateway_mode=False, aliases=()) == [("relay.I001", None)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("*@example.co.jp default", [("relay.E017", 3), ("relay.W016", 3)]),
        ("example.co.jp default", [("relay.E017", 3), ("relay.W016", 3)]),
        ("*.co.jp default", [("relay.E017", 3), ("relay.W016", 3)]),
        ("yamada@example.co.jp default", [("relay.E017", 3), ("relay.W016", 3)]),
        ("other.example default", [("relay.W016", 3)]),
        ("#nodomain default", [("relay.W016", 3)]),
        ("*@example.co.jp norelay", [("relay.W014", 3)]),
    ],
)
def test_sender_default_line_matching_an_alias_is_an_error(line, expected):
    assert reach_codes(make_effect(line)) == expected


def test_sender_default_line_below_a_catch_all_is_not_reached():
    effect = make_effect("*.*.*.* norelay", "*@example.co.jp default", terminator=None)

    assert ("relay.E017", 4) not in reach_codes(effect)


def test_declared_outside_site_is_a_warning_naming_its_addresses():
    effect = make_effect("203.0.113.8/30 default", "8.8.8.0/30 true")
    findings = validate_rules(effect, gateway_mode=True, aliases=ALIASES, outside_sites={4})

    assert [(f.code, f.line) for f in findings] == [("relay.W020", 4)]
    assert findings[0].render() == (
        "'8.8.8.0/30 true' is a declared outside site: these 4 public address(es) may relay "
        "through this gateway: 8.8.8.0/30."
    )


def test_declared_outside_site_over_the_limit_is_an_error():
    effect = make_effect("8.8.8.0/24 true")

    assert reach_codes(effect, outside_sites={3}) == [("relay.W020", 3)]
    assert reach_codes(effect, outside_sites={3}, outside_site_limit=255) == [("relay.E018", 3)]
    assert reach_codes(make_effect("0.0.0.0/1 default"), outside_sites={3}) == [("relay.E018", 3)]


def test_a_file_over_the_line_limit_is_refused_with_a_clear_message():
    effect = parse_effect("\n".join(["' x"] * (validation.MAX_LINES + 1)) + "\n")
    (finding,) = [f for f in validate_rules(effect, gateway_mode=False) if f.code == "relay.E024"]

    assert finding.line is None
    assert dict(finding.params) == {"count": validation.MAX_LINES + 1, "limit": 20000}
