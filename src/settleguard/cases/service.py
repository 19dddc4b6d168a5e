"""Case operations: open by hand, open automatically (an idempotent scan of payout events), assign,
record contacts and notes, change status, resolve and close. Every operator action goes through here,
each in one transaction; a refused action changes nothing and raises :class:`CaseActionRefused`.

The automatic scan (:func:`open_auto_cases`, run once per worker cycle) reads payout_events after the
``cases`` cursor (worker_cursors) and opens at most one case per cause (``cases.dedupe_key``):

- a payout entering ``needs_review`` (key ``needs_review:P<payout>:E<event>``), p2;
- a payout held for ``risk_or_compliance_block`` (``risk:P<payout>:I<instruction>``), p1;
- a payout returned after success, 退票 (``returned:P<payout>:I<instruction>``), p2;
- a merchant with REPEATED_FAILURE_THRESHOLD failed attempts within REPEATED_FAILURE_WINDOW, counted
  since its last repeated-failure case (``repeated_failures:M<merchant>:A<last attempt>``), p3; while such
  a case is still active, new failing payouts are linked to it instead.

The cursor moves in the same transaction as the cases it opened, so re-running opens nothing twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from settleguard.access import repository as access_repo
from settleguard.access.model import Action, Role, may
from settleguard.audit import service as audit
from settleguard.cases import model as m
from settleguard.cases import repository as repo
from settleguard.cases.model import CaseStatus, Method, Party, Priority
from settleguard.db.horizon import committed_horizon
from settleguard.payouts import repository as payout_repo

CURSOR = "cases"
SCAN_BATCH = 1000
_WATCHED = ("needs_review", "held", "returned", "failed")


class CaseActionRefused(ValueError):
    """An operator's action the case does not allow (or bad input); nothing changed."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


@dataclass
class AutoSummary:
    opened: Counter[str] = field(default_factory=Counter)  # cause -> cases opened
    case_ids: list[int] = field(default_factory=list)
    linked: int = 0  # payouts linked to an already active repeated-failure case
    events_read_to: int = 0


def _new_case(conn: Connection, *, merchant_id: int, category: str, priority: Priority, title: str, source: str,
              actor: str, now: datetime, tz: str, dedupe_key: str | None, payout_ids: Sequence[int]) -> int | None:
    case_id = repo.insert_case(conn, {
        "merchant_id": merchant_id, "category": category[:32], "priority": str(priority),
        "status": str(CaseStatus.OPEN), "title": title[:256], "source": source, "dedupe_key": dedupe_key,
        "assignee": None, "sla_due_at": m.sla_due(now, category, priority, tz), "resolution": None,
        "created_by": actor[:64], "created_at": now, "updated_at": now, "resolved_at": None})
    if case_id is not None:
        repo.link_payouts(conn, case_id, payout_ids)
        _audit(conn, actor, "open", case_id, {"merchant_id": merchant_id, "category": category[:32],
                                              "priority": str(priority), "source": source,
                                              "payouts": sorted(payout_ids)}, now)
    return case_id


def _audit(conn: Connection, actor: str, action: str, case_id: int, payload: dict[str, Any], now: datetime) -> None:
    """The ``case.<action>`` audit event, in the action's transaction (ids and codes only: free text such as
    what was said or a note may hold a card number, and stays in the case's own tables)."""
    audit.record(conn, actor[:64], f"case.{action}", ("case", case_id), payload, now)


def open_case(engine: Engine, *, merchant_no: str, category: str, title: str, actor: str, now: datetime,
              priority: Priority | None = None, payout_ids: Sequence[int] = (), tz: str) -> int:
    """Open a case by hand for ``merchant_no``, linking ``payout_ids`` (the merchant's own payouts)."""
    if not category.strip() or not title.strip():
        raise CaseActionRefused("分类和标题不能为空", "category and title are required")
    with engine.begin() as conn:
        mid = repo.merchant_id(conn, merchant_no)
        if mid is None:
            raise CaseActionRefused(f"没有商户 {merchant_no}", f"no merchant {merchant_no}")
        found = repo.existing_payouts(conn, payout_ids)
        missing = sorted(set(payout_ids) - set(found))
        if missing:
            raise CaseActionRefused(f"没有出款 {missing}", f"no payouts {missing}")
        foreign = sorted(p for p, owner in found.items() if owner != mid)
        if foreign:
            raise CaseActionRefused(f"出款 {foreign} 不属于商户 {merchant_no}",
                                    f"payouts {foreign} do not belong to merchant {merchant_no}")
        prio = priority or m.DEFAULT_PRIORITY.get(category, Priority.P3)
        case_id = _new_case(conn, merchant_id=mid, category=category.strip(), priority=prio, title=title.strip(),
                            source="manual", actor=actor, now=now, tz=tz, dedupe_key=None, payout_ids=payout_ids)
        assert case_id is not None  # no dedupe key: always inserted
        return case_id


