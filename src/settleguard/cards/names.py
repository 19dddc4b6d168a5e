"""Holder-name normalisation and comparison (户名核对).

A settlement card must be in the merchant's own name (personal) or the company's name
(corporate); a payout to a card whose account name differs fails at the bank (户名不符).
Names are compared after normalising the ways one name is written differently:

- full-width and half-width forms (``（`` ``)``, ``Ａ``, the ideographic space) via NFKC;
- whitespace: dropped next to Chinese characters, collapsed to one space between Latin words;
- the middle dot of minority names (买买提·艾力): ``· • ・ ･ ‧ ∙ ⋅ ⸱ ﾟ ゜`` and a full stop between
  two Chinese characters all fold to U+00B7 ``·``, without spaces around it;
- Latin letters to upper case (``Zhang San`` = ``ZHANG SAN``);
- traditional characters to simplified (OpenCC ``t2s``): 張偉 = 张伟.

The comparison is exact on the normalised names; rapidfuzz measures how close two different
names are so the reason can say whether it looks like a typo or a different party.

Pure computation; OpenCC's dictionaries are loaded once, on first use.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from opencc import OpenCC
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

MIDDLE_DOT = "\u00b7"
# Look-alikes of the middle dot typed in minority names (before NFKC, which would turn the
# half-width katakana sound mark U+FF9F into a combining character).
_DOT_VARIANTS = "\u00b7\u0387\u2022\u2027\u2219\u22c5\u2e31\u30fb\uff65\uff9f\u309c\u309a\u16eb\u2981"
_DOT_RE = re.compile(f"\\s*[{_DOT_VARIANTS}]+\\s*")
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_CJK_FULL_STOP_RE = re.compile(f"(?<=[{_CJK}])\\s*[.\u3002]\\s*(?=[{_CJK}])")
_SPACE_NEXT_TO_CJK_RE = re.compile(f"(?<=[{_CJK}{MIDDLE_DOT}()])\\s+|\\s+(?=[{_CJK}{MIDDLE_DOT}()])")
_SPACES_RE = re.compile(r"\s+")
_LATIN_RE = re.compile(r"[A-Za-z]")
_CJK_RE = re.compile(f"[{_CJK}]")

# Two different names at least this similar (rapidfuzz ratio, 0-100), or differing in a single
# character, read as a typo of one name rather than another party's name.
SIMILAR_SCORE = 60.0

MatchKind = Literal["exact", "equivalent", "reordered", "dot_only", "contained", "similar", "different", "empty"]


@functools.cache
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def normalize_name(s: str) -> str:
    """The canonical form of a person's or company's name; idempotent."""
    text = _DOT_RE.sub(MIDDLE_DOT, s)
    text = unicodedata.normalize("NFKC", text)
    text = _DOT_RE.sub(MIDDLE_DOT, text)  # NFKC can produce U+30FB from U+FF65
    text = _t2s().convert(text)
    text = _CJK_FULL_STOP_RE.sub(MIDDLE_DOT, text)
    text = _SPACES_RE.sub(" ", text).strip()
    text = _SPACE_NEXT_TO_CJK_RE.sub("", text)
    text = text.strip(" " + MIDDLE_DOT)
    return text.upper()


@dataclass(frozen=True)
class NameMatch:
    """How two names compare.

    Attributes:
        exact: the normalised names are equal.
        score: rapidfuzz similarity of the normalised names, 0 (nothing alike) to 100 (equal).
        ok: the names name the same party (exact, or Latin names whose words differ only in
            order or spacing).
        reason_zh, reason_en: why, for people.
        kind: the case, for programs: exact, equivalent (equal after normalisation), reordered,
            dot_only, contained, similar, different, empty.
    """

    exact: bool
    score: float
    ok: bool
    reason_zh: str
    reason_en: str
    kind: MatchKind = "exact"
    differing_chars: int = 0


def compare_names(a: str, b: str) -> NameMatch:
    """Compare a card holder's name ``a`` with a registered name ``b``."""
    na, nb = normalize_name(a), normalize_name(b)
    if not na or not nb:
        return NameMatch(False, 0.0, False, "姓名/名称为空，无法核对户名", "a name is empty; cannot compare",
                         "empty")
    score = float(fuzz.ratio(na, nb))
    if na == nb:
        if a == b:
            return NameMatch(True, 100.0, True, "户名一致", "names match", "exact")
        return NameMatch(True, 100.0, True, "户名一致（已忽略全半角、空格、间隔号写法、大小写和繁简差异）",
                         "names match (ignoring width, spacing, middle-dot variants, case and traditional "
                         "characters)", "equivalent")
    if _LATIN_RE.search(na) and _LATIN_RE.search(nb) and not _CJK_RE.search(na + nb):
        if na.replace(" ", "") == nb.replace(" ", ""):
            return NameMatch(False, score, True, "户名一致（仅拼写间空格不同）",
                             "names match (only spacing differs)", "reordered")
        if sorted(na.split()) == sorted(nb.split()):
            return NameMatch(False, score, True, "户名一致（姓与名顺序不同）",
                             "names match (surname and given name in a different order)", "reordered")
    if na.replace(MIDDLE_DOT, "") == nb.replace(MIDDLE_DOT, ""):
        return NameMatch(False, score, False,
                         "仅间隔号“·”不同：请按身份证或营业执照上的写法填写（少数民族姓名中的“·”不能省略）",
                         "only the middle dot differs: write the name exactly as on the ID card or business "
                         "licence (the '·' in minority names cannot be left out)", "dot_only")
    distance = Levenshtein.distance(na, nb)
    if na in nb or nb in na:
        return NameMatch(False, score, False,
                         f"一个名称包含另一个（多或少了 {distance} 个字，如缺少“有限公司”或多了店名）；"
                         "户名必须与登记名称完全一致",
                         f"one name contains the other ({distance} characters more or fewer, e.g. a missing "
                         "'Co., Ltd.' or an added shop name); the account name must equal the registered "
                         "name", "contained", distance)
    if distance <= 1 or score >= SIMILAR_SCORE:
        return NameMatch(False, score, False,
                         f"有 {distance} 个字不同（相似度 {score:.0f}%），请核对是否输错字或同音字",
                         f"{distance} character(s) differ (similarity {score:.0f}%); check for a typo or a "
                         "homophone", "similar", distance)
    return NameMatch(False, score, False,
                     f"两个名称完全不同（相似度 {score:.0f}%），不是同一户名",
                     f"the names are different (similarity {score:.0f}%); not the same account holder",
                     "different", distance)


def name_problem(name: str) -> tuple[str, str] | None:
    """Why a holder name cannot be an account name (zh, en), or None when it can."""
    n = normalize_name(name)
    if not n:
        return "户名为空", "the account name is empty"
    if any(ch.isdigit() for ch in n):
        return "户名中含有数字", "the account name contains digits"
    if len(n) < 2:
        return "户名只有一个字", "the account name has a single character"
    bad = [ch for ch in n if not (ch.isalpha() or ch in " ·()&,.'-")]
    if bad:
        return (f"户名中含有不应出现的字符 {''.join(dict.fromkeys(bad))!r}",
                f"the account name contains unexpected characters {''.join(dict.fromkeys(bad))!r}")
    return None
