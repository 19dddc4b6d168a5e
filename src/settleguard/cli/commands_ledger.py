"""``settleguard ledger check``."""

from __future__ import annotations

from typing import Annotated

import typer

from settleguard.cli.output import console, err, print_json
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="账务 Ledger.", no_args_is_help=True)


def carried_note(merchants: int, total_fen: int) -> str:
    """Why a payable balance is negative (docs/settlement.md, carry-over), zh then en; "" when none is."""
    if not merchants:
        return ""
    from settleguard.money import format_yuan

    amount = format_yuan(total_fen)
    return (f"其中 {merchants} 个商户退款多于消费，净额为负（合计 {amount}），结转到下一结算日抵扣 / "
            f"{merchants} merchant(s) refunded more than they sold; their negative net ({amount}) is carried to "
            "their next settlement and netted there")


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """核对账务 Check that every entry balances and every merchant's money adds up; exit 1 if not."""
    from settleguard.ledger import repository as ledger_repo

    rt: Runtime = ctx.obj
    with rt.engine.connect() as conn:
        problems = ledger_repo.check(conn)
        carried = ledger_repo.carried_negative(conn)
    if json_out:
        print_json({"ok": not problems, "problems": [{"accounts": list(p.accounts), "message": p.message}
                                                      for p in problems]})
    elif not problems:
        console.print("[green]账务平衡[/] ledger balanced: every entry balances; per merchant, "
                      "settled net = paid + held + in transit + payable")
    else:
        err.print(f"[bold red]账务不平 ledger check failed[/]: {len(problems)} problem(s)")
        for p in problems[:200]:
            err.print(f"  - [{', '.join(p.accounts)}] {p.message}", markup=False, highlight=False)
        if len(problems) > 200:
            err.print(f"  ... and {len(problems) - 200} more")
    if not json_out and carried[0]:
        console.print(carried_note(*carried), highlight=False)
    if problems:
        raise typer.Exit(1)
