"""The E-Post gateway's logs, read as a stream (no Django; ``../shared/spec/epost-logs.md``).

Where the logs are
==================

Each log is a folder ``<mail work folder>/<log>/<computer name>/`` holding one file per day
(the file-name pattern is unknown: every regular file is read, in name order, and the date is
taken from the lines). :func:`iter_sources` accepts a log file, such a folder, the mail work
folder itself, a ``.gz`` file or a ``.zip`` archive of any of these. The log a file belongs to
is the nearest path component named like a log (``inlog``, ``acceptlog``, ``outlog``,
``outlocallog``, ``senderlog``, ``faillog``, ``receivelog``; a file name that starts with one
counts too); otherwise its first lines decide (``<B…>`` first: inlog; ``[time], (`` first:
acceptlog); otherwise every line of it is an unknown line. A zip member whose path is absolute,
holds ``..`` or a drive letter would leave the folder: the whole archive is refused
(:class:`ArchiveRefused`) before anything is read.

Lines
=====

Lines end in LF or CRLF; a line that is not UTF-8 is read as CP932 (Japanese Windows builds),
and bytes that are neither become U+FFFD. A last line without its line ending is read when it
parses and is otherwise an unknown line marked ``truncated``.

**inlog** — one accepted mail; fields separated by one or more spaces or TABs::

    <B0000097403@gw.example.jp> [11/Nov/2017:17:58:25] 192.168.10.25 pc25.example.jp \
        taro@example.jp hanako@partner.example          (one line, wrapped here)

    message id   ``<B`` digits, optionally ``@`` the gateway's name, ``>``
    time         ``[dd/Mon/yyyy:HH:MM:SS]``, the gateway's local time, no zone
    client IP    IPv4 or IPv6
    HELO         the name the client gave (any bytes; CP932 allowed)
    sender       optional: with exactly five fields it is missing (null sender or mail the
                 gateway forwarded) and the fifth field is the recipient; ``<>`` is the null
                 sender; angle brackets around an address are removed
    recipients   one or more (one line per recipient or several on one line: both accepted)

**acceptlog** — comma-separated, two records per connection, not necessarily adjacent::

    [30/Nov/2017:08:20:44], (gw.example.jp), [203.0.113.7]:25, Client accept now.
    [30/Nov/2017:08:22:06], (gw.example.jp), mx.sender.example [203.0.113.7], \
        someone@sender.example,<B0000097586>,ok          (one line, wrapped here)

A record whose last field is ``ok`` or ``abort`` is a result (the client IP is the bracketed
address in the third field, the sender and message id are taken when present); any other
record with a bracketed client address is a connection. The refused variants' middle fields
are unknown and not interpreted.

**outlog, outlocallog, senderlog, faillog, receivelog** — only what is documented is read: the
message id (``B`` digits, with an optional retry suffix such as ``-R0001``), the bracketed time,
and a bracketed address ``[user@domain]`` when the line has one. A line without a message id
and a time is an unknown line.

Memory stays constant in the size of the input: records are yielded one by one and nothing is
kept but the current line (and, for sniffing, a file's first 20 lines).
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import IO, Final, Literal, cast

LOG_NAMES: Final = (
    "inlog",
    "acceptlog",
    "receivelog",
    "outlog",
    "outlocallog",
    "senderlog",
    "faillog",
)
LogName = Literal[
    "inlog", "acceptlog", "receivelog", "outlog", "outlocallog", "senderlog", "faillog", "unknown"
]
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
SNIFF_LINES: Final = 20
UNKNOWN_TEXT_LIMIT: Final = 200


class ArchiveRefused(ValueError):
    """An archive that cannot be read safely (a member leaving the folder, a broken zip)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    """A log time: the day and ``HH:MM:SS``, the gateway's local time (no zone)."""

    day: date
    clock: str

    @property
    def hour(self) -> int:
        return int(self.clock[:2])

    @property
    def text(self) -> str:
        return f"{self.day.isoformat()} {self.clock}"


@dataclass(frozen=True, slots=True)
class InRecord:
    """One inlog line: an accepted mail."""

    source: str
    line: int
    message_id: str
    stamp: Stamp
    client_ip: str
    helo: str
    sender: str  # "" when the field is missing, "<>" for the null sender
    recipients: tuple[str, ...]
    sender_missing: bool = False


