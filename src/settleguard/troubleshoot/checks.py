"""How each check judges what it read (troubleshoot/model.py's facts) and the report of one run: outcome, what
was found, the merchant's steps and (staff only) the operations steps, zh then en. Pure apart from the label
table (settleguard.labels); the service (troubleshoot/service.py) reads the facts on live data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from settleguard import labels
from settleguard.diagnosis.model import Diagnosis
from settleguard.troubleshoot.model import (
    CONFIRMING,
    DEBITS,
    FAIL_STATUSES,
    IN_TRANSIT,
    NOT_STORED,
    RECENT_DAYS,
    TERMINAL_CODES,
    TROUBLE,
    UNCLEAR,
    WAITING,
    BreakFact,
    CardFact,
    FailureFact,
    FindingFact,
    Outcome,
    PayoutFact,
    Result,
    Symptom,
    TerminalFact,
    Text,
    merchant_steps,
    ops_steps,
    unique,
    when,
    yuan,
)
from settleguard.troubleshoot.model import Check as C


@dataclass(frozen=True)
class Report:
    merchant_no: str
    merchant_name: str
    symptom: Symptom | None  # None: every check
    results: tuple[Result, ...]
    advice: tuple[Text, ...] = field(default=())

    @property
    def outcome(self) -> Outcome:
        return max((r.outcome for r in self.results), key=lambda o: o.rank, default=Outcome.OK)

    @property
    def payout_ids(self) -> tuple[int, ...]:
        return tuple(sorted({p for r in self.results for p in r.payout_ids}))

    def steps(self) -> tuple[Text, ...]:
        """The merchant's steps of every check, then the symptom's advice, each once."""
        return unique([s for r in self.results for s in r.steps] + list(self.advice))

    def ops(self) -> tuple[Text, ...]:
        return unique([s for r in self.results for s in r.ops])

    def to_dict(self, lang: str = "zh", staff: bool = False) -> dict[str, Any]:
        """The JSON form: codes for symptom, checks and outcomes, text in ``lang``; ``ops`` only for staff."""
        out: dict[str, Any] = {
            "merchant_no": self.merchant_no, "merchant_name": self.merchant_name,
            "symptom": None if self.symptom is None else self.symptom.value, "outcome": self.outcome.value,
            "checks": [{"title": labels.pair(labels.TROUBLESHOOT_CHECK, r.check)[1 if lang == "en" else 0],
                        **r.to_dict(lang, staff)} for r in self.results],
            "steps": [t.of(lang) for t in self.steps()], "payout_ids": list(self.payout_ids)}
        if staff:
            out["ops"] = [t.of(lang) for t in self.ops()]
        return out

    def summary(self) -> str:
        """The case note: every check's outcome and findings, zh then en (no ops steps: the merchant may have
        opened the case; staff read the diagnosis on the case's payouts)."""
        sym = labels.zh_en(labels.TROUBLESHOOT_SYMPTOM, self.symptom) if self.symptom else "全部检查 all checks"
        lines = [f"自助排障 troubleshooter: {sym}"]
        for r in self.results:
            lines.append(f"[{labels.zh_en(labels.TROUBLESHOOT_OUTCOME, r.outcome)}] "
                         f"{labels.zh_en(labels.TROUBLESHOOT_CHECK, r.check)}")
            lines.extend(f"  - {t.zh} / {t.en}" for t in r.found)
        return "\n".join(lines)


