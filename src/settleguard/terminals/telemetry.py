"""A terminal's telemetry (终端遥测) as settleguard keeps it, and the one reader of telemetry fields from outside
(a TMS export row or a heartbeat posted to the API). Pure: no I/O, no clock; the business zone is passed in.

Every field is optional: a TMS export names some, a heartbeat others. :func:`read_fields` takes a mapping of
canonical field names (:data:`FIELDS`) to raw values (text, numbers, booleans, or a nested PAXSTORE object
already flattened by terminals/registry.py) and returns a :class:`Telemetry` and the problems found, each
naming the field in zh and en and what was given (bounded, card-number-like runs masked). ICCID and IMEI
are device identifiers: kept whole once they are well-formed digits, never echoed unbounded.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from settleguard.masking import bounded

MAX_TEXT: Final = 256  # longest raw value looked at; longer is refused, not cut

COMM_TYPES: Final[dict[str, str]] = {
    "4g": "4g", "lte": "4g", "cellular": "4g", "mobile": "4g", "gprs": "4g", "3g": "4g", "5g": "4g", "移动网络": "4g",
    "wifi": "wifi", "wi-fi": "wifi", "wlan": "wifi", "无线": "wifi",
    "ethernet": "ethernet", "eth": "ethernet", "lan": "ethernet", "有线": "ethernet", "以太网": "ethernet",
}
PRINTER: Final[dict[str, str]] = {
    "ok": "ok", "normal": "ok", "正常": "ok", "ready": "ok",
    "no_paper": "no_paper", "nopaper": "no_paper", "out_of_paper": "no_paper", "paper_out": "no_paper", "缺纸": "no_paper",
    "fault": "fault", "error": "fault", "故障": "fault", "overheat": "fault", "过热": "fault",
}
_TRUE = {"true", "1", "yes", "y", "是", "已触发", "tampered"}
_FALSE = {"false", "0", "no", "n", "否", "正常", "未触发", "ok"}

# canonical field -> (zh, en) name, for error messages and the docs
FIELDS: Final[dict[str, tuple[str, str]]] = {
    "serial_no": ("序列号", "serial number"), "terminal_no": ("终端号", "terminal number"),
    "vendor": ("厂商", "vendor"), "model_name": ("型号", "model"), "os_version": ("系统版本", "OS version"),
    "firmware": ("固件版本", "firmware"), "app_version": ("应用版本", "app version"),
    "comm_type": ("通讯方式", "communication type"), "host": ("主机地址", "host"), "port": ("主机端口", "port"),
    "ip": ("IP 地址", "IP address"), "mask": ("子网掩码", "subnet mask"), "gateway": ("网关", "gateway"),
    "dns": ("DNS", "DNS"), "mac": ("MAC 地址", "MAC address"), "iccid": ("SIM 卡 ICCID", "SIM ICCID"),
    "imei": ("IMEI", "IMEI"), "last_sign_in_at": ("最后签到时间", "last sign-in"), "batch_no": ("批次号", "batch number"),
    "last_heartbeat_at": ("最后心跳时间", "last heartbeat"), "battery": ("电量", "battery"),
    "charging": ("充电中", "charging"), "signal_dbm": ("信号强度", "signal strength"),
    "reconnects": ("重连次数", "reconnections"), "echo_latency_ms": ("回响延迟", "echo latency"),
    "echo_loss_pct": ("丢包率", "echo loss"), "printer": ("打印机状态", "printer"), "tamper": ("防拆状态", "tamper"),
    "lat": ("纬度", "latitude"), "lng": ("经度", "longitude"), "home_lat": ("登记纬度", "registered latitude"),
    "home_lng": ("登记经度", "registered longitude"),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad value: the field (canonical name), zh/en reason naming the field and what was given."""

    field: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What one report says about a terminal; None = not reported (the stored value stays)."""

    serial_no: str | None = None
    terminal_no: str | None = None
    vendor: str | None = None
    model_name: str | None = None
    os_version: str | None = None
    firmware: str | None = None
    app_version: str | None = None
    comm_type: str | None = None
    host: str | None = None
    port: int | None = None
    ip: str | None = None
    mask: str | None = None
    gateway: str | None = None
    dns: str | None = None
    mac: str | None = None
    iccid: str | None = None
    imei: str | None = None
    last_sign_in_at: datetime | None = None
    batch_no: str | None = None
    last_heartbeat_at: datetime | None = None
    battery: int | None = None
    charging: bool | None = None
    signal_dbm: int | None = None
    reconnects: int | None = None
    echo_latency_ms: int | None = None
    echo_loss_pct: int | None = None
    printer: str | None = None
    tamper: bool | None = None
    lat: float | None = None
    lng: float | None = None
    home_lat: float | None = None
    home_lng: float | None = None

    def reported(self) -> dict[str, Any]:
        """The fields this report carries (not None), identity fields excluded."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("serial_no", "terminal_no") and getattr(self, f.name) is not None}


