"""Identity numbers of card holders and merchants: resident ID, USCC, mainland mobile numbers.

- 居民身份证号码 (GB 11643-1999, python-stdnum ``cn.ric``): 18 characters, the check character,
  a real birth date (not in the future, not before 1900, plausible age), a known region code;
- 统一社会信用代码 USCC (GB 32100-2015, python-stdnum ``cn.uscc``): 18 characters with check character;
- 手机号码: 11 digits starting 13–19, an optional +86/0086 prefix.

Each check returns a :class:`Checked` with the parsed value (or None) and the problems found.
Problem texts never repeat the number itself (it is personal data). Pure: no clock — pass
``today`` to get the age checks.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Generic, Literal, TypeVar

from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc

from settleguard.cards.model import ID_INVALID, ID_UNDERAGE, MOBILE_INVALID, USCC_INVALID, Problem

T = TypeVar("T")

MAX_AGE = 120
_ID_REGION_UNKNOWN = "id_region_unknown"
_MOBILE_RE = re.compile(r"1[3-9]\d{9}")
_MOBILE_SEPARATORS_RE = re.compile(r"[\s\-()]")


@dataclass(frozen=True)
class Checked(Generic[T]):
    """A parsed value (None when it could not be parsed) and the problems found."""

    value: T | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.value is not None and not any(p.severity == "error" for p in self.problems)


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date
    sex: Literal["M", "F"]
    region: str | None


def _compact(raw: str) -> str:
    return "".join(unicodedata.normalize("NFKC", raw).split()).replace("-", "").upper()


def _id_problem(zh: str, en: str, severity: Literal["error", "warning"] = "error",
                code: str = ID_INVALID) -> Problem:
    return Problem(code, f"身份证号码有误：{zh}", f"resident ID number invalid: {en}", severity)


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def check_resident_id(raw: str, *, today: date | None = None, min_age: int | None = None) -> Checked[ResidentId]:
    """Check a mainland resident ID number; with ``today``, also the holder's age."""
    number = _compact(raw)
    fix_zh, fix_en = "请按身份证原件重新输入。", "Re-enter it from the ID card."
    if len(number) == 15 and number.isdigit():
        return Checked(None, (_id_problem("15 位旧号码已停用，请提供 18 位身份证号码。",
                                          "15-digit numbers of the first-generation ID card are no longer "
                                          "valid; give the 18-character number."),))
    if len(number) != 18:
        return Checked(None, (_id_problem(f"应为 18 位，实际 {len(number)} 位。{fix_zh}",
                                          f"it must have 18 characters, not {len(number)}. {fix_en}"),))
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return Checked(None, (_id_problem(f"前 17 位须为数字，最后一位为数字或 X。{fix_zh}",
                                          f"the first 17 characters must be digits and the last a digit or X. "
                                          f"{fix_en}"),))
    if number[17] != ric.calc_check_digit(number):
        return Checked(None, (_id_problem(f"校验位不符，号码中有输错的数字。{fix_zh}",
                                          f"the check character does not match: a digit is wrong. {fix_en}"),))
    try:  # ric.get_birth_date without its second compact() (the number is compact and checked here)
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return Checked(None, (_id_problem(f"第 7–14 位的出生日期 {number[6:14]} 不是有效日期。{fix_zh}",
                                          f"the birth date {number[6:14]} (characters 7-14) is not a real date. "
                                          f"{fix_en}"),))
    if born.year < 1900:
        return Checked(None, (_id_problem(f"出生日期 {born.isoformat()} 早于 1900 年，不可能。{fix_zh}",
                                          f"the birth date {born.isoformat()} is before 1900. {fix_en}"),))
    problems: list[Problem] = []
    if today is not None:
        if born > today:
            return Checked(None, (_id_problem(f"出生日期 {born.isoformat()} 在未来。{fix_zh}",
                                              f"the birth date {born.isoformat()} is in the future. {fix_en}"),))
        age = _age(born, today)
        if age > MAX_AGE:
            return Checked(None, (_id_problem(f"出生日期 {born.isoformat()} 表示年龄超过 {MAX_AGE} 岁。{fix_zh}",
                                              f"the birth date {born.isoformat()} means an age over {MAX_AGE}. "
                                              f"{fix_en}"),))
        if min_age is not None and age < min_age:
            problems.append(Problem(ID_UNDERAGE, f"持卡人未满 {min_age} 周岁（{age} 岁），请确认其可以作为商户经营者或法人。",
                                    f"the holder is under {min_age} ({age}); confirm they may act as the "
                                    "merchant's operator or legal person.", "warning"))
    region = _region(number[:6], born.year)
    if region is None:
        problems.append(_id_problem(
            "前 6 位地区码不在行政区划代码表中（可能是新设区县），请核对。",
            "the region code (first 6 digits) is not in the administrative division table "
            "(perhaps a new district); check it.", "warning", _ID_REGION_UNKNOWN))
    sex: Literal["M", "F"] = "M" if int(number[16]) % 2 else "F"
    return Checked(ResidentId(number, born, sex, region), tuple(problems))


