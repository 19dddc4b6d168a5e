"""``settleguard ledger check``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from settleguard.cli.output import console, err, print_json
from settleguard.cli.runtime import Runtime

if TYPE_CHECKING:
    from settleguard.reconciliation.followup import BalanceProof

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
    """核对账务 Check that every entry balances and every merchant's money adds up, and that the settlement
    account's ledger balance equals the last imported bank closing balance (or which breaks explain the
    difference); exit 1 if not."""
    from settleguard.ledger import repository as ledger_repo
    from settleguard.reconciliation.followup import dry_proof

    rt: Runtime = ctx.obj
    with rt.engine.connect() as conn:
        problems = ledger_repo.check(conn)
        carried = ledger_repo.carried_negative(conn)
        proof = dry_proof(conn)  # 账实核对: the bank's last closing balance against bank_provisions
    bank_bad = proof is not None and not proof.ok
    if json_out:
        body: dict[str, object] = {"ok": not problems and not bank_bad, "problems": [
            {"accounts": list(p.accounts), "message": p.message} for p in problems]}
        if proof is not None:  # only once a statement with balances was imported
            body["bank_balance"] = proof.as_dict()
        print_json(body)
    elif not problems:
        console.print("[green]账务平衡[/] ledger balanced: every entry balances; per merchant, "
                      "settled net = paid + held + in transit + payable")
    else:
        err.print(f"[bold red]账务不平 ledger check failed[/]: {len(problems)} problem(s)")
        for p in problems[:200]:
            err.print(f"  - [{', '.join(p.accounts)}] {p.message}", markup=False, highlight=False)
        if len(problems) > 200:
            err.print(f"  ... and {len(problems) - 200} more")
    if not json_out:
        _print_bank_proof(proof)
    if not json_out and carried[0]:
        console.print(carried_note(*carried), highlight=False)
    if problems or bank_bad:
        raise typer.Exit(1)


def _print_bank_proof(proof: BalanceProof | None) -> None:
    """The bank balance proof, zh then en: proved, explained by breaks (named), or an unexplained difference."""
    from settleguard.labels import RECON_BREAK_TYPE
    from settleguard.money import format_yuan
    from settleguard.reconciliation.followup import describe_proof

    if proof is None:
        console.print("未导入带余额的银行对账单，未做账实核对（不算失败）no bank statement with balances imported: the "
                      "settlement account was not compared with the bank (not a failure)", markup=False,
                      highlight=False)
        return
    out = err if not proof.ok else console
    if proof.ok and proof.drift_fen == 0:
        out.print(f"备付金账上余额与银行期末余额一致 settlement account (bank_provisions) agrees with the bank's closing "
                  f"balance of {proof.as_of.isoformat()}: {format_yuan(proof.bank_closing_fen)}",
                  markup=False, highlight=False)
    elif proof.ok:
        out.print(f"备付金账上余额与银行期末余额之差 {format_yuan(proof.drift_fen)} 全部由下列差错与在途出款解释 the "
                  f"difference between the settlement account and the bank's closing balance is explained by the "
                  f"breaks and payouts in transit below", markup=False, highlight=False)
    else:
        out.print(f"账实不符：未解释差额 {format_yuan(proof.unexplained_fen)} bank and ledger disagree: "
                  f"{format_yuan(proof.unexplained_fen)} unexplained", markup=False, highlight=False)
    if proof.drift_fen or not proof.ok:
        for line in describe_proof(proof, RECON_BREAK_TYPE):
            out.print(line, markup=False, highlight=False)
