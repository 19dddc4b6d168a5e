"""``settleguard card bind|show|status-check``, ``settleguard bins import`` and ``settleguard keys init|status|rotate``.

The card commands are added to the ``card`` sub-app of :mod:`settleguard.cli.commands_card`;
``bins_app`` and ``keys_app`` are registered in cli/main.py. Only masked card numbers are
printed; a card number typed on the command line stays in the shell history, so ``card bind``
asks for it (hidden) when ``--pan`` is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from settleguard.cli.commands_card import app
from settleguard.cli.output import bar, console, engine_or_fail, fail, print_json
from settleguard.cli.runtime import Runtime

bins_app = typer.Typer(help="卡BIN表 Card BIN table: import the operator's official table.", no_args_is_help=True)
keys_app = typer.Typer(help="卡号密钥 Card-number keys: init, status, rotation.", no_args_is_help=True)


@app.command("bind")
def bind_cmd(
    ctx: typer.Context,
    merchant: Annotated[str, typer.Argument(metavar="MERCHANT", help="商户编号 merchant number")],
    name: Annotated[str, typer.Option("--name", help="户名 account holder's name")],
    id_number: Annotated[str, typer.Option("--id", help="持卡人身份证号 holder's resident ID number")],
    phone: Annotated[str, typer.Option("--phone", help="银行预留手机号 phone number reserved at the bank")],
    pan: Annotated[str | None, typer.Option("--pan", help="卡号；省略时隐藏输入 card number; asked (hidden) "
                                                          "when left out")] = None,
    actor: Annotated[str, typer.Option("--actor", help="操作人 who binds (merchant or operator id)")] = "operator",
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """绑定或换绑结算卡 Bind (or re-bind) a merchant's settlement card: checks, then bank verification.

    退出码 exit code: 0 已绑定 bound, 1 被拒绝 refused (reason printed), 2 错误 error.
    """
    from settleguard.cards.service import BindRefused, BindRequest, CardSettings, bind_card

    rt: Runtime = ctx.obj
    if pan is None:
        pan = typer.prompt("卡号 card number", hide_input=True)
    engine = engine_or_fail(rt)
    req = BindRequest(merchant, pan, name, id_number, phone, actor=actor)
    try:
        res = bind_card(engine, rt.verifier, rt.vault, req, now=rt.now(),
                        settings=CardSettings.from_settings(rt.settings))
    except BindRefused as exc:
        if json_out:
            print_json({"bound": False, **exc.as_dict()})
            raise typer.Exit(1) from None
        detail = "\n".join(f"  · {p.zh}\n    {p.en}" for p in exc.problems)
        if exc.bank_code:
            detail = (detail + "\n" if detail else "") + f"  银行应答 bank answer: {exc.bank_code} {exc.bank_message}"
        fail(f"未绑定：{exc.zh}", f"not bound: {exc.en}", detail, code=1)
    if json_out:
        print_json({"bound": True, **res.as_dict()})
        return
    verb_zh, verb_en = ("已换绑", "re-bound") if res.rebound else ("已绑定", "bound")
    console.print(f"[bold green]{verb_zh}[/] {verb_en}: {escape(res.bank_name)} ({escape(res.bank_code)}) "
                  f"{escape(res.masked)} · 账户 account #{res.account_id} · 银行验证 bank answer "
                  f"{escape(res.bank_answer_code)} {escape(res.bank_answer_message)}")
    if res.replaced_account_ids:
        console.print(f"原结算卡保留在历史中 previous card(s) kept in history: "
                      f"{', '.join('#' + str(i) for i in res.replaced_account_ids)}")
    for w in res.warnings:
        console.print(f"[yellow]提示[/] {escape(w.zh)}\n[yellow]Note[/] {escape(w.en)}")


def _status_label(card_status: str | None) -> str:
    from settleguard.cards.verifier import CardStatus

    if card_status is None:
        return "未查询 not inquired"
    try:
        s = CardStatus(card_status)
    except ValueError:  # a payout's failure marked the card (name_mismatch, invalid_account, ...)
        from settleguard.cards.service import status_text

        return " ".join(status_text(card_status))
    return f"{s.zh} {s.en}"


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    merchant: Annotated[str, typer.Argument(metavar="MERCHANT", help="商户编号 merchant number")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    full: Annotated[bool, typer.Option("--full", help="打印每条通知全文 print every notice in full")] = False,
) -> None:
    """查看结算卡 Show a merchant's settlement cards (masked), history, statuses and verifications; notices are
    summarised, one line per subject (--full prints each in full)."""
    from settleguard.cards import repository as card_repo
    from settleguard.merchants import repository as merchant_repo

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    with engine.connect() as conn:
        m = merchant_repo.merchant_by_no(conn, merchant)
        if m is None:
            fail(f"商户 {merchant} 不存在", f"no merchant {merchant}")
            return
        accounts = card_repo.accounts_of(conn, m.id)
        events = card_repo.events_of(conn, m.id)
        attempts = card_repo.verifications_of(conn, m.id)
        notes = card_repo.notifications_of(conn, m.id)
    acc_rows: list[dict[str, Any]] = [
        {"id": a.id, "status": a.status, "card_status": a.card_status, "masked": a.pan_masked,
         "bank_code": a.bank_code, "bank_name": a.bank_name, "card_type": a.card_type, "holder_name": a.holder_name,
         "account_kind": a.account_kind, "bound_at": a.bound_at, "replaced_at": a.replaced_at,
         "verified_at": a.verified_at, "last_status_check_at": a.last_status_check_at, "key_version": a.key_version}
        for a in accounts
    ]
    if json_out:
        print_json({"merchant_no": m.merchant_no, "merchant_id": m.id, "kind": m.kind,
                    "registered_name": m.registered_name, "accounts": acc_rows, "events": events,
                    "verifications": attempts, "notifications": notes})
        return
    from settleguard import labels
    from settleguard.cli.layout import local, zone_note

    tz = rt.settings.timezone
    console.print(f"[bold]商户 merchant[/] {escape(m.merchant_no)} · {escape(m.registered_name)} · "
                  f"{labels.zh_en(labels.CARD_KIND, m.kind)}")
    tbl = Table(title="结算卡 settlement cards", caption=zone_note(tz))
    for col in ("#", "卡号 card", "银行 bank", "户名 holder", "状态 status", "银行状态 bank status", "绑定 bound",
                "最近查询 last inquiry"):
        tbl.add_column(col, overflow="fold", no_wrap=col == "卡号 card")  # wrapped, never cut with "…"
    for a in acc_rows:
        style = {"active": "green", "unusable": "red"}.get(a["status"], "dim")
        tbl.add_row(str(a["id"]), escape(a["masked"]),
                    escape(f"{a['bank_name']} {a['bank_code']} {labels.zh_en(labels.CARD_TYPE, a['card_type'])}"),
                    escape(a["holder_name"]), f"[{style}]{labels.zh_en(labels.ACCOUNT_STATUS, a['status'])}[/]",
                    _status_label(a["card_status"]), local(a["bound_at"], tz), local(a["last_status_check_at"], tz))
    console.print(tbl)
    if events:
        ev = Table(title="卡事件 card events")
        for col in ("时间 at", "事件 event", "账户 account", "操作人 actor"):
            ev.add_column(col, overflow="fold")
        for e in reversed(events):
            ev.add_row(local(e["created_at"], tz), labels.zh_en(labels.CARD_EVENT, e["kind"]), str(e["account_id"] or ""),
                       escape(e["actor"]))
        console.print(ev)
    if attempts:
        vt = Table(title="验证记录 verifications")
        for col in ("时间 at", "类型 kind", "卡号 card", "结果 result", "银行应答 bank answer", "操作人 actor"):
            vt.add_column(col, overflow="fold", no_wrap=col == "卡号 card")
        for v in reversed(attempts):
            vt.add_row(local(v["at"], tz), labels.zh_en(labels.VERIFICATION_KIND, v["kind"]), escape(v["pan_masked"]),
                       labels.zh_en(labels.VERIFICATION_RESULT, v["result"]),
                       escape(f"{v['bank_code'] or ''} {v['bank_message'] or ''}".strip()), escape(v["actor"]))
        console.print(vt)
    if notes and not full:
        from settleguard.cli.layout import notices_summary

        console.print(notices_summary(notes, rt.settings.timezone))
        console.print("每条通知全文 each notice in full: --full")
    for n in notes if full else ():
        state = "已送达 delivered" if n["delivered_at"] else "待发送 pending"
        console.print(f"[bold]通知 notice[/] ({state}) {escape(n['payload'].get('zh', ''))}\n"
                      f"  {escape(n['payload'].get('en', ''))}")


@app.command("status-check")
def status_check_cmd(
    ctx: typer.Context,
    due: Annotated[bool, typer.Option("--due/--all", help="只查询到期的卡（默认）或全部 only cards due (default), "
                                                          "or every active card")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """查询结算卡状态 Inquire bound cards' status at the bank; mark bad ones unusable and notify merchants."""
    from settleguard.cards.service import CardSettings, count_due, status_check

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    settings = CardSettings.from_settings(rt.settings)
    now = rt.now()
    total = count_due(engine, now=now, settings=settings, due_only=due)
    with bar("卡状态查询 card status inquiry", total) as b:
        s = status_check(engine, rt.verifier, rt.vault, now=now, settings=settings, due_only=due,
                         progress=b.advance)
    if json_out:
        print_json({"checked": s.checked, "normal": s.normal, "unusable": s.unusable, "unanswered": s.unanswered,
                    "skipped": s.skipped, "notified": s.notified, "restored": s.restored, "by_status": dict(s.by_status),
                    "interval_days": settings.status_check_days, "due_only": due})
        return
    tbl = Table(title=f"卡状态查询 card status check · 每 {settings.status_check_days} 天 every "
                      f"{settings.status_check_days} days")
    tbl.add_column("结果 result")
    tbl.add_column("卡数 cards", justify="right")
    tbl.add_row("已查询 inquired", f"{s.checked:,}")
    tbl.add_row("正常 normal", f"{s.normal:,}")
    tbl.add_row("标记为不可用 marked unusable", f"{s.unusable:,}")
    tbl.add_row("恢复正常（重新启用）restored to use", f"{s.restored:,}")
    tbl.add_row("银行未应答 no answer", f"{s.unanswered:,}")
    tbl.add_row("已通知商户 merchants notified", f"{s.notified:,}")
    for status, n in sorted(s.by_status.items()):
        if status != "normal":
            tbl.add_row(f"  {_status_label(status)}", f"{n:,}")
    console.print(tbl)


