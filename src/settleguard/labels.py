"""The words people read for every code settleguard stores: one (zh, en) table per vocabulary. Pure.

Statuses, categories, decisions, roles, priorities, channels and the rest are stored and sent over the
API as stable codes (``held``, ``card_info_error``); people read labels. The CLI, the console, the portal
and the notices take their labels from here, so that no module keeps its own copy and no code is shown
bare. The Chinese words of the domain vocabularies stay with their models (payouts.model.STATUS_ZH, ...);
this module pairs them with English and adds the vocabularies that have no model of their own.

:func:`parse` reads what a person types for a filter (the code, the Chinese or the English label), and
:func:`accepted` lists the accepted values for an error message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from settleguard.payouts.model import STATUS_ZH as PAYOUT_STATUS_ZH

Table = Mapping[str, tuple[str, str]]


def _pairs(words: Mapping[str, str], en: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """(zh, en) per code: the English word given, else the code read as words ("result_unknown" → "result unknown")."""
    return {str(k): (v, (en or {}).get(str(k), str(k).replace("_", " "))) for k, v in words.items()}


PAYOUT_STATUS: Final[Table] = _pairs({str(k): v for k, v in PAYOUT_STATUS_ZH.items()})
# The words below are the ones of cases.model, diagnosis.model and access.model (tests/unit/test_labels.py keeps
# them equal); they are written out here so that the command line does not load the diagnosis knowledge base
# (diagnosis/__init__) only to print a word.
CASE_STATUS: Final[Table] = _pairs({"open": "处理中", "waiting_bank": "等待银行", "waiting_merchant": "等待商户",
                                    "resolved": "已解决", "closed": "已关闭"})
# failure categories of the taxonomy (shared/design/failure-taxonomy.md) and the case categories beyond it
CATEGORY: Final[Table] = _pairs({
    "card_info_error": "银行卡信息错误", "card_status_abnormal": "银行卡状态异常",
    "system_or_network_fault": "系统或网络故障", "limit_exceeded": "超出限额", "verification_failed": "签到或验证失败",
    "insufficient_funds": "余额不足", "risk_or_compliance_block": "风控或合规拦截",
    "transaction_data_error": "交易信息错误", "duplicate": "重复交易", "result_unknown": "结果未明", "unknown": "原因不明",
    "returned": "退票", "repeated_failures": "连续失败", "needs_review": "待复核",
    "unknown_reference": "银行文件含未知参考号", "file_answer_overdue": "文件出款超期未回执", "complaint": "商户投诉",
    "other": "其他"},
    {"unknown": "cause unknown", "unknown_reference": "unknown reference in a bank file"})
# decisions of a diagnosis, plus what an attempt records when the bank paid ("confirm")
DECISION: Final[Table] = _pairs({"retry": "自动重试", "hold": "挂账", "inquire": "先查询", "review": "人工复核",
                                 "split": "拆分付款", "resign_in": "重新签到", "confirm": "确认成功"},
                                {"resign_in": "sign in again", "confirm": "confirmed paid"})
OWNER: Final[Table] = _pairs({"merchant": "商户", "bank": "银行/通道", "platform": "平台", "terminal": "终端"},
                             {"bank": "bank / channel"})
ROLE: Final[Table] = _pairs({"operator": "运营", "support": "客服", "auditor": "审计", "merchant": "商户"})
PRIORITY: Final[Table] = {"p1": ("P1 紧急", "P1 urgent"), "p2": ("P2 高", "P2 high"), "p3": ("P3 普通", "P3 normal"),
                          "p4": ("P4 低", "P4 low")}
CASE_SOURCE: Final[Table] = {"auto": ("自动开单", "opened automatically"), "manual": ("人工开单", "opened by hand")}
PARTY: Final[Table] = _pairs({"bank_support": "银行客服", "platform_hotline": "支付平台热线", "merchant": "商户"},
                             {"platform_hotline": "payment platform hotline"})
METHOD: Final[Table] = _pairs({"phone": "电话", "online": "在线", "on_site": "现场"})
# one try at a payout and what came of it (payout_attempts.kind / outcome)
ATTEMPT_KIND: Final[Table] = {"send": ("发送", "send"), "inquiry": ("查询", "inquiry")}
OUTCOME: Final[Table] = {"succeeded": ("成功", "succeeded"), "failed": ("失败", "failed"),
                         "unknown": ("结果未明", "result unknown")}
# the bank channels a payout goes through (channels.*.name) and the notice channels (notify.model.Channel)
CHANNEL: Final[Table] = {"simulator": ("模拟银行", "simulated bank"), "http_bank": ("银行接口", "bank API"),
                         "webhook": ("回调", "webhook"), "email": ("邮件", "email"), "sms": ("短信", "SMS")}
# what a notice to a merchant is about (notifications.kind): a failure category, or one of these
NOTICE_KIND: Final[Table] = {**CATEGORY, "card_rebound": ("结算卡已更换", "card changed"),
                             "released": ("挂账已解除", "hold lifted"), "paid": ("挂账款项已付出", "held payout paid"),
                             "card_unusable": ("结算卡不可用", "card unusable"),
                             "card_restored": ("结算卡恢复可用", "card usable again")}
DELIVERY: Final[Table] = {"pending": ("待发送", "pending"), "delivering": ("发送中", "delivering"),
                          "delivered": ("已送达", "delivered"), "gave_up": ("已放弃", "gave up")}
# a bank's circuit breaker (payouts.circuit)
CIRCUIT: Final[Table] = {"closed": ("正常出款", "paying normally"), "open": ("已暂停", "paused"),
                         "half_open": ("试探恢复中", "probing")}
# ops alerts (payouts.repository.add_alert)
ALERT_KIND: Final[Table] = {"circuit_open": ("银行熔断暂停", "bank paused (circuit open)"),
                            "card_key": ("卡号密钥问题", "card key problem"),
                            "unknown_reference": ("银行文件含未知参考号", "unknown reference in a bank file"),
                            "conflicting_report": ("银行回执相互矛盾", "conflicting bank report"),
                            "file_answer_overdue": ("文件出款超期未回执", "file answer overdue")}
LANGUAGE: Final[Table] = {"zh": ("中文", "Chinese"), "en": ("英文", "English")}
CARD_KIND: Final[Table] = {"personal": ("对私", "personal"), "corporate": ("对公", "corporate")}
# a merchant (merchants.model: MerchantStatus, STATUS_NAMES) and its settlement cards (AccountStatus)
MERCHANT_STATUS: Final[Table] = {"active": ("正常", "active"), "frozen": ("冻结", "frozen"), "closed": ("已注销", "closed")}
ACCOUNT_STATUS: Final[Table] = {"active": ("使用中", "in use"), "replaced": ("已更换", "replaced"),
                                "unusable": ("不可用", "unusable")}
CARD_EVENT: Final[Table] = {"card_bound": ("绑定结算卡", "card bound"), "card_rebound": ("更换结算卡", "card re-bound"),
                            "status_changed": ("银行卡状态变化", "card status changed"),
                            "marked_unusable": ("标记为不可用", "marked unusable"),
                            "reactivated": ("恢复可用", "usable again")}
VERIFICATION_KIND: Final[Table] = {"four_elements": ("四要素验证", "four-element check"),
                                   "status": ("卡状态查询", "card status inquiry")}
VERIFICATION_RESULT: Final[Table] = {"match": ("一致", "match"), "mismatch": ("不一致", "mismatch"),
                                     "card_problem": ("卡片问题", "card problem"), "error": ("银行未应答", "bank error"),
                                     "refused": ("未通过检查", "refused"),
                                     "normal": ("正常", "normal"), "lost": ("挂失", "lost"), "stolen": ("被窃", "stolen"),
                                     "frozen": ("冻结", "frozen"), "closed": ("已销户", "closed"),
                                     "restricted": ("止付或受限", "restricted"), "dormant": ("睡眠户", "dormant"),
                                     "expired": ("已过期", "expired")}
CARD_TYPE: Final[Table] = {"DC": ("借记卡", "debit card"), "CC": ("信用卡", "credit card"),
                           "SCC": ("准贷记卡", "semi-credit card"), "PC": ("预付卡", "prepaid card")}
AGEING: Final[Table] = {"0-1d": ("1 天内", "under 1 day"), "1-3d": ("1-3 天", "1-3 days"),
                        "3-7d": ("3-7 天", "3-7 days"), "7d+": ("7 天以上", "over 7 days")}
SLA: Final[Table] = {"overdue": ("已超时", "overdue"), "today": ("今日到期", "due today"), "later": ("之后到期", "later")}
# reconciliation breaks (reconciliation/breaks.BreakType) and their status
RECON_BREAK_TYPE: Final[Table] = {"bank_only": ("银行有、账上无", "bank only"),
                                  "ledger_only": ("账上已付、银行未记账", "ledger only"),
                                  "amount_mismatch": ("金额不符", "amount mismatch"),
                                  "duplicate_debit": ("银行重复扣款", "duplicate debit"),
                                  "reversal": ("银行冲正", "reversal"), "balance_drift": ("余额不平", "balance drift")}
RECON_BREAK_STATUS: Final[Table] = {"open": ("未解决", "open"), "cleared": ("已自动消除", "cleared"),
                                    "resolved": ("已处理", "resolved")}


def pair(table: Table, code: object) -> tuple[str, str]:
    """(zh, en) for ``code``; an unknown code reads as itself in both languages, "-" for none."""
    if code is None:
        return ("-", "-")
    return table.get(str(code), (str(code), str(code)))


def label(table: Table, code: object, lang: str) -> str:
    """The word for ``code`` in ``lang`` ("zh" or "en"); the code itself when unknown, "-" for none."""
    zh, en = pair(table, code)
    return en if lang == "en" else zh


def zh_en(table: Table, code: object, empty: str = "") -> str:
    """'挂账 held': the Chinese label then the English one (once when they are the same; 'P3 普通 normal' when
    they start with the same word); ``empty`` for none."""
    if code is None or code == "":
        return empty
    zh, en = pair(table, code)
    if zh == en:
        return zh
    head = zh.split(" ", 1)[0]
    return f"{zh} {en.removeprefix(head + ' ')}" if " " in zh and en.startswith(head + " ") else f"{zh} {en}"


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().casefold())


def parse(table: Table, text: str) -> str | None:
    """The code a person means by ``text``: the code, its Chinese or English label, or both ("挂账 held");
    case, spaces, "-" and "_" do not matter. None when nothing matches."""
    wanted = _key(text)
    if not wanted:
        return None
    for code, (zh, en) in table.items():
        if wanted in (_key(code), _key(zh), _key(en), _key(f"{zh} {en}")):
            return code
    return None


def accepted(table: Table, codes: Iterable[str] | None = None) -> str:
    """'挂账 held, 失败 failed, …' — the values a filter accepts, for an error message."""
    return "、".join(f"{zh}（{code}）" if zh != code else code
                     for code, (zh, _en_word) in table.items() if codes is None or code in set(codes))


_RUN = re.compile(r"^settlement run (\d+) \((\d{4}-\d{2}-\d{2})\)$")
_ATTEMPT = re.compile(r"^attempt (\d+) via (\S+)$")
_CODE_IN_PARENS = re.compile(r"\(([a-z_]+)\)")


def event_reason(reason: str) -> str:
    """A payout event's stored reason as people read it: the settlement run and channel named in words, a
    category code in parentheses replaced by its labels. Other text is returned unchanged."""
    if m := _RUN.match(reason):
        return f"{m[2]} 结算批次 #{m[1]} 生成 created by settlement run #{m[1]} ({m[2]})"
    if m := _ATTEMPT.match(reason):
        zh, en = pair(CHANNEL, m[2])
        return f"第 {m[1]} 次发送，经{zh} attempt {m[1]}, sent via {en}"
    return _CODE_IN_PARENS.sub(lambda c: f"({zh_en(CATEGORY, c[1])})" if c[1] in CATEGORY else c[0], reason)
