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
    "risk_alert": "风险预警", "recon_break": "对账差错", "other": "其他"},
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
                            "recon_break": ("对账差错超期未解决", "reconciliation break open too long"),
                            "file_answer_overdue": ("文件出款超期未回执", "file answer overdue"),
                            # the day's cycle (daycycle/, issue 23 item 7)
                            "file_late": ("文件迟到", "file late"),
                            "day_not_settled": ("营业日未结算", "business day not settled")}
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
                                  "reversal": ("银行冲正", "reversal"), "balance_drift": ("余额不平", "balance drift"),
                                  # clearing reconciliation (reconciliation/clearing_matching.py)
                                  "clearing_long": ("长款（银联有、我方无）", "clearing long: network only"),
                                  "clearing_short": ("短款（我方有、银联无）", "clearing short: ours only"),
                                  "clearing_amount_mismatch": ("清算金额不符", "clearing amount mismatch"),
                                  "clearing_fee_mismatch": ("清算手续费不符", "clearing fee mismatch"),
                                  "clearing_total_mismatch": ("清算汇总不符", "clearing summary mismatch")}
RECON_BREAK_STATUS: Final[Table] = {"open": ("未解决", "open"), "cleared": ("已自动消除", "cleared"),
                                    "resolved": ("已处理", "resolved")}
# terminal registry and checks (terminals/checks.py): health, owners, steps, findings' status, telemetry words
TERMINAL_HEALTH: Final[Table] = {"ok": ("正常", "healthy"), "warning": ("需关注", "needs attention"),
                                 "fault": ("故障", "fault"), "unknown": ("无遥测", "no telemetry")}
TERMINAL_OWNER: Final[Table] = {"merchant": ("商户", "merchant"), "field_engineer": ("现场工程师", "field engineer"),
                                "acquirer_ops": ("收单运维", "acquirer ops")}
TERMINAL_STEP: Final[Table] = {"restart": ("重启终端", "restart the terminal"),
                               "another_network": ("换一个网络", "try another network"),
                               "network_params": ("更新网络参数", "update the network parameters"),
                               "re_sign_in": ("重新签到", "sign in again"),
                               "update_firmware": ("升级固件/应用", "update the firmware / app"),
                               "load_paper": ("装打印纸", "load paper"), "charge": ("充电", "charge the battery"),
                               "contact_service": ("联系客服报修", "contact service"),
                               "report_move": ("报备移机", "report the move")}
TERMINAL_EVENT: Final[Table] = {"add": ("登记", "registered"), "move": ("移机", "moved"), "replace": ("换机", "replaced"),
                                "retire": ("撤机", "retired"), "import": ("TMS 导入", "TMS import"),
                                "heartbeat": ("终端上报", "posted")}
TERMINAL_FINDING_STATUS: Final[Table] = {"open": ("未解决", "open"), "closed": ("已消除", "closed")}
COMM_TYPE: Final[Table] = {"4g": ("4G 移动网络", "4G"), "wifi": ("Wi-Fi", "Wi-Fi"), "ethernet": ("有线网络", "Ethernet")}
PRINTER_STATE: Final[Table] = {"ok": ("正常", "ok"), "no_paper": ("缺纸", "out of paper"), "fault": ("故障", "fault")}
TIMELINE_KIND: Final[Table] = {"event": ("登记变更", "registry change"), "heartbeat": ("心跳", "heartbeat"),
                               "finding_opened": ("发现问题", "finding opened"),
                               "finding_closed": ("问题消除", "finding closed")}
