"""A key rotation process killed with SIGKILL mid-rotation (issue 23 item 1), on SQLite and PostgreSQL: a real
subprocess kills itself at a step (inside the transaction that records the new key, between batches, after the old
versions retired, after the key file's last rewrite); then, as operators would, ``settleguard keys status`` shows the
rotation in progress with a key that is still the database's, and ``settleguard keys rotate --resume`` finishes it:
every card opens, all under the new version, the old retired, the key file holding the new version only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from factories import make_merchants
from settleguard.cards import custody
from settleguard.cards import key_repository as key_repo
from settleguard.cards.key_rotation import check_all_open
from settleguard.cards.vault import load_vault, read_vault
from settleguard.db import tables as t
from settleguard.db.engine import open_engine

KILLER = """
import os, signal, sys
from pathlib import Path
from settleguard.cards.key_rotation import rotate_keys
from settleguard.db.engine import open_engine

db, key_file, step, nth = sys.argv[1:5]
seen = [0]

def hook(name):
    if name == step:
        seen[0] += 1
        if seen[0] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)  # no finally, no rollback handler, no atexit

rotate_keys(open_engine(db), Path(key_file), batch=4, hook=hook)
print("not killed")
"""


def cli(db: str, key_file: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEGUARD_")}
    env.update({"SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(key_file), "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("step", "nth"), [("key_written", 1), ("batch", 3), ("retired", 1),
                                           ("key_file_rewritten", 1)])
def test_a_rotation_killed_with_sigkill_is_finished_by_keys_rotate_resume(
        db_url: str, tmp_path: Path, step: str, nth: int) -> None:
    key_file = tmp_path / "keys" / "sg.key"
    key_file.parent.mkdir()
    engine = open_engine(db_url)
    vault = load_vault(None, key_file)
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 17)
    custody.check(engine, vault)
    engine.dispose()
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEGUARD_")}
    killed = subprocess.run([sys.executable, str(script), db_url, str(key_file), step, str(nth)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stdout + killed.stderr

    status = cli(db_url, key_file, "keys", "status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr  # the key is still the database's
    st = json.loads(status.stdout)
    assert st["rotation"]["new_version"] == 2
    assert st["rotation"]["phase"] == {"key_written": "new_key", "batch": "reencrypting", "retired": "finishing",
                                       "key_file_rewritten": "finishing"}[step]
    assert 2 in st["key"]["versions"]
    engine = open_engine(db_url)
    try:
        assert sum(check_all_open(engine, read_vault(None, key_file)).values()) == 17  # every card opens meanwhile
    finally:
        engine.dispose()

    done = cli(db_url, key_file, "keys", "rotate", "--resume", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    res = json.loads(done.stdout)
    assert (res["resumed"], res["new_version"], res["reencrypted"], res["dropped_versions"]) == (True, 2, 17, [1])
    again = cli(db_url, key_file, "keys", "rotate", "--resume", cwd=tmp_path)
    assert again.returncode == 2
    assert "no key rotation in progress" in again.stderr

    new = read_vault(None, key_file)
    assert new.versions == (2,)
    assert [p.name for p in key_file.parent.iterdir()] == ["sg.key"]  # no temporary key file left behind
    engine = open_engine(db_url)
    try:
        assert check_all_open(engine, new) == {2: 17}
        a = t.settlement_accounts
        with engine.connect() as conn:
            pans = sorted(new.open(c, n, v) for c, n, v in conn.execute(select(a.c.pan_cipher, a.c.pan_nonce,
                                                                              a.c.key_version)))
            keys = key_repo.recorded(conn)
            phases = conn.execute(select(t.card_key_rotations.c.phase)).scalars().all()
        assert pans == sorted(m.pan for m in ms)
        assert {v: r.retired_at is not None for v, r in keys.items()} == {1: True, 2: False}
        assert phases == ["done"]
    finally:
        engine.dispose()
