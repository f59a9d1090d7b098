"""The SSH transport against a real sshd: pinning, the atomic set under a kill, log reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from gateways.transport import (
    JOURNAL,
    AuthenticationFailed,
    HostKeyChanged,
    HostKeyUnconfirmed,
    SshTarget,
    Unreachable,
    fetch_host_key,
    list_folder,
    open_folder,
    read_from,
    run_sync,
)
from tests.servers import SshServer, free_port

ROOT = Path(__file__).resolve().parents[2]
OLD = {"effect.dat": "old effect\n", "aliases.csv": "old csv\n", ".rcc-manifest.json": "old m\n"}
NEW = {"effect.dat": "new effect\n", "aliases.csv": "new csv\n", ".rcc-manifest.json": "new m\n"}


def target(server: SshServer, **changes: object) -> SshTarget:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "host_key": server.host_key,
        "private_key": server.client_key,
    }
    values.update(changes)
    return SshTarget(**values)  # type: ignore[arg-type]


def contents(folder: Path, names: list[str]) -> dict[str, str]:
    return {name: (folder / name).read_text() for name in names if (folder / name).exists()}


def write(server: SshServer, files: dict[str, str]) -> None:
    async def run() -> None:
        async with open_folder(target(server), str(server.program_folder)) as remote:
            await remote.write_set({n: t.encode() for n, t in files.items()}, {})

    run_sync(run())


def test_fetch_host_key_returns_the_servers_key(sshd: SshServer) -> None:
    assert run_sync(fetch_host_key("127.0.0.1", sshd.port)) == sshd.host_key


def test_connection_without_a_pinned_key_is_refused_before_connecting(sshd: SshServer) -> None:
    async def run() -> None:
        async with open_folder(target(sshd, host_key=""), "/"):
            pass

    with pytest.raises(HostKeyUnconfirmed, match="not been confirmed"):
        run_sync(run())


def test_another_host_key_is_refused_and_the_presented_key_reported(sshd: SshServer) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()

    async def run() -> None:
        async with open_folder(target(sshd, host_key=other), str(sshd.program_folder)):
            pass

    with pytest.raises(HostKeyChanged) as caught:
        run_sync(run())
    assert caught.value.offered == sshd.host_key
    assert not (sshd.program_folder / "effect.dat").exists()


def test_unknown_client_key_is_an_authentication_failure(sshd: SshServer) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()

    async def run() -> None:
        async with open_folder(target(sshd, private_key=stranger), "/"):
            pass

    with pytest.raises(AuthenticationFailed):
        run_sync(run())


def test_closed_port_is_unreachable() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    unreachable = SshTarget(
        "127.0.0.1",
        free_port(),
        "nobody",
        host_key=key,
        private_key=(asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()),
    )

    async def run() -> None:
        async with open_folder(unreachable, "/"):
            pass

    with pytest.raises(Unreachable, match="connection refused"):
        run_sync(run())


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("upload", OLD),  # killed while the temporary files are uploaded
        ("rename1", OLD),  # killed after the first rename: rolled back
        ("rename2", OLD),  # killed after the second rename: rolled back
        ("none", NEW),  # not killed: the new set
    ],
)
def test_a_killed_publish_leaves_the_old_or_the_new_set_never_a_mix(
    sshd: SshServer, point: str, expected: dict[str, str]
) -> None:
    write(sshd, OLD)
    args = {
        "point": point,
        "target": {
            "host": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.username,
            "host_key": sshd.host_key,
            "private_key": sshd.client_key,
        },
        "folder": str(sshd.program_folder),
        "files": NEW,
    }
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("kill_child.py")), json.dumps(args)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if point == "none":
        assert line == "DONE"
        child.wait(timeout=30)
    else:
        assert line == "KILLME"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)

    folder = sshd.program_folder
    names = list(OLD)
    if point.startswith("rename"):
        # Between the kill and the next connection, the journal says the set is unfinished.
        assert (folder / JOURNAL).exists()

    async def reconnect() -> tuple[str, ...] | None:
        async with open_folder(target(sshd), str(folder)) as remote:
            return await remote.recover()

    recovered = run_sync(reconnect())
    assert contents(folder, names) == expected
    assert not [p.name for p in folder.iterdir() if p.name.startswith((".rcc-tmp-", ".rcc-bak-"))]
    assert not (folder / JOURNAL).exists()
    if point.startswith("rename"):
        assert recovered == tuple(sorted(NEW))


def test_list_folder_and_incremental_reads(sshd: SshServer) -> None:
    logs = sshd.work_folder / "log"
    logs.mkdir()
    (logs / "smtp20261202.log").write_bytes(b"line 1\nline 2\n")
    (logs / "pop20261202.log").write_bytes(b"x\n")
    (logs / "sub").mkdir()
    entries = run_sync(list_folder(target(sshd), str(logs)))
    assert [(e.name, e.size) for e in entries] == [
        ("pop20261202.log", 2),
        ("smtp20261202.log", 14),
    ]
    path = str(logs / "smtp20261202.log")
    first = run_sync(read_from(target(sshd), path))
    assert (first.start, first.data, first.end) == (0, b"line 1\nline 2\n", 14)
    with open(path, "ab") as stream:
        stream.write(b"line 3\n")
    second = run_sync(read_from(target(sshd), path, offset=first.end))
    assert (second.start, second.data) == (14, b"line 3\n")
    (logs / "smtp20261202.log").write_bytes(b"new\n")  # rotated: shorter than the offset
    third = run_sync(read_from(target(sshd), path, offset=second.end))
    assert (third.start, third.data) == (0, b"new\n")
    assert run_sync(list_folder(target(sshd), str(sshd.work_folder / "missing"))) == []
