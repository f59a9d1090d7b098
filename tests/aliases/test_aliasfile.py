import codecs
import io
import re
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliases import aliasfile
from aliases.aliasfile import (
    AddressPattern,
    AddressProblem,
    Alias,
    AliasIndex,
    AliasKind,
    AliasMatch,
    AliasSyntaxError,
    CsvRow,
    neutralise_formula,
    normalise_fullwidth,
    parse_alias_csv,
    parse_alias_pattern,
    parse_target,
    render_alias_csv,
    render_csv_table,
    render_register_script,
    unneutralise_formula,
)

DATA = Path(__file__).parent / "data"
LOCAL = frozenset({"example.co.jp"})
BOM = codecs.BOM_UTF8


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def codes(result) -> list[tuple[int | None, str]]:
    return [(f.line, f.code) for f in result.findings]


def rows(result) -> list[tuple[int, str, str, str, str]]:
    return [
        (r.line, r.alias.pattern, r.alias.target, r.alias.option, r.alias.comment)
        for r in result.rows
    ]


# --- addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "local", "domain", "kind"),
    [
        ("user@example.co.jp", "user", "example.co.jp", AliasKind.EXACT),
        ("User.Name@Example.CO.JP", "User.Name", "example.co.jp", AliasKind.EXACT),
        ("  user@d.jp  ", "user", "d.jp", AliasKind.EXACT),
        ("*@domain.jp", "*", "domain.jp", AliasKind.FULL_WILDCARD),
        ("2009*@domain.jp", "2009*", "domain.jp", AliasKind.PARTIAL_WILDCARD),
        ("*-sales@domain.jp", "*-sales", "domain.jp", AliasKind.PARTIAL_WILDCARD),
        ("abc-*-jp@domain.jp", "abc-*-jp", "domain.jp", AliasKind.PARTIAL_WILDCARD),
        ("taro..yamada.@docomo.ne.jp", "taro..yamada.", "docomo.ne.jp", AliasKind.EXACT),
        ("o'brien+tag=x@mail-1.d.jp", "o'brien+tag=x", "mail-1.d.jp", AliasKind.EXACT),
    ],
)
def test_parse_alias_pattern_accepts(text, local, domain, kind):
    parsed = parse_alias_pattern(text)

    assert parsed == AddressPattern(local, domain)
    assert parsed.kind is kind


@pytest.mark.parametrize(
    ("text", "problem", "message"),
    [
        ("", AddressProblem.SYNTAX, "the address is empty"),
        (
            "user",
            AddressProblem.SYNTAX,
            "user has no @domain: both sides of an alias need a domain",
        ),
        ("@d.jp", AddressProblem.SYNTAX, "@d.jp has nothing before the @"),
        ("user@", AddressProblem.SYNTAX, "user@ has nothing after the @"),
        (
            "a@b@d.jp",
            AddressProblem.ROUTING,
            "a@b@d.jp contains a second @: routing through another host is refused",
        ),
        (
            "user%evil.example@d.jp",
            AddressProblem.ROUTING,
            "user%evil.example@d.jp contains the routing character % in its local part",
        ),
        (
            "evil.example!user@d.jp",
            AddressProblem.ROUTING,
            "evil.example!user@d.jp contains the routing character ! in its local part",
        ),
        (
            '"a@b"@d.jp',
            AddressProblem.ROUTING,
            '"a@b"@d.jp contains a second @: routing through another host is refused',
        ),
        (
            '"ab"@d.jp',
            AddressProblem.ROUTING,
            '"ab"@d.jp contains the routing character " in its local part',
        ),
        (
            "a\x00b@d.jp",
            AddressProblem.CONTROL,
            "a\\x00b@d.jp contains the control character \\x00",
        ),
        ("a b@d.jp", AddressProblem.SYNTAX, "a b@d.jp contains a space"),
        ("ユーザ@d.jp", AddressProblem.SYNTAX, "ユーザ@d.jp contains the non-ASCII character ユ"),
        ("a*b*@d.jp", AddressProblem.SYNTAX, "a*b*@d.jp has more than one * in its local part"),
        (
            "a,b@d.jp",
            AddressProblem.SYNTAX,
            "a,b@d.jp contains ,, which is not allowed in an address",
        ),
        (
            "user@*.d.jp",
            AddressProblem.SYNTAX,
            "user@*.d.jp has a * in its domain: wildcards are only allowed before the @",
        ),
        (
            "user@[192.0.2.1]",
            AddressProblem.SYNTAX,
            "user@[192.0.2.1] has an IP-literal domain: use a domain name",
        ),
        ("user@d.jp.", AddressProblem.SYNTAX, "user@d.jp. has a domain ending in a dot"),
        (
            "user@localhost",
            AddressProblem.SYNTAX,
            "user@localhost has no dot in its domain: write the full domain name",
        ),
        ("user@d..jp", AddressProblem.SYNTAX, "user@d..jp has an invalid domain label ''"),
        ("user@-d.jp", AddressProblem.SYNTAX, "user@-d.jp has an invalid domain label '-d'"),
        (
            "user@192.0.2.1",
            AddressProblem.SYNTAX,
            "user@192.0.2.1 has an IP address as its domain: use a domain name",
        ),
        (
            "a" * 65 + "@d.jp",
            AddressProblem.SYNTAX,
            "a" * 65 + "@d.jp has a local part longer than 64 characters",
        ),
    ],
)
def test_parse_alias_pattern_rejects_with_reason(text, problem, message):
    with pytest.raises(AliasSyntaxError) as caught:
        parse_alias_pattern(text)

    assert caught.value.problem is problem
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("real@real.jp", ("real@real.jp", "")),
        ("real@real.jp,0", ("real@real.jp", "0")),
        (" real@real.jp , 1 ", ("real@real.jp", "1")),
        ("*@inner.d.jp", ("*@inner.d.jp", "")),
    ],
)
def test_parse_target_splits_the_option(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("real@real.jp,2", "real@real.jp,2 has the option '2': only ,0 and ,1 exist"),
        ("real@real.jp,", "real@real.jp, has the option '': only ,0 and ,1 exist"),
        ("real@real.jp,0,1", "real@real.jp,0,1 has the option '0,1': only ,0 and ,1 exist"),
        ("real", "real has no @domain: both sides of an alias need a domain"),
    ],
)
def test_parse_target_rejects(text, message):
    with pytest.raises(AliasSyntaxError, match=re.escape(message)):
        parse_target(text)


