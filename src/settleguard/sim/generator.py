"""Seeded generator of demo merchants and POS transactions, fast enough for benchmarks.

Demos and tests need thousands of merchants and hundreds of thousands of transactions that
look like a Chinese acquirer's book — 个体户 shops with their owners' debit cards, corporate
merchants, T+1 and D+0 cycles, lunch and dinner peaks, late-night sales that cross the
cut-off, the odd void, refund and reversal — and that are identical on every run for the
same seed. Nothing here is real: names come from Faker (zh_CN), resident ID numbers and
card numbers are made up but pass their check digits (GB 11643 and Luhn), card numbers use
real BINs of the major banks from :mod:`settleguard.cards.bins` so BIN checks pass.

Merchants are built with a loop per merchant (a few thousand at most); transactions are
drawn with numpy, one vector per column, and turned into Arrow string columns without a
Python loop per row. The transaction columns are exactly :data:`TRANSACTION_COLUMNS`.
"""

from __future__ import annotations

import codecs
import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
from faker import Faker

from settleguard.cards.bins import BinInfo, load_packaged_bins, luhn_complete
from settleguard.cards.vault import mask_pan
from settleguard.settlement.model import CardType, TxnKind

TRANSACTION_COLUMNS = ("external_ref", "merchant_no", "terminal_no", "occurred_at", "kind", "card_type",
                       "amount_fen")
"""The columns of every generated transaction table, in order."""

KIND_LABELS: tuple[str, ...] = tuple(k.label for k in TxnKind)  # sale, void, refund, reversal
KIND_SHARES = (0.975, 0.012, 0.008, 0.005)
CARD_LABELS: tuple[str, ...] = tuple(c.label for c in CardType)  # debit, credit, qr
CARD_SHARES = (0.45, 0.25, 0.30)

_MAX_SERIAL = 999_999_999  # 9-digit reference serial

CARD_COLUMN = "card_no"
"""The card number column ``generate_transactions(..., cards=True)`` adds after :data:`TRANSACTION_COLUMNS`
(empty for QR payments); the importer turns it into ``card_token`` and never stores the number."""
_REGULAR_SHARE = 0.35  # share of a merchant's card sales made by its regular customers (the rest: walk-ins)
_REGULARS_PER_DAILY_TXN = 3.0  # a merchant's regular customers: this many per transaction of an ordinary day
MAX_SAME_CARD = 3  # an ordinary merchant sees one card at most this many times a day (risk's same_card: >= 4)


@dataclass(frozen=True)
class _Business:
    """A line of business: its MCC, names, ticket size, volume and opening-hours profile."""

    label: str  # business description shown to people (餐饮)
    mcc: str
    shop_suffixes: tuple[str, ...]  # endings of a 个体户 shop name
    corp_industry: str  # the industry part of a company name
    share: float  # share of merchants
    ticket_median_yuan: float
    ticket_sigma: float
    volume: float  # multiplier on the merchant's daily transaction count
    weekend: float  # multiplier on Saturdays and Sundays
    hours: tuple[float, ...]  # relative weight of each local hour 0..23


_BUSINESSES: tuple[_Business, ...] = (
    _Business("餐饮", "5812", ("饭店", "小吃店", "面馆", "餐馆", "饺子馆", "火锅店", "烧烤店"), "餐饮管理",
              0.24, 65.0, 0.55, 1.1, 1.3,
              (0.5, 0.25, 0.08, 0.03, 0.02, 0.05, 0.3, 0.8, 1.0, 0.8, 1.2, 4.0,
               8.0, 5.0, 1.5, 0.8, 1.0, 3.5, 7.0, 6.5, 3.5, 2.0, 1.4, 1.0)),
    _Business("快餐", "5814", ("快餐店", "早餐店", "包子铺", "粉面店"), "快餐",
              0.10, 22.0, 0.45, 1.6, 1.1,
              (0.2, 0.1, 0.05, 0.02, 0.02, 0.2, 1.5, 3.5, 3.0, 1.5, 1.5, 5.0,
               7.0, 3.5, 1.2, 0.8, 1.2, 3.5, 5.0, 3.5, 1.8, 1.2, 0.8, 0.5)),
    _Business("超市", "5411", ("超市", "生活超市", "购物中心"), "商贸",
              0.10, 55.0, 0.8, 1.5, 1.25,
              (0.05, 0.02, 0.0, 0.0, 0.0, 0.02, 0.3, 1.5, 2.5, 3.0, 3.2, 3.0,
               2.8, 2.5, 2.4, 2.6, 3.0, 4.0, 4.8, 4.5, 3.5, 2.2, 0.9, 0.3)),
    _Business("便利店", "5499", ("便利店", "便民店", "小卖部"), "便利连锁",
              0.18, 22.0, 0.6, 1.3, 1.15,
              (0.6, 0.4, 0.25, 0.15, 0.15, 0.3, 1.0, 2.8, 3.0, 1.8, 1.6, 2.2,
               2.8, 2.0, 1.6, 1.6, 1.9, 2.8, 3.2, 3.4, 3.0, 2.6, 1.9, 1.2)),
    _Business("水果店", "5499", ("水果店", "果蔬店", "鲜果铺"), "果业",
              0.10, 32.0, 0.55, 0.9, 1.2,
              (0.0, 0.0, 0.0, 0.0, 0.0, 0.02, 0.2, 0.8, 1.5, 2.0, 2.2, 2.0,
               1.6, 1.2, 1.2, 1.5, 2.2, 3.6, 4.2, 3.8, 2.6, 1.4, 0.5, 0.15)),
    _Business("美容美发", "7230", ("理发店", "美发店", "美容院", "美甲店"), "美容美发",
              0.09, 118.0, 0.75, 0.45, 1.4,
              (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.2, 0.8, 2.0, 2.6,
               2.2, 2.4, 2.8, 3.0, 3.2, 3.2, 2.8, 3.0, 3.2, 2.6, 1.2, 0.3)),
    _Business("五金", "5251", ("五金店", "五金建材店", "五金交电店"), "五金机电",
              0.07, 150.0, 0.95, 0.35, 0.8,
              (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.8, 2.5, 3.6, 3.8, 3.2,
               2.0, 1.8, 2.8, 3.2, 3.0, 2.4, 1.4, 0.6, 0.2, 0.05, 0.0, 0.0)),
    _Business("服装", "5651", ("服装店", "服饰店", "童装店"), "服饰",
              0.06, 190.0, 0.65, 0.5, 1.5,
              (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.2, 0.8, 2.0, 2.6,
               2.4, 2.4, 2.8, 3.0, 3.2, 3.4, 3.2, 3.6, 3.8, 2.8, 1.0, 0.2)),
    _Business("药店", "5912", ("大药房", "药店", "诊所药房"), "医药连锁",
              0.06, 48.0, 0.7, 0.9, 1.0,
              (0.2, 0.1, 0.1, 0.05, 0.05, 0.1, 0.3, 1.2, 2.4, 2.8, 2.8, 2.4,
               2.0, 1.8, 1.8, 2.0, 2.2, 2.4, 2.6, 2.6, 2.0, 1.2, 0.6, 0.3)),
)
_BUSINESS_INDEX = {b.label: i for i, b in enumerate(_BUSINESSES)}
# The largest ordinary ticket of an MCC (yuan; 5,000 otherwise): a shop's drawn amount above it is folded back below
# it (a rare 1,500 元 haircut is not what a hair salon's day looks like). Risk's mcc_ticket rule (risk/rules.toml)
# reads the same typical maxima: an ordinary generated merchant never trips it.
_MAX_TICKET_YUAN = {"5812": 2000, "5814": 300, "5411": 2000, "5499": 500, "7230": 1000, "5912": 1000}
_DEFAULT_MAX_TICKET_YUAN = 5000