def open_auto_cases(engine: Engine, now: datetime, *, tz: str, batch: int = SCAN_BATCH,
                    actor: str = "system") -> AutoSummary:
    """Open the cases payout events call for since the last scan (see the module docstring). Idempotent."""
    summary = AutoSummary()
    upto = committed_horizon(engine, "payout_events")  # no later commit can appear below it (db.horizon)
    while True:
        with engine.begin() as conn:
            after = payout_repo.cursor(conn, CURSOR)
            if upto is None:  # payout writers busy for now: scan next cycle
                summary.events_read_to = after
                return summary
            events, last = repo.payout_events_after(conn, after, _WATCHED, batch, upto)
            if last == after:
                summary.events_read_to = after
                return summary
            failing: dict[int, None] = {}
            for ev in events:
                pid, mid, to = int(ev["payout_id"]), int(ev["merchant_id"]), str(ev["to_status"])
                cause: str | None = None
                if to == "needs_review":
                    cause, key = m.NEEDS_REVIEW, m.dedupe_key(m.NEEDS_REVIEW, f"P{pid}", f"E{ev['id']}")
                    title = f"出款 {pid} 待复核 payout {pid} needs review ({ev['category'] or 'unknown'})"
                elif to == "held" and (ev["category"] == m.RISK or f"({m.RISK})" in str(ev["reason"])):
                    cause, key = m.RISK, m.dedupe_key("risk", f"P{pid}", f"I{ev['instruction_no']}")
                    title = f"出款 {pid} 被风控或合规拦截 payout {pid} blocked by risk or compliance"
                elif to == "returned":
                    cause, key = m.RETURNED, m.dedupe_key(m.RETURNED, f"P{pid}", f"I{ev['instruction_no']}")
                    title = f"出款 {pid} 成功后退票 payout {pid} returned after success"
                elif to == "failed":
                    failing[mid] = None
                if cause is not None:
                    case_id = _new_case(conn, merchant_id=mid, category=cause, priority=m.DEFAULT_PRIORITY[cause],
                                        title=title, source="auto", actor=actor, now=now, tz=tz, dedupe_key=key,
                                        payout_ids=[pid])
                    if case_id is not None:
                        summary.opened[cause] += 1
                        summary.case_ids.append(case_id)
            for mid in failing:
                _repeated_failures(conn, mid, now, tz, actor, summary)
            payout_repo.set_cursor(conn, CURSOR, last, now)
            summary.events_read_to = last


def _repeated_failures(conn: Connection, mid: int, now: datetime, tz: str, actor: str, summary: AutoSummary) -> None:
    latest = repo.latest_case(conn, mid, m.REPEATED_FAILURES)
    since = now - m.REPEATED_FAILURE_WINDOW
    if latest is not None:
        if CaseStatus(latest["status"]) in m.ACTIVE:  # still being worked on: add the newly failing payouts
            fails = repo.failed_attempts(conn, mid, since)
            before = len(repo.case_payouts(conn, int(latest["id"])))
            repo.link_payouts(conn, int(latest["id"]), [p for _, p in fails])
            summary.linked += len(repo.case_payouts(conn, int(latest["id"]))) - before
            return
        since = max(since, latest["created_at"])
    fails = repo.failed_attempts(conn, mid, since)
    if len(fails) < m.REPEATED_FAILURE_THRESHOLD:
        return
    payouts = sorted({p for _, p in fails})
    key = m.dedupe_key(m.REPEATED_FAILURES, f"M{mid}", f"A{fails[-1][0]}")
    title = (f"商户 7 天内 {len(fails)} 次出款失败（{len(payouts)} 笔出款） "
             f"{len(fails)} failed payout attempts in 7 days ({len(payouts)} payouts)")
    case_id = _new_case(conn, merchant_id=mid, category=m.REPEATED_FAILURES,
                        priority=m.DEFAULT_PRIORITY[m.REPEATED_FAILURES], title=title, source="auto", actor=actor,
                        now=now, tz=tz, dedupe_key=key, payout_ids=payouts)
    if case_id is not None:
        summary.opened[m.REPEATED_FAILURES] += 1
        summary.case_ids.append(case_id)


# --- operator actions -------------------------------------------------------------------