@pytest.mark.parametrize(
    ("alias", "domain", "kind", "target_text", "key"),
    [
        (Alias("a@D.JP", "b@e.jp"), "d.jp", AliasKind.EXACT, "b@e.jp", "a@d.jp"),
        (Alias("*@d.jp", "*@e.jp", "0"), "d.jp", AliasKind.FULL_WILDCARD, "*@e.jp,0", "*@d.jp"),
        (
            Alias("Ab*@d.jp", "x@e.jp", "1"),
            "d.jp",
            AliasKind.PARTIAL_WILDCARD,
            "x@e.jp,1",
            "ab*@d.jp",
        ),
        (Alias("broken", "x@e.jp"), "", AliasKind.EXACT, "x@e.jp", "broken"),
    ],
)
def test_alias_properties(alias, domain, kind, target_text, key):
    assert (alias.domain, alias.kind, alias.target_text, alias.key) == (
        domain,
        kind,
        target_text,
        key,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user@example.co.jp", ("user@example.co.jp", False)),
        ("ｕｓｅｒ＠ｅｘａｍｐｌｅ．ｊｐ", ("user@example.jp", True)),
        ("２００９＊@d.jp", ("2009*@d.jp", True)),
        ("real@d.jp，０", ("real@d.jp,0", True)),
        ("a@d.jp\u3000", ("a@d.jp ", True)),
        ("ＡＢＣ－＿", ("ABC-_", True)),
        ("営業部ｶﾅ", ("営業部ｶﾅ", False)),
    ],
)
def test_normalise_fullwidth(text, expected):
    assert normalise_fullwidth(text) == expected


# --- matching -----------------------------------------------------------------------------

EXAMPLE = [
    Alias("sales@example.co.jp", "team@inner.example.co.jp"),
    Alias("2009*@example.co.jp", "2009*@inner.example.co.jp", "0"),
    Alias("*-sales@example.co.jp", "*-team@inner.example.co.jp"),
    Alias("abc-*-jp@example.co.jp", "abc@inner.example.co.jp"),
    Alias("*@a.jp", "*@b.jp"),
    Alias("*@example.co.jp", "*@inner.example.co.jp"),
]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("sales@example.co.jp", (0, "team@inner.example.co.jp", "")),
        ("Sales@EXAMPLE.co.jp", (0, "team@inner.example.co.jp", "")),
        ("2009tanaka@example.co.jp", (1, "2009tanaka@inner.example.co.jp", "0")),
        ("2009Tanaka@example.co.jp", (1, "2009Tanaka@inner.example.co.jp", "0")),
        ("2009@example.co.jp", (1, "2009@inner.example.co.jp", "0")),
        ("tokyo-sales@example.co.jp", (2, "tokyo-team@inner.example.co.jp", "")),
        ("-sales@example.co.jp", (2, "-team@inner.example.co.jp", "")),
        ("abc-x-jp@example.co.jp", (3, "abc@inner.example.co.jp", "")),
        ("abc--jp@example.co.jp", (3, "abc@inner.example.co.jp", "")),
        ("abc-jp@example.co.jp", (5, "abc-jp@inner.example.co.jp", "")),
        ("Taro@a.jp", (4, "Taro@b.jp", "")),
        ("taro@A.JP", (4, "taro@b.jp", "")),
        ("user%evil.example@a.jp", (4, "user%evil.example@b.jp", "")),
        ("anyone@example.co.jp", (5, "anyone@inner.example.co.jp", "")),
        ("user@sub.a.jp", None),
        ("user@nota.jp", None),
        ("user@a.jp.evil.example", None),
        ("user@a.jp.", None),
        ("user", None),
        ("@a.jp", None),
    ],
)
def test_lookup_matches_every_pattern_form(address, expected):
    found = AliasIndex.build(EXAMPLE).lookup(address)

    assert (None if found is None else (found.position, found.target, found.option)) == expected


def test_lookup_first_match_wins_over_a_later_exact_alias():
    aliases = [Alias("*@d.jp", "*@inner.d.jp"), Alias("boss@d.jp", "ceo@inner.d.jp")]

    assert AliasIndex.build(aliases).lookup("boss@d.jp") == AliasMatch(
        0, aliases[0], "boss@inner.d.jp"
    )


def test_lookup_exact_alias_above_a_wildcard_wins():
    aliases = [Alias("boss@d.jp", "ceo@inner.d.jp", "1"), Alias("*@d.jp", "*@inner.d.jp")]

    found = AliasIndex.build(aliases).lookup("BOSS@d.jp")

    assert found == AliasMatch(0, aliases[0], "ceo@inner.d.jp")
    assert found.target_text == "ceo@inner.d.jp,1"


def test_lookup_duplicate_exact_aliases_use_the_first():
    aliases = [Alias("a@d.jp", "first@e.jp"), Alias("A@D.JP", "second@e.jp")]

    assert AliasIndex.build(aliases).lookup("a@d.jp") == AliasMatch(0, aliases[0], "first@e.jp")


def test_lookup_ignores_malformed_patterns():
    aliases = [Alias("a*b*@d.jp", "x@e.jp"), Alias("nodomain", "x@e.jp"), Alias("*@d.jp", "y@e.jp")]

    assert AliasIndex.build(aliases).lookup("axxb@d.jp") == AliasMatch(2, aliases[2], "y@e.jp")