@dataclass(frozen=True)
class _District:
    name: str
    id_area: str  # GB/T 2260 code used as the first 6 digits of a resident ID
    id_from_year: int  # the first birth year for which the code existed


@dataclass(frozen=True)
class _City:
    name: str
    cup_area: str  # UnionPay region code used in merchant numbers
    share: float
    districts: tuple[_District, ...]


_CITIES: tuple[_City, ...] = (
    _City("北京", "1000", 0.14, (_District("朝阳区", "110105", 1955), _District("海淀区", "110108", 1955),
                                 _District("丰台区", "110106", 1955), _District("西城区", "110102", 1955))),
    _City("上海", "2900", 0.14, (_District("徐汇区", "310104", 1955), _District("杨浦区", "310110", 1955),
                                 _District("浦东新区", "310115", 1992), _District("闵行区", "310112", 1981))),
    _City("广州", "5810", 0.10, (_District("天河区", "440106", 1985), _District("越秀区", "440104", 1983),
                                 _District("海珠区", "440105", 1983), _District("白云区", "440111", 1983))),
    _City("深圳", "5840", 0.11, (_District("南山区", "440305", 1983), _District("福田区", "440304", 1983),
                                 _District("罗湖区", "440303", 1983), _District("宝安区", "440306", 1992))),
    _City("杭州", "3310", 0.09, (_District("西湖区", "330106", 1983), _District("上城区", "330102", 1983),
                                 _District("拱墅区", "330105", 1983))),
    _City("南京", "3010", 0.07, (_District("玄武区", "320102", 1983), _District("鼓楼区", "320106", 1983),
                                 _District("秦淮区", "320104", 1983))),
    _City("武汉", "5210", 0.08, (_District("武昌区", "420106", 1983), _District("江岸区", "420102", 1983),
                                 _District("洪山区", "420111", 1983))),
    _City("成都", "6510", 0.09, (_District("武侯区", "510107", 1990), _District("锦江区", "510104", 1990),
                                 _District("金牛区", "510106", 1990))),
    _City("西安", "7910", 0.06, (_District("雁塔区", "610113", 1983), _District("碑林区", "610103", 1983),
                                 _District("未央区", "610112", 1983))),
    _City("天津", "1100", 0.06, (_District("河西区", "120103", 1955), _District("南开区", "120104", 1955),
                                 _District("和平区", "120101", 1955))),
    _City("重庆", "6530", 0.06, (_District("渝中区", "500103", 1997), _District("沙坪坝区", "500106", 1997),
                                 _District("南岸区", "500108", 1997))),
)

# Home counties of merchants who moved to the city: (code, first birth year, last birth year)
# for which the code was in use (GB/T 2260 history as known to python-stdnum).
_HOME_COUNTIES: tuple[tuple[str, int, int], ...] = (
    ("340121", 1955, 2009), ("510121", 1955, 2009), ("430121", 1955, 2009), ("360121", 1955, 2009),
    ("350121", 1955, 2009), ("140121", 1955, 2009), ("610323", 1955, 2009), ("620123", 1955, 2009),
    ("330122", 1955, 2009), ("430321", 1955, 2009), ("210421", 1955, 2009), ("422823", 1955, 2009),
    ("360426", 1983, 2009), ("430524", 1986, 2009), ("412723", 1955, 2000), ("410922", 1983, 2009),
    ("513030", 1955, 1999), ("452123", 1955, 2002), ("342221", 1955, 1998), ("320321", 1983, 2009),
)
_BIRTH_YEARS = (1966, 2003)

