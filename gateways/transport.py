"""SSH and SFTP to a gateway (asyncssh; no Django): pinned host keys, an atomic remote file set,
the registration script, and incremental reads of log folders.

Host keys
=========
A gateway's host key is pinned: :func:`open_connection` accepts only the pinned key (it is the
only entry of the connection's known hosts, so a server presenting another key fails during
the key exchange, before the client authenticates). Without a pinned key it refuses
(:class:`HostKeyUnconfirmed`); with another key it refuses (:class:`HostKeyChanged`, carrying
the key now presented so an administrator can compare and confirm it). :func:`fetch_host_key`
runs only the key exchange (no authentication) to show the fingerprint for confirmation.

The remote file set
===================
:meth:`RemoteFolder.write_set` puts several files into one remote folder as one set:

1. any journal left by an interrupted run is rolled back first (:meth:`RemoteFolder.recover`);
2. each file is uploaded as ``.rcc-tmp-<token>-<name>`` in the same folder, fsynced
   (``fsync@openssh.com``), given its mode;
3. the journal ``.rcc-publish.journal`` is written: which temporary file becomes which name,
   and the backup name of every file that exists;
4. each existing file is hard-linked (``hardlink@openssh.com``; copied where linking fails) to
   its backup ``.rcc-bak-<token>-<name>``;
5. each temporary file is renamed over its name (``posix-rename@openssh.com``: atomic);
6. the journal is removed: the new set is committed. Each backup then becomes
   ``<name>.previous`` (the previous file, kept).

Killed anywhere before step 6, the next connection finds the journal and rolls back: backups
are renamed over their names, names that did not exist before are removed, temporary files are
deleted. So the folder holds the old set or the new set, never a mix (between the kill and the
next connection, a reader of the folder may see a partial rename sequence; the daemon reads
effect.dat alone, which is always a whole file).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import posixpath
import secrets
import shlex
import socket
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncssh

JOURNAL = ".rcc-publish.journal"
TEMP_PREFIX = ".rcc-tmp-"
BACKUP_PREFIX = ".rcc-bak-"
PREVIOUS_SUFFIX = ".previous"
CONNECT_TIMEOUT = 10.0
SCRIPT_TIMEOUT = 120.0
OUTPUT_LIMIT = 64 * 1024


T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from synchronous code; where this thread already runs
    an event loop (an async view, Playwright in the tests), in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class TransportError(Exception):
    """A gateway could not be reached or used.

    ``reason`` names what went wrong (a stable key: the web layer words it in the
    administrator's language, gateways.errors), ``where`` is the host and port or the remote
    path, ``detail`` the underlying library's or system's own words ("" when the reason says it
    all). ``str()`` is one English line, for logs and the command line.
    """

    code = "transport"

    def __init__(self, where: str, reason: str, detail: str = "") -> None:
        self.where, self.reason, self.detail = where, reason, detail
        super().__init__(ENGLISH[reason].format(where=where, detail=detail))


#: The English line of each reason; the web layer has the same reasons in the catalogue.
ENGLISH = {
    "timeout": "{where}: no answer (timed out)",
    "refused": "{where}: connection refused",
    "unknown_host": "{where}: the host name cannot be resolved ({detail})",
    "host_unreachable": "{where}: no route to the host",
    "network_unreachable": "{where}: the network is unreachable",
    "reset": "{where}: the connection was reset",
    "system": "{where}: {detail}",
    "ssh": "{where}: SSH failed: {detail}",
    "no_host_key": "{where} presented no host key",
    "unconfirmed": "{where}: the host key has not been confirmed yet",
    "changed": "{where}: the host key changed ({detail})",
    "denied": "{where}: the login was refused ({detail})",
    "key_unreadable": "{where}: the private key cannot be read: {detail}",
    "no_key": "{where}: no private key is configured",
    "no_sftp": "{where}: no SFTP: {detail}",
    "no_such_file": "{where}: no such file",
    "permission": "{where}: permission denied",
    "no_space": "{where}: no space left on the gateway",
    "sftp": "{where}: {detail}",
    "cannot_run": "{where}: cannot run {detail}",
}


class Unreachable(TransportError):
    code = "unreachable"


class AuthenticationFailed(TransportError):
    code = "auth"


class HostKeyUnconfirmed(TransportError):
    code = "host_key_unconfirmed"


class HostKeyChanged(TransportError):
    """The server presented a key other than the pinned one: refuse until confirmed again."""

    code = "host_key_changed"

    def __init__(self, where: str, detail: str = "", *, offered: str = "") -> None:
        super().__init__(where, "changed", detail)
        self.offered = offered  # the key now presented (OpenSSH line), "" when unknown


class RemoteIOError(TransportError):
    code = "io"


def os_failure(where: str, error: OSError) -> RemoteIOError:
    """A local or socket OSError while reading or writing, with its reason where known."""
    reasons = {
        errno.ENOENT: "no_such_file",
        errno.EACCES: "permission",
        errno.EPERM: "permission",
        errno.ENOSPC: "no_space",
        errno.EDQUOT: "no_space",
    }
    reason = reasons.get(error.errno or 0, "system")
    return RemoteIOError(where, reason, "" if reason != "system" else error.strerror or str(error))


def sftp_failure(where: str, error: asyncssh.SFTPError) -> RemoteIOError:
    """An SFTP status as a RemoteIOError whose reason is known where the status is."""
    reasons = {
        asyncssh.FX_NO_SUCH_FILE: "no_such_file",
        asyncssh.FX_PERMISSION_DENIED: "permission",
        asyncssh.FX_NO_SPACE_ON_FILESYSTEM: "no_space",
        asyncssh.FX_QUOTA_EXCEEDED: "no_space",
    }
    reason = reasons.get(error.code, "sftp")
    return RemoteIOError(where, reason, "" if reason != "sftp" else str(error.reason or error))


@dataclass(frozen=True)
class SshTarget:
    """How to reach one gateway over SSH. ``private_key`` is OpenSSH text; else ``key_path``."""

    host: str
    port: int
    username: str
    host_key: str = ""  # the pinned OpenSSH public key line
    private_key: str = field(default="", repr=False)
    key_path: str = ""
    connect_timeout: float = CONNECT_TIMEOUT

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _options(target: SshTarget) -> dict[str, object]:
    return {
        "port": target.port,
        "connect_timeout": target.connect_timeout,
        "login_timeout": target.connect_timeout,
        "config": None,  # never the local user's ~/.ssh/config
    }


async def fetch_host_key(host: str, port: int, *, timeout: float = CONNECT_TIMEOUT) -> str:
    """The host key ``host:port`` presents (OpenSSH line), from the key exchange only."""
    where = SshTarget(host, port, "").label
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port, config=None), timeout)
    except (OSError, asyncssh.Error, TimeoutError) as error:
        raise _unreachable(error, where) from error
    if key is None:
        raise Unreachable(where, "no_host_key")
    return key.export_public_key("openssh").decode("ascii").strip()


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "refused",
    errno.ETIMEDOUT: "timeout",
    errno.EHOSTUNREACH: "host_unreachable",
    errno.ENETUNREACH: "network_unreachable",
    errno.ECONNRESET: "reset",
}


def _unreachable(error: BaseException, where: str) -> Unreachable:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return Unreachable(where, "timeout")
    if isinstance(error, socket.gaierror):
        return Unreachable(where, "unknown_host", error.strerror or str(error))
    if isinstance(error, OSError):
        if error.errno in _ERRNO_REASONS:
            return Unreachable(where, _ERRNO_REASONS[error.errno])
        return Unreachable(where, "system", error.strerror or str(error))
    return Unreachable(where, "ssh", getattr(error, "reason", "") or str(error))


def _client_keys(target: SshTarget) -> list[asyncssh.SSHKey]:
    try:
        if target.private_key:
            return [asyncssh.import_private_key(target.private_key)]
        if target.key_path:
            return [asyncssh.read_private_key(target.key_path)]
    except (OSError, asyncssh.KeyImportError, ValueError) as error:
        raise AuthenticationFailed(target.label, "key_unreadable", str(error)) from error
    raise AuthenticationFailed(target.label, "no_key")


@contextlib.asynccontextmanager
async def open_connection(target: SshTarget) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """An authenticated connection whose server proved it holds the pinned host key."""
    if not target.host_key:
        raise HostKeyUnconfirmed(target.label, "unconfirmed")
    pinned = asyncssh.import_public_key(target.host_key)
    keys = _client_keys(target)
    try:
        connection = await asyncssh.connect(
            target.host,
            username=target.username,
            client_keys=keys,
            known_hosts=([pinned], [], []),
            agent_path=None,
            password=None,
            kbdint_auth=False,
            **_options(target),
        )
    except asyncssh.HostKeyNotVerifiable as error:
        offered = ""
        with contextlib.suppress(TransportError):
            offered = await fetch_host_key(target.host, target.port, timeout=target.connect_timeout)
        raise HostKeyChanged(target.label, error.reason, offered=offered) from error
    except asyncssh.PermissionDenied as error:
        raise AuthenticationFailed(target.label, "denied", error.reason) from error
    except (OSError, asyncssh.Error, TimeoutError) as error:
        raise _unreachable(error, target.label) from error
    try:
        yield connection
    finally:
        connection.close()
        with contextlib.suppress(Exception):
            await connection.wait_closed()


@dataclass(frozen=True)
class ScriptResult:
    exit_status: int | None  # None: killed by a signal or by the timeout
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.timed_out


async def _read_bytes(stream: asyncssh.SFTPClientFile, limit: int = -1) -> bytes:
    data = await stream.read(limit)
    return data if isinstance(data, bytes) else data.encode()


def _clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n…"


class RemoteFolder:
    """One folder on a gateway, through an open connection's SFTP session."""

    def __init__(
        self, connection: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient, folder: str
    ) -> None:
        self.connection = connection
        self.sftp = sftp
        self.folder = folder

    def path(self, name: str) -> str:
        return posixpath.join(self.folder, name)

    async def read_optional(self, name: str) -> bytes | None:
        try:
            async with self.sftp.open(self.path(name), "rb") as stream:
                return await _read_bytes(stream)
        except asyncssh.SFTPNoSuchFile:
            return None
        except asyncssh.SFTPError as error:
            raise sftp_failure(self.path(name), error) from error
        except OSError as error:
            raise os_failure(self.path(name), error) from error

    async def exists(self, name: str) -> bool:
        return bool(await self.sftp.exists(self.path(name)))

    async def _remove(self, name: str) -> None:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await self.sftp.remove(self.path(name))

    async def _upload(self, name: str, data: bytes, mode: int) -> None:
        async with self.sftp.open(self.path(name), "wb") as stream:
            await stream.write(data)
            with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                await stream.fsync()
        await self.sftp.chmod(self.path(name), mode)

    async def _link(self, name: str, backup: str) -> None:
        try:
            await self.sftp.link(self.path(name), self.path(backup))
        except (asyncssh.SFTPOpUnsupported, asyncssh.SFTPFailure, asyncssh.SFTPPermissionDenied):
            data = await self.read_optional(name)
            if data is not None:
                await self._upload(backup, data, 0o600)

    async def recover(self) -> tuple[str, ...] | None:
        """Roll back a set left half-written by an interrupted run: the names it put back (or
        removed), None when there was nothing to roll back."""
        raw = await self.read_optional(JOURNAL)
        if raw is None:
            await self._sweep(keep=())
            return None
        try:
            journal = json.loads(raw)
            temps: dict[str, str] = journal["temps"]
            backups: dict[str, str] = journal["backups"]
        except (ValueError, KeyError, TypeError):
            temps, backups = {}, {}
        for name in temps:
            backup = backups.get(name)
            if backup is None:
                await self._remove(name)  # did not exist before the interrupted run
            elif await self.exists(backup):
                await self.sftp.posix_rename(self.path(backup), self.path(name))
        await self._remove(JOURNAL)
        await self._sweep(keep=())
        return tuple(sorted(temps))

    async def _sweep(self, *, keep: Sequence[str]) -> None:
        """Remove our temporary and backup files not in ``keep`` (left by a crash)."""
        try:
            names = await self.sftp.listdir(self.folder)
        except asyncssh.SFTPNoSuchFile:
            return
        for name in names:
            if name.startswith((TEMP_PREFIX, BACKUP_PREFIX)) and name not in keep:
                await self._remove(name)

    async def write_set(self, files: Mapping[str, bytes], modes: Mapping[str, int]) -> None:
        """Write ``files`` as one set (see the module docstring); RemoteIOError on failure,
        after putting the previous set back."""
        try:
            await self._write_set(files, modes)
        except (asyncssh.SFTPError, OSError) as error:
            with contextlib.suppress(asyncssh.Error, OSError):
                await self.recover()
            if isinstance(error, asyncssh.SFTPError):
                raise sftp_failure(self.folder, error) from error
            raise os_failure(self.folder, error) from error

    async def _write_set(self, files: Mapping[str, bytes], modes: Mapping[str, int]) -> None:
        await self.recover()
        await self.sftp.makedirs(self.folder, exist_ok=True)
        token = secrets.token_hex(6)
        temps = {name: f"{TEMP_PREFIX}{token}-{name}" for name in files}
        for name, data in files.items():
            await self._upload(temps[name], data, modes.get(name, 0o644))
        backups = {
            name: f"{BACKUP_PREFIX}{token}-{name}" for name in files if await self.exists(name)
        }
        journal = json.dumps({"temps": temps, "backups": backups}, sort_keys=True).encode()
        await self._upload(JOURNAL, journal, 0o600)
        for name, backup in backups.items():
            await self._link(name, backup)
        for name in files:
            await self.sftp.posix_rename(self.path(temps[name]), self.path(name))
        await self.sftp.remove(self.path(JOURNAL))  # committed
        for name, backup in backups.items():
            with contextlib.suppress(asyncssh.SFTPError):
                await self.sftp.posix_rename(self.path(backup), self.path(name + PREVIOUS_SUFFIX))

    async def run_script(self, script: str, *, timeout: float = SCRIPT_TIMEOUT) -> ScriptResult:
        """Run ``sh <script>`` in this folder; output is stdout and stderr, interleaved."""
        command = f"cd {shlex.quote(self.folder)} && exec /bin/sh ./{shlex.quote(script)}"
        try:
            result = await self.connection.run(
                command, check=False, timeout=timeout, stderr=asyncssh.STDOUT
            )
        except asyncssh.TimeoutError as error:
            return ScriptResult(None, _clip(str(error.stdout or "")), timed_out=True)
        except asyncssh.ChannelOpenError as error:
            raise RemoteIOError(self.folder, "cannot_run", f"{script}: {error.reason}") from error
        return ScriptResult(result.exit_status, _clip(str(result.stdout or "")))


@contextlib.asynccontextmanager
async def open_folder(target: SshTarget, folder: str) -> AsyncIterator[RemoteFolder]:
    async with open_connection(target) as connection:
        try:
            sftp = await connection.start_sftp_client()
        except (asyncssh.Error, OSError) as error:
            raise RemoteIOError(target.label, "no_sftp", str(error)) from error
        async with sftp:
            yield RemoteFolder(connection, sftp, folder)


# --- logs and the retry queue, incrementally ----------------------------------------------------


@dataclass(frozen=True)
class RemoteEntry:
    """A file in a remote folder: name, size in bytes and modification time (epoch seconds)."""

    name: str
    size: int
    mtime: int


async def list_folder(target: SshTarget, folder: str) -> list[RemoteEntry]:
    """The regular files in ``folder`` on the gateway, by name (a missing folder holds none)."""
    async with open_folder(target, folder) as remote:
        try:
            entries = await remote.sftp.readdir(folder)
        except asyncssh.SFTPNoSuchFile:
            return []
        except asyncssh.SFTPError as error:
            raise sftp_failure(folder, error) from error
    found = []
    for entry in entries:
        attrs = entry.attrs
        if attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
            found.append(RemoteEntry(str(entry.filename), attrs.size or 0, attrs.mtime or 0))
    return sorted(found, key=lambda entry: entry.name)


@dataclass(frozen=True)
class Chunk:
    """Bytes of a remote file from ``start``; ``size`` is the file's size when read. The next
    read starts at ``start + len(data)``; a ``start`` of 0 for a non-zero ``offset`` means the
    file was rotated (it had become shorter than ``offset``)."""

    path: str
    start: int
    data: bytes
    size: int

    @property
    def end(self) -> int:
        return self.start + len(self.data)


async def read_from(
    target: SshTarget, path: str, *, offset: int = 0, limit: int = 16 * 1024 * 1024
) -> Chunk:
    """Up to ``limit`` bytes of ``path`` from ``offset``: read a growing log (or the retry
    queue's files) from where the previous read stopped."""
    async with open_folder(target, posixpath.dirname(path)) as remote:
        try:
            async with remote.sftp.open(path, "rb") as stream:
                size = (await stream.stat()).size or 0
                start = 0 if size < offset else offset
                await stream.seek(start)
                data = await _read_bytes(stream, limit) if size > start else b""
        except asyncssh.SFTPError as error:
            raise sftp_failure(path, error) from error
    return Chunk(path, start, data, size)
