"""Runtime settings, read from the environment (prefix ``SETTLEGUARD_``) or passed in.

Nothing here touches the disk or the network at import time; ``Settings()`` only reads
environment variables.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_URL = "sqlite:///settleguard.db"


class Settings(BaseSettings):
    """settleguard configuration.

    Attributes:
        db: SQLAlchemy URL. Default: the SQLite file ``./settleguard.db``.
        key: base64 (url-safe) 32-byte AES key for card numbers; overrides ``key_file``.
        key_file: where the card-number key lives; created with mode 0600 on first use.
        timezone: the business time zone; cycles and cut-offs are computed in it.
        t1_cutoff_hour: T+1 day cut-over hour (日切): a sale at or after it belongs to the next day.
        d0_cutoff_hour: D+0 cut-over hour.
        channel: bank channel used by ``payouts send`` ("simulator").
        sim_seed: seed of the bank simulator.
    """

    model_config = SettingsConfigDict(env_prefix="SETTLEGUARD_", extra="ignore")

    db: str = DEFAULT_DB_URL
    key: str | None = None
    key_file: Path = Path("settleguard.key")
    timezone: str = "Asia/Shanghai"
    t1_cutoff_hour: int = Field(default=23, ge=0, le=24)
    d0_cutoff_hour: int = Field(default=22, ge=0, le=24)
    channel: str = "simulator"
    sim_seed: int = 20261127
