"""``settleguard day status``: today's cycle (今日结算周期) — the business day's expected files and their state, what
arrived, what the worker's ``day`` step ran and when, what comes next, and its alerts (daycycle/;
docs/operations.md "日终自动运行 The day runs itself")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import typer

from settleguard.cli.output import console, engine_or_fail, fail, print_json
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="日终自动运行 The day runs itself: today's cycle (files, settle, pay, reconcile).",
                  no_args_is_help=True)


def _hm(iso: str | None) -> str:
    """An ISO time (already in the business zone) as 'MM-DD HH:MM'; '-' for none."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%m-%d %H:%M")


def _hms(iso: str | None) -> str:
    """An event's ISO time (already in the business zone) to the second, 'MM-DD HH:MM:SS'; '-' for none."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%m-%d %H:%M:%S")


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    day: Annotated[date | None, typer.Option("--date", parser=parse_day,
                                             help="营业日 business day YYYY-MM-DD（默认昨天 default yesterday）")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """今日结算周期：应到文件（已到、迟到、缺失）、已执行的步骤、接下来、告警 Today's cycle: expected files
    (arrived, late, missing), what ran and when, what comes next, alerts."""
    from settleguard.cli.layout import zone_note
    from settleguard.daycycle.model import ScheduleError
    from settleguard.daycycle.service import day_status

    rt: Runtime = ctx.obj
    try:
        cfg = rt.day_config()
    except ScheduleError as exc:
        fail(f"日终自动运行设置有误 {exc.key}：{exc.zh}", f"bad day cycle setting {exc.key}: {exc.en}")
    st = day_status(engine_or_fail(rt), cfg, rt.now(), day, enabled=rt.day_cycle_enabled)
    if json_out:
        print_json(st)
        return
    _print(st)
    _say(zone_note(rt.tz))


def _print(st: dict[str, Any]) -> None:
    on = "开启 on" if st["enabled"] else "未开启（设置 inbox_dirs 或 day_cycle=true）off (set inbox_dirs or day_cycle=true)"
    _say(f"今日结算周期 Today's cycle · 营业日 business day {st['business_day']} · 现在 now {_hms(st['now'])} · "
         f"自动运行 {on}")
    settled = "已结算 settled" if st["settled"] else "未结算 not settled"
    paid = ", ".join(f"{p['status_zh']} {p['status_en']} {p['count']:,}" for p in st["payouts"])
    _say(f"  日切 cut-off {_hm(st['cutoff_at'])} · {settled} · 出款日 value date {st['value_date']} · "
         f"出款 payouts {paid or '-'}")
    pay = ", ".join(st["pay_times"]) or "随时（未设置出款时间）whenever due (no pay times)"
    channel = "文件 pain.001 file" if st["pay_channel"] == "file" else "接口 API"
    _say(f"  出款时间 pay times: {pay} · 通道 channel {channel} · 现在可发新出款 new sends open now: "
         f"{'是 yes' if st['send_open'] else '否 no'}")
    _say("应到文件 Expected files:")
    if not st["files"]:
        _say("  （未配置 none configured: day_expected_files）")
    for f in st["files"]:
        got = f" · 到达 received {_hms(f['received_at'])}" if f["received_at"] else ""
        _say(f"  {f['kind_zh']} {f['kind_en']} · 应于 due {_hm(f['due_at'])} · {f['state_zh']} {f['state_en']}{got}")
    _say("到达的文件 What arrived:")
    if not st["arrivals"]:
        _say("  （无 none）")
    for a in st["arrivals"]:
        _say(f"  {_hms(a['received_at'])} {a['name']} · {a['kind_zh']} {a['kind_en']} · {a['status_zh']} {a['status_en']}")
        if a["status"] == "rejected" and a.get("reason_zh"):
            _say(f"    原因 reason: {a['reason_zh']} {a['reason_en'] or ''}".rstrip())
    _say("已执行 What ran:")
    if not st["runs"]:
        _say("  （无 none）")
    for r in st["runs"]:
        when = _hms(r["finished_at"] or r["started_at"])
        err = f" · {r['error']}" if r["error"] else ""
        _say(f"  {when} {r['action_zh']} {r['action_en']} {r['business_day']} · {r['status_zh']} {r['status_en']}"
             f" · {r['what_zh']} / {r['what_en']}{err}")
    _say("接下来 Next:")
    if not st["due"] and not st["next"]:
        _say("  （无 none）")
    for d in st["due"]:
        _say(f"  现在 now: {d['action_zh']} {d['action_en']} {d['business_day']}")
    for w in st["next"]:
        _say(f"  {_hm(w['at'])} {w['zh']} / {w['en']}")
    _say("告警 Alerts:")
    if not st["alerts"]:
        _say("  （无 none）")
    for a in st["alerts"]:
        _say(f"  {_hms(a['created_at'])} {a['kind_zh']} {a['kind_en']}: {a['message']}")