@pytest.mark.parametrize(
    ("aliases", "position", "expected"),
    [
        (["*@d.jp", "boss@d.jp"], 1, 0),
        (["2009*@d.jp", "20091*@d.jp"], 1, 0),
        (["2009*@d.jp", "2009a@d.jp"], 1, 0),
        (["*-sales@d.jp", "*-tokyo-sales@d.jp"], 1, 0),
        (["*@d.jp", "2009*@d.jp"], 1, 0),
        (["2009*@d.jp", "2009@d.jp"], 1, 0),
        (["2009*@d.jp", "2008*@d.jp"], 1, None),
        (["2009*@d.jp", "*@d.jp"], 1, None),
        (["*@e.jp", "boss@d.jp"], 1, None),
        (["boss@d.jp", "*@d.jp"], 0, None),
        (["2009*@d.jp", "x@e.jp", "*@d.jp", "2009x@d.jp"], 3, 0),
    ],
)
def test_shadowing_names_the_earlier_wildcard(aliases, position, expected):
    index = AliasIndex.build([Alias(p, "t@inner.jp") for p in aliases])

    assert index.shadowing(position) == expected


address_text = st.one_of(
    st.text(alphabet="aZ09.*@-_%!\"\\ #'{~[]\t\x00ａ＠é", max_size=12),
    st.builds(
        lambda local, labels: f"{local}@{'.'.join(labels)}",
        st.one_of(
            st.text(alphabet="aZ9.-_+'`", min_size=1, max_size=3),
            st.text(alphabet="aZ9.*-_+%é", max_size=66),
        ),
        st.one_of(
            st.lists(st.sampled_from(["d", "JP", "co", "a-b", "1", "x9", "-a", "b-"]), max_size=4),
            st.lists(st.text(alphabet="aZ09-*", max_size=64), max_size=5),
        ),
    ),
)


def outcome(parse, text):
    try:
        return parse(text)
    except AliasSyntaxError as error:
        return (error.message, error.problem, error.params)


@settings(max_examples=2000, deadline=None)
@given(text=address_text)
def test_address_fast_path_agrees_with_the_full_checks(text):
    assert outcome(aliasfile._parse_address, text) == outcome(aliasfile._parse_address_slowly, text)


