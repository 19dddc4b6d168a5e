"""Chinese bank 代付结果 / 账户明细 test files (generic CSV profile and the fixed-width example)."""

from __future__ import annotations

from pathlib import Path

HEADER = "流水号,入账日期,本方账号,客户流水号,金额,资金收付标志,状态,摘要"
ROWS = [
    "B0001,2026-12-06,110060001012345,SG20261206M1,\"1,234.56\",D,成功,代付 商户甲",
    "B0002,2026-12-06,110060001012345,SG20261206M2,100.00,借,失败,户名不符 账号6217002710000684874",
    "B0003,20261206,110060001012345,SG20261206M3,0.44,D,处理中,代付",
    "B0004,2026/12/06,110060001012345,,500,贷,成功,来账",
]
SUMMARY = "合计,笔数:4,金额:1835.00"


def csv_text(rows: list[str] | None = None, summary: str | None = SUMMARY) -> str:
    return "\n".join([HEADER, *(ROWS if rows is None else rows), *([summary] if summary else [])]) + "\n"


def write_csv(tmp: Path, text: str, encoding: str, name: str = "bank.csv") -> Path:
    path = tmp / name
    path.write_bytes(("\ufeff" if encoding == "utf-8-sig" else "").encode() + text.encode(
        "utf-8" if encoding == "utf-8-sig" else encoding))
    return path


def fixed_line(ref: str, day: str, fen: int, dc: str, sts: str, e2e: str) -> str:
    return f"{ref:<20}{day}{fen:015d}{dc}{sts}{e2e:<35}"


def fixed_text(count: int | None = None, total: int | None = None) -> str:
    lines = [fixed_line("F0001", "20261206", 12345, "D", "00", "SG20261206M1"),
             fixed_line("F0002", "20261206", 655, "D", "01", "SG20261206M2"),
             fixed_line("F0003", "20261207", 1000, "C", "00", "")]
    return "\n".join([*lines, f"TOTAL{count if count is not None else 3:06d}{total if total is not None else 14000:015d}"])
