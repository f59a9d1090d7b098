from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from maillogs.models import LogRun
from tests.bench.loggen import HOME_USERS, INNER
from tests.maillogs.conftest import harden, write_archive

pytestmark = pytest.mark.django_db

CLEAN = (
    f"<B1@gw> [02/Nov/2026:10:00:00] 192.168.1.5 pc a@{INNER} b@partner.example\n"
    f"<B2@gw> [03/Nov/2026:10:00:00] 203.0.113.5 mx b@partner.example a@{INNER}\n"
)


def run(*args: str) -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_read_logs_exits_1_on_abuse_with_the_json_summary(open_gateway, tmp_path):
    path = tmp_path / "logs.zip"
    truth = write_archive(path, 2000)
    status, out = run("read_logs", str(path), "--json")
    summary = json.loads(out)
    assert status == 1
    assert summary["abuse_found"] is True
    assert summary["mails"] == truth.mails
    assert summary["relayed_outside"] == truth.abuse_mails + truth.home_mails
    assert summary["run"] == LogRun.objects.get().pk
    assert set(summary) >= {
        "files",
        "from",
        "to",
        "lines",
        "forged",
        "forged_inbound",
        "unknown_lines",
        "sessions_not_kept",
        "inside_basis",
        "by_client",
        "by_sender",
        "spikes",
        "retries",
    }
    assert summary["by_client"][0].keys() == {"client_ip", "helo", "mails", "relayed", "forged"}


def test_read_logs_exits_0_on_a_clean_log_and_honours_since(open_gateway, tmp_path):
    path = tmp_path / "inlog"
    path.write_text(CLEAN)
    status, out = run("read_logs", str(path), "--since", "2026-11-03")
    assert status == 0
    assert out.startswith("1 file(s), 2026-11-03 10:00:00 .. 2026-11-03 10:00:00: 1 mail(s), 0 ")


def test_read_logs_bad_input_is_one_line_and_exit_2(open_gateway, tmp_path):
    with pytest.raises(CommandError) as missing:
        call_command("read_logs", str(tmp_path / "nope"))
    assert missing.value.returncode == 2
    evil = tmp_path / "evil.zip"
    write_archive(evil, 10, evil=True)
    with pytest.raises(CommandError) as refused:
        call_command("read_logs", str(evil))
    assert refused.value.returncode == 2
    assert "evil.zip:../outside" in str(refused.value)
    with pytest.raises(CommandError) as bad_date:
        call_command("read_logs", str(evil), "--since", "yesterday")
    assert bad_date.value.returncode == 2
    assert not LogRun.objects.exists()


def test_replay_logs_reports_the_pending_policy(open_gateway, tmp_path):
    with pytest.raises(CommandError) as nothing:
        call_command("replay_logs")
    assert nothing.value.returncode == 2
    path = tmp_path / "logs.zip"
    truth = write_archive(path)
    run("read_logs", str(path))
    status, out = run("replay_logs", "--json")
    assert status == 1  # the open gateway still relays the burst
    assert json.loads(out)["abuse_still_relayed"] == truth.abuse_mails
    harden()
    status, out = run("replay_logs", "--json")
    summary = json.loads(out)
    assert status == 0
    assert (summary["abuse"], summary["abuse_stopped"], summary["abuse_still_relayed"]) == (
        truth.abuse_mails,
        truth.abuse_mails,
        0,
    )
    assert {(row["sender"], row["client_ip"], row["hint"]) for row in summary["changed"]} == {
        (sender, ip, "smtp-auth") for ip, sender in HOME_USERS
    }
    status, text = run("replay_logs")
    assert status == 0
    assert "changes: staff007@example.co.jp from 198.51.100.77: relay -> reject" in text
