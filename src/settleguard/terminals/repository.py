"""SQL of the terminal registry's telemetry, heartbeats, policy and stored findings (terminals/service.py).
The terminals rows themselves belong to merchants/terminals_repository.py; only ``terminals.firmware`` (the
device's firmware, a registry column) is written here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, select, update

from settleguard.db import tables as t
from settleguard.terminals.checks import CODES as CHECK_CODES
from settleguard.terminals.checks import TerminalFinding
from settleguard.terminals.model import ImportedTxn
from settleguard.terminals.policy import DEFAULT_MODEL, ModelPolicy, Policy, model_key, thresholds_from
from settleguard.terminals.telemetry import Telemetry

T = TypeVar("T")
HISTORY: Final = 200  # heartbeats kept per terminal
TELEMETRY_COLUMNS: Final = tuple(c.name for c in t.terminal_telemetry.c
                                 if c.name not in ("terminal_id", "first_seen_at", "updated_at", "source"))
HEARTBEAT_COLUMNS: Final = ("battery", "signal_dbm", "reconnects", "echo_latency_ms", "echo_loss_pct", "ip", "printer",
                            "tamper", "lat", "lng")


def _terminal_select() -> Any:
    tm, m = t.terminals, t.merchants
    return (select(tm.c.id, tm.c.terminal_no, tm.c.serial_no, tm.c.model, tm.c.firmware, tm.c.status, tm.c.address,
                   tm.c.merchant_id, m.c.merchant_no, m.c.registered_name)
            .join(m, m.c.id == tm.c.merchant_id))


def find(conn: Connection, *, serial_no: str | None = None, terminal_no: str | None = None,
         include_retired: bool = False) -> list[dict[str, Any]]:
    """Terminals by serial number or terminal number (not retired unless asked), oldest first."""
    tm = t.terminals
    q = _terminal_select()
    if serial_no is not None:
        q = q.where(tm.c.serial_no == serial_no)
    if terminal_no is not None:
        q = q.where(tm.c.terminal_no == terminal_no)
    if not include_retired:
        q = q.where(tm.c.status != "retired")
    return [dict(r._mapping) for r in conn.execute(q.order_by(tm.c.id).limit(20))]


def find_many(conn: Connection, serials: Sequence[str], numbers: Sequence[str]
              ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Terminals (not retired) by serial number and by terminal number, for many at once."""
    tm = t.terminals
    by_serial: dict[str, list[dict[str, Any]]] = {}
    by_no: dict[str, list[dict[str, Any]]] = {}
    for column, keys, out in ((tm.c.serial_no, serials, by_serial), (tm.c.terminal_no, numbers, by_no)):
        for chunk in _chunks(sorted(set(keys)), 500):
            for r in conn.execute(_terminal_select().where(column.in_(chunk), tm.c.status != "retired")
                                  .order_by(tm.c.id)):
                row = dict(r._mapping)
                out.setdefault(str(row["serial_no"] if column is tm.c.serial_no else row["terminal_no"]),
                               []).append(row)
    return by_serial, by_no


def terminal_by_id(conn: Connection, terminal_id: int) -> dict[str, Any] | None:
    r = conn.execute(_terminal_select().where(t.terminals.c.id == terminal_id)).first()
    return None if r is None else dict(r._mapping)


def telemetry(conn: Connection, terminal_id: int) -> dict[str, Any] | None:
    tt = t.terminal_telemetry
    r = conn.execute(select(tt).where(tt.c.terminal_id == terminal_id)).first()
    return None if r is None else dict(r._mapping)


def telemetry_of(row: dict[str, Any] | None) -> Telemetry:
    if row is None:
        return Telemetry()
    return Telemetry(**{k: row[k] for k in TELEMETRY_COLUMNS if k in Telemetry.__dataclass_fields__})


def telemetry_many(conn: Connection, terminal_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    tt = t.terminal_telemetry
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(terminal_ids)), 500):
        for r in conn.execute(select(tt).where(tt.c.terminal_id.in_(chunk))):
            out[int(r.terminal_id)] = dict(r._mapping)
    return out


