"""The audit chain, pure: canonical JSON, the hash of an event, and the verifier.

Each event stores the hash of the one before it::

    hash = sha256(prev_hash + "\\n" + canonical({id, at, actor, kind, subject_type, subject_id, payload}))

with ``at`` as UTC ISO text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) and the first event's ``prev_hash``
:data:`GENESIS`. Ids are consecutive from 1. An event that covers rows of another table (a
settlement run's payout events, one batch of status changes) carries ``payload["covers"] =
{"table", "ranges": [[first_id, last_id], ...], "count", "digest"}``; the verifier compares it
with a digest recomputed from the table (:class:`Recomputed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64
COVERS = "covers"


def canonical(obj: Any) -> str:
    """JSON with sorted keys, no spaces and unescaped non-ASCII text: one text per value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def iso_utc(at: datetime) -> str:
    """An aware instant as UTC ISO text with microseconds (naive datetimes are refused)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime refused: {at!r}")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Event:
    """One audit event as stored; ``payload`` is its canonical JSON text."""

    id: int
    at: datetime
    actor: str
    kind: str
    subject_type: str | None
    subject_id: str | None
    payload: str
    prev_hash: str
    hash: str

    def data(self) -> Any:
        return json.loads(self.payload)


def event_hash(prev_hash: str, *, id: int, at: datetime, actor: str, kind: str,  # noqa: A002 - the column name
               subject_type: str | None, subject_id: str | None, payload: Any) -> str:
    """The hash of an event whose predecessor's hash is ``prev_hash``; ``payload`` is the JSON value."""
    body = {"id": id, "at": iso_utc(at), "actor": actor, "kind": kind, "subject_type": subject_type,
            "subject_id": subject_id, "payload": payload}
    return sha256_text(prev_hash + "\n" + canonical(body))


def _rehash(e: Event, payload: Any, *, id: int | None = None) -> str:  # noqa: A002
    return event_hash(e.prev_hash, id=e.id if id is None else id, at=e.at, actor=e.actor, kind=e.kind,
                      subject_type=e.subject_type, subject_id=e.subject_id, payload=payload)


def make_event(prev: Event | None, *, at: datetime, actor: str, kind: str, subject_type: str | None,
               subject_id: str | None, payload: Mapping[str, Any]) -> Event:
    """The event that follows ``prev`` (None: the first), with its id and hash."""
    text = canonical(dict(payload))
    value = json.loads(text)
    new_id = 1 if prev is None else prev.id + 1
    prev_hash = GENESIS if prev is None else prev.hash
    h = event_hash(prev_hash, id=new_id, at=at, actor=actor, kind=kind, subject_type=subject_type,
                   subject_id=subject_id, payload=value)
    return Event(new_id, at, actor, kind, subject_type, subject_id, text, prev_hash, h)


def id_ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ids as inclusive runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def cover(table: str, ranges: Sequence[tuple[int, int]], count: int, digest: str) -> dict[str, Any]:
    """The ``covers`` part of a payload."""
    return {"table": table, "ranges": [[a, b] for a, b in ranges], "count": count, "digest": digest}


def covered(e: Event) -> dict[str, Any] | None:
    """The ``covers`` part of an event's payload, if any (None also when the payload is not JSON)."""
    try:
        data = e.data()
    except ValueError:
        return None
    c = data.get(COVERS) if isinstance(data, dict) else None
    return c if isinstance(c, dict) else None


@dataclass(frozen=True)
class Recomputed:
    """What the covered rows of an event hash to now."""

    count: int
    digest: str


