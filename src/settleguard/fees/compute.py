"""The fee audit's arithmetic over arrays (numpy): the fee formula the transaction import computes with, the
contract in force per (merchant, day), and folding a day's differences into per-merchant findings.

The fee of one row is ``min(cap, round_half_up(amount × rate))`` with the sign of the kind (money.fee_fen) — a sale
is charged, a void or a reversal gives the fee back, a refund neither charges nor returns one. :func:`fees` is
that formula over arrays; the import and the audit both use it, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np

from settleguard.fees.model import SAMPLE, ContractRates, Difference, MerchantAudit
from settleguard.settlement.model import CardType, TxnKind

PPM = 1_000_000
NO_CAP = np.iinfo(np.int64).max
CARD_SLOTS = 4  # card_type codes 1..3 index a row of 4 (slot 0 unused)

# the sign of the fee by kind: charged on a sale, given back on a void or reversal, none on a refund
SIGN = np.zeros(max(int(k) for k in TxnKind) + 1, dtype=np.int64)
SIGN[int(TxnKind.SALE)] = 1
SIGN[int(TxnKind.VOID)] = SIGN[int(TxnKind.REVERSAL)] = -1


def rate_tables(rates: Sequence[ContractRates]) -> tuple[np.ndarray, np.ndarray]:
    """(rate ppm, cap fen) matrices, one row per contract, one column per card type code."""
    rate = np.zeros((max(len(rates), 1), CARD_SLOTS), dtype=np.int64)
    cap = np.full((max(len(rates), 1), CARD_SLOTS), NO_CAP, dtype=np.int64)
    for i, r in enumerate(rates):
        for card in CardType:
            rate[i, int(card)] = r.ppm(card)
            c = r.cap(card)
            if c is not None:
                cap[i, int(card)] = c
    return rate, cap


def fees(amount: np.ndarray, kind: np.ndarray, card: np.ndarray, row: np.ndarray, rate: np.ndarray,
         cap: np.ndarray) -> np.ndarray:
    """Each transaction's fee in fen: ``amount`` (fen, ≥ 0), ``kind`` and ``card`` codes, ``row`` the index of
    its contract (or schedule) in the ``rate`` / ``cap`` matrices."""
    flat = row.astype(np.int64) * rate.shape[1] + card.astype(np.int64)
    fee = amount.astype(np.int64) * rate.ravel()[flat]
    fee += PPM // 2
    fee //= PPM
    np.minimum(fee, cap.ravel()[flat], out=fee)
    fee *= SIGN[kind.astype(np.int64)]
    out: np.ndarray = fee
    return out


def in_force(keys: np.ndarray, first: np.ndarray, merchant: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The contract in force for each (merchant, day): the latest with ``effective_from`` on or before the day,
    or the merchant's first contract before them all. ``keys`` are sorted ``merchant << 32 | effective day``
    (days since 1970-01-01), one per contract, the contract's index being its position; ``first`` maps a
    merchant id to its first contract's position (−1: none)."""
    q = (merchant.astype(np.int64) << 32) | day.astype(np.int64)
    i = np.searchsorted(keys, q, side="right") - 1
    safe = np.maximum(i, 0)
    hit = (i >= 0) & ((keys[safe] >> 32) == merchant)
    out: np.ndarray = np.where(hit, safe, first[merchant])
    return out


def add_differences(found: dict[int, MerchantAudit], merchant: np.ndarray, charged: np.ndarray,
                    contracted: np.ndarray, rows: Mapping[str, np.ndarray], day: date) -> None:
    """Fold one business day's transactions into ``found`` (merchant id → audit): counts for every merchant
    audited, sums and a sample of the rows that differ."""
    ids, counts = np.unique(merchant, return_counts=True)
    for mid, n in zip(ids.tolist(), counts.tolist(), strict=True):
        found.setdefault(mid, MerchantAudit(mid)).audited += n
    diff = charged - contracted
    bad = np.flatnonzero(diff)
    if not bad.size:
        return
    over = np.where(diff > 0, diff, 0)
    under = np.where(diff < 0, -diff, 0)
    for i in bad.tolist():
        a = found[int(merchant[i])]
        a.transactions += 1
        a.overcharged_fen += int(over[i])
        a.undercharged_fen += int(under[i])
        if len(a.sample) < SAMPLE:
            a.sample.append(Difference(str(rows["external_ref"][i]), day, int(rows["kind"][i]),
                                       int(rows["card_type"][i]), int(rows["amount_fen"][i]), int(charged[i]),
                                       int(contracted[i])))
