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