_ID = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_VERSION = re.compile(r"^[\w.\-+ ()/]{1,64}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:\-]?[0-9A-Fa-f]{2}){5}$")
_ICCID = re.compile(r"^\d{18,21}[Ff]?$")
_IMEI = re.compile(r"^\d{14,17}$")
_BATCH = re.compile(r"^\d{1,6}$")


def _name(key: str) -> tuple[str, str]:
    return FIELDS.get(key, (key, key))


def _bad(key: str, raw: object, zh: str, en: str) -> Problem:
    name_zh, name_en = _name(key)
    shown = bounded(str(raw), 40)
    return Problem(key, f"{name_zh}「{shown}」{zh}", f"{name_en} {shown!r}: {en}")


def parse_time(raw: object, zone: ZoneInfo) -> datetime:
    """A time from outside: epoch milliseconds (13 digits, PAXSTORE) or seconds (10 digits), or ISO 8601; a
    time without an offset is in the business zone ``zone``. Raises ValueError."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int | float) or (isinstance(raw, str) and raw.strip().isdigit()):
        n = int(raw)
        digits = len(str(n))
        if n < 0 or digits not in (10, 13):
            raise ValueError(raw)
        at = datetime.fromtimestamp(n / 1000 if digits == 13 else n, UTC)
    else:
        text = str(raw).strip()
        if not text or len(text) > 40:
            raise ValueError(raw)
        at = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
        at = at.replace(tzinfo=zone) if at.tzinfo is None else at
    if not 2000 <= at.year <= 2100:  # also keeps the conversion to UTC from overflowing
        raise ValueError(raw)
    return at


def _int(raw: object, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw) or raw != int(raw):
            raise ValueError(raw)
        raw = int(raw)
    text = str(raw).strip().removesuffix("%").removesuffix("dBm").removesuffix("dbm").removesuffix("ms").strip()
    if not re.fullmatch(r"[+-]?\d{1,9}", text):
        raise ValueError(raw)
    n = int(text)
    if not low <= n <= high:
        raise ValueError(raw)
    return n


def _float(raw: object, low: float, high: float) -> float:
    if isinstance(raw, bool):
        raise ValueError(raw)
    text = str(raw).strip()
    if len(text) > 24:
        raise ValueError(raw)
    x = float(text)
    if not math.isfinite(x) or not low <= x <= high:
        raise ValueError(raw)
    return x


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(raw)


def _ipv4(raw: str) -> str:
    return str(ipaddress.IPv4Address(raw.strip()))


def _dns(raw: object) -> str:
    """Comma-separated IPv4 addresses; "none", "无", "-", "0.0.0.0" or an empty list: reported as no DNS ("")."""
    if isinstance(raw, str) and raw.strip().lower() in ("none", "无", "-", "0.0.0.0"):
        return ""
    items = raw if isinstance(raw, list) else re.split(r"[,;\s]+", str(raw))
    out = [_ipv4(str(x)) for x in items if str(x).strip()]
    if len(out) > 4:
        raise ValueError(raw)
    return ",".join(out)


def read_fields(raw: Mapping[str, object], zone: ZoneInfo) -> tuple[Telemetry, list[Problem]]:
    """A :class:`Telemetry` from canonical field names to raw values; empty values are not reported. Every bad
    value is a :class:`Problem`; the fields that were fine are still read (the caller decides)."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in raw.items():
        if key not in FIELDS or value is None:
            continue
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                problems.append(_bad(key, value, f"过长（最多 {MAX_TEXT} 字符）", f"too long (at most {MAX_TEXT})"))
                continue
            value = value.strip()
            if value == "":
                continue
        elif isinstance(value, dict | list) and key != "dns":
            problems.append(_bad(key, "…", "应为单个值", "expected a single value"))
            continue
        try:
            out[key] = _read_one(key, value, zone)
        except (ValueError, TypeError, OverflowError, KeyError):
            zh, en = _HINTS.get(key, ("格式不正确", "not valid"))
            problems.append(_bad(key, value, zh, en))
    return Telemetry(**out), problems


