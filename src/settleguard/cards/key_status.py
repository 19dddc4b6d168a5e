"""``settleguard keys status``: the key versions the database recorded, what each seals, what the configured key
holds and whether it is the database's, and a rotation in progress. Read-only: it never creates a key, records a
version or changes a row (the key is read with cards.key_source.load, not cards.custody.open_vault)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from settleguard.cards import key_repository as key_repo
from settleguard.cards.key_source import KeyCommandError, KeySource, load
from settleguard.cards.vault import KeyComparison, KeyFileMissing, VaultError, compare_keys, same_fingerprint


@dataclass(frozen=True)
class VersionStatus:
    version: int
    fingerprint: str | None  # None: values sealed under it, never recorded (a database from before 0008)
    created_at: datetime | None
    retired_at: datetime | None
    cards: int  # settlement cards sealed under it
    secrets: int  # merchants' webhook secrets sealed under it
    held: bool  # the loaded key holds this version
    held_matches: bool | None  # the held key's fingerprint is the recorded one (None: not held or not recorded)


@dataclass(frozen=True)
class KeyStatus:
    versions: tuple[VersionStatus, ...]
    source_kind: str  # file | environment | command
    source: str  # where, for people (a path, the variable, the command's program): never key material
    held_versions: tuple[int, ...]
    current_version: int | None  # the version new cards are sealed under
    load_error: str | None  # why the key could not be read
    key_missing: bool  # the key file does not exist
    comparison: KeyComparison | None
    rotation: key_repo.RotationRow | None  # unfinished
    last_rotation: key_repo.RotationRow | None

    @property
    def matches(self) -> bool:
        """The loaded key is the database's (an empty database with no key yet counts as matching)."""
        if self.load_error is not None:
            return self.key_missing and not self.versions
        cmp = self.comparison
        return cmp is not None and (cmp.matches or (
            not cmp.mismatched and not cmp.missing and cmp.unknown == self.unknown_newer
            and any(v.held_matches for v in self.versions)))

    @property
    def unknown_newer(self) -> tuple[int, ...]:
        """Held versions newer than every recorded one: accepted and recorded on first use (a rotation's new key)."""
        if self.comparison is None or not self.comparison.unknown:
            return ()
        recorded = [v.version for v in self.versions if v.fingerprint is not None]
        return self.comparison.unknown if recorded and min(self.comparison.unknown) > max(recorded) else ()


def key_status(engine: Engine, source: KeySource) -> KeyStatus:
    with engine.connect() as conn:
        rows = key_repo.recorded(conn)
        cards, secrets = key_repo.sealed_counts(conn)
        rotation = key_repo.unfinished_rotation(conn)
        last = key_repo.last_rotation(conn)
    held: dict[int, str] = {}
    current: int | None = None
    error: str | None = None
    missing = False
    try:
        vault = load(source)
        held, current = vault.fingerprints(), vault.current
    except KeyFileMissing as exc:
        error, missing = f"密钥文件不存在 key file not found: {exc.key_file}", True
    except KeyCommandError as exc:
        error = f"{exc.zh}\n{exc.en}" + (f"\n{exc.detail}" if exc.detail else "")
    except VaultError as exc:
        error = str(exc)
    versions = []
    for v in sorted({*rows, *cards, *secrets, *held}):
        r = rows.get(v)
        versions.append(VersionStatus(
            v, r.fingerprint if r else None, r.created_at if r else None, r.retired_at if r else None,
            cards.get(v, 0), secrets.get(v, 0), v in held,
            same_fingerprint(r.fingerprint, held[v]) if r and v in held else None))
    cmp = None if error else compare_keys({v: (r.fingerprint, r.retired_at is not None) for v, r in rows.items()},
                                          held)
    return KeyStatus(tuple(versions), source.kind, source.describe(), tuple(sorted(held)), current, error, missing,
                     cmp, rotation, last)


def rotation_dict(r: key_repo.RotationRow | None) -> dict[str, Any] | None:
    from settleguard import labels

    if r is None:
        return None
    zh, en = labels.pair(labels.KEY_ROTATION_PHASE, r.phase)
    return {"id": r.id, "phase": r.phase, "phase_zh": zh, "phase_en": en, "new_version": r.new_version,
            "old_versions": list(r.old_versions), "fingerprint": r.fingerprint, "keep_old": r.keep_old,
            "store": r.store, "total": r.total, "reencrypted": r.done, "runs": r.runs, "actor": r.actor,
            "started_at": r.started_at, "updated_at": r.updated_at, "finished_at": r.finished_at}


def as_dict(s: KeyStatus) -> dict[str, Any]:
    """JSON of ``keys status`` (times in UTC, ISO; versions and fingerprints only)."""
    from settleguard import labels

    zh, en = labels.pair(labels.KEY_SOURCE, s.source_kind)
    cmp = s.comparison
    return {
        "matches": s.matches,
        "key": {"source": s.source_kind, "source_zh": zh, "source_en": en, "where": s.source,
                "versions": list(s.held_versions), "current_version": s.current_version, "error": s.load_error,
                "mismatched": list(cmp.mismatched) if cmp else [], "missing": list(cmp.missing) if cmp else [],
                "unknown": list(cmp.unknown) if cmp else []},
        "versions": [{"version": v.version, "fingerprint": v.fingerprint, "created_at": v.created_at,
                      "retired_at": v.retired_at, "cards": v.cards, "webhook_secrets": v.secrets, "held": v.held,
                      "held_matches": v.held_matches} for v in s.versions],
        "rotation": rotation_dict(s.rotation),
        "last_rotation": rotation_dict(s.last_rotation),
    }
