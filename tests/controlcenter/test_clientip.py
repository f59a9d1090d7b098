from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from controlcenter.clientip import client_ip


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("192.168.1.20", "", [], "192.168.1.20"),
        ("192.168.1.20", "203.0.113.9", [], "192.168.1.20"),  # not a trusted proxy: ignored
        ("127.0.0.1", "203.0.113.9", ["127.0.0.1"], "203.0.113.9"),
        ("127.0.0.1", "198.51.100.1, 203.0.113.9", ["127.0.0.1"], "203.0.113.9"),  # right-most
        ("127.0.0.1", "203.0.113.9, 10.0.0.2", ["127.0.0.1", "10.0.0.2"], "203.0.113.9"),
        ("127.0.0.1", "not-an-ip", ["127.0.0.1"], "127.0.0.1"),
        ("127.0.0.1", "", ["127.0.0.1"], "127.0.0.1"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(
    settings: Any, peer: str, forwarded: str, trusted: list[str], expected: str
) -> None:
    settings.CC_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
