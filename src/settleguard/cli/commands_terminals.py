"""``settleguard terminals analyze-log FILE``: what a terminal's ISO 8583 message log says is wrong (终端报文诊断).

No database unless asked: the log is read, decoded with the CUP POS spec and analysed in memory
(settleguard.terminals); ``--compare`` adds the comparison with the imported transactions and ``--store`` keeps
the findings per terminal (terminals/service.store_log).
Output is grouped by terminal, zh first, times local to the second; ``--json`` prints a JSON array of findings.
Exit codes: 0 analysed (findings or not), 2 the file cannot be read. See docs/terminals.md.

``terminals import | policy import | diagnose | list``: the registry's telemetry and checks (terminals/service.py,
with the database; below the analyze-log command).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from settleguard.cli.output import console, fail, print_json
from settleguard.cli.runtime import Runtime

if TYPE_CHECKING:
    from settleguard.terminals.model import Finding, Message

app = typer.Typer(help="终端 Terminals: POS terminal diagnostics.", no_args_is_help=True)


@app.command("analyze-log")
def analyze_log_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="终端报文日志 terminal message log (docs/terminals.md)")],
    timeout: Annotated[int, typer.Option("--timeout", min=1, max=3600,
                                         help="请求超时秒数 seconds before a request counts as unanswered")] = 60,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    store: Annotated[bool, typer.Option("--store", help="把发现存入终端问题表（需数据库）store the findings per "
                                        "terminal (terminals diagnose, console, troubleshooter; needs the database)")]
    = False,
    compare: Annotated[bool, typer.Option("--compare", help="与已导入交易比对（需数据库）compare the host's answers with "
                                          "the imported transactions of the log's days (needs the database)")]
    = False,
) -> None:
    """分析终端 ISO 8583 报文日志 Analyse a terminal's ISO 8583 message log. Without --store / --compare no
    database is used."""
    from datetime import timedelta

    from settleguard.terminals.analysis import analyze, bad_line_finding
    from settleguard.terminals.log_reader import LogTooLarge, read_log

    rt: Runtime = ctx.obj
    if not file.is_file():
        fail(f"文件不存在 {file}", f"no such file {file}")
    try:
        log = read_log(file)
    except LogTooLarge as exc:
        fail(f"日志文件过大（{exc.size} 字节）", f"log file too large ({exc.size} bytes)")
    except OSError as exc:
        fail(f"无法读取文件 {file}", f"cannot read {file}", exc.strerror or "")
    findings = analyze(log.messages, timedelta(seconds=timeout))
    bad = [bad_line_finding(b) for b in log.bad]
    stored = None
    if store or compare:
        findings, stored = _with_database(rt, file, log.messages, [*findings, *bad], timedelta(seconds=timeout),
                                          store=store, compare=compare)
        findings = [f for f in findings if f not in bad]
    if json_out:
        print_json([f.as_dict() for f in [*findings, *bad]])
        return
    _print(file, rt.tz, log.lines, len(log.messages), log.bad_total, findings, bad)
    if stored is not None:
        _say(f"已存入终端问题 stored：{len(stored.stored_terminals)} 台终端 terminals，新增 opened {stored.opened}，"
             f"更新 refreshed {stored.refreshed}，消除 closed {stored.closed}")
        if stored.unknown:
            _say(f"未登记或不唯一的终端（未存入）unregistered or ambiguous terminals, not stored：{'、'.join(stored.unknown[:50])}"
                 + (f" 等 {len(stored.unknown)} 台 ({len(stored.unknown)} in all)" if len(stored.unknown) > 50 else ""))


def _with_database(rt: Runtime, file: Path, messages: list[Message], findings: list[Finding], timeout: Any, *,
                   store: bool, compare: bool) -> tuple[list[Finding], Any]:
    """--compare: add each terminal's import_mismatch finding (the log's days, analysis.compare_with_imported);
    --store: keep the findings per terminal (terminals.service.store_log). Stored is None without --store."""

    from settleguard.cli.output import engine_or_fail
    from settleguard.terminals.analysis import compare_with_imported
    from settleguard.terminals.service import imported_for_log, store_log

    engine = engine_or_fail(rt)
    if compare:
        by_terminal: dict[str, list[Message]] = {}
        for m in messages:
            by_terminal.setdefault(m.terminal, []).append(m)
        imported = imported_for_log(engine, messages, rt.zone)
        for terminal, msgs in sorted(by_terminal.items()):
            findings = [*findings, *compare_with_imported(terminal, msgs, imported.get(terminal, []),
                                                          timeout=timeout)]
    if not store:
        return findings, None
    from settleguard.hashing import sha256_file

    return findings, store_log(engine, findings, messages, file_name=file.name, digest=sha256_file(file),
                               compared=compare, now=rt.now())


def _print(file: Path, tz: str, lines: int, messages: int, bad_total: int, findings: list[Finding],
           bad: list[Finding]) -> None:
    from settleguard.cli.layout import grouped, local, zone_note
    from settleguard.terminals.model import SEVERITY

    def say(text: str, indent: int = 0) -> None:
        console.print(" " * indent + text, markup=False, highlight=False, soft_wrap=True)

    say(f"终端报文诊断 terminal message log {file.name}：{lines} 行 lines，{messages} 条报文 messages，"
        f"{bad_total} 行无法解析 unreadable")
    if not findings:
        say("未发现问题 no findings")
    for terminal, group in grouped(findings, lambda f: f.terminal):
        say("")
        say(f"终端 terminal {terminal}：{len(group)} 项发现 findings")
        for f in group:
            zh, en = SEVERITY.get(f.severity, (f.severity, f.severity))
            detail = f" — {f.detail_zh} {f.detail_en}" if f.detail_zh else ""
            say(f"[{zh} {en}] {local(f.at, tz)} {f.title_zh} {f.title_en}{detail}", 2)
            say(f"商户 merchant：{f.merchant_zh} {f.merchant_en}", 4)
            say(f"运维 ops：{f.ops_zh} {f.ops_en}", 4)
            say("证据 evidence：", 4)
            for m in f.evidence:
                say(_evidence(m, tz), 6)
            if f.differences:
                from settleguard.terminals.model import describe_difference

                say("差异 differences：", 4)
                for d in f.differences:
                    say(describe_difference(d), 6)
    if bad:
        say("")
        say(f"无法解析的行 unreadable lines（{bad_total}）：")
        for f in bad:
            say(f"{f.detail_zh}  {f.detail_en}", 2)
        if bad_total > len(bad):
            say(f"另有 {bad_total - len(bad)} 行未列出 and {bad_total - len(bad)} more not listed", 2)
    say("")
    say(zone_note(tz))


def _evidence(m: Message, tz: str) -> str:
    from settleguard.cli.layout import local
    from settleguard.money import format_yuan

    parts = [f"第 {m.line} 行 line {m.line}", local(m.at, tz), m.direction, m.mti]
    if m.trace:
        parts.append(f"流水号 trace {m.trace}")
    if m.amount_fen is not None:
        parts.append(f"金额 amount {format_yuan(m.amount_fen)}")
    if m.get("2"):
        parts.append(f"卡号 card {m.get('2')}")
    if m.get("37"):
        parts.append(f"参考号 RRN {m.get('37')}")
    if m.response_code:
        parts.append(f"应答码 code {m.response_code}")
    if m.get("60"):
        parts.append(f"批次 batch {m.batch} 网络码 network {m.network_code}")
    return " ".join(parts)


# --- registry, telemetry and checks (终端登记、遥测与体检; docs/terminals.md) ------------------------------

policy_app = typer.Typer(help="终端策略 Terminal policy: minimum / known-bad versions, host, IP ranges, thresholds.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")
ActorOpt = Annotated[str, typer.Option("--actor", help="操作员 operator")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output")]


def _say(text: str, indent: int = 0) -> None:
    # soft_wrap: a line is never broken at the console's width (COLUMNS=80 split "收单运维 acquirer ops" in two)
    console.print(" " * indent + text, markup=False, highlight=False, soft_wrap=True)


def _refused_file(problems: Sequence[Any], json_out: bool, head_zh: str, head_en: str,
                  more: Callable[[Any], dict[str, Any]], extra: dict[str, Any], *, limit: int | None) -> NoReturn:
    """A refused import file (TMS export, policy): every problem named by its place, zh then en; exit 1."""
    if json_out:
        print_json({"imported": False, "problems": [
            {"where_zh": p.where_zh, "where_en": p.where_en, **more(p), "zh": p.zh, "en": p.en}
            for p in problems[:limit]], **extra})
        raise typer.Exit(1)
    _say(f"{head_zh}：{len(problems)} 个问题 {head_en}: {len(problems)} problem(s)")
    for p in problems[:200]:
        _say(f"{p.where_zh} {p.zh}  ({p.where_en}: {p.en})", 2)
    if len(problems) > 200:
        _say(f"另有 {len(problems) - 200} 个问题未列出 and {len(problems) - 200} more", 2)
    raise typer.Exit(1)


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="TMS 终端导出 terminal export (CSV or JSON, docs/terminals.md)")],
    actor: ActorOpt = "operator",
    json_out: JsonOpt = False,
) -> None:
    """导入 TMS 终端导出（遥测）Import a terminal management system's export (telemetry). All or nothing."""
    from settleguard.cli.output import engine_or_fail
    from settleguard.terminals.registry import ExportRejected
    from settleguard.terminals.service import ImportRefused, import_export

    rt: Runtime = ctx.obj
    if not file.is_file():
        fail(f"文件不存在 {file}", f"no such file {file}")
    engine = engine_or_fail(rt)
    try:
        res = import_export(engine, file, zone=rt.zone, now=rt.now(), actor=actor)
    except ExportRejected as exc:
        fail(f"未导入：{exc.zh}", f"nothing imported: {exc.en}")
    except ImportRefused as exc:
        _refused_file(exc.problems, json_out, "未导入任何终端", "nothing imported",
                      lambda p: {"field": p.field}, {"total": len(exc.problems)}, limit=1000)
    except OSError as exc:
        fail(f"无法读取文件 {file}", f"cannot read {file}", exc.strerror or "")
    if json_out:
        print_json({"imported": True, "rows": res.rows, "changed": res.changed, "unchanged": res.unchanged,
                    "heartbeats": res.heartbeats, "findings_opened": res.opened, "findings_closed": res.closed,
                    "unknown": [{"where_zh": z, "where_en": e, "terminal": w} for z, e, w in res.unknown]})
        return
    _say(f"已导入 imported {file.name}：{res.rows} 行 rows，{res.changed} 台更新 updated，{res.unchanged} 台无变化 "
         f"unchanged，{res.heartbeats} 条心跳 heartbeats；发现问题 findings +{res.opened} / 消除 closed {res.closed}")
    if res.unknown:
        _say(f"未登记的终端（已跳过）unknown terminals, skipped：{len(res.unknown)}")
        for z, e, who in res.unknown[:100]:
            _say(f"{z} {who}  ({e})", 2)