@dataclass(frozen=True, slots=True)
class AcceptRecord:
    """One acceptlog record: a connection (``result`` None) or its result ("ok"/"abort")."""

    source: str
    line: int
    stamp: Stamp
    client_ip: str
    result: Literal["ok", "abort"] | None
    sender: str = ""
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class OtherRecord:
    """A line of outlog, outlocallog, senderlog, faillog or receivelog: only its id and day."""

    log: LogName
    source: str
    line: int
    stamp: Stamp
    message_id: str
    retry: bool
    address: str = ""


@dataclass(frozen=True, slots=True)
class UnknownLine:
    """A line no documented format describes: kept (shortened) with its place, never fatal."""

    log: LogName
    source: str
    line: int
    text: str
    truncated: bool = False


Record = InRecord | AcceptRecord | OtherRecord | UnknownLine


@dataclass(frozen=True, slots=True)
class Source:
    """One readable stream of log lines: its display name, its log and how to open it."""

    name: str
    log: LogName
    size: int  # uncompressed bytes (as far as known): the unit of progress
    open: Callable[[], IO[bytes]]
    offset: int = 0  # start reading here (incremental reads of a grown file)
    limit: int | None = None  # stop before this byte (the end of the last complete line)


# --- time and fields -----------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _day(text: str) -> date | None:
    parts = text.split("/")
    if len(parts) != 3:
        return None
    day, month, year = parts
    number = _MONTHS.get(month)
    if number is None or not day.isdigit() or not year.isdigit() or len(year) != 4:
        return None
    try:
        return date(int(year), number, int(day))
    except ValueError:
        return None


@lru_cache(maxsize=90000)
def _clock(text: str) -> bool:
    if len(text) != 8 or text[2] != ":" or text[5] != ":":
        return False
    hour, minute, second = text[:2], text[3:5], text[6:]
    if not (hour.isdigit() and minute.isdigit() and second.isdigit()):
        return False
    return int(hour) <= 23 and int(minute) <= 59 and int(second) <= 60


def parse_stamp(text: str) -> Stamp | None:
    """``[11/Nov/2017:17:58:25]`` (brackets optional) as a :class:`Stamp`; None if malformed."""
    if len(text) == 22 and text[0] == "[" and text[21] == "]":
        text = text[1:21]
    else:
        text = text.strip().removeprefix("[").removesuffix("]")
    if len(text) != 20 or text[11] != ":":
        return None
    day = _day(text[:11])
    clock = text[12:]
    if day is None or not _clock(clock):
        return None
    return Stamp(day, clock)


@lru_cache(maxsize=65536)
def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_MESSAGE_ID = re.compile(r"^<(B\d+)(?:@[^>\s]*)?>$")


def _address(text: str) -> str:
    if text[0] == "<" and text[-1] == ">" and text != "<>":
        return text[1:-1]
    return text


