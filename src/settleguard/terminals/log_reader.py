"""Read a terminal/host ISO 8583 message log (报文日志) into decoded messages and bad lines.

A log comes from outside and is hostile: the file and each line are bounded, every line is decoded on its
own, and a line that cannot be read (odd hex, a truncated message, an absurd length, a field the CUP spec
does not define) becomes a :class:`BadLine` with its number and a zh/en reason — the rest is still read.
Card data never leaves this module: the PAN is masked and track, PIN and IC fields are dropped at once.

Line format (docs/terminals.md)::

    <ISO 8601 time with offset> <TX|RX> <terminal number> <hex: TPDU (5 bytes), header (6 bytes), ISO 8583>
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from sys import intern
from typing import BinaryIO, Final

import iso8583

from settleguard.masking import bounded
from settleguard.terminals.cup_spec import CUP_POS, HEADER_BYTES, KEPT_FIELDS
from settleguard.terminals.model import BadLine, Message

MAX_FILE_BYTES: Final = 256 * 1024 * 1024
MAX_LINE_CHARS: Final = 8192  # a CUP POS message is at most ~2 KB on the wire: 4 KB of hex plus the prefix
MAX_BAD_LINES: Final = 1000  # kept with their reason; beyond that only counted
_MIN_MESSAGE_BYTES: Final = HEADER_BYTES + 2 + 8  # header, MTI, primary bitmap
_TERMINAL: Final = re.compile(r"[0-9A-Za-z]{1,16}")
_TEXT_FIELDS: Final = ("37", "38", "39", "41", "42", "44", "49")
_REPEATED_FIELDS: Final = ("3", "39", "41", "42", "49", "60")
_SHORT: Final = 12  # a text this short cannot hold a card number (13+ digits): only checked to be printable


@dataclass(frozen=True, slots=True)
class LogRead:
    messages: list[Message]
    bad: list[BadLine]
    bad_total: int  # all bad lines, also those beyond MAX_BAD_LINES
    lines: int


class LogTooLarge(ValueError):
    def __init__(self, size: int) -> None:
        super().__init__(f"log file is {size} bytes, more than {MAX_FILE_BYTES}")
        self.size = size


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits kept (at most), the rest starred; a short or strange value is all stars."""
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:] if len(pan) >= 13 else "*" * len(pan)


@lru_cache(maxsize=4096)
def _safe_text(text: str) -> str:
    """:func:`bounded` to 40 characters, remembered: merchant numbers and the like repeat on every message."""
    return bounded(text, 40)


def read_log(path: Path) -> LogRead:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise LogTooLarge(size)
    with path.open("rb") as f:
        return parse_lines(_lines(f))


def _lines(f: BinaryIO) -> Iterator[bytes | None]:
    """Each line's bytes, or None for a line longer than MAX_LINE_CHARS (skipped to its end, never held)."""
    while True:
        chunk = f.readline(MAX_LINE_CHARS + 2)
        if not chunk:
            return
        if len(chunk) > MAX_LINE_CHARS + 1 or (len(chunk) == MAX_LINE_CHARS + 2 and not chunk.endswith(b"\n")):
            while chunk and not chunk.endswith(b"\n"):
                chunk = f.readline(1 << 16)
            yield None
        else:
            yield chunk


def parse_lines(lines: Iterable[bytes | str | None]) -> LogRead:
    messages: list[Message] = []
    bad: list[BadLine] = []
    bad_total = 0
    n = 0
    for n, raw in enumerate(lines, start=1):
        got = parse_line(n, raw)
        if isinstance(got, Message):
            messages.append(got)
        elif isinstance(got, BadLine):
            bad_total += 1
            if len(bad) < MAX_BAD_LINES:
                bad.append(got)
    return LogRead(messages, bad, bad_total, n)


