"""What the portal's card re-binding needs besides the database: the card-number vault, the bank's
verification service and the binding settings, from the app's composition root (settleguard.bootstrap, the
same parts ``settleguard card bind`` uses) on first use, or handed in by :func:`set_card_tools` (tests,
embedding)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request

from settleguard.cards.service import CardSettings
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardVerifier
from settleguard.web.services import container_of

STATE = "console_card_tools"


@dataclass(frozen=True)
class CardTools:
    vault: Vault
    verifier: CardVerifier
    settings: CardSettings


def set_card_tools(app: FastAPI, tools: CardTools) -> None:
    setattr(app.state, STATE, tools)


def card_tools(request: Request) -> CardTools:
    got = getattr(request.app.state, STATE, None)
    if got is None:
        root = container_of(request)
        got = CardTools(root.vault, root.verifier, root.card_settings())
        setattr(request.app.state, STATE, got)
    assert isinstance(got, CardTools)
    return got
