"""``settleguard notify prefs set|show``, ``notify deliver`` and ``notify log`` (docs/notifications.md)."""

from __future__ import annotations

import re
import signal
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from settleguard.cli.output import console, fail, print_json
from settleguard.cli.runtime import Runtime
from settleguard.notify.model import CHANNELS, Channel, channels_in

app = typer.Typer(help="商户通知 Merchant notices: preferences, delivery, delivery log.", no_args_is_help=True)
prefs_app = typer.Typer(help="通知偏好 Notification preferences per merchant.", no_args_is_help=True)
app.add_typer(prefs_app, name="prefs")

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _merchant(rt: Runtime, merchant_no: str) -> int:
    from settleguard.notify import repository as repo

    with rt.engine.connect() as conn:
        mid = repo.merchant_id(conn, merchant_no)
    if mid is None:
        fail(f"没有商户 {merchant_no}", f"no merchant {merchant_no}")
    assert mid is not None
    return mid


@prefs_app.command("set")
def prefs_set(
    ctx: typer.Context,
    merchant_no: Annotated[str, typer.Argument(help="商户号 merchant number")],
    webhook: Annotated[str | None, typer.Option("--webhook", help="Webhook URL (http/https)")] = None,
    secret: Annotated[str | None, typer.Option("--secret", help="Webhook 签名密钥 signing secret (stored encrypted)")]
    = None,
    email: Annotated[str | None, typer.Option("--email", help="邮箱 email address")] = None,
    sms: Annotated[str | None, typer.Option("--sms", help="短信手机号 mobile number for SMS")] = None,
    channels: Annotated[str | None, typer.Option("--channels", help="启用的渠道，逗号分隔 channels to use, comma "
                                                 f"separated ({','.join(CHANNELS)}); default: every one configured")]
    = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """设置商户的通知方式 Set how a merchant is notified (options not given stay as they are)."""
    from settleguard.notify import repository as repo

    rt: Runtime = ctx.obj
    if webhook is not None and not re.match(r"^https?://[^\s]+$", webhook):
        fail("Webhook 地址必须以 http:// 或 https:// 开头", "the webhook URL must start with http:// or https://")
    if email is not None and not EMAIL.match(email):
        fail(f"邮箱地址无效：{email}", f"invalid email address: {email}")
    if sms is not None and not re.fullmatch(r"\+?\d{6,15}", sms):
        fail("手机号无效（只能是数字）", "invalid mobile number (digits only)")
    try:
        chosen = channels_in(channels.split(",")) if channels is not None else None
    except ValueError as exc:
        fail("渠道名称无效", "invalid channel name", str(exc))
    mid = _merchant(rt, merchant_no)
    now = rt.now()
    values: dict[str, Any] = {}
    if webhook is not None:
        values["webhook_url"] = webhook
    if secret is not None:
        sealed = rt.vault.seal(secret)
        values.update(webhook_secret_cipher=sealed.cipher, webhook_secret_nonce=sealed.nonce,
                      webhook_key_version=sealed.key_version)
    if email is not None:
        values["email"] = email
    if sms is not None:
        values["sms_phone"] = sms
    with rt.engine.begin() as conn:
        before = repo.preferences(conn, mid)
        if webhook is not None and secret is None and (before is None or not before.has_secret):
            fail("设置 Webhook 时必须提供签名密钥 --secret", "a webhook needs a signing secret: --secret")
        if chosen is None:
            have = {Channel.webhook: values.get("webhook_url") or (before and before.webhook_url),
                    Channel.email: values.get("email") or (before and before.email),
                    Channel.sms: values.get("sms_phone") or (before and before.sms_phone)}
            chosen = [c for c in CHANNELS if have[c]]
        values["channels"] = [str(c) for c in chosen]
        repo.save_preferences(conn, mid, values, now)
        prefs = repo.preferences(conn, mid)
    assert prefs is not None
    missing = [str(c) for c in prefs.channels if c not in {ch for ch, _ in prefs.targets()}]
    if json_out:
        print_json({**prefs.as_dict(), "channels_without_target": missing})
        return
    _show(prefs.as_dict())
    if missing:
        console.print(f"[yellow]注意[/] 这些渠道没有目标地址，不会发送 channels without a target are skipped: "
                      f"{', '.join(missing)}")


def _show(d: dict[str, Any]) -> None:
    tbl = Table(title=f"通知偏好 notification preferences · {d['merchant_no']}")
    tbl.add_column("项目 field")
    tbl.add_column("值 value")
    tbl.add_row("渠道 channels", ", ".join(d["channels"]) or "（无，仅站内）(none: portal only)")
    tbl.add_row("Webhook", d["webhook_url"] or "-")
    tbl.add_row("Webhook 密钥 secret", "已设置 set" if d["webhook_secret"] else "-")
    tbl.add_row("邮箱 email", d["email"] or "-")
    tbl.add_row("短信 SMS", d["sms_phone"] or "-")
    console.print(tbl)


@prefs_app.command("show")
def prefs_show(
    ctx: typer.Context,
    merchant_no: Annotated[str, typer.Argument(help="商户号 merchant number")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """查看商户的通知方式（不显示密钥）Show a merchant's preferences (the secret is never shown)."""
    from settleguard.notify import repository as repo

    rt: Runtime = ctx.obj
    mid = _merchant(rt, merchant_no)
    with rt.engine.connect() as conn:
        prefs = repo.preferences(conn, mid)
    d = prefs.as_dict() if prefs else {"merchant_no": merchant_no, "webhook_url": None, "webhook_secret": None,
                                       "email": None, "sms_phone": None, "channels": [], "lang": "zh"}
    if json_out:
        print_json(d)
    else:
        _show(d)


@app.command("deliver")
def deliver_cmd(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="发送当前到期的通知后退出 deliver what is due now and exit")]
    = False,
    interval: Annotated[float, typer.Option(help="每轮间隔秒数 seconds between passes")] = 5.0,
    json_out: Annotated[bool, typer.Option("--json", help="每轮输出一行 JSON one JSON line per pass")] = False,
) -> None:
    """发送待发的商户通知（Webhook、邮件、短信），失败按退避重试 Deliver queued merchant notices, retrying with
    backoff. Several may run at once (leases; SKIP LOCKED on PostgreSQL)."""
    from settleguard.notify.delivery import Deliverer, DeliverySettings

    rt: Runtime = ctx.obj
    d = Deliverer(rt.engine, rt.vault, DeliverySettings.from_settings(rt.settings))
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    while True:
        s = d.run(rt.now)
        if json_out:
            print_json(s.as_dict())
        elif s.claimed or once:
            console.print(f"通知发送 notices: 成功 delivered {s.delivered} · 失败 failed {s.failed} · "
                          f"放弃 gave up {s.gave_up} · 新排队 queued {s.queued}")
        if once or stop.wait(interval):
            return


@app.command("log")
def log_cmd(
    ctx: typer.Context,
    merchant: Annotated[str | None, typer.Option("--merchant", help="商户号 merchant number")] = None,
    limit: Annotated[int, typer.Option(help="最多显示条数 rows at most")] = 200,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """通知发送记录：每次尝试的时间、状态、HTTP 状态码 The delivery log: every try with its time, status, HTTP code."""
    from settleguard.notify import repository as repo

    rt: Runtime = ctx.obj
    mid = _merchant(rt, merchant) if merchant else None
    with rt.engine.connect() as conn:
        rows = repo.delivery_log(conn, mid, limit)
    if json_out:
        print_json([{**r, "started_at": r["started_at"].isoformat(),
                     "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
                     "next_attempt_at": r["next_attempt_at"].isoformat() if r["next_attempt_at"] else None}
                    for r in rows])
        return
    from settleguard import labels
    from settleguard.cli.layout import local, zone_note

    tbl = Table(title="通知发送记录 delivery log", caption=zone_note(rt.settings.timezone))
    for col in ("时间 time", "商户 merchant", "通知 notice", "渠道 channel", "目标 target", "第几次 try",
                "结果 result", "HTTP", "说明 detail"):
        tbl.add_column(col)
    for r in rows:
        result = "进行中 in progress" if r["ok"] is None else ("成功 ok" if r["ok"] else "失败 failed")
        tbl.add_row(local(r["started_at"], rt.settings.timezone), r["merchant_no"],
                    f"#{r['notification_id']} {labels.zh_en(labels.NOTICE_KIND, r['kind'])}",
                    labels.zh_en(labels.CHANNEL, r["channel"]), r["target"], str(r["attempt_no"]), result,
                    str(r["http_status"] or ""), r["detail"] or "")
    console.print(tbl)
    if not rows:
        console.print("没有发送记录 no delivery tries yet")