@bins_app.command("import")
def bins_import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV: bin,bank_code,bank_name_zh,bank_name_en,card_type,length")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导入官方卡BIN表 Import the operator's BIN table (replaces the previous one; atomic; idempotent)."""
    from settleguard.cards.bin_import import BinImportRejected, import_bins

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    try:
        res = import_bins(engine, file, now=rt.now())
    except (BinImportRejected, OSError) as exc:
        fail("文件被拒绝，未导入任何数据", "file rejected, nothing was imported", str(exc))
        return
    if json_out:
        print_json({"file": str(res.path), "rows": res.rows, "added": res.added, "removed": res.removed,
                    "unchanged": res.unchanged, "banks": res.banks})
    elif res.unchanged:
        console.print(f"卡BIN表与已导入的相同，未做任何更改 same table as imported ({res.rows:,} rows); nothing changed")
    else:
        console.print(f"已导入卡BIN表 imported [bold]{res.rows:,}[/] 行 rows, {res.banks} 家银行 banks "
                      f"(新增 added {res.added:,}, 删除 removed {res.removed:,})；绑卡时优先于内置表 "
                      "takes precedence over the packaged table when binding")


@keys_app.command("init")
def keys_init_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """新建卡号密钥 Create the card-number key of a database that has none, and record its fingerprint.

    密钥文件：SETTLEGUARD_KEY_FILE，默认在 SQLite 数据库文件旁 key file: SETTLEGUARD_KEY_FILE, by default
    beside the SQLite file. 已有密钥文件或数据库已有密钥时拒绝 refused when the key file exists or the
    database already has a key.
    """
    from settleguard.cards.custody import KeyCustodyError, init_key

    rt: Runtime = ctx.obj
    if rt.settings.key:
        fail("密钥来自环境变量 SETTLEGUARD_KEY，无需新建密钥文件", "the key comes from SETTLEGUARD_KEY; no key file "
             "to create", "取消设置 SETTLEGUARD_KEY 后再运行 unset SETTLEGUARD_KEY first")
    if rt.settings.key_command:
        fail("密钥来自密钥命令 SETTLEGUARD_KEY_COMMAND，无需新建密钥文件", "the key comes from the key command "
             "(SETTLEGUARD_KEY_COMMAND); no key file to create",
             "由密钥存储生成密钥；或取消设置 SETTLEGUARD_KEY_COMMAND 后再运行 create the key in the store, or unset "
             "SETTLEGUARD_KEY_COMMAND first")
    engine = engine_or_fail(rt)
    try:
        key_file = rt.key_file
        vault = init_key(engine, key_file, rt.now())
    except KeyCustodyError as exc:
        fail(f"未新建密钥：{exc.zh}", f"no key created: {exc.en}", exc.detail)
        return
    fp = vault.fingerprints()[vault.current]
    if json_out:
        print_json({"key_file": str(key_file), "version": vault.current, "fingerprint": fp})
        return
    console.print(f"已新建卡号密钥 card key created: {escape(str(key_file))} (0600) · 版本 version {vault.current} · "
                  f"指纹 fingerprint {fp}")
    console.print("请备份该文件：没有它，已加密的卡号无法解密。Back this file up: without it the sealed card "
                  "numbers cannot be opened.")


