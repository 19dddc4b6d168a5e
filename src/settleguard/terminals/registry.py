"""Reading a terminal management system's export (TMS 终端导出): CSV or JSON with PAXSTORE-like field names
(serialNo, tid, modelName, osVersion, installedFirmware, ip, macAddress, iccid, lastActiveTime, battery, …),
other common names and Chinese column names (:data:`ALIASES`). Hostile input: the file is bounded in bytes,
rows and field length, JSON nesting is bounded, CSV fields are bounded; nothing here touches the database.

:func:`read_export` returns every row as (place, :class:`~settleguard.terminals.telemetry.Telemetry`) and
every problem as (place, field, zh, en); the place is "第 N 行 line N" for CSV (the physical line) and
"第 N 条 item N" for JSON (1-based). A PAXSTORE nested object is flattened: geoLocation{lat,lng},
installedFirmware{firmwareName}, installedApks[{versionName}] (the first), terminalDetail / details{…}.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from settleguard.masking import bounded
from settleguard.terminals.telemetry import FIELDS, Problem, Telemetry, read_fields

MAX_BYTES: Final = 32 << 20
MAX_ROWS: Final = 200_000
MAX_FIELD: Final = 4096  # a CSV field longer than this stops the read (the telemetry reader refuses > 256)
MAX_DEPTH: Final = 8

# normalised name (lower case, no spaces, "_" or "-") -> canonical field
ALIASES: Final[dict[str, str]] = {
    **{k.replace("_", ""): k for k in FIELDS},
    "serialno": "serial_no", "sn": "serial_no", "serialnumber": "serial_no", "序列号": "serial_no",
    "终端序列号": "serial_no", "机身号": "serial_no", "设备序列号": "serial_no",
    "tid": "terminal_no", "terminalid": "terminal_no", "terminalno": "terminal_no", "终端号": "terminal_no",
    "终端编号": "terminal_no",
    "manufacturer": "vendor", "factoryname": "vendor", "厂商": "vendor", "生产厂商": "vendor",
    "modelname": "model_name", "model": "model_name", "型号": "model_name", "终端型号": "model_name",
    "osversion": "os_version", "系统版本": "os_version", "操作系统版本": "os_version",
    "installedfirmware": "firmware", "firmwarename": "firmware", "firmwareversion": "firmware",
    "firmware": "firmware", "固件版本": "firmware", "固件": "firmware",
    "appversion": "app_version", "versionname": "app_version", "应用版本": "app_version", "支付应用版本": "app_version",
    "commtype": "comm_type", "networktype": "comm_type", "networkconnectiontype": "comm_type",
    "通讯方式": "comm_type", "网络类型": "comm_type",
    "host": "host", "hostip": "host", "serverhost": "host", "主机地址": "host", "主机": "host",
    "port": "port", "hostport": "port", "serverport": "port", "主机端口": "port", "端口": "port",
    "ip": "ip", "ipaddress": "ip", "ethernetip": "ip", "wifiip": "ip", "ip地址": "ip",
    "mask": "mask", "netmask": "mask", "subnetmask": "mask", "子网掩码": "mask", "掩码": "mask",
    "gateway": "gateway", "网关": "gateway", "dns": "dns", "dnsservers": "dns", "dns服务器": "dns",
    "macaddress": "mac", "mac": "mac", "mac地址": "mac",
    "iccid": "iccid", "sim卡号": "iccid", "simiccid": "iccid", "imei": "imei",
    "lastsignintime": "last_sign_in_at", "lastsignin": "last_sign_in_at", "最后签到时间": "last_sign_in_at",
    "签到时间": "last_sign_in_at",
    "batchno": "batch_no", "batchnumber": "batch_no", "批次号": "batch_no",
    "lastactivetime": "last_heartbeat_at", "lastaccesstime": "last_heartbeat_at",
    "lastactivitydatetime": "last_heartbeat_at", "lastheartbeat": "last_heartbeat_at",
    "最后活跃时间": "last_heartbeat_at", "最后心跳时间": "last_heartbeat_at", "最后在线时间": "last_heartbeat_at",
    "battery": "battery", "batterypercentage": "battery", "batterylevel": "battery", "电量": "battery",
    "charging": "charging", "chargingstate": "charging", "充电中": "charging",
    "signal": "signal_dbm", "signaldbm": "signal_dbm", "signalstrength": "signal_dbm",
    "wifinetworkstrength": "signal_dbm", "信号强度": "signal_dbm", "信号": "signal_dbm",
    "reconnects": "reconnects", "reconnectcount": "reconnects", "重连次数": "reconnects",
    "echolatencyms": "echo_latency_ms", "latencyms": "echo_latency_ms", "回响延迟": "echo_latency_ms",
    "延迟毫秒": "echo_latency_ms",
    "echolosspct": "echo_loss_pct", "losspct": "echo_loss_pct", "丢包率": "echo_loss_pct",
    "printer": "printer", "printerstatus": "printer", "打印机": "printer", "打印机状态": "printer",
    "tamper": "tamper", "tamperstatus": "tamper", "防拆": "tamper", "防拆状态": "tamper",
    "lat": "lat", "latitude": "lat", "纬度": "lat", "lng": "lng", "lon": "lng", "longitude": "lng", "经度": "lng",
    "registeredlat": "home_lat", "homelat": "home_lat", "登记纬度": "home_lat",
    "registeredlng": "home_lng", "homelng": "home_lng", "登记经度": "home_lng",
}
# PAXSTORE fields settleguard does not keep (read and ignored, not "unknown")
IGNORED: Final = frozenset({"status", "merchantname", "resellername", "name", "id", "pn", "timezone", "language",
                            "screenresolution", "cellid", "storageused", "installtime", "packagename", "apkname",
                            "location", "remark", "商户名称", "备注", "状态"})


@dataclass(frozen=True, slots=True)
class Row:
    where_zh: str
    where_en: str
    telemetry: Telemetry


@dataclass(frozen=True, slots=True)
class RowProblem:
    where_zh: str
    where_en: str
    field: str
    zh: str
    en: str


class ExportRejected(Exception):
    """The file as a whole cannot be read (too large, not CSV/JSON, not UTF-8, too many rows)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lstrip("\ufeff")).lower()