def naive_lookup(aliases, address):
    """An independent first-match linear scan with regular expressions."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return None
    for position, alias in enumerate(aliases):
        pattern_local, _, pattern_domain = alias.pattern.rpartition("@")
        if pattern_domain.lower() != domain.lower():
            continue
        if "*" in pattern_local:
            prefix, _, suffix = pattern_local.partition("*")
            regex = re.escape(prefix) + "(.*)" + re.escape(suffix)
            found = re.fullmatch(regex, local, re.IGNORECASE | re.ASCII | re.DOTALL)
            if found:
                return position, alias.target.replace("*", found.group(1))
        elif pattern_local.lower() == local.lower():
            return position, alias.target
    return None


small_local = st.text(alphabet="abAB1-", min_size=1, max_size=4)
small_domain = st.sampled_from(["a.jp", "b.jp", "A.JP", "c.co.jp"])
small_pattern_local = st.one_of(
    small_local,
    st.just("*"),
    small_local.map(lambda s: s + "*"),
    small_local.map(lambda s: "*" + s),
    st.tuples(small_local, small_local).map(lambda t: t[0] + "*" + t[1]),
)
small_alias = st.builds(
    lambda local, domain, target: Alias(f"{local}@{domain}", target),
    small_pattern_local,
    small_domain,
    st.sampled_from(["*@inner.jp", "fixed@inner.jp", "x-*@inner.jp"]),
)


@settings(max_examples=300, deadline=None)
@given(
    aliases=st.lists(small_alias, max_size=25),
    addresses=st.lists(
        st.builds(lambda local, d: f"{local}@{d}", small_local, small_domain),
        min_size=1,
        max_size=10,
    ),
)
def test_index_agrees_with_a_naive_first_match_scan(aliases, addresses):
    index = AliasIndex.build(aliases)

    for address in addresses:
        found = index.lookup(address)
        assert (None if found is None else (found.position, found.target)) == naive_lookup(
            aliases, address
        )
        assert (None if found is None else found.target) == next(
            (t for a in aliases if (t := a.rewrite(address)) is not None), None
        )


@settings(max_examples=300, deadline=None)
@given(aliases=st.lists(small_alias, max_size=25), extra=small_alias, data=st.data())
def test_shadowing_of_an_alias_outside_the_index_is_as_if_inserted(aliases, extra, data):
    position = data.draw(st.integers(0, len(aliases)))
    inserted = [*aliases[:position], extra, *aliases[position:]]

    assert AliasIndex.build(aliases).shadowing_of(extra, position) == AliasIndex.build(
        inserted
    ).shadowing(position)


def test_index_is_fast_at_100000_aliases():
    aliases = [Alias(f"user{n}@d{n % 50}.example.jp", f"user{n}@inner.jp") for n in range(99_990)]
    aliases += [Alias(f"{n}*@d{n}.example.jp", "*@inner.jp") for n in range(10)]
    started = time.perf_counter()
    index = AliasIndex.build(aliases)

    results = [index.lookup(f"user{n}@d{n % 50}.example.jp") for n in range(0, 99_990, 10)]
    misses = [index.lookup(f"nobody{n}@d{n % 50}.example.jp") for n in range(10_000)]

    assert time.perf_counter() - started < 5.0
    assert [r.position for r in results if r is not None] == list(range(0, 99_990, 10))
    assert misses.count(None) == 10_000


# --- CSV: the corpus ----------------------------------------------------------------------


def test_parse_utf8_with_bom_and_header():
    result = parse_alias_csv(read("utf8_bom.csv"), local_domains=LOCAL)

    assert (result.encoding, result.bom, result.header_line) == ("utf-8", True, 1)
    assert rows(result) == [
        (2, "sales@example.co.jp", "team@inner.example.co.jp", "", "営業部"),
        (3, "info@example.co.jp", "info@inner.example.co.jp", "", "総務・お問い合わせ窓口"),
        (4, "2009*@example.co.jp", "2009*@inner.example.co.jp", "0", "2009年度入社"),
        (5, "*@example.co.jp", "*@inner.example.co.jp", "", "ゲートウェイ全転送（要注意）"),
    ]
    assert result.findings == ()
    assert result.has_errors is False


def test_parse_utf8_without_bom_lf_no_header_skips_blank_rows():
    result = parse_alias_csv(read("utf8_nobom_lf.csv"), local_domains=LOCAL)

    assert (result.encoding, result.bom, result.header_line) == ("utf-8", False, None)
    assert rows(result) == [
        (1, "tanaka@example.co.jp", "tanaka@inner.example.co.jp", "", ""),
        (2, "suzuki@example.co.jp", "suzuki@inner.example.co.jp", "", ""),
        (5, "*-sales@example.co.jp", "*-sales@inner.example.co.jp", "", "Sales teams"),
        (6, "Yamada.Taro@Example.CO.JP", "yamada.taro@inner.example.co.jp", "", "mixed case"),
    ]
    assert result.findings == ()


CP932_ROWS = [
    (2, "takahashi@example.co.jp", "takahashi@inner.example.co.jp", "", "髙橋\u3000一郎（総務部）"),
    (3, "watanabe@example.co.jp", "watanabe@inner.example.co.jp", "1", "渡邊～営業①課"),
    (4, "kobayashi@example.co.jp", "kobayashi@inner.example.co.jp", "", ""),
]


@pytest.mark.parametrize("encoding", ["auto", "cp932"])
def test_parse_cp932_with_japanese_header(encoding):
    result = parse_alias_csv(read("cp932_japanese_header.csv"), encoding=encoding)

    assert (result.encoding, result.header_line) == ("cp932", 1)
    assert rows(result) == CP932_ROWS
    assert result.findings == ()


def test_parse_cp932_forced_as_utf8_names_every_undecodable_line():
    result = parse_alias_csv(read("cp932_japanese_header.csv"), encoding="utf-8")

    assert result.encoding == "utf-8"
    assert codes(result) == [(1, "csv.E001"), (2, "csv.E001"), (3, "csv.E001")]
    assert result.findings[1].render() == "line 2 cannot be decoded as utf-8"
    assert rows(result) == [CP932_ROWS[2]]
    assert result.has_errors is True


def test_parse_utf8_forced_as_cp932_reads_mojibake_not_the_header():
    result = parse_alias_csv(read("utf8_nobom_lf.csv"), encoding="cp932")

    assert result.encoding == "cp932"
    assert [r.line for r in result.rows] == [1, 2, 5, 6]


def test_parse_excel_quoting_counts_physical_lines():
    result = parse_alias_csv(read("excel_quoting.csv"), local_domains=LOCAL)

    assert rows(result) == [
        (2, "ito@example.co.jp", "ito@inner.example.co.jp", "0", "Ito, Kenji (sales, Tokyo)"),
        (3, "kato@example.co.jp", "kato@inner.example.co.jp", "", 'Kato "Ken" Ichiro'),
        (
            4,
            "nakamura@example.co.jp",
            "nakamura@inner.example.co.jp",
            "",
            "first line\nsecond line",
        ),
        (6, "yoshida@example.co.jp", "yoshida@inner.example.co.jp", "", "three\nphysical\nlines"),
        (9, "sato@example.co.jp", "sato@inner.example.co.jp", "", "after the multi-line cells"),
    ]
    assert result.findings == ()


def test_parse_formula_cells_are_unneutralised():
    result = parse_alias_csv(read("formula.csv"), local_domains=LOCAL)

    assert rows(result) == [
        (2, "-ops@example.co.jp", "ops@inner.example.co.jp", "", "=SUM(A1)"),
        (3, "+81@example.co.jp", "+81@inner.example.co.jp", "", "+81-3-1234-5678"),
        (4, "help@example.co.jp", "help@inner.example.co.jp", "", "@mention"),
        (5, "desk@example.co.jp", "desk@inner.example.co.jp", "", "'=already quoted"),
        (6, "note@example.co.jp", "note@inner.example.co.jp", "", "'plain apostrophe"),
        (7, "tab@example.co.jp", "tab@inner.example.co.jp", "", "=HYPERLINK()"),
    ]
    assert result.findings == ()


def test_parse_bad_rows_reports_every_problem_with_its_line():
    result = parse_alias_csv(read("bad_rows.csv"), local_domains=LOCAL)

    assert codes(result) == [
        (3, "csv.E004"),
        (4, "csv.E004"),
        (5, "csv.E006"),
        (6, "csv.E007"),
        (7, "csv.E008"),
        (8, "csv.E008"),
        (9, "csv.E009"),
        (10, "csv.E010"),
        (11, "csv.E011"),
        (12, "csv.E012"),
        (13, "csv.E013"),
        (14, "csv.E006"),
        (15, "csv.E006"),
        (16, "csv.E003"),
        (18, "csv.E003"),
    ]
    assert [r.line for r in result.rows] == [2, 17]
    assert result.has_errors is True


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (3, "expected 2 or 3 columns (alias, mapped_to, comment), found 1"),
        (4, "expected 2 or 3 columns (alias, mapped_to, comment), found 4"),
        (5, "nodomain has no @domain: both sides of an alias need a domain"),
        (6, "opt@inner.example.co.jp,2 has the option '2': only ,0 and ,1 exist"),
        (7, "user%evil.example@example.co.jp contains the routing character % in its local part"),
        (
            8,
            "two@evil.example@inner.example.co.jp contains a second @: "
            "routing through another host is refused",
        ),
        (9, "bell\\x07@example.co.jp contains the control character \\x07"),
        (10, "foreign@other.example: other.example is not a local domain managed here"),
        (11, "OK@Example.co.jp is already on line 2"),
        (
            12,
            "*@inner.example.co.jp has a * but the alias star@example.co.jp has none to carry over",
        ),
        (13, "the comment is just 0: is it an unquoted option?"),
        (14, "dom@*.example.co.jp has a * in its domain: wildcards are only allowed before the @"),
        (15, "*a*@example.co.jp has more than one * in its local part"),
        (16, "malformed quoting on line 16: ',' expected after '\"'"),
        (18, "a quoted field starting on line 18 is never closed"),
    ],
)
def test_parse_bad_rows_messages(line, message):
    result = parse_alias_csv(read("bad_rows.csv"), local_domains=LOCAL)

    assert [f.render() for f in result.findings if f.line == line] == [message]


def test_parse_without_local_domains_does_not_check_domains():
    result = parse_alias_csv(read("bad_rows.csv"))

    assert (10, "csv.E010") not in codes(result)
    assert [r.line for r in result.rows] == [2, 10, 17]


def test_parse_fullwidth_converts_with_a_warning_per_cell():
    result = parse_alias_csv(read("fullwidth.csv"), local_domains=LOCAL)

    assert rows(result) == [
        (2, "sato@example.co.jp", "sato@inner.example.co.jp", "", "全角ローマ字"),
        (3, "2009*@example.co.jp", "2009*@inner.example.co.jp", "0", "全角数字と全角カンマ"),
        (4, "kimura@example.co.jp", "kimura@inner.example.co.jp", "", "全角ピリオド"),
        (5, "mori@example.co.jp", "mori@inner.example.co.jp", "", "末尾の全角スペース"),
        (
            6,
            "plain@example.co.jp",
            "plain@inner.example.co.jp",
            "",
            "コメントの全角ＡＢＣは変換しない",
        ),
    ]
    assert codes(result) == [
        (2, "csv.W001"),
        (3, "csv.W001"),
        (3, "csv.W001"),
        (4, "csv.W001"),
        (5, "csv.W001"),
    ]
    assert [f.render() for f in result.findings[1:3]] == [
        'full-width characters in alias converted to ASCII: "２００９＊@example.co.jp" '
        'became "2009*@example.co.jp"',
        "full-width characters in mapped_to converted to ASCII: "
        '"２００９＊@inner.example.co.jp，０" became "2009*@inner.example.co.jp,0"',
    ]
    assert result.has_errors is False


# --- CSV: encodings and structure -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (b"a@d.jp,b@e.jp\r\n", "auto", ("utf-8", False)),
        (BOM + b"a@d.jp,b@e.jp\r\n", "auto", ("utf-8", True)),
        (BOM + b"a@d.jp,b@e.jp\r\n", "utf-8", ("utf-8", True)),
        (b"a@d.jp,b@e.jp,\x8e\x77\r\n", "auto", ("cp932", False)),
        (b"a@d.jp,b@e.jp\r\n", "cp932", ("cp932", False)),
    ],
)
def test_parse_encoding_detection(data, encoding, expected):
    result = parse_alias_csv(data, encoding=encoding)

    assert (result.encoding, result.bom) == expected
    assert [r.alias.pattern for r in result.rows] == ["a@d.jp"]


def test_parse_auto_reports_lines_that_decode_in_neither_encoding():
    data = b"a@d.jp,b@e.jp\nc@d.jp,d@e.jp,\x81 broken\ne@d.jp,f@e.jp\n"

    result = parse_alias_csv(data)

    assert result.encoding == "cp932"
    assert codes(result) == [(2, "csv.E001")]
    assert result.findings[0].render() == "line 2 cannot be decoded as cp932"
    assert [r.line for r in result.rows] == [1, 3]


def test_parse_bad_byte_inside_a_quoted_multiline_cell_is_reported_once():
    data = b'a@d.jp,b@e.jp,"one\ntwo \xff"\nc@d.jp,d@e.jp\n'

    result = parse_alias_csv(data, encoding="utf-8")

    assert codes(result) == [(2, "csv.E001")]
    assert [r.line for r in result.rows] == [3]


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_parse_refuses_utf16(bom):
    data = bom + "a@d.jp,b@e.jp".encode("utf-16-le" if bom == codecs.BOM_UTF16_LE else "utf-16-be")

    result = parse_alias_csv(data)

    assert (result.encoding, codes(result), result.rows) == ("utf-16", [(1, "csv.E002")], ())


def test_parse_rejects_an_unknown_encoding_name():
    with pytest.raises(ValueError, match="encoding must be one of auto, utf-8, cp932"):
        parse_alias_csv(b"", encoding="latin-1")


@pytest.mark.parametrize(
    "header",
    [
        "alias,mapped_to,comment",
        "alias,mapped_to",
        " Alias , MAPPED_TO , Comment ",
        "エイリアス,実アドレス,コメント",
        "ｴｲﾘｱｽ,実アドレス",
        "alias,実アドレス,comment,,",
    ],
)
def test_parse_detects_the_header(header):
    result = parse_alias_csv(f"{header}\r\na@d.jp,b@e.jp\r\n".encode())

    assert (result.header_line, rows(result), result.findings) == (
        1,
        [(2, "a@d.jp", "b@e.jp", "", "")],
        (),
    )


def test_parse_header_after_blank_lines():
    result = parse_alias_csv(b"\r\n,,\r\nalias,mapped_to\r\na@d.jp,b@e.jp\r\n")

    assert (result.header_line, [r.line for r in result.rows]) == (3, [4])


def test_parse_refuses_a_header_in_the_wrong_order():
    result = parse_alias_csv(b"mapped_to,alias\r\na@d.jp,b@e.jp\r\n")

    assert codes(result) == [(1, "csv.E005")]
    assert [r.line for r in result.rows] == [2]


@pytest.mark.parametrize("data", [b"", b"alias,mapped_to,comment\r\n", b"\r\n,,\r\n \r\n"])
def test_parse_warns_about_a_file_without_rows(data):
    result = parse_alias_csv(data)

    assert (result.rows, codes(result), result.has_errors) == ((), [(None, "csv.W002")], False)


def test_parse_counts_old_mac_cr_line_endings():
    result = parse_alias_csv(b"alias,mapped_to\ra@d.jp,b@e.jp\rbad\r")

    assert [r.line for r in result.rows] == [2]
    assert codes(result) == [(3, "csv.E004")]


def test_parse_strips_address_cells_and_comments():
    result = parse_alias_csv(b"  a@d.jp ,\t b@e.jp , 0 ,  note  \r\n")

    assert codes(result) == [(1, "csv.E004")]
    result = parse_alias_csv(b'  a@d.jp ,"\t b@e.jp , 0 ",  note  \r\n')

    assert rows(result) == [(1, "a@d.jp", "b@e.jp", "0", "note")]


def test_parse_refuses_control_characters_in_comments_but_keeps_newlines_and_tabs():
    result = parse_alias_csv(b'a@d.jp,b@e.jp,"x\ty\nz"\r\nc@d.jp,d@e.jp,bad\x1bcomment\r\n')

    assert rows(result) == [(1, "a@d.jp", "b@e.jp", "", "x\ty\nz")]
    assert codes(result) == [(3, "csv.E009")]
    assert result.findings[0].render() == "bad\\x1bcomment contains the control character \\x1b"


def test_parse_rows_with_errors_are_left_out_but_all_are_reported():
    result = parse_alias_csv(b"bad,also-bad\r\n", local_domains=LOCAL)

    assert codes(result) == [(1, "csv.E006"), (1, "csv.E007")]
    assert result.rows == ()


# --- CSV: rendering -----------------------------------------------------------------------


def test_render_alias_csv_exact_text():
    aliases = [
        Alias("sales@example.co.jp", "team@inner.example.co.jp", "", "営業部"),
        Alias("2009*@example.co.jp", "2009*@inner.example.co.jp", "0", "2009年入社, 全員"),
        Alias("-ops@example.co.jp", "ops@inner.example.co.jp", "", "=SUM(A1)"),
        Alias("q@example.co.jp", "q@inner.example.co.jp", "1", 'say "hi"\nbye'),
    ]

    assert render_alias_csv(aliases) == (
        "alias,mapped_to,comment\r\n"
        "sales@example.co.jp,team@inner.example.co.jp,営業部\r\n"
        '2009*@example.co.jp,"2009*@inner.example.co.jp,0","2009年入社, 全員"\r\n'
        "'-ops@example.co.jp,ops@inner.example.co.jp,'=SUM(A1)\r\n"
        'q@example.co.jp,"q@inner.example.co.jp,1","say ""hi""\nbye"\r\n'
    )
    assert render_alias_csv(aliases[:1], header=False) == (
        "sales@example.co.jp,team@inner.example.co.jp,営業部\r\n"
    )


@pytest.mark.parametrize(
    ("cell", "guarded"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+81", "'+81"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("''+x", "'''+x"),
        ("'plain", "'plain"),
        ("'", "'"),
        ("plain", "plain"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_formula_neutralisation_round_trips(cell, guarded):
    assert neutralise_formula(cell) == guarded
    assert unneutralise_formula(guarded) == cell


LOCAL_ALPHABET = "abcXYZ019.-+=_'#$&/?^`{|}~"
atom = st.text(alphabet=LOCAL_ALPHABET, min_size=1, max_size=8)
domain = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(st.from_regex(r"[a-zA-Z0-9]{1,6}", fullmatch=True), min_size=1, max_size=2),
    st.from_regex(r"[a-zA-Z]{2,4}", fullmatch=True),
)
pattern_local = st.one_of(
    atom,
    st.just("*"),
    atom.map(lambda s: s + "*"),
    atom.map(lambda s: "*" + s),
    st.tuples(atom, atom).map(lambda t: t[0] + "*" + t[1]),
)
comment = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from("\n\r\t=+-@',\""),
    ),
    max_size=15,
).map(str.strip)


@st.composite
def valid_alias(draw):
    local = draw(pattern_local)
    target_local = draw(atom)
    if "*" in local and draw(st.booleans()):
        target_local = draw(st.sampled_from(["*", target_local + "*", "*" + target_local]))
    option = draw(st.sampled_from(["", "0", "1"]))
    text = draw(comment)
    if not option and text in {"0", "1"}:
        text = ""
    return Alias(f"{local}@{draw(domain)}", f"{target_local}@{draw(domain)}", option, text)


@settings(max_examples=300, deadline=None)
@given(
    aliases=st.lists(valid_alias(), max_size=12, unique_by=lambda a: a.key),
    header=st.booleans(),
    bom=st.booleans(),
)
def test_render_then_parse_round_trips(aliases, header, bom):
    data = (BOM if bom else b"") + render_alias_csv(aliases, header=header).encode()

    result = parse_alias_csv(data)

    assert [r.alias for r in result.rows] == aliases
    assert [f.code for f in result.findings] == ([] if aliases else ["csv.W002"])


def test_render_then_parse_line_numbers_follow_embedded_newlines():
    aliases = [Alias("a@d.jp", "b@e.jp", "", "one\ntwo"), Alias("c@d.jp", "d@e.jp")]

    result = parse_alias_csv(render_alias_csv(aliases).encode())

    assert result.rows == (CsvRow(2, aliases[0]), CsvRow(4, aliases[1]))


# --- registration script ------------------------------------------------------------------

SCRIPT_HEADER = (
    "#!/bin/sh\n"
    "# Generated by Relay Control Center: registers the aliases with the E-Post console tool.\n"
    "# Do not edit by hand; change the aliases in the control center and export again.\n"
    "set -eu\n"
)


def test_render_register_script_exact_text():
    aliases = [
        Alias("a1@testdomain.jp", "real@real.jp"),
        Alias("*@Domain.JP", "*@inner.domain.jp", "0"),
        Alias("$HOME@domain.jp", "x@inner.domain.jp"),
        Alias("o'brien@domain.jp", "ob@inner.domain.jp", "1"),
    ]

    assert render_register_script(aliases) == SCRIPT_HEADER + (
        "cd /usr/local/mta/bin\n"
        "./epstman mode=NA domname=testdomain.jp aliases=a1@testdomain.jp mappedto=real@real.jp\n"
        "./epstman mode=NA domname=domain.jp 'aliases=*@Domain.JP' 'mappedto=*@inner.domain.jp,0'\n"
        "./epstman mode=NA domname=domain.jp 'aliases=$HOME@domain.jp' mappedto=x@inner.domain.jp\n"
        "./epstman mode=NA domname=domain.jp 'aliases=o'\"'\"'brien@domain.jp' "
        "mappedto=ob@inner.domain.jp,1\n"
    )


def test_render_register_script_quotes_settings():
    script = render_register_script(
        [Alias("a@d.jp", "b@e.jp")],
        folder="/opt/E Post; rm -rf /",
        command="./epst man",
        mode_word="N A",
        newline="\r\n",
    )

    assert script == SCRIPT_HEADER.replace("\n", "\r\n") + (
        "cd '/opt/E Post; rm -rf /'\r\n"
        "'./epst man' 'mode=N A' domname=d.jp aliases=a@d.jp mappedto=b@e.jp\r\n"
    )


def test_render_register_script_without_aliases():
    assert render_register_script([]) == SCRIPT_HEADER + "cd /usr/local/mta/bin\n"


def test_register_script_passes_every_argument_verbatim_to_the_shell(tmp_path):
    folder = tmp_path / "mta bin; $x"
    folder.mkdir()
    (folder / "aliases=bait@d.jp").write_text("")
    tool = folder / "epstman"
    tool.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    tool.chmod(0o755)
    aliases = [Alias("*@d.jp", "*@inner.d.jp", "0"), Alias("$x`id`&{a,b}@d.jp", "t@e.jp")]
    script = tmp_path / "register.sh"
    script.write_text(render_register_script(aliases, folder=str(folder)))

    ran = subprocess.run(
        ["/bin/sh", str(script)], cwd=tmp_path, capture_output=True, text=True, check=True
    )

    assert ran.stdout.splitlines() == [
        "mode=NA",
        "domname=d.jp",
        "aliases=*@d.jp",
        "mappedto=*@inner.d.jp,0",
        "mode=NA",
        "domname=d.jp",
        "aliases=$x`id`&{a,b}@d.jp",
        "mappedto=t@e.jp",
    ]


def test_render_csv_table_neutralises_every_cell_and_ends_lines_with_crlf():
    rows = [("line", "message"), ("3", "=HYPERLINK(x)"), ("", '-1, "quoted"')]

    assert render_csv_table(rows) == (
        'line,message\r\n3,\'=HYPERLINK(x)\r\n,"\'-1, ""quoted"""\r\n'
    )


