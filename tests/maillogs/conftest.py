from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from aliases import services as alias_services
from relaypolicy import services as relay_services
from tests.bench.loggen import INNER, Truth, acceptlog_lines, inlog_lines

HARDENED = b"#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* norelay\n"
OPEN = b"#<> default\n#blank false\n"


@pytest.fixture
def open_gateway(db: None) -> None:
    """The seed's gateway: a wildcard alias and no LAN or norelay line."""
    alias_services.domain_create(name=INNER)
    alias_services.alias_create(pattern=f"*@{INNER}", target=f"*@{INNER}")
    relay_services.relay_rules_import(data=OPEN, replace=True)


def harden() -> None:
    relay_services.relay_rules_import(data=HARDENED, replace=True)


def write_archive(path: Path, lines: int = 3000, *, evil: bool = False) -> Truth:
    truth = Truth()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "epms/inlog/GW01/20261102",
            "".join(inlog_lines(lines, truth=truth, days=3)).encode("cp932"),
        )
        archive.writestr("epms/acceptlog/GW01/20261102", "".join(acceptlog_lines(50)))
        if evil:
            archive.writestr("../outside", "x\n")
    return truth


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, Truth]:
    path = tmp_path / "logs.zip"
    return path, write_archive(path)