def decode_line(raw: bytes) -> str:
    """UTF-8, else CP932, else UTF-8 with U+FFFD for what neither can read."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp932")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def _short(text: str) -> str:
    return text if len(text) <= UNKNOWN_TEXT_LIMIT else text[:UNKNOWN_TEXT_LIMIT] + "…"


# --- line parsers ----------------------------------------------------------------------------


def parse_inlog(text: str, *, source: str = "", line: int = 0) -> InRecord | None:
    """One inlog line (without its ending) as a record; None when it is not one."""
    fields = text.split()
    if len(fields) < 5:
        return None
    match = _MESSAGE_ID.match(fields[0])
    if match is None:
        return None
    stamp = parse_stamp(fields[1])
    if stamp is None or not _is_ip(fields[2]):
        return None
    count = len(fields)
    recipients: tuple[str, ...]
    if count == 6:
        sender, recipients, missing = _address(fields[4]), (_address(fields[5]),), False
    elif count == 5:
        sender, recipients, missing = "", (_address(fields[4]),), True
    else:
        sender = _address(fields[4])
        recipients = tuple(_address(field) for field in fields[5:])
        missing = False
    return InRecord(
        source, line, match[1], stamp, fields[2], fields[3], sender, recipients, missing
    )


_BRACKETED_IP = re.compile(r"\[([0-9A-Fa-f:.]+)\]")
_ACCEPT_ID = re.compile(r"<(B\d+)(?:@[^>]*)?>")


def parse_acceptlog(text: str, *, source: str = "", line: int = 0) -> AcceptRecord | None:
    """One acceptlog record as a record; None when it is not one."""
    fields = [field.strip() for field in text.split(",")]
    if len(fields) < 3:
        return None
    stamp = parse_stamp(fields[0])
    if stamp is None or not fields[1].startswith("("):
        return None
    found = _BRACKETED_IP.search(fields[2])
    if found is None or not _is_ip(found[1]):
        return None
    last = fields[-1].lower()
    if last not in ("ok", "abort"):
        return AcceptRecord(source, line, stamp, found[1], None)
    result: Literal["ok", "abort"] = "ok" if last == "ok" else "abort"
    sender = message_id = ""
    for field in fields[3:-1]:
        id_match = _ACCEPT_ID.fullmatch(field)
        if id_match:
            message_id = id_match[1]
        elif "@" in field or field == "<>":
            sender = _address(field)
    return AcceptRecord(source, line, stamp, found[1], result, sender, message_id)


_OTHER_ID = re.compile(r"<?(B\d+)(-R\d+)?(?:@[^>\s]*)?>?")
_OTHER_STAMP = re.compile(r"\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2})\]")
_OTHER_ADDRESS = re.compile(r"\[([^\[\]\s@]+@[^\[\]\s@]+)\]")


def parse_other(log: LogName, text: str, *, source: str = "", line: int = 0) -> OtherRecord | None:
    """A delivery or receive-detail line: message id, retry suffix, day; None without them."""
    found_stamp = _OTHER_STAMP.search(text)
    stamp = parse_stamp(found_stamp[1]) if found_stamp else None
    if stamp is None:
        return None
    found_id = None
    for candidate in _OTHER_ID.finditer(text):
        start = candidate.start()
        if start == 0 or not text[start - 1].isalnum():
            found_id = candidate
            break
    if found_id is None:
        return None
    address = _OTHER_ADDRESS.search(text)
    return OtherRecord(
        log,
        source,
        line,
        stamp,
        found_id[1],
        found_id[2] is not None,
        address[1] if address else "",
    )


# --- streams ---------------------------------------------------------------------------------


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Each line without its LF/CRLF, and whether it had a line ending."""
    for raw in stream:
        if raw.endswith(b"\n"):
            yield raw[:-2] if raw.endswith(b"\r\n") else raw[:-1], True
        else:
            yield raw.removesuffix(b"\r"), False


Progress = Callable[[int], None]
PROGRESS_EVERY: Final = 16384


def read_records(
    source: Source, stream: IO[bytes], *, first_line: int = 1, progress: Progress | None = None
) -> Iterator[Record]:
    """Every record of one source, in order; unknown lines are yielded, never raised.

    ``progress`` is called every few thousand lines with the bytes read so far.
    """
    log = source.log
    name = source.name
    number = first_line - 1
    consumed = 0
    for raw, ended in iter_lines(stream):
        number += 1
        if progress is not None:
            consumed += len(raw) + 1
            if not number % PROGRESS_EVERY:
                progress(consumed)
        if not raw.strip():
            continue
        text = decode_line(raw)
        record: Record | None
        if log == "inlog":
            record = parse_inlog(text, source=name, line=number)
        elif log == "acceptlog":
            record = parse_acceptlog(text, source=name, line=number)
        elif log == "unknown":
            record = None
        else:
            record = parse_other(log, text, source=name, line=number)
        yield record or UnknownLine(log, name, number, _short(text), truncated=not ended)


def sniff_log(head: Iterable[bytes]) -> LogName:
    """Which log a file of unknown name holds, from its first lines."""
    for raw in head:
        text = decode_line(raw).strip()
        if not text:
            continue
        if parse_inlog(text) is not None:
            return "inlog"
        if parse_acceptlog(text) is not None:
            return "acceptlog"
    return "unknown"


def log_of_path(parts: Iterable[str]) -> LogName | None:
    """The log named by the nearest path component (file name first), else None."""
    for part in reversed(list(parts)):
        lowered = part.lower()
        for name in sorted(LOG_NAMES, key=len, reverse=True):
            if lowered == name or lowered.startswith(name):
                return name  # type: ignore[return-value]
    return None