def _read_one(key: str, value: object, zone: ZoneInfo) -> object:
    text = str(value).strip()
    if key in ("serial_no", "terminal_no"):
        if not _ID.match(text):
            raise ValueError(value)
        return text
    if key in ("vendor", "model_name"):
        if len(text) > 32 or not text.isprintable():
            raise ValueError(value)
        return text
    if key in ("os_version", "firmware", "app_version"):
        if not _VERSION.match(text):
            raise ValueError(value)
        return text
    if key == "comm_type":
        return COMM_TYPES[text.lower().replace(" ", "")]
    if key == "host":
        if not _HOST.match(text):
            raise ValueError(value)
        return text.lower()
    if key == "port":
        return _int(value, 1, 65535)
    if key in ("ip", "mask", "gateway"):
        return _ipv4(text)
    if key == "dns":
        return _dns(value)
    if key == "mac":
        if not _MAC.match(text):
            raise ValueError(value)
        return ":".join(re.findall(r"[0-9A-F]{2}", text.upper()))
    if key == "iccid":
        if not _ICCID.match(text):
            raise ValueError(value)
        return text.upper()
    if key == "imei":
        if not _IMEI.match(text):
            raise ValueError(value)
        return text
    if key in ("last_sign_in_at", "last_heartbeat_at"):
        return parse_time(value, zone)
    if key == "batch_no":
        if not _BATCH.match(text):
            raise ValueError(value)
        return text.zfill(6)
    if key == "battery":
        return _int(value, 0, 100)
    if key in ("charging", "tamper"):
        return _bool(value)
    if key == "signal_dbm":
        return _int(value, -150, 0)
    if key == "reconnects":
        return _int(value, 0, 1_000_000)
    if key == "echo_latency_ms":
        return _int(value, 0, 600_000)
    if key == "echo_loss_pct":
        return _int(value, 0, 100)
    if key == "printer":
        return PRINTER[text.lower().replace(" ", "_").replace("-", "_")]
    if key in ("lat", "home_lat"):
        return _float(value, -90.0, 90.0)
    if key in ("lng", "home_lng"):
        return _float(value, -180.0, 180.0)
    raise ValueError(key)  # pragma: no cover - every FIELDS key is handled above


_HINTS: Final[dict[str, tuple[str, str]]] = {
    "serial_no": ("应为 1-32 位字母、数字、- 或 _", "expected 1-32 letters, digits, - or _"),
    "terminal_no": ("应为 1-32 位字母、数字、- 或 _", "expected 1-32 letters, digits, - or _"),
    "comm_type": ("应为 4G、Wi-Fi 或 Ethernet（有线）", "expected 4G, Wi-Fi or Ethernet"),
    "port": ("应为 1-65535 的整数", "expected a whole number 1-65535"),
    "ip": ("不是 IPv4 地址", "not an IPv4 address"), "mask": ("不是 IPv4 掩码", "not an IPv4 mask"),
    "gateway": ("不是 IPv4 地址", "not an IPv4 address"), "dns": ("应为 1-4 个 IPv4 地址，逗号分隔",
                                                              "expected 1-4 IPv4 addresses, comma-separated"),
    "mac": ("不是 MAC 地址", "not a MAC address"), "iccid": ("应为 18-21 位数字", "expected 18-21 digits"),
    "imei": ("应为 14-17 位数字", "expected 14-17 digits"),
    "last_sign_in_at": ("应为 ISO 8601 时间或毫秒时间戳", "expected an ISO 8601 time or epoch milliseconds"),
    "last_heartbeat_at": ("应为 ISO 8601 时间或毫秒时间戳", "expected an ISO 8601 time or epoch milliseconds"),
    "batch_no": ("应为 1-6 位数字", "expected 1-6 digits"), "battery": ("应为 0-100 的整数", "expected 0-100"),
    "charging": ("应为 是/否（true/false）", "expected true or false"),
    "signal_dbm": ("应为 -150 到 0 的 dBm 整数", "expected dBm from -150 to 0"),
    "reconnects": ("应为非负整数", "expected a whole number ≥ 0"),
    "echo_latency_ms": ("应为 0-600000 毫秒", "expected 0-600000 ms"), "echo_loss_pct": ("应为 0-100", "expected 0-100"),
    "printer": ("应为 正常/缺纸/故障（ok/no_paper/fault）", "expected ok, no_paper or fault"),
    "tamper": ("应为 是/否（true/false）", "expected true or false"),
    "lat": ("应为 -90 到 90 的纬度", "expected a latitude from -90 to 90"),
    "lng": ("应为 -180 到 180 的经度", "expected a longitude from -180 to 180"),
    "home_lat": ("应为 -90 到 90 的纬度", "expected a latitude from -90 to 90"),
    "home_lng": ("应为 -180 到 180 的经度", "expected a longitude from -180 to 180"),
}
