"""The composition root: how settleguard is put together, in one file.

:class:`Container` builds :class:`~settleguard.config.Settings` once (or takes the one it is given) and, on
first use, everything the entry points hand to the domain services: the database engine, the bank channel,
the card vault and verification service, the clock, the business time zone and each domain's settings. The
command line (``cli/``), the web application (``web.app.create_app(container)``; each process of ``serve
--workers N`` builds its own in ``cli/commands_serve.py:app_from_environment``) and the worker receive a
container; nothing below them reads the environment (tests/unit/test_architecture_wiring.py). Tests hand in
fakes here (``given_engine``, ``given_vault``, ``given_verifier``, ``given_channel``, ``clock``) instead of
monkeypatching.

Everything heavy is imported where it is used: ``settleguard --help`` must not load SQLAlchemy, pydantic or
cryptography (tests/e2e/test_cli_startup.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy import Engine

    from settleguard.cards.key_source import KeySource
    from settleguard.cards.service import CardSettings
    from settleguard.cards.vault import Vault
    from settleguard.cards.verifier import CardVerifier
    from settleguard.channels.base import BankChannel
    from settleguard.channels.iso20022.pain001 import BatchConfig
    from settleguard.config import Settings
    from settleguard.config_file import Sources
    from settleguard.daycycle.service import DayConfig
    from settleguard.inbox.service import InboxConfig
    from settleguard.notify.delivery import DeliverySettings
    from settleguard.ops.backup import BackupPolicy
    from settleguard.ops.doctor import DoctorInput
    from settleguard.payouts.service import Options as PayoutOptions
    from settleguard.risk.model import RuleSet
    from settleguard.settlement.model import CutOffs

def settings_from_environment(**overrides: Any) -> Settings:
    """The settings from ``SETTLEGUARD_*`` variables over the configuration file (:func:`load_settings`), with
    ``overrides`` (those not None) winning."""
    return load_settings(**overrides).settings


@dataclass(frozen=True)
class LoadedSettings:
    """The effective settings and where each came from (``settleguard config show``)."""

    settings: Settings
    sources: Sources


def load_settings(config: Path | None = None, *, flags: dict[str, str] | None = None,
                  **overrides: Any) -> LoadedSettings:
    """Settings from ``overrides`` (flags; those not None) > ``SETTLEGUARD_*`` variables > the configuration file
    (``config``, else ``$SETTLEGUARD_CONFIG``, else ``./settleguard.toml`` when there) > defaults.

    ``flags`` names the flag of an override (``{"db": "--db"}``) for ``config show`` and errors.
    Raises config_file.ConfigError naming the key, file and line, or the variable (nothing opened).
    """
    import os

    from pydantic import ValidationError

    from settleguard import config_file as cf
    from settleguard.config import Settings, check_file_values, settings_with_file

    given = {k: v for k, v in overrides.items() if v is not None}
    names = list(Settings.model_fields)
    path, how = cf.resolve_path(config, os.environ, Path.cwd())
    file = cf.read(path, how, names) if path is not None else None
    if file is not None:
        try:
            check_file_values(file.values)  # the file's own errors name its keys, even where env overrides them
        except ValidationError as exc:
            raise cf.file_values_error(file, exc) from None
    sources = cf.Sources(file, cf.env_fields(os.environ, names),
                         {k: (flags or {}).get(k, "--" + k.replace("_", "-")) for k in given})
    try:
        settings = settings_with_file(file.values if file is not None else {}, **given)
    except ValidationError as exc:
        raise cf.settings_error(sources, exc) from None
    return LoadedSettings(settings, sources)


@dataclass
class Container:
    """Settings -> engine, vault, bank channel, verifier, clock, time zone and domain settings, each built once.

    Attributes:
        settings: read from the environment when not given.
        given_engine: an engine to use as it is (not migrated, no config snapshot); else one is opened from
            ``settings.db`` (migrated, config snapshot written to the audit trail).
        given_vault, given_verifier, given_channel: fakes or pre-built parts; else built from the settings.
        clock: the time source; else the system clock in UTC.
    """

    settings: Settings = field(default_factory=settings_from_environment)
    _: KW_ONLY
    given_engine: Engine | None = None
    given_vault: Vault | None = None
    given_verifier: CardVerifier | None = None
    given_channel: BankChannel | None = None
    clock: Callable[[], datetime] | None = None

    # --- infrastructure ------------------------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
        if self.given_engine is not None:
            return self.given_engine
        from settleguard.db.engine import open_engine

        engine = open_engine(self.settings.db)
        from settleguard.audit.service import snapshot_config

        # config_snapshot / config_changed in the audit trail when the non-secret settings differ.
        snapshot_config(engine, self.settings.model_dump(), self.now())
        return engine

    @cached_property
    def read_engine(self) -> Engine:
        """Where the console's and the API's GET handlers read: ``settings.read_db`` (a streaming standby, not
        migrated: it replays the primary) or, unset, :attr:`engine` (docs/operations.md 故障切换 Failover)."""
        if not self.settings.read_db:
            return self.engine
        from settleguard.db.engine import create

        return create(self.settings.read_db)

    def with_engine(self, engine: Engine) -> Container:
        """The same wiring over another engine (a server process's pooled engine); parts are built anew."""
        return replace(self, given_engine=engine)

    @cached_property
    def vault(self) -> Vault:
        """The card key, checked against this database on first use (cards.custody; KeyCustodyError)."""
        if self.given_vault is not None:
            return self.given_vault
        from settleguard.cards.custody import open_vault

        s = self.settings
        key_file = None if s.key or s.key_command else self.key_file  # precedence: key > key_command > key_file
        return open_vault(self.engine, key=s.key, key_file=key_file, now=self.now(), command=s.key_command,
                          command_timeout=s.key_command_timeout_seconds)

    def key_source(self) -> KeySource:
        """The configured card key (cards/key_source.py): SETTLEGUARD_KEY > SETTLEGUARD_KEY_COMMAND > the key file."""
        from settleguard.cards.key_source import KeySource

        s = self.settings
        key_file = s.key_file if s.key or s.key_command else self.key_file
        return KeySource(env_key=s.key, command=s.key_command, key_file=key_file,
                         timeout=s.key_command_timeout_seconds)

    @property
    def key_file(self) -> Path:
        """SETTLEGUARD_KEY_FILE, or the file beside the SQLite database (KeyCustodyError on a server)."""
        from settleguard.cards.custody import resolve_key_file

        return resolve_key_file(self.settings.db, self.settings.key_file)

    def sim_state_path(self) -> Path:
        """Where the simulated bank keeps what it executed, beside an SQLite file."""
        from sqlalchemy.engine import make_url

        from settleguard.db.engine import normalise_url

        url = make_url(normalise_url(self.settings.db))
        if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
            return Path(url.database + ".simbank.jsonl")
        return Path("settleguard-simbank.jsonl")

    @cached_property
    def channel(self) -> BankChannel:
        if self.given_channel is not None:
            return self.given_channel
        if self.settings.channel == "http":
            from settleguard.channels.http_bank import HttpBankChannel

            return HttpBankChannel(self.settings.bank_url)
        if self.settings.channel != "simulator":
            raise ValueError(f"unknown channel {self.settings.channel!r}; available: simulator, http")
        from settleguard.channels.simulator import SimulatedBank

        return SimulatedBank(self.settings.sim_seed, state_path=self.sim_state_path())

    @cached_property
    def verifier(self) -> CardVerifier:
        """The bank's card verification service named in the settings."""
        if self.given_verifier is not None:
            return self.given_verifier
        if self.settings.card_verifier != "simulator":
            raise ValueError(f"unknown card verifier {self.settings.card_verifier!r}; available: simulator")
        from settleguard.cards.verifier_sim import SimulatedVerifier

        return SimulatedVerifier(self.settings.card_verifier_seed)

    # --- time ----------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time, aware, in UTC (or the given clock's)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)

    @property
    def tz(self) -> str:
        """The business time zone's name (``SETTLEGUARD_TIMEZONE``; Beijing time by default)."""
        return self.settings.timezone

    @cached_property
    def zone(self) -> ZoneInfo:
        """The business time zone."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.settings.timezone)

    # --- each domain's settings ----------------------------------------------------------------------

    @property
    def cutoffs(self) -> CutOffs:
        from settleguard.settlement.model import CutOffs

        return CutOffs(self.settings.t1_cutoff_hour, self.settings.d0_cutoff_hour, timezone=self.settings.timezone)

    def payout_options(self) -> PayoutOptions:
        """Retry, breaker and staleness settings of payout runs for this database."""
        from datetime import timedelta

        from settleguard.payouts.policy import RetryPolicy
        from settleguard.payouts.service import Options

        stale = timedelta(seconds=self.settings.worker_stale_seconds) if self.engine.dialect.name == "postgresql" else None
        return Options(retry=RetryPolicy(timezone=self.settings.timezone), stale_after=stale,
                       file_answer_due_business_days=self.settings.file_answer_due_business_days)

    def card_settings(self) -> CardSettings:
        from settleguard.cards.service import CardSettings

        return CardSettings.from_settings(self.settings)

    def batch_config(self) -> BatchConfig:
        """Who pays in pain.001 files."""
        from settleguard.channels.iso20022.pain001 import Agent, BatchConfig, DebtorAccount

        s = self.settings
        return BatchConfig(initiating_party=s.payout_initiating_party,
                           debtor=DebtorAccount(s.payout_debtor_name, s.payout_debtor_account,
                                                Agent(bank_code=s.payout_debtor_bank)))

    def risk_rules(self) -> RuleSet:
        """The risk rule set: risk/rules.toml with the operator's file (``settings.risk_rules``) merged over it."""
        from settleguard.risk.service import load_rules

        return load_rules(self.settings.risk_rules)

    @property
    def recon_case_hours(self) -> int:
        """Hours an open reconciliation break waits before it opens a case (``recon_break_case_hours``)."""
        return self.settings.recon_break_case_hours

    def backup_policy(self) -> BackupPolicy | None:
        """The worker's daily backup (``backup_dir``, ``backup_keep``); None when no directory is set."""
        from settleguard.ops.backup import BackupPolicy

        d = self.settings.backup_dir
        return None if d is None else BackupPolicy(Path(d), self.settings.backup_keep)

    @property
    def day_cycle_enabled(self) -> bool:
        """The worker's ``day`` step runs (``day_cycle``; unset: when ``inbox_dirs`` is set)."""
        s = self.settings
        return bool(getattr(s, "inbox_dirs", None)) if s.day_cycle is None else s.day_cycle

    def day_config(self) -> DayConfig:
        """The day's cycle (daycycle.service.DayConfig) from the ``day_*`` settings; ScheduleError names a bad one."""
        from datetime import timedelta

        from settleguard.daycycle.model import Schedule, ScheduleError, parse_time
        from settleguard.daycycle.service import DayConfig

        s = self.settings
        expected = {kind: parse_time(f"day_expected_files.{kind}", at) for kind, at in s.day_expected_files.items()}
        pay = tuple(sorted({parse_time("day_pay_times", at) for at in s.day_pay_times}))
        if s.day_pay_outbox is not None and not pay:
            raise ScheduleError("day_pay_outbox", str(s.day_pay_outbox), "文件出款需要同时设置出款时间 day_pay_times",
                                "the file channel needs pay times (day_pay_times)")
        schedule = Schedule(expected=expected,
                            settle_latest=parse_time("day_settle_latest", s.day_settle_latest)
                            if s.day_settle_latest else None,
                            pay_times=pay, pay_window=timedelta(minutes=s.day_pay_window_minutes),
                            pay_to_file=s.day_pay_outbox is not None, lookback_days=s.day_lookback_days,
                            recon_wait=timedelta(hours=s.day_recon_wait_hours))
        return DayConfig(schedule, self.cutoffs, outbox=Path(s.day_pay_outbox) if s.day_pay_outbox else None,
                         batch=self.batch_config() if s.day_pay_outbox is not None else None)

    def inbox_config(self, dirs: Sequence[Path] | None = None) -> InboxConfig | None:
        """The inbox (``inbox_dirs``, or ``dirs`` given, and ``inbox_*``; inbox.service), with what its importers
        need; None when no directory is configured."""
        from datetime import timedelta

        from settleguard.inbox.service import Importers, InboxConfig
        from settleguard.merchants.checks import Rules

        s = self.settings
        dirs = list(dirs or s.inbox_dirs)
        if not dirs:
            return None
        importers = Importers(tz=s.timezone, cutoffs=self.cutoffs, vault=lambda: self.vault,
                              payout_options=self.payout_options(),
                              merchant_rules=Rules(enterprise_legal_person_account=s.enterprise_legal_person_account),
                              future_tolerance=timedelta(minutes=s.future_tolerance_minutes),
                              bank_profile=s.inbox_bank_profile)
        return InboxConfig(tuple(Path(d) for d in dirs), importers, quiet_seconds=s.inbox_quiet_seconds,
                           max_bytes=s.inbox_max_mb << 20)

    def delivery_settings(self) -> DeliverySettings:
        """How notices are delivered (SMTP, webhooks, backoff, leases); the time box is
        ``settings.notify_cycle_seconds``."""
        from settleguard.notify.delivery import DeliverySettings

        return DeliverySettings.from_settings(self.settings)

    def doctor_input(self) -> DoctorInput:
        """What ``settleguard doctor`` checks: the database URL, the card key as configured (not opened: doctor
        writes nothing), the backup directory (``backup_dir``, when configured) and the ``doctor_*`` thresholds."""
        from datetime import timedelta

        from settleguard.cards.custody import KeyCustodyError, resolve_key_file
        from settleguard.ops.doctor import DoctorInput
        from settleguard.ops.doctor_model import Thresholds

        s = self.settings
        key_file: Path | None = None
        key_error: str | None = None
        if not s.key and not s.key_command:
            try:
                key_file = resolve_key_file(s.db, s.key_file)
            except KeyCustodyError as exc:
                key_error = exc.en
        backup_dir = getattr(s, "backup_dir", None)  # Settings.backup_dir (issue 23 item 3), when present
        mib = 2**20
        th = Thresholds(
            disk_warn_bytes=s.doctor_disk_warn_mb * mib, disk_fail_bytes=s.doctor_disk_fail_mb * mib,
            clock_skew=timedelta(seconds=s.doctor_clock_skew_seconds),
            heartbeat_warn=timedelta(seconds=s.doctor_heartbeat_warn_seconds),
            heartbeat_fail=timedelta(seconds=s.doctor_heartbeat_fail_seconds),
            notify_pending_warn=s.doctor_notify_pending_warn,
            notify_age_warn=timedelta(minutes=s.doctor_notify_age_warn_minutes),
            notify_age_fail=timedelta(minutes=s.doctor_notify_age_fail_minutes),
            stuck_warn=timedelta(minutes=s.doctor_stuck_warn_minutes),
            stuck_fail=timedelta(minutes=s.doctor_stuck_fail_minutes),
            backup_warn=timedelta(hours=s.doctor_backup_warn_hours),
            backup_fail=timedelta(hours=s.doctor_backup_fail_hours),
            statement_warn=timedelta(hours=s.doctor_statement_warn_hours))
        return DoctorInput(s.db, s.key, key_file, Path(backup_dir) if backup_dir else None, th, key_error,
                           key_command=s.key_command, key_command_timeout=s.key_command_timeout_seconds,
                           late_files=self._late_files if self.day_cycle_enabled else None)

    def _late_files(self, engine: Engine, now: datetime) -> list[dict[str, Any]]:
        """The day's expected files late or missing now (doctor's ``day_files`` check; daycycle.service)."""
        from settleguard.daycycle.model import kind_name
        from settleguard.daycycle.service import late_files

        return [{"day": f.day, "kind": f.kind, "kind_zh": kind_name(f.kind)[0], "kind_en": kind_name(f.kind)[1],
                 "state": f.state, "due_at": f.due_at} for f in late_files(engine, self.day_config(), now)]