def judge_payouts(payouts: Sequence[PayoutFact], zone: ZoneInfo) -> Result:
    if not payouts:
        return Result(C.PAYOUTS, Outcome.OK, (Text(f"近 {RECENT_DAYS} 天没有结算款记录",
                                                  f"no payout in the last {RECENT_DAYS} days"),))
    found: list[Text] = []
    steps: list[Text] = []
    ops: list[Text] = []
    outcome = Outcome.OK
    ids: list[int] = []
    for p in payouts:
        st_zh, st_en = labels.pair(labels.PAYOUT_STATUS, p.status)
        head = Text(f"结算款 {yuan(p.amount_fen)} 元（结算日 {p.cycle_date.isoformat()}）：{st_zh}",
                    f"payout of {yuan(p.amount_fen)} yuan (cycle {p.cycle_date.isoformat()}): {st_en}")
        if p.status == "succeeded":
            card = p.card_masked or "-"
            found.append(Text(f"{head.zh}，已于 {when(p.paid_at, zone)} 付出到结算卡 {card}",
                              f"{head.en}, sent on {when(p.paid_at, zone)} to card {card}"))
            steps.append(Text(f"结算款已于 {when(p.paid_at, zone)} 付出，请查看结算卡 {card} 的银行入账记录",
                              f"the money was sent on {when(p.paid_at, zone)}: check the account of card {card}"))
            ids.append(p.id)
        elif p.status in TROUBLE:
            bad = Outcome.FAIL if p.status in FAIL_STATUSES else Outcome.WARN
            outcome = max(outcome, bad, key=lambda o: o.rank)
            ids.append(p.id)
            if p.reason is not None:
                found.append(Text(f"{head.zh}。原因：{p.reason.meaning('zh')}", f"{head.en}. Reason: {p.reason.meaning('en')}"))
                steps.extend(merchant_steps(p.reason))
                ops.extend(ops_steps(p.reason))
            else:
                found.append(head)
                steps.append(CONFIRMING if p.status in UNCLEAR else WAITING)
        elif p.status in IN_TRANSIT:
            outcome = max(outcome, Outcome.WARN, key=lambda o: o.rank)
            found.append(Text(f"{head.zh}，预计出款日 {p.value_date.isoformat()}",
                              f"{head.en}, due to be paid on {p.value_date.isoformat()}"))
            steps.append(Text(f"款项在途，预计 {p.value_date.isoformat()} 出款，到时请查看结算卡入账",
                              f"the money is on its way (paid on {p.value_date.isoformat()}): check the card then"))
        else:
            found.append(head)
    return Result(C.PAYOUTS, outcome, tuple(found), unique(steps), unique(ops), tuple(ids))


def judge_card(card: CardFact | None, reason: Diagnosis | None) -> Result:
    """``card``: the merchant's current card (active, else the newest unusable one), None when it has none;
    ``reason``: why it cannot receive money (payouts.details.card_reason) when it is not usable."""
    usable = card is not None and card.status == "active" and card.card_status in (None, "normal")
    if usable:
        assert card is not None
        return Result(C.CARD, Outcome.OK, (Text(f"结算卡 {card.pan_masked}（{card.bank_name}）状态正常，可以收款",
                                               f"settlement card {card.pan_masked} ({card.bank_name}) is usable"),))
    if card is None:
        found = Text("没有绑定结算卡，结算款无法付出", "no settlement card is bound; payouts cannot be sent")
    else:
        found = Text(f"结算卡 {card.pan_masked}（{card.bank_name}）不能收款：{card.card_status_zh or '不可用'}",
                     f"settlement card {card.pan_masked} ({card.bank_name}) cannot receive money: "
                     f"{card.card_status_en or 'unusable'}")
    found_all = (found,) if reason is None else (found, Text(reason.meaning("zh"), reason.meaning("en")))
    steps = merchant_steps(reason) if reason is not None else (
        Text("请在“换绑结算卡”中绑定本人名下状态正常的借记卡", "bind a debit card in your own name that is in normal state"),)
    return Result(C.CARD, Outcome.FAIL, found_all, steps, () if reason is None else ops_steps(reason))


def judge_terminals(terminals: Sequence[TerminalFact], findings: Sequence[FindingFact],
                    symptom: Symptom | None) -> Result:
    if not terminals:
        return Result(C.TERMINALS, Outcome.WARN, (Text("没有登记在用的终端", "no terminal in service is registered"),),
                      (Text("如已有终端在用，请联系客服登记终端", "if you use a terminal, ask service to register it"),))
    ops: list[Text] = [] if symptom not in (Symptom.SIGN_IN_FAILED, Symptom.CHECK_CODE_MISMATCH) else [NOT_STORED]
    if not findings:
        silent = [t.terminal_no for t in terminals if not t.has_telemetry]
        found = [Text(f"{len(terminals)} 台终端未发现问题", f"no problem found on {len(terminals)} terminal(s)")]
        if silent:
            found.append(Text(f"终端 {'、'.join(silent)} 暂无遥测数据，网络与版本无法检查",
                              f"terminal(s) {', '.join(silent)} sent no telemetry: network and versions not checked"))
        return Result(C.TERMINALS, Outcome.OK, tuple(found), (), tuple(ops))
    wanted = TERMINAL_CODES.get(symptom) if symptom is not None else None
    ordered = sorted(findings, key=lambda f: (wanted is not None and f.code not in wanted,
                                              {"high": 0, "medium": 1}.get(f.severity, 2), f.id))
    found_t: list[Text] = []
    steps: list[Text] = []
    for f in ordered:
        zh, en = labels.pair(labels.TERMINAL_FINDING, f.code)
        found_t.append(Text(f"终端 {f.terminal_no}：{zh}（{f.detail.zh}）", f"terminal {f.terminal_no}: {en} ({f.detail.en})"))
        if f.merchant.zh:
            steps.append(f.merchant)
        if f.ops.zh:
            ops.append(Text(f"终端 {f.terminal_no}：{f.ops.zh}", f"terminal {f.terminal_no}: {f.ops.en}"))
    outcome = Outcome.FAIL if any(f.severity == "high" or (wanted is not None and f.code in wanted)
                                  for f in findings) else Outcome.WARN
    return Result(C.TERMINALS, outcome, tuple(found_t), unique(steps), unique(ops),
                  finding_ids=tuple(f.id for f in ordered))


