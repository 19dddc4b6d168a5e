"""The optional configuration file ``settleguard.toml``: sections mapped to the flat ``Settings`` fields, every
problem named by its key, file and line, and where each effective setting came from (``settleguard config show``).

Precedence, highest first: command-line flags (and keyword arguments) > ``SETTLEGUARD_*`` environment variables >
the file > defaults (``config.Settings``; docs/operations.md "配置 Configuration").

Which file: ``--config PATH``, else ``$SETTLEGUARD_CONFIG``, else ``./settleguard.toml`` in the working directory
when it exists, else none (defaults and environment only). A file that is named but does not exist is an error.

How keys map to fields (every ``Settings`` field is settable, new ones without editing this module):

- a section ``[S]`` holds the fields named ``S_…``: ``[smtp] host`` is ``smtp_host``, ``[doctor] disk_warn_mb`` is
  ``doctor_disk_warn_mb``, ``[server] port`` is ``server_port``, ``[key] command`` is ``key_command``;
- a few read better under a name of their own (:data:`ALIASES`): ``[database] url`` / ``read_url`` are ``db`` /
  ``read_db``, ``[key] value`` is ``key``, ``[settlement] timezone`` / ``t1_cutoff_hour`` / ``d0_cutoff_hour``,
  ``[bank] channel`` / ``url`` / ``sim_seed``, ``[payout] file_answer_due_business_days``, ``[import]
  future_tolerance_minutes``, ``[merchants] enterprise_legal_person_account``;
- every field may also be written flat at the top, under its own name (``smtp_host = "…"``, ``db = "…"``).

A key that is none of these, a section no field belongs to, a field given twice, a bad value, a file that is not
UTF-8 TOML: :class:`ConfigError`, naming each problem (dotted key, file, line), before anything is opened.

Pure apart from reading the one file it is given: the environment is passed in (``environ``) by the entry points
(bootstrap.py), and the settings are built there (config.py).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from settleguard.masking import bounded

if TYPE_CHECKING:
    from pydantic import ValidationError

CONFIG_ENV = "SETTLEGUARD_CONFIG"
ENV_PREFIX = "SETTLEGUARD_"
DEFAULT_NAME = "settleguard.toml"
MAX_BYTES = 1 << 20  # a configuration file is a few kilobytes; anything this large is not one

# Fields that read better under a section of their own name than by the ``S_…`` rule (section -> key -> field).
ALIASES: dict[str, dict[str, str]] = {
    "database": {"url": "db", "read_url": "read_db"},
    "key": {"value": "key"},  # key.file, key.command ... by the S_… rule
    "settlement": {"timezone": "timezone", "t1_cutoff_hour": "t1_cutoff_hour", "d0_cutoff_hour": "d0_cutoff_hour"},
    "bank": {"channel": "channel", "url": "bank_url", "sim_seed": "sim_seed"},
    "payout": {"file_answer_due_business_days": "file_answer_due_business_days"},
    "import": {"future_tolerance_minutes": "future_tolerance_minutes"},
    "merchants": {"enterprise_legal_person_account": "enterprise_legal_person_account"},
}
# The documented sections, in the order docs/settleguard.example.toml shows them; a field ``S_…`` of one of them
# is shown as ``S.…`` (the others flat). Any ``[S]`` whose ``S_…`` names a field is read, listed here or not.
SECTIONS: tuple[str, ...] = ("database", "key", "settlement", "day", "bank", "card", "payout", "worker", "server",
                             "smtp", "webhook", "notify", "import", "inbox", "merchants", "recon", "risk", "backup",
                             "doctor")

_SECRET_WORDS = ("password", "passwd", "token", "secret", "credential", "passphrase")  # as audit.service
_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)([^@/\s]*)(@)")
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
MASK = "******"


class ConfigError(Exception):
    """The configuration cannot be used; nothing was opened or changed.

    Attributes:
        zh, en: what is wrong, in Chinese and in English.
        problems: one line per problem (key, file, line, reason), zh then en.
    """

    def __init__(self, zh: str, en: str, problems: Sequence[str] = ()) -> None:
        super().__init__(en + ("\n" + "\n".join(problems) if problems else ""))
        self.zh, self.en, self.problems = zh, en, list(problems)


@dataclass(frozen=True)
class Place:
    """Where a value was written in the file: its dotted key and line (None when it cannot be told)."""

    key: str
    line: int | None


@dataclass
class ConfigFile:
    """A read configuration file: each field's value and where it was written.

    Attributes:
        path: the file (absolute).
        how: why this file: ``--config``, ``SETTLEGUARD_CONFIG`` or ``./settleguard.toml``.
        values: field name -> value, as written (validated by the caller against Settings).
        places: field name -> :class:`Place`.
    """

    path: Path
    how: str
    values: dict[str, Any] = field(default_factory=dict)
    places: dict[str, Place] = field(default_factory=dict)

    def where(self, name: str) -> str:
        """``smtp.port (settleguard.toml 第 4 行 line 4)``: a field's key, file and line, for a message."""
        p = self.places[name]
        line = f" 第 {p.line} 行 line {p.line}" if p.line else ""
        return f"{p.key} ({self.path}{line})"