def _unwrapped_name(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def _sniffed(open_stream: Callable[[], IO[bytes]]) -> LogName:
    with open_stream() as stream:
        head = []
        for raw, _ended in iter_lines(stream):
            head.append(raw)
            if len(head) >= SNIFF_LINES:
                break
    return sniff_log(head)


def _gzip_size(path: Path) -> int:
    """The uncompressed size a gzip file records in its last four bytes (modulo 4 GiB)."""
    size = path.stat().st_size
    if size < 18:
        return size
    with path.open("rb") as stream:
        stream.seek(-4, os.SEEK_END)
        return int.from_bytes(stream.read(4), "little") or size


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    if path.name.lower().endswith(".gz"):
        return lambda: cast(IO[bytes], gzip.open(path, "rb"))
    return lambda: path.open("rb")


def _member_path_refusal(name: str) -> str | None:
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        return "absolute path"
    if ".." in PurePosixPath(normal).parts:
        return "path leaves the folder (..)"
    return None


def _zip_sources(path: Path, display: str) -> list[Source]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveRefused(display, f"not a readable zip archive ({error})") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        for info in members:
            refusal = _member_path_refusal(info.filename)
            if refusal:
                raise ArchiveRefused(f"{display}:{info.filename}", refusal)
    sources: list[Source] = []
    for info in sorted(members, key=lambda item: item.filename):
        member = info.filename

        def open_member(member: str = member) -> IO[bytes]:
            archive = zipfile.ZipFile(path)
            stream: IO[bytes] = archive.open(member)
            if member.lower().endswith(".gz"):
                stream = cast(IO[bytes], gzip.GzipFile(fileobj=stream))
            return cast(IO[bytes], _Closing(stream, archive))

        parts = PurePosixPath(_unwrapped_name(member.replace("\\", "/"))).parts
        log = log_of_path(parts) or _sniffed(open_member)
        sources.append(Source(f"{display}:{member}", log, info.file_size, open_member))
    return sources


class _Closing(io.RawIOBase):
    """A member stream that also closes its archive."""

    def __init__(self, stream: IO[bytes], archive: zipfile.ZipFile) -> None:
        self._stream = stream
        self._archive = archive

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._archive.close()
        super().close()


def _buffered(stream: IO[bytes]) -> IO[bytes]:
    if isinstance(stream, _Closing):
        return cast(IO[bytes], io.BufferedReader(stream, 1 << 16))
    return stream


class _Window(io.RawIOBase):
    """Bytes ``[offset, limit)`` of a seekable stream."""

    def __init__(self, stream: IO[bytes], offset: int, limit: int) -> None:
        stream.seek(offset)
        self._stream = stream
        self._left = max(0, limit - offset)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def open_source(source: Source) -> IO[bytes]:
    """The source's bytes from its offset (up to its limit), buffered for line iteration."""
    stream = source.open()
    if source.limit is not None:
        return cast(IO[bytes], io.BufferedReader(_Window(stream, source.offset, source.limit)))
    stream = _buffered(stream)
    if source.offset:
        stream.seek(source.offset)
    return stream


def complete_end(path: Path, size: int) -> int:
    """The end of the last complete line of the first ``size`` bytes of ``path`` (0 if none):
    a line still being written is left for the next read."""
    with path.open("rb") as stream:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            stream.seek(start)
            chunk = stream.read(end - start)
            found = chunk.rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0


def iter_sources(path: Path, *, display: str | None = None) -> list[Source]:
    """Every log file under ``path`` (a file, a folder, ``.gz``, ``.zip``), ordered so that
    inlog comes first, then by name; raises :class:`ArchiveRefused` for an unsafe archive."""
    display = display or path.name
    found: list[Source] = []
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for file in sorted(files):
                child = Path(root) / file
                relative = child.relative_to(path)
                found.extend(iter_sources(child, display=f"{display}/{relative.as_posix()}"))
        return sort_sources(found)
    if path.name.lower().endswith(".zip"):
        return sort_sources(_zip_sources(path, display))
    opener = _opener(path)
    parts = Path(_unwrapped_name(display)).parts
    log = log_of_path(parts) or _sniffed(opener)
    gz = path.name.lower().endswith(".gz")
    return [Source(display, log, _gzip_size(path) if gz else path.stat().st_size, opener)]


def sort_sources(sources: Iterable[Source]) -> list[Source]:
    """inlog first (later logs look message ids up in it), then the others, each by name."""
    order = {name: index for index, name in enumerate((*LOG_NAMES, "unknown"))}
    return sorted(sources, key=lambda source: (order[source.log], source.name))


def read_source(source: Source, *, progress: Progress | None = None) -> Iterator[Record]:
    """Every record of ``source`` (from its offset)."""
    with open_source(source) as stream:
        yield from read_records(source, stream, progress=progress)


def utf8_or_cp932(data: bytes) -> str:
    """Decode a whole small text (a Domain.mri file) the way lines are decoded."""
    return "\n".join(decode_line(line) for line in data.splitlines())
