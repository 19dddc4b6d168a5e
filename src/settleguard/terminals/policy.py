"""The terminal policy (终端策略): per model the minimum and known-bad firmware and app versions, the acquirer's
host and port, the allowed IP ranges, and the thresholds of the checks. Read from TOML or CSV (hostile input:
bounded, every problem named by line or entry and field, zh then en). Pure apart from reading the file.

TOML::

    [defaults]                     # every model: host, port, IP ranges, versions (a model's own values win)
    host = "pos.acquirer.example"
    port = 8583
    ip_ranges = ["10.0.0.0/8", "192.168.0.0/16"]
    [thresholds]                   # Thresholds below; leave out to keep the default
    battery_low_pct = 15
    [[model]]
    model = "PAX A920"
    min_firmware = "2.3.12"
    min_app = "3.1.0"
    bad_firmware = ["2.3.5"]

CSV (UTF-8, header; zh headers accepted): model, min_firmware, min_app, bad_firmware, bad_app, host, port,
ip_ranges; lists separated by ``;`` or ``|``; the row of model ``*`` holds the defaults.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from settleguard.masking import bounded

MAX_BYTES: Final = 1 << 20
MAX_MODELS: Final = 10_000
DEFAULT_MODEL: Final = "*"


@dataclass(frozen=True, slots=True)
class Thresholds:
    battery_low_pct: int = 15  # at or below, not charging: low battery
    signal_weak_dbm: int = -105  # at or below: weak signal (4G RSRP / Wi-Fi RSSI)
    reconnects_max: int = 10  # more reconnections than this in the reported period
    latency_max_ms: int = 1000  # echo latency above this
    loss_max_pct: int = 10  # echo loss above this
    silent_days: int = 3  # no heartbeat, or no transaction, for this many days
    moved_km: float = 2.0  # farther than this from the registered location: 移机

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_LIMITS: Final[dict[str, tuple[float, float]]] = {
    "battery_low_pct": (0, 100), "signal_weak_dbm": (-150, 0), "reconnects_max": (0, 1_000_000),
    "latency_max_ms": (1, 600_000), "loss_max_pct": (0, 100), "silent_days": (1, 365), "moved_km": (0.01, 20_000)}


@dataclass(frozen=True, slots=True)
class ModelPolicy:
    model: str
    min_firmware: str | None = None
    min_app: str | None = None
    bad_firmware: tuple[str, ...] = ()
    bad_app: tuple[str, ...] = ()
    host: str | None = None
    port: int | None = None
    ip_ranges: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    defaults: ModelPolicy = field(default_factory=lambda: ModelPolicy(DEFAULT_MODEL))
    thresholds: Thresholds = field(default_factory=Thresholds)
    models: dict[str, ModelPolicy] = field(default_factory=dict)  # by model_key

    def for_model(self, model: str | None) -> ModelPolicy:
        """The model's policy over the defaults: a value the model leaves empty is the default's."""
        own = self.models.get(model_key(model or ""))
        if own is None:
            return self.defaults
        d = self.defaults
        return ModelPolicy(own.model, own.min_firmware or d.min_firmware, own.min_app or d.min_app,
                           own.bad_firmware or d.bad_firmware, own.bad_app or d.bad_app, own.host or d.host,
                           own.port or d.port, own.ip_ranges or d.ip_ranges)

    def rows(self) -> list[ModelPolicy]:
        return [self.defaults, *sorted(self.models.values(), key=lambda m: m.model)]


def model_key(model: str) -> str:
    return " ".join(model.split()).casefold()


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    where_zh: str
    where_en: str
    zh: str
    en: str


class PolicyRejected(Exception):
    def __init__(self, problems: list[PolicyProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


_COLUMNS: Final[dict[str, str]] = {
    "model": "model", "型号": "model", "终端型号": "model", "modelname": "model",
    "min_firmware": "min_firmware", "最低固件版本": "min_firmware", "min_app": "min_app", "最低应用版本": "min_app",
    "bad_firmware": "bad_firmware", "禁用固件版本": "bad_firmware", "问题固件版本": "bad_firmware",
    "bad_app": "bad_app", "禁用应用版本": "bad_app", "问题应用版本": "bad_app",
    "host": "host", "主机地址": "host", "port": "port", "主机端口": "port",
    "ip_ranges": "ip_ranges", "ip段": "ip_ranges", "允许ip段": "ip_ranges",
}
FIELD_WORDS: Final[dict[str, tuple[str, str]]] = {
    "model": ("型号", "model"), "min_firmware": ("最低固件版本", "minimum firmware"),
    "min_app": ("最低应用版本", "minimum app version"), "bad_firmware": ("禁用固件版本", "known-bad firmware"),
    "bad_app": ("禁用应用版本", "known-bad app versions"), "host": ("主机地址", "host"), "port": ("主机端口", "port"),
    "ip_ranges": ("允许 IP 段", "allowed IP ranges"),
}
_VERSION = re.compile(r"^[\w.\-+ ()/]{1,64}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")


def read_policy(path: Path) -> Policy:
    """The policy in ``path`` (.toml or .csv); PolicyRejected lists every problem, nothing partial."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise PolicyRejected([PolicyProblem("文件", "file", f"文件过大（{size} 字节，最多 {MAX_BYTES}）",
                                            f"file too large ({size} bytes, at most {MAX_BYTES})")])
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PolicyRejected([PolicyProblem("文件", "file", "不是 UTF-8 文本", "not UTF-8 text")]) from None
    if path.suffix.lower() == ".toml":
        return parse_toml(text)
    return parse_csv(text)


