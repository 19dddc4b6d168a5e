"""Merchants the demo plants for the risk scan to find (issue 22 item 7): card cashing (套现) in three mixes and a
silent-then-busy merchant. Deterministic for a seed; everything else the generator makes is ordinary trade.

- ``same_card_round`` — a small shop (便利店 / 水果店 / 快餐) whose terminal, on the plant day, only takes two credit
  cards, each swiped five to seven times, for whole hundreds of yuan far above the shop's tickets: risk's
  round_amounts, credit_heavy, same_card and mcc_ticket rules.
- ``night_under_limit`` — a hardware or clothes shop (五金 / 服装, whose MCC has the default 5,000 元 ticket) that
  also takes, between 00:30 and 04:30, sales of 4,901-4,997 元 on many cards: night_sales and just_under_limit.
- ``mcc_ticket`` — a fast-food or convenience shop (MCC 5814 / 5499) with as many 800-2,800 元 sales (with fen,
  daytime, many cards) as ordinary ones: mcc_ticket only (flagged, below the case score).
- ``silent_then_busy`` — an ordinary merchant with 18 days of trade (history before the demo's first day, 37 to
  20 days before the plant day), silent since, and on the plant day five times its usual count: reactivated
  (≥ 14 silent days), volume_spike and count_spike against its own 30-day baseline. The demo's week alone is
  too short for both (the baseline needs ``min_days`` = 7 active days, the return 14 silent ones), so its history
  is generated and imported before the week.

The plant day is the demo's last day. The generator's ordinary merchants stay clean of every rule (voids cancel a
same-day sale, a card at most three times a day, shop hours and tickets), so the scan finds exactly these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from settleguard.sim.generator import CARD_COLUMN, SimMerchant, card_numbers, generate_transactions, mix64

# pattern -> (zh, en, the rules it must fire)
PATTERNS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "same_card_round": ("套现：同一信用卡反复刷整百大额", "card cashing: one credit card swiped again and again for "
                        "round hundreds", ("round_amounts", "credit_heavy", "same_card", "mcc_ticket")),
    "night_under_limit": ("套现：凌晨刷贴近限额的金额", "card cashing: sums just under a limit in the small hours",
                          ("night_sales", "just_under_limit")),
    "mcc_ticket": ("套现：客单价远超行业", "card cashing: tickets far above the line of business", ("mcc_ticket",)),
    "silent_then_busy": ("沉寂后突然放量", "silent, then suddenly busy",
                         ("reactivated", "volume_spike", "count_spike")),
}
HISTORY_DAYS = (37, 20)  # the silent merchant's trade: from 37 to 20 days before the plant day
MIN_MERCHANTS = 20  # fewer merchants: nothing is planted


@dataclass(frozen=True)
class Plant:
    merchant_no: str
    pattern: str  # a key of PATTERNS
    day: date  # the day the pattern shows (the scan finds it there)

    @property
    def words(self) -> tuple[str, str]:
        return PATTERNS[self.pattern][0], PATTERNS[self.pattern][1]

    @property
    def rules(self) -> tuple[str, ...]:
        return PATTERNS[self.pattern][2]


@dataclass(frozen=True)
class RiskPlan:
    plants: tuple[Plant, ...] = ()

    def of(self, pattern: str) -> Plant | None:
        return next((p for p in self.plants if p.pattern == pattern), None)


def plan(merchants: Sequence[SimMerchant], days: Sequence[date], seed: int) -> RiskPlan:
    """Which merchants carry which pattern (deterministic for ``seed``); the first merchant (the demo's fee-rate
    one) is never picked. No plants with fewer than :data:`MIN_MERCHANTS` merchants or no days."""
    if len(merchants) < MIN_MERCHANTS or not days:
        return RiskPlan()
    rng = np.random.default_rng([seed, 0x52534B])
    last = max(days)
    taken = {0}
    wants = (("same_card_round", lambda m: m.business in ("便利店", "水果店", "快餐")),
             ("night_under_limit", lambda m: m.business in ("五金", "服装") and m.daily_txn_mean <= 30),
             ("mcc_ticket", lambda m: m.mcc in ("5814", "5499") and 5 <= m.daily_txn_mean <= 40),
             ("silent_then_busy", lambda m: 12 <= m.daily_txn_mean <= 40))
    plants = []
    for pattern, fits in wants:
        candidates = [i for i, m in enumerate(merchants) if i not in taken and fits(m)]
        if not candidates:
            continue
        i = candidates[int(rng.integers(len(candidates)))]
        taken.add(i)
        plants.append(Plant(merchants[i].merchant_no, pattern, last))
    return RiskPlan(tuple(plants))


def _keys(seed: int, merchant_no: str, tag: int, n: int) -> np.ndarray:
    base = mix64(np.array([(int(merchant_no) * 64 + tag) ^ seed], dtype=np.uint64))[0]
    return mix64(base + np.arange(n, dtype=np.uint64) * np.uint64(7919))


def _rows(m: SimMerchant, day: date, tz: str, seconds: Sequence[int], amounts: Sequence[int],
          credit: Sequence[bool], keys: np.ndarray, qr: Sequence[bool] | None = None) -> dict[str, list[object]]:
    zone = ZoneInfo(tz)
    n = len(seconds)
    qr_ = list(qr) if qr is not None else [False] * n
    cards = card_numbers(keys, np.array(credit, dtype=bool), ~np.array(qr_, dtype=bool)).to_pylist()
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return {"merchant_no": [m.merchant_no] * n,
            "terminal_no": [m.terminal_nos[i % len(m.terminal_nos)] for i in range(n)],
            "occurred_at": [(start + timedelta(seconds=int(s))).isoformat() for s in seconds],
            "kind": ["sale"] * n,
            "card_type": ["qr" if q else "credit" if c else "debit" for c, q in zip(credit, qr_, strict=True)],
            "amount_fen": [int(a) for a in amounts], CARD_COLUMN: cards}


def _planted(p: Plant, m: SimMerchant, ordinary_sales: int, seed: int, tz: str) -> dict[str, list[object]]:
    rng = np.random.default_rng([seed, int(m.merchant_no) % 2**32, 0x504C])
    day = p.day
    if p.pattern == "same_card_round":
        swipes = [int(x) for x in rng.integers(5, 8, 2)]
        owner = [0] * swipes[0] + [1] * swipes[1]
        n = len(owner)
        amounts = rng.choice([1000, 1500, 2000, 3000, 5000, 6000, 8000], n) * 100
        seconds = np.sort(rng.integers(10 * 3600, 21 * 3600, n))
        keys = _keys(seed, m.merchant_no, 1, 2)[owner]
        return _rows(m, day, tz, seconds.tolist(), amounts.tolist(), [True] * n, keys)
    if p.pattern == "night_under_limit":
        n = max(8, round(1.5 * ordinary_sales))
        amounts = rng.integers(4901, 4998, n) * 100
        seconds = np.sort(rng.integers(1800, 4 * 3600 + 1800, n))
        credit = (rng.random(n) < 0.6).tolist()
        return _rows(m, day, tz, seconds.tolist(), amounts.tolist(), credit, _keys(seed, m.merchant_no, 2, n))
    if p.pattern == "mcc_ticket":
        n = max(4, ordinary_sales)
        amounts = rng.integers(800, 2800, n) * 100 + rng.integers(1, 100, n)
        seconds = np.sort(rng.integers(9 * 3600, 21 * 3600, n))
        credit = (rng.random(n) < 0.5).tolist()
        return _rows(m, day, tz, seconds.tolist(), amounts.tolist(), credit, _keys(seed, m.merchant_no, 3, n))
    # silent_then_busy: five times its ordinary day, ordinary tickets in whole yuan, the usual card mix
    n = max(10, round(5 * m.daily_txn_mean))
    amounts = np.maximum(1, np.rint(np.exp(rng.normal(m.ticket_mu, m.ticket_sigma, n)))).astype(np.int64) * 100
    amounts = np.where((amounts % 10_000 == 0) | np.isin(amounts // 100 % 1000, (998, 999)), amounts + 100, amounts)
    seconds = np.sort(rng.integers(9 * 3600, 22 * 3600, n))
    u = rng.random(n)
    return _rows(m, day, tz, seconds.tolist(), amounts.tolist(), (u < 0.25).tolist(), _keys(seed, m.merchant_no, 4, n),
                 (u >= 0.7).tolist())


def day_table(rp: RiskPlan, merchants: Sequence[SimMerchant], day: date, seed: int, tz: str,
              ref_start: int = 0) -> pa.Table:
    """The generator's day (with card numbers) and the plants: the silent merchant has no trade before its plant
    day; on a plant day the same-card merchant's ordinary trade is replaced, the others' planted sales added."""
    table = generate_transactions(merchants, day, seed, tz=tz, ref_start=ref_start, cards=True)
    if not rp.plants:
        return table
    by_no = {m.merchant_no: m for m in merchants}
    drop = [p.merchant_no for p in rp.plants
            if (p.pattern == "silent_then_busy" and day <= p.day) or (p.pattern == "same_card_round" and day == p.day)]
    ordinary = {p.merchant_no: 0 for p in rp.plants}
    sales = pc.equal(table["kind"], "sale")
    for no in ordinary:
        ordinary[no] = int(pc.sum(pc.and_(sales, pc.equal(table["merchant_no"], no))).as_py() or 0)
    if drop:
        table = table.filter(pc.invert(pc.is_in(table["merchant_no"], pa.array(drop, pa.string()))))
    extra: dict[str, list[object]] = {}
    for p in rp.plants:
        if p.day != day:
            continue
        for k, v in _planted(p, by_no[p.merchant_no], ordinary[p.merchant_no], seed, tz).items():
            extra.setdefault(k, []).extend(v)
    if not extra:
        return table
    n = len(extra["merchant_no"])
    serial = ref_start + 900_000_000  # planted references: their own range of the day's serials
    extra["external_ref"] = [f"R{day:%Y%m%d}{serial + i:09d}" for i in range(n)]
    planted = pa.table({name: pa.array(extra[name], type=table.schema.field(name).type) for name in table.column_names})
    return pa.concat_tables([table, planted]).combine_chunks()


def history_table(rp: RiskPlan, merchants: Sequence[SimMerchant], seed: int, tz: str) -> pa.Table | None:
    """The silent-then-busy merchant's ordinary trade before the demo (days :data:`HISTORY_DAYS` before its plant
    day), with card numbers; None without that plant."""
    p = rp.of("silent_then_busy")
    if p is None:
        return None
    m = next(x for x in merchants if x.merchant_no == p.merchant_no)
    far, near = HISTORY_DAYS
    days = [p.day - timedelta(days=d) for d in range(far, near - 1, -1)]
    return pa.concat_tables([generate_transactions([m], d, seed, tz=tz, cards=True) for d in days]).combine_chunks()