@policy_app.command("import")
def policy_import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="策略文件 policy file (.toml or .csv)")],
    actor: ActorOpt = "operator",
    json_out: JsonOpt = False,
) -> None:
    """导入终端策略（整体替换）Import the terminal policy (replaces the stored one)."""
    from settleguard.cli.output import engine_or_fail
    from settleguard.terminals.policy import PolicyRejected
    from settleguard.terminals.service import import_policy

    rt: Runtime = ctx.obj
    if not file.is_file():
        fail(f"文件不存在 {file}", f"no such file {file}")
    engine = engine_or_fail(rt)
    try:
        changed, policy, opened, closed = import_policy(engine, file, actor=actor, now=rt.now())
    except PolicyRejected as exc:
        _refused_file(exc.problems, json_out, "策略未导入", "policy not imported", lambda p: {}, {}, limit=None)
    except OSError as exc:
        fail(f"无法读取文件 {file}", f"cannot read {file}", exc.strerror or "")
    if json_out:
        print_json({"imported": True, "changed": changed, "models": sorted(m.model for m in policy.models.values()),
                    "thresholds": policy.thresholds.as_dict(), "findings_opened": opened, "findings_closed": closed})
        return
    state = "已更新 updated" if changed else "无变化 unchanged"
    _say(f"终端策略 terminal policy {state}：{len(policy.models)} 个型号 models；"
         f"发现问题 findings +{opened} / 消除 closed {closed}")


