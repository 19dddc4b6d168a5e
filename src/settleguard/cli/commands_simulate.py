"""``settleguard simulate bank``: a simulated bank's HTTP payout API (模拟银行代付接口)."""

from __future__ import annotations

from typing import Annotated

import typer

from settleguard.cli.output import console, fail

app = typer.Typer(help="模拟器 Simulators.", no_args_is_help=True)


@app.command("bank")
def bank_cmd(
    port: Annotated[int, typer.Option(help="监听端口 port to listen on", min=1, max=65535)] = 8600,
    host: Annotated[str, typer.Option(help="监听地址 address to listen on")] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="随机种子 seed: same seed, same faults")] = 0,
    fail_rate: Annotated[float | None, typer.Option(
        "--fail-rate", help="每次提交的故障概率（系统忙/日切/超时）per-attempt fault probability "
                            "(busy/cut-over/timeout; default 0.02)", min=0.0, max=1.0)] = None,
    card_fail_rate: Annotated[float | None, typer.Option(
        "--card-fail-rate", help="坏卡比例 share of cards failing (name mismatch/closed/frozen/invalid; "
                                 "default 0.013)", min=0.0, max=1.0)] = None,
    timeout_executed_rate: Annotated[float, typer.Option(
        help="超时后已扣款的比例 share of timeouts the bank executed anyway", min=0.0, max=1.0)] = 0.8,
    latency_ms: Annotated[float, typer.Option(help="应答延迟上限（毫秒） max answer delay in ms", min=0.0)] = 50.0,
    timeout_seconds: Annotated[float, typer.Option(
        help="“超时”时拖延应答的秒数 how long a timed-out answer is held back", min=0.0)] = 35.0,
) -> None:
    """启动模拟银行 Serve a simulated bank's HTTP JSON payout API (see docs/formats.md)."""
    from settleguard.sim.bank_server import create_app, make_bank, serve

    try:
        bank = make_bank(seed, fail_rate=fail_rate, card_fail_rate=card_fail_rate,
                         timeout_executed_rate=timeout_executed_rate)
    except ValueError as exc:
        fail("参数错误", "bad option", str(exc))
    app_ = create_app(bank, latency_ms=latency_ms, timeout_seconds=timeout_seconds, seed=seed)
    console.print(f"模拟银行已启动 simulated bank listening on http://{host}:{port} "
                  f"(seed={seed}); Ctrl-C 停止 to stop", highlight=False)
    serve(app_, host, port)
