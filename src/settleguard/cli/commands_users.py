"""``settleguard users add|token|list|disable``: people and machine clients of the API (docs/api.md)."""

from __future__ import annotations

import shlex
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from settleguard import labels
from settleguard.access.model import Role
from settleguard.cli.output import console, fail, print_json
from settleguard.cli.params import Label
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="用户与 API 令牌 Users and API tokens.", no_args_is_help=True)
ActorOpt = Annotated[str, typer.Option("--actor", help="操作员（写入审计）operator, for the audit trail")]


def _password(from_stdin: bool, command: list[str]) -> str:
    """The password from one line of stdin (--password-stdin), or prompted twice on a terminal. Without a
    terminal a prompt cannot hide what is typed: say how to pass it instead (``command`` is the example)."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("标准输入中没有密码", "no password on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        example = " ".join(shlex.quote(a) for a in ["settleguard", *command, "--password-stdin"])
        fail("没有终端，无法提示输入密码；请加 --password-stdin 从标准输入传入密码（一行），未做任何更改",
             "no terminal to prompt for the password; pass it on standard input (one line) with --password-stdin; "
             "nothing was changed",
             f"例如 e.g.: printf '%s\\n' \"$PW\" | {example}")
    first: str = typer.prompt("密码 Password", hide_input=True)
    again: str = typer.prompt("再输一次 Repeat", hide_input=True)
    if first != again:
        fail("两次输入的密码不一致", "the two passwords differ")
    return first


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="用户名 username")],
    role: Annotated[str, typer.Option("--role", help="角色 role: 运营 operator | 客服 support | 审计 auditor | "
                                                     "商户 merchant", parser=Label(labels.ROLE, "角色", "role"))],
    merchant_no: Annotated[str | None, typer.Option("--merchant-no", help="商户编号（商户用户必填）merchant number "
                                                                          "(merchant users)")] = None,
    name: Annotated[str, typer.Option("--name", help="显示名称 display name")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码（一行）read the "
                                                                          "password from stdin (one line)")] = False,
    actor: ActorOpt = "cli",
) -> None:
    """添加用户（密码从标准输入或两次提示输入，绝不作为参数）Add a user; the password comes from stdin or
    is prompted twice, never as an argument."""
    from settleguard.access.service import UserError, add_user

    rt: Runtime = ctx.obj
    command = ["users", "add", username, "--role", role] + (["--merchant-no", merchant_no] if merchant_no else [])
    password = _password(password_stdin, command)
    try:
        user = add_user(rt.engine, username=username, password=password, role=Role(role), merchant_no=merchant_no,
                        display_name=name, now=rt.now(), actor=actor)
    except UserError as exc:
        fail(exc.zh, exc.en)
        return
    scope = f" · 商户 merchant {user.merchant_no}" if user.merchant_no else ""
    console.print(f"已添加用户 user added: [bold]{escape(user.username)}[/] · {labels.zh_en(labels.ROLE, role)}{escape(scope)}")


@app.command("token")
def token_cmd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="用户名 username")],
    name: Annotated[str, typer.Option("--name", help="令牌名称，例如用途 token name, e.g. what it is for")],
    actor: ActorOpt = "cli",
) -> None:
    """创建 API 令牌（只显示这一次）Create an API token; it is printed once and stored only hashed."""
    from settleguard.access.service import UserError, issue_token

    rt: Runtime = ctx.obj
    try:
        issued = issue_token(rt.engine, username=username, name=name, now=rt.now(), actor=actor)
    except UserError as exc:
        fail(exc.zh, exc.en)
        return
    typer.echo(issued.token)
    typer.echo(f"令牌只显示这一次，请妥善保存 the token is shown only now; keep it safe "
               f"(prefix {issued.prefix}, id {issued.token_id})", err=True)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """列出用户 List users with their role, merchant and live tokens."""
    from settleguard.access.service import list_users

    rt: Runtime = ctx.obj
    rows = list_users(rt.engine)
    if json_out:
        print_json([{"id": u.id, "username": u.username, "role": u.role, "merchant_id": u.merchant_id,
                     "merchant_no": u.merchant_no, "display_name": u.display_name, "disabled": u.disabled,
                     "created_at": u.created_at, "tokens": n} for u, n in rows])
        return
    tbl = Table(title="用户 users")
    for col in ("ID", "用户名 username", "名称 name", "角色 role", "商户 merchant", "状态 state", "令牌 tokens"):
        tbl.add_column(col)
    for u, n in rows:
        state = "[red]已停用 disabled[/]" if u.disabled else "[green]启用 enabled[/]"
        tbl.add_row(str(u.id), escape(u.username), escape(u.display_name), labels.zh_en(labels.ROLE, u.role),
                    u.merchant_no or "", state, str(n))
    console.print(tbl)


@app.command("disable")
def disable_cmd(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="用户名 username")],
    actor: ActorOpt = "cli",
) -> None:
    """停用用户：立即结束其会话并撤销其令牌 Disable a user: its sessions end and its tokens are revoked."""
    from settleguard.access.service import UserError, disable_user

    rt: Runtime = ctx.obj
    try:
        disable_user(rt.engine, username=username, now=rt.now(), actor=actor)
    except UserError as exc:
        fail(exc.zh, exc.en)
        return
    console.print(f"已停用用户 user disabled: {escape(username)}；会话与令牌已失效 sessions ended, tokens revoked")
