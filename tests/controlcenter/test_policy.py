from __future__ import annotations

import pytest

from controlcenter.services import lan_probe_ip
from relaypolicy.effectfile import parse_effect


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("192.168.1.0/24 default", "192.168.1.1"),
        ("192.168.5.7 default", "192.168.5.7"),
        ("192.168.*.* default", "192.168.1.1"),
        ("10.* true", "10.1.1.1"),
        ("192.168.1.0/24 norelay\n172.16.0.0/12 default", "172.16.0.1"),
        ("8.8.8.0/24 default", None),  # only private networks are taken as the LAN
        ("abc.co.jp default", None),
        ("", None),
    ],
)
def test_the_self_tests_lan_client_comes_from_the_first_relaying_private_network(
    rules: str, expected: str | None
) -> None:
    effect = parse_effect(f"#<> default\n#blank false\n{rules}\n*.*.*.* norelay\n")
    assert lan_probe_ip(effect) == expected


@pytest.mark.django_db
def test_lint_refuses_a_stored_header_with_a_control_character() -> None:
    from django.core.management import call_command

    from controlcenter.services import policy_lint
    from relaypolicy.models import RelayPolicy

    RelayPolicy.objects.filter(pk=1).update(header_null="#<> default\x0b*.*.*.* true")

    # The stored-field check names the character (and the rendered line no longer holds it).
    assert {f.line for f in policy_lint() if f.is_error and f.obj == "effect.dat"} == {2}
    with pytest.raises(SystemExit) as exit_:
        call_command("lint_policy")
    assert exit_.value.code == 1


@pytest.mark.django_db
def test_dashboard_summary_counts_the_declared_outside_sites() -> None:
    from controlcenter.services import dashboard_status
    from relaypolicy import services
    from relaypolicy.table import Row, RowKind, Table

    rows = (
        Row(RowKind.RULE, "192.168.1.0/24", "default"),
        Row(RowKind.RULE, "203.0.113.8/29", "default", outside_site=True, site_note="doc net"),
        Row(RowKind.RULE, "8.8.4.0/30", "true", outside_site=True, site_note="DC"),
    )
    services.relay_table_save(table=Table(rows=rows), version=0)

    status = dashboard_status()

    assert status["outside_sites"] == {
        "sites": [{"line": 6, "text": "8.8.4.0/30 true", "count": 4, "ranges": "8.8.4.0/30"}],
        "count": 4,
    }
    assert status["open_relay"] == []
