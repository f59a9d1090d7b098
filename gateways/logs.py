"""A gateway's logs and retry queue over SFTP, mirrored incrementally into a local folder.

The mirror has the layout of the mail work folder (``../shared/spec/epost-logs.md`` §1, §3), so
the log reader (``maillogs``) reads it exactly as it reads a local work folder:

- ``<log>/<host>/<file>`` for each log of :data:`maillogs.logfile.LOG_NAMES`: a file that grew
  on the gateway is extended with the new bytes only (read from the mirror's size); a file
  that became shorter (rotated, replaced) is fetched again whole, as a new file (a new inode,
  so the reader starts it from the beginning); compressed files (``.gz``, ``.zip``) are fetched
  once; files that disappeared from the gateway are kept (the reader already has them).
- ``domains/<domain>/`` and ``holding/``: the retry queue is a snapshot, rebuilt on each pull:
  ``Domain.mri`` files are copied, envelopes (``*.RCP``) and bodies (``*.MSG``) become sparse
  files of the same size (only their count and size matter; mail bodies are never copied).
  ``incoming/`` is counted the same way.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from gateways.transport import RemoteFolder, sftp_failure
from maillogs.logfile import LOG_NAMES

QUEUE_FOLDERS = ("domains", "holding", "incoming")
CHUNK = 4 * 1024 * 1024
Progress = Callable[[str], None]


@dataclass
class MirrorReport:
    files: int = 0  # log files that changed
    bytes: int = 0  # log bytes fetched
    queue_entries: int = 0


async def _entries(remote: RemoteFolder, folder: str) -> list[asyncssh.SFTPName]:
    try:
        return [e for e in await remote.sftp.readdir(folder) if e.filename not in (".", "..")]
    except asyncssh.SFTPNoSuchFile:
        return []


def _is_dir(entry: asyncssh.SFTPName) -> bool:
    return entry.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY or bool(
        entry.attrs.permissions and stat.S_ISDIR(entry.attrs.permissions)
    )


def _is_file(entry: asyncssh.SFTPName) -> bool:
    return entry.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR or bool(
        entry.attrs.permissions and stat.S_ISREG(entry.attrs.permissions)
    )


def _safe(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\x00" not in name


async def _copy(remote: RemoteFolder, path: str, local: Path, *, offset: int) -> int:
    """Append ``path`` from ``offset`` to ``local`` (from 0: into a new file); bytes copied."""
    copied = 0
    async with remote.sftp.open(path, "rb") as stream:
        await stream.seek(offset)
        if offset:
            target = open(local, "ab")  # noqa: SIM115 - closed below
        else:
            fd, temp = tempfile.mkstemp(dir=local.parent, prefix=".pull-")
            target = os.fdopen(fd, "wb")
        with target:
            while True:
                data = await stream.read(CHUNK)
                if not data:
                    break
                target.write(data if isinstance(data, bytes) else data.encode())
                copied += len(data)
        if not offset:
            os.replace(temp, local)  # a new inode: the reader starts it from the beginning
    return copied


async def _pull_logs(
    remote: RemoteFolder, mirror: Path, report: MirrorReport, progress: Progress
) -> None:
    for log in LOG_NAMES:
        folder = posixpath.join(remote.folder, log)
        for host in await _entries(remote, folder):
            host_name = str(host.filename)
            if not _is_dir(host) or not _safe(host_name):
                continue
            progress(f"{log}/{host_name}")
            host_path = posixpath.join(folder, host_name)
            local_folder = mirror / log / host_name
            local_folder.mkdir(parents=True, exist_ok=True)
            for entry in await _entries(remote, host_path):
                name = str(entry.filename)
                if not _is_file(entry) or not _safe(name):
                    continue
                size = entry.attrs.size or 0
                local = local_folder / name
                have = local.stat().st_size if local.exists() else -1
                if have == size:
                    continue
                compressed = name.lower().endswith((".gz", ".zip"))
                offset = have if 0 <= have < size and not compressed else 0
                report.bytes += await _copy(
                    remote, posixpath.join(host_path, name), local, offset=offset
                )
                report.files += 1


async def _pull_queue(remote: RemoteFolder, mirror: Path, report: MirrorReport) -> None:
    snapshot = Path(tempfile.mkdtemp(dir=mirror, prefix=".queue-"))
    try:
        for top in QUEUE_FOLDERS:
            base = posixpath.join(remote.folder, top)
            folders: list[tuple[str, Path]] = [(base, snapshot / top)]
            if top == "domains":
                folders = [
                    (posixpath.join(base, str(e.filename)), snapshot / top / str(e.filename))
                    for e in await _entries(remote, base)
                    if _is_dir(e) and _safe(str(e.filename))
                ]
            for remote_folder, local_folder in folders:
                local_folder.mkdir(parents=True, exist_ok=True)
                for entry in await _entries(remote, remote_folder):
                    name = str(entry.filename)
                    if not _is_file(entry) or not _safe(name):
                        continue
                    local = local_folder / name
                    if name.lower().endswith(".mri"):
                        async with remote.sftp.open(posixpath.join(remote_folder, name), "rb") as f:
                            data = await f.read(65536)
                        local.write_bytes(data if isinstance(data, bytes) else data.encode())
                    else:
                        with open(local, "wb") as sparse:
                            sparse.truncate(entry.attrs.size or 0)
                    report.queue_entries += 1
        for top in QUEUE_FOLDERS:
            shutil.rmtree(mirror / top, ignore_errors=True)
            if (snapshot / top).exists():
                os.replace(snapshot / top, mirror / top)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


async def mirror_work_folder(
    remote: RemoteFolder, mirror: Path, *, progress: Progress = lambda stage: None
) -> MirrorReport:
    """Bring ``mirror`` up to date with the gateway's mail work folder (``remote.folder``)."""
    mirror.mkdir(parents=True, exist_ok=True)
    report = MirrorReport()
    try:
        await _pull_logs(remote, mirror, report, progress)
        progress("retry queue")
        await _pull_queue(remote, mirror, report)
    except asyncssh.SFTPError as error:
        raise sftp_failure(remote.folder, error) from error
    return report
