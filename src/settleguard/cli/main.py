"""settleguard's command line: one Typer app, one sub-app per command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from settleguard import __version__
from settleguard.cli import (
    commands_audit,
    commands_backup,
    commands_card,
    commands_card_ops,
    commands_cases,
    commands_config,
    commands_day,
    commands_demo,
    commands_diagnose,
    commands_doctor,
    commands_evidence,
    commands_fees,
    commands_history,
    commands_inbox,
    commands_ledger,
    commands_merchants,
    commands_notify,
    commands_partitions,
    commands_payouts,
    commands_recon,
    commands_risk,
    commands_serve,
    commands_settle,
    commands_simulate,
    commands_statements,
    commands_terminals,
    commands_troubleshoot,
    commands_users,
    commands_worker,
)
from settleguard.cli.output import fail
from settleguard.cli.params import BilingualGroup
from settleguard.cli.runtime import Runtime

# Each command imports the heavy modules it needs (SQLAlchemy, pyarrow, FastAPI, ...) itself, so that `--help`
# and `card check` start fast; tests/e2e/test_cli_startup.py keeps them out of the start-up path.

app = typer.Typer(
    name="settleguard",
    help="结算卫士：POS 商户结算、结算失败诊断与恢复。\nsettleguard: POS merchant settlement, failure diagnosis and recovery.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=BilingualGroup,  # usage errors of every command in zh then en, exit 2 (cli/params.py)
)
db_app = typer.Typer(help="数据库 Database: migrations.", no_args_is_help=True)
import_app = typer.Typer(help="导入 Import files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
db_app.add_typer(commands_partitions.app, name="partitions")  # 分区与归档 (PostgreSQL)
app.add_typer(import_app, name="import")
app.add_typer(commands_ledger.app, name="ledger")
app.add_typer(commands_payouts.app, name="payouts")
app.add_typer(commands_simulate.app, name="simulate")
app.add_typer(commands_card.app, name="card")
app.add_typer(commands_card_ops.bins_app, name="bins")  # also adds card bind|show|status-check
app.add_typer(commands_card_ops.keys_app, name="keys")
app.add_typer(commands_worker.channels_app, name="channels")
app.add_typer(commands_worker.returns_app, name="returns")
app.command("worker")(commands_worker.worker_cmd)
app.add_typer(commands_audit.app, name="audit")
app.add_typer(commands_backup.app, name="backup")
app.add_typer(commands_notify.app, name="notify")
app.add_typer(commands_cases.app, name="cases")
app.add_typer(commands_evidence.app, name="evidence")
app.add_typer(commands_users.app, name="users")
app.add_typer(commands_merchants.app, name="merchants")
app.add_typer(commands_recon.app, name="recon")
app.add_typer(commands_risk.app, name="risk")
app.add_typer(commands_fees.app, name="fees")
app.add_typer(commands_terminals.app, name="terminals")
app.add_typer(commands_statements.app, name="statements")
app.add_typer(commands_config.app, name="config")  # config show (issue 23 item 2; docs/operations.md 配置)
app.add_typer(commands_day.app, name="day")  # today's cycle (issue 23 item 7; daycycle/)
app.add_typer(commands_inbox.app, name="inbox")  # 收件目录 scan|list (issue 23 item 7; inbox/)
app.command("serve")(commands_serve.serve_cmd)
app.command("troubleshoot")(commands_troubleshoot.troubleshoot_cmd)  # 自助排障 (issue 21)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"settleguard {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option("--db", envvar="SETTLEGUARD_DB",
                                           help="数据库 URL database URL (default sqlite:///settleguard.db)")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="日志输出为 JSON 行（或 SETTLEGUARD_LOG_FORMAT=json）"
                                                              "structured JSON logs on stderr")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="配置文件（或 SETTLEGUARD_CONFIG；默认 ./settleguard"
                                                                 ".toml，若存在）configuration file (docs/operations"
                                                                 ".md)")] = None,
) -> None:
    import os

    from settleguard.bootstrap import load_settings
    from settleguard.config_file import ConfigError
    from settleguard.logs import configure

    if log_json:  # also for the server processes of serve --workers N (commands_serve.app_from_environment)
        os.environ["SETTLEGUARD_LOG_FORMAT"] = "json"
    configure(json=os.environ.get("SETTLEGUARD_LOG_FORMAT", "").lower() == "json")  # masked (settleguard.logs)
    # --db typed on the command line is a flag; SETTLEGUARD_DB is read as the environment (config show tells which)
    source = ctx.get_parameter_source("db")
    flag_db = db if source is not None and source.name == "COMMANDLINE" else None
    try:  # flags > SETTLEGUARD_* > settleguard.toml > defaults; errors name key, file and line (nothing opened)
        loaded = load_settings(config, flags={"db": "--db"}, db=flag_db)
    except ConfigError as exc:
        fail(exc.zh, exc.en, "\n".join(exc.problems))
    ctx.meta["settleguard.config"] = loaded  # settleguard config show; serve --workers N passes the file on
    ctx.obj = Runtime(loaded.settings)  # the composition root (settleguard.bootstrap)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """迁移到最新版本 Migrate the database to the latest revision."""
    from settleguard.db.engine import DatabaseError, create, upgrade

    rt: Runtime = ctx.obj
    try:
        before, after = upgrade(create(rt.settings.db))
    except DatabaseError as exc:
        fail("无法迁移数据库", "cannot migrate the database", str(exc))
    if before == after:
        typer.echo(f"数据库已是最新 database already at revision {after}")
    else:
        typer.echo(f"数据库已迁移 database migrated: {before or '(empty)'} -> {after}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """显示当前版本 Show the current and latest revision."""
    from settleguard.db.engine import create, current_revision, head_revision

    rt: Runtime = ctx.obj
    engine = create(rt.settings.db)
    typer.echo(f"current={current_revision(engine)} head={head_revision(engine)}")


@import_app.command("transactions")
def import_transactions_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV 文件 CSV file (docs/import.md)")],
    encoding: Annotated[str | None, typer.Option(help="utf-8 或 gbk；默认自动识别 (default: detect)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导入 POS 交易明细 Import a POS transaction CSV (atomic, idempotent)."""
    from datetime import timedelta

    from settleguard.cli.output import bar, console, print_json
    from settleguard.db.engine import DatabaseError
    from settleguard.imports.card_token import token_key as card_token_key
    from settleguard.imports.transactions import ImportRejected, import_transactions

    rt: Runtime = ctx.obj
    try:
        engine = rt.engine
        with bar(f"导入 importing {file.name}", None) as b:
            res = import_transactions(engine, file, cutoffs=rt.cutoffs, now=rt.now(), encoding=encoding,
                                      progress=lambda _stage, done, total: b.update(done, total),
                                      future_tolerance=timedelta(minutes=rt.settings.future_tolerance_minutes),
                                      card_key=lambda: card_token_key(rt.vault))  # only for a 卡号 column
    except ImportRejected as exc:
        fail("文件被拒绝，未导入任何数据", "file rejected, nothing was imported", str(exc))
    except DatabaseError as exc:
        fail("无法打开数据库", "cannot open the database", str(exc))
    if json_out:
        print_json({"file": str(res.path), "sha256": res.sha256, "encoding": res.encoding, "rows": res.rows,
                    "import_id": res.import_id, "already_imported": res.already_imported,
                    "cycle_dates": [d.isoformat() for d in res.cycle_dates]})
    elif res.already_imported:
        console.print(f"该文件已导入过，未做任何更改 already imported (import #{res.import_id}, {res.rows} rows); "
                      "nothing changed")
    else:
        days = ", ".join(d.isoformat() for d in res.cycle_dates)
        console.print(f"已导入 imported [bold]{res.rows:,}[/] 笔交易 transactions ({res.encoding}); "
                      f"业务日期 business days: {days}")


app.command("settle")(commands_settle.settle_cmd)
app.command("demo")(commands_demo.demo_cmd)
app.command("diagnose")(commands_diagnose.diagnose_cmd)
app.command("doctor")(commands_doctor.doctor_cmd)  # health checks (issue 23 item 4)
app.command("history")(commands_history.history_cmd)  # issue 22 item 5 (docs/history.md)
app.add_typer(commands_history.feedback_app, name="feedback")  # issue 22 item 6


def main() -> None:
    try:
        app()
    except Exception as exc:
        from settleguard.cards.custody import KeyCustodyError  # only now: it loads SQLAlchemy

        if not isinstance(exc, KeyCustodyError):
            raise
        # the card key is not this database's: refused before any change
        from rich.markup import escape

        from settleguard.cli.output import err

        err.print(f"[bold red]错误[/] {escape(exc.zh)}\n[bold red]Error[/] {escape(exc.en)}", highlight=False)
        if exc.detail:
            err.print(exc.detail, markup=False, highlight=False)
        raise SystemExit(2) from None
