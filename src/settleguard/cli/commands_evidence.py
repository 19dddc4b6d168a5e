"""``settleguard evidence export CASE --out FILE.zip``, ``evidence payout PAYOUT --out FILE.zip`` and
``evidence verify FILE.zip`` (证据包, docs/cases.md; a payout's bundle, docs/payouts.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from settleguard.cli.output import console, err, fail, print_json
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="证据包 Evidence bundles of cases and of payouts.", no_args_is_help=True)


def _written(bundle: Any, out: Path, json_out: bool, subject: dict[str, int], said: str) -> None:
    """Report a written bundle: JSON (path, subject id, files, file_count, redacted, size) or one line; the count
    is the files the manifest lists, as ``evidence verify`` counts them (manifest.json itself not counted)."""
    from settleguard.evidence.model import files_phrase

    size = out.stat().st_size
    if json_out:
        print_json({"path": str(out), **subject, "files": sorted(bundle.files), "file_count": len(bundle.files),
                    "redacted": bundle.redacted, "size": size})
        return
    console.print(f"{said}: {out}，{files_phrase(len(bundle.files))}，{size:,} 字节 bytes")


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="工单 ID case id")],
    out: Annotated[Path, typer.Option("--out", help="输出 zip 文件 output zip file")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导出工单证据包 Export a case's evidence bundle (zip with manifest.json of SHA-256 hashes)."""
    from settleguard.evidence.builder import NoSuchCase, export

    rt: Runtime = ctx.obj
    try:
        bundle = export(rt.engine, case_id, out, rt.now(), tz=rt.settings.timezone)
    except NoSuchCase:
        fail(f"没有工单 {case_id}", f"no case {case_id}", code=1)
    except OSError as exc:
        fail(f"无法写入 {out}", f"cannot write {out}", str(exc))
    _written(bundle, out, json_out, {"case_id": case_id}, "已导出证据包 evidence bundle written")


@app.command("payout")
def payout_cmd(
    ctx: typer.Context,
    payout_id: Annotated[int, typer.Argument(help="出款 ID payout id")],
    out: Annotated[Path, typer.Option("--out", help="输出 zip 文件 output zip file")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导出出款凭证 Export one payout's evidence bundle (zip with manifest.json of SHA-256 hashes)."""
    from settleguard.evidence.payout import NoSuchPayout, export_payout

    rt: Runtime = ctx.obj
    try:
        bundle = export_payout(rt.engine, payout_id, out, rt.now(), tz=rt.settings.timezone)
    except NoSuchPayout:
        fail(f"没有出款 {payout_id}，未写入文件", f"no payout {payout_id}; nothing written", code=1)
    except OSError as exc:
        fail(f"无法写入 {out}", f"cannot write {out}", str(exc))
    _written(bundle, out, json_out, {"payout_id": payout_id}, "已导出出款凭证 payout evidence written")


@app.command("verify")
def verify_cmd(
    file: Annotated[Path, typer.Argument(help="证据包 zip bundle")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """校验证据包：重新计算每个文件的 SHA-256 Verify a bundle: recompute every hash; exit 1 on any difference."""
    from settleguard.evidence.builder import verify
    from settleguard.evidence.model import files_phrase

    if not file.exists():
        fail(f"文件不存在 {file}", f"no such file {file}")
    rep = verify(file)
    if json_out:
        print_json(rep.to_dict())
    elif rep.ok:
        console.print(f"证据包完整 bundle verified: {rep.subject_zh_en}，{files_phrase(rep.checked)}，"
                      "哈希全部一致 every hash matches")
    else:
        err.print("[bold red]证据包校验失败[/] bundle verification FAILED", highlight=False)
        for label, names in (("被修改 changed", rep.changed), ("缺失 missing", rep.missing),
                             ("多余 extra", rep.extra)):
            for n in names:
                err.print(f"  {label}: {n}", markup=False, highlight=False)
        for e in rep.errors:
            err.print(f"  错误 error: {e}", markup=False, highlight=False)
    if not rep.ok:
        raise typer.Exit(1)
