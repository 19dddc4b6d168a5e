"""``settleguard troubleshoot MERCHANT_NO [--symptom S] [--json] [--open-case] [--staff]``: the self-service
troubleshooter (自助排障, troubleshoot/service.py; docs/troubleshoot.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from settleguard import labels
from settleguard.cli.params import Label
from settleguard.cli.runtime import Runtime

_MARK = {"ok": "[green]", "warn": "[yellow]", "fail": "[bold red]"}


def troubleshoot_cmd(
    ctx: typer.Context,
    merchant_no: Annotated[str, typer.Argument(help="商户编号 merchant no.")],
    symptom: Annotated[str | None, typer.Option(
        "--symptom", help="症状 symptom: 钱没到账 money_not_arrived, 结算失败 settlement_failed, 签到失败 "
                          "sign_in_failed, 连不上网 cannot_connect, 凭证校验码不一致 check_code_mismatch, "
                          "余额不足/被扣款 balance_debited (中文、英文或代码 Chinese, English or code; 默认全部检查 "
                          "default: every check)",
        parser=Label(labels.TROUBLESHOOT_SYMPTOM, "症状", "symptom"))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="输出一个 JSON 对象 print one JSON object")] = False,
    open_case: Annotated[bool, typer.Option("--open-case", help="开工单并附上证据 open a case with the evidence")
                         ] = False,
    staff: Annotated[bool, typer.Option("--staff", help="同时显示运营/客服处理步骤 also show the operations steps")
                     ] = False,
    by: Annotated[str, typer.Option("--by", help="操作人（开工单时记录）who opens the case")] = "cli",
) -> None:
    """自助排障 Troubleshoot a merchant's symptom: run the checks that apply on live data, say what to do.

    settleguard troubleshoot 100000000000001 --symptom 钱没到账

    settleguard troubleshoot 100000000000001 --symptom cannot_connect --json --open-case
    """
    from settleguard.cli.output import console, engine_or_fail, fail, print_json
    from settleguard.troubleshoot import service
    from settleguard.troubleshoot.model import Symptom

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    now = rt.now()
    try:
        report = service.run(engine, merchant_no, None if symptom is None else Symptom(symptom), now=now,
                             zone=rt.zone)
        case = service.open_case(engine, report, actor=by.strip()[:64] or "cli", now=now, tz=rt.tz) \
            if open_case else None
    except service.TroubleshootRefused as exc:
        fail(exc.zh, exc.en, code=1 if exc.status == 404 else 2)
    if json_out:
        out = {**report.to_dict("zh", staff), "steps_en": [t.en for t in report.steps()]}
        if case is not None:
            out["case"] = {"id": case[0], "created": case[1]}
        print_json(out)
        return
    sym = labels.zh_en(labels.TROUBLESHOOT_SYMPTOM, report.symptom) if report.symptom else "全部检查 all checks"
    console.print(f"[bold]自助排障 Troubleshooter[/] · {report.merchant_no} {report.merchant_name} · {sym}",
                  markup=True, highlight=False)
    for r in report.results:
        mark = _MARK[r.outcome.value]
        console.print(f"{mark}[{labels.zh_en(labels.TROUBLESHOOT_OUTCOME, r.outcome)}][/] "
                      f"{labels.zh_en(labels.TROUBLESHOOT_CHECK, r.check)}", highlight=False)
        for t in r.found:
            console.print(f"  - {t.zh}\n    {t.en}", markup=False, highlight=False)
    steps = report.steps()
    if steps:
        console.print("[bold]怎么办 What to do[/]")
        for i, t in enumerate(steps, 1):
            console.print(f"  {i}. {t.zh}\n     {t.en}", markup=False, highlight=False)
    if staff and report.ops():
        console.print("[bold]运营/客服处理 For operations and support[/]")
        for t in report.ops():
            console.print(f"  - {t.zh}\n    {t.en}", markup=False, highlight=False)
    if case is not None:
        verb = ("已开工单", "case opened") if case[1] else ("已有处理中的工单", "a case is already being worked")
        console.print(f"{verb[0]} #{case[0]} {verb[1]} #{case[0]}（{len(report.payout_ids)} 笔出款已关联 "
                      f"{len(report.payout_ids)} payout(s) linked）", markup=False, highlight=False)