def read_export(path: Path, zone: ZoneInfo) -> tuple[list[Row], list[RowProblem]]:
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ExportRejected(f"文件过大（{size} 字节，最多 {MAX_BYTES}）", f"file too large ({size} bytes, at most "
                             f"{MAX_BYTES})")
    return parse_export(path.read_bytes(), zone, json_file=path.suffix.lower() == ".json")


def parse_export(data: bytes, zone: ZoneInfo, *, json_file: bool | None = None) -> tuple[list[Row], list[RowProblem]]:
    """Rows and problems of an export given as bytes (CSV: UTF-8 with or without BOM, or GBK)."""
    if len(data) > MAX_BYTES:
        raise ExportRejected("文件过大", "file too large")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise ExportRejected("文件既不是 UTF-8 也不是 GBK 文本", "the file is neither UTF-8 nor GBK text") from None
    if "\x00" in text:
        raise ExportRejected("文件含有二进制内容", "the file holds binary content")
    is_json = json_file if json_file is not None else text.lstrip()[:1] in ("[", "{")
    raw = _json_rows(text) if is_json else _csv_rows(text)
    rows: list[Row] = []
    problems: list[RowProblem] = []
    for where_zh, where_en, fields in raw:
        if "__extra__" in fields:
            problems.append(RowProblem(where_zh, where_en, "", "列数多于表头", "more columns than the header"))
            continue
        if "__item__" in fields:
            problems.append(RowProblem(where_zh, where_en, "", "应为 JSON 对象", "expected a JSON object"))
            continue
        mapped: dict[str, object] = {}
        for name, value in fields.items():
            key = ALIASES.get(_norm(name))
            if key is None:
                if _norm(name) not in IGNORED and value not in (None, ""):
                    problems.append(RowProblem(where_zh, where_en, bounded(name, 32),
                                               f"未知字段「{bounded(name, 32)}」", f"unknown field {bounded(name, 32)!r}"))
                continue
            if key in mapped and mapped[key] not in (None, "") and value not in (None, ""):
                continue  # the first name wins (ethernetIp before wifiIp, …)
            mapped[key] = value
        tel, bad = read_fields(mapped, zone)
        problems.extend(_problem(where_zh, where_en, p) for p in bad)
        if tel.serial_no is None and tel.terminal_no is None:
            problems.append(RowProblem(where_zh, where_en, "serial_no", "缺少序列号（serialNo）或终端号（tid）",
                                       "no serial number (serialNo) or terminal number (tid)"))
            continue
        if not bad:
            rows.append(Row(where_zh, where_en, tel))
    return rows, problems


def _problem(where_zh: str, where_en: str, p: Problem) -> RowProblem:
    return RowProblem(where_zh, where_en, p.field, p.zh, p.en)


