"""The composition root: settings -> engine, vault, bank channel, clock.

Commands get everything through one :class:`Runtime`, so tests can hand in fakes at this
single place instead of monkeypatching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `settleguard --help` must not load SQLAlchemy, pydantic or cryptography
    from sqlalchemy import Engine

    from settleguard.cards.service import CardSettings
    from settleguard.cards.vault import Vault
    from settleguard.cards.verifier import CardVerifier
    from settleguard.channels.base import BankChannel
    from settleguard.channels.iso20022.pain001 import BatchConfig
    from settleguard.config import Settings
    from settleguard.payouts.service import Options as PayoutOptions
    from settleguard.settlement.model import CutOffs


def _default_settings() -> Settings:
    from settleguard.config import Settings

    return Settings()


@dataclass
class Runtime:
    settings: Settings = field(default_factory=_default_settings)

    @cached_property
    def engine(self) -> Engine:
        from settleguard.db.engine import open_engine

        engine = open_engine(self.settings.db)
        from settleguard.audit.service import snapshot_config

        # config_snapshot / config_changed in the audit trail when the non-secret settings differ.
        snapshot_config(engine, self.settings.model_dump(), self.now())
        return engine

    @cached_property
    def vault(self) -> Vault:
        """The card key, checked against this database on first use (cards.custody; KeyCustodyError)."""
        from settleguard.cards.custody import open_vault

        key_file = None if self.settings.key else self.key_file
        return open_vault(self.engine, key=self.settings.key, key_file=key_file, now=self.now())

    @property
    def key_file(self) -> Path:
        """SETTLEGUARD_KEY_FILE, or the file beside the SQLite database (KeyCustodyError on a server)."""
        from settleguard.cards.custody import resolve_key_file

        return resolve_key_file(self.settings.db, self.settings.key_file)

    @property
    def cutoffs(self) -> CutOffs:
        from settleguard.settlement.model import CutOffs

        return CutOffs(self.settings.t1_cutoff_hour, self.settings.d0_cutoff_hour, self.settings.timezone)

    def now(self) -> datetime:
        return datetime.now(UTC)

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
        if self.settings.card_verifier != "simulator":
            raise ValueError(f"unknown card verifier {self.settings.card_verifier!r}; available: simulator")
        from settleguard.cards.verifier_sim import SimulatedVerifier

        return SimulatedVerifier(self.settings.card_verifier_seed)

    def payout_options(self) -> PayoutOptions:
        """Retry, breaker and staleness settings of payout runs for this database."""
        from datetime import timedelta

        from settleguard.payouts.service import Options

        stale = timedelta(seconds=self.settings.worker_stale_seconds) if self.engine.dialect.name == "postgresql" else None
        return Options(stale_after=stale, file_answer_due_business_days=self.settings.file_answer_due_business_days)

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
