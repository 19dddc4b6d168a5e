"""Network, firmware and hardware checks of a terminal's telemetry against the policy (终端体检). Pure: no I/O,
no clock (``now`` is passed in).

:func:`check` turns one terminal's :class:`State` into :class:`TerminalFinding` s, each with a terminal finding
code (:data:`CODES`), the failure taxonomy category (shared/design/failure-taxonomy.md), an owner (merchant,
field engineer, acquirer ops), the steps to take (labels.TERMINAL_STEP) and zh/en guidance for the merchant
and for ops, in the shape of the message-log findings (terminals.model.Finding.as_dict, plus ``owner``,
``steps`` and a field/value ``evidence``). docs/terminals.md lists them.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from settleguard.terminals.policy import ModelPolicy, Policy
from settleguard.terminals.telemetry import Telemetry

OWNERS: Final = ("merchant", "field_engineer", "acquirer_ops")
STEPS: Final = ("restart", "another_network", "network_params", "re_sign_in", "update_firmware", "load_paper",
                "charge", "contact_service", "report_move")


class Spec(NamedTuple):
    severity: str
    category: str
    owner: str
    steps: tuple[str, ...]
    title_zh: str
    title_en: str
    merchant_zh: str
    merchant_en: str
    ops_zh: str
    ops_en: str


_PARAMS = ("请联系收单机构或装机工程师更新终端网络参数（IP、掩码、网关、DNS），然后重启终端。",
           "Ask the acquirer or the installer to update the terminal's network parameters (IP, mask, gateway, "
           "DNS), then restart the terminal.")
_FIRMWARE = ("保持终端开机联网，等待远程升级；升级后重启并重新签到。",
             "Keep the terminal on and online for the remote update; restart and sign in again afterwards.")

CODES: Final[dict[str, Spec]] = {
    "ip_config_invalid": Spec(
        "medium", "system_or_network_fault", "field_engineer", ("network_params", "restart"),
        "IP、掩码与网关不一致", "IP, mask and gateway inconsistent", *_PARAMS,
        "核对终端静态 IP 设置：网关须在 IP/掩码所在网段内，IP 不能是网络号、广播地址或网关本身。",
        "Check the terminal's static IP settings: the gateway must be in the IP/mask subnet, and the IP must not "
        "be the network, broadcast or gateway address."),
    "ip_out_of_range": Spec(
        "medium", "system_or_network_fault", "field_engineer", ("network_params",),
        "IP 不在允许网段内", "IP outside the allowed ranges", *_PARAMS,
        "终端 IP 不在策略允许的网段内：核对商户网络与终端参数，必要时更新策略。",
        "The terminal's IP is outside the policy's ranges: check the merchant's network and the terminal's "
        "parameters, update the policy if the range is new."),
    "no_dns": Spec(
        "medium", "system_or_network_fault", "field_engineer", ("network_params", "restart"),
        "未设置 DNS", "no DNS server", *_PARAMS,
        "为终端设置 DNS 服务器（或改用 DHCP），否则无法解析主机域名。",
        "Give the terminal a DNS server (or use DHCP); without one it cannot resolve the host's name."),
    "wrong_host": Spec(
        "high", "system_or_network_fault", "acquirer_ops", ("network_params", "re_sign_in"),
        "主机地址不是收单机构的", "host not the acquirer's",
        "请暂停使用并联系收单机构更新终端参数，之后重新签到。",
        "Stop using the terminal and ask the acquirer to update its parameters, then sign in again.",
        "终端配置的主机地址或端口与策略不符：通过 TMS 下发正确参数；如非本机构所改，按风险事件排查。",
        "The terminal's host or port differs from the policy: push the right parameters through the TMS; if "
        "nobody here changed it, treat it as a risk event."),
    "weak_signal": Spec(
        "medium", "system_or_network_fault", "merchant", ("another_network", "restart"),
        "信号弱", "weak signal",
        "把终端移到信号更好的位置，或改用 Wi-Fi / 有线网络，然后重启终端。",
        "Move the terminal to a better spot or use Wi-Fi / a cable, then restart it.",
        "信号持续偏弱时建议商户更换网络方式或更换运营商 SIM 卡。",
        "If the signal stays weak, suggest another network type or another carrier's SIM."),
    "frequent_reconnects": Spec(
        "medium", "system_or_network_fault", "merchant", ("another_network", "restart"),
        "频繁断线重连", "frequent reconnections",
        "重启终端；仍频繁断线请换一个网络（另一个 Wi-Fi 或 4G）。",
        "Restart the terminal; if it keeps dropping, try another network (another Wi-Fi or 4G).",
        "查看心跳历史中的重连与信号，判断是网络问题还是终端故障。",
        "Look at the heartbeats' reconnections and signal: a network problem or a faulty terminal."),
    "high_latency": Spec(
        "medium", "system_or_network_fault", "acquirer_ops", ("another_network",),
        "回响延迟高", "high echo latency",
        "交易可能变慢或超时：可换一个网络后重试。", "Sales may be slow or time out: try another network.",
        "检查终端到主机的链路与主机负载。", "Check the link from terminal to host and the host's load."),
    "packet_loss": Spec(
        "medium", "system_or_network_fault", "acquirer_ops", ("another_network", "restart"),
        "回响丢包", "echo packet loss",
        "重启终端并换一个网络后重试。", "Restart the terminal and try another network.",
        "检查终端到主机的链路质量；丢包会造成交易超时与冲正。",
        "Check the link from terminal to host; loss causes timeouts and reversals."),
    "firmware_outdated": Spec(
        "medium", "system_or_network_fault", "acquirer_ops", ("update_firmware",),
        "固件版本过低", "firmware below the minimum", *_FIRMWARE,
        "通过 TMS 推送该型号的最低固件版本。", "Push the model's minimum firmware through the TMS."),
    "firmware_known_bad": Spec(
        "high", "system_or_network_fault", "acquirer_ops", ("update_firmware",),
        "固件为已知问题版本", "firmware on a known-bad version", *_FIRMWARE,
        "该固件版本已知有问题：尽快通过 TMS 升级。", "That firmware is known to be bad: update it through the TMS soon."),
    "app_outdated": Spec(
        "medium", "system_or_network_fault", "acquirer_ops", ("update_firmware",),
        "支付应用版本过低", "payment app below the minimum", *_FIRMWARE,
        "通过 TMS 推送该型号的最低应用版本。", "Push the model's minimum app version through the TMS."),
    "app_known_bad": Spec(
        "high", "system_or_network_fault", "acquirer_ops", ("update_firmware",),
        "支付应用为已知问题版本", "payment app on a known-bad version", *_FIRMWARE,
        "该应用版本已知有问题：尽快通过 TMS 升级。", "That app version is known to be bad: update it through the TMS soon."),
    "low_battery": Spec(
        "low", "system_or_network_fault", "merchant", ("charge",),
        "电量低", "low battery",
        "请给终端充电；电量过低时交易或结算可能中断。",
        "Charge the terminal; a sale or settlement may break off on a flat battery.",
        "电池反复电量低且在充电时，可能需要更换电池。", "If it keeps running low while charging, the battery may need replacing."),
    "printer_no_paper": Spec(
        "medium", "system_or_network_fault", "merchant", ("load_paper",),
        "打印机缺纸", "printer out of paper",
        "请装入打印纸；缺纸时签购单无法打印。", "Load paper: without it no sales slip is printed.",
        "无需处理，除非商户反复报告。", "Nothing to do unless the merchant keeps reporting it."),
    "printer_fault": Spec(
        "medium", "system_or_network_fault", "field_engineer", ("restart", "contact_service"),
        "打印机故障", "printer fault",
        "重启终端；仍无法打印请联系客服报修。", "Restart the terminal; if it still cannot print, call support.",
        "安排工程师上门检修或换机。", "Send a field engineer to repair or replace the terminal."),
    "tamper": Spec(
        "high", "risk_or_compliance_block", "acquirer_ops", ("contact_service",),
        "防拆触发", "tamper triggered",
        "请立即停止使用该终端并联系客服；终端已锁定，无法交易。",
        "Stop using the terminal at once and call support; the terminal is locked.",
        "防拆被触发：按风险事件处理，核实现场并安排换机，检查该终端近期交易。",
        "Tamper triggered: handle it as a risk event, check on site, replace the terminal and review its recent "
        "sales."),
    "silent_no_heartbeat": Spec(
        "high", "system_or_network_fault", "merchant", ("restart", "another_network", "contact_service"),
        "终端长时间无心跳", "no heartbeat for days",
        "请确认终端开机并联网；重启终端，仍无法联网请换一个网络或联系客服。",
        "Make sure the terminal is on and online; restart it, and try another network or call support.",
        "联系商户确认终端状态（关机、断网、停业或已移机）。",
        "Call the merchant: is the terminal off, offline, the shop closed or the terminal moved?"),
    "silent_no_transactions": Spec(
        "medium", "unknown", "acquirer_ops", ("contact_service",),
        "终端长时间无交易", "no transaction for days",
        "如终端无法交易，请重启并重新签到；仍有问题请联系客服。",
        "If the terminal cannot take payments, restart it and sign in again; call support if it persists.",
        "联系商户了解原因（停业、故障、改用其他收款方式）；突然沉默也是风险信号。",
        "Ask the merchant why (closed, broken, paid another way); sudden silence is also a risk signal."),
    "moved": Spec(
        "high", "risk_or_compliance_block", "acquirer_ops", ("report_move",),
        "终端位置偏离登记地址（疑似移机）", "terminal far from its registered location (moved?)",
        "如已搬迁，请向收单机构报备移机；未经报备的移机可能导致终端停用。",
        "If you moved, report it to the acquirer (移机); an unreported move may get the terminal stopped.",
        "核实终端实际位置：报备的移机登记新地址；未报备的按风险事件处理（套现、转借）。",
        "Check where the terminal really is: register a reported move; an unreported one is a risk event "
        "(cashing out, lending the terminal)."),
}


@dataclass(frozen=True, slots=True)
class State:
    """One terminal as the checks see it: the registry's number, model and firmware, the latest telemetry,
    when settleguard first saw it report, and its last transaction (None: none in the look-back window)."""

    terminal_no: str
    model: str
    firmware: str | None
    telemetry: Telemetry
    first_seen_at: datetime | None = None
    last_txn_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TerminalFinding:
    code: str
    terminal: str
    at: datetime | None
    detail_zh: str
    detail_en: str
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str = ""

    @property
    def spec(self) -> Spec:
        return CODES[self.code]

    @property
    def category(self) -> str:
        return self.spec.category

    @property
    def owner(self) -> str:
        return self.spec.owner

    def as_dict(self) -> dict[str, Any]:
        s = self.spec
        return {"terminal": self.terminal, "code": self.code, "kind": self.code, "category": s.category,
                "severity": self.severity or s.severity, "owner": s.owner, "steps": list(s.steps),
                "at": self.at.isoformat() if self.at else None, "title_zh": s.title_zh, "title_en": s.title_en,
                "detail_zh": self.detail_zh, "detail_en": self.detail_en, "merchant_zh": s.merchant_zh,
                "merchant_en": s.merchant_en, "ops_zh": s.ops_zh, "ops_en": s.ops_en,
                "evidence": [{"field": k, "value": v} for k, v in self.evidence.items()]}


def version_key(version: str) -> tuple[int, ...]:
    """The numbers of a version in order ("V02.3.12_20210610" → (2, 3, 12, 20210610))."""
    return tuple(int(n) for n in re.findall(r"\d+", version)[:8])


def below(version: str, minimum: str) -> bool:
    """True when ``version`` is older than ``minimum``; False when either has no numbers (cannot tell)."""
    have, need = version_key(version), version_key(minimum)
    return bool(have and need) and have < need


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def check(state: State, policy: Policy, now: datetime) -> list[TerminalFinding]:
    """Every finding of one terminal, in the order of :data:`CODES`."""
    t = state.telemetry
    mp = policy.for_model(state.model or t.model_name)
    th = policy.thresholds
    at = t.last_heartbeat_at
    out: list[TerminalFinding] = []

    def add(code: str, zh: str, en: str, evidence: dict[str, Any], severity: str = "",
            when: datetime | None = None) -> None:
        out.append(TerminalFinding(code, state.terminal_no, when or at, zh, en, evidence, severity))

    out.extend(_network(state, mp, at))
    if t.signal_dbm is not None and t.signal_dbm <= th.signal_weak_dbm:
        add("weak_signal", f"信号 {t.signal_dbm} dBm（阈值 {th.signal_weak_dbm}）",
            f"signal {t.signal_dbm} dBm (threshold {th.signal_weak_dbm})",
            {"signal_dbm": t.signal_dbm, "comm_type": t.comm_type})
    if t.reconnects is not None and t.reconnects > th.reconnects_max:
        add("frequent_reconnects", f"重连 {t.reconnects} 次（阈值 {th.reconnects_max}）",
            f"{t.reconnects} reconnections (threshold {th.reconnects_max})", {"reconnects": t.reconnects})
    if t.echo_latency_ms is not None and t.echo_latency_ms > th.latency_max_ms:
        add("high_latency", f"回响延迟 {t.echo_latency_ms} 毫秒（阈值 {th.latency_max_ms}）",
            f"echo latency {t.echo_latency_ms} ms (threshold {th.latency_max_ms})",
            {"echo_latency_ms": t.echo_latency_ms})
    if t.echo_loss_pct is not None and t.echo_loss_pct > th.loss_max_pct:
        add("packet_loss", f"丢包率 {t.echo_loss_pct}%（阈值 {th.loss_max_pct}%）",
            f"echo loss {t.echo_loss_pct}% (threshold {th.loss_max_pct}%)", {"echo_loss_pct": t.echo_loss_pct})
    out.extend(_versions(state, mp, at))
    if t.battery is not None and t.battery <= th.battery_low_pct and not t.charging:
        add("low_battery", f"电量 {t.battery}%（阈值 {th.battery_low_pct}%）",
            f"battery {t.battery}% (threshold {th.battery_low_pct}%)", {"battery": t.battery},
            "medium" if t.battery <= 5 else "")
    if t.printer == "no_paper":
        add("printer_no_paper", "打印机报告缺纸", "the printer reports no paper", {"printer": t.printer})
    elif t.printer == "fault":
        add("printer_fault", "打印机报告故障", "the printer reports a fault", {"printer": t.printer})
    if t.tamper:
        add("tamper", "终端报告防拆触发", "the terminal reports its tamper switch", {"tamper": True})
    out.extend(_silence(state, th.silent_days, now))
    if t.lat is not None and t.lng is not None and t.home_lat is not None and t.home_lng is not None:
        km = haversine_km(t.home_lat, t.home_lng, t.lat, t.lng)
        if km > th.moved_km:
            add("moved", f"距登记位置 {km:.1f} 公里（阈值 {th.moved_km:g}）",
                f"{km:.1f} km from the registered location (threshold {th.moved_km:g})",
                {"lat": t.lat, "lng": t.lng, "home_lat": t.home_lat, "home_lng": t.home_lng,
                 "distance_km": round(km, 1)})
    return out


def _network(state: State, mp: ModelPolicy, at: datetime | None) -> list[TerminalFinding]:
    t = state.telemetry
    out: list[TerminalFinding] = []
    tn = state.terminal_no
    if t.ip and t.mask:
        problem = _ip_problem(t.ip, t.mask, t.gateway)
        if problem:
            out.append(TerminalFinding("ip_config_invalid", tn, at, problem[0], problem[1],
                                       {"ip": t.ip, "mask": t.mask, "gateway": t.gateway}))
    if t.ip and mp.ip_ranges:
        ip = ipaddress.IPv4Address(t.ip)
        if not any(ip in ipaddress.IPv4Network(r) for r in mp.ip_ranges):
            out.append(TerminalFinding("ip_out_of_range", tn, at, f"IP {t.ip} 不在 {'、'.join(mp.ip_ranges)} 内",
                                       f"IP {t.ip} is outside {', '.join(mp.ip_ranges)}",
                                       {"ip": t.ip, "ip_ranges": list(mp.ip_ranges)}))
    # no DNS: a terminal with a static configuration (an IP reported) and an empty DNS list
    if t.ip and t.dns is not None and not t.dns.strip(","):
        out.append(TerminalFinding("no_dns", tn, at, "未配置 DNS 服务器", "no DNS server set", {"dns": ""}))
    host_wrong = mp.host is not None and t.host is not None and t.host != mp.host
    port_wrong = mp.port is not None and t.port is not None and t.port != mp.port
    if host_wrong or port_wrong:
        out.append(TerminalFinding(
            "wrong_host", tn, at, f"配置为 {t.host or '-'}:{t.port or '-'}，应为 {mp.host or '-'}:{mp.port or '-'}",
            f"set to {t.host or '-'}:{t.port or '-'}, expected {mp.host or '-'}:{mp.port or '-'}",
            {"host": t.host, "port": t.port, "expected_host": mp.host, "expected_port": mp.port}))
    return out


def _ip_problem(ip_text: str, mask_text: str, gateway_text: str | None) -> tuple[str, str] | None:
    try:
        net = ipaddress.IPv4Network(f"{ip_text}/{mask_text}", strict=False)
    except ValueError:
        return (f"掩码 {mask_text} 无效（须为连续的 1）", f"mask {mask_text} is not valid (not contiguous)")
    ip = ipaddress.IPv4Address(ip_text)
    if net.prefixlen < 31 and ip in (net.network_address, net.broadcast_address):
        return (f"IP {ip} 是网段 {net} 的网络号或广播地址", f"IP {ip} is the network or broadcast address of {net}")
    if gateway_text:
        gw = ipaddress.IPv4Address(gateway_text)
        if gw == ip:
            return (f"网关 {gw} 与 IP 相同", f"the gateway {gw} is the IP itself")
        if gw not in net:
            return (f"网关 {gw} 不在 {net} 网段内", f"the gateway {gw} is outside {net}")
    return None


def _versions(state: State, mp: ModelPolicy, at: datetime | None) -> list[TerminalFinding]:
    t = state.telemetry
    out: list[TerminalFinding] = []
    firmware = state.firmware or None
    for kind, have, minimum, bad in (("firmware", firmware, mp.min_firmware, mp.bad_firmware),
                                     ("app", t.app_version, mp.min_app, mp.bad_app)):
        if not have:
            continue
        zh_word = "固件" if kind == "firmware" else "应用"
        if have.casefold() in {b.casefold() for b in bad}:
            out.append(TerminalFinding(f"{kind}_known_bad", state.terminal_no, at,
                                       f"{zh_word}版本 {have} 为已知问题版本（{mp.model}）",
                                       f"{kind} {have} is a known-bad version ({mp.model})",
                                       {kind: have, "known_bad": list(bad)}))
        elif minimum and below(have, minimum):
            out.append(TerminalFinding(f"{kind}_outdated", state.terminal_no, at,
                                       f"{zh_word}版本 {have} 低于最低版本 {minimum}（{mp.model}）",
                                       f"{kind} {have} is below the minimum {minimum} ({mp.model})",
                                       {kind: have, "minimum": minimum}))
    return out


def _silence(state: State, days: int, now: datetime) -> list[TerminalFinding]:
    t = state.telemetry
    out: list[TerminalFinding] = []
    limit = timedelta(days=days)
    if t.last_heartbeat_at is not None and now - t.last_heartbeat_at > limit:
        idle = (now - t.last_heartbeat_at).days
        out.append(TerminalFinding("silent_no_heartbeat", state.terminal_no, now,
                                   f"{idle} 天无心跳（阈值 {days} 天）", f"no heartbeat for {idle} days (threshold {days})",
                                   {"last_heartbeat_at": t.last_heartbeat_at.isoformat()}))
    # a terminal seen for longer than the window with no transaction in it (a new one is not judged yet)
    since = state.last_txn_at or state.first_seen_at
    if since is not None and state.first_seen_at is not None and now - since > limit and (
            state.last_txn_at is None or now - state.last_txn_at > limit):
        idle = (now - since).days
        out.append(TerminalFinding("silent_no_transactions", state.terminal_no, now,
                                   f"{idle} 天以上无交易（阈值 {days} 天）",
                                   f"no transaction for {idle}+ days (threshold {days})",
                                   {"last_transaction_at": state.last_txn_at.isoformat() if state.last_txn_at
                                    else None}))
    return out


HEALTH: Final = ("ok", "warning", "fault", "unknown")


def health(severities: list[str], has_telemetry: bool) -> str:
    """ok (no open finding), warning (only medium/low), fault (any high), unknown (never reported)."""
    if "high" in severities:
        return "fault"
    if severities:
        return "warning"
    return "ok" if has_telemetry else "unknown"
