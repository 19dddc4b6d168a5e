"""``settleguard config show``: every effective setting, its value and where it came from (docs/operations.md 配置).

Reads nothing but the settings the root command loaded (``bootstrap.load_settings``): the database is not opened,
secrets are masked (config_file.shown_value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from settleguard.cli.output import console, print_json

if TYPE_CHECKING:
    from settleguard.bootstrap import LoadedSettings

app = typer.Typer(help="配置 Configuration: the effective settings and where each came from.", no_args_is_help=True)


@app.command("show")
def config_show_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """显示生效的设置及来源（默认、配置文件、环境变量、命令行），密钥与密码已隐藏 Show every effective setting,
    its value and where it came from (default, file, environment, flag); secrets masked. Opens no database."""
    from rich.markup import escape
    from rich.table import Table

    from settleguard.config_file import rows

    loaded: LoadedSettings = ctx.meta["settleguard.config"]
    file = loaded.sources.file
    shown = rows(loaded.settings.model_dump(), loaded.sources)
    if json_out:
        print_json({"config_file": str(file.path) if file else None, "config_file_from": file.how if file else None,
                    "settings": [r.to_dict() for r in shown]})
        return
    if file is not None:
        console.print(f"配置文件 configuration file: {escape(str(file.path))} （由 {escape(file.how)} 指定 named by "
                      f"{escape(file.how)}）", highlight=False)
    else:
        console.print("未使用配置文件 no configuration file (--config, SETTLEGUARD_CONFIG, ./settleguard.toml): "
                      "默认值与环境变量 defaults and environment", highlight=False)
    tbl = Table(title="生效设置 Effective settings",
                caption="优先级 precedence: 命令行 flag > 环境变量 env > 配置文件 file > 默认 default")
    tbl.add_column("配置项 key", no_wrap=True)
    tbl.add_column("值 value", overflow="fold", min_width=30)
    tbl.add_column("来源 source", overflow="fold")
    tbl.add_column("环境变量 env SETTLEGUARD_…", overflow="fold")
    for r in shown:
        value = "（未设置）(not set)" if r.value is None else str(r.value)
        source = r.origin.label()
        if r.origin.kind == "file" and file is not None:  # the file is named above: its line is enough here
            line = file.places[r.name].line
            source = "文件 file" + (f" :{line}" if line else "")
        elif r.origin.kind == "env":  # the variable is in the last column
            source = "环境变量 env"
        tbl.add_row(escape(r.key), escape(value), escape(source), escape(r.env.removeprefix("SETTLEGUARD_")),
                    style="bold" if r.origin.kind != "default" else None)
    console.print(tbl)
