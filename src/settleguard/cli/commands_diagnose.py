"""``settleguard diagnose``: diagnose one failure (Rich panel or JSON) or a JSON Lines batch."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from settleguard import labels
from settleguard.cli.output import fail
from settleguard.cli.params import BadArgument, Label

INPUT_KEYS = ("scheme", "code", "message")
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_CACHE_LIMIT = 200_000


def diagnose_cmd(
    scheme: Annotated[str | None, typer.Option("--scheme", "-s", help="代码体系 code set: iso8583, iso20022, "
                                               "iso20022_return, nacha, unionpay_acp, alipay, wechat_pay, allinpay")] = None,
    code: Annotated[str | None, typer.Option("--code", "-c", help="银行/通道返回码 the returned code")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="返回信息原文 the returned text")] = None,
    lang: Annotated[str, typer.Option("--lang", help="指引语言 guidance language: zh | en",
                                      parser=Label(labels.LANGUAGE, "语言", "language"))] = "zh",
    json_out: Annotated[bool, typer.Option("--json", help="输出一个 JSON 对象 print one JSON object")] = False,
    batch: Annotated[str | None, typer.Option("--batch", help="JSON Lines 文件，- 为标准输入 JSON Lines file, - for stdin")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="说明匹配的规则与原因 show which rule matched and why")] = False,
) -> None:
    """诊断结算失败 Diagnose a failed, returned or unclear payout: category, decision, owner, steps.

    单条 single: settleguard diagnose --scheme allinpay --code 3031 --message 账号户名不符

    批量 batch: settleguard diagnose --batch failures.jsonl > diagnoses.jsonl
    (每行 {"id":…, "scheme":…, "code":…, "message":…}; one object per line in, one per line out, in order)
    """
    if batch is not None:
        if scheme or code or message:
            raise BadArgument("--batch 不能与 --scheme/--code/--message 同用（批量输入自带这些字段）",
                              "--batch does not go with --scheme/--code/--message (batch input carries its own)")
        with _open_batch(batch) as lines:
            run_batch(lines, sys.stdout.buffer, lang=lang, explain=explain)
        return
    if code is None and message is None:
        raise BadArgument("请给出 --code 或 --message（或 --batch）", "give --code or --message (or --batch)")
    from settleguard.diagnosis import UnknownScheme, classify

    try:
        d = classify(scheme, code, message)
    except UnknownScheme as exc:
        fail("未知的代码体系", "unknown scheme", str(exc))
    if json_out:
        from settleguard.cli.output import print_json

        print_json({**{k: v for k, v in (("scheme", scheme), ("code", code), ("message", message))},
                    **d.to_dict(lang, explain)})
        return
    _panel(d, lang, explain, scheme, code, message)


MAX_LINE = 1 << 20  # a batch line longer than this (1 MiB) is reported, never read into memory whole


def capped_lines(f: IO[bytes], limit: int = MAX_LINE) -> Iterator[bytes | None]:
    """The lines of ``f``, each read with at most ``limit`` bytes in memory; None stands for a longer line
    (its rest is skipped in bounded chunks), so a hostile file without newlines cannot exhaust memory."""
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = f.readline(limit)
        yield None


@contextmanager
def _open_batch(name: str) -> Iterator[Iterable[bytes | None]]:
    if name == "-":
        yield capped_lines(sys.stdin.buffer)
        return
    path = Path(name)
    if not path.is_file():
        fail("找不到批量文件", "batch file not found", name)
    with path.open("rb") as f:
        yield capped_lines(f)


def _field(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    raise ValueError(f"{key} must be a string or null, got {type(v).__name__}")


def run_batch(lines: Iterable[bytes | None], out: IO[bytes], lang: str = "zh", explain: bool = False) -> int:
    """Classify JSON Lines from ``lines`` and write one JSON object per non-blank line to ``out``, in
    order. A malformed line yields ``{"line": n, "error": "..."}``, and so does a line too long to read
    (None, from :func:`capped_lines`). Returns the number of lines."""
    from settleguard.diagnosis import UnknownScheme, classify

    fragments: dict[tuple[str | None, str | None, str | None], str] = {}
    loads = json.JSONDecoder().decode
    buf: list[str] = []
    n = 0
    for n, raw in enumerate(lines, 1):
        if raw is None:
            buf.append(_DUMPS({"line": n, "error": f"行过长（超过 {MAX_LINE} 字节），未读取 line longer than "
                                                  f"{MAX_LINE} bytes, not read"}) + "\n")
            continue
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            obj = loads(raw.decode("utf-8"))
            if type(obj) is not dict:
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            s, c, m = obj.pop("scheme", None), obj.pop("code", None), obj.pop("message", None)
            if not (type(s) is str or s is None) or not (type(c) is str or c is None) or not (
                    type(m) is str or m is None):
                s, c, m = (_field({"scheme": s}, "scheme"), _field({"code": c}, "code"),
                           _field({"message": m}, "message"))
            key = (s, c, m)
            frag = fragments.get(key)
            if frag is None:
                d = classify(s, c, m)
                frag = _DUMPS(d.to_dict(lang, explain))[1:-1]
                if len(fragments) >= _CACHE_LIMIT:
                    fragments.clear()
                fragments[key] = frag
            if obj:
                if not _OUTPUT_KEYS.isdisjoint(obj):
                    obj = {k: v for k, v in obj.items() if k not in _OUTPUT_KEYS}
                buf.append("{" + _members(obj) + "," + frag + "}\n" if obj else "{" + frag + "}\n")
            else:
                buf.append("{" + frag + "}\n")
        except (ValueError, UnknownScheme, RecursionError) as exc:
            # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            buf.append(_DUMPS({"line": n, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        if len(buf) >= 4096:
            out.write("".join(buf).encode("utf-8"))
            buf.clear()
    if buf:
        out.write("".join(buf).encode("utf-8"))
    out.flush()
    return n


_ENC = json.encoder.encode_basestring   # the C string encoder, ensure_ascii=False semantics


def _members(obj: dict[str, Any]) -> str:
    """``obj`` as JSON object members without the braces; ints and strings (ids) without the encoder."""
    parts = []
    for k, v in obj.items():
        t = type(v)
        if t is int:
            parts.append(f"{_ENC(k)}:{v}")
        elif t is str:
            parts.append(f"{_ENC(k)}:{_ENC(v)}")
        else:
            parts.append(f"{_ENC(k)}:{_DUMPS(v)}")
    return ",".join(parts)


_OUTPUT_KEYS = frozenset({"category", "retryable", "decision", "owner", "confidence", "needs_review", "rule",
                          "meaning", "guidance", "evidence", "explanation", "line", "error"})


def _panel(d: Any, lang: str, explain: bool, scheme: str | None, code: str | None, message: str | None) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from settleguard.cli.layout import FOLD, numbered, steps
    from settleguard.cli.output import console
    from settleguard.diagnosis.model import Stage
    from settleguard.labels import CATEGORY, DECISION, OWNER, zh_en

    yes_no = {True: "是 yes", False: "否 no"}
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow=FOLD)  # wrapped, never cut with "…" (a Chinese sentence is one long word to Rich)
    given = " · ".join(f"{k}={v}" for k, v in (("scheme", scheme), ("code", code), ("message", message)) if v)
    t.add_row("输入 input", Text(given))
    t.add_row("类别 category", zh_en(CATEGORY, d.category))
    t.add_row("处理决定 decision", zh_en(DECISION, d.decision))
    t.add_row("可重试 retryable", yes_no[d.retryable])
    t.add_row("责任方 owner", zh_en(OWNER, d.owner))
    review = "[bold yellow]是 yes[/]" if d.needs_review else "否 no"
    t.add_row("置信度 confidence", f"{d.confidence:.2f}   需人工复核 needs review: {review}")
    t.add_row("规则 rule", d.rule or "—")
    e = d.explanation
    if e.stage is Stage.narrative and e.code:
        t.add_row("依据 basis", Text(f"代码 {e.code} 由文字说明判断 code {e.code}: the text decides"))
    if e.text_category is not None:
        t.add_row("文字说明 text says", Text(f"{zh_en(CATEGORY, e.text_category)}"
                                            "（与代码不一致，以代码为准 disagrees with the code; the code decides）"))
    t.add_row("含义 meaning", Text(d.meaning(lang)))
    t.add_row("处理步骤 steps", steps(d.guidance(lang)))
    t.add_row("留存证据 evidence", numbered(["•"] * len(d.evidence(lang)), d.evidence(lang)))
    if explain:
        code_part = f"{e.code} ({e.code_source})" if e.code else "—"
        t.add_row("判断依据 why", Text(f"stage={e.stage.value}  scheme={e.scheme or '—'}  code={code_part}"))
        t.add_row("匹配模式 pattern", Text(e.pattern or "—"))
        t.add_row("规范化文本 normalised", Text(e.normalized or "—"))
        for note in e.notes:
            t.add_row("说明 note", Text(note))
    style = "yellow" if d.needs_review else ("red" if d.decision.value in ("hold", "review") else "cyan")
    console.print(Panel(t, title="结算失败诊断 Diagnosis", border_style=style, expand=False))