def test_partial_wildcard_star_matches_zero_characters() -> None:
    from aliases.aliasfile import AliasIndex

    index = AliasIndex.build([Alias("2009*@domain.jp", "2009*@inner.domain.jp")])
    match = index.lookup("2009@domain.jp")

    assert match is not None
    assert match.target == "2009@inner.domain.jp"
    assert index.lookup("*-sales@domain.jp") is None
    suffix = AliasIndex.build([Alias("*-sales@domain.jp", "sales@inner.domain.jp")])
    assert suffix.lookup("-sales@domain.jp") is not None
    assert Alias("2009*@domain.jp", "x@y.jp").rewrite("2009@domain.jp") == "x@y.jp"


# --- CSV: streaming, bounded findings, mixed encodings --------------------------------------


def test_parse_mixed_utf8_and_cp932_warns_on_the_line_that_decides():
    data = (
        "a@d.jp,b@e.jp,営業部\r\n".encode()
        + "c@d.jp,d@e.jp,総務\r\n".encode("cp932")
        + "e@d.jp,f@e.jp,開発\r\n".encode()
    )

    result = parse_alias_csv(data)

    assert result.encoding == "cp932"
    assert codes(result) == [(2, "csv.W003")]
    assert result.findings[0].render() == (
        "line 2 is not UTF-8, so the whole file is read as Shift_JIS (CP932), but line 1 is "
        "UTF-8: its Japanese text, and that of every other UTF-8 line, will be garbled"
    )
    assert [r.alias.comment for r in result.rows][1] == "総務"
    assert result.has_errors is False


