from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from controlcenter import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("yes", True), ("ON", True), ("0", False), ("false", False), ("", False)],
)
def test_env_bool_reads_common_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("CC_FLAG", raw)
    assert env.env_bool("CC_FLAG", not expected) is expected


@pytest.mark.parametrize(
    ("reader", "raw", "message"),
    [
        (lambda: env.env_bool("CC_X", False), "maybe", "CC_X='maybe' is not a boolean"),
        (lambda: env.env_int("CC_X", 1), "ten", "CC_X='ten' is not a whole number."),
        (lambda: env.env_int("CC_X", 1, minimum=1), "0", "CC_X='0' must be at least 1."),
        (lambda: env.env_list("CC_X", []), "a,,b", "CC_X='a,,b' has an empty entry"),
        (
            lambda: env.env_origins("CC_X", []),
            "cc.example.jp",
            "CC_X entry 'cc.example.jp' must start with http:// or https://.",
        ),
        (lambda: env.env_path("CC_X", Path("/x"), base=Path("/")), " ", "CC_X is set but empty."),
    ],
)
def test_readers_reject_bad_values_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, reader: object, raw: str, message: str
) -> None:
    monkeypatch.setenv("CC_X", raw)
    with pytest.raises(ImproperlyConfigured) as caught:
        reader()  # type: ignore[operator]
    assert str(caught.value).startswith(message)


def test_env_list_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_HOSTS", "cc.example.jp, 192.168.1.10")
    assert env.env_list("CC_HOSTS", []) == ["cc.example.jp", "192.168.1.10"]
    monkeypatch.delenv("CC_HOSTS")
    assert env.env_list("CC_HOSTS", ["localhost"]) == ["localhost"]


def test_relative_path_is_taken_from_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_DIR", "var/out")
    assert env.env_path("CC_DIR", Path("/x"), base=Path("/srv/cc")) == Path("/srv/cc/var/out")


def test_secret_key_is_required_without_debug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY is required when DEBUG is off"):
        env.secret_key(debug=False, key_file=tmp_path / "key")
    assert not (tmp_path / "key").exists()


def test_short_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY must be at least 32"):
        env.secret_key(debug=True, key_file=tmp_path / "key")


def test_development_key_is_generated_once_and_kept_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = env.secret_key(debug=True, key_file=tmp_path / "var" / "secret_key")
    second = env.secret_key(debug=True, key_file=tmp_path / "var" / "secret_key")
    assert first == second
    assert len(first) >= 50
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_key_file_left_by_make_run_serves_commands_without_debug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    made = env.secret_key(debug=True, key_file=tmp_path / "secret_key")  # make run (DEBUG=1)
    assert env.secret_key(debug=False, key_file=tmp_path / "secret_key") == made


def _manage(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.update(CC_VAR_DIR=str(tmp_path), **environ)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=ROOT,
        check=False,
    )


def test_readme_commands_work_in_another_terminal_after_make_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    env.secret_key(debug=True, key_file=tmp_path / "secret_key")  # what `make run` leaves
    result = _manage(tmp_path, "check")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {},
            "manage.py: configuration error: SECRET_KEY is required when DEBUG is off and ",
        ),
        ({"DEBUG": "maybe"}, "manage.py: configuration error: DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "1", "CC_UPLOAD_MAX_MB": "x"}, "manage.py: configuration error: CC_UPLOAD_"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(
    tmp_path: Path, environ: dict[str, str], line: str
) -> None:
    result = _manage(tmp_path, "check", **environ)
    assert result.returncode == 2
    assert result.stderr.startswith(line)
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_cache_is_the_database_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC_CACHE", raising=False)
    assert env.env_cache("CC_CACHE") == {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "rcc_cache",
        "OPTIONS": {"MAX_ENTRIES": 200, "CULL_FREQUENCY": 2},
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "redis://127.0.0.1:6379/0",
            {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/0",
            },
        ),
        (
            "memcached://10.0.0.5:11211,10.0.0.6:11211",
            {
                "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                "LOCATION": ["10.0.0.5:11211", "10.0.0.6:11211"],
            },
        ),
    ],
)
def test_cache_url_picks_a_shared_backend(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: dict[str, object]
) -> None:
    monkeypatch.setenv("CC_CACHE", raw)
    assert env.env_cache("CC_CACHE") == expected


@pytest.mark.parametrize("raw", ["locmem://", "redis:/x", "file:///tmp/cache"])
def test_cache_url_refuses_anything_else(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CC_CACHE", raw)
    with pytest.raises(ImproperlyConfigured, match=r"^CC_CACHE=.* is not a cache URL"):
        env.env_cache("CC_CACHE")
