"""``settleguard risk scan|features|list|show|hold|release``: anomaly analysis (异常交易分析) of merchants'
transactions, scores with explanations, cases and an operator's risk hold on payouts. See docs/risk.md.

Exit codes: 0 done, 2 refused or bad arguments (nothing changed; zh then en).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from settleguard.cli.layout import local
from settleguard.cli.output import console, engine_or_fail, fail, print_json
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="风险 Risk: merchant anomaly analysis (异常交易分析, 套现 signals), scores with explanations, "
                       "cases and risk holds on payouts.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output")]
MerchantArg = Annotated[str, typer.Argument(metavar="MERCHANT", help="商户编号 merchant number")]
ByOpt = Annotated[str, typer.Option("--by", help="运营人员用户名（须为运营角色）operator's user name (operator role)")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="原因（记入审计）reason (audited)")]


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _iso(obj: Any) -> Any:
    """Dates and times as ISO 8601 (times with their UTC offset) for JSON."""
    if isinstance(obj, date):  # datetime too
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _iso(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_iso(v) for v in obj]
    return obj


def _rules(rt: Runtime) -> Any:
    from settleguard.risk.model import RulesError

    try:
        return rt.risk_rules()
    except RulesError as exc:
        fail(f"风险规则文件有误，未做任何更改：{exc.source} {exc.where}：{exc.zh}",
             f"bad risk rule file, nothing changed: {exc.source} {exc.where}: {exc.en}")


@app.command("scan")
def scan_cmd(
    ctx: typer.Context,
    day: Annotated[date, typer.Option("--date", parser=parse_day, help="交易日 business day YYYY-MM-DD")],
    no_cases: Annotated[bool, typer.Option("--no-cases", help="不开工单 do not open cases")] = False,
    json_out: JsonOpt = False,
) -> None:
    """扫描一天：计算商户特征、评分、解释、留存证据、高分开工单（可重复运行）Scan a day: features, scores,
    explanations, evidence, cases for high scores (idempotent)."""
    from settleguard.risk.service import scan

    rt: Runtime = ctx.obj
    rules = _rules(rt)
    res = scan(engine_or_fail(rt), day, rules, tz=rt.tz, now=rt.now(), open_cases=not no_cases)
    if json_out:
        print_json({"date": day.isoformat(), "merchants": res.merchants, "transactions": res.txn_rows,
                    "backfilled": [d.isoformat() for d in res.backfilled], "cases_opened": res.cases_opened,
                    "seconds": {k: round(v, 3) for k, v in res.seconds.items()},
                    "flagged": [{"merchant_no": f.merchant_no, "score": f.score, "rules": f.rules,
                                 "explanation": {"zh": f.explanation_zh, "en": f.explanation_en},
                                 "case_id": f.case_id} for f in res.flagged]})
        return
    _say(f"风险扫描 risk scan {day.isoformat()}：交易 transactions {res.txn_rows:,}，评估商户 merchants "
         f"{res.merchants:,}，预警 flagged {len(res.flagged):,}（≥ {rules.flag_score} 分 points），新开工单 cases "
         f"opened {len(res.cases_opened):,}（≥ {rules.case_score} 分），用时 {res.seconds.get('total', 0):.1f} s")
    if res.backfilled:
        _say(f"  补算基线日 baseline days computed: {len(res.backfilled)}")
    for f in res.flagged[:20]:
        _say(f"  {f.merchant_no}  {f.score} 分 points  [{', '.join(f.rules)}]"
             + (f"  工单 case {f.case_id}" if f.case_id else ""))
        _say(f"    {f.explanation_zh}")
        _say(f"    {f.explanation_en}")
    if len(res.flagged) > 20:
        _say(f"  … 另有 {len(res.flagged) - 20} 个 more: settleguard risk list")


@app.command("features")
def features_cmd(
    ctx: typer.Context,
    day: Annotated[date, typer.Option("--date", parser=parse_day, help="交易日 business day YYYY-MM-DD")],
    json_out: JsonOpt = False,
) -> None:
    """只重算一天的商户特征（如补导入了迟到的文件）Recompute one day's merchant features only."""
    from settleguard.risk.service import compute_day

    rt: Runtime = ctx.obj
    res = compute_day(engine_or_fail(rt), day, _rules(rt), tz=rt.tz, now=rt.now())
    if json_out:
        print_json({"date": day.isoformat(), "merchants": res.merchants, "transactions": res.txn_rows,
                    "seconds": round(res.seconds, 3)})
        return
    _say(f"已计算 computed {day.isoformat()}：商户 merchants {res.merchants:,}，交易 transactions {res.txn_rows:,}，"
         f"用时 {res.seconds:.1f} s")


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    day: Annotated[date | None, typer.Option("--date", parser=parse_day,
                                             help="交易日（默认最近扫描的一天）day (default: the latest scanned)")] = None,
    min_score: Annotated[int, typer.Option("--min-score", min=0, max=100, help="最低分 minimum score")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="最多条数 at most")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """风险队列：预警商户，高分在前 The risk queue: flagged merchants, highest score first."""
    from settleguard.risk.service import listing

    rt: Runtime = ctx.obj
    with engine_or_fail(rt).connect() as conn:
        shown, rows = listing(conn, day, min_score, limit)
    if json_out:
        print_json([{k: v for k, v in r.items() if k != "details"} | {"features": r["details"].get("features", {})}
                    for r in rows])
        return
    if shown is None:
        _say("尚未扫描 nothing scanned yet: settleguard risk scan --date YYYY-MM-DD")
        return
    _say(f"风险预警 risk alerts {shown.isoformat()}：{len(rows)} 个商户 merchants")
    for r in rows:
        _say(f"  {r['merchant_no']}  {r['merchant_name']}  MCC {r['mcc']}  {r['score']} 分 points  "
             f"[{', '.join(r['rules'])}]" + (f"  工单 case {r['case_id']}" if r["case_id"] else ""))
        _say(f"    {r['explanation']['zh']}")
        _say(f"    {r['explanation']['en']}")


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    merchant: MerchantArg,
    day: Annotated[date | None, typer.Option("--date", parser=parse_day, help="交易日 business day")] = None,
    json_out: JsonOpt = False,
) -> None:
    """一个商户的风险：预警、规则、证据交易、近 30 天特征、风控暂停 A merchant's alerts, evidence, features, holds."""
    from settleguard.money import format_yuan
    from settleguard.risk.service import RiskRefused, show

    rt: Runtime = ctx.obj
    try:
        with engine_or_fail(rt).connect() as conn:
            got = show(conn, merchant, day)
    except RiskRefused as exc:
        fail(exc.zh, exc.en)
    if json_out:
        print_json(_iso(got))
        return
    hold = got["hold"]
    _say(f"商户 merchant {merchant}：" + (f"风控暂停出款中 payouts on risk hold（{hold['placed_by']}，"
                                        f"{local(hold['placed_at'], rt.tz)}：{hold['reason']}）" if hold else
                                        "无风控暂停 no risk hold"))
    c = got["chosen"]
    if c is None:
        _say("  无预警 no alerts")
    else:
        _say(f"  {c['cycle_date']}  {c['score']} 分 points  [{', '.join(c['rules'])}]"
             + (f"  工单 case {c['case_id']}" if c["case_id"] else ""))
        _say(f"    {c['explanation']['zh']}")
        _say(f"    {c['explanation']['en']}")
        for rule, refs in got["evidence"].items():
            _say(f"    证据 evidence {rule}（{len(refs)} 笔）：{', '.join(refs[:20])}{' …' if len(refs) > 20 else ''}")
    others = [f for f in got["flagged"] if c is None or f["cycle_date"] != c["cycle_date"]]
    for f in others[:10]:
        _say(f"  更早 earlier {f['cycle_date']}  {f['score']} 分 points  [{', '.join(f['rules'])}]")
    if got["features"]:
        _say("  日期 day         笔数 sales   金额 amount       整数 round  凌晨 night  信用卡 credit  同卡 card")
        for r in got["features"][-30:]:
            n = max(int(r["sale_count"]), 1)
            _say(f"  {r['cycle_date']}  {r['sale_count']:>9,}  {format_yuan(int(r['sale_fen'])):>15}  "
                 f"{r['round_count'] / n:>9.0%}  {r['night_count'] / n:>9.0%}  {r['credit_count'] / n:>11.0%}  "
                 f"{r['card_max'] if r['card_max'] is not None else '-':>6}")


