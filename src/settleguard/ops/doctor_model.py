"""``settleguard doctor``'s checks as pure functions: observed facts in, one :class:`Check` out (pure).

Each check is ok, warn or fail, with a zh-CN then English sentence and a hint (what to do), plus the facts it
judged (codes and ISO times, for ``--json``). :func:`exit_code` turns the worst into the command's exit code:
0 ok, 1 warn, 2 fail. The thresholds are :class:`Thresholds` (config.Settings ``doctor_*``, through
bootstrap.Container.doctor_thresholds).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


RANK = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}
LABELS = {Status.OK: ("正常", "ok"), Status.WARN: ("警告", "warn"), Status.FAIL: ("故障", "fail")}
NAMES = {  # what a person reads for each check's code
    "database": ("数据库连接", "database"), "migration": ("数据库迁移", "migration"), "card_key": ("卡号密钥", "card key"),
    "disk": ("磁盘空间", "disk space"), "clock": ("时钟", "clock"), "worker": ("工作进程心跳", "worker heartbeat"),
    "notify_backlog": ("通知积压", "notice backlog"), "stuck_payouts": ("出款卡单", "stuck payouts"),
    "circuits": ("通道熔断", "circuits"), "backup": ("备份", "backup"), "statements": ("银行对账单", "bank statements"),
    "day_files": ("应到文件", "expected files"),
}


@dataclass(frozen=True)
class Check:
    """One check's verdict."""

    code: str  # database, migration, card_key, disk, clock, worker, notify_backlog, stuck_payouts, circuits,
    #            backup, statements
    status: Status
    zh: str
    en: str
    hint_zh: str = ""
    hint_en: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "status": str(self.status), "zh": self.zh, "en": self.en,
                "hint_zh": self.hint_zh, "hint_en": self.hint_en, "facts": dict(self.facts)}


@dataclass(frozen=True)
class Thresholds:
    disk_warn_bytes: int = 2048 * 2**20
    disk_fail_bytes: int = 200 * 2**20
    clock_skew: timedelta = timedelta(seconds=5)
    heartbeat_warn: timedelta = timedelta(minutes=3)
    heartbeat_fail: timedelta = timedelta(minutes=15)
    notify_pending_warn: int = 1000
    notify_age_warn: timedelta = timedelta(minutes=30)
    notify_age_fail: timedelta = timedelta(hours=4)
    stuck_warn: timedelta = timedelta(hours=1)
    stuck_fail: timedelta = timedelta(hours=24)
    backup_warn: timedelta = timedelta(hours=26)
    backup_fail: timedelta = timedelta(hours=72)
    statement_warn: timedelta = timedelta(hours=36)


def worst(checks: Iterable[Check]) -> Status:
    return max((c.status for c in checks), key=RANK.__getitem__, default=Status.OK)


def exit_code(checks: Iterable[Check]) -> int:
    """0 all ok, 1 a warning, 2 a failure."""
    return RANK[worst(checks)]


