from __future__ import annotations

import gzip
import zipfile
from datetime import date
from pathlib import Path

import pytest

from maillogs import logfile
from maillogs.logfile import AcceptRecord, InRecord, OtherRecord, Stamp, UnknownLine

INLOG = (
    "<B0000097403@gw.example.jp> [11/Nov/2017:17:58:25] 192.168.10.25 pc25.example.jp "
    "taro@example.jp hanako@partner.example"
)


def records(path: Path) -> list[logfile.Record]:
    return [
        record for source in logfile.iter_sources(path) for record in logfile.read_source(source)
    ]


def test_parse_inlog_reads_the_documented_example():
    record = logfile.parse_inlog(INLOG, source="inlog/gw/1", line=3)
    assert record == InRecord(
        "inlog/gw/1",
        3,
        "B0000097403",
        Stamp(date(2017, 11, 11), "17:58:25"),
        "192.168.10.25",
        "pc25.example.jp",
        "taro@example.jp",
        ("hanako@partner.example",),
    )


@pytest.mark.parametrize(
    ("line", "sender", "recipients", "missing"),
    [
        # one field fewer: the sender is missing, the fifth field is the recipient
        (
            "<B1@gw> [11/Nov/2017:17:58:25] 203.0.113.9 mx.example taro@example.jp",
            "",
            ("taro@example.jp",),
            True,
        ),
        # TABs and several spaces separate fields too
        (
            "<B1@gw>\t[11/Nov/2017:17:58:25]  203.0.113.9\tmx a@b.example\tc@example.jp",
            "a@b.example",
            ("c@example.jp",),
            False,
        ),
        # several recipients on one line
        (
            "<B1> [11/Nov/2017:17:58:25] ::1 localhost a@example.jp b@x.example c@y.example",
            "a@example.jp",
            ("b@x.example", "c@y.example"),
            False,
        ),
        # angle brackets and the null sender
        (
            "<B1@gw> [11/Nov/2017:17:58:25] 203.0.113.9 mx <> <c@example.jp>",
            "<>",
            ("c@example.jp",),
            False,
        ),
    ],
)
def test_parse_inlog_variants(line, sender, recipients, missing):
    record = logfile.parse_inlog(line)
    assert record is not None
    assert (record.sender, record.recipients, record.sender_missing) == (
        sender,
        recipients,
        missing,
    )


@pytest.mark.parametrize(
    "line",
    [
        "garbage",
        "<B1@gw> [11/Nov/2017:17:58:25] 203.0.113.9 mx",  # too few fields
        "<X1@gw> [11/Nov/2017:17:58:25] 203.0.113.9 mx a@b c@d",  # not a message id
        "<B1@gw> [31/Feb/2017:17:58:25] 203.0.113.9 mx a@b c@d",  # no such day
        "<B1@gw> [11/Nov/2017:24:00:00] 203.0.113.9 mx a@b c@d",  # no such hour
        "<B1@gw> [11/Nov/2017:17:58:25] not-an-ip mx a@b c@d",
    ],
)
def test_parse_inlog_refuses_what_is_not_an_inlog_line(line):
    assert logfile.parse_inlog(line) is None


def test_parse_acceptlog_reads_both_documented_records():
    connect = logfile.parse_acceptlog(
        "[30/Nov/2017:08:20:44], (gw.example.jp), [203.0.113.7]:25, Client accept now."
    )
    result = logfile.parse_acceptlog(
        "[30/Nov/2017:08:22:06], (gw.example.jp), mx.sender.example [203.0.113.7], "
        "someone@sender.example,<B0000097586>,ok"
    )
    abort = logfile.parse_acceptlog(
        "[30/Nov/2017:08:23:00], (gw.example.jp), unknown [198.51.100.1], whatever, abort"
    )
    day = date(2017, 11, 30)
    assert connect == AcceptRecord("", 0, Stamp(day, "08:20:44"), "203.0.113.7", None)
    assert result == AcceptRecord(
        "", 0, Stamp(day, "08:22:06"), "203.0.113.7", "ok", "someone@sender.example", "B0000097586"
    )
    assert abort is not None
    assert (abort.client_ip, abort.result, abort.sender) == ("198.51.100.1", "abort", "")


def test_parse_other_takes_the_id_the_retry_suffix_the_day_and_a_bracketed_address():
    record = logfile.parse_other(
        "senderlog", "<B0000097586-R0001@gw> [30/Nov/2017:09:00:00] from - to [x@victim.example]"
    )
    assert record == OtherRecord(
        "senderlog",
        "",
        0,
        Stamp(date(2017, 11, 30), "09:00:00"),
        "B0000097586",
        True,
        "x@victim.example",
    )
    assert logfile.parse_other("faillog", "[Unable to deliver to destination domain]") is None


