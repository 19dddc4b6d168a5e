"""The demo's risk scan (issue 22 item 7): every demo day scanned as ``settleguard risk scan --date`` does, with the
packaged rules (risk/rules.toml), and what it found set against what the generator planted (sim/risk_plants.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine

from settleguard.sim.risk_plants import RiskPlan


@dataclass(frozen=True)
class RiskFinding:
    """One flagged merchant and day: its score, the rules that fired (ids and (zh, en) names), its case."""

    merchant_no: str
    day: date
    score: int
    rules: tuple[str, ...]
    names: tuple[tuple[str, str], ...]
    case_id: int | None


@dataclass
class RiskDemo:
    """What the demo planted for the risk scan and what the scan found (issue 22 item 7)."""

    days: list[date] = field(default_factory=list)  # scanned
    merchants: int = 0  # evaluated on the last day
    plants: list[tuple[str, str, str, str, tuple[str, ...], date]] = field(default_factory=list)
    # (merchant_no, pattern, zh, en, rules it must fire, day)
    found: dict[str, RiskFinding] = field(default_factory=dict)  # planted merchant_no -> its finding on its day
    others: list[RiskFinding] = field(default_factory=list)  # flagged, not planted (or a planted one another day)
    flag_score: int = 40
    case_score: int = 60
    history: tuple[date, date] | None = None  # the silent merchant's imported history (first, last day)
    seconds: float = 0.0

    def verdict(self, merchant_no: str) -> bool:
        """Found on its day with every rule its pattern must fire."""
        plant = next(p for p in self.plants if p[0] == merchant_no)
        f = self.found.get(merchant_no)
        return f is not None and f.score >= self.flag_score and set(plant[4]) <= set(f.rules)


def scan_days(engine: Engine, days: Sequence[date], rp: RiskPlan, *, tz: str, now: datetime,
              history: tuple[date, date] | None = None) -> RiskDemo:
    """Scan each of ``days`` (features, scores, evidence, cases at the case score; actor ``demo``) and sort the
    flagged merchants into the planted ones (on their plant day) and the others."""
    import time

    from settleguard.risk.service import load_rules, rule_names, scan

    started = time.perf_counter()
    rules = load_rules()
    names = rule_names(rules)
    out = RiskDemo(days=list(days), flag_score=rules.flag_score, case_score=rules.case_score, history=history)
    out.plants = [(p.merchant_no, p.pattern, *p.words, p.rules, p.day) for p in rp.plants]
    planted = {p.merchant_no: p.day for p in rp.plants}
    for day in days:
        res = scan(engine, day, rules, tz=tz, now=now, actor="demo")
        out.merchants = res.merchants
        for f in res.flagged:
            finding = RiskFinding(f.merchant_no, day, f.score, tuple(f.rules),
                                  tuple(names.get(r, (r, r)) for r in f.rules), f.case_id)
            if planted.get(f.merchant_no) == day:
                out.found[f.merchant_no] = finding
            else:
                out.others.append(finding)
    out.seconds = time.perf_counter() - started
    return out