@keys_app.command("status")
def keys_status_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """密钥状态 Key status: the versions the database recorded (fingerprint, recorded, retired), how many cards and
    webhook secrets each seals, what the configured key holds and where it comes from, whether it is the
    database's, and a rotation in progress. 只读 Read-only: creates no key.

    退出码 exit code: 0 密钥属于该数据库 the key is the database's, 1 不属于或无法读取 it is not, or cannot be read.
    """
    from settleguard import labels
    from settleguard.cards.custody import KeyCustodyError
    from settleguard.cards.key_status import as_dict, key_status
    from settleguard.cli.layout import local, zone_note

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    try:
        source = rt.key_source()
    except KeyCustodyError as exc:
        fail(exc.zh, exc.en, exc.detail, code=1)
    st = key_status(engine, source)
    if json_out:
        print_json(as_dict(st))
        raise typer.Exit(0 if st.matches else 1)
    tz = rt.settings.timezone
    console.print(f"[bold]卡号密钥 card key[/] {escape(st.source)}", soft_wrap=True)  # paths whole
    if st.load_error is not None:
        style = "yellow" if st.matches else "red"
        console.print(f"[{style}]无法读取密钥 the key cannot be read[/]\n{escape(st.load_error)}", soft_wrap=True)
        if st.matches:
            console.print("数据库尚无密钥：首次使用时新建并登记 the database has no key yet: one is created and recorded "
                          "on first use (or settleguard keys init)")
    else:
        console.print(f"持有版本 versions held: {', '.join(map(str, st.held_versions))} · 当前版本 current version "
                      f"(新卡用它加密 seals new cards): {st.current_version}")
        cmp = st.comparison
        if st.matches:
            console.print("[green]密钥属于该数据库 the key is this database's[/]")
            if st.unknown_newer:
                vs = ", ".join(map(str, st.unknown_newer))
                console.print(f"新版本 {vs} 尚未登记：首次使用时登记（密钥轮换写入的新版本）newer version(s) {vs} not yet "
                              "recorded: recorded on first use (a rotation's new key)")
        elif cmp is not None:
            parts = [(f"指纹不符 other fingerprint: {', '.join(map(str, cmp.mismatched))}", cmp.mismatched),
                     (f"缺少仍在使用的版本 missing, still in use: {', '.join(map(str, cmp.missing))}", cmp.missing),
                     (f"未登记 never recorded: {', '.join(map(str, cmp.unknown))}", cmp.unknown)]
            console.print("[red]密钥不属于该数据库 the key is not this database's[/]: "
                          + "; ".join(text for text, vs in parts if vs))
    if st.versions:
        tbl = Table(title="密钥版本 key versions", caption=zone_note(tz))
        for col in ("版本 version", "登记 recorded", "停用 retired", "结算卡 cards", "Webhook 密钥 secrets",
                    "所载密钥 loaded key"):
            tbl.add_column(col, overflow="fold", justify="right" if col in ("结算卡 cards", "Webhook 密钥 secrets")
                           else "left")
        for v in st.versions:
            held = ("[green]持有 held[/]" if v.held_matches else "[red]持有，指纹不符 held, other fingerprint[/]"
                    if v.held_matches is False else "持有，未登记 held, not recorded") if v.held else "未持有 not held"
            tbl.add_row(str(v.version), local(v.created_at, tz) or "未登记 not recorded",
                        local(v.retired_at, tz) or "-", f"{v.cards:,}", f"{v.secrets:,}", held)
        console.print(tbl)
        for v in st.versions:  # whole, one per line: compared with doctor's output and the audit trail's
            console.print(f"  版本 version {v.version} 指纹 fingerprint {v.fingerprint or '未登记 not recorded'}")
    else:
        console.print("数据库尚未登记密钥，也没有已加密的值 the database has recorded no key and holds no sealed value")
    r = st.rotation
    if r is not None:
        console.print(f"[bold yellow]密钥轮换进行中 key rotation in progress[/] #{r.id}: 阶段 phase "
                      f"{labels.zh_en(labels.KEY_ROTATION_PHASE, r.phase)} · 新版本 new version {r.new_version} · "
                      f"已重新加密 re-encrypted {r.done:,} / {r.total:,} · 开始 started {local(r.started_at, tz)} · "
                      f"最近进展 last progress {local(r.updated_at, tz)} · 运行次数 runs {r.runs}")
        console.print("完成它 to finish it: settleguard keys rotate（或 or keys rotate --resume）")
    elif st.last_rotation is not None:
        lr = st.last_rotation
        console.print(f"最近一次轮换 last rotation #{lr.id}: 版本 version {', '.join(map(str, lr.old_versions))} → "
                      f"{lr.new_version} · 重新加密 re-encrypted {lr.done:,} · 完成 finished {local(lr.finished_at, tz)}")
    if not st.matches:
        raise typer.Exit(1)