def test_folder_read_handles_crlf_cp932_garbage_and_a_truncated_last_line(tmp_path):
    folder = tmp_path / "inlog" / "GW01"
    folder.mkdir(parents=True)
    lines = [
        INLOG.encode() + b"\r\n",
        (
            "<B2@gw> [11/Nov/2017:18:00:00] 192.168.10.26 営業部PC taro@example.jp a@b.example\r\n"
        ).encode("cp932"),
        b"\xff\xfe garbage \x81\r\n",
        b"\r\n",
        b"<B3@gw> [11/Nov/2017:18:01:00] 192.168.10.2",
    ]
    (folder / "20171111").write_bytes(b"".join(lines))
    found = records(tmp_path / "inlog")
    assert [type(record).__name__ for record in found] == [
        "InRecord",
        "InRecord",
        "UnknownLine",
        "UnknownLine",
    ]
    second = found[1]
    assert isinstance(second, InRecord)
    assert (second.helo, second.line, second.source) == ("営業部PC", 2, "inlog/GW01/20171111")
    garbage, truncated = found[2], found[3]
    assert isinstance(garbage, UnknownLine)
    assert (garbage.line, garbage.truncated) == (3, False)
    assert isinstance(truncated, UnknownLine)
    assert (truncated.line, truncated.truncated) == (5, True)


def test_log_is_named_by_the_folder_or_sniffed(tmp_path):
    (tmp_path / "acceptlog" / "gw").mkdir(parents=True)
    (tmp_path / "acceptlog" / "gw" / "1").write_text(
        "[30/Nov/2017:08:20:44], (gw), [203.0.113.7]:25, Client accept now.\n"
    )
    (tmp_path / "mystery.txt").write_text(INLOG + "\n")
    (tmp_path / "faillog-1.txt").write_text("<B9@gw> [30/Nov/2017:09:00:00] x\n")
    logs = {source.name: source.log for source in logfile.iter_sources(tmp_path, display="w")}
    assert logs == {
        "w/mystery.txt": "inlog",
        "w/acceptlog/gw/1": "acceptlog",
        "w/faillog-1.txt": "faillog",
    }
    # inlog first: later logs look message ids up in it
    assert [s.log for s in logfile.iter_sources(tmp_path)] == ["inlog", "acceptlog", "faillog"]


def test_gz_file_is_read_and_its_size_is_the_uncompressed_one(tmp_path):
    data = (INLOG + "\n").encode() * 3
    path = tmp_path / "inlog-20171111.gz"
    path.write_bytes(gzip.compress(data))
    (source,) = logfile.iter_sources(path)
    assert (source.log, source.size) == ("inlog", len(data))
    assert [r.line for r in logfile.read_source(source)] == [1, 2, 3]


def test_zip_of_a_log_folder_with_a_gz_member(tmp_path):
    path = tmp_path / "logs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("epms/inlog/GW/20171111", INLOG + "\n")
        archive.writestr("epms/inlog/GW/20171112.gz", gzip.compress((INLOG + "\n").encode()))
        archive.writestr("epms/faillog/GW/20171111", "<B0000097403@gw> [11/Nov/2017:19:00:00] x\n")
    found = records(path)
    assert [(type(r).__name__, r.source) for r in found] == [
        ("InRecord", "logs.zip:epms/inlog/GW/20171111"),
        ("InRecord", "logs.zip:epms/inlog/GW/20171112.gz"),
        ("OtherRecord", "logs.zip:epms/faillog/GW/20171111"),
    ]


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../../etc/passwd", "path leaves the folder (..)"),
        ("inlog/../../x", "path leaves the folder (..)"),
        ("/etc/inlog", "absolute path"),
        ("C:\\mail\\inlog\\x", "absolute path"),
        ("..\\..\\x", "path leaves the folder (..)"),
    ],
)
def test_zip_member_leaving_the_folder_refuses_the_whole_archive(tmp_path, member, reason):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inlog/GW/1", INLOG + "\n")
        archive.writestr(member, INLOG + "\n")
    with pytest.raises(logfile.ArchiveRefused) as refused:
        logfile.iter_sources(path)
    assert refused.value.reason == reason
    assert refused.value.name == f"evil.zip:{member}"


def test_broken_zip_is_refused(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(logfile.ArchiveRefused):
        logfile.iter_sources(path)


def test_window_reads_only_complete_lines_from_an_offset(tmp_path):
    path = tmp_path / "inlog"
    first = (INLOG + "\n").encode()
    path.write_bytes(first + first + b"<B3@gw> [11/Nov/2017:18:01:00] 192.")
    end = logfile.complete_end(path, path.stat().st_size)
    assert end == 2 * len(first)
    (source,) = logfile.iter_sources(path)
    window = logfile.Source(source.name, "inlog", end, source.open, offset=len(first), limit=end)
    assert [type(r).__name__ for r in logfile.read_source(window)] == ["InRecord"]


def test_progress_is_reported_in_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(logfile, "PROGRESS_EVERY", 2)
    path = tmp_path / "inlog"
    path.write_text((INLOG + "\n") * 5)
    (source,) = logfile.iter_sources(path)
    seen: list[int] = []
    list(logfile.read_source(source, progress=seen.append))
    assert seen == [2 * (len(INLOG) + 1), 4 * (len(INLOG) + 1)]