# Share of small merchants' settlement cards per bank (the big state banks dominate).
_BANK_SHARES: tuple[tuple[str, float], ...] = (
    ("ICBC", 0.17), ("CCB", 0.15), ("ABC", 0.15), ("BOC", 0.09), ("PSBC", 0.09), ("COMM", 0.05),
    ("CMB", 0.08), ("CITIC", 0.03), ("CIB", 0.03), ("SPDB", 0.03), ("CMBC", 0.03), ("CEB", 0.03),
    ("SPABANK", 0.03), ("HXBANK", 0.02), ("GDB", 0.02),
)

_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182",
    "183", "184", "185", "186", "187", "188", "189", "191", "193", "195", "198", "199",
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# Hour profile of the benchmark data: a blend of the shop profiles.
_BENCH_HOURS = tuple(sum(b.share * b.hours[h] / sum(b.hours) for b in _BUSINESSES) for h in range(24))


@dataclass(frozen=True, repr=False)
class SimMerchant:
    """One simulated merchant with its settlement card and terminals.

    Attributes:
        merchant_no: 15-digit UnionPay-style number: '898' + 4-digit region + MCC + 4-digit serial.
        kind: 'personal' (个体户/小微) or 'corporate' (企业).
        registered_name: 朝阳区张伟便利店 for a personal merchant, a company name otherwise.
        legal_person: the owner (personal) or legal representative (corporate).
        business: line of business in Chinese (餐饮, 便利店, 五金, ...).
        mcc: the 4-digit merchant category code matching ``business``.
        city: the city in Chinese (北京).
        cycle: 'T1' or 'D0'.
        fee_schedule: 'standard' or 'small_micro' (personal merchants only).
        holder_name: name on the settlement account (personal: the owner; corporate: the company).
        account_kind: 'personal' (对私) or 'corporate' (对公).
        id_number: the legal person's 18-digit resident ID (valid GB 11643 check digit).
        phone: the reserved 11-digit mobile number.
        pan: the settlement card number (a debit card with a real BIN and a valid Luhn digit).
        bank_code: the card's bank (ICBC, CCB, ...), as in the BIN table.
        bank_name: the bank's Chinese name.
        card_type: always 'DC' (settlement cards are debit cards).
        terminal_nos: the merchant's 1–3 POS terminal numbers (8 characters, unique).
        ticket_mu, ticket_sigma: lognormal parameters of a sale's amount in yuan
            (ln(amount) ~ N(ticket_mu, ticket_sigma)).
        daily_txn_mean: mean number of transactions on an ordinary weekday.
    """

    merchant_no: str
    kind: str
    registered_name: str
    legal_person: str
    business: str
    mcc: str
    city: str
    cycle: str
    fee_schedule: str
    holder_name: str
    account_kind: str
    id_number: str
    phone: str
    pan: str
    bank_code: str
    bank_name: str
    card_type: str
    terminal_nos: tuple[str, ...]
    ticket_mu: float
    ticket_sigma: float
    daily_txn_mean: float

    def __repr__(self) -> str:  # never show a full card number, ID number or phone number
        return (f"SimMerchant(merchant_no={self.merchant_no!r}, kind={self.kind!r}, "
                f"registered_name={self.registered_name!r}, business={self.business!r}, city={self.city!r}, "
                f"cycle={self.cycle!r}, bank_code={self.bank_code!r}, pan={mask_pan(self.pan)!r}, "
                f"id_number={self.id_number[:6] + '*' * 8 + self.id_number[-4:]!r}, "
                f"phone={self.phone[:3] + '****' + self.phone[-4:]!r}, terminal_nos={self.terminal_nos!r}, "
                f"daily_txn_mean={self.daily_txn_mean:.1f})")


# --------------------------------------------------------------------------------------------
# merchants


