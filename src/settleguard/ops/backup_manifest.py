"""The backup manifest (清单) and the checks a restored backup must pass. Pure: standard library only.

A backup archive (ops/backup.py) is one uncompressed tar holding, in this order:

- ``manifest.json``: :class:`Manifest` as canonical JSON (sorted keys, UTF-8);
- ``manifest.sha256``: the SHA-256 of ``manifest.json``'s bytes (hex, one line);
- the dump: ``dump.sqlite`` (an SQLite database file, journal mode DELETE) or ``dump.pgc`` (``pg_dump -Fc``).

The manifest says what the snapshot held: row counts of every table, ledger totals per account (credit
balances), the audit chain's head, the schema revision and the card keys' fingerprints (never a key).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT = "settleguard-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DIGEST_NAME = "manifest.sha256"
DUMP_NAMES = {"sqlite": "dump.sqlite", "postgresql": "dump.pgc"}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # a manifest from outside is read whole: bounded
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")  # a table / schema name we accept from a manifest


class ManifestError(ValueError):
    """The manifest cannot be read; ``zh`` / ``en`` say why."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh}\n{en}")
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class KeyFingerprint:
    version: int
    fingerprint: str
    retired: bool


@dataclass(frozen=True)
class Manifest:
    """What one backup holds.

    Attributes:
        created_at: when the snapshot was taken, ISO 8601 UTC (``...Z``).
        business_day: the business day (local date) the backup was taken on, ISO date.
        dialect: ``sqlite`` or ``postgresql``.
        pg_schema: the PostgreSQL schema dumped (None on SQLite).
        schema_revision: the Alembic revision (alembic_version) of the snapshot.
        dump_name, dump_sha256, dump_bytes: the dump member and its SHA-256.
        row_counts: rows of every table in the snapshot.
        ledger_totals: credit balance per ledger account (fen) over all merchants.
        audit_head_id, audit_head_hash: the last audit event (0 and the genesis hash when there is none).
        card_keys: every key version's fingerprint recorded in card_keys; key_fingerprint: the current one's.
        app_version: the settleguard version that wrote the backup.
    """

    created_at: str
    business_day: str
    dialect: str
    pg_schema: str | None
    schema_revision: str | None
    dump_name: str
    dump_sha256: str
    dump_bytes: int
    row_counts: dict[str, int]
    ledger_totals: dict[str, int]
    audit_head_id: int
    audit_head_hash: str
    card_keys: tuple[KeyFingerprint, ...] = ()
    key_fingerprint: str | None = None
    app_version: str = ""
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "format_version": self.format_version, "created_at": self.created_at,
            "business_day": self.business_day, "dialect": self.dialect, "pg_schema": self.pg_schema,
            "schema_revision": self.schema_revision,
            "dump": {"name": self.dump_name, "sha256": self.dump_sha256, "bytes": self.dump_bytes},
            "row_counts": dict(sorted(self.row_counts.items())),
            "ledger_totals": dict(sorted(self.ledger_totals.items())),
            "audit_head": {"id": self.audit_head_id, "hash": self.audit_head_hash},
            "card_keys": [{"version": k.version, "fingerprint": k.fingerprint, "retired": k.retired}
                          for k in self.card_keys],
            "key_fingerprint": self.key_fingerprint, "app_version": self.app_version,
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def digest_line(manifest_bytes: bytes) -> bytes:
    """The content of ``manifest.sha256`` for these manifest bytes."""
    return (hashlib.sha256(manifest_bytes).hexdigest() + "\n").encode("ascii")


def _bad(what_zh: str, what_en: str) -> ManifestError:
    return ManifestError(f"清单无效：{what_zh}", f"invalid manifest: {what_en}")


def _int(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(f"字段 {name} 应为整数", f"field {name} must be an integer")
    return v


def _str(v: Any, name: str, *, optional: bool = False, limit: int = 200) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str) or len(v) > limit:
        raise _bad(f"字段 {name} 应为不超过 {limit} 字符的文本", f"field {name} must be text of at most {limit} characters")
    return v


def _counts(v: Any, name: str) -> dict[str, int]:
    if not isinstance(v, dict) or len(v) > 10_000:
        raise _bad(f"字段 {name} 应为对象", f"field {name} must be an object")
    out = {}
    for k, n in v.items():
        if not isinstance(k, str) or not _IDENT.match(k):
            raise _bad(f"字段 {name} 含无效名称 {k!r:.40}", f"field {name} holds an invalid name {k!r:.40}")
        out[k] = _int(n, f"{name}.{k}")
    return out


