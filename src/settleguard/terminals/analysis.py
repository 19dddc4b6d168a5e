"""From a terminal's decoded messages to findings (终端报文诊断): pure, no I/O, no clock.

Requests (TX) are paired with their responses (RX, MTI + 10, same terminal and trace number); what the pairs
and the requests left without an answer show becomes a :class:`Finding` with the messages as evidence. The
kinds, their words and guidance are in :data:`KINDS`, who acts in :data:`OWNER_STEPS`; response codes by
meaning in :data:`RESPONSE_CODES`. A settlement's totals (0500 field 48) are compared with the host's approved,
not reversed transactions of the batch in the log (:class:`_Book`), transaction by transaction against the
terminal's batch upload; :func:`compare_with_imported` does the same against the database's imported
transactions. docs/terminals.md lists them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Final, NamedTuple

from settleguard.money import format_yuan
from settleguard.terminals.model import (
    BATCH_UPLOAD_END,
    ECHO,
    PARAMETER_DOWNLOAD,
    SIGN_OFF,
    SIGN_ON,
    BadLine,
    Difference,
    Finding,
    ImportedTxn,
    Message,
    Totals,
)

DEFAULT_TIMEOUT: Final = timedelta(seconds=60)
# the message types of a CUP POS conversation; another MTI is reported (unknown_message), never paired
KNOWN_MTIS: Final = frozenset({"0800", "0810", "0820", "0830", "0200", "0210", "0220", "0230", "0400", "0410",
                               "0500", "0510", "0320", "0330", "0620", "0630"})
SALE_MTIS: Final = frozenset({"0200", "0220"})
# fields a response must repeat from its request (when both carry them): name, field
ECHOED_FIELDS: Final = (("amount", "4"), ("trace", "11"), ("pan", "2"), ("processing_code", "3"),
                        ("terminal_id", "41"), ("merchant_id", "42"))


class Kind(NamedTuple):
    severity: str
    category: str
    title_zh: str
    title_en: str
    merchant_zh: str
    merchant_en: str
    ops_zh: str
    ops_en: str


_RESIGN = ("请在终端上重新签到；仍失败请联系收单机构更新密钥。", "Sign in again on the terminal; if it still fails, "
           "ask the acquirer to update the keys.")
_NETWORK = ("检查网络（信号、网线或 Wi-Fi），重启终端后重试；可换一个网络。", "Check the network (signal, cable or "
            "Wi-Fi), restart the terminal and try again; try another network.")

KINDS: Final[dict[str, Kind]] = {
    "sign_in_failed": Kind(
        "high", "verification_failed", "签到失败", "sign-in failed", *_RESIGN,
        "核对终端主密钥与工作密钥：MAC 校验错（A0）或 PIN 格式错（99）需重新下载主密钥后签到。",
        "Check the terminal's master and working keys: a MAC error (A0) or PIN format error (99) needs a "
        "master key download, then a new sign-in."),
    "no_sign_in": Kind(
        "medium", "verification_failed", "未签到即交易", "sales before a successful sign-in", *_RESIGN,
        "确认终端当日签到成功后再交易；检查签到失败的原因。",
        "Make sure the terminal signs in before sales; look into why the sign-in failed."),
    "sale_timeout": Kind(
        "high", "system_or_network_fault", "消费无应答（通讯超时）", "sale without a response (timeout)",
        "不要重复刷卡，先查询该笔交易结果；" + _NETWORK[0], "Do not swipe again: check that sale's result first. "
        + _NETWORK[1],
        "核对冲正是否成功、主机是否收到该笔交易；检查终端通讯参数（主机地址、端口）与线路。",
        "Check that the reversal succeeded and whether the host got the sale; check the terminal's host address, "
        "port and line."),
    "no_response": Kind(
        "medium", "system_or_network_fault", "请求无应答", "request without a response", *_NETWORK,
        "检查主机与终端之间的线路和主机状态。", "Check the line between terminal and host and the host's state."),
    "reversal_sent": Kind(
        "low", "result_unknown", "终端发起冲正", "the terminal sent a reversal",
        "冲正后如持卡人已扣款，将自动退回；如有疑问请联系客服。",
        "After a reversal a debited cardholder is refunded; call support when in doubt.",
        "核对冲正应答与原交易状态。", "Check the reversal's answer and the original sale's state."),
    "key_error": Kind(
        "high", "verification_failed", "密钥校验错误", "key error (MAC / PIN)", *_RESIGN,
        "工作密钥不一致：重新签到；仍失败则重新下载主密钥。",
        "The working keys disagree: sign in again; if it still fails, download the master key again."),
    "terminal_not_registered": Kind(
        "high", "verification_failed", "终端未登记", "terminal not registered",
        "请联系收单机构确认终端号与商户号已开通。", "Ask the acquirer to confirm the terminal and merchant numbers "
        "are registered.",
        "在主机侧登记该终端（终端号、商户号），核对终端参数。",
        "Register the terminal on the host (terminal and merchant numbers) and check its parameters."),
    "cut_over": Kind(
        "low", "system_or_network_fault", "系统日切中", "cut-over in progress",
        "系统正在日切，请稍等几分钟后重试。", "The system is cutting over: wait a few minutes and try again.",
        "日切时间过长时检查主机日切作业。", "If the cut-over lasts long, check the host's cut-over job."),
    "duplicate": Kind(
        "medium", "duplicate", "重复交易", "duplicate transaction",
        "不要重复刷卡；先查询原交易是否成功。", "Do not swipe again: check whether the first sale succeeded.",
        "核对流水号与批次号是否重复使用（终端参数被重置？）。",
        "Check whether trace or batch numbers were reused (terminal parameters reset?)."),
    "switch_fault": Kind(
        "high", "system_or_network_fault", "交换中心异常", "switch fault", "稍后重试；多次失败请联系收单机构。",
        "Try again later; call the acquirer if it keeps failing.",
        "联系银联/交换中心确认故障与恢复时间。", "Ask UnionPay / the switch about the fault and when it ends."),
    "issuer_timeout": Kind(
        "medium", "system_or_network_fault", "发卡行超时", "issuer timeout",
        "请持卡人稍后重试或换一张卡；不要重复扣款，先查询结果。",
        "Ask the cardholder to try later or use another card; check the result before charging again.",
        "关注该发卡行的超时率，必要时发起查询。", "Watch that issuer's timeouts; query the results when needed."),
    "reconcile_error": Kind(
        "high", "transaction_data_error", "对账错误", "reconciliation error", "请重新结算；仍失败请联系收单机构。",
        "Settle again; call the acquirer if it still fails.",
        "核对终端与主机该批次的交易。", "Compare the terminal's and the host's transactions of that batch."),
    "declined": Kind(
        "low", "card_status_abnormal", "交易被拒（持卡人原因）", "declined (cardholder side)",
        "请持卡人换卡或联系发卡行。", "Ask the cardholder to use another card or call their bank.",
        "无需处理，除非同一终端集中出现。", "Nothing to do unless it clusters on one terminal."),
    "unknown_response_code": Kind(
        "medium", "unknown", "未知应答码", "unknown response code", "请联系收单机构客服。",
        "Call the acquirer's support.", "查明该应答码的含义并补充到规则表。",
        "Find out what the code means and add it to the table."),
    "settlement_unbalanced": Kind(
        "high", "transaction_data_error", "批结算对账不平", "batch settlement not balanced",
        "保持终端开机联网，等待批上送完成；不要清除终端流水。",
        "Keep the terminal on and online until the batch upload is done; do not clear its journal.",
        "对比终端批次与主机交易，找出缺失、多出和金额不同的交易。",
        "Compare the terminal's batch with the host's transactions: missing, extra and different ones."),
    "settlement_error": Kind(
        "high", "transaction_data_error", "批结算对账出错", "batch settlement error", "请重新结算；仍失败请联系收单机构。",
        "Settle again; call the acquirer if it still fails.",
        "检查结算报文 48 域的总额与笔数。", "Check the totals and counts in the settlement's field 48."),
    "batch_upload_incomplete": Kind(
        "high", "system_or_network_fault", "批上送中断", "batch upload interrupted",
        "保持终端联网，重新结算以继续批上送。", "Keep the terminal online and settle again to resume the upload.",
        "确认主机收到全部批上送明细。", "Make sure the host received the whole batch upload."),
    "echo_failed": Kind(
        "medium", "system_or_network_fault", "回响测试失败（网络）", "echo test failed (network)", *_NETWORK,
        "检查终端到主机的链路、延迟与丢包。", "Check the link from terminal to host, its latency and loss."),
    "parameter_download_failed": Kind(
        "medium", "system_or_network_fault", "参数下载失败", "parameter download failed",
        "重启终端后重新签到以下载参数。", "Restart the terminal and sign in again to download the parameters.",
        "核对主机侧终端参数配置。", "Check the terminal's parameters on the host."),
    "data_mismatch": Kind(
        "high", "transaction_data_error", "终端与主机交易数据不一致", "transaction data disagree (terminal vs host)",
        "以收单机构记录为准：核对小票上的金额、参考号和凭证校验码（授权码），不一致请联系收单机构，不要重复收款。",
        "The acquirer's record counts: check the amount, reference number and authorisation code on the receipt; "
        "if they differ, call the acquirer and do not charge again.",
        "核对该笔交易在终端与主机的金额、流水号、参考号和授权码；检查终端应用版本与报文组包。",
        "Compare the transaction's amount, trace number, RRN and authorisation code on terminal and host; check the "
        "terminal application's version and how it builds messages."),
    "import_mismatch": Kind(
        "high", "transaction_data_error", "报文与已导入交易不一致", "log and imported transactions disagree",
        "无需操作；收单机构正在核对该终端当日交易。", "Nothing to do: the acquirer is checking the terminal's day.",
        "对比主机报文与交易导入文件：报文有而导入缺失的补导入，导入有而报文无的查明来源，数据不同的以主机为准更正。",
        "Compare the host's messages with the transaction import: import what is missing, trace what only the "
        "import has, correct what differs from the host."),
    "unknown_message": Kind(
        "low", "unknown", "未知报文类型", "unknown message type", "无需处理。", "Nothing to do.",
        "查明该报文类型（MTI）的来源；规范未覆盖时补充到 cup_spec。",
        "Find out where that message type (MTI) comes from; add it to cup_spec if it is legitimate."),
    "undecodable": Kind(
        "low", "unknown", "无法解析的日志行", "unreadable log line", "无需处理。", "Nothing to do.",
        "检查日志来源与格式（docs/terminals.md）。", "Check where the log comes from and its format (docs/terminals.md)."),
}

# who acts first (merchant, field_engineer, acquirer_ops) and the seed's steps (the step codes of terminals.checks)
OWNER_STEPS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "sign_in_failed": ("merchant", ("re_sign_in", "contact_service")),
    "no_sign_in": ("merchant", ("re_sign_in",)),
    "sale_timeout": ("merchant", ("another_network", "restart")),
    "no_response": ("merchant", ("another_network", "restart")),
    "reversal_sent": ("acquirer_ops", ()),
    "key_error": ("merchant", ("re_sign_in", "contact_service")),
    "terminal_not_registered": ("acquirer_ops", ("contact_service",)),
    "cut_over": ("merchant", ()),
    "duplicate": ("acquirer_ops", ("contact_service",)),
    "switch_fault": ("acquirer_ops", ()),
    "issuer_timeout": ("acquirer_ops", ()),
    "reconcile_error": ("acquirer_ops", ("contact_service",)),
    "declined": ("merchant", ()),
    "unknown_response_code": ("acquirer_ops", ("contact_service",)),
    "settlement_unbalanced": ("acquirer_ops", ()),
    "settlement_error": ("acquirer_ops", ("contact_service",)),
    "batch_upload_incomplete": ("merchant", ("another_network",)),
    "echo_failed": ("merchant", ("another_network", "restart")),
    "parameter_download_failed": ("merchant", ("restart", "re_sign_in")),
    "data_mismatch": ("acquirer_ops", ("contact_service",)),
    "import_mismatch": ("acquirer_ops", ()),
    "unknown_message": ("acquirer_ops", ()),
    "undecodable": ("acquirer_ops", ()),
}

# response code -> (kind, zh, en)
RESPONSE_CODES: Final[dict[str, tuple[str, str, str]]] = {
    "A0": ("key_error", "MAC 校验错，请重新签到", "MAC error, sign in again"),
    "99": ("key_error", "PIN 格式错，请重新签到", "PIN format error, sign in again"),
    "97": ("terminal_not_registered", "终端未登记", "terminal not registered"),
    "96": ("switch_fault", "交换中心异常", "switch malfunction"),
    "98": ("issuer_timeout", "发卡方超时", "issuer timed out"),
    "91": ("issuer_timeout", "发卡方不能操作", "issuer unavailable"),
    "90": ("cut_over", "系统日切", "cut-over in progress"),
    "94": ("duplicate", "重复交易", "duplicate transaction"),
    "95": ("reconcile_error", "对账错误", "reconcile error"),
    "03": ("terminal_not_registered", "无效商户", "invalid merchant"),
    "05": ("declined", "不予承兑", "do not honour"),
    "14": ("declined", "无效卡号", "invalid card number"),
    "51": ("declined", "余额不足", "insufficient funds"),
    "54": ("declined", "卡已过期", "expired card"),
    "55": ("declined", "密码错误", "incorrect PIN"),
    "61": ("declined", "超出金额限制", "amount limit exceeded"),
    "75": ("declined", "密码错误次数超限", "PIN tries exceeded"),
}


def code_words(code: str) -> tuple[str, str]:
    known = RESPONSE_CODES.get(code)
    return (known[1], known[2]) if known else ("未知应答码", "unknown code")


def _finding(kind: str, terminal: str, evidence: Sequence[Message], detail: tuple[str, str] = ("", ""),
             severity: str | None = None) -> Finding:
    k = KINDS[kind]
    owner, steps = OWNER_STEPS[kind]
    return Finding(kind=kind, severity=severity or k.severity, category=k.category, terminal=terminal,
                   at=evidence[-1].at if evidence else None, title_zh=k.title_zh, title_en=k.title_en,
                   merchant_zh=k.merchant_zh, merchant_en=k.merchant_en, ops_zh=k.ops_zh, ops_en=k.ops_en,
                   detail_zh=detail[0], detail_en=detail[1], evidence=tuple(evidence), owner=owner, steps=steps)


def bad_line_finding(b: BadLine) -> Finding:
    k = KINDS["undecodable"]
    return Finding(kind="undecodable", severity=k.severity, category=k.category, terminal=b.terminal, at=b.at,
                   title_zh=k.title_zh, title_en=k.title_en, merchant_zh=k.merchant_zh, merchant_en=k.merchant_en,
                   ops_zh=k.ops_zh, ops_en=k.ops_en, detail_zh=f"第 {b.line} 行：{b.zh}",
                   detail_en=f"line {b.line}: {b.en}", lines=(b.line,), owner=OWNER_STEPS["undecodable"][0])


# request MTI -> the MTI of its answer (MTI + 10)
ANSWER_MTI: Final = {m: f"{int(m) + 10:04d}" for m in KNOWN_MTIS if m[2] in "02468"}


def analyze(messages: Iterable[Message], timeout: timedelta = DEFAULT_TIMEOUT) -> list[Finding]:
    """All findings of the messages, per terminal in the order of the log; the findings of one terminal in time
    order of their evidence."""
    by_terminal: dict[str, list[Message]] = {}
    for m in messages:
        by_terminal.setdefault(m.terminal, []).append(m)
    findings: list[Finding] = []
    for terminal, msgs in by_terminal.items():
        findings.extend(sorted(_analyze_terminal(terminal, msgs, timeout),
                               key=lambda f: (f.evidence[0].line if f.evidence else 0)))
    return findings


def _pair(terminal: str, msgs: list[Message], timeout: timedelta, out: list[Finding]
          ) -> tuple[list[tuple[Message, Message | None]], dict[int, Message]]:
    """Requests with their answers (None: none in time), in log order; the late answers by request line. A
    message of an unknown type is reported into ``out`` and not paired."""
    # requests waiting for their answer: by (answer MTI, trace) and, oldest first, by answer MTI (line -> msg);
    # dicts and queues so that a log of a million messages is analysed in linear time
    by_trace: dict[tuple[str, str], deque[Message]] = {}
    waiting: dict[str, dict[int, Message]] = {}
    pairs: list[tuple[Message, Message | None]] = []
    late: dict[int, Message] = {}
    last_at = max(m.at for m in msgs)
    for m in msgs:
        if m.mti not in KNOWN_MTIS:
            out.append(_finding("unknown_message", terminal, [m], (f"报文类型 {m.mti} 不在规范内",
                                                                   f"message type {m.mti} is not in the spec")))
            continue
        answer_mti = ANSWER_MTI.get(m.mti, "") if m.direction == "TX" else ""
        if answer_mti:
            by_trace.setdefault((answer_mti, m.trace), deque()).append(m)
            waiting.setdefault(answer_mti, {})[m.line] = m
        elif m.direction == "RX" and waiting.get(m.mti):
            open_ = waiting[m.mti]
            q = by_trace.get((m.mti, m.trace))
            while q and q[0].line not in open_:
                q.popleft()  # answered already, through the oldest-first match
            match = q.popleft() if q else next(iter(open_.values()))
            del open_[match.line]
            if m.at - match.at <= timeout:
                pairs.append((match, m))
            else:  # a late answer: the request timed out (the terminal gave up); the answer is evidence
                pairs.append((match, None))
                late[match.line] = m
    pending = [r for open_ in waiting.values() for r in open_.values()]
    for r in pending:
        if r.at + timeout <= last_at:  # the log ran on past the timeout and no answer came
            pairs.append((r, None))
    pairs.sort(key=lambda p: p[0].line)
    return pairs, late


def _analyze_terminal(terminal: str, msgs: list[Message], timeout: timedelta) -> list[Finding]:
    out: list[Finding] = []
    pairs, late = _pair(terminal, msgs, timeout, out)
    reversals = [m for m in msgs if m.direction == "TX" and m.mti == "0400"]
    reversals_by_trace: dict[str, list[Message]] = {}
    for v in reversals:
        reversals_by_trace.setdefault(v.trace, []).append(v)
    answers = {r.line: a for r, a in pairs}
    position = {m.line: i for i, m in enumerate(msgs)}
    book = _Book(pairs, late)
    out.extend(_duplicate(terminal, first, second) for first, second in book.duplicates)
    used_reversals: set[int] = set()
    echo_evidence: list[Message] = []
    signed_in = False
    no_sign_in_reported = False
    last_failed_sign_in: list[Message] = []

    for req, resp in pairs:
        if resp is not None:
            mismatch = _mismatch(terminal, req, resp)
            if mismatch is not None:
                out.append(mismatch)
        nc = req.network_code
        if req.mti == "0800" and nc == ECHO:
            if resp is None or resp.response_code != "00":
                echo_evidence.extend([req] if resp is None else [req, resp])
            continue
        if req.mti == "0800" and nc == PARAMETER_DOWNLOAD:
            if resp is None or resp.response_code != "00":
                out.append(_finding("parameter_download_failed", terminal, [req] if resp is None else [req, resp],
                                    _answer_words(resp)))
            continue
        if req.mti == "0800" and nc == SIGN_ON:
            if resp is not None and resp.response_code == "00":
                signed_in = True
            else:
                last_failed_sign_in = [req] if resp is None else [req, resp]
                # a code that is not about keys says what to do better: 97 register the terminal, 90 wait for
                # the cut-over, 96 the switch, 98 / 91 the issuer; keys (A0, 99), unknown codes, no answer: sign in
                kind = RESPONSE_CODES.get(resp.response_code, ("",))[0] if resp is not None else ""
                if kind in ("", "key_error", "declined", "duplicate", "reconcile_error"):
                    kind = "sign_in_failed"
                zh, en = _answer_words(resp)
                out.append(_finding(kind, terminal, last_failed_sign_in,
                                    (f"签到失败，{zh}", f"sign-in failed, {en}") if kind != "sign_in_failed"
                                    else (zh, en)))
            continue
        if req.mti == "0800" and nc == SIGN_OFF:
            signed_in = False
            continue
        if req.mti == "0200" and not signed_in and not no_sign_in_reported:
            no_sign_in_reported = True
            out.append(_finding("no_sign_in", terminal, [*last_failed_sign_in, req]))
        if resp is None:
            if req.mti == "0200":
                rev = next((v for v in reversals_by_trace.get(req.trace, ()) if v.line > req.line
                            and v.line not in used_reversals), None)
                evidence = [req, *([late[req.line]] if req.line in late else [])]
                if rev is not None:
                    used_reversals.add(rev.line)
                    evidence.append(rev)
                    rev_answer = answers.get(rev.line)
                    if rev_answer is not None:
                        evidence.append(rev_answer)
                if rev is None:
                    detail = ("未见冲正", "no reversal followed")
                elif answers.get(rev.line) is None:
                    detail = ("已发起冲正，冲正也无应答", "a reversal followed, unanswered too")
                else:
                    detail = ("已发起冲正", "a reversal followed")
                out.append(replace(_finding("sale_timeout", terminal, evidence, detail), at=req.at))
            elif not (req.mti == "0400" and req.line in used_reversals):
                used_reversals.add(req.line)
                out.append(_finding("no_response", terminal, [req], (f"{req.mti} 请求无应答", f"no answer to {req.mti}")))
            continue
        if req.mti == "0500":
            out.extend(_settlement(terminal, req, resp, msgs, position[resp.line] + 1, book))
        elif resp.response_code != "00":
            code = resp.response_code
            kind = RESPONSE_CODES.get(code, ("unknown_response_code",))[0]
            zh, en = code_words(code)
            out.append(_finding(kind, terminal, [req, resp], (f"应答码 {code}：{zh}", f"response code {code}: {en}")))
    for v in reversals:
        if v.line not in used_reversals:
            ans = answers.get(v.line)
            out.append(_finding("reversal_sent", terminal, [v] if ans is None else [v, ans]))
    if echo_evidence:
        failures = sum(1 for m in echo_evidence if m.direction == "TX")
        out.append(_finding("echo_failed", terminal, echo_evidence,
                            (f"{failures} 次回响测试失败", f"{failures} failed echo test(s)"),
                            severity="high" if failures >= 2 else None))
    return out


def _answer_words(resp: Message | None) -> tuple[str, str]:
    if resp is None:
        return ("无应答（通讯超时）", "no answer (timeout)")
    zh, en = code_words(resp.response_code)
    return (f"应答码 {resp.response_code}：{zh}", f"response code {resp.response_code}: {en}")


# ---------------------------------------------------------------- terminal vs host: one transaction's data

_FIELD_WORDS: Final = {"amount": "金额", "trace": "流水号", "pan": "卡号", "processing_code": "处理码",
                       "terminal_id": "终端号", "merchant_id": "商户号", "rrn": "参考号",
                       "auth_code": "授权码（凭证校验码）"}


def _mismatch(terminal: str, req: Message, resp: Message) -> Finding | None:
    """A response that does not repeat its request's amount, trace number, card, processing code, terminal or
    merchant number (both carrying the field): the terminal and the host do not talk about the same thing."""
    asked, answered = req.fields, resp.fields
    differ: tuple[str, ...] = ()
    for name, key in ECHOED_FIELDS:
        a = asked.get(key)
        if a and a != answered.get(key, a) and answered[key]:
            differ += (name,)
    if not differ:
        return None
    diff = Difference("different", req.trace, rrn=resp.get("37"), terminal_amount_fen=req.amount_fen,
                      host_amount_fen=resp.amount_fen, fields=differ, lines=(req.line, resp.line))
    return replace(_finding("data_mismatch", terminal, [req, resp], _mismatch_words(req, resp, differ)),
                   differences=(diff,))


def _mismatch_words(term: Message, host: Message, differ: tuple[str, ...]) -> tuple[str, str]:
    zh, en = [], []
    for name in differ:
        key = {"amount": "4", "trace": "11", "pan": "2", "processing_code": "3", "terminal_id": "41",
               "merchant_id": "42", "rrn": "37", "auth_code": "38"}[name]
        a, b = term.get(key), host.get(key)
        if name == "amount" and term.amount_fen is not None and host.amount_fen is not None:
            a, b = format_yuan(term.amount_fen), format_yuan(host.amount_fen)
        zh.append(f"{_FIELD_WORDS[name]} 终端 {a} / 主机 {b}")
        en.append(f"{name.replace('_', ' ')} terminal {a} / host {b}")
    where = f"{term.mti}/{host.mti} 流水号 {term.trace}"
    return f"{where}：" + "；".join(zh), f"{term.mti}/{host.mti} trace {term.trace}: " + "; ".join(en)


def _duplicate(terminal: str, first: tuple[Message, Message], second: tuple[Message, Message]) -> Finding:
    req = second[0]
    return _finding("duplicate", terminal, [*first, *second],
                    (f"批次 {req.batch} 流水号 {req.trace} 被主机批准两次", f"batch {req.batch} trace {req.trace} "
                     "approved twice by the host"))


# ---------------------------------------------------------------- the host's side of a batch, from the log

class _Book:
    """What the host approved per batch (60.2): the sales and voids/refunds answered 00, minus the ones whose
    reversal was answered 00; the other sales of the batch (timed out, declined, reversed); and from where on
    the log covers a batch (a successful sign-on that gave its number, or the previous batch's settlement,
    before its first transaction) — only then can the log's own transactions stand for the host's."""

    def __init__(self, pairs: list[tuple[Message, Message | None]], late: dict[int, Message]) -> None:
        self.approved: dict[str, dict[str, tuple[Message, Message]]] = {}
        self.not_counted: dict[str, list[tuple[Message, Message | None]]] = {}
        self.duplicates: list[tuple[tuple[Message, Message], tuple[Message, Message]]] = []
        reversed_: set[tuple[str, str]] = set()
        covered_from: dict[str, int] = {}
        first_txn: dict[str, int] = {}
        for req, answer in pairs:
            resp = answer or late.get(req.line)  # a late answer still tells what the host did
            if req.mti in SALE_MTIS:
                batch = req.batch
                first_txn.setdefault(batch, req.line)
                if resp is not None and resp.response_code == "00" and _side(req, resp):
                    seen = self.approved.setdefault(batch, {})
                    if req.trace in seen:
                        self.duplicates.append((seen[req.trace], (req, resp)))
                    else:
                        seen[req.trace] = (req, resp)
                        continue
                self.not_counted.setdefault(batch, []).append((req, resp))
            elif req.mti == "0400" and resp is not None and resp.response_code == "00":
                reversed_.add((req.batch, req.trace))
            elif resp is not None and resp.response_code == "00" and (
                    req.mti == "0800" and req.network_code == SIGN_ON):
                covered_from.setdefault(resp.batch or req.batch, req.line)
            elif req.mti == "0500" and resp is not None and req.batch.isdigit():
                covered_from.setdefault(f"{int(req.batch) % 999_999 + 1:06d}", req.line)
        for batch, trace in reversed_:
            gone = self.approved.get(batch, {}).pop(trace, None)
            if gone is not None:
                self.not_counted.setdefault(batch, []).append(gone)
        self.covered = {b for b, line in covered_from.items() if line < first_txn.get(b, line + 1)}

    def totals(self, batch: str) -> Totals:
        debit = credit = debit_n = credit_n = 0
        for req, resp in self.approved.get(batch, {}).values():
            amount = _amount(req, resp)
            if _side(req, resp) == "debit":
                debit, debit_n = debit + amount, debit_n + 1
            else:
                credit, credit_n = credit + amount, credit_n + 1
        return Totals(debit, debit_n, credit, credit_n)


def _side(req: Message, resp: Message) -> str:
    """debit (消费, processing code 00…), credit (撤销 / 退货, 20…), or "" (an inquiry, not in the totals)."""
    code = (resp.get("3") or req.get("3"))[:2]
    return "debit" if code == "00" else "credit" if code == "20" else ""


def _amount(req: Message, resp: Message) -> int:
    return resp.amount_fen if resp.amount_fen is not None else req.amount_fen or 0


def totals_from_48(text: str) -> Totals | None:
    """Field 48 of a 0500: domestic debit n12 + count n3 + credit n12 + count n3 + code n1, the same for foreign
    cards; both added. None when it is not 62 digits."""
    if len(text) < 62 or not text[:62].isdigit():
        return None
    d, f = text[:31], text[31:62]
    return Totals(int(d[:12]) + int(f[:12]), int(d[12:15]) + int(f[12:15]), int(d[15:27]) + int(f[15:27]),
                  int(d[27:30]) + int(f[27:30]))


def _settlement(terminal: str, req: Message, resp: Message, msgs: list[Message], after: int,
                book: _Book) -> list[Finding]:
    """0500/0510: field 48 index 30 (domestic) and 61 (foreign) of the answer: 1 balanced, 2 not, 3 error.
    Not balanced (or balanced by the host while the log, covering the whole batch, disagrees): the 0500's totals
    are compared with the host's transactions of the batch; the differences are listed."""
    if resp.response_code != "00":
        zh, en = code_words(resp.response_code)
        kind = RESPONSE_CODES.get(resp.response_code, ("unknown_response_code",))[0]
        return [_finding(kind, terminal, [req, resp], (f"结算应答码 {resp.response_code}：{zh}",
                                                      f"settlement response code {resp.response_code}: {en}"))]
    flags = resp.get("48")
    domestic, foreign = flags[30:31], flags[61:62]
    result = {domestic, foreign}
    batch = req.batch
    term_totals, host_totals = totals_from_48(req.get("48")), book.totals(batch)
    if "3" in result:
        return [replace(_finding("settlement_error", terminal, [req, resp], _flag_words(domestic, foreign)),
                        batch=batch, terminal_totals=term_totals, host_totals=host_totals)]
    unbalanced = "2" in result
    if not unbalanced and (term_totals is None or term_totals == host_totals or batch not in book.covered):
        return []
    uploads: list[Message] = []
    for m in msgs[after:]:
        if m.mti in ("0500", "0800") and m.direction == "TX":
            break
        if m.mti in ("0320", "0330"):
            uploads.append(m)
    ended = any(m.mti == "0320" and m.network_code in BATCH_UPLOAD_END for m in uploads)
    diffs, shown, disagreeing = _differences(book, batch, term_totals, host_totals, uploads, ended)
    zh, en = _flag_words(domestic, foreign) if unbalanced else ("主机报对账平，但日志中的交易与终端总额不符",
                                                                "the host says balanced, but the log's "
                                                                "transactions disagree with the terminal's totals")
    tz, te = _totals_words(batch, term_totals, host_totals, diffs)
    seen_lines = {m.line for m in (req, resp, *uploads)}
    extra = sorted({m.line: m for m in shown if m.line not in seen_lines}.values(), key=lambda m: m.line)
    f = _finding("settlement_unbalanced", terminal, [req, resp, *uploads, *extra], (f"{zh}；{tz}", f"{en}; {te}"))
    out = [replace(f, at=resp.at, differences=tuple(diffs), batch=batch, terminal_totals=term_totals,
                   host_totals=host_totals)]
    for diff, (host_req, host_resp, upload) in disagreeing:  # the terminal's record vs the host's (凭证校验码)
        words = _mismatch_words(upload, host_resp, diff.fields)
        out.append(replace(_finding("data_mismatch", terminal, [host_req, host_resp, upload], words),
                           differences=(diff,)))
    if unbalanced and not ended:
        out.append(_finding("batch_upload_incomplete", terminal, [req, resp, *uploads],
                            ("对账不平后未见批上送结束报文", "no batch-upload end after the unbalanced settlement")
                            if uploads else ("对账不平后未见批上送", "no batch upload after the unbalanced settlement")))
    return out


