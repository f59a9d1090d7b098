"""export_config at 100,000 aliases: how long an export takes and what its history row stores.

Run: ``DEBUG=1 .venv/bin/python -m tests.bench.bench_export`` (a temporary SQLite database,
or with ``DATABASE_URL=postgres://…`` a throwaway database created and dropped here).
Prints the time of one policy check (lint and self-test, run once per export, on the snapshot
taken under the lock), of two consecutive exports, and the bytes stored per export: the LZMA
archive against the JSON the history kept before.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

ROWS = 100_000
DOMAIN = "example.co.jp"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlcenter.settings")
    os.environ.setdefault("DEBUG", "1")
    import django
    from django.conf import settings

    django.setup()
    from django.db import connection

    database = settings.DATABASES["default"]
    original = database["NAME"]
    database["TEST"] |= {
        "NAME": str(work / "export.sqlite3")
        if connection.vendor == "sqlite"
        else f"test_{original}_export"
    }
    settings.CC_EXPORT_DIR = work / "export"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        _measure()
    finally:
        connection.creation.destroy_test_db(original, verbosity=0, keepdb=False)


def _measure() -> None:
    from aliases import services as alias_services
    from controlcenter import services
    from controlcenter.models import Export
    from controlcenter.services import export as export_service

    services.server_settings_update(changes={"licence": "unlimited"})
    alias_services.domain_create(name=DOMAIN)
    lines = ["alias,mapped_to,comment"] + [
        f"user{i:06d}@{DOMAIN},staff{(i * 7919) % ROWS:06d}@inner.{DOMAIN},社員 {i}"
        for i in range(ROWS)
    ]
    alias_services.aliases_import_csv(
        data=("\r\n".join(lines) + "\r\n").encode(),
        encoding="utf-8",
        add_domains=False,
        dry_run=False,
    )
    start = time.perf_counter()
    export_service._check_policy()
    check = time.perf_counter() - start
    print(f"{'one policy check (lint + self-test)':<44} {check:8.2f} s")
    for attempt in (1, 2):
        start = time.perf_counter()
        report = services.config_export(user=None)
        assert report.written, report.status
        print(f"{f'export #{attempt} (checked once)':<44} {time.perf_counter() - start:8.2f} s")
    export = Export.objects.get(number=2)
    plain = len(
        json.dumps(
            {"files": export.files, "snapshot": export.snapshot, "replaced": export.replaced},
            ensure_ascii=False,
        ).encode()
    )
    stored = len(bytes(export.archive))
    print(f"{'history per export as JSON (before)':<44} {plain / 1e6:8.2f} MB")
    print(f"{'history per export, LZMA archive (now)':<44} {stored / 1e6:8.2f} MB")
    print(f"{'ratio':<44} {plain / stored:8.1f} x")
    from django.db import connection

    if connection.vendor == "postgresql":
        # What PostgreSQL stores on disk (jsonb after its own TOAST compression) for a row
        # recorded the old way, against the archive.
        Export.objects.create(
            number=99,
            status="exported",
            dest="legacy",
            files_json=export.files,
            snapshot_json=export.snapshot,
            replaced_json=export.replaced,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT number, pg_column_size(files) + pg_column_size(snapshot) "
                "+ pg_column_size(replaced) + pg_column_size(archive) "
                "FROM controlcenter_export WHERE number IN (2, 99) ORDER BY number"
            )
            (_n, archived), (_m, legacy) = cursor.fetchall()
        print(f"{'on disk (PostgreSQL): JSON columns (before)':<44} {legacy / 1e6:8.2f} MB")
        print(f"{'on disk (PostgreSQL): archive (now)':<44} {archived / 1e6:8.2f} MB")
    start = time.perf_counter()
    Export.objects.get(number=2).snapshot  # noqa: B018 - decompressing is what is timed
    print(f"{'reading an archived snapshot':<44} {time.perf_counter() - start:8.2f} s")


if __name__ == "__main__":
    main()
