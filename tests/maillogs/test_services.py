from __future__ import annotations

import os
from pathlib import Path

import pytest

from aliases import services as alias_services
from aliases.models import Alias, AliasUpload
from controlcenter.models import ServerSettings
from controlcenter.services.policy import policy_lint
from maillogs import services
from maillogs.models import LogClient, LogFileState, LogRecipient, LogRun, LogSession
from tests.bench.loggen import HOME_USERS, INNER
from tests.maillogs.conftest import harden, write_archive

pytestmark = pytest.mark.django_db

LINE = "<B{n}@gw> [02/Nov/2026:10:00:{s:02d}] {ip} pc {sender} {rcpt}\n"


def read(path: Path, **options) -> LogRun:
    return services.log_read(
        sources=services.path_sources([path]), source_kind="command", label=path.name, **options
    )


def test_log_read_stores_aggregates_sessions_and_addresses(open_gateway, archive):
    path, truth = archive
    run = read(path)
    assert (run.mails, run.relayed_outside, run.abuse_found) == (
        truth.mails,
        truth.abuse_mails + truth.home_mails,
        True,
    )
    assert run.inside_basis == "private"  # the open gateway has no LAN line yet
    assert run.unknown_lines == truth.garbage
    assert run.summary["lines"]["acceptlog"] > 0
    assert run.first_seen.startswith("2026-11-02 ")
    assert sum(LogSession.objects.values_list("count", flat=True)) == truth.mails
    stored = set(
        LogSession.objects.filter(relayed=True, inside=False).values_list(
            "client_ip", "sender", "recipient"
        )
    )
    assert truth.abuse_sessions <= stored
    assert not LogClient.objects.filter(inside=True, client_ip__startswith="185.").exists()
    assert set(LogRecipient.objects.values_list("address", flat=True)) == truth.staff_received


def test_inside_follows_the_lan_rules_once_there_are_some(open_gateway, tmp_path):
    harden()
    path = tmp_path / "inlog"
    path.write_text(
        LINE.format(n=1, s=1, ip="192.168.1.9", sender=f"a@{INNER}", rcpt="x@partner.example")
        + LINE.format(n=2, s=2, ip="10.0.0.9", sender=f"a@{INNER}", rcpt="x@partner.example")
    )
    run = read(path)
    assert run.inside_basis == "rules"
    assert dict(LogClient.objects.values_list("client_ip", "inside")) == {
        "192.168.1.9": True,
        "10.0.0.9": False,
    }
    assert (run.relayed_outside, run.forged) == (1, 1)


def test_since_skips_earlier_days(open_gateway, tmp_path):
    path = tmp_path / "inlog"
    path.write_text(
        LINE.format(n=1, s=1, ip="192.168.1.9", sender="a@x.example", rcpt=f"b@{INNER}")
        + LINE.format(n=2, s=2, ip="192.168.1.9", sender="a@x.example", rcpt=f"b@{INNER}").replace(
            "02/Nov", "03/Nov"
        )
    )
    from datetime import date

    run = read(path, since=date(2026, 11, 3))
    assert (run.mails, run.first_seen) == (1, "2026-11-03 10:00:02")


class Stop(Exception):
    pass


def test_a_read_stopped_midway_stores_nothing(open_gateway, archive):
    path, _truth = archive
    calls = []

    def progress(done: int, total: int, stage: str) -> None:
        calls.append(done)
        if stage.startswith("Storing") or len(calls) > 1:
            raise Stop

    with pytest.raises(Stop):
        read(path, progress=progress)
    assert not LogRun.objects.exists()
    assert not LogSession.objects.exists()


def test_an_escaping_zip_is_refused_with_its_member_named(open_gateway, tmp_path):
    path = tmp_path / "evil.zip"
    write_archive(path, 10, evil=True)
    with pytest.raises(services.LogReadError) as refused:
        services.path_sources([path])
    assert "evil.zip:../outside" in str(refused.value)
    assert "path leaves the folder (..)" in str(refused.value)
    assert not LogRun.objects.exists()