@app.command("diagnose")
def diagnose_cmd(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="序列号、终端号或 商户号/终端号 serial, terminal number or MERCHANT/TERMINAL")],
    json_out: JsonOpt = False,
) -> None:
    """终端诊断：健康状况、未解决的问题与时间线 A terminal's health, open findings and timeline."""
    from settleguard.cli.output import engine_or_fail
    from settleguard.terminals.service import TerminalNotFound, diagnose

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    try:
        out = diagnose(engine, key, now=rt.now())
    except TerminalNotFound as exc:
        fail(exc.zh, exc.en)
    if json_out:
        print_json(_iso(out))
        return
    _print_diagnosis(out, rt.tz)


def _iso(obj: Any) -> Any:
    from datetime import datetime

    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _iso(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_iso(v) for v in obj]
    return obj


def _print_diagnosis(out: dict[str, Any], tz: str) -> None:
    from settleguard.cli.layout import local, zone_note
    from settleguard.labels import CATEGORY as CATEGORIES
    from settleguard.labels import (
        COMM_TYPE,
        PRINTER_STATE,
        TERMINAL_EVENT,
        TERMINAL_FINDING,
        TERMINAL_HEALTH,
        TERMINAL_OWNER,
        TERMINAL_STEP,
        TIMELINE_KIND,
        zh_en,
    )
    from settleguard.terminals.model import SEVERITY

    _say(f"终端 terminal {out['terminal_no']}（序列号 serial {out['serial_no'] or '-'}，型号 model {out['model']}）"
         f" 商户 merchant {out['merchant_no']} {out['merchant_name']}")
    _say(f"健康状况 health：{zh_en(TERMINAL_HEALTH, out['health'])}；地址 address：{out['address'] or '-'}")
    tel = out.get("telemetry")
    if tel:
        _say(f"固件 firmware {out['firmware'] or '-'} · 应用 app {tel['app_version'] or '-'} · 系统 OS "
             f"{tel['os_version'] or '-'} · 通讯 {zh_en(COMM_TYPE, tel['comm_type'], '-')}", 2)
        _say(f"主机 host {tel['host'] or '-'}:{tel['port'] or '-'} · IP {tel['ip'] or '-'} / {tel['mask'] or '-'} "
             f"网关 gateway {tel['gateway'] or '-'} · DNS {tel['dns'] or '-'} · ICCID {tel['iccid'] or '-'}", 2)
        _say(f"最后心跳 last heartbeat {local(tel['last_heartbeat_at'], tz) or '-'} · 最后签到 last sign-in "
             f"{local(tel['last_sign_in_at'], tz) or '-'} · 批次 batch {tel['batch_no'] or '-'}", 2)
        _say(f"电量 battery {_v(tel['battery'], '%')} · 信号 signal {_v(tel['signal_dbm'], ' dBm')} · 打印机 printer "
             f"{zh_en(PRINTER_STATE, tel['printer'], '-')} · 防拆 tamper "
             f"{'触发 triggered' if tel['tamper'] else '正常 ok' if tel['tamper'] is not None else '-'}", 2)
    else:
        _say("尚无遥测 no telemetry yet (settleguard terminals import / POST …/heartbeat)", 2)
    findings = out["open_findings"]
    _say("")
    _say(f"未解决的问题 open findings：{len(findings)}")
    for f in findings:
        zh, en = SEVERITY.get(f["severity"], (f["severity"], f["severity"]))
        _say(f"[{zh} {en}] {zh_en(TERMINAL_FINDING, f['code'])}（{f['code']}）— {f['detail_zh']} {f['detail_en']}", 2)
        _say(f"分类 category：{zh_en(CATEGORIES, f['category'])} · 负责 owner：{zh_en(TERMINAL_OWNER, f['owner'])} · "
             f"首次发现 first seen {local(f['first_seen_at'], tz)}", 4)
        if f.get("steps"):
            _say("步骤 steps：" + "；".join(zh_en(TERMINAL_STEP, s) for s in f["steps"]), 4)
        if f.get("merchant_zh"):
            _say(f"商户 merchant：{f['merchant_zh']} {f['merchant_en']}", 4)
            _say(f"运维 ops：{f['ops_zh']} {f['ops_en']}", 4)
    _say("")
    _say(f"时间线 timeline（最新在前 newest first）：{len(out['timeline'])}")
    for item in out["timeline"][:60]:
        words = f"{item['zh']}" + (f" {item['en']}" if item["en"] and item["en"] != item["zh"] else "")
        code = zh_en(TERMINAL_FINDING if item["kind"].startswith("finding") else TERMINAL_EVENT, item["code"])
        detail = " ".join(f"{k}={v}" for k, v in item["detail"].items())
        _say(f"{local(item['at'], tz)} {zh_en(TIMELINE_KIND, item['kind'])} {code} {words} {detail}".rstrip(), 2)
    _say("")
    _say(zone_note(tz))