def _load(conn: Connection, case_id: int) -> repo.CaseRow:
    case = repo.get(conn, case_id, lock=True)
    if case is None:
        raise CaseActionRefused(f"没有工单 {case_id}", f"no case {case_id}")
    return case


def _not_closed(case: repo.CaseRow) -> None:
    if case["status"] == str(CaseStatus.CLOSED):
        raise CaseActionRefused(f"工单 {case['id']} 已关闭", f"case {case['id']} is closed")


def _system_note(conn: Connection, case_id: int, actor: str, body: str, now: datetime) -> None:
    repo.add_note(conn, {"case_id": case_id, "author": actor[:64], "body": body, "created_at": now})


def may_be_assigned(user: access_repo.UserRow | None) -> bool:
    """A case goes to an enabled staff user who may work cases (operator or support)."""
    return user is not None and not user.disabled and may(Role(user.role), Action.CASE_WORK)


def assignable(conn: Connection) -> list[str]:
    """The usernames a case may be assigned to (:func:`may_be_assigned`), by user id."""
    return [u.username for u in access_repo.users(conn) if may_be_assigned(u)]


def assign(engine: Engine, case_id: int, assignee: str, actor: str, now: datetime) -> None:
    """Assign the case to ``assignee``, who must be an enabled operator or support user (the same rule for
    ``settleguard cases assign``, ``/api/v1/cases/{id}/assign`` and the console)."""
    name = assignee.strip()
    if not name:
        raise CaseActionRefused("处理人不能为空", "assignee is required")
    with engine.begin() as conn:
        if not may_be_assigned(access_repo.user_by_username(conn, name)):
            raise CaseActionRefused(f"{name} 不是可处理工单的员工用户", f"{name} is not a staff user who works cases")
        case = _load(conn, case_id)
        _not_closed(case)
        repo.update_case(conn, case_id, now, assignee=assignee.strip()[:64])
        _system_note(conn, case_id, actor, f"[指派 assigned] {case['assignee'] or '-'} → {assignee.strip()}", now)
        _audit(conn, actor, "assign", case_id, {"assignee": assignee.strip()[:64]}, now)


def add_contact(engine: Engine, case_id: int, *, party: Party, method: Method, who: str, said: str, actor: str,
                now: datetime, at: datetime | None = None) -> int:
    """Record a contact (联系记录): with whom (``party``, ``who``), how, when (``at``, default now), what was said."""
    if not said.strip():
        raise CaseActionRefused("请填写沟通内容", "what was said is required")
    if at is not None and at.tzinfo is None:
        raise CaseActionRefused("联系时间须带时区", "the contact time needs a time zone")
    if at is not None and at > now:
        raise CaseActionRefused("联系时间不能晚于现在", "the contact time cannot be in the future")
    with engine.begin() as conn:
        case = _load(conn, case_id)
        _not_closed(case)
        cid = repo.add_contact(conn, {
            "case_id": case_id, "party": str(Party(party)), "method": str(Method(method)),
            "contact_name": who.strip()[:128] or None, "at": at or now, "summary": said.strip(),
            "recorded_by": actor[:64], "recorded_at": now})
        repo.update_case(conn, case_id, now)
        _audit(conn, actor, "contact", case_id, {"contact_id": cid, "party": str(Party(party)),
                                                 "method": str(Method(method))}, now)
        return cid


def add_note(engine: Engine, case_id: int, body: str, actor: str, now: datetime) -> int:
    if not body.strip():
        raise CaseActionRefused("备注不能为空", "the note is empty")
    with engine.begin() as conn:
        case = _load(conn, case_id)
        _not_closed(case)
        nid = repo.add_note(conn, {"case_id": case_id, "author": actor[:64], "body": body.strip(), "created_at": now})
        repo.update_case(conn, case_id, now)
        _audit(conn, actor, "note", case_id, {"note_id": nid}, now)
        return nid


def _move(conn: Connection, case: repo.CaseRow, target: CaseStatus, actor: str, now: datetime,
          **values: object) -> None:
    current = CaseStatus(str(case["status"]))
    if target not in m.TRANSITIONS[current]:
        raise CaseActionRefused(
            f"工单 {case['id']} 不能从「{m.STATUS_ZH[current]}」变为「{m.STATUS_ZH[target]}」",
            f"case {case['id']} cannot go from {current} to {target}")
    if not repo.update_case(conn, int(str(case["id"])), now, target=target, **values):
        raise CaseActionRefused(f"工单 {case['id']} 已被他人修改", f"case {case['id']} changed concurrently")
    _system_note(conn, int(str(case["id"])), actor, f"[状态 status] {current} → {target}", now)
    _audit(conn, actor, "status", int(str(case["id"])), {"from": str(current), "to": str(target)}, now)