def test_folder_read_is_incremental(open_gateway, tmp_path, settings):
    settings.CC_MAIL_WORK_DIR = str(tmp_path)
    folder = tmp_path / "inlog" / "GW01"
    folder.mkdir(parents=True)
    day = folder / "20261102"
    line = LINE.format(n=1, s=1, ip="192.168.1.9", sender="a@x.example", rcpt=f"b@{INNER}")
    day.write_text(line * 2 + line[:20])  # a line still being written
    first = services.folder_read()
    assert first is not None
    assert first.mails == 2
    state = LogFileState.objects.get()
    assert (state.offset, state.inode) == (2 * len(line), os.stat(day).st_ino)
    assert services.folder_read() is None  # nothing new
    with day.open("a") as stream:
        stream.write(line[20:] + line)
    second = services.folder_read()
    assert second is not None
    assert (second.mails, second.unknown_lines) == (2, 0)
    # a replaced file (new inode) is read from its start
    day.unlink()
    day.write_text(line)
    third = services.folder_read()
    assert third is not None
    assert third.mails == 1


def test_folder_read_without_a_configured_folder(settings, db):
    settings.CC_MAIL_WORK_DIR = ""
    with pytest.raises(services.LogReadError):
        services.folder_read()


def test_replay_report_of_the_pending_hardened_policy(open_gateway, archive):
    path, truth = archive
    read(path)
    open_report = services.replay_report()
    assert open_report.abuse_open == truth.abuse_mails
    harden()
    report = services.replay_report()  # the policy changed: not the cached report
    assert (report.abuse, report.abuse_stopped, report.abuse_open) == (
        truth.abuse_mails,
        truth.abuse_mails,
        0,
    )
    assert {(row.sender, row.client_ip) for row in report.changed} == {
        (sender, ip) for ip, sender in HOME_USERS
    }


def test_migration_draft_goes_to_the_upload_and_the_wildcard_waits_for_it(
    open_gateway, archive, make_user
):
    path, truth = archive
    read(path)
    harden()
    user = make_user()
    with pytest.raises(services.WildcardStillNeeded):
        services.wildcard_remove(pattern=f"*@{INNER}")
    upload = services.migration_draft(user=user)
    assert isinstance(upload, AliasUpload)
    lines = bytes(upload.data).decode().splitlines()
    assert lines[0] == "alias,mapped_to,comment"
    assert len(lines) - 1 == len(truth.staff_received)
    plan = services.migration_plan()
    assert (plan.tier_now, plan.tier_needed) == (50, 250)  # 1 account + 200 aliases
    # Beyond the licence the draft is still stored (issue 9: a licence overflow is a policy
    # risk, shown and blocking 設定の反映, not a malformed file) ...
    over = alias_services.upload_confirm(token=upload.token, user=user)
    assert (over.written, over.created, [f.code for f in over.errors]) == (
        True,
        len(truth.staff_received),
        ["alias.E007"],
    )
    assert "alias.E007" in {f.code for f in policy_lint() if f.is_error}
    # ... until the licence is raised.
    server = ServerSettings.load()
    server.licence = "250"
    server.save()
    assert "alias.E007" not in {f.code for f in policy_lint() if f.is_error}
    assert services.migration_plan().drafts == ()
    assert services.wildcard_remove(pattern=f"*@{INNER}") == 1
    assert not Alias.objects.filter(pattern=f"*@{INNER}").exists()
    assert services.migration_plan().drafts == ()


def test_retry_queue_needs_a_readable_work_folder(settings, tmp_path, db):
    settings.CC_MAIL_WORK_DIR = ""
    assert services.retry_queue() is None
    settings.CC_MAIL_WORK_DIR = str(tmp_path)
    assert services.retry_queue() is None
    (tmp_path / "domains" / "victim.example").mkdir(parents=True)
    (tmp_path / "domains" / "victim.example" / "1.RCP").write_bytes(b"abc")
    queue = services.retry_queue()
    assert queue is not None
    assert queue.envelopes == 1
