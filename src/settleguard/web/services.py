"""What some API actions need beyond the database: the bank's card verification service, the card
vault, the card settings and the business time zone. Built from the settings exactly as the CLI builds
them (cli/runtime.py ``Runtime``), on first use, and kept on ``app.state.services``; tests put their own
:class:`Services` there."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from starlette.requests import Request

from settleguard.cards.service import CardSettings
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardVerifier
from settleguard.config import Settings

if TYPE_CHECKING:
    from settleguard.cli.runtime import Runtime


@dataclass
class Services:
    settings: Settings = field(default_factory=Settings)
    given_verifier: CardVerifier | None = None
    given_vault: Vault | None = None

    @cached_property
    def _runtime(self) -> Runtime:
        from settleguard.cli.runtime import Runtime

        return Runtime(self.settings)

    @property
    def verifier(self) -> CardVerifier:
        if self.given_verifier is None:
            self.given_verifier = self._runtime.verifier
        assert self.given_verifier is not None
        return self.given_verifier

    @property
    def vault(self) -> Vault:
        if self.given_vault is None:
            self.given_vault = self._runtime.vault
        assert self.given_vault is not None
        return self.given_vault

    @property
    def card_settings(self) -> CardSettings:
        return CardSettings.from_settings(self.settings)

    @property
    def timezone(self) -> str:
        return self.settings.timezone


def services(request: Request) -> Services:
    found = getattr(request.app.state, "services", None)
    if found is None:
        found = request.app.state.services = Services()
    assert isinstance(found, Services)
    return found
