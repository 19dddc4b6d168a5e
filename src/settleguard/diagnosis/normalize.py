"""Normalising what banks send: codes, free-text messages, and codes embedded in the text.

Message normalisation (what knowledge-base ``patterns`` see), in this order:
NFKC (full-width → half-width) · traditional → simplified (OpenCC t2s, only for non-ASCII text) ·
lower-case · every run of whitespace, punctuation and symbols (ASCII and CJK, and ``_``) folded to one
space · stripped. The result is a fixed point: normalising it again changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, NamedTuple

_FOLD = re.compile(r"[\W_]+")
_converter: Any = None


def _t2s(text: str) -> str:
    global _converter
    if _converter is None:
        import opencc

        _converter = opencc.OpenCC("t2s")
    return str(_converter.convert(text))


def _once(text: str) -> str:
    if text.isascii():
        return _FOLD.sub(" ", text.lower()).strip()
    s = _t2s(unicodedata.normalize("NFKC", text)).lower()
    return _FOLD.sub(" ", s).strip()


def normalize_message(text: str | None) -> str:
    """The normalised form of a free-text message; ``""`` for None or blank text."""
    if not text:
        return ""
    s = _once(text)
    if not s.isascii():
        # lower-casing or t2s can produce characters that NFKC maps further (rare); settle on a fixed point
        for _ in range(3):
            again = _once(s)
            if again == s:
                break
            s = again
    return s


def normalize_code(code: str | None) -> str | None:
    """A code as the knowledge base stores it: NFKC, upper-case, no whitespace; None when blank."""
    if code is None:
        return None
    s = "".join(unicodedata.normalize("NFKC", code).split()).upper()
    return s or None


SCHEME_NAMES = ("iso8583", "iso20022", "iso20022_return", "nacha", "unionpay_acp", "alipay", "wechat_pay",
                 "allinpay", "text")
_SCHEME_ALIASES = {n.replace("_", ""): n for n in SCHEME_NAMES}


def normalize_scheme(scheme: str | None) -> str | None:
    """A scheme name, case-, space-, dash- and underscore-insensitive (``ISO-8583`` → ``iso8583``,
    ``WeChatPay`` → ``wechat_pay``); an unknown name comes back lower-cased; None when blank."""
    if scheme is None:
        return None
    s = scheme.strip().lower()
    if not s:
        return None
    return _SCHEME_ALIASES.get(re.sub(r"[\s_\-]+", "", s), s)


class Embedded(NamedTuple):
    """A code found inside a message, how it was found, and the text around it."""

    code: str
    how: str    # "key" (RESP=3017, 错误码: AC04), "bracket" ([E1031]), "leading" (R02 Account closed), "whole"
    text: str   # the message without the code part (may be "")


_CODE = r"([A-Za-z0-9][A-Za-z0-9_.]{0,39})"
_KEYS = (r"resp(?:onse)?[_ ]?code|resp|rsp[_ ]?code|ret[_ ]?code|rtn[_ ]?code|return[_ ]?code|result[_ ]?code"
         r"|err(?:or)?[_ ]?code|errcode|status[_ ]?code|reason[_ ]?code|sub[_ ]?code|rsn[_ ]?cd|rsn|code|rc"
         r"|返回码|返回代码|错误码|错误代码|错误编码|应答码|响应码|原因码|拒绝码|失败码|代码")
_KEY_VALUE = re.compile(r"(?:^|(?<=[\s|,;&{(\[\"'，；、（【]))(?:" + _KEYS + r")\s*[\"']?\s*[=:：]\s*[\"']?\s*"
                        + _CODE, re.IGNORECASE)
_MSG_KEYS = re.compile(r"(?:^|(?<=[\s|,;&{(\[\"'，；、（【]))(?:resp[_ ]?msg|rsp[_ ]?msg|ret[_ ]?msg|err(?:or)?[_ ]?msg"
                       r"|err[_ ]?code[_ ]?des|errmsg|msg|message|fail[_ ]?reason|reason|desc(?:ription)?"
                       r"|addtl[_ ]?inf|错误信息|返回信息|应答信息|失败原因|原因|描述|信息)\s*[\"']?\s*[=:：]\s*",
                       re.IGNORECASE)
_BRACKET = re.compile(r"[\[【(（<〔]\s*([A-Za-z]{0,8}[0-9][A-Za-z0-9]{0,11}|[A-Z]{2,}(?:_[A-Z0-9]+)*)\s*[\]】)）>〕]")
_LEADING = re.compile(r"^\s*([A-Za-z]{0,8}[0-9]{1,8}[A-Za-z0-9]{0,4}|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)"
                      r"\s*(?:[:：|\-—,，;；]\s*|\s+)(?=\S)")
_WHOLE = re.compile(r"^\s*([A-Za-z]{0,8}[0-9][A-Za-z0-9]*|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)\s*$")


def extract_code(message: str | None) -> Embedded | None:
    """The first code embedded in ``message``: ``[E1031]余额不足``, ``RESP=3017|MSG=账户已冻结``,
    ``错误码: AC04``, ``respCode=14, respMsg=...``, ``R02 Account Closed``, or a message that is only a
    code (``AC04``, ``NOTENOUGH``). None when there is none. Extraction is liberal: a token that is not
    a known code is simply not found in the knowledge base."""
    if not message:
        return None
    text = unicodedata.normalize("NFKC", message) if not message.isascii() else message
    m = _KEY_VALUE.search(text)
    if m:
        rest = text[: m.start()] + " " + text[m.end():]
        mm = _MSG_KEYS.search(rest)
        if mm:
            rest = rest[mm.end():]
        return Embedded(m.group(1).rstrip("."), "key", rest.strip(" |,;&"))
    m = _BRACKET.search(text)
    if m:
        return Embedded(m.group(1), "bracket", (text[: m.start()] + " " + text[m.end():]).strip())
    m = _WHOLE.match(text)
    if m:
        return Embedded(m.group(1), "whole", "")
    m = _LEADING.match(text)
    if m:
        return Embedded(m.group(1), "leading", text[m.end():].strip())
    return None