def save_telemetry(conn: Connection, reports: Sequence[tuple[int, dict[str, Any]]], *, source: str,
                   now: datetime) -> set[int]:
    """Merge reported values into each terminal's latest telemetry (one report per terminal); the terminals
    whose telemetry changed. The first reported location becomes the registered one when none is set."""
    tt = t.terminal_telemetry
    old = telemetry_many(conn, [tid for tid, _ in reports])
    inserts: list[dict[str, Any]] = []
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for tid, reported in reports:
        values = {k: v for k, v in reported.items() if k in TELEMETRY_COLUMNS}
        have = old.get(tid)
        if (have is None or have["home_lat"] is None) and "lat" in values and "lng" in values \
                and "home_lat" not in values:
            values = {**values, "home_lat": values["lat"], "home_lng": values["lng"]}
        if have is None:
            inserts.append({c: values.get(c) for c in TELEMETRY_COLUMNS} | {
                "terminal_id": tid, "first_seen_at": now, "updated_at": now, "source": source})
            continue
        changed = {k: v for k, v in values.items() if have.get(k) != v}
        if changed:
            updates.setdefault(tuple(sorted(changed)), []).append({"tid": tid, **changed})
    if inserts:
        conn.execute(insert(tt), inserts)
    for columns, rows in updates.items():
        stmt = (update(tt).where(tt.c.terminal_id == bindparam("tid"))
                .values(updated_at=now, source=source, **{c: bindparam(c) for c in columns}))
        conn.execute(stmt, rows)
    return {int(r["terminal_id"]) for r in inserts} | {int(r["tid"]) for rows in updates.values() for r in rows}


def set_firmware(conn: Connection, changes: Sequence[tuple[int, str]]) -> None:
    """terminals.firmware of the terminals whose reported firmware differs (the caller compares)."""
    if changes:
        tm = t.terminals
        conn.execute(update(tm).where(tm.c.id == bindparam("tid")).values(firmware=bindparam("fw")),
                     [{"tid": tid, "fw": fw[:32]} for tid, fw in changes])


def add_heartbeats(conn: Connection, beats: Sequence[tuple[int, datetime, dict[str, Any]]], source: str) -> int:
    """Heartbeats, once per terminal and time (a repeated one is ignored); keeps the latest HISTORY of each
    terminal. How many were added."""
    if not beats:
        return 0
    hb = t.terminal_heartbeats
    ids = sorted({tid for tid, _, _ in beats})
    earliest = min(at for _, at, _ in beats)
    seen: set[tuple[int, datetime]] = set()
    for chunk in _chunks(ids, 500):
        seen.update((int(r.terminal_id), r.at) for r in conn.execute(
            select(hb.c.terminal_id, hb.c.at).where(hb.c.terminal_id.in_(chunk), hb.c.at >= earliest)))
    new = [{"terminal_id": tid, "at": at, "source": source, **{k: values.get(k) for k in HEARTBEAT_COLUMNS}}
           for tid, at, values in beats if (tid, at) not in seen]
    if new:
        conn.execute(insert(hb), new)
    for chunk in _chunks(ids, 500):
        over = [int(r.terminal_id) for r in conn.execute(
            select(hb.c.terminal_id).where(hb.c.terminal_id.in_(chunk)).group_by(hb.c.terminal_id)
            .having(func.count() > HISTORY))]
        for tid in over:
            cutoff = conn.execute(select(hb.c.at).where(hb.c.terminal_id == tid).order_by(hb.c.at.desc())
                                  .offset(HISTORY).limit(1)).scalar_one()
            conn.execute(delete(hb).where(hb.c.terminal_id == tid, hb.c.at <= cutoff))
    return len(new)


def heartbeats(conn: Connection, terminal_id: int, limit: int = 50) -> list[dict[str, Any]]:
    hb = t.terminal_heartbeats
    return [dict(r._mapping) for r in conn.execute(
        select(hb).where(hb.c.terminal_id == terminal_id).order_by(hb.c.at.desc()).limit(limit))]