def judge_failures(failures: Sequence[FailureFact], zone: ZoneInfo) -> Result:
    """Failed payout attempts of the last RECENT_DAYS days (newest first)."""
    if not failures:
        return Result(C.FAILURES, Outcome.OK, (Text(f"近 {RECENT_DAYS} 天没有出款失败", f"no failed payout attempt in "
                                                    f"the last {RECENT_DAYS} days"),))
    by_cat: dict[str, int] = {}
    for f in failures:
        by_cat[f.category] = by_cat.get(f.category, 0) + 1
    parts = [(labels.pair(labels.CATEGORY, c), n) for c, n in by_cat.items()]
    last = failures[0]
    found = (Text(f"近 {RECENT_DAYS} 天出款失败 {len(failures)} 次：" + "、".join(f"{zh} {n} 次" for (zh, _), n in parts),
                  f"{len(failures)} failed payout attempt(s) in the last {RECENT_DAYS} days: "
                  + ", ".join(f"{en} x{n}" for (_, en), n in parts)),
             Text(f"最近一次 {when(last.at, zone)}：{last.reason.meaning('zh')}",
                  f"latest on {when(last.at, zone)}: {last.reason.meaning('en')}"))
    return Result(C.FAILURES, Outcome.WARN, found, merchant_steps(last.reason), ops_steps(last.reason),
                  tuple(sorted({f.payout_id for f in failures})))


def judge_recon(breaks: Sequence[BreakFact], symptom: Symptom | None) -> Result:
    """Open reconciliation breaks on the merchant's payouts (the bank's lines against our payouts)."""
    if not breaks:
        return Result(C.RECON, Outcome.OK, (Text("银行流水与您的结算款记录一致，没有未解决的对账差错",
                                                "the bank's lines agree with your payouts: no open reconciliation break"),))
    found = []
    ops = []
    for b in breaks:
        zh, en = labels.pair(labels.RECON_BREAK_TYPE, b.type)
        amount = "-" if b.amount_fen is None else yuan(b.amount_fen)
        day = "-" if b.booking_date is None else b.booking_date.isoformat()
        found.append(Text(f"对账差错：{zh}，金额 {amount} 元，记账日 {day}", f"reconciliation break: {en}, {amount} yuan, "
                                                                       f"booked {day}"))
        ops.append(Text(f"在“对账差错”中处理 #{b.id}（差错处理）", f"work reconciliation break #{b.id} (recon breaks)"))
    debit = any(b.type in DEBITS for b in breaks)
    outcome = Outcome.FAIL if debit and symptom is Symptom.BALANCE_DEBITED else Outcome.WARN
    steps = (Text("平台正在与银行核对这笔款项，不需要您处理；核对完成后会通知您，多扣的款项会退回",
                  "we are checking this money with the bank; nothing for you to do, you will be told the result and "
                  "anything taken twice is paid back"),)
    return Result(C.RECON, outcome, tuple(found), steps, tuple(ops),
                  tuple(sorted({b.payout_id for b in breaks if b.payout_id is not None})), tuple(b.id for b in breaks))


def parse_symptom(text: str) -> Symptom | None:
    """The symptom a person typed: code, Chinese or English label; None when nothing matches."""
    code = labels.parse(labels.TROUBLESHOOT_SYMPTOM, text)
    return None if code is None else Symptom(code)
