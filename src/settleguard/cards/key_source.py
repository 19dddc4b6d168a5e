"""Where the card key comes from: the environment (``SETTLEGUARD_KEY``), a command the operator configures
(``SETTLEGUARD_KEY_COMMAND``: one that reads a KMS or an HSM-backed store), or the key file.

Precedence: the environment, then the command, then the file. ``SETTLEGUARD_KEY`` is the most explicit
override (a one-off run, a test, a container secret) and already won over the key file; a configured command
is a deliberate choice over the file, which is only a default (beside the SQLite file).

The command line is split like a shell would (``shlex``) but run without a shell, with no standard input,
in its own process group (killed as a whole at the timeout), and its standard output, at most
:data:`MAX_OUTPUT` bytes, is the key file's content (``<version>:<base64>`` lines, the last one the current
key). A failure names the exit code and the first lines of standard error (masked, bounded), never standard
output. Nothing here creates a key.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from settleguard.cards.vault import ENV_SOURCE, KeyFileMissing, Vault, VaultError, parse_key_lines

MAX_OUTPUT = 64 * 1024  # a key file of hundreds of versions is a few KiB
COMMAND_SOURCE = "command"  # Vault.source of a key from the key command
ENVIRONMENT, COMMAND, FILE = "environment", "command", "file"  # KeySource.kind


class KeyCommandError(VaultError):
    """The key command could not be run, failed, timed out, or printed no key file."""

    def __init__(self, zh: str, en: str, detail: str = "") -> None:
        super().__init__(f"{zh}\n{en}" + (f"\n{detail}" if detail else ""))
        self.zh, self.en, self.detail = zh, en, detail


@dataclass(frozen=True)
class KeySource:
    """The configured key: ``env_key`` wins over ``command``, which wins over ``key_file``."""

    env_key: str | None = None
    command: str | None = None
    key_file: Path | None = None
    timeout: float = 10.0

    @property
    def kind(self) -> str:
        if self.env_key:
            return ENVIRONMENT
        if self.command:
            return COMMAND
        return FILE

    @property
    def external(self) -> bool:
        """True when settleguard cannot write the store itself (the environment, a KMS behind a command)."""
        return self.kind != FILE

    def describe(self) -> str:
        """Where the key comes from, for people: a path, the variable's name, or the command's program
        (its arguments may carry a token, so they are not shown)."""
        if self.kind == ENVIRONMENT:
            return f"环境变量 environment {ENV_SOURCE}"
        if self.kind == COMMAND:
            return f"密钥命令 key command: {program(self.command or '')}"
        return f"密钥文件 key file: {self.key_file}"


def program(command: str) -> str:
    """The program of a command line (its first word), or the line cut when it does not parse."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command.split(" ", 1)[0][:80]
    return argv[0][:200] if argv else ""


def env_lines(value: str) -> list[str]:
    """``SETTLEGUARD_KEY`` as key-file lines: a bare base64 key is version 1; ``<version>:<base64>`` entries
    (separated by newlines, spaces or commas) are read like a key file's lines (rotation with an external
    store: docs/cards.md)."""
    text = value.strip()
    if ":" not in text:
        return [f"1:{text}"]
    return [part for part in text.replace(",", " ").split() if part]


def _drain(stream: IO[bytes], keep: bytearray, limit: int, over: list[bool]) -> None:
    while chunk := stream.read(8192):
        room = limit - len(keep)
        if room > 0:
            keep.extend(chunk[:room])
        if len(chunk) > max(room, 0):
            over[0] = True


def run_key_command(command: str, timeout: float, *, max_output: int = MAX_OUTPUT) -> list[str]:
    """Run ``command`` (shlex-split, no shell) and return its standard output's lines; :class:`KeyCommandError`
    naming the exit code and standard error when it fails, times out or prints too much."""
    from settleguard.masking import bounded

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise KeyCommandError("密钥命令无法解析", "the key command does not parse", f"key_command: {exc}") from None
    if not argv:
        raise KeyCommandError("密钥命令为空", "the key command is empty", "key_command")
    shown = program(command)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, close_fds=True)
    except OSError as exc:
        raise KeyCommandError(f"密钥命令无法启动：{shown}", f"the key command cannot be started: {shown}",
                              f"{type(exc).__name__}: {exc.strerror or exc}") from None
    out, err = bytearray(), bytearray()
    out_over, err_over = [False], [False]
    readers = [threading.Thread(target=_drain, args=(proc.stdout, out, max_output, out_over), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, err, 4096, err_over), daemon=True)]
    for r in readers:
        r.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        for r in readers:
            r.join(timeout=2)
        raise KeyCommandError(f"密钥命令超时（{timeout:g} 秒），已终止：{shown}",
                              f"the key command timed out after {timeout:g} s and was killed: {shown}",
                              _stderr(err, bounded)) from None
    for r in readers:
        r.join(timeout=timeout)
    if code != 0:
        raise KeyCommandError(f"密钥命令失败（退出码 {code}）：{shown}",
                              f"the key command failed (exit code {code}): {shown}", _stderr(err, bounded))
    if out_over[0]:
        raise KeyCommandError(f"密钥命令输出超过 {max_output} 字节，未读取：{shown}",
                              f"the key command printed more than {max_output} bytes; not read: {shown}")
    try:
        text = out.decode("ascii")
    except UnicodeDecodeError:
        raise KeyCommandError(f"密钥命令输出不是密钥文件格式（非 ASCII）：{shown}",
                              f"the key command's output is not a key file (not ASCII): {shown}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise KeyCommandError(f"密钥命令没有输出密钥：{shown}", f"the key command printed no key: {shown}",
                              _stderr(err, bounded))
    return lines


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: a shell script's children too
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _stderr(err: bytearray, bounded: object) -> str:
    text = err.decode("utf-8", errors="replace").strip()
    if not text:
        return "标准错误输出为空 standard error was empty"
    return f"标准错误输出 standard error:\n{bounded(text, 600)}"  # type: ignore[operator]


def key_lines(source: KeySource) -> list[str]:
    """The key-file lines of ``source`` (never creates anything): :class:`KeyFileMissing` for a missing file,
    :class:`KeyCommandError` for a failing command."""
    if source.kind == ENVIRONMENT:
        return env_lines(source.env_key or "")
    if source.kind == COMMAND:
        return run_key_command(source.command or "", source.timeout)
    if source.key_file is None:
        raise VaultError("未配置卡号密钥 no card key configured")
    if not source.key_file.exists():
        raise KeyFileMissing(source.key_file)
    return [line.strip() for line in source.key_file.read_text().splitlines() if line.strip()]


def vault_of(source: KeySource, lines: list[str]) -> Vault:
    """The vault of ``lines`` read from ``source``; errors name the place, never the key material."""
    if source.kind == ENVIRONMENT:
        return parse_key_lines(lines, ENV_SOURCE)
    if source.kind == COMMAND:
        return parse_key_lines(lines, "key_command 输出 output", source=COMMAND_SOURCE)
    return parse_key_lines(lines, str(source.key_file))


def load(source: KeySource) -> Vault:
    """The vault of ``source``; never creates a key."""
    return vault_of(source, key_lines(source))
