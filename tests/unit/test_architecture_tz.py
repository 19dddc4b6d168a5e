"""The time zone is passed, not written: the business zone is configured once (config.Settings.timezone,
whose default is config.DEFAULT_TIMEZONE) and handed down by the composition root; no other module under
src/settleguard names an IANA zone such as "Asia/Shanghai" in its code. The simulators (sim/) describe
their made-up world and may name zones."""

from __future__ import annotations

import ast
import zoneinfo
from pathlib import Path

import pytest

import settleguard

SRC = Path(settleguard.__file__).resolve().parent
ALLOWED = {SRC / "config.py"}
ALLOWED_DIRS = {SRC / "sim"}
# Area/Location names ("Asia/Shanghai", "America/New_York"); a bare "UTC" is a fixed reference, not a
# business zone, and stays allowed.
ZONES = frozenset(z for z in zoneinfo.available_timezones() if "/" in z)


def zone_literals(source: str) -> list[str]:
    """The string literals of ``source`` that are exactly an IANA zone name, with their lines."""
    return [f"line {node.lineno}: {node.value!r}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ZONES]


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p not in ALLOWED
                  and not any(d in p.parents for d in ALLOWED_DIRS))


def test_the_check_finds_a_zone_written_in_code() -> None:
    assert zone_literals('TZ = ZoneInfo("Asia/Shanghai")\ndef f(tz: str = "Asia/Tokyo") -> None: ...\n') == [
        "line 1: 'Asia/Shanghai'", "line 2: 'Asia/Tokyo'"]
    assert zone_literals('"""Times are Beijing time (Asia/Shanghai) unless configured."""\nU = "UTC"\n') == []


def test_the_default_zone_is_written_once_in_config() -> None:
    from settleguard.config import DEFAULT_TIMEZONE, Settings

    assert zone_literals((SRC / "config.py").read_text(encoding="utf-8"))  # the one place it is written
    assert Settings.model_fields["timezone"].default == DEFAULT_TIMEZONE


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_writes_a_time_zone(path: Path) -> None:
    found = zone_literals(path.read_text(encoding="utf-8"))
    assert not found, (f"{path.relative_to(SRC)} names a time zone {found}: take the zone as a parameter from the "
                       "caller (config.Settings.timezone through the composition root), or config.DEFAULT_TIMEZONE "
                       "where a default is truly needed")
