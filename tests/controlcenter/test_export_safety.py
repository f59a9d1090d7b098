"""Review fixes: the file set and the history row change together; --dest checks; links."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections, transaction
from django.test import Client
from django.utils import translation

from controlcenter import publishing, services
from controlcenter.models import AuditEntry, Export, ServerSettings
from controlcenter.publishing import EFFECT
from controlcenter.roles import Role
from controlcenter.services import export as export_service
from relaypolicy.models import RelayPolicy
from relaypolicy.services import relay_rules_import, relay_table_save
from relaypolicy.table import Row, RowKind, Table

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site_language_afterwards() -> Iterator[None]:
    """Requests in English leave English active in this thread; later tests expect ja."""
    yield
    translation.deactivate()


LAN = Row(RowKind.RULE, pattern="192.168.1.0/24", modifier="default", comment="LAN")
OPEN_RELAY = b"#<> default\n#blank false\n*.*.*.* true\n"
LOCKED = "The export could not be recorded in the database, nothing was changed: database is locked"


@pytest.fixture
def export_dir(tmp_path: Path, settings: Any) -> Path:
    settings.CC_EXPORT_DIR = tmp_path / "export"
    return tmp_path / "export"


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user(username="admin", role=Role.ADMINISTRATOR)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _locked_database(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError("database is locked")


def test_sqlite_write_transactions_begin_immediate() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite needs IMMEDIATE transactions")
    assert django_settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_a_database_failure_restores_the_files_and_records_nothing(
    export_dir: Path, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.config_export(user=admin)
    before = _files(export_dir)
    relay_table_save(table=Table(rows=(LAN,)), version=RelayPolicy.load().version)
    monkeypatch.setattr(export_service, "_record_export", _locked_database)
    with translation.override("en"), pytest.raises(services.ExportDatabaseError) as error:
        services.config_export(user=admin)
    assert str(error.value) == (LOCKED)
    assert _files(export_dir) == before
    assert Export.objects.count() == 1


def test_a_database_failure_on_a_first_export_removes_the_new_files(
    export_dir: Path, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_dir.mkdir()
    monkeypatch.setattr(export_service, "_record_export", _locked_database)
    with pytest.raises(services.ExportDatabaseError):
        services.config_export(user=admin)
    assert sorted(p.name for p in export_dir.iterdir() if p.name != publishing.LOCK) == []
    assert Export.objects.count() == 0


def test_export_config_reports_a_database_failure_in_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_service, "_record_export", _locked_database)
    with translation.override("en"), pytest.raises(CommandError) as error:
        call_command("export_config", "--dest", str(tmp_path / "new"), stdout=StringIO())
    assert (error.value.returncode, str(error.value)) == (
        1,
        LOCKED,
    )
    assert Export.objects.count() == 0


def test_publish_view_reports_a_database_failure(
    export_dir: Path, administrator_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = services.publish_status().plan.digest
    monkeypatch.setattr(export_service, "_record_export", _locked_database)
    response = administrator_client.post(
        "/system/publish/", {"plan": plan}, HTTP_ACCEPT_LANGUAGE="en", follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [LOCKED]
    assert Export.objects.count() == 0


# --- backups where hard links are refused ------------------------------------------------------


def _refuse_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refused)


def test_backups_fall_back_to_a_copy_when_linking_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / EFFECT).write_bytes(b"old\n")
    _refuse_links(monkeypatch)
    publishing.write_file_set(tmp_path, {EFFECT: b"new\n"})
    assert _files(tmp_path) == {EFFECT: b"new\n"}


def test_a_copied_backup_is_restored_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / EFFECT).write_bytes(b"old\n")
    (tmp_path / "b").write_bytes(b"old b\n")
    _refuse_links(monkeypatch)
    calls: list[str] = []

    def failing_rename(source: str | Path, target: str | Path) -> None:
        calls.append(Path(target).name)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        os.replace(source, target)

    with pytest.raises(publishing.WriteError):
        publishing.write_file_set(
            tmp_path, {EFFECT: b"new\n", "b": b"new b\n"}, rename=failing_rename
        )
    assert _files(tmp_path) == {EFFECT: b"old\n", "b": b"old b\n"}


def test_a_staged_set_is_restored_from_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / EFFECT).write_bytes(b"old\n")
    _refuse_links(monkeypatch)
    staged = publishing.stage_file_set(tmp_path, {EFFECT: b"new\n", "created": b"x"})
    assert (tmp_path / EFFECT).read_bytes() == b"new\n"
    staged.restore()
    assert _files(tmp_path) == {EFFECT: b"old\n"}


# --- export_config --dest -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dest", "message"),
    [
        ("", "--dest: an empty folder name"),
        ("  ", "--dest: an empty folder name"),
        ("relative/dir", "--dest: give an absolute folder such as /usr/local/mta/bin"),
    ],
)
def test_export_config_refuses_an_empty_or_relative_dest(
    dest: str, message: str, export_dir: Path
) -> None:
    with pytest.raises(CommandError) as error:
        call_command("export_config", "--dest", dest, stdout=StringIO())
    assert (error.value.returncode, str(error.value)) == (2, message)
    assert Export.objects.count() == 0
    assert not export_dir.exists()
    assert not Path("relative").exists()


def test_export_config_unusable_dest_found_late_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unusable(folder: Path) -> Any:
        raise publishing.FolderError(folder, OSError(30, "Read-only file system"))

    monkeypatch.setattr(publishing, "export_lock", unusable)
    with translation.override("en"), pytest.raises(CommandError) as error:
        call_command("export_config", "--dest", str(tmp_path / "ro"), stdout=StringIO())
    assert (error.value.returncode, str(error.value)) == (
        2,
        f"The export folder {tmp_path / 'ro'} cannot be used: Read-only file system",
    )
    assert Export.objects.count() == 0
    assert AuditEntry.objects.count() == 0
    monkeypatch.undo()
    # the number was not used: the next export is #1
    call_command("export_config", "--dest", str(tmp_path / "ok"), stdout=StringIO())
    assert list(Export.objects.values_list("number", flat=True)) == [1]


def test_export_config_dry_run_exits_1_on_errors_but_prints_the_diff(tmp_path: Path) -> None:
    relay_rules_import(data=OPEN_RELAY, replace=True)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "export_config",
            "--dest",
            str(tmp_path / "new"),
            "--dry-run",
            stdout=out,
            stderr=StringIO(),
        )
    assert exit_info.value.code == 1
    assert "+*.*.*.* true" in out.getvalue().splitlines()
    assert not (tmp_path / "new").exists()
    assert Export.objects.count() == 0


# --- the export checks what it renders ----------------------------------------------------------


def test_relay_writes_take_the_server_settings_row_lock_first() -> None:
    from django.test.utils import CaptureQueriesContext

    version = RelayPolicy.load().version
    with CaptureQueriesContext(connection) as queries:
        relay_table_save(table=Table(rows=(LAN,)), version=version)
    sqls = [query["sql"] for query in queries]
    # PostgreSQL shows the row lock; SQLite (no row locks) only shows the read
    lock = "FOR UPDATE" if connection.vendor == "postgresql" else ""
    write_at = next(i for i, sql in enumerate(sqls) if sql.startswith('DELETE FROM "relaypolicy_'))
    locks = [
        i
        for i, sql in enumerate(sqls[:write_at])
        if "controlcenter_serversettings" in sql and lock in sql
    ]
    assert locks


def test_the_export_snapshots_and_checks_under_the_lock(
    export_dir: Path, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def recording(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("_lock_exports", "policy_snapshot", "_check_policy"):
        monkeypatch.setattr(export_service, name, recording(name, getattr(export_service, name)))
    report = services.config_export(user=admin)
    assert report.written
    # checked once (at 100,000 aliases the check is most of an export's time), on the snapshot
    # taken under the lock
    assert calls == ["_lock_exports", "policy_snapshot", "_check_policy"]
    relay_rules_import(data=OPEN_RELAY, replace=True)
    calls.clear()
    assert services.config_export(user=admin).status == "refused"
    assert calls == ["_lock_exports", "policy_snapshot", "_check_policy"]


# --- an export killed half-way is completed or undone by the next one -------------------------


class _Killed(BaseException):
    """Stands for kill -9: the process runs nothing more (no restore, no commit)."""


def _kill_before_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*args: Any, **kwargs: Any) -> None:
        raise _Killed

    monkeypatch.setattr(export_service, "_record_export", killed)
    monkeypatch.setattr(publishing.StagedFileSet, "restore", lambda self: None)


def test_an_export_killed_before_it_was_recorded_is_undone_by_the_next_one(
    export_dir: Path, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.config_export(user=admin)
    before = _files(export_dir)
    relay_table_save(table=Table(rows=(LAN,)), version=RelayPolicy.load().version)
    with monkeypatch.context() as patch:
        _kill_before_commit(patch)
        with pytest.raises(_Killed):
            services.config_export(user=admin)
    # the new set is live, the history still ends at #1: what the attack review found
    assert b"192.168.1.0/24" in (export_dir / EFFECT).read_bytes()
    assert (export_dir / publishing.JOURNAL).exists()
    assert list(Export.objects.values_list("number", flat=True)) == [1]

    recovery = services.export_recover()
    assert recovery is not None
    assert recovery.outcome is publishing.RecoveryOutcome.ROLLED_BACK
    assert _files(export_dir) == before
    entry = AuditEntry.objects.get(action="config.export_recovered")
    assert (entry.target, entry.summary) == (
        f"#2 {export_dir}",
        "記録される前に中断されたエクスポートを取り消しました。"
        "出力先フォルダは前回のファイルに戻っています。",
    )
    report = services.config_export(user=admin)
    assert (report.status, report.export.number if report.export else None) == ("exported", 2)
    assert sorted(_files(export_dir)) == sorted(before)


def test_an_export_killed_after_it_was_recorded_is_kept_by_the_next_one(
    export_dir: Path, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.config_export(user=admin)
    relay_table_save(table=Table(rows=(LAN,)), version=RelayPolicy.load().version)
    with monkeypatch.context() as patch:
        patch.setattr(publishing.StagedFileSet, "discard", lambda self: None)  # killed
        report = services.config_export(user=admin)
    assert report.written
    assert (export_dir / publishing.JOURNAL).exists()
    live = _files(export_dir)
    services.config_export(user=admin, dry_run=True)
    assert services.config_export(user=admin).written
    after = _files(export_dir)
    assert publishing.JOURNAL not in after
    assert not [name for name in after if name.endswith((".bak", ".tmp"))]
    assert after[EFFECT].replace(b"#3", b"#2") == live[EFFECT]
    assert not AuditEntry.objects.filter(action="config.export_recovered").exists()


def test_export_config_recover_finishes_an_interrupted_export(
    export_dir: Path, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.config_export(user=admin)
    before = _files(export_dir)
    relay_table_save(table=Table(rows=(LAN,)), version=RelayPolicy.load().version)
    with monkeypatch.context() as patch:
        _kill_before_commit(patch)
        with pytest.raises(_Killed):
            services.config_export(user=admin)
    out = StringIO()
    call_command("export_config", "--recover", stdout=out)
    assert out.getvalue() == (
        f"an interrupted export #2 was undone in {export_dir}: the previous files are back\n"
    )
    assert _files(export_dir) == before
    out = StringIO()
    call_command("export_config", "--recover", stdout=out)
    assert out.getvalue() == f"nothing to recover in {export_dir}\n"


def test_a_planted_link_is_refused_with_a_message_naming_it(
    export_dir: Path, admin: User, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0\n")
    export_dir.mkdir()
    (export_dir / publishing.ALIASES_CSV).symlink_to(secret)
    _dest, plan, error = services.export_plan()
    assert error == (
        f"出力先フォルダの {export_dir / publishing.ALIASES_CSV} はシンボリックリンク"
        " (または通常のファイル以外) です。リンクはたどりません。削除してから、もう一度"
        "出力してください。"
    )
    assert all("root:x" not in line for diff in plan.diffs for line in diff.lines)
    report = services.config_export(user=admin, force=True)
    assert (report.status, report.error) == ("failed", error)
    assert secret.read_text() == "root:x:0:0\n"
    assert (export_dir / publishing.ALIASES_CSV).is_symlink()


def test_a_viewer_never_sees_a_planted_links_target_on_the_publish_page(
    export_dir: Path, viewer_client: Client, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET-TOKEN\n")
    export_dir.mkdir()
    (export_dir / publishing.ALIASES_CSV).symlink_to(secret)
    response = viewer_client.get("/system/publish/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "TOP-SECRET-TOKEN" not in page
    assert "シンボリックリンク" in page


def test_the_publish_page_recovers_an_export_whose_worker_was_killed(
    export_dir: Path, admin: User, viewer_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gunicorn kills a worker that overruns its timeout: the server keeps running, so the
    # start-up recovery does not come; the next look at the folder recovers it.
    services.config_export(user=admin)
    before = _files(export_dir)
    relay_table_save(table=Table(rows=(LAN,)), version=RelayPolicy.load().version)
    with monkeypatch.context() as patch:
        _kill_before_commit(patch)
        with pytest.raises(_Killed):
            services.config_export(user=admin)
    assert viewer_client.get("/system/publish/").status_code == 200
    assert _files(export_dir) == before
    assert AuditEntry.objects.filter(action="config.export_recovered").count() == 1


def test_a_look_at_the_folder_never_waits_for_a_running_export(
    export_dir: Path, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.config_export(user=admin)
    relay_table_save(table=Table(rows=(LAN,)), version=RelayPolicy.load().version)
    with monkeypatch.context() as patch:
        _kill_before_commit(patch)
        with pytest.raises(_Killed):
            services.config_export(user=admin)
    # another export holds the folder lock: the look leaves the journal to that export
    with publishing.export_lock(export_dir):
        assert services.export_recover(wait=False) is None
        services.export_plan()
    assert (export_dir / publishing.JOURNAL).exists()


@pytest.mark.django_db(transaction=True)
def test_a_look_at_the_folder_skips_recovery_while_an_export_holds_the_row_lock(
    export_dir: Path,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; CI runs both")
    ServerSettings.load()  # an earlier transactional test's flush removed the row
    export_dir.mkdir()
    (export_dir / publishing.JOURNAL).write_text("{}")
    holding, release = threading.Event(), threading.Event()

    def exporting() -> None:
        with transaction.atomic():
            export_service._lock_exports()
            holding.set()
            release.wait(10)
        connections.close_all()

    thread = threading.Thread(target=exporting)
    thread.start()
    try:
        assert holding.wait(10)
        start = time.monotonic()
        assert services.export_recover(wait=False) is None
        assert time.monotonic() - start < 2
        assert (export_dir / publishing.JOURNAL).exists()
    finally:
        release.set()
        thread.join()
    recovery = services.export_recover()
    assert recovery is not None
    assert not (export_dir / publishing.JOURNAL).exists()