@keys_app.command("rotate")
def keys_rotate_cmd(
    ctx: typer.Context,
    keep_old: Annotated[bool, typer.Option("--keep-old", help="轮换后保留旧密钥（其他数据库仍用旧密钥时）keep the "
                                                              "old keys after rotation")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="只继续未完成的轮换，没有时不开始新的 only finish the "
                                                          "unfinished rotation; never start a new one")] = False,
    new_key_out: Annotated[Path | None, typer.Option(
        "--new-key-out", help="密钥来自环境变量或密钥命令时：把新密钥文件写到这里，由你放入密钥存储 key from the "
                              "environment or a key command: write the new key file here for you to put in the store")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000, help="每个事务重新加密的值数 values re-encrypted "
                                                                          "per committed transaction")] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """轮换卡号密钥 Rotate the card-number key: re-encrypt every stored card under a new key version, in committed
    batches. 中断后再次运行即完成同一次轮换 Run again after a crash: it finishes the same rotation.

    先停止出款任务 Stop payout runs first: they keep the keys they loaded. 退出码 exit code: 0 完成 done (or the new
    key file written), 1 等待密钥存储返回新版本 waiting for the key store, 2 错误 error.
    """
    from settleguard.cards.custody import KeyCustodyError
    from settleguard.cards.key_rotation import RotationError, RotationPending, rotate_keys

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    try:
        source = rt.key_source()
        with bar("重新加密 re-encrypting cards", None) as b:
            res = rotate_keys(engine, source.key_file, source=source, keep_old=keep_old, resume_only=resume,
                              new_key_out=new_key_out, progress=b.advance, total=lambda n: b.update(0, n),
                              now=rt.now(), batch=batch)
    except RotationPending as exc:
        if json_out:
            print_json({"pending": True, "rotation": exc.rotation_id, "new_version": exc.new_version,
                        "fingerprint": exc.fingerprint, "new_key_out": str(exc.key_out) if exc.key_out else None,
                        "written": exc.written})
        else:
            console.print(escape(str(exc)), soft_wrap=True)  # the file's path whole, to copy
        raise typer.Exit(0 if exc.written else 1) from None
    except (RotationError, KeyCustodyError) as exc:
        from settleguard.cards import key_repository as key_repo

        with engine.connect() as conn:
            unfinished = key_repo.unfinished_rotation(conn)
        if unfinished is None:
            fail("密钥未轮换，未做任何更改", "keys not rotated, nothing changed", str(exc))
        fail(f"密钥轮换 #{unfinished.id} 未完成：已提交的进度保留，排除问题后再次运行 settleguard keys rotate 即继续",
             f"key rotation #{unfinished.id} not finished: the committed progress is kept; fix the problem and run "
             "settleguard keys rotate again to continue", str(exc))
    if json_out:
        print_json({"rotation": res.rotation_id, "new_version": res.new_version, "old_versions": list(res.old_versions),
                    "reencrypted": res.reencrypted, "dropped_versions": list(res.dropped_versions),
                    "resumed": res.resumed, "runs": res.runs, "remove_from_store": list(res.remove_from_store),
                    "key_file": str(source.key_file) if source.key_file else None, "source": source.kind})
        return
    verb = "已完成中断的密钥轮换 interrupted key rotation finished" if res.resumed else "已轮换密钥 key rotated"
    console.print(f"{verb} #{res.rotation_id}: 新版本 new version {res.new_version}; 重新加密 re-encrypted "
                  f"{res.reencrypted:,} 个值 values (卡号与 webhook 密钥 cards and webhook secrets)")
    if res.dropped_versions:
        console.print(f"旧密钥已从密钥文件删除 old key versions removed from the key file: "
                      f"{', '.join(map(str, res.dropped_versions))}")
    elif res.remove_from_store:
        vs = ", ".join(map(str, res.remove_from_store))
        console.print(f"旧版本 {vs} 已停用，可从密钥存储中删除 old versions {vs} are retired and may be removed from "
                      f"the key store ({escape(source.describe())})")
    else:
        console.print("旧密钥仍保留在密钥文件中 old keys kept in the key file")