def parse_toml(text: str) -> Policy:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyRejected([PolicyProblem("文件", "file", f"TOML 格式错误：{bounded(str(exc), 120)}",
                                            f"not valid TOML: {bounded(str(exc), 120)}")]) from None
    problems: list[PolicyProblem] = []
    for key in doc:
        if key not in ("defaults", "thresholds", "model"):
            problems.append(PolicyProblem(f"[{bounded(key, 32)}]", f"[{bounded(key, 32)}]", "未知的表",
                                          "unknown table (expected defaults, thresholds, model)"))
    defaults_raw = doc.get("defaults", {})
    defaults = ModelPolicy(DEFAULT_MODEL)
    if isinstance(defaults_raw, dict):
        got = _model(dict(defaults_raw, model=DEFAULT_MODEL), ("[defaults]", "[defaults]"), problems)
        defaults = got or defaults
    else:
        problems.append(PolicyProblem("[defaults]", "[defaults]", "应为表", "expected a table"))
    thresholds = _thresholds(doc.get("thresholds", {}), problems)
    models: dict[str, ModelPolicy] = {}
    entries = doc.get("model", [])
    if not isinstance(entries, list) or len(entries) > MAX_MODELS:
        problems.append(PolicyProblem("[[model]]", "[[model]]", f"应为最多 {MAX_MODELS} 项的表数组",
                                      f"expected an array of at most {MAX_MODELS} tables"))
        entries = []
    for i, entry in enumerate(entries, 1):
        where = (f"[[model]] 第 {i} 项", f"[[model]] entry {i}")
        if not isinstance(entry, dict):
            problems.append(PolicyProblem(*where, "应为表", "expected a table"))
            continue
        got = _model(entry, where, problems)
        if got is not None:
            _add(models, got, where, problems)
    if problems:
        raise PolicyRejected(problems)
    return Policy(defaults, thresholds, models)


def parse_csv(text: str) -> Policy:
    problems: list[PolicyProblem] = []
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise PolicyRejected([PolicyProblem("第 1 行", "line 1", "缺少表头", "no header")]) from None
    cols = [_norm(h) for h in header]
    if "model" not in cols:
        raise PolicyRejected([PolicyProblem("第 1 行", "line 1", "表头缺少 型号（model）列", "the header has no model column")])
    defaults = ModelPolicy(DEFAULT_MODEL)
    models: dict[str, ModelPolicy] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(models) >= MAX_MODELS:
                problems.append(PolicyProblem(f"第 {line} 行", f"line {line}", f"型号过多（最多 {MAX_MODELS}）",
                                              f"too many models (at most {MAX_MODELS})"))
                break
            raw: dict[str, Any] = {}
            for col, value in zip(cols, row, strict=False):
                if col is not None and value.strip():
                    raw[col] = [v for v in re.split(r"[;|]", value) if v.strip()] if col in (
                        "bad_firmware", "bad_app", "ip_ranges") else value.strip()
            where = (f"第 {line} 行", f"line {line}")
            got = _model(raw, where, problems)
            if got is None:
                continue
            if got.model == DEFAULT_MODEL:
                defaults = got
            else:
                _add(models, got, where, problems)
    except csv.Error as exc:
        problems.append(PolicyProblem(f"第 {reader.line_num} 行", f"line {reader.line_num}",
                                      f"CSV 格式错误：{bounded(str(exc), 80)}", f"bad CSV: {bounded(str(exc), 80)}"))
    if problems:
        raise PolicyRejected(problems)
    return Policy(defaults, Thresholds(), models)


def _norm(header: str) -> str | None:
    key = re.sub(r"\s+", "", header.strip().lstrip("\ufeff")).lower()
    return _COLUMNS.get(key) or _COLUMNS.get(key.replace("-", "_"))