def _differences(book: _Book, batch: str, term: Totals | None, host: Totals, uploads: list[Message],
                 ended: bool) -> tuple[list[Difference], list[Message],
                                       list[tuple[Difference, tuple[Message, Message, Message]]]]:
    """Transaction by transaction when the terminal uploaded its batch (0320 details: trace, amount, RRN,
    authorisation code); else the transactions whose amount explains the gap in the totals (probable)."""
    approved = book.approved.get(batch, {})
    details = [u for u in uploads if u.direction == "TX" and u.mti == "0320" and u.get("4")
               and u.network_code not in BATCH_UPLOAD_END]
    diffs: list[Difference] = []
    shown: list[Message] = []
    disagreeing: list[tuple[Difference, tuple[Message, Message, Message]]] = []
    if details:
        uploaded: set[str] = set()
        for u in details:
            uploaded.add(u.trace)
            pair = approved.get(u.trace)
            if pair is None:
                diffs.append(Difference("missing", u.trace, rrn=u.get("37"), terminal_amount_fen=u.amount_fen,
                                        lines=(u.line,)))
                continue
            req, resp = pair
            differ = tuple(name for name, key in (("amount", "4"), ("rrn", "37"), ("auth_code", "38"))
                           if (a := u.get(key)) and (b := resp.get(key) or req.get(key)) and a != b)
            if differ:
                diff = Difference("different", u.trace, rrn=resp.get("37"), terminal_amount_fen=u.amount_fen,
                                  host_amount_fen=_amount(req, resp), fields=differ,
                                  lines=(req.line, resp.line, u.line))
                diffs.append(diff)
                disagreeing.append((diff, (req, resp, u)))
                shown += [req, resp]
        if ended:
            for trace, (req, resp) in approved.items():
                if trace not in uploaded:
                    diffs.append(Difference("extra", trace, rrn=resp.get("37"), host_amount_fen=_amount(req, resp),
                                            lines=(req.line, resp.line)))
                    shown += [req, resp]
    if (not details or not ended) and term is not None and term.net_fen != host.net_fen:
        gap = term.net_fen - host.net_fen
        if gap > 0:  # the terminal counts more: a sale the host did not approve, or reversed
            for sale, answer in book.not_counted.get(batch, []):
                if sale.amount_fen == gap:
                    ms = [sale] if answer is None else [sale, answer]
                    diffs.append(Difference("missing", sale.trace, rrn=answer.get("37") if answer else "",
                                            terminal_amount_fen=gap, lines=tuple(m.line for m in ms),
                                            probable=True))
                    shown += ms
        else:  # the host approved more: a sale the terminal did not count
            listed = {d.trace for d in diffs}
            for trace, (req, resp) in approved.items():
                if _amount(req, resp) == -gap and trace not in listed:
                    diffs.append(Difference("extra", trace, rrn=resp.get("37"), host_amount_fen=-gap,
                                            lines=(req.line, resp.line), probable=True))
                    shown += [req, resp]
    diffs.sort(key=lambda d: d.lines)
    return diffs, shown, disagreeing