def _age(delta: timedelta) -> tuple[str, str]:
    s = max(0, int(delta.total_seconds()))
    if s < 120:
        return f"{s} 秒", f"{s} s"
    if s < 7200:
        return f"{s // 60} 分钟", f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} 小时", f"{s // 3600} h"
    return f"{s // 86400} 天", f"{s // 86400} days"


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def database(error: str | None) -> Check:
    if error is None:
        return Check("database", Status.OK, "数据库可连接", "database reachable")
    return Check("database", Status.FAIL, "无法连接数据库", "database unreachable",
                 "检查数据库地址（--db / SETTLEGUARD_DB）、网络与数据库服务是否运行",
                 "check the database URL (--db / SETTLEGUARD_DB), the network and that the server runs",
                 {"error": error})


def migration(current: str | None, head: str | None) -> Check:
    facts = {"current": current, "head": head}
    if current == head:
        return Check("migration", Status.OK, f"数据库结构为最新版本 {current}", f"schema at the latest revision {current}",
                     facts=facts)
    if current is None:
        return Check("migration", Status.FAIL, "数据库尚未初始化（无迁移版本）", "database not initialised (no revision)",
                     "运行 settleguard db upgrade", "run settleguard db upgrade", facts)
    return Check("migration", Status.FAIL, f"数据库结构版本 {current} 落后于最新版本 {head}",
                 f"schema at revision {current}, behind the latest {head}",
                 "备份后运行 settleguard db upgrade", "take a backup, then run settleguard db upgrade", facts)


def card_key(*, error: str | None = None, recorded: Mapping[int, str] | None = None,
             held: Mapping[int, str] | None = None, mismatched: Sequence[int] = (), missing: Sequence[int] = (),
             unknown: Sequence[int] = ()) -> Check:
    """``error``: the key could not be read; else the comparison of held and recorded fingerprints."""
    facts: dict[str, Any] = {"recorded": {str(v): fp for v, fp in (recorded or {}).items()},
                             "held": {str(v): fp for v, fp in (held or {}).items()}}
    if error is not None:
        return Check("card_key", Status.FAIL, f"卡号密钥无法读取：{error}", f"the card key cannot be read: {error}",
                     "用 SETTLEGUARD_KEY_FILE 或 SETTLEGUARD_KEY 指向该数据库的密钥（不要新建密钥）",
                     "point SETTLEGUARD_KEY_FILE or SETTLEGUARD_KEY at this database's key (do not create a new one)",
                     {**facts, "error": error})
    if not recorded:
        return Check("card_key", Status.WARN, "数据库尚未登记卡号密钥（首次使用时创建）",
                     "no card key recorded yet (created on first use)",
                     "首次使用时登记；或运行 settleguard keys init", "recorded on first use; or run settleguard keys init",
                     facts)
    if mismatched or missing:
        parts_zh, parts_en = [], []
        if mismatched:
            parts_zh.append(f"版本 {', '.join(map(str, mismatched))} 指纹不符")
            parts_en.append(f"version(s) {', '.join(map(str, mismatched))} have another fingerprint")
        if missing:
            parts_zh.append(f"缺少版本 {', '.join(map(str, missing))}")
            parts_en.append(f"version(s) {', '.join(map(str, missing))} missing")
        return Check("card_key", Status.FAIL, f"卡号密钥不属于该数据库：{'；'.join(parts_zh)}",
                     f"the card key does not belong to this database: {'; '.join(parts_en)}",
                     "使用该数据库的密钥文件；不要新建密钥", "use this database's key file; do not create a new key",
                     {**facts, "mismatched": list(mismatched), "missing": list(missing)})
    if unknown:
        return Check("card_key", Status.WARN, f"密钥中有未登记的版本 {', '.join(map(str, unknown))}",
                     f"the key holds unrecorded version(s) {', '.join(map(str, unknown))}",
                     "轮换后的新版本会在首次使用时登记；否则检查密钥文件",
                     "a rotated newer version is recorded on first use; otherwise check the key file",
                     {**facts, "unknown": list(unknown)})
    return Check("card_key", Status.OK, "卡号密钥与数据库登记的指纹一致", "card key matches the recorded fingerprints",
                 facts=facts)


def disk(free_bytes: int | None, where: str, t: Thresholds) -> Check:
    """Free space where the SQLite file lives; None: a server database (its disk is the server's)."""
    if free_bytes is None:
        return Check("disk", Status.OK, "非 SQLite：磁盘空间由数据库服务器监控", "not SQLite: the server's disk is "
                     "monitored on the database server", facts={"path": where})
    facts = {"path": where, "free_bytes": free_bytes}
    if free_bytes < t.disk_fail_bytes:
        status = Status.FAIL
    elif free_bytes < t.disk_warn_bytes:
        status = Status.WARN
    else:
        return Check("disk", Status.OK, f"磁盘剩余 {_mb(free_bytes)}（{where}）", f"{_mb(free_bytes)} free ({where})",
                     facts=facts)
    return Check("disk", status, f"磁盘空间不足：剩余 {_mb(free_bytes)}（{where}）",
                 f"low disk space: {_mb(free_bytes)} free ({where})",
                 "清理旧备份与日志，或扩容", "remove old backups and logs, or add space", facts)


def clock(skew: timedelta | None, t: Thresholds) -> Check:
    """System clock minus the database's now(); None: not measured (SQLite uses this machine's clock)."""
    if skew is None:
        return Check("clock", Status.OK, "SQLite 与本机共用时钟", "SQLite shares this machine's clock")
    secs = skew.total_seconds()
    facts = {"skew_seconds": round(secs, 3)}
    if abs(skew) > t.clock_skew:
        return Check("clock", Status.WARN, f"本机时钟与数据库相差 {secs:+.1f} 秒", f"system clock {secs:+.1f} s off "
                     "the database's", "检查两台机器的 NTP 时间同步（chrony）",
                     "check NTP time sync (chrony) on both machines", facts)
    return Check("clock", Status.OK, f"本机时钟与数据库相差 {secs:+.1f} 秒", f"clock within {secs:+.1f} s of the "
                 "database's", facts=facts)


def worker(last_beat: datetime | None, now: datetime, t: Thresholds, *, worker_name: str | None = None,
           alive: int = 0) -> Check:
    if last_beat is None:
        return Check("worker", Status.FAIL, "出款工作进程从未运行（无心跳）", "the payout worker has never run (no heartbeat)",
                     "启动 settleguard worker（systemd 服务）", "start settleguard worker (its systemd service)")
    age = now - last_beat
    zh_age, en_age = _age(age)
    facts = {"last_beat": last_beat.isoformat(), "worker": worker_name, "age_seconds": int(age.total_seconds()),
             "alive": alive}
    if age > t.heartbeat_fail:
        status = Status.FAIL
    elif age > t.heartbeat_warn:
        status = Status.WARN
    else:
        return Check("worker", Status.OK, f"出款工作进程在运行（{zh_age}前心跳，{alive} 个）",
                     f"payout worker running (heartbeat {en_age} ago, {alive} alive)", facts=facts)
    return Check("worker", status, f"出款工作进程可能已停止：最近心跳在 {zh_age}前", f"the payout worker may have "
                 f"stopped: last heartbeat {en_age} ago", "检查 settleguard worker 进程及其日志，必要时重启",
                 "check the settleguard worker process and its logs; restart it if needed", facts)


def notify_backlog(pending: int, oldest: datetime | None, now: datetime, t: Thresholds) -> Check:
    facts: dict[str, Any] = {"pending": pending, "oldest": oldest.isoformat() if oldest else None}
    if not pending or oldest is None:
        return Check("notify_backlog", Status.OK, "无积压的商户通知", "no notice backlog", facts=facts)
    age = now - oldest
    zh_age, en_age = _age(age)
    if age > t.notify_age_fail:
        status = Status.FAIL
    elif age > t.notify_age_warn or pending >= t.notify_pending_warn:
        status = Status.WARN
    else:
        return Check("notify_backlog", Status.OK, f"待发送通知 {pending:,} 条，最早 {zh_age}前",
                     f"{pending:,} notice deliveries waiting, oldest {en_age}", facts=facts)
    return Check("notify_backlog", status, f"商户通知积压：{pending:,} 条待发送，最早 {zh_age}前",
                 f"notice backlog: {pending:,} deliveries waiting, oldest {en_age}",
                 "检查 SMTP / Webhook / 短信通道与工作进程（settleguard notify）",
                 "check the SMTP / webhook / SMS channels and the worker (settleguard notify)", facts)


def stuck_payouts(by_status: Mapping[str, tuple[int, datetime | None]], now: datetime, t: Thresholds) -> Check:
    """``by_status``: result_unknown / inquiry -> (payouts beyond ``stuck_warn``, oldest updated_at)."""
    n = sum(c for c, _ in by_status.values())
    olds = [o for _, o in by_status.values() if o is not None]
    facts = {s: {"payouts": c, "oldest": o.isoformat() if o else None} for s, (c, o) in by_status.items()}
    if not n or not olds:
        return Check("stuck_payouts", Status.OK, "无长时间结果未明或查询中的出款",
                     "no payout stuck in result unknown or inquiry", facts=facts)
    age = now - min(olds)
    zh_age, en_age = _age(age)
    status = Status.FAIL if age > t.stuck_fail else Status.WARN
    return Check("stuck_payouts", status, f"{n:,} 笔出款结果未明或查询中超过时限，最久 {zh_age}",
                 f"{n:,} payout(s) in result unknown or inquiry beyond the bound, oldest {en_age}",
                 "确认工作进程在运行与银行查询接口可用；settleguard payouts list --status result_unknown",
                 "check that the worker runs and the bank's inquiry answers; "
                 "settleguard payouts list --status result_unknown", facts)


def circuits(open_banks: Sequence[str], half_open: Sequence[str]) -> Check:
    facts = {"open": list(open_banks), "half_open": list(half_open)}
    if not open_banks and not half_open:
        return Check("circuits", Status.OK, "各银行通道熔断器均关闭", "every bank's circuit breaker closed", facts=facts)
    banks = ", ".join([*open_banks, *half_open])
    return Check("circuits", Status.WARN, f"银行通道已熔断（暂停出款）：{banks}", f"bank circuit(s) open (payouts "
                 f"paused): {banks}", "查看 settleguard channels status 与银行公告", "see settleguard channels status "
                 "and the bank's notices", facts)


def backup(configured: bool, newest: datetime | None, now: datetime, t: Thresholds, *, where: str = "") -> Check:
    if not configured:
        return Check("backup", Status.WARN, "未配置备份目录", "no backup configured",
                     "设置 SETTLEGUARD_BACKUP_DIR 并定期运行 settleguard backup create",
                     "set SETTLEGUARD_BACKUP_DIR and run settleguard backup create regularly", {"dir": None})
    facts: dict[str, Any] = {"dir": where, "newest": newest.isoformat() if newest else None}
    if newest is None:
        return Check("backup", Status.FAIL, f"备份目录中没有备份（{where}）", f"no backup in the backup directory "
                     f"({where})", "运行 settleguard backup create", "run settleguard backup create", facts)
    age = now - newest
    zh_age, en_age = _age(age)
    if age > t.backup_fail:
        status = Status.FAIL
    elif age > t.backup_warn:
        status = Status.WARN
    else:
        return Check("backup", Status.OK, f"最近备份于 {zh_age}前", f"last backup {en_age} ago", facts=facts)
    return Check("backup", status, f"备份过旧：最近备份于 {zh_age}前", f"backup stale: last one {en_age} ago",
                 "检查定时备份（工作进程或 cron）并运行 settleguard backup create",
                 "check the scheduled backup (worker or cron) and run settleguard backup create", facts)


def statements(newest: datetime | None, now: datetime, t: Thresholds) -> Check:
    if newest is None:
        return Check("statements", Status.WARN, "尚未导入任何银行对账单", "no bank statement imported yet",
                     "settleguard recon import <camt.053>", "settleguard recon import <camt.053>")
    age = now - newest
    zh_age, en_age = _age(age)
    facts = {"newest": newest.isoformat()}
    if age > t.statement_warn:
        return Check("statements", Status.WARN, f"银行对账单已 {zh_age}未导入", f"no bank statement imported for "
                     f"{en_age}", "向银行索取对账单并导入（settleguard recon import）",
                     "ask the bank for the statement and import it (settleguard recon import)", facts)
    return Check("statements", Status.OK, f"最近对账单导入于 {zh_age}前", f"last statement imported {en_age} ago",
                 facts=facts)


def day_files(late: Sequence[Mapping[str, Any]]) -> Check:
    """The day's expected files (daycycle: only when the day runs itself): each late or missing one named, with its
    business day; ``late`` rows carry day, kind_zh, kind_en, state ("late" | "missing") and due_at."""
    if not late:
        return Check("day_files", Status.OK, "应到文件均已按时到达", "every expected file arrived on time")
    words = {"late": ("迟到", "late"), "missing": ("缺失", "missing")}
    zh = "；".join(f"{r['day']} {r['kind_zh']}{words.get(r['state'], ('迟到', 'late'))[0]}" for r in late[:5])
    en = "; ".join(f"{r['kind_en']} of {r['day']} {words.get(r['state'], ('迟到', 'late'))[1]}" for r in late[:5])
    more_zh, more_en = (f" 等 {len(late)} 个", f" and {len(late) - 5} more") if len(late) > 5 else ("", "")
    return Check("day_files", Status.WARN, f"应到文件未到：{zh}{more_zh}", f"expected files not in: {en}{more_en}",
                 "查看收件目录（settleguard day status / inbox list），联系发送方补发",
                 "look at the inbox (settleguard day status / inbox list) and ask the sender for the file",
                 {"late": [{"day": str(r["day"]), "kind": r.get("kind"), "state": r["state"]} for r in late]})


def skipped(code: str, reason_zh: str, reason_en: str) -> Check:
    """A check that could not run (the database is unreachable, a table missing)."""
    return Check(code, Status.WARN, f"无法检查：{reason_zh}", f"could not check: {reason_en}")