class Fault(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    INSERTED = "inserted"
    COVERED_ROWS = "covered_rows"


@dataclass(frozen=True)
class Problem:
    """The first bad event: its id, what is wrong, in Chinese and English."""

    event_id: int
    fault: Fault
    zh: str
    en: str


@dataclass(frozen=True)
class Verdict:
    checked: int
    problem: Problem | None
    head_id: int
    head_hash: str

    @property
    def ok(self) -> bool:
        return self.problem is None


def _misplaced(e: Event, payload: Any, by_hash: Mapping[str, int], claimed: Mapping[str, int]) -> Problem | None:
    """An event whose content is intact but that sits at the wrong position."""
    m = 0 if e.prev_hash == GENESIS else by_hash.get(e.prev_hash)
    if m is None or m + 1 == e.id or _rehash(e, payload, id=m + 1) != e.hash:
        return None
    first = claimed.get(e.prev_hash)
    if first is not None and first < e.id:
        return Problem(e.id, Fault.INSERTED,
                       f"审计事件 {e.id} 之前被插入了事件（它原本是第 {m + 1} 条，第 {first} 条也声称接在第 {m} 条之后）",
                       f"an event was inserted before audit event {e.id} (it was event {m + 1}; event {first} "
                       f"also claims to follow event {m})")
    return Problem(e.id, Fault.REORDERED, f"审计事件 {e.id} 的位置被调换（它原本是第 {m + 1} 条）",
                   f"audit event {e.id} was reordered (it was event {m + 1})")


REATTESTED = "covers_reattested"


def _reattested(events: Sequence[Event]) -> dict[int, dict[str, Any]]:
    """Event id -> the count and digest a later ``covers_reattested`` event (migration 0009, which masked card
    numbers in covered payout_events rows) gives for its covered rows. That event is itself in the chain, so
    it is checked like any other."""
    out: dict[int, dict[str, Any]] = {}
    for e in events:
        if e.kind != REATTESTED:
            continue
        try:
            items = e.data().get("reattests", [])
        except (ValueError, AttributeError):
            continue
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("event"), int) and item["event"] < e.id:
                out[item["event"]] = {"table": item.get("table"), "count": item.get("count"),
                                      "digest": item.get("digest")}
    return out


def verify(events: Sequence[Event], recomputed: Mapping[int, Recomputed] | None = None) -> Verdict:
    """Check the chain (``events`` in id order) and the covered rows; name the first bad event.

    ``recomputed`` maps an event id to the digest of the rows its ``covers`` names, as they are
    now; an event with ``covers`` missing from it is reported.
    """
    recomputed = recomputed or {}
    by_hash: dict[str, int] = {}
    claimed: dict[str, int] = {}
    for e in events:
        by_hash.setdefault(e.hash, e.id)
        claimed.setdefault(e.prev_hash, e.id)
    reattested = _reattested(events)
    prev_hash, expected = GENESIS, 1
    for n, e in enumerate(events):
        if e.id != expected:
            gone = f"{expected}" if e.id == expected + 1 else f"{expected}–{e.id - 1}"
            return Verdict(n, Problem(e.id, Fault.DELETED, f"审计事件 {gone} 被删除（事件 {e.id} 之前缺失）",
                                      f"audit event(s) {gone} deleted (missing before event {e.id})"), 0, prev_hash)
        try:
            payload = json.loads(e.payload)
            canonical_ok = canonical(payload) == e.payload
        except ValueError:
            payload, canonical_ok = e.payload, False
        if not canonical_ok or _rehash(e, payload) != e.hash:
            found = _misplaced(e, payload, by_hash, claimed) if canonical_ok else None
            return Verdict(n, found or Problem(e.id, Fault.EDITED, f"审计事件 {e.id} 被修改（哈希不符）",
                                               f"audit event {e.id} was edited (hash mismatch)"), 0, prev_hash)
        if e.prev_hash != prev_hash:
            if e.prev_hash in by_hash:
                return Verdict(n, Problem(e.id, Fault.REORDERED,
                                          f"审计事件 {e.id} 的前一事件哈希不符（事件顺序被改动）",
                                          f"audit event {e.id} does not follow event {e.id - 1} "
                                          "(the order was changed)"), 0, prev_hash)
            return Verdict(n, Problem(e.id, Fault.DELETED,
                                      f"审计事件 {e.id} 的前一事件已不存在（有事件被删除后重新编号）",
                                      f"the event before audit event {e.id} no longer exists (deleted and "
                                      "renumbered)"), 0, prev_hash)
        c = covered(e)
        if c is not None:
            c = reattested.get(e.id, c)  # rows masked by migration 0009, attested again later in the chain
            now = recomputed.get(e.id)
            if now is None or now.count != c.get("count") or now.digest != c.get("digest"):
                got = "?" if now is None else str(now.count)
                return Verdict(n, Problem(
                    e.id, Fault.COVERED_ROWS,
                    f"审计事件 {e.id} 所覆盖的 {c.get('table')} 记录被修改或删除（应有 {c.get('count')} 条，现有 {got} 条，摘要不符）",
                    f"the {c.get('table')} rows covered by audit event {e.id} were edited or deleted "
                    f"(expected {c.get('count')} rows, found {got}, digest mismatch)"), 0, prev_hash)
        prev_hash, expected = e.hash, e.id + 1
    last = events[-1] if events else None
    return Verdict(len(events), None, last.id if last else 0, last.hash if last else GENESIS)

