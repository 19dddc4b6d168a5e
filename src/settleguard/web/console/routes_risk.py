"""The console's risk queue (风险队列, issue 22; docs/risk.md "控制台 Console"):

- ``/risk`` (staff): the flagged merchants of a day (the latest scanned day by default, or ``?date=``), highest
  score first, filtered by minimum score and rule; each with its explanation (zh first), the rules by name, its
  case (工单) and whether its payouts are on risk hold;
- ``/risk/{merchant_no}`` (staff): the merchant's features over 30 days with its own baseline (ECharts, drawn by
  static/history.js), the evidence transactions of its chosen flagged day, its earlier alerts and risk holds;
- ``POST /risk/{merchant_no}/hold`` and ``/release`` (operators, CSRF): risk.service.hold / release, exactly as
  ``settleguard risk hold|release`` (the reason trimmed, card numbers masked, at most 250 characters).

A merchant user gets 403 on every one of them; support and auditors read only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from settleguard.access.model import Principal, Role
from settleguard.labels import RISK_HOLD
from settleguard.risk import model as risk_model
from settleguard.risk import service as risk
from settleguard.web.console.common import PAGE, Staff, check_csrf, forbidden, lang_of, not_found, render
from settleguard.web.context import web
from settleguard.web.services import container_of

router = APIRouter(include_in_schema=False)
MerchantNo = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
MAX_FORM_REASON = 4000  # longer posts are refused (400) before anything is read; the kept reason is 250
DONE = {"hold": ("已风控暂停出款：到期出款将挂账，仅运营人员可解除",
                 "payouts put on risk hold: due payouts are held until an operator releases them"),
        "release": ("风控暂停已解除，被暂停的出款已放行", "risk hold released; the held payouts are released")}
KIND = {1: ("消费", "sale"), 2: ("撤销", "void"), 3: ("退货", "refund"), 4: ("冲正", "reversal")}
CARD = {1: ("借记卡", "debit"), 2: ("信用卡", "credit"), 3: ("扫码", "QR")}


def _rules(request: Request) -> risk_model.RuleSet | None:
    try:
        return container_of(request).risk_rules()
    except risk_model.RulesError:
        return None  # the page still shows what was stored, with the default rule names


def _is_operator(user: Principal) -> bool:
    return user.role is Role.OPERATOR


def _second(at: datetime | None, zone: ZoneInfo) -> str:
    """A time in the business zone, to the second."""
    return "-" if at is None else at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


@router.get("/risk")
def risk_queue(request: Request, user: Staff,
               day: Annotated[date | None, Query(alias="date")] = None,
               min_score: Annotated[int, Query(ge=0, le=100)] = 0,
               rule: Annotated[str, Query(max_length=32, pattern=r"^[A-Za-z0-9_]*$")] = "",
               page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    with web(request).engine.connect() as conn:
        q = risk.queue(conn, day, min_score=min_score, rule=rule or None, limit=PAGE, offset=(page - 1) * PAGE)
    zone = container_of(request).zone
    for item in q.items:
        h = item["hold"]
        item["hold_since"] = _second(h["placed_at"], zone) if h else ""
    return render(request, "risk.html", user, q=q, names=risk.rule_names(_rules(request)), min_score=min_score,
                  rule=rule, page=page, pages=max(1, -(-q.total // PAGE)), asked=day, risk_hold=RISK_HOLD)


def _charts(got: dict[str, Any], rules: risk_model.RuleSet, lang: str) -> dict[str, Any]:
    """The merchant page's charts in static/history.js's format: the daily amount with the baseline (the median of
    the stored days in the baseline window before each day) and count; the shares the rules read, in %."""
    def T(zh: str, en: str) -> str:  # noqa: N802
        return en if lang == "en" else zh

    feats = got["features"]
    base = risk.baseline_series(got["history"], rules.baseline.days, rules.baseline.min_days)
    base = base[len(got["history"]) - len(feats):]

    def share(key: str) -> list[float | None]:
        return [None if not f["sale_count"] else round(100 * int(f[key] or 0) / int(f["sale_count"]), 1)
                for f in feats]

    return {
        "x": [f["cycle_date"].isoformat() for f in feats],
        "volume": {"units": [T("元", "yuan"), T("笔", "sales")], "whole": [1], "series": [
            {"name": T("消费金额", "Sales amount"), "type": "bar", "axis": 0,
             "values": [int(f["sale_fen"]) / 100 for f in feats]},
            {"name": T(f"基线（前 {rules.baseline.days} 天中位数）",
                       f"Baseline (median of the {rules.baseline.days} days before)"), "type": "line", "axis": 0,
             "values": [None if b is None else round(b / 100, 2) for b in base]},
            {"name": T("消费笔数", "Sales count"), "type": "line", "axis": 1,
             "values": [int(f["sale_count"]) for f in feats]}]},
        "shares": {"units": ["%"], "series": [
            {"name": T(zh, en), "type": "line", "axis": 0, "values": share(key)}
            for key, zh, en in (("round_count", "整数金额", "Round amounts"), ("night_count", "凌晨交易", "Night sales"),
                                ("credit_count", "信用卡", "Credit cards"),
                                ("under_limit_count", "贴近限额", "Just under a limit"),
                                ("over_mcc_count", "超出行业常见金额", "Above the MCC's ticket"))]},
    }


def _merchant_page(request: Request, user: Principal, merchant_no: str, day: date | None, status: int = 200,
                   refused: risk.RiskRefused | None = None, done: str | None = None, reason: str = "") -> Response:
    rules = _rules(request) or risk.load_rules()
    try:
        with web(request).engine.connect() as conn:
            got = risk.picture(conn, merchant_no, day, days=rules.baseline.days)
    except risk.RiskRefused:
        raise not_found() from None
    zone = container_of(request).zone
    for row in got["evidence_rows"]:
        row["at"] = _second(row["occurred_at"], zone)
        row["kind_zh"], row["kind_en"] = KIND.get(int(row["kind"] or 0), ("-", "-"))
        row["card_zh"], row["card_en"] = CARD.get(int(row["card_type"] or 0), ("-", "-"))
    holds = [{**h, "placed": _second(h["placed_at"], zone), "released": _second(h["released_at"], zone)}
             for h in got["holds"]]
    return render(request, "risk_merchant.html", user, status=status, got=got, holds=holds,
                  names=risk.rule_names(rules), charts=_charts(got, rules, lang_of(request)),
                  can_act=_is_operator(user), refused=refused, done=DONE.get(done or ""), reason=reason,
                  max_reason=risk.MAX_REASON, risk_hold=RISK_HOLD, show_value=risk_model.show_value,
                  features={k: (zh, en) for k, (zh, en, _) in risk_model.FEATURES.items()})


@router.get("/risk/{merchant_no}")
def risk_merchant(request: Request, user: Staff, merchant_no: MerchantNo,
                  day: Annotated[date | None, Query(alias="date")] = None,
                  done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    return _merchant_page(request, user, merchant_no, day, done=done)


def _act(request: Request, user: Principal, merchant_no: str, reason: str, csrf_token: str, what: str) -> Response:
    check_csrf(user, csrf_token)
    if not _is_operator(user):
        raise forbidden()
    ctx = web(request)
    act = risk.hold if what == "hold" else risk.release
    try:
        act(ctx.engine, merchant_no, by=user.username, reason=reason, now=ctx.now())
    except risk.RiskRefused as exc:
        with ctx.engine.connect() as conn:
            from settleguard.merchants import repository as merchant_repo

            if merchant_repo.id_of(conn, merchant_no) is None:
                raise not_found() from None
        return _merchant_page(request, user, merchant_no, None, status=409, refused=exc,
                              reason=risk.clean_reason(reason))
    return RedirectResponse(f"/risk/{quote(merchant_no)}?done={what}", status_code=303)


@router.post("/risk/{merchant_no}/hold")
def risk_hold(request: Request, user: Staff, merchant_no: MerchantNo,
              reason: Annotated[str, Form(max_length=MAX_FORM_REASON)] = "",
              csrf_token: Annotated[str, Form()] = "") -> Response:
    """Put the merchant's payouts on risk hold (operators, with a reason)."""
    return _act(request, user, merchant_no, reason, csrf_token, "hold")


@router.post("/risk/{merchant_no}/release")
def risk_release(request: Request, user: Staff, merchant_no: MerchantNo,
                 reason: Annotated[str, Form(max_length=MAX_FORM_REASON)] = "",
                 csrf_token: Annotated[str, Form()] = "") -> Response:
    """Release the merchant's risk hold and the payouts it held (operators, with a reason)."""
    return _act(request, user, merchant_no, reason, csrf_token, "release")

