"""The shipped table of merchant category codes (MCC, ISO 18245; the groups China UnionPay uses).

``merchants/mcc.csv``: ``mcc,name_zh,name_en,group_zh,group_en``, about 200 common codes. A merchant
file's MCC must be in it (docs/merchants.md). Read once.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

COLUMNS = ("mcc", "name_zh", "name_en", "group_zh", "group_en")


@dataclass(frozen=True)
class Mcc:
    code: str
    name_zh: str
    name_en: str
    group_zh: str
    group_en: str


def parse_mcc_csv(text: str) -> dict[str, Mcc]:
    """code -> :class:`Mcc`; ValueError on a malformed table (a wrong header, a code that is not 4 digits,
    a code twice)."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"mcc.csv: expected columns {','.join(COLUMNS)}, got {reader.fieldnames}")
    out: dict[str, Mcc] = {}
    for line, rec in enumerate(reader, start=2):
        code = rec["mcc"].strip()
        if len(code) != 4 or not code.isdigit():
            raise ValueError(f"mcc.csv line {line}: an MCC is 4 digits, got {code!r}")
        if code in out:
            raise ValueError(f"mcc.csv line {line}: MCC {code} appears twice")
        out[code] = Mcc(code, rec["name_zh"].strip(), rec["name_en"].strip(), rec["group_zh"].strip(),
                        rec["group_en"].strip())
    return out


@functools.cache
def load_mcc_table() -> dict[str, Mcc]:
    """The packaged table, read once."""
    return parse_mcc_csv(resources.files("settleguard.merchants").joinpath("mcc.csv").read_text(encoding="utf-8"))