def resident_id_check_digit(first17: str) -> str:
    """GB 11643 (ISO 7064 MOD 11-2) check character for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("a resident ID's first 17 characters must be digits")
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _pick(rng: np.random.Generator, shares: Sequence[float], size: int) -> npt.NDArray[np.int64]:
    p = np.asarray(shares, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _unique_numbers(rng: np.random.Generator, count: int, low: int, high: int) -> list[int]:
    """``count`` distinct random integers in [low, high), in draw order."""
    found: list[int] = []
    seen: set[int] = set()
    while len(found) < count:
        for x in rng.integers(low, high, size=count - len(found) + 16).tolist():
            if x not in seen:
                seen.add(x)
                found.append(x)
                if len(found) == count:
                    break
    return found


def _id_number(rng: np.random.Generator, district: _District, male: bool, local: bool) -> str:
    if local:
        area, first, last = district.id_area, district.id_from_year, 2009
    else:
        area, first, last = _HOME_COUNTIES[int(rng.integers(len(_HOME_COUNTIES)))]
    year = int(rng.integers(max(first, _BIRTH_YEARS[0]), min(last, _BIRTH_YEARS[1]) + 1))
    born = date(year, 1, 1) + timedelta(days=int(rng.integers(365)))
    seq = int(rng.integers(0, 500)) * 2 + (1 if male else 0)  # odd = male, even = female
    if seq == 0:
        seq = 2
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    return first17 + resident_id_check_digit(first17)


def _pan(rng: np.random.Generator, bins: Sequence[BinInfo], taken: set[str]) -> tuple[str, BinInfo]:
    table = load_packaged_bins()
    while True:
        info = bins[int(rng.integers(len(bins)))]
        body_len = info.length - len(info.bin) - 1
        body = "".join(str(d) for d in rng.integers(0, 10, size=body_len).tolist())
        pan = luhn_complete(info.bin + body)
        if pan not in taken and table.lookup(pan) == info:
            taken.add(pan)
            return pan, info


def replacement_card(m: SimMerchant, seed: int) -> str:
    """A new settlement account after a card problem (deterministic): a debit card of the merchant's
    bank for a personal merchant, a 17-digit corporate account number (no card BIN) for a company."""
    rng = np.random.default_rng([seed, int(m.merchant_no), 0x5242])
    if m.kind == "corporate":
        return "1" + "".join(str(d) for d in rng.integers(0, 10, size=16).tolist())
    pan, _ = _pan(rng, load_packaged_bins().debit_bins(m.bank_code), {m.pan})
    return pan


_CN_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")


def generate_merchants(n: int, seed: int) -> list[SimMerchant]:
    """``n`` merchants, the same for the same ``(n, seed)``; about 85% personal, 90% T+1."""
    if n < 0:
        raise ValueError("n must not be negative")
    if seed < 0:
        raise ValueError("seed must not be negative")
    rng = np.random.default_rng([seed, 0x4D45])
    fake = Faker(["zh_CN"])
    fake.seed_instance(seed)
    table = load_packaged_bins()
    debit_bins = {code: table.debit_bins(code) for code, _ in _BANK_SHARES}

    corporate = rng.random(n) < 0.15
    biz_idx = _pick(rng, [b.share for b in _BUSINESSES], n)
    city_idx = _pick(rng, [c.share for c in _CITIES], n)
    bank_idx = _pick(rng, [s for _, s in _BANK_SHARES], n)
    d0 = rng.random(n) < 0.10
    small_micro = rng.random(n) < 0.7
    male = rng.random(n) < 0.55
    local = rng.random(n) < 0.6
    n_terms = np.where(corporate, _pick(rng, (0.3, 0.4, 0.3), n), _pick(rng, (0.75, 0.2, 0.05), n)) + 1
    # Skewed activity: median ~14 a day, a long tail up to ~150+ for the busiest shops.
    activity = np.exp(rng.normal(math.log(14.0), 0.95, n))
    mu_jitter = rng.normal(0.0, 0.2, n)
    sigma_jitter = rng.uniform(0.9, 1.1, n)
    terminals = _unique_numbers(rng, int(n_terms.sum()), 10_000_000, 100_000_000)

    serials: dict[tuple[str, str], int] = {}
    taken_pans: set[str] = set()
    merchants: list[SimMerchant] = []
    t_pos = 0
    for i in range(n):
        biz = _BUSINESSES[int(biz_idx[i])]
        city = _CITIES[int(city_idx[i])]
        district = city.districts[int(rng.integers(len(city.districts)))]
        is_corp = bool(corporate[i])
        serial = serials.get((city.cup_area, biz.mcc), 0) + 1
        if serial > 9999:
            raise ValueError(f"more than 9999 merchants for region {city.cup_area} and MCC {biz.mcc}")
        serials[(city.cup_area, biz.mcc)] = serial
        merchant_no = f"898{city.cup_area}{biz.mcc}{serial:04d}"

        legal_person = str(fake.name_male() if male[i] else fake.name_female())
        if is_corp:
            # Faker's prefixes include digits ("数字100"), which no account name has: written in Chinese numerals.
            prefix = str(fake.company_prefix()).translate(_CN_DIGITS)
            registered_name = f"{city.name}{prefix}{biz.corp_industry}有限公司"
        else:
            suffix = biz.shop_suffixes[int(rng.integers(len(biz.shop_suffixes)))]
            registered_name = f"{district.name}{legal_person}{suffix}"
        bank_code = _BANK_SHARES[int(bank_idx[i])][0]
        pan, info = _pan(rng, debit_bins[bank_code], taken_pans)
        phone = _MOBILE_PREFIXES[int(rng.integers(len(_MOBILE_PREFIXES)))] + f"{int(rng.integers(10**8)):08d}"
        k = int(n_terms[i])
        terms = tuple(f"{t:08d}" for t in terminals[t_pos:t_pos + k])
        t_pos += k
        daily = float(activity[i]) * biz.volume * (1.8 if is_corp else 1.0)
        merchants.append(SimMerchant(
            merchant_no=merchant_no,
            kind="corporate" if is_corp else "personal",
            registered_name=registered_name,
            legal_person=legal_person,
            business=biz.label,
            mcc=biz.mcc,
            city=city.name,
            cycle="D0" if d0[i] else "T1",
            fee_schedule="small_micro" if (small_micro[i] and not is_corp) else "standard",
            holder_name=registered_name if is_corp else legal_person,
            account_kind="corporate" if is_corp else "personal",
            id_number=_id_number(rng, district, bool(male[i]), bool(local[i])),
            phone=phone,
            pan=pan,
            bank_code=info.bank_code,
            bank_name=info.bank_name_zh,
            card_type=info.card_type,
            terminal_nos=terms,
            ticket_mu=round(math.log(biz.ticket_median_yuan) + float(mu_jitter[i]) + (0.2 if is_corp else 0.0), 4),
            ticket_sigma=round(biz.ticket_sigma * float(sigma_jitter[i]), 4),
            daily_txn_mean=round(min(daily, 400.0), 2),
        ))
    return merchants


# --------------------------------------------------------------------------------------------
# Arrow string columns without a Python loop per row


def _string_column(mat: npt.NDArray[np.uint8]) -> pa.ChunkedArray:
    """Each row of an ASCII byte matrix as one string, zero-copy."""
    n, width = mat.shape
    mat = np.ascontiguousarray(mat)
    flat = mat.reshape(-1)
    step = max(1, (2**31 - 1) // max(width, 1))
    chunks = []
    for start in range(0, n, step):
        rows = min(step, n - start)
        offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
        data = flat[start * width:(start + rows) * width]
        chunks.append(pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data)))
    return pa.chunked_array(chunks, type=pa.string())


def _digits_matrix(prefix: str, values: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.uint8]:
    """Rows of ``prefix`` followed by ``values`` zero-padded to ``width`` digits."""
    if values.size and (int(values.min()) < 0 or int(values.max()) >= 10**width):
        raise ValueError(f"values do not fit in {width} digits")
    p = prefix.encode("ascii")
    mat = np.empty((values.shape[0], len(p) + width), dtype=np.uint8)
    if p:
        mat[:, :len(p)] = np.frombuffer(p, dtype=np.uint8)
    v = values.astype(np.int64, copy=True)
    for k in range(width - 1, -1, -1):
        mat[:, len(p) + k] = v % 10 + 48
        v //= 10
    return mat


def _utc_offset_text(day: date, hour: int, zone: ZoneInfo) -> bytes:
    offset = datetime(day.year, day.month, day.day, hour, 30, tzinfo=zone).utcoffset()
    minutes = int((offset or timedelta(0)).total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}".encode("ascii")


def _iso_local_times(day: date, seconds: npt.NDArray[np.int64], tz: str) -> pa.ChunkedArray:
    """ISO 8601 local times with offset ('2026-11-20T12:03:11+08:00') for seconds into ``day``.

    The 86,400 possible strings of the day are built once and picked by row. The offset is
    the one in force at half past each hour (exact for zones without DST, such as Asia/Shanghai).
    """
    zone = ZoneInfo(tz)
    offsets = np.frombuffer(b"".join(_utc_offset_text(day, h, zone) for h in range(24)),
                            dtype=np.uint8).reshape(24, 6)
    sec = np.arange(86_400, dtype=np.int64)
    hh = sec // 3600
    mm = sec // 60 % 60
    ss = sec % 60
    lut = np.empty((86_400, 25), dtype=np.uint8)
    lut[:, :11] = np.frombuffer(f"{day.isoformat()}T".encode("ascii"), dtype=np.uint8)
    for col, part in ((11, hh), (14, mm), (17, ss)):
        lut[:, col] = part // 10 + 48
        lut[:, col + 1] = part % 10 + 48
    lut[:, 13] = lut[:, 16] = ord(":")
    lut[:, 19:25] = offsets[hh]
    return _string_column(lut[seconds])


def _labels(labels: Sequence[str], codes: npt.NDArray[np.int8]) -> pa.Array:
    return pa.array(list(labels), type=pa.string()).take(pa.array(codes))


def _amounts_fen(rng: np.random.Generator, mu: npt.NDArray[np.float64] | np.float64,
                 sigma: npt.NDArray[np.float64] | np.float64, kind: npt.NDArray[np.int8]) -> npt.NDArray[np.int64]:
    """Lognormal ticket amounts in fen, rounded the way shops price (mostly whole yuan).

    Voids, refunds and reversals cancel a sale, so they look like sales but are a little
    smaller on average (the big tickets are rarely cancelled).
    """
    n = int(kind.shape[0])
    yuan: npt.NDArray[np.float64] = rng.standard_normal(n)
    yuan *= sigma
    yuan += mu
    yuan[kind != 0] -= 0.35
    np.exp(yuan, out=yuan)
    style: npt.NDArray[np.float64] = rng.random(n)
    fen = np.rint(yuan * 100)
    whole = style < 0.55
    fen[whole] = np.rint(yuan[whole]) * 100
    half = (style >= 0.55) & (style < 0.75)
    fen[half] = np.rint(yuan[half] * 2) * 50
    return np.clip(fen, 50, 5_000_000).astype(np.int64)


def _hours(rng: np.random.Generator, profile_idx: npt.NDArray[np.int64],
           profiles: Sequence[Sequence[float]]) -> npt.NDArray[np.int64]:
    """Local hour (0..23) per row, drawn from the row's hour profile."""
    n = int(profile_idx.shape[0])
    u: npt.NDArray[np.float64] = rng.random(n)
    hours = np.empty(n, dtype=np.int64)
    for i, weights in enumerate(profiles):  # a loop per profile, not per row
        rows = profile_idx == i
        if not rows.any():
            continue
        cdf: npt.NDArray[np.float64] = np.cumsum(np.asarray(weights, dtype=np.float64))
        cdf /= cdf[-1]
        hours[rows] = np.minimum(np.searchsorted(cdf, u[rows], side="right"), 23)
    return hours


