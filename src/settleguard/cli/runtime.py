"""The composition root: settings -> engine, vault, bank channel, clock.

Commands get everything through one :class:`Runtime`, so tests can hand in fakes at this
single place instead of monkeypatching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from settleguard.cards.vault import Vault, load_vault
from settleguard.channels.base import BankChannel
from settleguard.config import Settings
from settleguard.db.engine import normalise_url, open_engine
from settleguard.settlement.model import CutOffs


@dataclass
class Runtime:
    settings: Settings = field(default_factory=Settings)

    @cached_property
    def engine(self) -> Engine:
        return open_engine(self.settings.db)

    @cached_property
    def vault(self) -> Vault:
        return load_vault(self.settings.key, self.settings.key_file)

    @property
    def cutoffs(self) -> CutOffs:
        return CutOffs(self.settings.t1_cutoff_hour, self.settings.d0_cutoff_hour, self.settings.timezone)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sim_state_path(self) -> Path:
        """Where the simulated bank keeps what it executed, beside an SQLite file."""
        url = make_url(normalise_url(self.settings.db))
        if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
            return Path(url.database + ".simbank.jsonl")
        return Path("settleguard-simbank.jsonl")

    @cached_property
    def channel(self) -> BankChannel:
        if self.settings.channel != "simulator":
            raise ValueError(f"unknown channel {self.settings.channel!r}; available: simulator")
        from settleguard.channels.simulator import SimulatedBank

        return SimulatedBank(self.settings.sim_seed, state_path=self.sim_state_path())
