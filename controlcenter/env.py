"""Typed readers for the environment variables that configure the control center.

Each reader fails loudly with ``ImproperlyConfigured`` naming the variable, so a
typo in a deployment never falls back to an unsafe default.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off."
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ImproperlyConfigured(
            f"{name}={raw!r} has an empty entry: separate values with single commas."
        )
    return items


def env_origins(name: str, default: list[str]) -> list[str]:
    origins = env_list(name, default)
    for origin in origins:
        if not origin.startswith(("http://", "https://")):
            raise ImproperlyConfigured(
                f"{name} entry {origin!r} must start with http:// or https://."
            )
    return origins


def env_path(name: str, default: Path, *, base: Path) -> Path:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.strip():
        raise ImproperlyConfigured(f"{name} is set but empty.")
    path = Path(raw.strip()).expanduser()
    return path if path.is_absolute() else base / path


def secret_key(*, debug: bool, key_file: Path) -> str:
    """``SECRET_KEY`` from the environment, else the key kept in ``key_file``.

    Development (``DEBUG=1``, as ``make run``) creates the file; afterwards every command run
    from another terminal finds it too, whatever its DEBUG. The file is private (0600) and as
    random as a key in the environment, so using it is as safe; without either, DEBUG off is an
    error.
    """
    raw = os.environ.get("SECRET_KEY")
    if raw is not None:
        if len(raw) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
        return raw
    if not debug and not key_file.exists():
        raise ImproperlyConfigured(
            f"SECRET_KEY is required when DEBUG is off and {key_file} does not exist: "
            "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(50))'` "
            "(or run `make run` once, which keeps a key in that file)."
        )
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


CACHE_TABLE = "rcc_cache"
_CACHE_BACKENDS = {
    "redis": "django.core.cache.backends.redis.RedisCache",
    "rediss": "django.core.cache.backends.redis.RedisCache",
    "memcached": "django.core.cache.backends.memcached.PyMemcacheCache",
}


def env_cache(name: str) -> dict[str, object]:
    """The shared cache: the database (table ``rcc_cache``) unless ``name`` holds a
    ``redis://``/``rediss://`` URL or ``memcached://host:port[,host:port]``.

    Every gunicorn worker and command must see the same cache, so a per-process backend
    (locmem) is refused.
    """
    raw = os.environ.get(name, "").strip()
    if not raw or raw == "db":
        return {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": CACHE_TABLE,
            # Values are a few hundred KB; old policy states are culled first.
            "OPTIONS": {"MAX_ENTRIES": 200, "CULL_FREQUENCY": 2},
        }
    scheme, _sep, rest = raw.partition("://")
    backend = _CACHE_BACKENDS.get(scheme.lower())
    if backend is None or not rest:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a cache URL: use redis://host:6379/0, "
            "memcached://host:11211 or leave it empty for the database cache."
        )
    if scheme.lower() == "memcached":
        return {"BACKEND": backend, "LOCATION": rest.split(",")}
    return {"BACKEND": backend, "LOCATION": raw}