@app.command("hold")
def hold_cmd(ctx: typer.Context, merchant: MerchantArg, by: ByOpt, reason: ReasonOpt, json_out: JsonOpt = False) -> None:
    """风控暂停出款（仅运营人员）：商户此后到期的出款挂账为风控或合规拦截 Put a merchant's payouts on risk hold
    (operators only): its due payouts are held as risk_or_compliance_block."""
    from settleguard.risk.service import RiskRefused, hold

    rt: Runtime = ctx.obj
    try:
        res = hold(engine_or_fail(rt), merchant, by=by, reason=reason, now=rt.now())
    except RiskRefused as exc:
        fail(exc.zh, exc.en)
    if json_out:
        print_json({"merchant_no": res.merchant_no, "hold_id": res.hold_id, "held": True})
        return
    _say(f"商户 {res.merchant_no} 已风控暂停出款 merchant {res.merchant_no} is on risk hold (hold {res.hold_id}): "
         "到期出款将挂账，仅运营人员可解除 due payouts are held until an operator releases it")


@app.command("release")
def release_cmd(ctx: typer.Context, merchant: MerchantArg, by: ByOpt, reason: ReasonOpt,
                json_out: JsonOpt = False) -> None:
    """解除风控暂停（仅运营人员）并放行被暂停的出款 Release a risk hold (operators only) and its held payouts."""
    from settleguard.money import format_yuan
    from settleguard.risk.service import RiskRefused, release

    rt: Runtime = ctx.obj
    try:
        res = release(engine_or_fail(rt), merchant, by=by, reason=reason, now=rt.now())
    except RiskRefused as exc:
        fail(exc.zh, exc.en)
    if json_out:
        print_json({"merchant_no": res.merchant_no, "hold_id": res.hold_id, "held": False,
                    "released_payouts": list(res.released_payouts), "released_fen": res.released_fen})
        return
    _say(f"商户 {res.merchant_no} 的风控暂停已解除 risk hold released; 放行出款 payouts released "
         f"{len(res.released_payouts)}（{format_yuan(res.released_fen)}）")
