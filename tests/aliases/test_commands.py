from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from aliases.models import Alias, LocalDomain
from controlcenter.models import ServerSettings
from relaypolicy.models import RelayPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def domain() -> LocalDomain:
    ServerSettings.objects.update_or_create(pk=1, defaults={"licence": "unlimited"})
    return LocalDomain.objects.create(name="example.co.jp")


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    try:
        with translation.override("en"):
            call_command("import_aliases", *args, "--json")
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, json.loads(capsys.readouterr().out)


def test_import_json_report_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.csv"
    path.write_text("alias,mapped_to\na@example.co.jp,a@inner.jp\nＢ@example.co.jp,b@inner.jp\n")
    code, report = run(str(path), capsys=capsys)
    assert code == 0
    assert report == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "errors": [],
        "warnings": [
            {
                "line": 3,
                "code": "csv.W001",
                "message": "full-width characters in alias converted to ASCII: "
                '"Ｂ@example.co.jp" became "B@example.co.jp"',
            }
        ],
        "policy_risks": [],
        "domains_added": [],
        "error_count": 0,
        "warning_count": 1,
        "findings_omitted": 0,
        "blocking_count": 0,
        "dry_run": False,
        "written": True,
        "encoding": "utf-8",
    }
    assert Alias.objects.count() == 2


def test_errors_exit_1_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("a@example.co.jp,a@inner.jp\nx@other.jp,x@inner.jp\n".encode("cp932"))
    code, report = run(str(path), "--encoding", "cp932", capsys=capsys)
    assert code == 1
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(2, "csv.E010")]
    assert Alias.objects.count() == 0


def test_add_domains_lists_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x@other.jp,x@inner.jp\n")
    code, report = run(str(path), "--add-domains", capsys=capsys)
    assert (code, report["domains_added"], report["created"]) == (0, ["other.jp"], 1)


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a@example.co.jp,a@inner.jp\n")
    code, report = run(str(path), "--dry-run", capsys=capsys)
    assert (code, report["created"], report["written"], Alias.objects.count()) == (0, 1, False, 0)


def test_missing_file_is_a_one_line_error_with_status_2(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as error:
        call_command("import_aliases", str(tmp_path / "missing.csv"))
    assert error.value.returncode == 2
    assert "\n" not in str(error.value)


def test_bad_encoding_option_is_status_2(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as error:
        call_command("import_aliases", str(tmp_path / "a.csv"), "--encoding", "latin1")
    assert error.value.returncode == 2


def test_endless_input_is_refused_at_the_upload_limit(settings: Any) -> None:
    settings.CC_UPLOAD_MAX_BYTES = 1024 * 1024
    with pytest.raises(CommandError) as error, translation.override("en"):
        call_command("import_aliases", "/dev/zero")
    assert error.value.returncode == 2
    assert str(error.value) == (
        "/dev/zero is larger than 1.0\xa0MB, the largest input accepted (CC_UPLOAD_MAX_MB)"
    )
    assert Alias.objects.count() == 0


def test_file_one_byte_over_the_limit_is_refused_and_at_the_limit_read(
    tmp_path: Path, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    row = b"a@example.co.jp,a@inner.jp\n"
    path = tmp_path / "a.csv"
    path.write_bytes(row)
    settings.CC_UPLOAD_MAX_BYTES = len(row)
    code, report = run(str(path), "--dry-run", capsys=capsys)
    assert (code, report["created"]) == (0, 1)
    settings.CC_UPLOAD_MAX_BYTES = len(row) - 1
    with pytest.raises(CommandError) as error:
        call_command("import_aliases", str(path))
    assert error.value.returncode == 2


def test_a_wildcard_without_norelay_is_imported_with_exit_0_and_listed_as_a_policy_risk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The seed document's configuration: *@example.co.jp -> *@example.co.jp, no final norelay.
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    path = tmp_path / "a.csv"
    path.write_text("*@example.co.jp,*@example.co.jp\n")
    code, report = run(str(path), capsys=capsys)
    assert (code, report["written"], report["created"]) == (0, True, 1)
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(1, "alias.E006")]
    assert [(e["line"], e["code"]) for e in report["policy_risks"]] == [(1, "alias.E006")]
    assert list(Alias.objects.values_list("pattern", flat=True)) == ["*@example.co.jp"]


def test_the_text_output_says_the_import_has_policy_risks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    path = tmp_path / "a.csv"
    path.write_text("*@example.co.jp,*@example.co.jp\n")
    with translation.override("en"):
        call_command("import_aliases", str(path))
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "imported with 1 policy risk(s): this is the server's current configuration; "
        "export_config refuses until they are fixed"
    )


def test_a_300_character_comment_is_refused_on_its_line_on_every_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a@example.co.jp,a@inner.jp," + "c" * 300 + "\n")
    code, report = run(str(path), capsys=capsys)
    assert code == 1
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(1, "csv.E040")]
    assert Alias.objects.count() == 0