def _sorted_seconds(rng: np.random.Generator, n: int, hours: Sequence[float]) -> npt.NDArray[np.int64]:
    """``n`` seconds of the day (0..86399), already sorted, following an hourly profile."""
    per_second = np.repeat(np.asarray(hours, dtype=np.float64) / 3600.0, 3600)
    counts = rng.multinomial(n, per_second / per_second.sum())
    return np.repeat(np.arange(86_400, dtype=np.int64), counts)


def _ref_column(prefix: str, day: date, start: int, n: int) -> pa.ChunkedArray:
    if start < 0 or start + n - 1 > _MAX_SERIAL:
        raise ValueError(f"reference serials {start}..{start + n - 1} do not fit in 9 digits")
    return _string_column(_digits_matrix(f"{prefix}{day:%Y%m%d}", np.arange(start, start + n, dtype=np.int64), 9))


# --------------------------------------------------------------------------------------------
# customers' card numbers (vectorised)

_U64 = np.uint64


def mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a well-spread 64-bit value for each input (vectorised; arithmetic wraps)."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    out: npt.NDArray[np.uint64] = x ^ (x >> _U64(31))
    return out


@functools.cache
def _customer_bins() -> dict[bool, tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]]:
    """credit? -> (the BINs as digit rows, each BIN's card-number length): the packaged table's debit (DC) and
    credit (CC) prefixes, so that a generated number's BIN names a real bank and the card type of its row."""
    out = {}
    for credit, code in ((False, "DC"), (True, "CC")):
        rows = sorted((b for b in load_packaged_bins() if b.card_type == code and len(b.bin) == 6),
                      key=lambda b: b.bin)
        digits = np.frombuffer("".join(b.bin for b in rows).encode("ascii"), dtype=np.uint8).reshape(-1, 6) - 48
        out[credit] = (digits.astype(np.uint8), np.array([b.length for b in rows], dtype=np.int64))
    return out