TERMINAL_FINDING: Final[Table] = {
    "ip_config_invalid": ("IP、掩码与网关不一致", "IP, mask and gateway inconsistent"),
    "ip_out_of_range": ("IP 不在允许网段内", "IP outside the allowed ranges"), "no_dns": ("未设置 DNS", "no DNS server"),
    "wrong_host": ("主机地址不是收单机构的", "host not the acquirer's"), "weak_signal": ("信号弱", "weak signal"),
    "frequent_reconnects": ("频繁断线重连", "frequent reconnections"), "high_latency": ("回响延迟高", "high echo latency"),
    "packet_loss": ("回响丢包", "echo packet loss"), "firmware_outdated": ("固件版本过低", "firmware below the minimum"),
    "firmware_known_bad": ("固件为已知问题版本", "firmware on a known-bad version"),
    "app_outdated": ("支付应用版本过低", "payment app below the minimum"),
    "app_known_bad": ("支付应用为已知问题版本", "payment app on a known-bad version"),
    "low_battery": ("电量低", "low battery"), "printer_no_paper": ("打印机缺纸", "printer out of paper"),
    "printer_fault": ("打印机故障", "printer fault"), "tamper": ("防拆触发", "tamper triggered"),
    "silent_no_heartbeat": ("终端长时间无心跳", "no heartbeat for days"),
    "silent_no_transactions": ("终端长时间无交易", "no transaction for days"),
    "moved": ("终端位置偏离登记地址（疑似移机）", "terminal far from its registered location (moved?)"),
    # message-log findings (terminals.analysis.KINDS; stored by `terminals analyze-log --store`)
    "sign_in_failed": ("签到失败", "sign-in failed"),
    "no_sign_in": ("未签到即交易", "sales before a successful sign-in"),
    "sale_timeout": ("消费无应答（通讯超时）", "sale without a response (timeout)"),
    "no_response": ("请求无应答", "request without a response"),
    "reversal_sent": ("终端发起冲正", "the terminal sent a reversal"),
    "key_error": ("密钥校验错误", "key error (MAC / PIN)"),
    "terminal_not_registered": ("终端未登记", "terminal not registered"),
    "cut_over": ("系统日切中", "cut-over in progress"),
    "duplicate": ("重复交易", "duplicate transaction"),
    "switch_fault": ("交换中心异常", "switch fault"),
    "issuer_timeout": ("发卡行超时", "issuer timeout"),
    "reconcile_error": ("对账错误", "reconciliation error"),
    "declined": ("交易被拒（持卡人原因）", "declined (cardholder side)"),
    "unknown_response_code": ("未知应答码", "unknown response code"),
    "settlement_unbalanced": ("批结算对账不平", "batch settlement not balanced"),
    "settlement_error": ("批结算对账出错", "batch settlement error"),
    "batch_upload_incomplete": ("批上送中断", "batch upload interrupted"),
    "echo_failed": ("回响测试失败（网络）", "echo test failed (network)"),
    "parameter_download_failed": ("参数下载失败", "parameter download failed"),
    "data_mismatch": ("终端与主机交易数据不一致", "transaction data disagree (terminal vs host)"),
    "import_mismatch": ("报文与已导入交易不一致", "log and imported transactions disagree"),
    "unknown_message": ("未知报文类型", "unknown message type"),
    "undecodable": ("无法解析的日志行", "unreadable log line"),
}
# 差错处理 (reconciliation/resolve.py): what a resolution does, its maker-checker status, a receivable's state
RECON_ACTION: Final[Table] = {
    "bank_receivable": ("向银行追索（应收银行款）", "receivable from the bank"),
    "write_off": ("核销为损失", "write off"), "adjust": ("差额调整", "adjust the difference"),
    "hold": ("按退票挂账", "hold as for a return"), "note": ("仅记录说明（不动资金）", "note only (no money moved)"),
    "adjust_txn": ("补记调整交易（下一周期结算出款）", "adjustment transaction (settled and paid next cycle)"),
    "reverse_txn": ("冲正我方交易（下一周期扣回）", "reverse our transaction (netted next cycle)"),
    "refund_matched": ("银行退款已入账（自动）", "bank refund booked (automatic)")}
RECON_RESOLUTION_STATUS: Final[Table] = {"proposed": ("待复核", "awaiting approval"),
                                         "approved": ("已批准", "approved"), "rejected": ("已驳回", "rejected")}
RECON_RECEIVABLE_STATUS: Final[Table] = {"open": ("待银行退款", "awaiting the bank's refund"),
                                         "settled": ("银行已退款", "refunded by the bank")}

