"""`settleguard recon resolve / resolutions / approve / reject / show` as operators run them (in-process through Typer's
CliRunner, like the other recon CLI tests), on SQLite and PostgreSQL: a duplicate debit is proposed as a
receivable from the bank by one person, the same person's approval is refused (zh then en, nothing moves), a
second person approves, and `recon show` prints the resolution history in local time, zh first."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from typer.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from test_recon_resolve import paid_world, totals  # noqa: E402

from settleguard.cards.vault import Vault  # noqa: E402
from settleguard.cli.main import app as cli  # noqa: E402
from settleguard.ledger import repository as ledger_repo  # noqa: E402


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_duplicate_debit_is_proposed_refused_to_its_proposer_approved_and_shown(
        engine: Engine, db_url: str, vault: Vault, tmp_path: Path) -> None:
    w = paid_world(engine, vault, tmp_path)
    dup = w.breaks["dup"]["id"]
    runner = CliRunner()

    def cli_run(*args: str) -> Result:
        return runner.invoke(cli, ["--db", db_url, "recon", *args])

    missing = cli_run("resolve", str(dup), "--by", "alice")  # no --note
    assert missing.exit_code == 2
    blank = cli_run("resolve", str(dup), "--note", "  ", "--by", "alice")
    assert blank.exit_code == 2
    assert "必须填写处理说明" in blank.stderr
    assert "note is required" in blank.stderr
    wrong = cli_run("resolve", str(dup), "--note", "x", "--action", "挂账", "--by", "alice")
    assert wrong.exit_code == 2
    assert "向银行追索" in wrong.stderr
    assert "bank_receivable" in wrong.stderr

    made = cli_run("resolve", str(dup), "--note", "银行重复扣款，已致电银行", "--by", "alice", "--json")
    assert made.exit_code == 0, made.stderr
    res = json.loads(made.stdout)
    assert (res["status"], res["action"], res["proposed_by"]) == ("proposed", "bank_receivable", "alice")
    before = totals(engine)
    queue = cli_run("resolutions")  # the checker's queue: proposals awaiting approval
    assert queue.exit_code == 0, queue.stderr
    assert f"#{res['id']} 差错 break #{dup} 银行重复扣款 duplicate debit" in flat(queue.stdout)
    assert "待复核 awaiting approval" in flat(queue.stdout)  # Rich may wrap a long line: compare words

    own = cli_run("approve", str(res["id"]), "--by", "alice")
    assert own.exit_code == 2
    assert own.stderr.index("不能批准") < own.stderr.index("cannot approve")  # zh first
    assert "未做任何更改" in own.stderr
    assert totals(engine) == before

    ok = cli_run("approve", str(res["id"]), "--by", "bob", "--note", "同意")
    assert ok.exit_code == 0, ok.stderr
    assert "已批准处理方案" in ok.stdout
    assert "approved resolution" in ok.stdout
    assert totals(engine)["bank_receivable"] == -w.dup.amount
    again = cli_run("reject", str(res["id"]), "--by", "carol")
    assert again.exit_code == 2
    assert "已批准" in again.stderr

    shown = cli_run("show", str(dup))
    assert shown.exit_code == 0, shown.stderr
    out = flat(shown.stdout)
    assert "已处理 resolved" in out
    assert "处理记录 resolutions" in out
    assert "向银行追索（应收银行款） receivable from the bank" in out
    assert "待银行退款" in out
    local = datetime.fromisoformat(res["proposed_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"提出 proposed {local:%Y-%m-%d %H:%M:%S} alice：银行重复扣款" in out
    assert "批准 approved" in out
    assert "bob：同意" in out
    assert json.loads(cli_run("resolutions", "--json").stdout) == []  # nothing awaits approval now
    assert [r["id"] for r in json.loads(cli_run("resolutions", "--status", "已批准", "--json").stdout)] == [res["id"]]
    as_json = json.loads(cli_run("show", str(dup), "--json").stdout)
    assert [r["status"] for r in as_json["resolutions"]] == ["approved"]
    with engine.connect() as c:
        assert ledger_repo.check(c) == []
