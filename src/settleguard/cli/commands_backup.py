"""``settleguard backup create|verify|restore``: backups that restore (备份与恢复; docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from settleguard.cli.output import console, engine_or_fail, err, fail, print_json
from settleguard.cli.runtime import Runtime

if TYPE_CHECKING:
    from settleguard.ops.backup import Report

app = typer.Typer(help="备份与恢复 Backups: create a consistent snapshot, verify it by restoring, restore it.",
                  no_args_is_help=True)


def _refused(exc: Exception) -> NoReturn:
    fail(getattr(exc, "zh", ""), getattr(exc, "en", str(exc)), getattr(exc, "detail", ""), code=2)


def _print_report(rt: Runtime, report: Report, title: str, json_out: bool) -> None:
    from rich.markup import escape

    from settleguard.cli.layout import local, zone_note
    from settleguard.ops.backup import summary_json

    if json_out:
        print_json(summary_json(report))
    else:
        m = report.manifest
        console.print(f"[bold]{escape(title)}[/] {escape(str(report.path))}")
        if m is not None:
            console.print(f"  创建于 created {local(m.created_at, rt.tz)} · 业务日 business day {m.business_day} · "
                          f"{m.dialect} · 版本 revision {m.schema_revision} · 审计链头 audit head {m.audit_head_id} · "
                          f"密钥指纹 key fingerprint {m.key_fingerprint or '-'}", markup=False, highlight=False)
        for c in report.checks:
            mark = "[green]通过 ok[/]" if c.ok else "[bold red]失败 FAILED[/]"
            console.print(f"  {mark}  {escape(c.zh)} {escape(c.en)}"
                          + (f"  [dim]{escape(c.detail)}[/]" if c.detail else ""), highlight=False)
        if m is not None:
            console.print(f"  {zone_note(rt.tz)}", markup=False, highlight=False)
    if not report.ok:
        for c in report.checks:
            if not c.ok:
                err.print(f"[bold red]检查未通过[/] {escape(c.zh)}\n[bold red]Check failed[/] {escape(c.en)}",
                          highlight=False)
        raise typer.Exit(1)


@app.command("create")
def create_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="备份目录 directory the archive is written to")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """在系统运行中做一致的快照（SQLite 在线备份 / PostgreSQL pg_dump -Fc），连同清单写成一个文件。
    A consistent snapshot while the worker and server run, written atomically as one archive with its manifest."""
    from settleguard.cli.layout import local, zone_note
    from settleguard.ops.backup import BackupFailed, BackupRefused, create_backup

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    now = rt.now()
    try:
        made = create_backup(engine, out, now=now, business_day=now.astimezone(rt.zone).date(), actor="cli")
    except BackupRefused as exc:
        _refused(exc)
    except BackupFailed as exc:
        fail(exc.zh, exc.en, exc.detail, code=1)
    m = made.manifest
    if json_out:
        print_json({"file": str(made.path), "sha256": made.archive_sha256, "manifest": m.to_dict()})
        return
    console.print(f"备份已写入 backup written: {made.path}", markup=False, highlight=False)
    console.print(f"  {m.dialect} · 创建于 created {local(m.created_at, rt.tz)} · 版本 revision {m.schema_revision} · "
                  f"{sum(m.row_counts.values()):,} 行 rows in {len(m.row_counts)} 张表 tables · "
                  f"审计链头 audit head {m.audit_head_id} · 密钥指纹 key fingerprint {m.key_fingerprint or '-'} "
                  f"（密钥不在备份中 the key is not in the backup）", markup=False, highlight=False)
    console.print(f"  SHA-256 {made.archive_sha256} · {zone_note(rt.tz)}", markup=False, highlight=False)


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="备份文件 backup archive (.tar)")],
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="临时文件目录（需容纳转储） where the dump is "
                                                   "unpacked (default: the system's temporary directory)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """校验摘要，恢复到临时数据库，运行账务检查、审计校验、完整性检查并核对清单。退出码 0 通过，1 检查未通过，2 拒绝。
    Check the digests, restore into a scratch database (PostgreSQL: on the --db server), run ledger check, audit
    verify and an integrity check, and compare with the manifest. Exit 0 ok, 1 a check failed, 2 refused."""
    from settleguard.ops.backup import BackupRefused, verify_backup

    rt: Runtime = ctx.obj
    try:
        report = verify_backup(file, server_url=rt.settings.db, work_dir=work_dir)
    except BackupRefused as exc:
        _refused(exc)
    _print_report(rt, report, "校验备份 verify backup", json_out)


@app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="备份文件 backup archive (.tar)")],
    to: Annotated[str, typer.Option("--to", help="目标数据库 URL target database URL")],
    force: Annotated[bool, typer.Option("--force", help="目标不是空库时仍然覆盖 replace a non-empty target")] = False,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="临时文件目录（需容纳转储） where the dump is "
                                                   "unpacked (default: the system's temporary directory)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """恢复到目标数据库（非空库需 --force），先校验摘要，恢复后运行同样的检查；不碰源数据库。
    Restore into the target (refused when it is not empty, unless --force); digests first, the same checks after.
    Exit 0 ok, 1 a check failed, 2 refused (nothing changed)."""
    from settleguard.ops.backup import BackupRefused, restore_backup

    rt: Runtime = ctx.obj
    try:
        report = restore_backup(file, to, force=force, now=rt.now(), work_dir=work_dir)
    except BackupRefused as exc:
        _refused(exc)
    _print_report(rt, report, f"恢复备份 restore backup -> {report.target}", json_out)
