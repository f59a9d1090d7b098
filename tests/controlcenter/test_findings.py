from __future__ import annotations

from controlcenter.findings import Finding, Level, has_errors, make, sort_findings


def test_make_fills_the_template_and_keeps_params_for_translation() -> None:
    finding = make(
        Level.ERROR, "relay.E011", "%(pattern)s is trusted", line=5, hint="use %(fix)s",
        pattern="*.*.*.*", fix="norelay",
    )  # fmt: skip
    assert finding.render() == "*.*.*.* is trusted"
    assert finding.render(lambda text: text.replace("is trusted", "は信頼されています")) == (
        "*.*.*.* は信頼されています"
    )
    assert finding.render_hint() == "use norelay"
    assert finding.as_dict() == {
        "level": "error",
        "code": "relay.E011",
        "message": "*.*.*.* is trusted",
        "line": 5,
        "object": "",
        "hint": "use norelay",
    }


def test_a_message_without_params_keeps_its_percent_signs() -> None:
    assert make(Level.INFO, "x.I001", "100% sure").render() == "100% sure"


def test_sort_puts_errors_first_then_by_line_with_lineless_last() -> None:
    findings = [
        make(Level.WARNING, "b.W001", "w", line=2),
        make(Level.ERROR, "a.E002", "e"),
        make(Level.ERROR, "a.E001", "e", line=9),
        make(Level.INFO, "c.I001", "i", line=1),
    ]
    assert [f.code for f in sort_findings(findings)] == ["a.E001", "a.E002", "b.W001", "c.I001"]


def test_has_errors_looks_at_levels_only() -> None:
    warning = Finding(Level.WARNING, "x.W001", "m")
    assert (has_errors([warning]), has_errors([warning, Finding(Level.ERROR, "x.E001", "m")])) == (
        False,
        True,
    )


def test_policy_risks_are_the_open_relay_and_licence_errors() -> None:
    from controlcenter.findings import POLICY_RISK_CODES, blocking_errors, is_policy_risk

    assert {"relay.E011", "relay.E012", "relay.E013", "alias.E006", "alias.E007"} <= (
        POLICY_RISK_CODES
    )
    risk = make(Level.ERROR, "alias.E006", "wildcard")
    malformed = make(Level.ERROR, "relay.E001", "bad line", line=3)
    as_warning = make(Level.WARNING, "relay.E011", "not an error")
    assert [is_policy_risk(f) for f in (risk, malformed, as_warning)] == [True, False, False]
    assert blocking_errors([risk, malformed, as_warning]) == [malformed]
