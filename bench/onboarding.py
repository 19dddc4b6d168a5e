"""Onboarding benchmark: import N merchants (with settlement cards and one terminal each) from a merchant file.

Not a unit test. ``python bench/onboarding.py [--n 1000000] [--backend sqlite|postgresql] [--workdir DIR]``.

It writes a valid merchant file of N merchants (80 % 小微 with the operator's debit card, 20 % 企业 with a
corporate account and a USCC), then in the same run:

1. **import**: ``merchants.onboarding.import_merchants`` into a fresh database — every check (resident ID,
   USCC, mobile, MCC, card checks, 一清 own-name rule, duplicates in the file and in the database), the
   card encrypted (AES-GCM), the ID hashed, the audit event;
2. **floor**: the same file read with ``csv`` and the same rows bulk-inserted into another fresh database
   with no checks at all (card encryption and the ID hash included, as in the import).

It prints merchants/s, wall and CPU seconds (this process; on PostgreSQL the server's CPU is not counted)
of both and the ratio import / floor, and writes ``<workdir>/onboarding.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
HEADER = ["merchant_no", "registered_name", "kind", "legal_person", "legal_person_id", "uscc", "mcc", "city",
          "contact_mobile", "cycle", "debit_rate", "debit_cap", "credit_rate", "qr_rate", "fee_effective_from",
          "holder_name", "holder_id", "card_no", "bank", "terminal_sn", "terminal_no", "terminal_model"]
REGIONS = ("110101", "110105", "110108", "310101", "310115", "440103", "440305", "330106", "320102", "510107",
           "420102", "610113")
NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏")
_CN = "零一二三四五六七八九"


def write_file(path: Path, n: int) -> None:
    """N merchants, one row (one terminal) each; every number valid and unique."""
    from stdnum.cn import uscc as _uscc

    from settleguard.cards.bins import load_packaged_bins
    from settleguard.cards.model import luhn_complete
    from settleguard.sim.generator import resident_id_check_digit

    info = load_packaged_bins().debit_bins("ICBC")[0]
    body = info.length - len(info.bin) - 1
    epoch = date(1960, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(HEADER)
        for i in range(1, n + 1):
            r = len(REGIONS)
            born = epoch + timedelta(days=(i // r) % 14_000)
            first17 = f"{REGIONS[i % r]}{born:%Y%m%d}{(i // (r * 14_000)) % 1000:03d}"
            pid = first17 + resident_id_check_digit(first17)
            name = NAMES[i % len(NAMES)]
            common = [f"898{i:012d}"]
            if i % 5 == 0:  # 企业: a corporate account in the company's name
                company = f"北京{''.join(_CN[int(c)] for c in str(i))}商贸有限公司"
                code17 = f"91110105{i:09d}"
                code = code17 + _uscc.calc_check_digit(code17 + "0")
                row = common + [company, "企业", name, pid, code, "5411", "北京", f"139{i % 10**8:08d}", "D+0",
                                "0.55", "", "0.6", "0.3", "2026-11-01", company, "", f"1100{i:013d}", "CCB"]
            else:  # 小微: the operator's own debit card
                card = luhn_complete(info.bin + f"{i:0{body}d}")
                row = common + [f"朝阳区{name}便利店{i}号", "小微", name, pid, "", "5499", "北京", f"138{i % 10**8:08d}",
                                "T+1", "0.5", "20", "0.6", "0.38", "2026-11-01", name, pid, card, "中国工商银行"]
            w.writerow(row + [f"SN{i:010d}", f"{i % 10**8:08d}", "PAX A920"])


def _fresh(url: str | None, workdir: Path, name: str) -> Any:
    from settleguard.db.engine import open_engine

    if url is None:
        db = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        return open_engine(f"sqlite:///{db}")
    from sqlalchemy import create_engine

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        c.exec_driver_sql(f"CREATE SCHEMA {name}")
    admin.dispose()
    sep = "&" if "?" in url else "?"
    return open_engine(f"{url}{sep}options=-csearch_path%3D{name}")


def run_import(engine: Any, path: Path, vault: Any) -> dict[str, Any]:
    from settleguard.merchants.onboarding import import_merchants

    w0, c0 = time.perf_counter(), time.process_time()
    res = import_merchants(engine, path, vault=vault, now=NOW)
    return {"merchants": len(res.registered), "wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0}


def run_floor(engine: Any, path: Path, vault: Any) -> dict[str, Any]:
    """The same rows inserted with no checks: read, seal the card, hash the ID, bulk insert."""
    from sqlalchemy import insert, select

    from settleguard.cards.vault import mask_pan
    from settleguard.db import tables as t
    from settleguard.merchants.repository import ensure_fee_schedules

    w0, c0 = time.perf_counter(), time.process_time()
    with engine.begin() as conn:
        schedule = ensure_fee_schedules(conn)["standard"]
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for start in range(0, len(rows), 10_000):
            part = rows[start:start + 10_000]
            conn.execute(insert(t.merchants), [{
                "merchant_no": r["merchant_no"], "kind": "corporate" if r["uscc"] else "personal",
                "registered_name": r["registered_name"], "legal_person": r["legal_person"], "business": "便利店",
                "mcc": r["mcc"], "city": r["city"], "cycle": "D0" if r["cycle"] == "D+0" else "T1",
                "fee_schedule_id": schedule, "status": "active", "created_at": NOW, "uscc": r["uscc"] or None,
                "legal_person_id_hash": vault.keyed_hash(r["legal_person_id"]), "id_key_version": vault.current,
                "contact_mobile": r["contact_mobile"]} for r in part])
            ids = dict(conn.execute(select(t.merchants.c.merchant_no, t.merchants.c.id).where(
                t.merchants.c.merchant_no.in_([r["merchant_no"] for r in part]))).all())
            accounts = []
            for r in part:
                sealed = vault.seal(r["card_no"])
                accounts.append({
                    "merchant_id": ids[r["merchant_no"]], "account_kind": "corporate" if r["uscc"] else "personal",
                    "holder_name": r["holder_name"], "bank_code": "ICBC", "bank_name": r["bank"][:64],
                    "card_type": "DC", "pan_masked": mask_pan(r["card_no"]), "pan_cipher": sealed.cipher,
                    "pan_nonce": sealed.nonce, "key_version": sealed.key_version, "status": "active", "bound_at": NOW})
            conn.execute(insert(t.settlement_accounts), accounts)
            conn.execute(insert(t.terminals), [{
                "merchant_id": ids[r["merchant_no"]], "terminal_no": r["terminal_no"], "serial_no": r["terminal_sn"],
                "model": r["terminal_model"], "firmware": "", "status": "active"} for r in part])
    return {"merchants": len(rows), "wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=1_000_000, help="merchants (default 1,000,000)")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from settleguard.cards.vault import Vault

    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"merchants-{args.n}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        write_file(path, args.n)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)
    vault = Vault({1: secrets.token_bytes(32)}, 1)
    url = args.pg_url if args.backend == "postgresql" else None
    imp = run_import(_fresh(url, args.workdir, "bench_onboarding_import"), path, vault)
    floor = run_floor(_fresh(url, args.workdir, "bench_onboarding_floor"), path, vault)
    assert imp["merchants"] == floor["merchants"] == args.n, (imp, floor)
    out = {"n": args.n, "backend": args.backend, "load": os.getloadavg(), "import": imp, "floor": floor,
           "import_per_s": args.n / imp["wall_s"], "floor_per_s": args.n / floor["wall_s"],
           "ratio_wall": imp["wall_s"] / floor["wall_s"], "ratio_cpu": imp["cpu_s"] / floor["cpu_s"]}
    print(f"{'':8} {'merchants/s':>12} {'wall s':>8} {'CPU s':>8}")
    for k in ("import", "floor"):
        print(f"{k:8} {args.n / out[k]['wall_s']:>12,.0f} {out[k]['wall_s']:>8.1f} {out[k]['cpu_s']:>8.1f}")
    print(f"ratio import/floor: wall {out['ratio_wall']:.2f}x, CPU {out['ratio_cpu']:.2f}x "
          f"(load average {out['load'][0]:.2f})")
    (args.workdir / "onboarding.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