def _add(models: dict[str, ModelPolicy], got: ModelPolicy, where: tuple[str, str],
         problems: list[PolicyProblem]) -> None:
    key = model_key(got.model)
    if key in models:
        problems.append(PolicyProblem(*where, f"型号「{bounded(got.model, 32)}」重复", f"model {got.model!r} repeated"))
    models[key] = got


def _model(raw: dict[str, Any], where: tuple[str, str], problems: list[PolicyProblem]) -> ModelPolicy | None:
    before = len(problems)

    def bad(key: str, value: object, zh: str, en: str) -> None:
        fz, fe = FIELD_WORDS.get(key, (key, key))
        shown = bounded(str(value), 40)
        problems.append(PolicyProblem(*where, f"{fz}「{shown}」{zh}", f"{fe} {shown!r}: {en}"))

    for key in raw:
        if key not in FIELD_WORDS:
            problems.append(PolicyProblem(*where, f"未知字段「{bounded(str(key), 32)}」",
                                          f"unknown field {bounded(str(key), 32)!r}"))
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 32:
        bad("model", model, "应为 1-32 字的型号", "expected a model name of 1-32 characters")
        return None
    out = ModelPolicy(" ".join(model.split()))
    for key in ("min_firmware", "min_app"):
        value = raw.get(key)
        if value is not None and value != "":
            if not isinstance(value, str) or not _VERSION.match(value):
                bad(key, value, "不是版本号", "not a version")
            else:
                out = replace(out, **_one(key, value.strip()))
    for key in ("bad_firmware", "bad_app"):
        value = raw.get(key, [])
        if not isinstance(value, list) or len(value) > 100 or not all(
                isinstance(v, str) and _VERSION.match(v.strip()) for v in value):
            bad(key, value, "应为最多 100 个版本号的列表", "expected a list of at most 100 versions")
        else:
            out = replace(out, **_one(key, tuple(v.strip() for v in value)))
    host = raw.get("host")
    if host is not None and host != "":
        if not isinstance(host, str) or not _HOST.match(host.strip()):
            bad("host", host, "不是主机名或 IP", "not a host name or IP")
        else:
            out = replace(out, host=host.strip().lower())
    port = raw.get("port")
    if port is not None and port != "":
        try:
            if isinstance(port, bool):
                raise ValueError(port)
            n = int(str(port).strip())
            if not 1 <= n <= 65535:
                raise ValueError(port)
            out = replace(out, port=n)
        except ValueError:
            bad("port", port, "应为 1-65535 的整数", "expected a whole number 1-65535")
    ranges = raw.get("ip_ranges", [])
    try:
        if not isinstance(ranges, list) or len(ranges) > 100:
            raise ValueError(ranges)
        out = replace(out, ip_ranges=tuple(str(ipaddress.IPv4Network(str(r).strip(), strict=False)) for r in ranges))
    except ValueError:
        bad("ip_ranges", ranges, "应为最多 100 个 IPv4 网段（如 10.0.0.0/8）",
            "expected at most 100 IPv4 networks (such as 10.0.0.0/8)")
    return out if len(problems) == before else None


def _one(key: str, value: object) -> dict[str, Any]:
    return {key: value}


def _thresholds(raw: object, problems: list[PolicyProblem]) -> Thresholds:
    where = ("[thresholds]", "[thresholds]")
    if not isinstance(raw, dict):
        problems.append(PolicyProblem(*where, "应为表", "expected a table"))
        return Thresholds()
    return thresholds_from(raw, problems, where)


def thresholds_from(raw: dict[str, Any], problems: list[PolicyProblem] | None = None,
                    where: tuple[str, str] = ("[thresholds]", "[thresholds]")) -> Thresholds:
    """Thresholds from a mapping (a policy file or the stored row); unknown or bad values are problems."""
    out = Thresholds()
    sink: list[PolicyProblem] = [] if problems is None else problems
    for key, value in raw.items():
        if key not in _LIMITS:
            sink.append(PolicyProblem(*where, f"未知阈值「{bounded(str(key), 32)}」",
                                      f"unknown threshold {bounded(str(key), 32)!r}"))
            continue
        low, high = _LIMITS[key]
        is_float = key == "moved_km"
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and (is_float or float(value).is_integer()) and low <= value <= high)
        if not ok:
            sink.append(PolicyProblem(*where, f"{key}「{bounded(str(value), 20)}」应在 {low:g} 到 {high:g} 之间",
                                      f"{key} {bounded(str(value), 20)!r}: expected {low:g} to {high:g}"))
            continue
        out = replace(out, **_one(key, float(value) if is_float else int(value)))
    return out
