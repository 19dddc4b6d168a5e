"""``settleguard users add`` and its password: one line on stdin with --password-stdin, or prompted twice on a
terminal (hidden). Without a terminal (a script, cron, CI) it says how to pass the password, zh then en, and changes
nothing (it used to print a GetPassWarning, then "Aborted.")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PASSWORD = "e2e-correct-horse"


def sg(db_url: str, cwd: Path, *args: str, stdin: int | str = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    text_in = stdin if isinstance(stdin, str) else None
    return subprocess.run([sys.executable, "-m", "settleguard", "--db", db_url, *args], cwd=cwd, env=env,
                          input=text_in, stdin=None if text_in is not None else stdin, capture_output=True,
                          text=True, timeout=120)


def users(db_url: str, cwd: Path) -> list[dict[str, object]]:
    r = sg(db_url, cwd, "users", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, object]] = json.loads(r.stdout)
    return rows


def test_without_a_terminal_it_says_how_to_pass_the_password_and_changes_nothing(db_url: str,
                                                                                 tmp_path: Path) -> None:
    r = sg(db_url, tmp_path, "users", "add", "oper1", "--role", "operator")  # stdin is /dev/null
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "GetPassWarning" not in r.stderr
    assert "Aborted" not in r.stderr
    assert r.stderr.index("没有终端，无法提示输入密码") < r.stderr.index("no terminal to prompt for the password")
    assert "--password-stdin" in r.stderr
    assert "printf '%s\\n' \"$PW\" | settleguard users add oper1 --role operator --password-stdin" in r.stderr
    if db_url.startswith("sqlite:///"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()  # not even created
    assert users(db_url, tmp_path) == []

    # A merchant user's example names its merchant too; a piped password without --password-stdin is refused
    # the same way (the prompt would echo it or read the wrong line).
    r = sg(db_url, tmp_path, "users", "add", "shop a", "--role", "merchant", "--merchant-no", "M001",
           stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.returncode == 2
    assert "settleguard users add 'shop a' --role merchant --merchant-no M001 --password-stdin" in r.stderr
    assert users(db_url, tmp_path) == []

    # The way it names works.
    r = sg(db_url, tmp_path, "users", "add", "oper1", "--role", "operator", "--password-stdin",
           stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert [u["username"] for u in users(db_url, tmp_path)] == ["oper1"]