def card_numbers(keys: npt.NDArray[np.uint64], credit: npt.NDArray[np.bool_],
                 present: npt.NDArray[np.bool_]) -> pa.Array:
    """The card number of each card key: a real debit or credit BIN (picked by the key), the key's digits, a
    valid Luhn check digit; the same key always gives the same number. Empty where not ``present`` (QR)."""
    n = int(keys.shape[0])
    h = mix64(keys ^ _U64(0x50414E))
    bins = _customer_bins()
    digits = np.zeros((n, 19), dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    for flag in (False, True):
        rows = np.flatnonzero(credit == flag)
        table, lengths = bins[flag]
        pick = (h[rows] % _U64(table.shape[0])).astype(np.int64)
        digits[rows, :6] = table[pick]
        length[rows] = lengths[pick]
    body = ((h >> _U64(8)) % _U64(10**12)).astype(np.int64)  # up to 12 body digits (a 19-digit number)
    body_digits = _digits_matrix("", body, 12).astype(np.int64) - 48
    rows = np.arange(n)
    total = np.zeros(n, dtype=np.int64)
    for c in range(18):  # the body in columns 6 .. length-2, then the Luhn sum over columns 0 .. length-2
        if c >= 6:
            inside = c < length - 1
            digits[:, c] = np.where(inside, body_digits[rows, np.clip(c + 13 - length, 0, 11)], 0)
        d = digits[:, c]
        doubled = d * 2 - np.where(d >= 5, 9, 0)
        total += np.where(c <= length - 2, np.where((length - 2 - c) % 2 == 0, doubled, d), 0)
    digits[rows, length - 1] = (10 - total % 10) % 10
    length = np.where(present, length, 0)
    mask = np.arange(19)[None, :] < length[:, None]
    data = (digits + 48).astype(np.uint8)[mask]
    offsets = np.concatenate(([0], np.cumsum(length))).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data)))


def _customer_cards(rng: np.random.Generator, merchants: Sequence[SimMerchant], mi: npt.NDArray[np.int64],
                    kind: npt.NDArray[np.int8], card: npt.NDArray[np.int8], amount: npt.NDArray[np.int64],
                    day: date, seed: int) -> pa.Array:
    """The card number of every row, and each void / reversal made to cancel a sale of the same merchant that day
    (its amount, card type and card: the sale it cancels; with no sale that day it is a sale itself).

    A card sale is a regular customer's (one of about ``_REGULARS_PER_DAILY_TXN`` × the merchant's daily count,
    the same cards every day) or a walk-in's (a card seen once); a card is used at most :data:`MAX_SAME_CARD`
    times a day at one merchant (more is the 套现 pattern risk's ``same_card`` rule looks for). ``kind``,
    ``card`` and ``amount`` are changed in place."""
    n = int(mi.shape[0])
    salt = mix64(np.array([seed], dtype=np.uint64))[0]
    merchant_key = mix64(np.fromiter((int(x.merchant_no) if x.merchant_no.isdigit() else 0 for x in merchants),
                                     dtype=np.uint64, count=len(merchants)) ^ salt)
    pool = np.fromiter((max(10, int(_REGULARS_PER_DAILY_TXN * x.daily_txn_mean)) for x in merchants),
                       dtype=np.int64, count=len(merchants))
    credit = card == CARD_LABELS.index("credit")
    regular = rng.random(n) < _REGULAR_SHARE
    slot = (rng.random(n) * pool[mi]).astype(np.uint64)
    walk_in = mix64(_U64(day.toordinal()) * _U64(1 << 32) + np.arange(n, dtype=np.uint64) * _U64(4)
                    + credit.astype(np.uint64) * _U64(2) ^ salt)
    keys = np.where(regular, mix64(merchant_key[mi] + slot * _U64(4) + credit.astype(np.uint64) * _U64(2) + _U64(1)),
                    walk_in)
    # at most MAX_SAME_CARD sales per card and day: later sales on a card seen that often are walk-ins
    sale = np.flatnonzero(kind == 0)
    order = sale[np.argsort(keys[sale], kind="stable")]  # rows are in time order: the first uses keep the card
    k = keys[order]
    start = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
    rank = np.arange(order.size) - np.repeat(start, np.diff(np.append(start, order.size)))
    keys[order[rank >= MAX_SAME_CARD]] = walk_in[order[rank >= MAX_SAME_CARD]]
    # voids and reversals cancel a sale of the same merchant (the last before, else the first after)
    by_m = np.lexsort((np.arange(n), mi))
    ms, is_sale = mi[by_m], kind[by_m] == 0
    pos = np.arange(n)
    prev = np.maximum.accumulate(np.where(is_sale, pos, -1))
    nxt = np.minimum.accumulate(np.where(is_sale, pos, n)[::-1])[::-1]
    prev_ok = (prev >= 0) & (ms[np.clip(prev, 0, n - 1)] == ms)
    next_ok = (nxt < n) & (ms[np.clip(nxt, 0, n - 1)] == ms)
    target = np.where(prev_ok, by_m[np.clip(prev, 0, n - 1)], np.where(next_ok, by_m[np.clip(nxt, 0, n - 1)], -1))
    match = np.empty(n, dtype=np.int64)
    match[by_m] = target
    cancel = np.flatnonzero((kind == KIND_LABELS.index("void")) | (kind == KIND_LABELS.index("reversal")))
    lone = cancel[match[cancel] < 0]
    kind[lone] = 0
    cancel = cancel[match[cancel] >= 0]
    amount[cancel] = amount[match[cancel]]
    card[cancel] = card[match[cancel]]
    keys[cancel] = keys[match[cancel]]
    credit = card == CARD_LABELS.index("credit")
    return card_numbers(keys, credit, card != CARD_LABELS.index("qr"))