def _long_field(row: list[str], line: int) -> None:
    """Refuse a field over MAX_FIELD (checked per row: csv.field_size_limit is process-wide and would change every
    other CSV reader of the process — the BIN table, the merchant file)."""
    if any(len(c) > MAX_FIELD for c in row):
        raise ExportRejected(f"第 {line} 行 CSV 格式错误：有字段超过 {MAX_FIELD} 个字符",
                             f"line {line}: bad CSV: a field is longer than {MAX_FIELD} characters")


def _csv_rows(text: str) -> list[tuple[str, str, dict[str, Any]]]:
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out: list[tuple[str, str, dict[str, Any]]] = []
    try:
        header = next(reader, None)
        if not header:
            raise ExportRejected("文件为空或缺少表头", "the file is empty or has no header")
        _long_field(header, reader.line_num)
        names = [h.strip() for h in header]
        start = reader.line_num
        for row in reader:
            line = reader.line_num if reader.line_num else start
            _long_field(row, line)
            if not any(c.strip() for c in row):
                continue
            if len(out) >= MAX_ROWS:
                raise ExportRejected(f"行数过多（最多 {MAX_ROWS}）", f"too many rows (at most {MAX_ROWS})")
            if len(row) > len(names):
                out.append((f"第 {line} 行", f"line {line}", {"__extra__": f"{len(row)} > {len(names)}"}))
                continue
            out.append((f"第 {line} 行", f"line {line}", {n: v for n, v in zip(names, row, strict=False) if n}))
    except csv.Error as exc:
        raise ExportRejected(f"第 {reader.line_num} 行 CSV 格式错误：{bounded(str(exc), 80)}",
                             f"line {reader.line_num}: bad CSV: {bounded(str(exc), 80)}") from None
    return out


def _json_rows(text: str) -> list[tuple[str, str, dict[str, Any]]]:
    # a deeply nested document would exhaust the parser's recursion: count the brackets before parsing
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                raise ExportRejected(f"JSON 嵌套过深（最多 {MAX_DEPTH} 层）", f"JSON nested too deep (at most {MAX_DEPTH})")
        elif ch in "]}":
            depth -= 1
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise ExportRejected(f"JSON 格式错误：{bounded(str(exc), 80)}", f"not valid JSON: {bounded(str(exc), 80)}") from None
    items = doc
    if isinstance(doc, dict):  # PAXSTORE answers {"businessCode": 0, "pageInfo": {"dataSet": [...]}}
        items = (doc.get("dataSet") or (doc.get("pageInfo") or {}).get("dataSet") or doc.get("terminals")
                 or doc.get("data"))
    if not isinstance(items, list):
        raise ExportRejected("JSON 应为终端数组（或含 dataSet 数组的对象）",
                             "JSON must be an array of terminals (or an object with a dataSet array)")
    if len(items) > MAX_ROWS:
        raise ExportRejected(f"终端过多（最多 {MAX_ROWS}）", f"too many terminals (at most {MAX_ROWS})")
    out: list[tuple[str, str, dict[str, Any]]] = []
    for i, item in enumerate(items, 1):
        where = (f"第 {i} 条", f"item {i}")
        if not isinstance(item, dict):
            out.append((*where, {"__item__": "not an object"}))
            continue
        out.append((*where, _flatten(item)))
    return out


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _flatten(item: dict[str, Any]) -> dict[str, Any]:
    """A PAXSTORE terminal object as one flat mapping of field names to scalar values."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        k = _norm(str(key))
        if k in ("geolocation", "location") and isinstance(value, dict):
            flat.setdefault("lat", value.get("lat", value.get("latitude")))
            flat.setdefault("lng", value.get("lng", value.get("longitude")))
        elif k == "installedfirmware" and isinstance(value, dict):
            flat.setdefault("firmware", value.get("firmwareName") or value.get("version"))
        elif k == "installedapks" and isinstance(value, list):
            first = next((a for a in value if isinstance(a, dict)), None)
            if first is not None:
                flat.setdefault("appVersion", first.get("versionName"))
        elif k in ("terminaldetail", "details", "detail", "devicemonitor") and isinstance(value, dict):
            for sub_key, sub in value.items():
                if not isinstance(sub, dict | list):
                    flat.setdefault(str(sub_key), sub)
        elif k == "dns" and isinstance(value, list):
            flat[str(key)] = ",".join(str(v) for v in value[:8])
        elif isinstance(value, dict | list):
            flat[str(key)] = value  # refused by the field reader if it is a known field
        else:
            flat[str(key)] = value
    return flat
