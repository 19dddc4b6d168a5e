"""Runtime settings, read from the environment (prefix ``SETTLEGUARD_``) or passed in.

Nothing here touches the disk or the network at import time; ``Settings()`` only reads
environment variables.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_DB_URL = "sqlite:///settleguard.db"
DEFAULT_TIMEZONE = "Asia/Shanghai"  # Beijing time; the one place the default zone is written (the rest is passed it)

# The configuration file's values (field -> value, read and mapped by config_file.py) while settings_with_file
# builds Settings; empty otherwise, so that a plain Settings() reads the environment only.
_FILE_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("settleguard_file_values", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """settleguard.toml as a pydantic-settings source, below the environment (docs/operations.md 配置)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_VALUES.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_VALUES.get() or {})


class Settings(BaseSettings):
    """settleguard configuration.

    Attributes:
        db: SQLAlchemy URL. Default: the SQLite file ``./settleguard.db``.
        key: base64 (url-safe) 32-byte AES key for card numbers; overrides ``key_file``.
        key_file: where the card-number key lives. Default: beside the SQLite file (``settleguard.db`` ->
            ``settleguard.key`` in the same directory); a PostgreSQL database needs it (or ``key``) set. The
            key belongs to the database (cards/custody.py): it is created only on an empty database or by
            ``settleguard keys init``.
        timezone: the business time zone; cycles and cut-offs are computed in it.
        t1_cutoff_hour: T+1 day cut-over hour (日切): a sale at or after it belongs to the next day.
        d0_cutoff_hour: D+0 cut-over hour.
        channel: bank channel used by ``payouts send`` and the worker: "simulator" (in process) or
            "http" (a bank's JSON API at ``bank_url``, e.g. ``settleguard simulate bank``).
        bank_url: base URL of the HTTP bank API.
        sim_seed: seed of the bank simulator.
        card_verifier: bank verification service for cards ("simulator").
        card_verifier_seed: seed of the simulated verification service.
        card_attempts_per_day: four-element verifications a merchant may start per local calendar day.
        card_status_check_days: a bound card's status is inquired again when the last inquiry is older.
        card_recheck_unusable_days: a card marked unusable as frozen, restricted or dormant is inquired
            again after this many days, and made active again when the bank says normal.
        payout_initiating_party, payout_debtor_name, payout_debtor_account, payout_debtor_bank: who pays
            in pain.001 files (GrpHdr/InitgPty, Dbtr, DbtrAcct, DbtrAgt).
        worker_stale_seconds: on PostgreSQL, a payout left submitted or in inquiry this long is taken
            for one a dead worker left behind and inquired about.
        worker_interval: seconds between the worker's cycles (``worker --interval`` wins).
        server_host, server_port, server_workers, server_secure_cookies: defaults of ``serve --host --port
            --workers --secure-cookies`` (the flags win).
        file_answer_due_business_days: a payout sent in a pain.001 file still without a final answer this
            many business days after the export is flagged (ops alert and case; cases/overdue.py).
        smtp_host, smtp_port, smtp_from: the SMTP server merchant emails go through, and the sender
            address (``SETTLEGUARD_SMTP_HOST`` ...); smtp_starttls, smtp_user, smtp_password optional.
        webhook_timeout_seconds: timeout of one webhook POST (and of one SMTP conversation).
        notify_max_attempts: tries of one delivery before it is given up (gave_up).
        notify_backoff_base_seconds, notify_backoff_cap_seconds: exponential backoff with full jitter
            between tries: a draw from [1 s, min(cap, base * 2**(n-1))] after n failed tries.
        notify_lease_seconds: a claimed delivery whose worker died is taken again after this long.
        notify_batch: deliveries claimed per transaction.
        notify_cycle_seconds: time box of notice delivery inside one payout worker cycle.
        future_tolerance_minutes: ``import transactions`` rejects a row whose time is later than the
            importing machine's clock plus this many minutes (clocks of terminals drift a little).
        recon_break_case_hours: a reconciliation break still open this many hours after it was found opens a
            case (工单) with its statement lines and payout (reconciliation/followup.py).
        enterprise_legal_person_account: onboarding (``merchants import|add``) lets an enterprise (企业) settle
            to its legal person's own personal debit card instead of its corporate account (docs/merchants.md).
    """

    model_config = SettingsConfigDict(env_prefix="SETTLEGUARD_", extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags (keyword arguments) > SETTLEGUARD_* environment > settleguard.toml > defaults
        return init_settings, env_settings, dotenv_settings, file_secret_settings, _FileSource(settings_cls)

    db: str = DEFAULT_DB_URL
    # where the console's and the API's read-only pages (GET) read: a streaming standby's URL (docs/operations.md
    # 故障切换 Failover); unset: the primary (``db``). Writes, logins and sessions always go to ``db``.
    read_db: str | None = None
    key: str | None = None
    key_file: Path | None = None
    # the card key from a command (a KMS / HSM-backed store): shlex-split, no shell, its stdout is the key file's
    # content; precedence key > key_command > key_file (cards/key_source.py, docs/cards.md)
    key_command: str | None = None
    key_command_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    timezone: str = DEFAULT_TIMEZONE
    t1_cutoff_hour: int = Field(default=23, ge=0, le=24)
    d0_cutoff_hour: int = Field(default=22, ge=0, le=24)
    channel: str = "simulator"
    bank_url: str = "http://127.0.0.1:8600"
    sim_seed: int = 20261127
    card_verifier: str = "simulator"
    card_verifier_seed: int = 20261127
    card_attempts_per_day: int = Field(default=5, ge=1)
    card_status_check_days: int = Field(default=90, ge=1)
    card_recheck_unusable_days: int = Field(default=1, ge=1)
    payout_initiating_party: str = "结算卫士收单服务有限公司"
    payout_debtor_name: str = "结算卫士收单服务有限公司备付金账户"
    payout_debtor_account: str = "1100000000000000001"
    payout_debtor_bank: str = "ICBC"
    worker_stale_seconds: int = Field(default=300, ge=0)
    worker_interval: float = Field(default=30.0, gt=0)  # `worker` seconds between cycles (--interval wins)
    server_host: str = "127.0.0.1"  # `serve` defaults; --host, --port, --workers, --secure-cookies win
    server_port: int = Field(default=8000, ge=1, le=65535)
    server_workers: int = Field(default=1, ge=1, le=64)
    server_secure_cookies: bool = False
    file_answer_due_business_days: int = Field(default=2, ge=1)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "noreply@settleguard.invalid"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_max_attempts: int = Field(default=8, ge=1)
    notify_backoff_base_seconds: float = Field(default=30.0, gt=0)
    notify_backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    notify_lease_seconds: float = Field(default=60.0, gt=0)
    notify_batch: int = Field(default=20, ge=1)
    notify_cycle_seconds: float = Field(default=20.0, gt=0)
    future_tolerance_minutes: int = Field(default=10, ge=0)
    enterprise_legal_person_account: bool = False
    recon_break_case_hours: int = Field(default=48, ge=1)
    risk_rules: Path | None = None  # an operator's risk rule file merged over risk/rules.toml (docs/risk.md)
    backup_dir: Path | None = None  # the worker's daily backup (ops/backup.py, docs/operations.md); unset: none
    backup_keep: int = Field(default=7, ge=1)  # daily backups kept in backup_dir, the oldest deleted beyond
    # health: thresholds of `settleguard doctor` (ops/doctor_model.py; docs/operations.md "健康检查 Health")
    doctor_disk_warn_mb: int = Field(default=2048, ge=0)  # free space beside the SQLite file
    doctor_disk_fail_mb: int = Field(default=200, ge=0)
    doctor_clock_skew_seconds: float = Field(default=5.0, gt=0)  # system clock vs PostgreSQL now()
    doctor_heartbeat_warn_seconds: int = Field(default=180, ge=1)  # newest worker heartbeat older: warn
    doctor_heartbeat_fail_seconds: int = Field(default=900, ge=1)  # ... older (or none at all): fail
    doctor_notify_pending_warn: int = Field(default=1000, ge=1)  # notice deliveries waiting
    doctor_notify_age_warn_minutes: int = Field(default=30, ge=1)  # oldest waiting delivery
    doctor_notify_age_fail_minutes: int = Field(default=240, ge=1)
    doctor_stuck_warn_minutes: int = Field(default=60, ge=1)  # payouts in result_unknown / inquiry this long
    doctor_stuck_fail_minutes: int = Field(default=24 * 60, ge=1)
    doctor_backup_warn_hours: int = Field(default=26, ge=1)  # newest backup manifest older: warn
    doctor_backup_fail_hours: int = Field(default=72, ge=1)
    doctor_statement_warn_hours: int = Field(default=36, ge=1)  # newest bank statement import older: warn
    # the inbox (inbox/, docs/operations.md "收件目录 Inbox"): files dropped here are imported by the worker's first
    # step; each directory gets done/ and rejected/ beside its files. JSON list in the environment:
    # SETTLEGUARD_INBOX_DIRS='["/data/inbox/bank", "/data/inbox/pos"]'
    inbox_dirs: list[Path] = Field(default_factory=list)
    inbox_quiet_seconds: float = Field(default=10.0, ge=0)  # a file modified more recently waits (still written)
    inbox_max_mb: int = Field(default=2048, ge=1)  # a larger file is refused unread
    inbox_bank_profile: str | None = None  # the profile bank 代付 result files are read with (default: generic)
    # the day runs itself (daycycle/, docs/operations.md "日终自动运行"): times are HH:MM in `timezone`
    day_cycle: bool | None = None  # the worker's "day" step: None = on when inbox_dirs is set; false = off
    day_expected_files: dict[str, str] = Field(default_factory=lambda: {  # inbox file kind -> due by, the day after
        "transactions": "02:00", "clearing_inn": "09:00", "camt053": "10:00"})  # the business day (alert when late)
    day_settle_latest: str | None = "06:00"  # a business day not settled by then (no transaction file): alert
    day_pay_times: list[str] = Field(default_factory=list)  # e.g. ["09:30", "15:00"]; empty: pay whenever due
    day_pay_window_minutes: int = Field(default=60, ge=1)  # API channel: new sends only this long after a pay time
    day_pay_outbox: Path | None = None  # file channel: a pain.001 written here at each pay time, no API sends
    day_lookback_days: int = Field(default=7, ge=1, le=60)  # arrivals acted on / files watched this many days back
    day_recon_wait_hours: float = Field(default=6.0, ge=0)  # a statement waits this long for the day's payouts


def check_file_values(values: dict[str, Any]) -> None:
    """Validate the configuration file's values alone (no environment: a plain model of the same fields), so that
    pydantic.ValidationError names only the file's fields."""
    from pydantic import create_model

    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in Settings.model_fields.items()}
    create_model("SettingsFile", **fields).model_validate(values)


def settings_with_file(values: dict[str, Any], **overrides: Any) -> Settings:
    """Settings from ``overrides`` (flags) > the environment > ``values`` (the file, config_file.py) > defaults."""
    token = _FILE_VALUES.set(values)
    try:
        return Settings(**overrides)
    finally:
        _FILE_VALUES.reset(token)