def test_parse_pure_cp932_file_reads_without_a_warning():
    data = "a@d.jp,b@e.jp,営業部\r\nc@d.jp,d@e.jp,総務\r\n".encode("cp932")

    result = parse_alias_csv(data)

    assert (result.encoding, result.findings) == ("cp932", ())


def test_parse_mixed_encoding_far_apart_in_the_file_is_found():
    ascii_rows = b"".join(f"u{i}@d.jp,u{i}@e.jp\n".encode() for i in range(60_000))
    data = "a@d.jp,b@e.jp,営業部\n".encode() + ascii_rows + "c@d.jp,d@e.jp,総務\n".encode("cp932")

    result = parse_alias_csv(data)

    assert (result.encoding, codes(result)) == ("cp932", [(60_002, "csv.W003")])


def test_parse_reads_a_stream_and_counts_findings_past_the_limit():
    data = b"".join(f"bad{i},x@e.jp\n".encode() for i in range(50)) + b"ok@d.jp,x@e.jp\n"

    reader = aliasfile.AliasCsvReader(io.BytesIO(data), finding_limit=10)
    rows = list(reader)

    assert [row.line for row in rows] == [51]
    assert (reader.errors, len(reader.findings), reader.omitted) == (50, 10, 40)
    assert [f.line for f in reader.findings] == list(range(1, 11))
    assert (reader.rows_read, reader.refused_lines) == (1, 50)