def _totals_words(batch: str, term: Totals | None, host: Totals, diffs: list[Difference]) -> tuple[str, str]:
    def zh(t: Totals) -> str:
        return f"消费 {t.debit_count} 笔 {format_yuan(t.debit_fen)}，撤销/退货 {t.credit_count} 笔 " \
               f"{format_yuan(t.credit_fen)}"

    def en(t: Totals) -> str:
        return f"{t.debit_count} sale(s) {format_yuan(t.debit_fen)}, {t.credit_count} void(s)/refund(s) " \
               f"{format_yuan(t.credit_fen)}"

    counts = {k: sum(1 for d in diffs if d.kind == k) for k in ("missing", "extra", "different")}
    probable = any(d.probable for d in diffs)
    tzh = f"批次 {batch}：终端 {zh(term) if term else '总额无法读取'}；主机 {zh(host)}"
    ten = f"batch {batch}: terminal {en(term) if term else 'totals unreadable'}; host {en(host)}"
    if diffs:
        tzh += (f"；{'可能' if probable else ''}主机缺失 {counts['missing']} 笔、终端未计入 {counts['extra']} 笔、"
                f"数据不同 {counts['different']} 笔（流水号 {', '.join(d.trace for d in diffs)}）")
        ten += (f"; {'probably ' if probable else ''}{counts['missing']} missing at the host, {counts['extra']} "
                f"not counted by the terminal, {counts['different']} different (trace "
                f"{', '.join(d.trace for d in diffs)})")
    elif term is not None and term == host:
        tzh += "；日志中的交易与终端总额一致，差异不在本日志中"
        ten += "; the log's transactions agree with the terminal's totals: the difference is not in this log"
    return tzh, ten


