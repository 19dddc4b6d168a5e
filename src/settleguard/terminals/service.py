"""Use cases of the terminal registry and its checks (终端登记、遥测与体检): import a TMS export, record a
heartbeat, import the policy, run the checks and keep their findings, show a terminal and list them.
Each takes the engine, the clock value and the business zone from its caller; one transaction per unit of
work. A bad row refuses the whole import (nothing changes); a repeated import changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from settleguard.audit import service as audit
from settleguard.terminals import repository as repo
from settleguard.terminals.checks import State, check, health
from settleguard.terminals.policy import Policy, read_policy
from settleguard.terminals.registry import Row, RowProblem, parse_export, read_export
from settleguard.terminals.telemetry import Telemetry

FUTURE_SKEW = timedelta(minutes=10)  # a report dated later than now + this is refused


class TerminalNotFound(Exception):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


class ReportRefused(Exception):
    """A heartbeat that cannot be taken (a time in the future)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


class ImportRefused(Exception):
    """Nothing was imported: every problem, by place and field."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class ImportResult:
    rows: int = 0
    changed: int = 0
    unchanged: int = 0
    heartbeats: int = 0
    unknown: list[tuple[str, str, str]] = field(default_factory=list)  # (where zh, where en, who)
    opened: int = 0
    closed: int = 0


Index = tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]


def _index(conn: Connection, reports: Sequence[Telemetry]) -> Index:
    return repo.find_many(conn, [r.serial_no for r in reports if r.serial_no],
                          [r.terminal_no for r in reports if r.terminal_no])


def _resolve(index: Index, tel: Telemetry) -> tuple[dict[str, Any] | None, str, str]:
    """The registered terminal a report is about, or None and why (zh, en); the reason is empty when the
    terminal is simply not registered (see :func:`_unknown`)."""
    by_serial, by_no = index
    if tel.serial_no:
        by_sn = by_serial.get(tel.serial_no, [])
        if by_sn:
            term = by_sn[0]
            if tel.terminal_no and tel.terminal_no != term["terminal_no"]:
                return None, (f"序列号 {tel.serial_no} 登记在终端 {term['terminal_no']}，不是 {tel.terminal_no}"), (
                    f"serial {tel.serial_no} is registered to terminal {term['terminal_no']}, not {tel.terminal_no}")
            return term, "", ""
    if tel.terminal_no:
        found = by_no.get(tel.terminal_no, [])
        if len(found) == 1 and (not tel.serial_no or not found[0]["serial_no"]):
            return found[0], "", ""
        if len(found) > 1:
            return None, f"终端号 {tel.terminal_no} 在多个商户下，需提供序列号", (
                f"terminal {tel.terminal_no} exists at several merchants; give the serial number")
        if found:
            return None, f"终端 {tel.terminal_no} 登记的序列号是 {found[0]['serial_no']}，不是 {tel.serial_no}", (
                f"terminal {tel.terminal_no} is registered with serial {found[0]['serial_no']}, not {tel.serial_no}")
    return None, "", ""


def _unknown(tel: Telemetry) -> tuple[str, str]:
    who = tel.serial_no or tel.terminal_no or "-"
    return f"未登记的终端 {who}", f"terminal {who} is not registered"


def _apply(conn: Connection, reports: Sequence[tuple[dict[str, Any], Telemetry]], *, source: str,
           now: datetime) -> tuple[set[int], int]:
    """Store reports, one per terminal: (the terminals whose telemetry changed, heartbeats added)."""
    values = [(term, tel.reported()) for term, tel in reports]
    firmware = [(term["id"], v["firmware"]) for term, v in values
                if v.get("firmware") is not None and v["firmware"][:32] != (term["firmware"] or "")]
    changed = repo.save_telemetry(conn, [(term["id"], {k: x for k, x in v.items() if k != "firmware"})
                                         for term, v in values], source=source, now=now)
    repo.set_firmware(conn, firmware)
    changed |= {tid for tid, _ in firmware}
    beats = [(term["id"], tel.last_heartbeat_at, v) for (term, tel), (_, v) in zip(reports, values, strict=True)
             if tel.last_heartbeat_at is not None]
    return changed, repo.add_heartbeats(conn, beats, source)


def import_export(engine: Engine, source: Path | bytes, *, zone: ZoneInfo, now: datetime,
                  actor: str) -> ImportResult:
    """Import a TMS export (CSV or JSON). Any bad row: ImportRefused, nothing stored. Terminals settleguard
    does not know are reported in the result (a TMS holds other acquirers' devices too) and skipped."""
    rows, problems = read_export(source, zone) if isinstance(source, Path) else parse_export(source, zone)
    problems = [*problems, *_future(rows, now)]
    result = ImportResult(rows=len(rows))
    with engine.begin() as conn:
        resolved: list[tuple[Row, dict[str, Any]]] = []
        seen: dict[int, str] = {}
        index = _index(conn, [row.telemetry for row in rows])
        for row in rows:
            term, zh, en = _resolve(index, row.telemetry)
            if term is None:
                if not zh:
                    result.unknown.append((row.where_zh, row.where_en, row.telemetry.serial_no
                                           or row.telemetry.terminal_no or "-"))
                else:
                    problems.append(RowProblem(row.where_zh, row.where_en, "serial_no", zh, en))
                continue
            if term["id"] in seen:
                problems.append(RowProblem(row.where_zh, row.where_en, "serial_no",
                                           f"终端 {term['terminal_no']} 已在{seen[term['id']]}出现",
                                           f"terminal {term['terminal_no']} appears again (first: {seen[term['id']]})"))
                continue
            seen[term["id"]] = row.where_zh
            resolved.append((row, term))
        if problems:
            raise ImportRefused(problems)
        changed, result.heartbeats = _apply(conn, [(term, row.telemetry) for row, term in resolved],
                                            source="import", now=now)
        result.changed = len(changed)
        result.unchanged = len(resolved) - len(changed)
        result.opened, result.closed = evaluate(conn, [term["id"] for _, term in resolved], now)
        if result.changed:
            audit.record(conn, actor, "terminal.telemetry_import", None,
                         {"rows": result.rows, "changed": result.changed, "unknown": len(result.unknown)}, now)
    return result


def _future(rows: Sequence[Row], now: datetime) -> list[RowProblem]:
    out = []
    for row in rows:
        for name in ("last_heartbeat_at", "last_sign_in_at"):
            at = getattr(row.telemetry, name)
            if at is not None and at > now + FUTURE_SKEW:
                out.append(RowProblem(row.where_zh, row.where_en, name, f"时间 {at.isoformat()} 晚于当前时间",
                                      f"time {at.isoformat()} is in the future"))
    return out


def record_heartbeat(engine: Engine, terminal_no: str, tel: Telemetry, *, now: datetime) -> dict[str, Any]:
    """A heartbeat posted for ``terminal_no`` (its time defaults to now); returns the terminal's health."""
    at = tel.last_heartbeat_at or now
    if at > now + FUTURE_SKEW:
        raise ReportRefused(f"心跳时间 {at.isoformat()} 晚于当前时间", f"heartbeat time {at.isoformat()} is in the "
                               "future")
    tel = replace(tel, terminal_no=terminal_no, last_heartbeat_at=at)
    with engine.begin() as conn:
        term, zh, en = _resolve(_index(conn, [tel]), tel)
        if term is None:
            raise TerminalNotFound(*((zh, en) if zh else _unknown(tel)))
        _apply(conn, [(term, tel)], source="heartbeat", now=now)
        evaluate(conn, [term["id"]], now)
        return _summary(conn, term)


def import_policy(engine: Engine, path: Path, *, actor: str, now: datetime) -> tuple[bool, Policy, int, int]:
    """Replace the policy with the file's (PolicyRejected: nothing changes); re-run every terminal's checks.
    (changed, policy, findings opened, findings closed)."""
    policy = read_policy(path)
    with engine.begin() as conn:
        changed = repo.replace_policy(conn, policy, actor=actor, now=now)
        opened, closed = evaluate(conn, None, now)
        if changed:
            audit.record(conn, actor, "terminal.policy_import", None,
                         {"models": len(policy.models), "file": path.name[:128]}, now)
    return changed, policy, opened, closed


def evaluate(conn: Connection, terminal_ids: Sequence[int] | None, now: datetime) -> tuple[int, int]:
    """Run the checks of the terminals (None: all with telemetry) and keep their findings: (opened, closed)."""
    policy = repo.load_policy(conn)
    states = repo.states(conn, terminal_ids)
    since = (now - timedelta(days=policy.thresholds.silent_days + 2)).date()
    last = repo.last_transactions(conn, [term["id"] for term, _ in states], since)
    found = {}
    for term, tel in states:
        state = State(term["terminal_no"], term["model"], term["firmware"] or None, repo.telemetry_of(tel),
                      tel.get("first_seen_at"), last.get(term["id"]))
        found[int(term["id"])] = check(state, policy, now)
    return repo.sync_findings(conn, found, now)


def sweep(engine: Engine, now: datetime) -> tuple[int, int]:
    """Re-run every terminal's checks (silence depends on the clock)."""
    with engine.begin() as conn:
        return evaluate(conn, None, now)


def resolve_key(conn: Connection, key: str) -> dict[str, Any]:
    """A terminal by serial number, terminal number or MERCHANT_NO/TERMINAL_NO (retired ones too)."""
    key = key.strip()[:64]
    found = repo.find(conn, serial_no=key, include_retired=True)
    if not found and "/" in key:
        merchant_no, _, terminal_no = key.partition("/")
        found = [r for r in repo.find(conn, terminal_no=terminal_no, include_retired=True)
                 if r["merchant_no"] == merchant_no]
    if not found:
        found = repo.find(conn, terminal_no=key, include_retired=True)
    active = [r for r in found if r["status"] != "retired"] or found
    if not active:
        raise TerminalNotFound(f"没有序列号或终端号为 {key} 的终端", f"no terminal with serial or number {key}")
    if len(active) > 1:
        where = "、".join(f"{r['merchant_no']}/{r['terminal_no']}" for r in active)
        raise TerminalNotFound(f"{key} 对应多个终端：{where}（请用 商户号/终端号）",
                               f"{key} matches several terminals: {where} (use MERCHANT_NO/TERMINAL_NO)")
    return active[0]


_RANK = {"high": 0, "medium": 1, "low": 2}


def _summary(conn: Connection, term: dict[str, Any]) -> dict[str, Any]:
    open_rows = sorted(repo.findings(conn, term["id"], open_only=True),
                       key=lambda r: (_RANK.get(r["severity"], 3), r["id"]))
    tel = repo.telemetry(conn, term["id"])
    return {"terminal_no": term["terminal_no"], "serial_no": term["serial_no"], "merchant_no": term["merchant_no"],
            "health": health([r["severity"] for r in open_rows], tel is not None),
            "open_findings": [_finding_out(r) for r in open_rows]}


def _finding_out(r: dict[str, Any]) -> dict[str, Any]:
    from settleguard.terminals.checks import CODES

    spec = CODES.get(r["code"])
    out = {"id": r["id"], "code": r["code"], "category": r["category"], "severity": r["severity"],
           "owner": r["owner"], "status": r["status"], "detail_zh": r["detail_zh"], "detail_en": r["detail_en"],
           "evidence": r["evidence"], "first_seen_at": r["first_seen_at"], "last_seen_at": r["last_seen_at"],
           "closed_at": r["closed_at"]}
    if spec is not None:
        out.update(title_zh=spec.title_zh, title_en=spec.title_en, steps=list(spec.steps),
                   merchant_zh=spec.merchant_zh, merchant_en=spec.merchant_en, ops_zh=spec.ops_zh, ops_en=spec.ops_en)
    else:
        out.update(guidance(r["code"]))
    return out


def guidance(code: str) -> dict[str, Any]:
    """Title, steps and merchant / ops words of a finding code: the checks' (checks.CODES) or a message log's
    (analysis.KINDS); empty for an unknown code."""
    from settleguard.terminals.analysis import KINDS, OWNER_STEPS
    from settleguard.terminals.checks import CODES

    spec = CODES.get(code)
    if spec is not None:
        return {"title_zh": spec.title_zh, "title_en": spec.title_en, "steps": list(spec.steps),
                "merchant_zh": spec.merchant_zh, "merchant_en": spec.merchant_en, "ops_zh": spec.ops_zh,
                "ops_en": spec.ops_en}
    kind = KINDS.get(code)
    if kind is None:
        return {}
    return {"title_zh": kind.title_zh, "title_en": kind.title_en, "steps": list(OWNER_STEPS[code][1]),
            "merchant_zh": kind.merchant_zh, "merchant_en": kind.merchant_en, "ops_zh": kind.ops_zh,
            "ops_en": kind.ops_en}


def diagnose(engine: Engine, key: str | int, *, now: datetime, refresh: bool = True) -> dict[str, Any]:
    """A terminal's registry entry, telemetry, health, open findings and timeline (newest first): its registry
    events, heartbeats and findings opened and closed. ``key``: a serial number, terminal number or
    MERCHANT_NO/TERMINAL_NO, or the terminal's id (an int). ``refresh`` re-runs its checks first."""
    def find(conn: Connection) -> dict[str, Any]:
        if isinstance(key, int):
            got = repo.terminal_by_id(conn, key)
            if got is None:
                raise TerminalNotFound(f"终端 #{key} 不存在", f"no terminal #{key}")
            return got
        return resolve_key(conn, key)

    if refresh:
        with engine.begin() as conn:
            evaluate(conn, [find(conn)["id"]], now)
    with engine.connect() as conn:
        term = find(conn)
        out = _summary(conn, term)
        out["id"] = term["id"]
        tel = repo.telemetry(conn, term["id"])
        out.update(model=term["model"], firmware=term["firmware"] or None, status=term["status"],
                   address=term["address"], merchant_name=term["registered_name"],
                   telemetry=None if tel is None else {k: v for k, v in tel.items() if k != "terminal_id"})
        timeline: list[dict[str, Any]] = []
        for e in repo.events(conn, term["id"]):
            timeline.append({"at": e["created_at"], "kind": "event", "code": e["action"],
                             "zh": e["reason"], "en": e["reason"],
                             "detail": {k: e[k] for k in ("old_serial_no", "new_serial_no", "old_address",
                                                          "new_address", "actor") if e[k]}})
        for h in repo.heartbeats(conn, term["id"], limit=20):
            timeline.append({"at": h["at"], "kind": "heartbeat", "code": h["source"], "zh": "", "en": "",
                             "detail": {k: h[k] for k in repo.HEARTBEAT_COLUMNS if h[k] is not None}})
        for f in repo.findings(conn, term["id"], open_only=False, limit=50):
            timeline.append({"at": f["first_seen_at"], "kind": "finding_opened", "code": f["code"],
                             "zh": f["detail_zh"], "en": f["detail_en"], "detail": {}})
            if f["closed_at"] is not None:
                timeline.append({"at": f["closed_at"], "kind": "finding_closed", "code": f["code"], "zh": "", "en": "",
                                 "detail": {}})
        timeline.sort(key=lambda x: x["at"], reverse=True)
        out["timeline"] = timeline
    return out


def list_terminals(engine: Engine, *, unhealthy: bool, now: datetime, refresh: bool = True,
                   merchant_id: int | None = None, limit: int = 1000, offset: int = 0,
                   **filters: str | None) -> tuple[int, list[dict[str, Any]]]:
    """Terminals with their health (``unhealthy``: only those with open findings; ``filters``: health, code,
    owner, text as repository.listing)."""
    if refresh:
        sweep(engine, now)
    with engine.connect() as conn:
        total, rows = repo.listing(conn, unhealthy=unhealthy, merchant_id=merchant_id, limit=limit, offset=offset,
                                   **filters)
    for r in rows:
        r["health"] = ("fault" if r["high_findings"] else "warning" if r["open_findings"]
                       else "ok" if r["has_telemetry"] else "unknown")
    return total, rows


# --- a message log's findings kept per terminal (analyze-log --store / --compare) ------------------------------

EVIDENCE_MESSAGES = 20  # messages kept as a stored finding's evidence
EVIDENCE_LINES = 200  # log line numbers kept


@dataclass
class LogStoreResult:
    opened: int = 0
    refreshed: int = 0
    closed: int = 0
    stored_terminals: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # terminal numbers not registered (or ambiguous): skipped


def _merge(items: Sequence[Any], source: dict[str, Any]) -> dict[str, Any]:
    """One stored row of a terminal's log findings of one code (terminals.model.Finding): the worst severity,
    the latest detail, the evidence messages, lines and differences (bounded)."""
    ranked = sorted(items, key=lambda f: (_RANK.get(f.severity, 3)))
    latest = max(items, key=lambda f: f.at)  # every one has a time (store_log)
    ats = [f.at for f in items if f.at is not None]
    messages = [m.evidence() for f in items for m in f.evidence]
    lines = sorted({n for f in items for n in (*(m.line for m in f.evidence), *f.lines)})
    evidence: dict[str, Any] = {**source, "count": len(items), "lines": lines[:EVIDENCE_LINES],
                                "messages": messages[-EVIDENCE_MESSAGES:]}
    diffs = [d.as_dict() for f in items for d in f.differences]
    if diffs:
        evidence["differences"] = diffs[:EVIDENCE_MESSAGES]
    detail_zh, detail_en = latest.detail_zh or latest.title_zh, latest.detail_en or latest.title_en
    if len(items) > 1:
        detail_zh, detail_en = f"{len(items)} 次；最近：{detail_zh}", f"{len(items)} times; latest: {detail_en}"
    return {"code": latest.kind, "category": latest.category, "severity": ranked[0].severity,
            "owner": latest.owner or "acquirer_ops", "detail_zh": detail_zh, "detail_en": detail_en,
            "evidence": evidence, "first_at": min(ats) if ats else None, "last_at": max(ats) if ats else None}


def store_log(engine: Engine, findings: Sequence[Any], messages: Sequence[Any], *, file_name: str, digest: str,
              compared: bool, now: datetime) -> LogStoreResult:
    """Keep a message log's findings (terminals.model.Finding) in terminal_findings, one open row per terminal
    and code, so ``terminals diagnose``, the console and the troubleshooter see them. Terminals by number (a
    number at several merchants: the one the log's field 42 names, else skipped); numbers not registered are
    reported and skipped. A repeated log changes nothing; a later log of a terminal without a code it could
    show closes that code's open finding; the checks' findings are never closed here."""
    from settleguard.terminals.analysis import KINDS

    first: dict[str, datetime] = {}
    merchant_nos: dict[str, set[str]] = {}
    for m in messages:
        if m.terminal not in first or m.at < first[m.terminal]:
            first[m.terminal] = m.at
        if m.get("42"):
            merchant_nos.setdefault(m.terminal, set()).add(m.get("42").strip())
    groups: dict[tuple[str, str], list[Any]] = {}
    for f in findings:
        if f.terminal and f.at is not None:
            groups.setdefault((f.terminal, f.kind), []).append(f)
    numbers = sorted({t for t, _ in groups} | set(first))
    could = frozenset(k for k in KINDS if compared or k != "import_mismatch")
    source = {"source": "log", "file": file_name[:128], "sha256": digest[:16]}
    result = LogStoreResult()
    with engine.begin() as conn:
        _, by_no = repo.find_many(conn, [], numbers)
        ids: dict[str, int] = {}
        for no in numbers:
            found = by_no.get(no, [])
            if len(found) > 1:
                found = [r for r in found if r["merchant_no"] in merchant_nos.get(no, set())]
            if len(found) != 1:
                result.unknown.append(no)
                continue
            ids[no] = int(found[0]["id"])
        rows: dict[int, list[dict[str, Any]]] = {}
        for (no, _), items in sorted(groups.items()):
            if no in ids:
                rows.setdefault(ids[no], []).append(_merge(items, source))
        covered = {ids[no]: (at, could) for no, at in first.items() if no in ids}
        result.opened, result.refreshed, result.closed = repo.store_log_findings(conn, rows, covered, now)
        result.stored_terminals = sorted(no for no in ids if ids[no] in rows)
    return result


def imported_for_log(engine: Engine, messages: Sequence[Any], zone: ZoneInfo) -> dict[str, list[Any]]:
    """Per terminal of the log, the imported transactions (model.ImportedTxn) of the local business days its
    messages cover (``zone``): what analysis.compare_with_imported holds the log against."""
    days: dict[str, set[Any]] = {}
    for m in messages:
        days.setdefault(m.terminal, set()).add(m.at.astimezone(zone).date())
    out: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for no, wanted in sorted(days.items()):
            rows: list[Any] = []
            for day in sorted(wanted):
                start = datetime.combine(day, datetime.min.time(), zone)
                rows += repo.imported_transactions(conn, no, start, start + timedelta(days=1))
            out[no] = rows
    return out


# --- the worker's silence sweep ------------------------------------------------------------------------------

@dataclass
class SilenceSweep:
    candidates: int = 0
    checked: int = 0
    opened: int = 0
    closed: int = 0
    left: int = 0  # candidates not reached within the time budget (next cycle)


def silence_sweep(engine: Engine, now: datetime, *, budget: timedelta = timedelta(seconds=20), chunk: int = 500,
                  limit: int = 100_000) -> SilenceSweep:
    """The worker's step: re-run the checks of the terminals whose silence may have changed with the clock
    (last heartbeat or transaction older than the policy's silent_days, or an open silent finding), in chunks of
    ``chunk`` (one transaction each), stopping after ``budget``; the rest wait for the next cycle (oldest
    heartbeat first)."""
    import time

    started = time.monotonic()
    with engine.connect() as conn:
        days = repo.load_policy(conn).thresholds.silent_days
        ids = repo.silence_candidates(conn, now - timedelta(days=days), (now - timedelta(days=days + 2)).date(),
                                      limit)
    out = SilenceSweep(candidates=len(ids))
    for i in range(0, len(ids), chunk):
        if time.monotonic() - started > budget.total_seconds():
            break
        part = ids[i:i + chunk]
        with engine.begin() as conn:
            opened, closed = evaluate(conn, part, now)
        out.checked += len(part)
        out.opened += opened
        out.closed += closed
    out.left = len(ids) - out.checked
    return out


# --- the merchant portal's view (merchant words only) ---------------------------------------------------------

MERCHANT_FIELDS = ("code", "severity", "owner", "first_seen_at", "last_seen_at", "title_zh", "title_en",
                   "detail_zh", "detail_en", "merchant_zh", "merchant_en")


def merchant_terminals(engine: Engine, merchant_id: int, *, limit: int = 200) -> list[dict[str, Any]]:
    """A merchant's terminals (not retired) with their health and open findings in the merchant's words: title,
    detail, what the merchant can do and, only when the merchant acts first (owner ``merchant``), the steps;
    never the acquirer ops' instructions. Reads the stored findings (the worker and the checks refresh them)."""
    out = []
    with engine.connect() as conn:
        _, rows = repo.listing(conn, unhealthy=False, merchant_id=merchant_id, limit=limit)
        for r in rows:
            open_rows = sorted(repo.findings(conn, r["id"], open_only=True),
                               key=lambda f: (_RANK.get(f["severity"], 3), f["id"]))
            findings = []
            for f in open_rows:
                full = _finding_out(f)
                one = {k: full.get(k, "") for k in MERCHANT_FIELDS}
                one["steps"] = list(full.get("steps") or ()) if f["owner"] == "merchant" else []
                findings.append(one)
            out.append({"terminal_no": r["terminal_no"], "serial_no": r["serial_no"], "model": r["model"],
                        "health": health([f["severity"] for f in open_rows], bool(r["has_telemetry"])), "last_heartbeat_at": r["last_heartbeat_at"], "findings": findings})
    return out