def parse_line(n: int, raw: bytes | str | None) -> Message | BadLine | None:
    """The message of line ``n``, a :class:`BadLine`, or None for a blank or comment line."""
    if raw is None:
        return BadLine(n, f"行过长（超过 {MAX_LINE_CHARS} 字符），已跳过", f"line longer than {MAX_LINE_CHARS} characters, skipped")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")  # a comment may be Chinese; other columns are checked below
    text = raw.strip()
    if not text or text.startswith("#"):
        return None
    if len(text) > MAX_LINE_CHARS:
        return BadLine(n, f"行过长（超过 {MAX_LINE_CHARS} 字符）", f"line longer than {MAX_LINE_CHARS} characters")
    parts = text.split(None, 3)
    if len(parts) != 4:
        return BadLine(n, "应有四栏：时间 方向 终端号 报文", "expected four columns: time, direction, terminal, message")
    when, direction, terminal, hexdata = parts
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        return BadLine(n, f"时间无法识别：{bounded(when, 40)}", f"unreadable time: {bounded(when, 40)}")
    if at.tzinfo is None:
        return BadLine(n, "时间缺少时区偏移", "time without a UTC offset")
    if direction not in ("TX", "RX"):
        return BadLine(n, f"方向应为 TX 或 RX：{bounded(direction, 10)}", f"direction must be TX or RX: {bounded(direction, 10)}")
    if not _TERMINAL.fullmatch(terminal):
        return BadLine(n, "终端号格式错误", "bad terminal number", at=at)
    return decode_message(n, at, direction, terminal, hexdata)


def decode_message(n: int, at: datetime, direction: str, terminal: str, hexdata: str) -> Message | BadLine:
    def bad(zh: str, en: str) -> BadLine:
        return BadLine(n, zh, en, terminal=terminal, at=at)

    if len(hexdata) % 2:
        return bad("十六进制位数为奇数（报文不完整）", "odd number of hex digits (message cut)")
    try:  # fromhex refuses any non-hex character but skips ASCII whitespace: then fewer bytes than digits / 2
        raw = bytes.fromhex(hexdata)
    except ValueError:
        raw = b""
    if len(raw) * 2 != len(hexdata):
        return bad("报文含非十六进制字符", "message has non-hex characters")
    if len(raw) < _MIN_MESSAGE_BYTES:
        return bad(f"报文过短（{len(raw)} 字节）", f"message too short ({len(raw)} bytes)")
    try:
        decoded, _ = iso8583.decode(raw, CUP_POS)
    except iso8583.DecodeError as exc:
        return bad(f"报文无法解码：字段 {bounded(str(exc.field), 8)} 位置 {exc.pos}：{bounded(exc.msg, 120)}",
                   f"undecodable message: field {bounded(str(exc.field), 8)} at byte {exc.pos}: {bounded(exc.msg, 120)}")
    except KeyError as exc:  # the spec has no such field
        name = bounded(str(exc.args[0]) if exc.args else "?", 8)
        return bad(f"位图含规范未定义的字段 {name}", f"the bitmap names field {name}, not in the CUP POS spec")
    except (ValueError, TypeError, IndexError) as exc:  # pyiso8583 on input it does not foresee
        return bad(f"报文无法解码：{bounded(str(exc), 120)}", f"undecodable message: {bounded(str(exc), 120)}")
    mti = decoded.get("t", "")
    # only what the analysis and a person need (cup_spec.KEPT_FIELDS): card tracks, PIN block, IC data, keys and
    # MAC are not kept; the PAN is masked and text is bounded (short printable text as it is: no card number fits)
    fields: dict[str, str] = {k: decoded[k] for k in KEPT_FIELDS if k in decoded}
    if "2" in fields:
        fields["2"] = mask_pan(fields["2"])
    for key in _TEXT_FIELDS:
        v = fields.get(key)
        if v is not None and not (len(v) <= _SHORT and v.isprintable()):
            fields[key] = _safe_text(v)
    for key in _REPEATED_FIELDS:  # the same few values on most messages: one string each, not one per message
        v = fields.get(key)
        if v is not None:
            fields[key] = intern(v)
    return Message(n, at, intern(direction), intern(terminal), intern(mti), fields)