_FLAG = {"1": ("平", "balanced"), "2": ("不平", "not balanced"), "3": ("出错", "error")}


def _flag_words(domestic: str, foreign: str) -> tuple[str, str]:
    d, f = _FLAG.get(domestic, ("未知", "unknown")), _FLAG.get(foreign, ("未知", "unknown"))
    return (f"内卡对账{d[0]}，外卡对账{f[0]}", f"domestic cards {d[1]}, foreign cards {f[1]}")


# ---------------------------------------------------------------- the log against the imported transactions

def compare_with_imported(terminal: str, messages: Iterable[Message], imported: Sequence[ImportedTxn], *,
                          timeout: timedelta = DEFAULT_TIMEOUT) -> list[Finding]:
    """The host's approved, not reversed sales, voids and refunds of ``terminal`` in the log against the imported
    transactions of that terminal (the caller picks the day), matched by RRN, else by trace number (stan):
    one finding ``import_mismatch`` listing what only the log has (missing from the import), what only the
    import has (extra) and what differs (amount, RRN, authorisation code); none when they agree. Imported rows
    with neither stan nor RRN (files before migration 0016) cannot be matched and are left out."""
    msgs = [m for m in messages if m.terminal == terminal]
    if not msgs:
        return []
    pairs, late = _pair(terminal, msgs, timeout, [])
    book = _Book(pairs, late)
    host = [pair for batch in book.approved.values() for pair in batch.values()]
    rows = [r for r in imported if r.stan or r.rrn]
    by_rrn = {r.rrn: r for r in rows if r.rrn}
    by_stan: dict[str, list[ImportedTxn]] = {}
    for r in rows:
        if r.stan:
            by_stan.setdefault(r.stan, []).append(r)
    used: set[str] = set()
    diffs: list[Difference] = []
    shown: list[Message] = []
    notes: list[tuple[str, str]] = []  # both values of what differs (log / import), for the detail
    for req, resp in sorted(host, key=lambda p: p[0].line):
        rrn = resp.get("37")
        row = by_rrn.get(rrn) if rrn else None
        if row is None or row.ref in used:
            row = next((r for r in by_stan.get(req.trace, ()) if r.ref not in used), None)
        amount = _amount(req, resp)
        if row is None:
            diffs.append(Difference("missing", req.trace, rrn=rrn, host_amount_fen=amount, lines=(req.line, resp.line)))
            shown += [req, resp]
            continue
        used.add(row.ref)
        differ = tuple(name for name, mine, theirs in (("amount", amount, row.amount_fen),
                                                       ("rrn", rrn, row.rrn), ("auth_code", resp.get("38"),
                                                                                row.auth_code))
                       if mine and theirs is not None and mine != theirs)
        if differ:
            diffs.append(Difference("different", req.trace, rrn=rrn, terminal_amount_fen=row.amount_fen,
                                    host_amount_fen=amount, fields=differ, lines=(req.line, resp.line)))
            shown += [req, resp]
            notes.append(_both_values(req.trace, differ, (amount, rrn, resp.get("38")),
                                      (row.amount_fen, row.rrn, row.auth_code)))
    extra = [r for r in rows if r.ref not in used]
    diffs += [Difference("extra", r.stan or "", rrn=r.rrn or "", terminal_amount_fen=r.amount_fen) for r in extra]
    if not diffs:
        return []
    n = {k: sum(1 for d in diffs if d.kind == k) for k in ("missing", "extra", "different")}
    zh = (f"报文中主机批准 {len(host)} 笔，已导入 {len(rows)} 笔：导入缺失 {n['missing']} 笔、仅导入有 {n['extra']} 笔、"
          f"数据不同 {n['different']} 笔")
    en = (f"{len(host)} approved by the host in the log, {len(rows)} imported: {n['missing']} missing from the "
          f"import, {n['extra']} only in the import, {n['different']} different")
    if notes:
        zh += "；" + "；".join(z for z, _ in notes[:3])
        en += "; " + "; ".join(e for _, e in notes[:3])
    evidence = shown or [msgs[-1]]
    return [replace(_finding("import_mismatch", terminal, evidence, (zh, en)), differences=tuple(diffs))]


def _both_values(trace: str, differ: tuple[str, ...], log: tuple[int, str, str],
                 imported: tuple[int, str | None, str | None]) -> tuple[str, str]:
    """'流水号 000001 金额 报文 120.00 / 导入 125.00，参考号 报文 … / 导入 …' (zh, en) of one differing transaction."""
    from settleguard.money import format_yuan

    names = {"amount": ("金额", "amount"), "rrn": ("参考号", "RRN"), "auth_code": ("授权码", "auth code")}
    index = {"amount": 0, "rrn": 1, "auth_code": 2}
    zh: list[str] = []
    en: list[str] = []
    for name in differ:
        mine, theirs = log[index[name]], imported[index[name]]
        a, b = (format_yuan(int(mine)), format_yuan(int(theirs or 0))) if name == "amount" else (mine, theirs)
        zh.append(f"{names[name][0]} 报文 {a} / 导入 {b}")
        en.append(f"{names[name][1]} log {a} / import {b}")
    return f"流水号 {trace} " + "，".join(zh), f"trace {trace} " + ", ".join(en)
