"""Pulling a gateway's logs and retry queue over SFTP into ログ分析 (a real sshd)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateways import services
from gateways.models import Gateway
from maillogs.models import LogRun
from tests.servers import SshServer

pytestmark = pytest.mark.django_db

LINE = (
    "<B0000097403@gw.example.jp> [11/Nov/2017:17:58:25] 192.168.1.25 pc25.example.co.jp "
    "taro@example.co.jp hanako@partner.example\n"
)
LINE2 = LINE.replace("97403", "97404").replace("17:58:25", "18:01:00")


@pytest.fixture
def gateway(
    policy: None,
    sshd: SshServer,
    make_gateway: Callable[..., Gateway],
    settings: Any,
    tmp_path: Path,
) -> Gateway:
    settings.VAR_DIR = tmp_path / "var"
    return make_gateway(sshd)


def test_pull_mirrors_new_lines_only_and_reads_them_into_log_analysis(
    gateway: Gateway, sshd: SshServer
) -> None:
    log = sshd.work_folder / "inlog" / "gw" / "20171111"
    log.parent.mkdir(parents=True)
    log.write_text(LINE)
    queue = sshd.work_folder / "domains" / "partner.example"
    queue.mkdir(parents=True)
    (queue / "Domain.mri").write_text("Domain-name: partner.example\nTry-number: 3\n")
    (queue / "B1.RCP").write_bytes(b"x" * 120)
    (sshd.work_folder / "holding").mkdir()
    (sshd.work_folder / "holding" / "B1.MSG").write_bytes(b"y" * 5000)

    first = services.gateway_logs_run(None, gateway_id=gateway.pk)

    assert (first["files"], first["bytes"], first["envelopes"]) == (1, len(LINE), 1)
    run = LogRun.objects.get(pk=first["run"])
    assert run.label.startswith("gw1 (SFTP ")
    mirror = services.mirror_folder(gateway)
    assert (mirror / "inlog" / "gw" / "20171111").read_text() == LINE
    assert (mirror / "holding" / "B1.MSG").stat().st_size == 5000  # sparse: no body copied
    gateway.refresh_from_db()
    assert gateway.retry_queue["envelopes"] == 1
    assert gateway.retry_queue["outside"] == [
        {"domain": "partner.example", "envelopes": 1, "bytes": 5120}
    ]

    with log.open("a") as stream:
        stream.write(LINE2)
    second = services.gateway_logs_run(None, gateway_id=gateway.pk)
    assert (second["files"], second["bytes"]) == (1, len(LINE2))
    assert (mirror / "inlog" / "gw" / "20171111").read_text() == LINE + LINE2

    nothing = services.gateway_logs_run(None, gateway_id=gateway.pk)
    assert (nothing["files"], nothing["bytes"], nothing["run"]) == (0, 0, None)

    log.write_text(LINE2)  # rotated: shorter than what was mirrored
    third = services.gateway_logs_run(None, gateway_id=gateway.pk)
    assert (third["files"], third["bytes"]) == (1, len(LINE2))
    assert (mirror / "inlog" / "gw" / "20171111").read_text() == LINE2

    (queue / "B1.RCP").unlink()
    services.gateway_logs_run(None, gateway_id=gateway.pk)
    gateway.refresh_from_db()
    assert gateway.retry_queue["envelopes"] == 0


def test_pull_from_an_unreachable_gateway_is_a_clear_job_error(
    gateway: Gateway,
) -> None:
    from jobs.services import JobError

    Gateway.objects.filter(pk=gateway.pk).update(port=1)
    with pytest.raises(JobError) as caught:
        services.gateway_logs_run(None, gateway_id=gateway.pk)
    assert str(caught.value) == (
        "ログを取り込めませんでした: 127.0.0.1:1: 接続を拒否されました(サービスは起動していますか?)"
    )


def test_pull_gateway_logs_command_for_cron(gateway: Gateway, sshd: SshServer) -> None:
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    log = sshd.work_folder / "inlog" / "gw" / "20171111"
    log.parent.mkdir(parents=True)
    log.write_text(LINE)
    out = StringIO()
    call_command("pull_gateway_logs", "--json", stdout=out)
    (row,) = json.loads(out.getvalue())
    assert (row["gateway"], row["files"], row["bytes"], row["error"]) == ("gw1", 1, len(LINE), "")
    out = StringIO()
    call_command("pull_gateway_logs", stdout=out)
    assert out.getvalue() == "gw1: 0 file(s), 0 byte(s) new, 0 envelope(s) in the retry queue\n"
    with pytest.raises(CommandError) as caught:
        call_command("pull_gateway_logs", "--gateway", "nope")
    assert caught.value.returncode == 2
