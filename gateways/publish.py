"""Publishing one export to one gateway (no Django): read back, plan, write, register, verify.

For every gateway, whatever its kind, in this order:

1. **read back** what is deployed (``effect.dat``, ``register_aliases.sh``, ``aliases.csv`` and
   ``.rcc-manifest.json``), after rolling back any set an interrupted run left half-written;
2. **plan** with :func:`controlcenter.publishing.plan_export`, exactly as for the local export
   folder: ``<IP> false`` lines the daemon appended are kept above the terminator and reported
   as drift ``daemon``; a file changed by hand (``modified``) or not written by us
   (``unmanaged``) stops this gateway unless the run was confirmed with ``force``;
3. **write** the set atomically (SSH: :meth:`gateways.transport.RemoteFolder.write_set`; this
   machine: :func:`controlcenter.publishing.stage_file_set`), the previous files kept;
4. **register** the aliases: over SSH, ``sh register_aliases.sh`` runs in the program folder with
   a timeout; its exit status and output are kept (a non-zero status fails the gateway; the new
   files stay in place, and a retry runs the script again). This machine's folder does not run
   it: as before, the administrator runs it as root on the mail server;
5. **verify**: every file is read back and its sha256 compared with what was written.

The registration script is rendered for each gateway with its own program folder (its ``cd``
line), so gateways with different folders each get a script that works there.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controlcenter import publishing
from gateways.transport import (
    SCRIPT_TIMEOUT,
    RemoteFolder,
    RemoteIOError,
    ScriptResult,
    SshTarget,
    TransportError,
    open_folder,
    os_failure,
)

Progress = Callable[[str], None]

STAGE_CONNECT = "connect"
STAGE_READ = "read"
STAGE_WRITE = "write"
STAGE_SCRIPT = "script"
STAGE_VERIFY = "verify"
STAGE_DONE = "done"


@dataclass
class Outcome:
    """What publishing to one gateway did. ``code`` names the failure ("" on success)."""

    ok: bool = False
    code: str = ""
    error: str = ""
    failure: TransportError | None = None  # what the connection said, when it failed
    written: bool = False
    verified: bool = False
    recovered: tuple[str, ...] | None = None  # files an interrupted run's rollback put back
    drift: list[dict[str, str]] = field(default_factory=list)
    daemon_lines: list[dict[str, object]] = field(default_factory=list)
    replaced: dict[str, str] = field(default_factory=dict)
    diff: dict[str, list[str]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    script: ScriptResult | None = None
    offered_host_key: str = ""


class GatewayFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _record_plan(outcome: Outcome, plan: publishing.ExportPlan) -> None:
    outcome.drift = [{"file": d.name, "kind": d.kind.value} for d in plan.drift]
    outcome.daemon_lines = [
        {"line": d.line, "text": d.text, "origin": d.origin.value} for d in plan.daemon_lines
    ]
    outcome.replaced = dict(plan.replaced)
    outcome.diff = {d.name: list(d.lines) for d in plan.diffs if d.changed}
    outcome.hashes = plan.hashes
    outcome.texts = dict(plan.texts)


def _check_overwrites(plan: publishing.ExportPlan, *, force: bool) -> None:
    if plan.overwrites and not force:
        raise GatewayFailed("changed_by_hand", ", ".join(plan.overwrites))


def source_for(source: publishing.ExportSource, program_folder: str) -> publishing.ExportSource:
    """The export source with the registration script's folder set to the gateway's."""
    return dataclasses.replace(source, console_folder=program_folder)


async def publish_ssh(
    target: SshTarget,
    folder: str,
    source: publishing.ExportSource,
    *,
    export_number: int,
    force: bool = False,
    progress: Progress = lambda stage: None,
    script_timeout: float = SCRIPT_TIMEOUT,
) -> Outcome:
    """Publish to one gateway over SSH; never raises for the gateway's own failures."""
    outcome = Outcome()
    try:
        progress(STAGE_CONNECT)
        async with open_folder(target, folder) as remote:
            await _publish_remote(
                remote,
                outcome,
                source_for(source, folder),
                export_number,
                force,
                progress,
                script_timeout,
            )
    except GatewayFailed as failure:
        outcome.code, outcome.error = failure.code, str(failure)
    except TransportError as failure:
        outcome.code, outcome.error, outcome.failure = failure.code, str(failure), failure
        outcome.offered_host_key = getattr(failure, "offered", "")
    except TimeoutError:
        outcome.failure = RemoteIOError(target.label, "timeout")
        outcome.code, outcome.error = "io", str(outcome.failure)
    except OSError as failure:
        outcome.failure = os_failure(target.label, failure)
        outcome.code, outcome.error = "io", str(outcome.failure)
    return outcome


