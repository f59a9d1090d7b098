from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CC_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"))
    }
    environment.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghij",
            "ALLOWED_HOSTS": "cc.example.co.jp",
            "CC_VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "controlcenter.settings",
        }
        | extra
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_with_production_variables_reports_nothing(tmp_path: Path) -> None:
    result = _check(tmp_path)
    assert result.stderr == ""
    assert result.stdout == "System check identified no issues (0 silenced).\n"
    assert result.returncode == 0


def test_opting_out_of_https_redirect_is_reported(tmp_path: Path) -> None:
    result = _check(tmp_path, CC_SSL_REDIRECT="0")
    assert "security.W008" in result.stderr
    assert result.returncode == 1


def test_missing_secret_key_fails_loudly(tmp_path: Path) -> None:
    result = _check(tmp_path, SECRET_KEY="")
    assert result.stderr == (
        "manage.py: configuration error: SECRET_KEY must be at least 32 characters long.\n"
    )
    assert result.returncode == 2  # a configuration error is bad input: one line, exit 2