@functools.lru_cache(maxsize=1 << 16)
def _region(code: str, year: int) -> str | None:
    """The region of a 6-digit division code as assigned in ``year``, or None when unknown.

    Cached: stdnum's table lookup was 60 % of a merchant file import's time, and a file's IDs share a
    few thousand (code, year) pairs. The place depends only on the code and the birth year."""
    try:
        place = ric.get_birth_place(f"{code}{year:04d}0101000")
    except stdnum_errors.ValidationError:
        return None
    return " ".join(v for k in ("province", "prefecture", "county") if (v := place.get(k)))


def check_uscc(raw: str) -> Checked[str]:
    """Check a unified social credit code (统一社会信用代码) of a company or individual business."""
    number = _compact(raw)
    try:
        return Checked(uscc.validate(number))
    except stdnum_errors.InvalidLength:
        why = (f"应为 18 位，实际 {len(number)} 位", f"it must have 18 characters, not {len(number)}")
    except stdnum_errors.InvalidChecksum:
        why = ("校验位不符，有输错的字符", "the check character does not match: a character is wrong")
    except stdnum_errors.ValidationError:
        why = ("含有不允许的字符（不使用 I、O、Z、S、V）或前 8 位格式不对",
               "it contains characters that are not allowed (no I, O, Z, S, V) or the first 8 are malformed")
    return Checked(None, (Problem(USCC_INVALID, f"统一社会信用代码有误：{why[0]}。请按营业执照重新输入。",
                                  f"unified social credit code invalid: {why[1]}. Re-enter it from the business "
                                  "licence."),))


def check_mobile(raw: str) -> Checked[str]:
    """Check a mainland mobile number; the value is the bare 11 digits."""
    number = _MOBILE_SEPARATORS_RE.sub("", unicodedata.normalize("NFKC", raw))
    for prefix in ("+86", "0086"):
        if number.startswith(prefix):
            number = number[len(prefix):]
            break
    else:
        if len(number) == 13 and number.startswith("86"):
            number = number[2:]
    if _MOBILE_RE.fullmatch(number):
        return Checked(number)
    if not number.isdigit():
        why = ("只能包含数字（可带 +86 前缀）", "it may contain only digits (and a +86 prefix)")
    elif len(number) != 11:
        why = (f"应为 11 位，实际 {len(number)} 位", f"it must have 11 digits, not {len(number)}")
    else:
        why = ("须以 13–19 开头", "it must start with 13-19")
    return Checked(None, (Problem(MOBILE_INVALID, f"手机号码有误：{why[0]}。请填写在银行预留的大陆手机号。",
                                  f"mobile number invalid: {why[1]}. Give the mainland mobile number registered "
                                  "with the bank."),))