# --- policy --------------------------------------------------------------------------------------


def load_policy(conn: Connection) -> Policy:
    tp = t.terminal_policies
    defaults = ModelPolicy(DEFAULT_MODEL)
    thresholds = thresholds_from({})
    models: dict[str, ModelPolicy] = {}
    for r in conn.execute(select(tp)):
        mp = ModelPolicy(r.model, r.min_firmware, r.min_app, tuple(r.bad_firmware or ()), tuple(r.bad_app or ()),
                         r.host, r.port, tuple(r.ip_ranges or ()))
        if r.model == DEFAULT_MODEL:
            defaults = mp
            thresholds = thresholds_from(dict(r.thresholds or {}))
        else:
            models[model_key(r.model)] = mp
    return Policy(defaults, thresholds, models)


def replace_policy(conn: Connection, policy: Policy, *, actor: str, now: datetime) -> bool:
    """The stored policy becomes ``policy`` (all models); False when it already was."""
    if load_policy(conn) == policy:
        return False
    tp = t.terminal_policies
    conn.execute(delete(tp))
    conn.execute(insert(tp), [
        {"model": mp.model, "min_firmware": mp.min_firmware, "min_app": mp.min_app,
         "bad_firmware": list(mp.bad_firmware), "bad_app": list(mp.bad_app), "host": mp.host, "port": mp.port,
         "ip_ranges": list(mp.ip_ranges),
         "thresholds": policy.thresholds.as_dict() if mp.model == DEFAULT_MODEL else {}, "actor": actor[:64],
         "updated_at": now} for mp in policy.rows()])
    return True


# --- what the checks read --------------------------------------------------------------------------