def test_parse_keeps_errors_when_warnings_fill_the_limit():
    full_width = b"".join(f"\uff41{i}@d.jp,x@e.jp\n".encode() for i in range(20))
    data = full_width + b"bad,x@e.jp\n"

    result = parse_alias_csv(data, finding_limit=5)

    assert (result.warnings, result.errors, result.omitted) == (20, 1, 15)
    assert codes(result)[-1] == (21, "csv.E006")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'a@d.jp,b@e.jp\n"c@d.jp,d@e.jp\n' + b"e@d.jp,f@e.jp\n" * 20_000, [(2, "csv.E003")]),
        (b"a@d.jp,b@e.jp\r" * 3 + b"\r\nc@d.jp,d@e.jp", []),
        (b"\x00" * 300_000, [(1, "csv.E003")]),
        (b"a@d.jp,b@e.jp,x\x00y\n", [(1, "csv.E009")]),
    ],
    ids=["unclosed quote", "CR only", "binary", "NUL"],
)
def test_parse_hostile_input_ends_with_findings_not_hangs(data, expected):
    started = time.process_time()

    result = parse_alias_csv(data)

    assert time.process_time() - started < 5
    assert codes(result)[: len(expected)] == expected


def test_parse_splits_lines_across_read_blocks(monkeypatch):
    monkeypatch.setattr(aliasfile, "_BLOCK", 7)
    data = b'a@d.jp,b@e.jp\r\nc@d.jp,"d@e.jp,0"\rx@d.jp,y@e.jp,"two\r\nlines"\nz@d.jp,w@e.jp'

    result = parse_alias_csv(data)

    assert [(r.line, r.alias.pattern, r.alias.comment) for r in result.rows] == [
        (1, "a@d.jp", ""),
        (2, "c@d.jp", ""),
        (3, "x@d.jp", "two\r\nlines"),
        (5, "z@d.jp", ""),
    ]


