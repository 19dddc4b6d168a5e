"""``settleguard terminals analyze-log FILE``: what a terminal's ISO 8583 message log says is wrong (终端报文诊断).

No database: the log is read, decoded with the CUP POS spec and analysed in memory (settleguard.terminals).
Output is grouped by terminal, zh first, times local to the second; ``--json`` prints a JSON array of findings.
Exit codes: 0 analysed (findings or not), 2 the file cannot be read. See docs/terminals.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
) -> None:
    """分析终端 ISO 8583 报文日志 Analyse a terminal's ISO 8583 message log."""
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
    if json_out:
        print_json([f.as_dict() for f in [*findings, *bad]])
        return
    _print(file, rt.tz, log.lines, len(log.messages), log.bad_total, findings, bad)


def _print(file: Path, tz: str, lines: int, messages: int, bad_total: int, findings: list[Finding],
           bad: list[Finding]) -> None:
    from settleguard.cli.layout import grouped, local, zone_note
    from settleguard.terminals.model import SEVERITY

    def say(text: str, indent: int = 0) -> None:
        console.print(" " * indent + text, markup=False, highlight=False)

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