# --- which file ----------------------------------------------------------------------------------------------


def resolve_path(given: Path | None, environ: Mapping[str, str], cwd: Path) -> tuple[Path | None, str]:
    """The file to read and why (see the module docstring); (None, "") when there is none.

    Raises:
        ConfigError: a file named by ``--config`` or ``SETTLEGUARD_CONFIG`` that is not there.
    """
    if given is not None:
        path, how = given, "--config"
    elif environ.get(CONFIG_ENV, "").strip():
        path, how = Path(environ[CONFIG_ENV].strip()), CONFIG_ENV
    else:
        implicit = cwd / DEFAULT_NAME
        return (implicit.resolve(), f"./{DEFAULT_NAME}") if implicit.is_file() else (None, "")
    path = path.expanduser()
    if not path.is_absolute():
        path = cwd / path
    if not path.is_file():
        what = "不是文件" if path.exists() else "不存在"
        what_en = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"配置文件{what}：{bounded(str(path))}（由 {how} 指定），未做任何更改",
                          f"the configuration file {what_en}: {bounded(str(path))} (named by {how}); nothing changed")
    return path.resolve(), how


# --- reading and mapping -------------------------------------------------------------------------------------


def field_for(section: str | None, key: str, fields: Iterable[str]) -> str | None:
    """The field ``[section] key`` (or a top-level ``key`` when ``section`` is None) sets, or None."""
    names = set(fields)
    if section is None:
        return key if key in names else None
    alias = ALIASES.get(section, {}).get(key)
    if alias is not None and alias in names:
        return alias
    name = f"{section}_{key}"
    return name if name in names else None


def file_key(name: str) -> str:
    """How a field is written in the file (dotted): ``db`` -> ``database.url``, ``smtp_host`` -> ``smtp.host``;
    a field of no documented section stays flat (``inbox_dir``)."""
    for section, keys in ALIASES.items():
        for key, target in keys.items():
            if target == name:
                return f"{section}.{key}"
    best = max((s for s in SECTIONS if name.startswith(s + "_")), key=len, default=None)
    return f"{best}.{name[len(best) + 1:]}" if best else name


