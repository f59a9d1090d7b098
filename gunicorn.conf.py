"""gunicorn settings for `make serve`; every value can be overridden by the environment.

Only the documented setting ``CC_BEHIND_TLS_PROXY`` may make a request secure (Django's
``SECURE_PROXY_SSL_HEADER``). gunicorn would otherwise mark a request https itself when
``X-Forwarded-Proto`` comes from an address in ``forwarded_allow_ips`` (127.0.0.1 by default:
any local process), so it trusts forwarded headers only behind the TLS proxy, and only from
``CC_TRUSTED_PROXIES``.
"""

import os

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(name: str) -> bool:
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise SystemExit(
            f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off."
        )
    return value in _TRUE


bind = os.environ.get("CC_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CC_WORKERS", "3"))
threads = int(os.environ.get("CC_THREADS", "2"))
timeout = int(os.environ.get("CC_TIMEOUT", "120"))  # a 100,000-row CSV import takes seconds
accesslog = "-"
errorlog = "-"

behind_tls_proxy = _env_bool("CC_BEHIND_TLS_PROXY")
secure_scheme_headers: dict[str, str]
if behind_tls_proxy:
    forwarded_allow_ips = os.environ.get("CC_TRUSTED_PROXIES", "127.0.0.1")
    secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
else:
    forwarded_allow_ips = ""
    secure_scheme_headers = {}
