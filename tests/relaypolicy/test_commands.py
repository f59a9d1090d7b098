from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.services import relay_check

pytestmark = pytest.mark.django_db

FILE = (
    b"#<> default\r\n#blank false\r\n'\x8bx\x8e\xd0LAN\r\n"  # a CP932 comment
    b"192.168.1.0/24 default\r\n10.0.0.5  true\r\n\r\n*.*.*.* norelay\r\n"
)


def _import(tmp_path: Path, *args: str, data: bytes = FILE) -> dict[str, object]:
    path = tmp_path / "effect.dat"
    path.write_bytes(data)
    out = tmp_path / "out.json"
    with out.open("w") as stream:
        call_command("import_effect", str(path), "--json", *args, stdout=stream)
    return dict(json.loads(out.read_text()))


def _refused(tmp_path: Path, data: bytes) -> dict[str, object]:
    with pytest.raises(SystemExit) as caught:
        _import(tmp_path, data=data)
    assert caught.value.code == 1
    return dict(json.loads((tmp_path / "out.json").read_text()))


def test_import_keeps_every_line_in_order_and_reports_findings(tmp_path: Path) -> None:
    report = _import(tmp_path)
    assert report["rows"] == 3
    assert report["rules"] == 2
    assert report["terminator"] == "*.*.*.* norelay"
    assert report["written"] is True
    assert report["policy_risks"] == []
    assert [(f["code"], f["line"]) for f in report["findings"]] == [  # type: ignore[attr-defined]
        ("relay.W019", 3),
        ("relay.W002", 5),
        ("relay.I002", 3),
    ]
    assert list(RelayRule.objects.values_list("kind", flat=True)) == ["rule", "rule", "blank"]


def test_import_refuses_a_file_with_a_malformed_line_and_writes_nothing(tmp_path: Path) -> None:
    report = _refused(tmp_path, FILE.replace(b"\r\n\r\n", b"\r\nbroken line\r\n"))
    assert report["written"] is False
    assert ("relay.E001", 6) in [(f["code"], f["line"]) for f in report["findings"]]  # type: ignore[attr-defined]
    assert RelayRule.objects.count() == 0
    assert RelayPolicy.load().version == 0


def test_import_stores_a_file_whose_only_errors_are_policy_risks(tmp_path: Path) -> None:
    data = b"#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* true\n"
    report = _import(tmp_path, data=data)
    assert report["written"] is True
    risks: list[dict[str, object]] = report["policy_risks"]  # type: ignore[assignment]
    assert [(f["code"], f["line"]) for f in risks] == [("relay.E011", 4), ("relay.E013", 4)]
    assert list(RelayRule.objects.values_list("pattern", "modifier")) == [
        ("192.168.1.0/24", "default"),
        ("*.*.*.*", "true"),
    ]
    out = StringIO()
    with pytest.raises(SystemExit) as caught:
        call_command("export_config", "--dest", str(tmp_path / "export"), stdout=out, stderr=out)
    assert caught.value.code == 1
    assert not (tmp_path / "export" / "effect.dat").exists()


def test_export_without_edits_writes_the_same_rule_lines(tmp_path: Path) -> None:
    _import(tmp_path)
    rendered = relay_check().rendered.lines
    original = FILE.decode("cp932").split("\r\n")[:-1]
    assert rendered[1:] == tuple(original)


def test_import_refuses_to_overwrite_rules_without_replace(tmp_path: Path) -> None:
    _import(tmp_path)
    with pytest.raises(CommandError) as caught:
        _import(tmp_path, data=b"#<> default\n")
    assert caught.value.returncode == 2
    assert str(caught.value) == "relay rules already exist: use --replace to replace them"
    _import(tmp_path, "--replace", data=b"#<> default\n")
    assert RelayRule.objects.count() == 0
    assert (RelayPolicy.load().header_null, RelayPolicy.load().terminator) == ("#<> default", "")


def test_import_of_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"^cannot read .*nothing\.dat: No such file"):
        call_command("import_effect", str(tmp_path / "nothing.dat"))


def test_lint_policy_lists_findings_with_lines_and_exits_1_on_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import(tmp_path, data=FILE.replace(b"10.0.0.5  true", b"*@example.co.jp true"))
    with pytest.raises(SystemExit) as caught:
        call_command("lint_policy", "--json")
    assert caught.value.code == 1
    findings = json.loads(capsys.readouterr().out)
    assert findings[0] == {
        "level": "error",
        "code": "relay.E012",
        "message": findings[0]["message"],
        "line": 6,
        "object": "effect.dat",
        "hint": findings[0]["hint"],
    }


def test_lint_policy_on_the_fresh_database_has_no_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call_command("lint_policy", "--json")
    assert [f["level"] for f in json.loads(capsys.readouterr().out)] == []


@pytest.mark.parametrize(
    ("data", "code", "line"),
    [
        (b"#<> default\r192.168.1.0/24 default\r*.*.*.* norelay\r", "relay.E041", 1),
        (b"#<> default\n192.168.1.0/24 default\r*.*.*.* true\n", "relay.E040", 2),
        (bytes(range(256)) * 4, "relay.E042", 1),
        ("#<> default\r\n*.*.*.* norelay\r\n".encode("utf-16"), "relay.E042", 1),
        (b"#<> default\n10.0.0.1\x00 default\n", "relay.E040", 2),
        (b"#<> default\x0b*.*.*.* true\n", "relay.E040", 1),
        (b"'" + b"x" * 300 + b"\n", "relay.E009", 1),
        (b"10.0.0.1 " + b"m" * 33 + b"\n", "relay.E044", 1),
    ],
    ids=["cr-only", "cr-mid-line", "binary", "utf-16", "nul", "vt", "long-line", "long-modifier"],
)
def test_bad_input_is_a_finding_on_its_line_exit_1_and_nothing_written(
    tmp_path: Path, data: bytes, code: str, line: int
) -> None:
    report = _refused(tmp_path, data)
    assert (code, line) in [(f["code"], f["line"]) for f in report["findings"]]  # type: ignore[attr-defined]
    assert (RelayRule.objects.count(), RelayPolicy.load().version) == (0, 0)


def test_an_oversized_input_stops_with_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "big.dat"
    path.write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(CommandError) as caught:
        call_command("import_effect", str(path))
    assert caught.value.returncode == 2
    assert str(caught.value) == f"{path} is larger than 1048576 bytes: not an effect.dat"


def test_text_output_names_the_policy_risks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "effect.dat"
    path.write_bytes(b"#<> default\n#blank false\n192.168.1.0/24 default\n")
    call_command("import_effect", str(path))
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "imported 1 row(s), 1 rule(s); terminator: none"
    assert captured.err.splitlines() == [
        "imported with 1 policy risk(s): this is the server's current configuration; "
        "export_config refuses until they are fixed"
    ]