def states(conn: Connection, terminal_ids: Sequence[int] | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(terminal, telemetry) of the given terminals (None: every terminal that is not retired and has
    telemetry)."""
    tm, tt = t.terminals, t.terminal_telemetry
    q = select(tm.c.id, tm.c.terminal_no, tm.c.model, tm.c.firmware, tt).join(tt, tt.c.terminal_id == tm.c.id)
    queries = ([q.where(tm.c.status != "retired")] if terminal_ids is None
               else [q.where(tm.c.id.in_(chunk)) for chunk in _chunks(sorted(set(terminal_ids)), 500)])
    return [({"id": r.id, "terminal_no": r.terminal_no, "model": r.model, "firmware": r.firmware},
             {k: getattr(r, k) for k in (*TELEMETRY_COLUMNS, "first_seen_at")})
            for one in queries for r in conn.execute(one)]


def last_transactions(conn: Connection, terminal_ids: Sequence[int], since: date) -> dict[int, datetime]:
    """The latest transaction of each terminal on business days from ``since`` (the clustered key's range)."""
    if not terminal_ids:
        return {}
    tx = t.transactions
    out: dict[int, datetime] = {}
    for chunk in _chunks(list(terminal_ids), 500):
        for r in conn.execute(select(tx.c.terminal_id, func.max(tx.c.occurred_at).label("last"))
                              .where(tx.c.cycle_date >= since, tx.c.terminal_id.in_(chunk))
                              .group_by(tx.c.terminal_id)):
            out[int(r.terminal_id)] = _from_micros(r.last)
    return out


def _from_micros(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(int(value) / 1_000_000, UTC)


def _chunks(items: Sequence[T], size: int) -> Iterable[list[T]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


# --- stored findings --------------------------------------------------------------------------------


def sync_findings(conn: Connection, found: Mapping[int, Sequence[TerminalFinding]], now: datetime) -> tuple[int, int]:
    """For each terminal of ``found``: open what is newly found, refresh what is still found, close what is no
    longer found. (opened, closed). Only the checks' codes (checks.CODES): a message log's findings
    (:func:`store_log_findings`) are not the checks' to close."""
    tf = t.terminal_findings
    open_rows: dict[tuple[int, str], Any] = {}
    for chunk in _chunks(sorted(found), 500):
        for r in conn.execute(select(tf.c.id, tf.c.terminal_id, tf.c.code, tf.c.severity, tf.c.detail_zh,
                                     tf.c.detail_en, tf.c.evidence)
                              .where(tf.c.terminal_id.in_(chunk), tf.c.status == "open",
                                     tf.c.code.in_(sorted(CHECK_CODES)))):
            open_rows[(int(r.terminal_id), str(r.code))] = r
    inserts: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    still: list[int] = []
    seen: set[tuple[int, str]] = set()
    for tid, items in found.items():
        for f in items:
            seen.add((tid, f.code))
            d = f.as_dict()
            values = {"severity": d["severity"], "detail_zh": f.detail_zh[:256], "detail_en": f.detail_en[:256],
                      "evidence": d["evidence"]}
            row = open_rows.get((tid, f.code))
            if row is None:
                inserts.append({"terminal_id": tid, "code": f.code, "category": f.category, "owner": f.owner,
                                "status": "open", "open_key": f.code, "first_seen_at": now, "last_seen_at": now,
                                "closed_at": None, **values})
            elif (row.severity, row.detail_zh, row.detail_en, row.evidence) != tuple(values.values()):
                changed.append({"fid": row.id, **values})
            else:
                still.append(int(row.id))
    gone = [int(r.id) for key, r in open_rows.items() if key not in seen]
    if inserts:
        conn.execute(insert(tf), inserts)
    if changed:
        conn.execute(update(tf).where(tf.c.id == bindparam("fid")).values(
            severity=bindparam("severity"), detail_zh=bindparam("detail_zh"), detail_en=bindparam("detail_en"),
            evidence=bindparam("evidence"), last_seen_at=now), changed)
    for chunk in _chunks(still, 500):
        conn.execute(update(tf).where(tf.c.id.in_(chunk)).values(last_seen_at=now))
    for chunk in _chunks(gone, 500):
        conn.execute(update(tf).where(tf.c.id.in_(chunk)).values(status="closed", open_key=None, closed_at=now))
    return len(inserts), len(gone)


def findings(conn: Connection, terminal_id: int, *, open_only: bool, limit: int = 100) -> list[dict[str, Any]]:
    tf = t.terminal_findings
    q = select(tf).where(tf.c.terminal_id == terminal_id)
    if open_only:
        q = q.where(tf.c.status == "open")
    return [dict(r._mapping) for r in conn.execute(q.order_by(tf.c.first_seen_at.desc(), tf.c.id.desc()).limit(limit))]


def events(conn: Connection, terminal_id: int, limit: int = 50) -> list[dict[str, Any]]:
    te = t.terminal_events
    return [dict(r._mapping) for r in conn.execute(
        select(te).where(te.c.terminal_id == terminal_id).order_by(te.c.id.desc()).limit(limit))]


def listing(conn: Connection, *, unhealthy: bool, merchant_id: int | None = None, limit: int = 1000,
            offset: int = 0, health: str | None = None, code: str | None = None, owner: str | None = None,
            text: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Terminals (not retired) with their telemetry highlights and open findings' severities and codes;
    filtered by health (ok, warning, fault, unknown), an open finding's code or owner, and a merchant number,
    terminal number or serial number prefix."""
    tm, m, tt, tf = t.terminals, t.merchants, t.terminal_telemetry, t.terminal_findings
    high = func.sum(case((tf.c.severity == "high", 1), else_=0))
    counts = (select(tf.c.terminal_id, func.count().label("open_findings"), high.label("high_findings"))
              .where(tf.c.status == "open").group_by(tf.c.terminal_id).subquery())
    q = (select(tm.c.id, tm.c.terminal_no, tm.c.serial_no, tm.c.model, tm.c.firmware, m.c.merchant_no,
                tt.c.comm_type, tt.c.last_heartbeat_at, tt.c.battery, tt.c.signal_dbm, tt.c.app_version,
                (tt.c.terminal_id.is_not(None)).label("has_telemetry"),
                func.coalesce(counts.c.open_findings, 0).label("open_findings"),
                func.coalesce(counts.c.high_findings, 0).label("high_findings"))
         .join(m, m.c.id == tm.c.merchant_id)
         .outerjoin(tt, tt.c.terminal_id == tm.c.id)
         .outerjoin(counts, counts.c.terminal_id == tm.c.id)
         .where(tm.c.status != "retired"))
    if unhealthy:
        q = q.where(counts.c.open_findings > 0)
    if merchant_id is not None:
        q = q.where(tm.c.merchant_id == merchant_id)
    if health == "fault":
        q = q.where(counts.c.high_findings > 0)
    elif health == "warning":
        q = q.where(counts.c.open_findings > 0, counts.c.high_findings == 0)
    elif health == "ok":
        q = q.where(counts.c.open_findings.is_(None), tt.c.terminal_id.is_not(None))
    elif health == "unknown":
        q = q.where(counts.c.open_findings.is_(None), tt.c.terminal_id.is_(None))
    if code or owner:
        cond = [tf.c.terminal_id == tm.c.id, tf.c.status == "open"]
        if code:
            cond.append(tf.c.code == code)
        if owner:
            cond.append(tf.c.owner == owner)
        q = q.where(select(tf.c.id).where(*cond).exists())
    if text:
        prefix = text.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
        q = q.where((m.c.merchant_no.like(prefix, escape="\\")) | (tm.c.terminal_no.like(prefix, escape="\\"))
                    | (tm.c.serial_no.like(prefix, escape="\\")))
    total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
    rows = [dict(r._mapping) for r in conn.execute(
        q.order_by(func.coalesce(counts.c.high_findings, 0).desc(), func.coalesce(counts.c.open_findings, 0).desc(),
                   m.c.merchant_no, tm.c.terminal_no).limit(limit).offset(offset))]
    codes: dict[int, list[str]] = {}
    if rows:
        for r in conn.execute(select(tf.c.terminal_id, tf.c.code).where(
                and_(tf.c.status == "open", tf.c.terminal_id.in_([row["id"] for row in rows])))
                .order_by(tf.c.id)):
            codes.setdefault(int(r.terminal_id), []).append(str(r.code))
    for row in rows:
        row["codes"] = codes.get(row["id"], [])
        row["has_telemetry"] = bool(row["has_telemetry"])
    return total, rows



# --- message-log findings and the imported transactions they are compared with ----------------------------


def store_log_findings(conn: Connection, found: Mapping[int, Sequence[dict[str, Any]]],
                       covered: Mapping[int, tuple[datetime, frozenset[str]]], now: datetime) -> tuple[int, int, int]:
    """A message log's findings (terminals/service.store_log): per terminal and code one open row; a repeated
    log changes nothing. ``found`` rows: code, category, severity, owner, detail_zh, detail_en, evidence, first_at,
    last_at. ``covered``: per terminal the log's first message time and the codes the log could show; an open
    finding of such a code last seen before that time and not found again is closed (a later log without it).
    The checks' codes are never touched. (opened, refreshed, closed)."""
    tf = t.terminal_findings
    open_rows: dict[tuple[int, str], Any] = {}
    ids = sorted(set(found) | set(covered))
    for chunk in _chunks(ids, 500):
        for r in conn.execute(select(tf.c.id, tf.c.terminal_id, tf.c.code, tf.c.severity, tf.c.detail_zh,
                                     tf.c.detail_en, tf.c.evidence, tf.c.last_seen_at)
                              .where(tf.c.terminal_id.in_(chunk), tf.c.status == "open",
                                     tf.c.code.not_in(sorted(CHECK_CODES)))):
            open_rows[(int(r.terminal_id), str(r.code))] = r
    inserts: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    for tid, items in found.items():
        for f in items:
            seen.add((tid, f["code"]))
            values = {"severity": f["severity"], "detail_zh": f["detail_zh"][:256], "detail_en": f["detail_en"][:256],
                      "evidence": f["evidence"]}
            row = open_rows.get((tid, f["code"]))
            if row is None:
                inserts.append({"terminal_id": tid, "code": f["code"], "category": f["category"], "owner": f["owner"],
                                "status": "open", "open_key": f["code"], "first_seen_at": f["first_at"],
                                "last_seen_at": f["last_at"], "closed_at": None, **values})
            elif (row.severity, row.detail_zh, row.detail_en, row.evidence) != tuple(values.values()):
                changed.append({"fid": row.id, "last": max(row.last_seen_at, f["last_at"]), **values})
    gone = [int(r.id) for (tid, code), r in open_rows.items()
            if (tid, code) not in seen and tid in covered and code in covered[tid][1]
            and r.last_seen_at < covered[tid][0]]
    if inserts:
        conn.execute(insert(tf), inserts)
    if changed:
        conn.execute(update(tf).where(tf.c.id == bindparam("fid")).values(
            severity=bindparam("severity"), detail_zh=bindparam("detail_zh"), detail_en=bindparam("detail_en"),
            evidence=bindparam("evidence"), last_seen_at=bindparam("last")), changed)
    for chunk in _chunks(gone, 500):
        conn.execute(update(tf).where(tf.c.id.in_(chunk)).values(status="closed", open_key=None, closed_at=now))
    return len(inserts), len(changed), len(gone)


_CREDIT_KINDS: Final = (2, 3)  # settlement.model.TxnKind VOID, REFUND


def imported_transactions(conn: Connection, terminal_no: str, start: datetime, end: datetime,
                          limit: int = 20_000) -> list[ImportedTxn]:
    """The imported transactions (table transactions) of the terminal numbered ``terminal_no`` (any merchant)
    that occurred in [start, end): what ``terminals analyze-log --compare`` holds the log against. Reversals are
    left out (the log's approved, not reversed sales, voids and refunds are compared). The business days
    searched are bounded around the window (the clustered key's range)."""
    tx, tm = t.transactions, t.terminals
    q = (select(tx.c.merchant_id, tx.c.external_ref, tx.c.stan, tx.c.rrn, tx.c.auth_code, tx.c.amount_fen,
                tx.c.kind, tx.c.card_type)
         .join(tm, tm.c.id == tx.c.terminal_id)
         .where(tm.c.terminal_no == terminal_no,
                tx.c.cycle_date >= date.fromordinal(start.date().toordinal() - 1),
                tx.c.cycle_date <= date.fromordinal(end.date().toordinal() + 7),
                tx.c.occurred_at >= start, tx.c.occurred_at < end, tx.c.kind != 4)
         .order_by(tx.c.occurred_at, tx.c.external_ref).limit(limit))
    return [ImportedTxn(ref=f"{r.merchant_id}/{r.external_ref}", amount_fen=int(r.amount_fen), stan=r.stan or None,
                        rrn=r.rrn or None, auth_code=r.auth_code or None, credit=int(r.kind) in _CREDIT_KINDS)
            for r in conn.execute(q)]


def silence_candidates(conn: Connection, before: datetime, since_day: date, limit: int) -> list[int]:
    """Terminals (not retired, with telemetry) the silence checks may judge differently now: the last heartbeat
    before ``before``, first seen before it with no transaction on a business day from ``since_day``, or an open
    silent_* finding (to close). Oldest heartbeat first, at most ``limit``."""
    tm, tt, tf, tx = t.terminals, t.terminal_telemetry, t.terminal_findings, t.transactions
    no_txn = ~select(tx.c.external_ref).where(tx.c.cycle_date >= since_day, tx.c.merchant_id == tm.c.merchant_id,
                                              tx.c.terminal_id == tm.c.id).exists()
    silent_open = select(tf.c.id).where(tf.c.terminal_id == tm.c.id, tf.c.status == "open",
                                        tf.c.code.in_(("silent_no_heartbeat", "silent_no_transactions"))).exists()
    q = (select(tm.c.id).join(tt, tt.c.terminal_id == tm.c.id)
         .where(tm.c.status != "retired",
                (tt.c.last_heartbeat_at < before) | ((tt.c.first_seen_at < before) & no_txn) | silent_open)
         .order_by(tt.c.last_heartbeat_at, tm.c.id).limit(limit))
    return [int(r.id) for r in conn.execute(q)]