# risk (risk/): whether a merchant's payouts are on an operator's risk hold
RISK_HOLD: Final[Table] = {"active": ("风控暂停出款中", "payouts on risk hold"), "released": ("已解除", "released")}
# the default rules of risk/rules.toml by id (an operator's rule file may rename them or add more: the console and
# the API take the loaded rule set's names first, these for a rule no longer in it)
RISK_RULE: Final[Table] = {
    "round_amounts": ("整数金额占比高", "many round amounts"),
    "night_sales": ("凌晨交易占比高", "many sales between midnight and 5 a.m."),
    "credit_heavy": ("信用卡交易占比异常高", "almost only credit cards"),
    "same_card": ("同一张卡当日多次交易", "the same card several times a day"),
    "just_under_limit": ("金额贴近限额", "amounts just under a limit"),
    "unmatched_refunds": ("无对应消费的退货或撤销", "refunds or voids without a matching sale"),
    "mcc_ticket": ("单笔金额与行业不符", "tickets out of line with the MCC"),
    "volume_spike": ("交易额较自身基线激增", "volume spike against its own baseline"),
    "count_spike": ("交易笔数较自身基线激增", "count spike against its own baseline"),
    "volume_drop": ("交易额较自身基线骤降", "volume drop against its own baseline"),
    "silence": ("活跃后突然无交易", "silent after activity"),
    "reactivated": ("沉寂后突然活跃", "busy after a long silence")}

# self-service troubleshooter (troubleshoot/model.py): the symptoms a merchant picks, the checks, their outcomes
TROUBLESHOOT_SYMPTOM: Final[Table] = {
    "money_not_arrived": ("钱没到账", "money not arrived"), "settlement_failed": ("结算失败", "settlement failed"),
    "sign_in_failed": ("签到失败", "sign-in failed"), "cannot_connect": ("连不上网", "cannot connect"),
    "check_code_mismatch": ("凭证校验码不一致", "voucher check code mismatch"),
    "balance_debited": ("余额不足/被扣款", "insufficient balance / debited")}
TROUBLESHOOT_CHECK: Final[Table] = {
    "payouts": ("结算款状态", "payout status"), "card": ("结算卡状态", "settlement card"),
    "terminals": ("终端检查", "terminal checks"), "failures": ("近期失败", "recent failures"),
    "recon": ("对账差错", "reconciliation breaks")}
TROUBLESHOOT_OUTCOME: Final[Table] = {"ok": ("正常", "ok"), "warn": ("需留意", "needs attention"),
                                      "fail": ("有问题", "problem found")}
# the inbox (收件目录, inbox/): what a dropped file was and what became of it
INBOX_KIND: Final[Table] = {
    "transactions": ("交易明细文件", "transaction file"), "merchants": ("商户入网文件", "merchant file"),
    "pain002": ("付款状态报告 pain.002", "payment status report pain.002"),
    "camt054": ("借贷通知/退票 camt.054", "debit/credit notification camt.054"),
    "camt053": ("银行对账单 camt.053", "bank statement camt.053"),
    "bank_file": ("银行代付结果文件", "bank payout result file"),
    "clearing_inn": ("银联清算明细 INN", "UnionPay clearing detail INN"),
    "clearing_rd": ("银联清算汇总 RD", "UnionPay clearing summary RD"), "tms": ("TMS 终端导出", "TMS terminal export")}
INBOX_STATUS: Final[Table] = {"done": ("已导入", "imported"), "rejected": ("已拒绝", "rejected"),
                              "duplicate": ("重复文件，未更改", "duplicate, nothing changed"),
                              "processing": ("处理中", "processing")}

# card key rotation (cards/key_rotation.py: card_key_rotations.phase) and where the key comes from (key_source.py)
KEY_ROTATION_PHASE: Final[Table] = {
    "new_key": ("写入新密钥", "writing the new key"), "reencrypting": ("重新加密中", "re-encrypting"),
    "finishing": ("改写密钥文件", "rewriting the key file"), "done": ("已完成", "done")}
KEY_SOURCE: Final[Table] = {"file": ("密钥文件", "key file"), "environment": ("环境变量", "environment"),
                            "command": ("密钥命令", "key command")}


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