def set_status(engine: Engine, case_id: int, target: CaseStatus, actor: str, now: datetime) -> None:
    """Move to open, waiting_bank or waiting_merchant (resolve and close have their own actions)."""
    target = CaseStatus(target)
    if target in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        raise CaseActionRefused("请用 resolve 或 close 命令", "use resolve or close for that")
    with engine.begin() as conn:
        case = _load(conn, case_id)
        extra: dict[str, object] = {"resolved_at": None} if case["status"] == str(CaseStatus.RESOLVED) else {}
        _move(conn, case, target, actor, now, **extra)


def resolve(engine: Engine, case_id: int, resolution: str, actor: str, now: datetime) -> None:
    if not resolution.strip():
        raise CaseActionRefused("请填写处理结果", "a resolution is required")
    with engine.begin() as conn:
        case = _load(conn, case_id)
        _move(conn, case, CaseStatus.RESOLVED, actor, now, resolution=resolution.strip(), resolved_at=now)


def close(engine: Engine, case_id: int, actor: str, now: datetime) -> None:
    with engine.begin() as conn:
        case = _load(conn, case_id)
        _move(conn, case, CaseStatus.CLOSED, actor, now)


def case_detail(conn: Connection, case_id: int, now: datetime) -> dict[str, Any] | None:
    """A case for people (``settleguard cases show --json``, ``GET /api/v1/cases/{id}``): the case with
    ``overdue``, its payouts each with the diagnosis of its latest failure in Chinese and English, its
    contacts and notes; None when there is no such case."""
    case = repo.get(conn, case_id)
    if case is None:
        return None
    payouts = repo.case_payouts(conn, case_id)
    for p in payouts:
        p["diagnosis_zh"] = failure_diagnosis(p, "zh")
        p["diagnosis_en"] = failure_diagnosis(p, "en")
    overdue = m.is_overdue(CaseStatus(case["status"]), case["sla_due_at"], now)
    return {"case": {**case, "overdue": overdue}, "payouts": payouts, "contacts": repo.contacts(conn, case_id),
            "notes": repo.notes(conn, case_id)}


def failure_diagnosis(payout: dict[str, Any], lang: str = "zh") -> dict[str, Any] | None:
    """The diagnosis and guidance (in ``lang``) of a linked payout's latest failed or unclear answer
    (``fail_code``, ``fail_message``, ``fail_rule`` from repository.case_payouts), diagnosed again in the
    scheme its rule came from; None when it never failed."""
    from settleguard.diagnosis import SCHEMES, classify

    if not payout.get("fail_code") and not payout.get("fail_message"):
        return None
    prefix = str(payout.get("fail_rule") or "").split(".", 1)[0]
    scheme = prefix if prefix in SCHEMES else None
    return classify(scheme, payout["fail_code"] or None, payout["fail_message"] or None).to_dict(lang)


def open_system_case(conn: Connection, *, merchant_id: int, category: str, title: str, note: str, now: datetime,
                     dedupe_key: str, payout_ids: Sequence[int] = (), tz: str,
                     actor: str = "system") -> int | None:
    """Open an automatic case inside the caller's transaction, with ``note`` as its first note (what the
    system found: a bank file's unknown references, a file payout never answered; payouts.files through
    :class:`SystemCases`,
    cases.overdue). None when a case with ``dedupe_key`` exists already (nothing is written)."""
    case_id = _new_case(conn, merchant_id=merchant_id, category=category,
                        priority=m.DEFAULT_PRIORITY.get(category, Priority.P2), title=title, source="auto",
                        actor=actor, now=now, tz=tz, dedupe_key=dedupe_key, payout_ids=payout_ids)
    if case_id is not None:
        _system_note(conn, case_id, actor, note, now)
    return case_id


@dataclass(frozen=True)
class SystemCases:
    """:func:`open_system_case` in the business time zone ``tz``: the case opener the entry points hand to the
    payout flow (payouts.files.CaseOpener), so that payouts opens cases without importing cases."""

    tz: str
    actor: str = "system"

    def __call__(self, conn: Connection, *, merchant_id: int, category: str, title: str, note: str, now: datetime,
                 dedupe_key: str, payout_ids: Sequence[int] = ()) -> int | None:
        return open_system_case(conn, merchant_id=merchant_id, category=category, title=title, note=note, now=now,
                                dedupe_key=dedupe_key, payout_ids=payout_ids, tz=self.tz, actor=self.actor)
