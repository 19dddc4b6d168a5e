"""Long CLI output that stays readable at 80 columns: text is wrapped, never cut with "…" (Rich's default
for a word wider than its column, and a Chinese sentence is one long word to Rich), repeated guidance
is printed once per group, and long notices are summarised (the full text behind a flag)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

FOLD: Final[Literal["fold"]] = "fold"  # Rich overflow: wrap at spaces, break a longer run (Chinese text) anywhere; never "…"
IDS_SHOWN = 12  # ids listed in a group's heading; the rest are counted


def numbered(marks: Sequence[str], lines: Iterable[str]) -> Table:
    """Lines with a mark each ("1.", "•"), wrapped under their own text (a hanging indent)."""
    g = Table.grid(padding=(0, 1))
    g.add_column(no_wrap=True)
    g.add_column(overflow=FOLD)
    for mark, line in zip(marks, lines, strict=True):
        g.add_row(mark, Text(line))
    return g


def steps(lines: Sequence[str]) -> Table:
    return numbered([f"{i}." for i in range(1, len(lines) + 1)], lines)


def grouped(items: Iterable[T], key: Callable[[T], K]) -> list[tuple[K, list[T]]]:
    """``items`` grouped by ``key``, groups in the order of their first item, items in their order."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.items())


def id_list(ids: Sequence[object]) -> str:
    """'3421, 7348' — at most ``IDS_SHOWN`` ids, then how many more."""
    shown = ", ".join(str(i) for i in ids[:IDS_SHOWN])
    more = len(ids) - IDS_SHOWN
    return shown if more <= 0 else f"{shown} 等，另 {more} 笔 and {more} more"


def these_payouts(ids: Sequence[object]) -> str:
    """The heading of a group of payouts that share one diagnosis."""
    if len(ids) == 1:
        return f"出款 payout {ids[0]}"
    return f"以下 {len(ids)} 笔出款 / these {len(ids)} payouts: {id_list(ids)}"


def local(at: Any, tz: str) -> str:
    """A stored (UTC) time in the configured zone, to the second, without the zone (:func:`zone_note` says it
    once per output); '' for none. A naive time (SQLite) is UTC. A string is parsed as an ISO time."""
    when: object = at
    if isinstance(at, str):
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            return at
    if not isinstance(when, datetime):
        return "" if when is None else str(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def zone_note(tz: str) -> str:
    """The footer that names the zone of every time shown: '时间为北京时间 times are Beijing time (Asia/Shanghai)'."""
    from settleguard.config import DEFAULT_TIMEZONE  # here: `settleguard --help` loads no pydantic

    if tz == DEFAULT_TIMEZONE:
        return f"时间为北京时间 times are Beijing time ({tz})"
    return f"时间为 {tz} 当地时间 times are local time in {tz}"


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def notices_summary(notes: Sequence[dict[str, Any]], tz: str) -> Table:
    """Notifications as one entry per subject (the notice's first line, zh then en), latest first: how many,
    the latest time, how many delivered or pending. ``notes`` are rows of cards.repository.notifications_of."""
    tbl = Table(title=f"通知 notices ({len(notes)})", title_justify="left", show_header=False, box=None,
                padding=(0, 1))
    tbl.add_column(no_wrap=True, justify="right")
    tbl.add_column(overflow=FOLD, ratio=1)
    groups = grouped(notes, lambda n: (str(n.get("kind") or ""), first_line(str(n["payload"].get("zh", ""))),
                                       first_line(str(n["payload"].get("en", "")))))
    latest = {k: max(ns, key=lambda n: (n["created_at"], n["id"])) for k, ns in groups}
    for key, ns in sorted(groups, key=lambda g: (latest[g[0]]["created_at"], latest[g[0]]["id"]), reverse=True):
        _, zh, en = key
        delivered = sum(1 for n in ns if n.get("delivered_at"))
        pending = len(ns) - delivered
        facts = [f"最近 latest {local(latest[key]['created_at'], tz)}"]
        facts += [f"{delivered} 已送达 delivered"] if delivered else []
        facts += [f"{pending} 待发送 pending"] if pending else []
        body = Text(zh, style="bold")
        if en:
            body.append(f"\n{en}", style="")
        body.append("\n" + " · ".join(facts), style="dim")
        tbl.add_row(f"{len(ns)} ×", body)
    return tbl
