"""What some API actions need beyond the database: the bank's card verification service, the card
vault, the card settings and the business time zone. They come from the app's composition root
(settleguard.bootstrap ``Container``, kept on ``app.state.container`` by ``create_app``), so the API, the
console and the command line share one vault and one verifier; tests may put their own :class:`Services`
on ``app.state.services``."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from starlette.requests import Request

from settleguard.bootstrap import Container
from settleguard.cards.service import CardSettings
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardVerifier


@dataclass(frozen=True)
class Services:
    container: Container

    @property
    def verifier(self) -> CardVerifier:
        return self.container.verifier

    @property
    def vault(self) -> Vault:
        return self.container.vault

    @property
    def card_settings(self) -> CardSettings:
        return self.container.card_settings()

    @property
    def timezone(self) -> str:
        return self.container.tz


def container_of(request: Request) -> Container:
    """The composition root of the app serving ``request``."""
    found = request.app.state.container
    assert isinstance(found, Container)
    return found


def local_zone(request: Request) -> ZoneInfo:
    """The business time zone (``SETTLEGUARD_TIMEZONE``, Beijing time by default): pages show times in it."""
    return container_of(request).zone


def services(request: Request) -> Services:
    found = getattr(request.app.state, "services", None)
    if found is None:
        found = request.app.state.services = Services(container_of(request))
    assert isinstance(found, Services)
    return found