def _v(value: Any, unit: str) -> str:
    return "-" if value is None else f"{value}{unit}"


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    unhealthy: Annotated[bool, typer.Option("--unhealthy", help="只看有问题的终端 only terminals with open findings")]
    = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="最多显示 at most")] = 200,
    json_out: JsonOpt = False,
) -> None:
    """终端健康列表 Terminals and their health (checks re-run first)."""
    from settleguard.cli.output import engine_or_fail
    from settleguard.terminals.service import list_terminals

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    total, rows = list_terminals(engine, unhealthy=unhealthy, now=rt.now(), limit=limit)
    if json_out:
        print_json([_iso({k: v for k, v in r.items() if k != "id"}) for r in rows])
        return
    from rich.table import Table

    from settleguard.cli.layout import local, zone_note
    from settleguard.labels import TERMINAL_FINDING, TERMINAL_HEALTH, zh_en

    title = "有问题的终端 unhealthy terminals" if unhealthy else "终端 terminals"
    tbl = Table(title=f"{title}（{total}）", title_justify="left")
    for col in ("商户 merchant", "终端 terminal", "序列号 serial", "型号 model", "健康 health", "问题 findings",
                "最后心跳 last heartbeat"):
        tbl.add_column(col)
    for r in rows:
        tbl.add_row(r["merchant_no"], r["terminal_no"], r["serial_no"] or "-", r["model"],
                    zh_en(TERMINAL_HEALTH, r["health"]),
                    "；".join(zh_en(TERMINAL_FINDING, c) for c in r["codes"]) or "-",
                    local(r["last_heartbeat_at"], tz=rt.tz) or "-")
    console.print(tbl)
    if total > len(rows):
        _say(f"仅显示前 {len(rows)} 台 showing the first {len(rows)} of {total}")
    _say(zone_note(rt.tz))