_cell = st.text(alphabet="ab9.*-_+'=@, \t\"", max_size=12)


@settings(max_examples=400)
@given(
    local=_cell,
    domain=st.sampled_from(["d.jp", "D.JP", "d.123", "-d.jp", "d", "x." * 130 + "jp"]),
    target=_cell,
    option=st.sampled_from(["", ",0", " , 1", ",2", ","]),
    comment=st.sampled_from([None, "", "営業", "0", "'=x", " x ", "a\tb"]),
)
def test_fast_row_accepts_only_what_the_full_checks_accept(local, domain, target, option, comment):
    cells = [f"{local}@{domain}", f"{target}@d.jp{option}"]
    if comment is not None:
        cells.append(comment)
    fast_reader = aliasfile.AliasCsvReader(io.BytesIO(b""), local_domains=LOCAL)
    slow_reader = aliasfile.AliasCsvReader(io.BytesIO(b""), local_domains=LOCAL)

    fast = fast_reader._fast_row(7, list(cells))
    slow = slow_reader._row(7, list(cells))

    if fast is not None:
        assert slow is not None
        assert (fast, fast.key, fast.domain) == (slow, slow.key, slow.domain)
        assert slow_reader.findings == []


@settings(max_examples=300)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["a", "B", "2009*", "*", "-x", "'y", "a b", "ａ", "x" * 65, ""]),
            st.sampled_from(["d.jp", "example.co.jp", "D.JP", "d.123", "other.jp"]),
            st.sampled_from(["t@e.jp", "*@e.jp", "t@e.jp,0", '"t@e.jp,1"', "t@e.99", "t"]),
            st.sampled_from(["", ",", ",c", ", 営業 ", ",0", ",'=x", ',"q"', ",a,b", ",\t"]),
            st.sampled_from(["\r\n", "\n", "\r"]),
        ),
        max_size=8,
    )
)
def test_line_fast_path_reads_every_file_as_the_csv_module_does(lines):
    data = "".join(f"{a}@{d},{t}{c}{end}" for a, d, t, c, end in lines).encode()

    fast = parse_alias_csv(data, local_domains=LOCAL)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(aliasfile, "_FAST_LINE", re.compile(r"(?!)"))
        slow = parse_alias_csv(data, local_domains=LOCAL)

    assert (fast.rows, fast.findings, fast.header_line) == (
        slow.rows,
        slow.findings,
        slow.header_line,
    )


@settings(max_examples=60)
@given(
    patterns=st.lists(
        st.tuples(
            st.text(alphabet="ab-", max_size=3),
            st.sampled_from(["*", ""]),
            st.text(alphabet="ab-", max_size=3),
        ),
        min_size=1,
        max_size=150,
    )
)
def test_indexed_shadowing_finds_the_wildcard_a_scan_finds(patterns):
    aliases = [
        Alias(f"{head}{star}{tail}@d.jp" if head + star + tail else "x@d.jp", "t@e.jp")
        for head, star, tail in patterns
    ]
    fillers = [Alias(f"{i}*z@d.jp", "t@e.jp") for i in range(70)]  # past the plain scan
    index = AliasIndex.build(fillers + aliases)

    for position in range(len(fillers), len(fillers) + len(aliases)):
        own = aliasfile._Matcher.of(index.aliases[position], position)
        expected = None
        if own is not None:
            for matcher in index._wildcards["d.jp"]:
                if matcher.position >= position:
                    break
                if matcher.covers(own):
                    expected = matcher.position
                    break
        assert index.shadowing(position) == expected


def test_shadowing_among_30000_wildcards_is_near_linear():
    aliases = [Alias(f"u{i:05d}*@d.jp", "*@e.jp") for i in range(30_000)]
    index = AliasIndex.build([*aliases, Alias("u00042x@d.jp", "t@e.jp")])
    started = time.process_time()

    found = [index.shadowing(position) for position in range(len(index))]

    assert time.process_time() - started < 10
    assert found[-1] == 42
    assert found[:-1] == [None] * 30_000


@settings(max_examples=150)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["a", "B", "2009*", "-x", "a b", ""]),
            st.sampled_from(["d.jp", "example.co.jp", "other.jp"]),
            st.sampled_from(["t@e.jp", "*@e.jp", '"t@e.jp,1"', "t"]),
            st.sampled_from(["", ",c", ", 営業 ", ',"q\r\nr"', ',"unclosed']),
            st.sampled_from(["\r\n", "\n", "\r"]),
        ),
        max_size=8,
    ),
    block=st.integers(min_value=1, max_value=40),
)
def test_line_fast_path_reads_across_block_boundaries_as_the_csv_module_does(lines, block):
    data = "".join(f"{a}@{d},{t}{c}{end}" for a, d, t, c, end in lines).encode()

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(aliasfile, "_BLOCK", block)
        fast = parse_alias_csv(data, local_domains=LOCAL)
        patched.setattr(aliasfile, "_FAST_LINE", re.compile(r"(?!)"))
        slow = parse_alias_csv(data, local_domains=LOCAL)

    assert (fast.rows, fast.findings, fast.header_line) == (
        slow.rows,
        slow.findings,
        slow.header_line,
    )


def test_records_are_the_rows_as_tuples():
    data = b'alias,mapped_to,comment\r\na@d.jp,"b@e.jp,1",x\r\nc@d.jp,d@e.jp\r\n'

    records = list(aliasfile.AliasCsvReader(io.BytesIO(data)).records())

    assert records == [
        (2, "a@d.jp", "b@e.jp", "1", "x", "a@d.jp", "d.jp"),
        (3, "c@d.jp", "d@e.jp", "", "", "c@d.jp", "d.jp"),
    ]
