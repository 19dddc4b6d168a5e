"""``settleguard ledger check``."""

from __future__ import annotations

from typing import Annotated

import typer

from settleguard.cli.output import console, err, print_json
from settleguard.cli.runtime import Runtime
from settleguard.ledger import repository as ledger_repo

app = typer.Typer(help="账务 Ledger.", no_args_is_help=True)


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """核对账务 Check that every entry balances and every merchant's money adds up; exit 1 if not."""
    rt: Runtime = ctx.obj
    with rt.engine.connect() as conn:
        problems = ledger_repo.check(conn)
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
    if problems:
        raise typer.Exit(1)
