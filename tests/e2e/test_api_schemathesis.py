"""Schemathesis over every operation of the API's OpenAPI document (read from ``create_app`` at run time,
so routes added later are covered too): generated valid and invalid requests, sent in-process (ASGI) with
an operator's and with a merchant user's Bearer token to a migrated SQLite database seeded with three
merchants, two held payouts (each with a case) and a paid one. No answer may be a 5xx, and every answer
whose status the document declares must match its schema.

Each operation runs on its own copy of the seeded database, so a cancel, a release or a logout in one
operation does not change what the next one sees. Bounded: ``EXAMPLES`` examples per operation and
generation mode, derandomised (the same requests every run)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import select

from factories import Txn, import_rows, make_merchants, ref
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.bootstrap import Container
from settleguard.cards.vault import load_vault
from settleguard.cases.service import open_case
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.payouts.service import send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind
from settleguard.web.app import create_app

pytestmark = pytest.mark.slow

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)
PASSWORD = "fuzz-correct-horse"
EXAMPLES = 25  # per operation and generation mode
NAME_MISMATCH = BankOutcome(OutcomeStatus.FAILED, "3031", "账号户名不符", "{}", scheme="allinpay")
PAID = BankOutcome(OutcomeStatus.SUCCEEDED, "0000", "交易成功", "{}", scheme="allinpay")
CHECKS = [not_a_server_error, response_schema_conformance]


class Bank:
    name = "fuzz"

    def __init__(self, bad_keys: set[str]) -> None:
        self.bad_keys = bad_keys

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        return NAME_MISMATCH if instruction.idempotency_key in self.bad_keys else PAID

    def inquire(self, idempotency_key: str) -> BankOutcome:
        return PAID


@dataclass(frozen=True)
class Seeded:
    db: Path  # the template database file; each operation runs on a copy
    tokens: dict[Role, str]
    ids: dict[str, list[Any]]  # path parameter name -> values that exist (payout_id, merchant_id, ...)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Merchants a, b, c settled and paid once: a's and c's payouts held (name mismatch), b's paid; a case
    for each held payout; an operator and a merchant user of a, each with a token."""
    root = tmp_path_factory.mktemp("fuzz")
    db = root / "template.db"
    vault = load_vault(None, root / "test.key")
    engine = open_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            a, b, c = make_merchants(conn, vault, 3)
        at = datetime.combine(DAY, dtime(12), SH)
        import_rows(engine, root, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, fen)
                                   for m, fen in ((a, 52_000), (b, 61_000), (c, 7_300))], now=NOW)
        settle(engine, DAY, NOW)
        with engine.connect() as conn:
            payout_of = dict(conn.execute(select(t.payouts.c.merchant_id, t.payouts.c.id)).all())
            keys = dict(conn.execute(select(t.payouts.c.id, t.payouts.c.idempotency_key)).all())
        send_due(engine, Bank({keys[payout_of[a.id]], keys[payout_of[c.id]]}), vault, as_of=date(2026, 11, 19),
                 now=datetime(2026, 11, 19, 1, 0, tzinfo=UTC))
        cases = [open_case(engine, merchant_no=m.merchant_no, category="card_info_error", title=f"户名不符 {m.merchant_no}",
                           actor="test", now=NOW, payout_ids=[payout_of[m.id]], tz="Asia/Shanghai") for m in (a, c)]
        tokens = {}
        for name, role, merchant_no in (("oper", Role.OPERATOR, None), ("shop-a", Role.MERCHANT, a.merchant_no)):
            add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant_no,
                     display_name=name, now=NOW, actor="test")
            tokens[role] = issue_token(engine, username=name, name="fuzz", now=NOW, actor="test").token
        with engine.connect() as conn:
            statuses = sorted(str(s) for (s,) in conn.execute(select(t.payouts.c.status)))
    finally:
        engine.dispose()
    assert statuses == ["held", "held", "succeeded"]
    merchants = [a, b, c]
    return Seeded(db, tokens, {
        "payout_id": [payout_of[m.id] for m in merchants],
        "merchant_id": [m.id for m in merchants],
        "merchant_no": [m.merchant_no for m in merchants],
        "case_id": cases,
    })


def copy_db(template: Path, target: Path) -> str:
    for f in template.parent.glob(template.name + "*"):  # the database and its -wal/-shm files, if any
        shutil.copy(f, target.parent / (target.name + f.name[len(template.name):]))
    return f"sqlite:///{target}"


def known_values(operation: Any, seeded: Seeded) -> dict[str, list[Any]]:
    """Existing values for this operation's path parameters, so that generated requests reach real rows
    (a generated id almost never exists): seeded ids by name, small ids for other integer ``*_id``."""
    out: dict[str, list[Any]] = {}
    for param in operation.path_parameters:
        definition = param.definition.get("schema", param.definition)
        if param.name in seeded.ids:
            out[param.name] = seeded.ids[param.name]
        elif param.name.endswith("id") and definition.get("type") == "integer":
            out[param.name] = [1, 2, 3, 4]
    return out


def strategy(operation: Any, mode: GenerationMode, known: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    generated = operation.as_strategy(generation_mode=mode)
    if not known or not mode.is_positive:
        return generated
    names = sorted(known)
    pinned = st.tuples(*(st.sampled_from(known[n]) for n in names)).flatmap(
        lambda values: operation.as_strategy(generation_mode=mode, path_parameters=dict(zip(names, values, strict=True))))
    return st.one_of(pinned, generated)


def run_operation(operation: Any, mode: GenerationMode, known: dict[str, list[Any]], app: Any,
                  headers: dict[str, str]) -> int:
    """Run the generated cases of one operation; returns how many were sent."""
    sent = 0

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=strategy(operation, mode, known))
    def check(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(app=app, headers=headers, checks=CHECKS)

    check()
    return sent


@pytest.fixture
def operations(seeded: Seeded, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    engine = open_engine(copy_db(seeded.db, tmp_path / "schema.db"))
    try:
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(engine))
        yield schema.get_all_operations
    finally:
        engine.dispose()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.MERCHANT])
def test_no_operation_answers_5xx_or_off_schema(role: Role, seeded: Seeded, operations: Callable[[], Any],
                                               tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {seeded.tokens[role]}"}
    failures: list[str] = []
    labels: list[str] = []
    sent = 0
    for n, result in enumerate(operations()):
        operation = result.ok()
        labels.append(operation.label)
        known = known_values(operation, seeded)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            engine = open_engine(copy_db(seeded.db, tmp_path / f"op{n}-{mode}.db"))
            try:
                app = create_app(Container(given_engine=engine, given_vault=load_vault(None, seeded.db.parent / "test.key")))
                sent += run_operation(operation, mode, known, app, headers)
            except Unsatisfiable:
                # no parameters and no body: nothing to make invalid
                assert not mode.is_positive, operation.label
                assert not list(operation.iter_parameters()), operation.label
            except (Exception, FailureGroup) as exc:  # one report for all operations
                failures.append(f"--- {operation.label} ({mode}):\n{exc}")
            finally:
                engine.dispose()
    # The document covers at least the foundation's operations, and they were exercised.
    for label in ("GET /api/v1/payouts", "GET /api/v1/payouts/{payout_id}", "POST /api/v1/payouts/{payout_id}/release",
                  "GET /api/v1/merchants/{merchant_id}", "POST /api/v1/diagnose", "GET /metrics"):
        assert label in labels, labels
    assert sent >= 2 * len(labels), (sent, labels)
    assert not failures, "\n".join(failures)