# --------------------------------------------------------------------------------------------
# transactions


def generate_transactions(merchants: Sequence[SimMerchant], day: date, seed: int, tz: str = "Asia/Shanghai",
                          ref_start: int = 0, *, cards: bool = False) -> pa.Table:
    """One calendar day of POS transactions for ``merchants``, ordered by time.

    ``external_ref`` is 'R' + yyyymmdd + a 9-digit serial counted from ``ref_start``, so
    references are unique across days; use different ``ref_start`` values for two batches
    of the same day. The result depends only on (merchants, day, seed).

    With ``cards``, a last column :data:`CARD_COLUMN` carries each card payment's card number (Luhn-valid, a
    real BIN of its card type; regular customers' cards recur, a card at most :data:`MAX_SAME_CARD` times a day
    at one merchant; empty for QR), and each void or reversal cancels a sale of its merchant that day (same
    amount, same card), as an acquirer's file shows them.
    """
    if seed < 0:
        raise ValueError("seed must not be negative")
    rng = np.random.default_rng([seed, day.toordinal(), 0x5458])
    m = len(merchants)
    biz = np.fromiter((_BUSINESS_INDEX[x.business] for x in merchants), dtype=np.int64, count=m)
    weekend = day.weekday() >= 5
    factor = np.array([b.weekend if weekend else 1.0 for b in _BUSINESSES])
    mean = np.fromiter((x.daily_txn_mean for x in merchants), dtype=np.float64, count=m) * factor[biz]
    counts = rng.poisson(mean)
    n = int(counts.sum())
    mi = np.repeat(np.arange(m, dtype=np.int64), counts)

    seconds = _hours(rng, biz[mi], [b.hours for b in _BUSINESSES]) * 3600 + rng.integers(0, 3600, n)
    order = np.argsort(seconds, kind="stable")
    seconds, mi = seconds[order], mi[order]

    n_terms = np.fromiter((len(x.terminal_nos) for x in merchants), dtype=np.int64, count=m)
    first_term = np.concatenate(([0], np.cumsum(n_terms)[:-1])).astype(np.int64)
    term_idx = first_term[mi] + (rng.random(n) * n_terms[mi]).astype(np.int64)
    all_terms = pa.array([t for x in merchants for t in x.terminal_nos], type=pa.string())
    merchant_nos = pa.array([x.merchant_no for x in merchants], type=pa.string())

    kind = _pick(rng, KIND_SHARES, n).astype(np.int8)
    card = _pick(rng, CARD_SHARES, n).astype(np.int8)
    mu = np.fromiter((x.ticket_mu for x in merchants), dtype=np.float64, count=m)
    sigma = np.fromiter((x.ticket_sigma for x in merchants), dtype=np.float64, count=m)
    amount = _amounts_fen(rng, mu[mi], sigma[mi], kind)
    cap = np.fromiter((_MAX_TICKET_YUAN.get(x.mcc, _DEFAULT_MAX_TICKET_YUAN) * 100 for x in merchants),
                      dtype=np.int64, count=m)[mi]
    over = amount > cap
    amount[over] = cap[over] * (50 + amount[over] % 46) // 10_000 * 100  # 50-95 % of the cap, whole yuan
    card_no = _customer_cards(rng, merchants, mi, kind, card, amount, day, seed) if cards else None

    columns = {
        "external_ref": _ref_column("R", day, ref_start, n),
        "merchant_no": merchant_nos.take(pa.array(mi)),
        "terminal_no": all_terms.take(pa.array(term_idx)),
        "occurred_at": _iso_local_times(day, seconds, tz),
        "kind": _labels(KIND_LABELS, kind),
        "card_type": _labels(CARD_LABELS, card),
        "amount_fen": pa.array(amount, type=pa.int64()),
    }
    if card_no is not None:
        columns[CARD_COLUMN] = card_no
    return pa.table(columns)


def bench_merchant_no(i: int) -> str:
    """Merchant number of the ``i``-th (1-based) benchmark merchant: 'B' + 14 digits."""
    return f"B{i:014d}"


def bench_terminal_no(i: int) -> str:
    """The single terminal of the ``i``-th (1-based) benchmark merchant: 'T' + 7 digits."""
    return f"T{i:07d}"


def generate_bench_transactions(n_rows: int, n_merchants: int, day: date, seed: int) -> pa.Table:
    """``n_rows`` transactions of one day for benchmark merchants 1..``n_merchants``.

    Same columns as :func:`generate_transactions`; merchants are :func:`bench_merchant_no`
    with one terminal each (:func:`bench_terminal_no`); activity is skewed (lognormal);
    references are 'B' + yyyymmdd + 9-digit serial. Fully vectorised: 10 million rows take
    about 5 s and peak at about 1.3 GB of memory.
    """
    if n_rows < 0 or not 1 <= n_merchants <= 9_999_999:
        raise ValueError("need n_rows >= 0 and 1 <= n_merchants <= 9,999,999")
    if seed < 0:
        raise ValueError("seed must not be negative")
    rng = np.random.default_rng([seed, day.toordinal(), 0x4245])
    weights = np.exp(rng.normal(0.0, 1.0, n_merchants))
    counts = rng.multinomial(n_rows, weights / weights.sum())
    mi = np.repeat(np.arange(n_merchants, dtype=np.int64), counts)
    del counts, weights
    rng.shuffle(mi)  # rows are in time order; who sells at which second is random
    seconds = _sorted_seconds(rng, n_rows, _BENCH_HOURS)

    numbers = np.arange(1, n_merchants + 1, dtype=np.int64)
    merchant_col = _string_column(_digits_matrix("B", numbers, 14)[mi])
    terminal_col = _string_column(_digits_matrix("T", numbers, 7)[mi])
    del mi, numbers
    time_col = _iso_local_times(day, seconds, "Asia/Shanghai")
    del seconds
    kind = _pick(rng, KIND_SHARES, n_rows).astype(np.int8)
    card = _pick(rng, CARD_SHARES, n_rows).astype(np.int8)
    amount = _amounts_fen(rng, np.float64(math.log(45.0)), np.float64(0.8), kind)
    return pa.table({
        "external_ref": _ref_column("B", day, 0, n_rows),
        "merchant_no": merchant_col,
        "terminal_no": terminal_col,
        "occurred_at": time_col,
        "kind": _labels(KIND_LABELS, kind),
        "card_type": _labels(CARD_LABELS, card),
        "amount_fen": pa.array(amount, type=pa.int64()),
    })


