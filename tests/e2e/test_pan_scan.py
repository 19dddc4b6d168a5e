"""No full card number anywhere: run the demo and the card commands, then scan the SQLite file and its WAL,
every file written, stdout and stderr, and (on PostgreSQL) every table's text, for any generated PAN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select

from settleguard.cards.bins import luhn_complete
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.config import Settings
from settleguard.sim.generator import generate_merchants

MERCHANTS, SEED = 60, 11
ID, PHONE = "11010519491231002X", "13812345678"


def run(db: str, *args: str, cwd: Path, log: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "scan.key"), "COLUMNS": "160"}
    env.pop("SETTLEGUARD_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    log.extend([proc.stdout, proc.stderr])
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def leaks(blob: bytes, pans: list[str]) -> list[str]:
    """Masks of the card numbers found in ``blob`` as ASCII digits or UTF-16 (SQLite may store either)."""
    found = []
    for pan in pans:
        if pan.encode() in blob or pan.encode("utf-16-le") in blob or pan.encode("utf-16-be") in blob:
            found.append(pan[:6] + "…" + pan[-4:])
    return found


def test_no_full_card_number_in_the_database_files_outputs_or_logs(db_url: str, tmp_path: Path) -> None:
    sims = generate_merchants(MERCHANTS, SEED)
    pans = [m.pan for m in sims]
    sim = SimulatedVerifier(Settings().card_verifier_seed)
    new = next(p for p in (luhn_complete(f"621226{i:012d}") for i in range(900000, 999999))
               if sim.status_of(p) is CardStatus.NORMAL and sim.verify_four_elements(p, "x", ID, PHONE).ok)
    pans.append(new)
    personal = next(m for m in sims if m.kind == "personal")
    log: list[str] = []
    work = tmp_path / "work"
    work.mkdir()
    run(db_url, "demo", "--merchants", str(MERCHANTS), "--days", "2", "--seed", str(SEED), "--data-dir",
        str(work / "days"), cwd=work, log=log)
    run(db_url, "card", "bind", personal.merchant_no, "--pan", new, "--name", personal.holder_name, "--id",
        personal.id_number, "--phone", PHONE, cwd=work, log=log)
    run(db_url, "card", "bind", personal.merchant_no, "--pan", new[:-1] + "x", "--name", personal.holder_name,
        "--id", personal.id_number, "--phone", PHONE, cwd=work, log=log, check=False)
    run(db_url, "card", "status-check", "--all", cwd=work, log=log)
    for m in sims[:10]:
        run(db_url, "card", "show", m.merchant_no, cwd=work, log=log)
        run(db_url, "card", "show", m.merchant_no, "--json", cwd=work, log=log)
    run(db_url, "card", "check", sims[0].pan, "--json", cwd=work, log=log, check=False)
    run(db_url, "payouts", "list", "--json", "--limit", "100000", cwd=work, log=log)
    run(db_url, "keys", "rotate", cwd=work, log=log)

    outputs = "\n".join(log)
    # `card check PAN` and `card bind --pan` echo nothing but the mask.
    assert leaks(outputs.encode(), pans) == []
    assert personal.merchant_no in outputs  # the scan reads what the commands printed

    files = [p for p in work.rglob("*") if p.is_file()]
    if db_url.startswith("sqlite"):
        db_file = Path(db_url.removeprefix("sqlite:///"))
        files += [p for p in db_file.parent.glob(db_file.name + "*") if p.is_file()]
        assert any(p.name.endswith("-wal") or p.name == db_file.name for p in files)
    assert files
    for path in files:
        blob = path.read_bytes()
        assert leaks(blob, pans) == [], path
    if db_url.startswith("sqlite"):  # the scan reads the database's content
        assert any(personal.merchant_no.encode() in p.read_bytes() for p in files if p.name.startswith(db_file.name))

    # Every column of every table, as text (PostgreSQL files are not ours to read).
    eng = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    meta = MetaData()
    meta.reflect(eng)
    dump: list[str] = []
    with eng.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                dump.append(json.dumps([v.hex() if isinstance(v, bytes | memoryview) else str(v) for v in row],
                                       ensure_ascii=False))
    eng.dispose()
    text_dump = "\n".join(dump)
    assert leaks(text_dump.encode(), pans) == []
    assert personal.pan[:6] + "*" * 9 + personal.pan[-4:] in text_dump  # masks are there


@pytest.mark.parametrize("pan", ["6222021234567890128", "6212 2600 0000 0000 008"])
def test_errors_and_reprs_of_card_objects_show_only_the_mask(pan: str) -> None:
    from settleguard.cards.model import normalize_pan
    from settleguard.cards.service import BindRequest
    from settleguard.cards.verifier_sim import SimulatedVerifier as Sim

    digits = normalize_pan(pan)
    req = BindRequest("898100058120001", pan, "张三", ID, PHONE)
    answers = Sim(1).verify_four_elements(digits, "张三", ID, PHONE), Sim(1).inquire_status(digits)
    text_ = repr(req) + str(req) + "".join(repr(a) for a in answers)
    assert digits not in text_
    assert pan not in text_