async def _publish_remote(
    remote: RemoteFolder,
    outcome: Outcome,
    source: publishing.ExportSource,
    export_number: int,
    force: bool,
    progress: Progress,
    script_timeout: float,
) -> None:
    progress(STAGE_READ)
    outcome.recovered = await remote.recover()
    files = {name: await remote.read_optional(name) for name in publishing.FILE_NAMES}
    manifest = await remote.read_optional(publishing.MANIFEST)
    deployed = publishing.deployed_from_files(files, manifest)
    plan = publishing.plan_export(source, deployed, export_number=export_number)
    _record_plan(outcome, plan)
    _check_overwrites(plan, force=force)
    progress(STAGE_WRITE)
    all_files = plan.all_files()
    await remote.write_set(all_files, {name: publishing.file_mode(name) for name in all_files})
    outcome.written = True
    progress(STAGE_SCRIPT)
    outcome.script = await remote.run_script(publishing.SCRIPT, timeout=script_timeout)
    progress(STAGE_VERIFY)
    await _verify(outcome, all_files, remote.read_optional)
    if not outcome.script.ok:
        status = "timed out" if outcome.script.timed_out else f"exit {outcome.script.exit_status}"
        raise GatewayFailed("script", status)
    outcome.ok = True
    progress(STAGE_DONE)


async def _verify(outcome: Outcome, files: dict[str, bytes], read: Callable) -> None:  # type: ignore[type-arg]
    wrong = [
        name
        for name, data in files.items()
        if publishing.sha256((await read(name)) or b"") != publishing.sha256(data)
    ]
    if wrong:
        raise GatewayFailed("verify", ", ".join(wrong))
    outcome.verified = True


async def publish_local(
    folder: Path,
    source: publishing.ExportSource,
    *,
    export_number: int,
    force: bool = False,
    progress: Progress = lambda stage: None,
) -> Outcome:
    """Publish to this machine's folder (today's export folder), in a worker thread."""
    return await asyncio.to_thread(
        _publish_local, folder, source, export_number=export_number, force=force, progress=progress
    )


def _publish_local(
    folder: Path,
    source: publishing.ExportSource,
    *,
    export_number: int,
    force: bool,
    progress: Progress,
) -> Outcome:
    outcome = Outcome()
    try:
        progress(STAGE_READ)
        with publishing.export_lock(folder):
            plan = publishing.plan_export(
                source, publishing.read_deployed(folder), export_number=export_number
            )
            _record_plan(outcome, plan)
            _check_overwrites(plan, force=force)
            progress(STAGE_WRITE)
            all_files = plan.all_files()
            publishing.stage_file_set(folder, all_files).discard()
            outcome.written = True
            progress(STAGE_VERIFY)

            async def read(name: str) -> bytes | None:
                path = folder / name
                return path.read_bytes() if path.exists() else None

            asyncio.run(_verify(outcome, all_files, read))
    except GatewayFailed as failure:
        outcome.code, outcome.error = failure.code, str(failure)
    except OSError as failure:
        outcome.failure = os_failure(str(failure.filename or folder), failure)
        outcome.code, outcome.error = "io", str(outcome.failure)
    else:
        outcome.ok = True
        progress(STAGE_DONE)
    return outcome