def _write_csv(table: pa.Table, sink: str | io.BytesIO, header: bool) -> None:
    """Unquoted CSV when no value needs quotes (the usual case), quoted where needed otherwise."""
    try:
        pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(
            include_header=header, quoting_style="none", quoting_header="none"))
    except pa.ArrowInvalid:
        if isinstance(sink, io.BytesIO):
            sink.seek(0)
            sink.truncate()
        pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(
            include_header=header, quoting_style="needed", quoting_header="none"))


def write_transactions_csv(table: pa.Table, path: Path, encoding: str = "utf-8") -> None:
    """Write ``table`` as CSV with a header row (``TRANSACTION_COLUMNS``, then ``card_no`` when it has one).

    UTF-8 is written by Arrow directly; any other encoding (e.g. 'gbk', as many acquirer
    exports are) goes through Python's codec, batch by batch.
    """
    names = [*TRANSACTION_COLUMNS, *([CARD_COLUMN] if CARD_COLUMN in table.column_names else [])]
    table = table.select(names)
    if codecs.lookup(encoding).name == "utf-8":
        _write_csv(table, str(path), header=True)
        return
    with path.open("w", encoding=encoding, newline="") as out:
        header = True
        for batch in table.to_batches(max_chunksize=200_000):
            buf = io.BytesIO()
            _write_csv(pa.Table.from_batches([batch], schema=table.schema), buf, header=header)
            out.write(buf.getvalue().decode("utf-8"))
            header = False
        if header:  # no rows: still write the header
            out.write(",".join(names) + "\n")


# --------------------------------------------------------------------------------------------
# the merchant file (商户入网表, docs/merchants.md): the demo registers its merchants through it

MERCHANT_FILE_COLUMNS = (
    "merchant_no", "registered_name", "kind", "legal_person", "legal_person_id", "uscc", "business", "mcc", "city",
    "contact_mobile", "cycle", "debit_rate", "debit_cap", "credit_rate", "qr_rate", "fee_effective_from",
    "holder_name", "holder_id", "card_no", "bank", "terminal_sn", "terminal_no", "terminal_model",
)
_CONTRACT_RATES = {"standard": ("0.5", "20", "0.6", "0.38"), "small_micro": ("0.45", "18", "0.55", "0.3")}


def demo_uscc(m: SimMerchant) -> str:
    """A valid, unique unified social credit code for a generated company: 91 + the merchant's UnionPay area
    as division code + its MCC and serial as organisation code + the check character (GB 32100)."""
    from stdnum.cn import uscc

    first17 = f"91{m.merchant_no[3:7]}00{m.merchant_no[7:15]}X"
    return first17 + str(uscc.calc_check_digit(first17 + "0"))


def settlement_account(m: SimMerchant, seed: int) -> str:
    """The account a generated merchant registers: its debit card (``pan``) for a person; for a company a
    17-digit corporate account (对公, deterministic), since the 一清 rule settles a company to an account in
    its own name, never to a personal card."""
    if m.kind != "corporate":
        return m.pan
    rng = np.random.default_rng([seed, int(m.merchant_no), 0x434F])
    return "1" + "".join(str(d) for d in rng.integers(0, 10, size=16).tolist())


def merchant_file_rows(merchants: Sequence[SimMerchant], effective_from: date, seed: int) -> list[list[str]]:
    """One row per terminal in the documented layout (English headers, ``MERCHANT_FILE_COLUMNS``): personal
    merchants as 小微 settling to the operator's own debit card, companies as 企业 with a USCC and a
    corporate account (:func:`settlement_account`)."""
    rows: list[list[str]] = []
    for m in merchants:
        corporate = m.kind == "corporate"
        debit, cap, credit, qr = _CONTRACT_RATES[m.fee_schedule]
        head = [m.merchant_no, m.registered_name, "企业" if corporate else "小微", m.legal_person, m.id_number,
                demo_uscc(m) if corporate else "", m.business, m.mcc, m.city, m.phone,
                "D+0" if m.cycle == "D0" else "T+1", debit, cap, credit, qr, effective_from.isoformat(),
                m.holder_name, "" if corporate else m.id_number, settlement_account(m, seed), m.bank_code]
        rows.extend([*head, f"SN{tn}", tn, "PAX A920"] for tn in m.terminal_nos)
    return rows


def write_merchants_csv(merchants: Sequence[SimMerchant], path: Path, effective_from: date, seed: int) -> None:
    """The merchant file of ``merchants`` (UTF-8 CSV), to import with ``settleguard merchants import``."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(MERCHANT_FILE_COLUMNS)
        w.writerows(merchant_file_rows(merchants, effective_from, seed))
