"""kill -9 during exports: afterwards the export folder and the history always agree.

Run: ``DEBUG=1 .venv/bin/python -m tests.bench.bench_export_kill [--runs 60] [--seed N]``.
Uses a temporary SQLite database, or with ``DATABASE_URL=postgres://…`` a throwaway database
(``test_<name>_exportkill``, created and dropped here; the real one is never touched).

Each run changes the policy, forks a child that exports (its fsyncs, renames and the recording
slowed by a few milliseconds so that a kill can land anywhere: writing the temporary files,
the backups, the journal, the renames, the database insert, the commit, the clean-up), kills it
with SIGKILL after a random delay, then recovers the way the next start-up (even runs) or the
next export (odd runs) does and checks:

- no ``.tmp``, ``.bak`` or journal is left in the folder;
- the live manifest names the last recorded export, and every live file has that export's
  sha256 (no live set without its history row, no history row without its set);
- every recorded export has its ``config.export`` audit entry and its own number.

Prints where the kills landed, what the recovery did, and the disagreements (exit 1 if any).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SLOW_FSYNC = 0.002
SLOW_RENAME = 0.004
SLOW_RECORD = 0.010


def _setup() -> tuple[Path, Any, str]:
    work = Path(tempfile.mkdtemp(prefix="bench-export-kill-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlcenter.settings")
    os.environ.setdefault("DEBUG", "1")
    import django
    from django.conf import settings

    django.setup()
    from django.db import connection

    database = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        database["TEST"] |= {"NAME": str(work / "kill.sqlite3")}
    else:
        database["TEST"] |= {"NAME": f"test_{database['NAME']}_exportkill"}
    settings.CC_EXPORT_DIR = work / "export"
    original = database["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    return work / "export", connection, original


def _child(go: int) -> None:
    """The exporting process: slowed, told to start by the parent, then killed by it."""
    from controlcenter import publishing, services
    from controlcenter.services import export as export_service

    real_fsync, real_stage, real_record = (
        os.fsync,
        publishing.stage_file_set,
        export_service._record_export,
    )

    def fsync(fd: Any) -> None:
        time.sleep(SLOW_FSYNC)
        real_fsync(fd)

    def rename(source: Any, target: Any) -> None:
        time.sleep(SLOW_RENAME)
        os.replace(source, target)

    def record(*args: Any, **kwargs: Any) -> Any:
        time.sleep(SLOW_RECORD)
        return real_record(*args, **kwargs)

    os.fsync = fsync
    publishing.stage_file_set = lambda folder, files, **kw: real_stage(
        folder, files, rename=rename, **kw
    )
    export_service._record_export = record
    os.write(go, b"g")
    services.config_export(user=None)


def _export_in_child(kill_after: float | None) -> float:
    """Fork an exporting child; kill it ``kill_after`` seconds after it starts (None: let it
    finish). Returns how long the child ran."""
    from django.db import connections

    connections.close_all()  # the child opens its own connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        code = 0
        try:
            _child(write)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write)
    os.read(read, 1)
    start = time.perf_counter()
    os.close(read)
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return time.perf_counter() - start


def _state(folder: Path) -> str:
    from controlcenter import publishing

    if not folder.is_dir():
        return "before any file"
    names = set(os.listdir(folder))
    if publishing.JOURNAL in names:
        return "journal (renaming, recording or cleaning up)"
    if any(name.endswith((".tmp", ".bak")) for name in names):
        return "temporary files or backups (before the journal)"
    return "nothing pending (before writing or after cleaning up)"


def _disagreements(folder: Path) -> list[str]:
    from controlcenter import publishing
    from controlcenter.models import AuditEntry, Export, ExportStatus

    problems = []
    names = sorted(os.listdir(folder)) if folder.is_dir() else []
    left = [name for name in names if name.endswith((".tmp", ".bak")) or name == publishing.JOURNAL]
    if left:
        problems.append(f"left in the folder: {left}")
    exported = list(Export.objects.filter(status=ExportStatus.EXPORTED).order_by("-number"))
    last = exported[0] if exported else None
    raw = (folder / publishing.MANIFEST).read_bytes() if publishing.MANIFEST in names else None
    manifest = publishing.parse_manifest(raw) if raw is not None else None
    if last is None:
        if manifest is not None:
            problems.append(f"live export #{manifest.export_number} has no history row")
    elif manifest is None:
        problems.append(f"history ends at #{last.number} but the folder has no manifest")
    else:
        if manifest.export_number != last.number:
            problems.append(
                f"live export #{manifest.export_number}, history ends at #{last.number}"
            )
        for name in publishing.FILE_NAMES:
            live = publishing.sha256((folder / name).read_bytes())
            if live != last.hashes.get(name):
                problems.append(f"{name} is not the one export #{last.number} recorded")
    audited = Counter(
        AuditEntry.objects.filter(action="config.export").values_list("target", flat=True)
    )
    for export in exported:
        if audited[f"#{export.number} {folder}"] != 1:
            problems.append(f"export #{export.number} has no single audit entry")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--without-recovery",
        action="store_true",
        help="skip the journal's recovery, to see what it prevents (disagreements expected)",
    )
    options = parser.parse_args(argv)
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    folder, connection, original = _setup()
    from controlcenter import publishing, services

    if options.without_recovery:
        publishing.recover_file_set = lambda folder, **kwargs: None
    from controlcenter.models import Export
    from relaypolicy.models import RelayPolicy
    from relaypolicy.services import relay_table_save
    from relaypolicy.table import Row, RowKind, Table

    def change_policy(run: int) -> None:
        rows = (Row(RowKind.RULE, pattern=f"10.{run % 250}.0.0/16", modifier="default"),)
        relay_table_save(table=Table(rows=rows), version=RelayPolicy.load().version)

    try:
        change_policy(0)
        services.config_export(user=None)  # export #1, so that later sets replace files
        change_policy(1)
        duration = max(_export_in_child(None) for _ in range(3))  # calibration, not killed
        landed: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        failures: list[str] = []
        started = time.perf_counter()
        for run in range(options.runs):
            change_policy(run + 2)
            before = Export.objects.count()
            _export_in_child(rng.uniform(0, duration * 1.1))
            recorded = Export.objects.count() > before
            landed[f"{_state(folder)}, {'recorded' if recorded else 'not recorded'}"] += 1
            if run % 2 == 0:
                recovery = services.export_recover()
                outcomes[recovery.outcome.value if recovery else "nothing to do"] += 1
            else:
                report = services.config_export(user=None)
                outcomes[f"next export {report.status}"] += 1
            failures += [f"run {run}: {problem}" for problem in _disagreements(folder)]
        summary = {
            "seed": seed,
            "runs": options.runs,
            "database": connection.vendor,
            "export_seconds": round(duration, 3),
            "seconds": round(time.perf_counter() - started, 1),
            "exports_recorded": Export.objects.filter(status="exported").count(),
            "kills_landed": dict(landed),
            "recovery": dict(outcomes),
            "disagreements": failures,
        }
    finally:
        connection.creation.destroy_test_db(original, verbosity=0, keepdb=False)
    if options.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
