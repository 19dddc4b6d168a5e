"""From a terminal's decoded messages to findings (终端报文诊断): pure, no I/O, no clock.

Requests (TX) are paired with their responses (RX, MTI + 10, same terminal and trace number); what the pairs
and the requests left without an answer show becomes a :class:`Finding` with the messages as evidence. The
kinds, their words and guidance are in :data:`KINDS`; response codes by meaning in :data:`RESPONSE_CODES`.
docs/terminals.md lists them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Final, NamedTuple

from settleguard.terminals.model import (
    BATCH_UPLOAD_END,
    ECHO,
    PARAMETER_DOWNLOAD,
    SIGN_OFF,
    SIGN_ON,
    BadLine,
    Finding,
    Message,
)

DEFAULT_TIMEOUT: Final = timedelta(seconds=60)


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
    "undecodable": Kind(
        "low", "unknown", "无法解析的日志行", "unreadable log line", "无需处理。", "Nothing to do.",
        "检查日志来源与格式（docs/terminals.md）。", "Check where the log comes from and its format (docs/terminals.md)."),
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
    return Finding(kind=kind, severity=severity or k.severity, category=k.category, terminal=terminal,
                   at=evidence[-1].at if evidence else None, title_zh=k.title_zh, title_en=k.title_en,
                   merchant_zh=k.merchant_zh, merchant_en=k.merchant_en, ops_zh=k.ops_zh, ops_en=k.ops_en,
                   detail_zh=detail[0], detail_en=detail[1], evidence=tuple(evidence))


def bad_line_finding(b: BadLine) -> Finding:
    k = KINDS["undecodable"]
    return Finding(kind="undecodable", severity=k.severity, category=k.category, terminal=b.terminal, at=b.at,
                   title_zh=k.title_zh, title_en=k.title_en, merchant_zh=k.merchant_zh, merchant_en=k.merchant_en,
                   ops_zh=k.ops_zh, ops_en=k.ops_en, detail_zh=f"第 {b.line} 行：{b.zh}",
                   detail_en=f"line {b.line}: {b.en}", lines=(b.line,))


def _response_mti(mti: str) -> str:
    return f"{int(mti) + 10:04d}" if mti.isdigit() and mti[2] in "02468" else ""


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


def _analyze_terminal(terminal: str, msgs: list[Message], timeout: timedelta) -> list[Finding]:
    out: list[Finding] = []
    # requests waiting for their answer: by (answer MTI, trace) and, oldest first, by answer MTI (line -> msg);
    # dicts and queues so that a log of a million messages is analysed in linear time
    by_trace: dict[tuple[str, str], deque[Message]] = {}
    waiting: dict[str, dict[int, Message]] = {}
    pairs: list[tuple[Message, Message | None]] = []
    late: dict[int, Message] = {}
    last_at = max(m.at for m in msgs)
    for m in msgs:
        answer_mti = _response_mti(m.mti) if m.direction == "TX" else ""
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

    reversals = [m for m in msgs if m.direction == "TX" and m.mti == "0400"]
    reversals_by_trace: dict[str, list[Message]] = {}
    for v in reversals:
        reversals_by_trace.setdefault(v.trace, []).append(v)
    answers = {r.line: a for r, a in pairs}
    position = {m.line: i for i, m in enumerate(msgs)}
    used_reversals: set[int] = set()
    echo_evidence: list[Message] = []
    signed_in = False
    no_sign_in_reported = False
    last_failed_sign_in: list[Message] = []

    for req, resp in pairs:
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
                out.append(_finding("sign_in_failed", terminal, last_failed_sign_in, _answer_words(resp)))
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
            out.extend(_settlement(terminal, req, resp, msgs, position[resp.line] + 1))
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


def _settlement(terminal: str, req: Message, resp: Message, msgs: list[Message], after: int) -> list[Finding]:
    """0500/0510: field 48 index 30 (domestic) and 61 (foreign) of the answer: 1 balanced, 2 not, 3 error."""
    if resp.response_code != "00":
        zh, en = code_words(resp.response_code)
        kind = RESPONSE_CODES.get(resp.response_code, ("unknown_response_code",))[0]
        return [_finding(kind, terminal, [req, resp], (f"结算应答码 {resp.response_code}：{zh}",
                                                      f"settlement response code {resp.response_code}: {en}"))]
    flags = resp.get("48")
    domestic, foreign = flags[30:31], flags[61:62]
    result = {domestic, foreign}
    if "3" in result:
        return [_finding("settlement_error", terminal, [req, resp], _flag_words(domestic, foreign))]
    if "2" not in result:
        return []
    uploads: list[Message] = []
    for m in msgs[after:]:
        if m.mti in ("0500", "0800") and m.direction == "TX":
            break
        if m.mti in ("0320", "0330"):
            uploads.append(m)
    out = [_finding("settlement_unbalanced", terminal, [req, resp, *uploads], _flag_words(domestic, foreign))]
    ended = any(m.mti == "0320" and m.network_code in BATCH_UPLOAD_END for m in uploads)
    if not ended:
        out.append(_finding("batch_upload_incomplete", terminal, [req, resp, *uploads],
                            ("对账不平后未见批上送结束报文", "no batch-upload end after the unbalanced settlement")
                            if uploads else ("对账不平后未见批上送", "no batch upload after the unbalanced settlement")))
    return out


_FLAG = {"1": ("平", "balanced"), "2": ("不平", "not balanced"), "3": ("出错", "error")}


def _flag_words(domestic: str, foreign: str) -> tuple[str, str]:
    d, f = _FLAG.get(domestic, ("未知", "unknown")), _FLAG.get(foreign, ("未知", "unknown"))
    return (f"内卡对账{d[0]}，外卡对账{f[0]}", f"domestic cards {d[1]}, foreign cards {f[1]}")
