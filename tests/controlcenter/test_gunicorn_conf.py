"""gunicorn.conf.py: only CC_BEHIND_TLS_PROXY lets a forwarded header make a request https."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader
from gunicorn.http.wsgi import create

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
FORGED = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
    b"X-Forwarded-Ssl: on\r\nX-Forwarded-Protocol: ssl\r\n\r\n"
)


def _scheme(monkeypatch: pytest.MonkeyPatch, peer: str, **env: str) -> str:
    for name in ("CC_BEHIND_TLS_PROXY", "CC_TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    values = runpy.run_path(str(CONF))
    config = Config()
    for name, value in values.items():
        if name in config.settings:
            config.set(name, value)
    request = Request(config, IterUnreader([FORGED]), (peer, 40000))
    _response, environ = create(request, None, (peer, 40000), ("127.0.0.1", 8000), config)
    return str(environ["wsgi.url_scheme"])


def test_forwarded_proto_from_loopback_is_ignored_without_the_tls_proxy_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _scheme(monkeypatch, "127.0.0.1") == "http"


def test_forwarded_proto_from_a_listed_proxy_counts_behind_the_tls_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _scheme(monkeypatch, "127.0.0.1", CC_BEHIND_TLS_PROXY="1") == "https"
    assert (
        _scheme(monkeypatch, "127.0.0.1", CC_BEHIND_TLS_PROXY="1", CC_TRUSTED_PROXIES="10.0.0.5")
        == "http"
    )
    assert (
        _scheme(monkeypatch, "10.0.0.5", CC_BEHIND_TLS_PROXY="1", CC_TRUSTED_PROXIES="10.0.0.5")
        == "https"
    )


def test_a_bad_boolean_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="CC_BEHIND_TLS_PROXY='maybe' is not a boolean"):
        _scheme(monkeypatch, "127.0.0.1", CC_BEHIND_TLS_PROXY="maybe")