def parse(data: bytes) -> Manifest:
    """The manifest in ``data`` (hostile: bounded, every field type-checked); ManifestError otherwise."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _bad(f"超过 {MAX_MANIFEST_BYTES} 字节", f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"不是 UTF-8 JSON（{exc}）", f"not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise _bad("不是结算卫士备份清单", "not a settleguard backup manifest")
    version = _int(obj.get("format_version"), "format_version")
    if version != FORMAT_VERSION:
        raise _bad(f"格式版本 {version} 不受支持（支持 {FORMAT_VERSION}）",
                   f"format version {version} is not supported (this program reads {FORMAT_VERSION})")
    dialect = obj.get("dialect")
    if dialect not in DUMP_NAMES:
        raise _bad(f"数据库类型 {dialect!r:.40} 未知", f"unknown dialect {dialect!r:.40}")
    dump, head = obj.get("dump"), obj.get("audit_head")
    if not isinstance(dump, dict) or not isinstance(head, dict):
        raise _bad("缺少 dump 或 audit_head", "dump or audit_head missing")
    if dump.get("name") != DUMP_NAMES[dialect]:
        raise _bad("转储文件名与数据库类型不符", "the dump's name does not match the dialect")
    sha = _str(dump.get("sha256"), "dump.sha256")
    head_hash = _str(head.get("hash"), "audit_head.hash")
    if not sha or not _HEX64.match(sha) or not head_hash or not _HEX64.match(head_hash):
        raise _bad("摘要应为 64 位十六进制", "digests must be 64 hexadecimal digits")
    schema = _str(obj.get("pg_schema"), "pg_schema", optional=True)
    if schema is not None and not _IDENT.match(schema):
        raise _bad(f"模式名 {schema!r:.40} 无效", f"invalid schema name {schema!r:.40}")
    keys_raw = obj.get("card_keys")
    if not isinstance(keys_raw, list) or len(keys_raw) > 1000:
        raise _bad("字段 card_keys 应为列表", "field card_keys must be a list")
    keys = []
    for k in keys_raw:
        if not isinstance(k, dict):
            raise _bad("card_keys 的元素应为对象", "card_keys items must be objects")
        keys.append(KeyFingerprint(_int(k.get("version"), "card_keys.version"),
                                   _str(k.get("fingerprint"), "card_keys.fingerprint") or "",
                                   bool(k.get("retired"))))
    return Manifest(
        created_at=_str(obj.get("created_at"), "created_at") or "",
        business_day=_str(obj.get("business_day"), "business_day") or "",
        dialect=str(dialect), pg_schema=schema,
        schema_revision=_str(obj.get("schema_revision"), "schema_revision", optional=True),
        dump_name=str(dump["name"]), dump_sha256=sha, dump_bytes=_int(dump.get("bytes"), "dump.bytes"),
        row_counts=_counts(obj.get("row_counts"), "row_counts"),
        ledger_totals=_counts(obj.get("ledger_totals"), "ledger_totals"),
        audit_head_id=_int(head.get("id"), "audit_head.id"), audit_head_hash=head_hash,
        card_keys=tuple(keys), key_fingerprint=_str(obj.get("key_fingerprint"), "key_fingerprint", optional=True),
        app_version=_str(obj.get("app_version"), "app_version", optional=True) or "", format_version=version)


# --- checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One named check of a backup or a restored database."""

    code: str
    zh: str
    en: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.code, "zh": self.zh, "en": self.en, "ok": self.ok, "detail": self.detail}


CHECK_NAMES: dict[str, tuple[str, str]] = {
    "archive": ("备份文件结构", "archive structure"),
    "manifest": ("清单摘要", "manifest digest"),
    "dump_sha256": ("转储 SHA-256", "dump SHA-256"),
    "restore": ("恢复到数据库", "restore into a database"),
    "integrity": ("数据库完整性检查", "database integrity check"),
    "schema_revision": ("数据库版本", "schema revision"),
    "row_counts": ("各表行数", "row counts"),
    "ledger_check": ("账务检查", "ledger check"),
    "ledger_totals": ("账户余额合计", "ledger totals"),
    "audit_verify": ("审计链校验", "audit verify"),
    "audit_head": ("审计链头", "audit head"),
    "card_keys": ("卡号密钥指纹", "card key fingerprints"),
}


def check(code: str, ok: bool, detail: str = "") -> Check:
    zh, en = CHECK_NAMES[code]
    return Check(code, zh, en, ok, detail)


@dataclass
class Observed:
    """What a restored database holds, to compare with its manifest."""

    row_counts: dict[str, int] = field(default_factory=dict)
    ledger_totals: dict[str, int] = field(default_factory=dict)
    audit_head_id: int = 0
    audit_head_hash: str = ""
    card_keys: tuple[KeyFingerprint, ...] = ()
    schema_revision: str | None = None


def _diff(expected: Mapping[str, int], got: Mapping[str, int], limit: int = 10) -> str:
    names = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
    parts = [f"{k}: 清单 manifest {expected.get(k, '-')} / 恢复后 restored {got.get(k, '-')}" for k in names[:limit]]
    return "; ".join(parts) + (f" (+{len(names) - limit})" if len(names) > limit else "")


def compare(m: Manifest, o: Observed) -> list[Check]:
    """The manifest's numbers against the restored database's: revision, counts, totals, head, keys."""
    totals_m = {k: v for k, v in m.ledger_totals.items() if v}
    totals_o = {k: v for k, v in o.ledger_totals.items() if v}
    head_ok = (o.audit_head_id, o.audit_head_hash) == (m.audit_head_id, m.audit_head_hash)
    return [
        check("schema_revision", o.schema_revision == m.schema_revision,
              "" if o.schema_revision == m.schema_revision else
              f"清单 manifest {m.schema_revision} / 恢复后 restored {o.schema_revision}"),
        check("row_counts", o.row_counts == m.row_counts, _diff(m.row_counts, o.row_counts)),
        check("ledger_totals", totals_o == totals_m, _diff(totals_m, totals_o)),
        check("audit_head", head_ok, "" if head_ok else
              f"清单 manifest {m.audit_head_id}:{m.audit_head_hash} / 恢复后 restored "
              f"{o.audit_head_id}:{o.audit_head_hash}"),
        check("card_keys", o.card_keys == m.card_keys, "" if o.card_keys == m.card_keys else
              f"清单 manifest {[(k.version, k.fingerprint) for k in m.card_keys]} / 恢复后 restored "
              f"{[(k.version, k.fingerprint) for k in o.card_keys]}"),
    ]