def read(path: Path, how: str, fields: Iterable[str]) -> ConfigFile:
    """Read ``path`` and map its keys to fields.

    Raises:
        ConfigError: unreadable, too large, not UTF-8, bad TOML (with its line), unknown keys or sections, a field
            given twice; every problem of the file at once.
    """
    names = list(fields)
    shown = bounded(str(path))
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"无法读取配置文件 {shown}", f"cannot read the configuration file {shown}",
                          [bounded(f"{type(exc).__name__}: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"配置文件过大（超过 {MAX_BYTES // 1024} KiB）：{shown}",
                          f"the configuration file is larger than {MAX_BYTES // 1024} KiB: {shown}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"配置文件不是 UTF-8 编码：{shown} 第 {line} 行",
                          f"the configuration file is not UTF-8: {shown} line {line}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE.search(str(exc))
        at_zh = f" 第 {m.group(1)} 行第 {m.group(2)} 列" if m else ""
        at_en = f" line {m.group(1)}, column {m.group(2)}" if m else ""
        reason = _TOML_LINE.sub("", str(exc)).strip()
        raise ConfigError(f"配置文件不是有效的 TOML：{shown}{at_zh}",
                          f"the configuration file is not valid TOML: {shown}{at_en}",
                          [f"TOML: {bounded(reason)}"]) from None
    cfg = ConfigFile(path, how)
    problems: list[str] = []
    lines = text.splitlines()

    def put(name: str, value: Any, key: str) -> None:
        place = Place(key, _line_of(lines, key))
        if name in cfg.values:
            first = cfg.places[name]
            problems.append(f"{_at(place, path)}: 与 {first.key} 重复（同一配置项 {name}） "
                            f"given twice: {first.key} sets the same setting")
            return
        cfg.values[name], cfg.places[name] = value, place

    for top, value in data.items():
        name = field_for(None, top, names)
        if name is not None and not (isinstance(value, dict) and (top in ALIASES or top in SECTIONS)):
            put(name, value, top)  # [key] is the section of key.value, key.file ...; a mapping field keeps its table
            continue
        if not isinstance(value, dict):
            problems.append(_unknown(Place(top, _line_of(lines, top)), path, _suggest(top, None, names)))
            continue
        if not any(field_for(top, k, names) for k in value) and not _is_section(top, names):
            problems.append(_unknown(Place(top, _line_of(lines, top)), path, _suggest(top, None, names),
                                     section=True))
            continue
        for key, inner in value.items():
            dotted = f"{top}.{key}"
            name = field_for(top, key, names)
            if name is None:
                problems.append(_unknown(Place(dotted, _line_of(lines, dotted)), path, _suggest(key, top, names)))
            else:
                put(name, inner, dotted)
    if problems:
        raise ConfigError(f"配置文件有误，未做任何更改：{shown}", f"bad configuration file, nothing changed: {shown}",
                          problems)
    return cfg


def _is_section(section: str, names: Iterable[str]) -> bool:
    return section in ALIASES or any(n.startswith(section + "_") for n in names)


def _suggest(key: str, section: str | None, names: Sequence[str]) -> str | None:
    """The nearest valid key, written the way the operator was writing (dotted under a section)."""
    if section is not None and _is_section(section, names):
        options = [*ALIASES.get(section, {}), *(n[len(section) + 1:] for n in names if n.startswith(section + "_"))]
        near = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
        if near:
            return f"{section}.{near[0]}"
    shown = {**{n: file_key(n) for n in names}, **{file_key(n): file_key(n) for n in names},
             **{s: f"[{s}]" for s in SECTIONS}}  # what was meant -> how to write it
    near = difflib.get_close_matches(key if section is None else f"{section}.{key}", list(shown), n=1, cutoff=0.6)
    return shown[near[0]] if near else None


def _at(place: Place, path: Path) -> str:
    line = f" 第 {place.line} 行 line {place.line}" if place.line else ""
    return f"{bounded(place.key, 80)} ({bounded(str(path))}{line})"


def _unknown(place: Place, path: Path, suggestion: str | None, *, section: bool = False) -> str:
    zh, en = ("未知配置节", "unknown section") if section else ("未知配置项", "unknown key")
    hint = f"；是否想写 did you mean {suggestion}?" if suggestion else ""
    return f"{_at(place, path)}: {zh} {en}{hint}"


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")


def _plain(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


def _line_of(lines: Sequence[str], dotted: str) -> int | None:
    """The line a dotted key is written on (``[smtp]`` then ``port =``, or ``smtp.port =``, or a ``[smtp]``
    header itself); None when it cannot be told (inline tables, unusual quoting)."""
    section: str | None = None
    for i, line in enumerate(lines, 1):
        h = _HEADER.match(line)
        if h:
            section = _plain(h.group(1))
            if section == dotted:
                return i
            continue
        k = _KEY.match(line)
        if k and ".".join(p for p in (section, _plain(k.group(1))) if p) == dotted:
            return i
    return None


# --- errors of values ----------------------------------------------------------------------------------------


def is_secret(name: str) -> bool:
    """A setting whose value is never shown nor echoed: the card key, passwords, tokens."""
    return name == "key" or name.endswith("_key") or any(w in name for w in _SECRET_WORDS)


def shown_value(name: str, value: Any) -> Any:
    """A value as ``config show`` and errors show it: secrets masked, the password inside a URL masked, a
    command's arguments hidden (``key_command``), every text bounded and its card numbers masked."""
    if value is None or isinstance(value, bool | int | float):
        return MASK if value is not None and is_secret(name) else value
    if is_secret(name):
        return MASK
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict | list | tuple) else str(value)
    if name.endswith("_command"):
        words = text.split()
        text = words[0] + (f" {MASK}" if len(words) > 1 else "") if words else text
    return bounded(_URL_PASSWORD.sub(rf"\1{MASK}\3", text))


def value_errors(exc: ValidationError, describe: Mapping[str, str], shown: Mapping[str, Any]) -> list[str]:
    """One zh/en line per error of ``exc``: where the value came from (``describe[field]``: the file's key and
    line, the environment variable, the flag), what pydantic said and the value (masked; secrets never)."""
    out = []
    for e in exc.errors(include_url=False):
        name = str(e["loc"][0]) if e["loc"] else ""
        where = describe.get(name, name)
        value = shown_value(name, shown.get(name, e.get("input")))
        out.append(f"{where}: 值无效 invalid value {value!r}: {bounded(e['msg'])}")
    return out


# --- provenance ----------------------------------------------------------------------------------------------


def env_name(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def env_fields(environ: Mapping[str, str], fields: Iterable[str]) -> dict[str, str]:
    """Field -> the environment variable that sets it (matched as pydantic-settings does: case-insensitively)."""
    present = {k.upper(): k for k in environ}
    return {n: present[env_name(n)] for n in fields if env_name(n) in present}


@dataclass(frozen=True)
class Origin:
    """Where one effective setting came from.

    Attributes:
        kind: ``default``, ``file``, ``env`` or ``flag``.
        detail: the file (with line), the variable or the flag; "" for a default.
    """

    kind: str
    detail: str = ""

    LABELS = {"default": ("默认", "default"), "file": ("文件", "file"), "env": ("环境变量", "env"),
              "flag": ("命令行", "flag")}

    def label(self) -> str:
        zh, en = self.LABELS[self.kind]
        return f"{zh} {en}" + (f" {self.detail}" if self.detail else "")


@dataclass
class Sources:
    """Where the settings came from: the file (if any), the environment's variables and the flags given."""

    file: ConfigFile | None
    env: dict[str, str]  # field -> variable
    flags: dict[str, str]  # field -> flag

    def origin(self, name: str) -> Origin:
        if name in self.flags:
            return Origin("flag", self.flags[name])
        if name in self.env:
            return Origin("env", self.env[name])
        if self.file is not None and name in self.file.values:
            p = self.file.places[name]
            return Origin("file", f"{self.file.path}" + (f":{p.line}" if p.line else ""))
        return Origin("default")

    def describe(self, name: str) -> str:
        """The place a value came from, for an error: ``--db``, ``SETTLEGUARD_SMTP_PORT``, ``smtp.port (file …)``."""
        o = self.origin(name)
        if o.kind == "file" and self.file is not None:
            return self.file.where(name)
        return o.detail or name


@dataclass(frozen=True)
class Row:
    """One line of ``config show``."""

    name: str
    key: str
    env: str
    value: Any
    origin: Origin

    def to_dict(self) -> dict[str, Any]:
        value = self.value if isinstance(self.value, bool | int | float | type(None)) else str(self.value)
        return {"key": self.key, "field": self.name, "env": self.env, "value": value, "source": self.origin.kind,
                "from": self.origin.detail or None}


def rows(values: Mapping[str, Any], sources: Sources) -> list[Row]:
    """Every effective setting (``values``: field -> value, in Settings order), masked, with its origin."""
    return [Row(n, file_key(n), env_name(n), shown_value(n, v), sources.origin(n)) for n, v in values.items()]


# --- errors of the whole -------------------------------------------------------------------------------------


def file_values_error(cfg: ConfigFile, exc: ValidationError) -> ConfigError:
    """The file's values do not validate: each bad one by its key, file and line."""
    shown = bounded(str(cfg.path))
    return ConfigError(f"配置文件有误，未做任何更改：{shown}", f"bad configuration file, nothing changed: {shown}",
                       value_errors(exc, {n: cfg.where(n) for n in cfg.values}, cfg.values))


def settings_error(sources: Sources, exc: ValidationError) -> ConfigError:
    """The effective settings do not validate: each bad value by the variable, flag or file key that gave it."""
    names = {str(e["loc"][0]) for e in exc.errors(include_url=False) if e["loc"]}
    return ConfigError("设置有误，未做任何更改", "bad settings, nothing changed",
                       value_errors(exc, {n: sources.describe(n) for n in names}, {}))
