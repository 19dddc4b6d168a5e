"""Returns-parsing benchmark: read a pain.002 with 1,000,000 transaction statuses.

Not a unit test. Run ``python bench/returns_parse.py [--statuses N] [--repeat R]``.

1. generates (deterministically, seed fixed) ``bench/out/pain002-<N>.xml`` once: ten payment
   informations, ~90% ACSC, ~7% RJCT with ISO reason codes and Chinese AddtlInf, ~3% PDNG, and
   one payment information whose transactions inherit its PmtInfSts;
2. times the floor: lxml ``iterparse`` over the same file with the same memory discipline (end
   events of TxInfAndSts, each cleared and unlinked) doing nothing else;
3. times settleguard's parser: ``check_report`` (phase 1: stream, check, hash) and
   ``CheckedReport.items()`` (phase 2: stream the statuses again);
4. prints statuses/s and the ratio parser time / floor time, best of ``--repeat`` runs.

The lead extends this to apply the statuses to payouts (issue 5: >= 50,000 statuses/s applied).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lxml import etree

from settleguard.channels.iso20022.reports import check_report

T = TypeVar("T")
OUT = Path(__file__).resolve().parent / "out"
NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"
REASONS = [("AC04", "账户已销户"), ("AC01", "账号错误"), ("AC06", "账户已冻结"), ("AM04", "余额不足"),
           ("BE01", "账号户名不符"), ("AG01", "交易不被允许")]


def generate(path: Path, n: int, seed: int = 20261118) -> None:
    rng = random.Random(seed)
    groups = 10
    per = -(-n // groups)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS}">\n<CstmrPmtStsRpt>\n'
                "<GrpHdr><MsgId>BENCH-RPT-1</MsgId><CreDtTm>2026-11-19T08:00:00+08:00</CreDtTm></GrpHdr>\n"
                "<OrgnlGrpInfAndSts><OrgnlMsgId>SGB20261118001</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>"
                "<GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>\n")
        i = 0
        for g in range(groups):
            inherit = g == groups - 1
            f.write(f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>SGB20261118001-{g + 1:05d}</OrgnlPmtInfId>"
                    + ("<PmtInfSts>ACSC</PmtInfSts>" if inherit else "") + "\n")
            for _ in range(min(per, n - i)):
                key = f"SG20261118M{i}"
                i += 1
                if inherit:
                    f.write(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId></TxInfAndSts>\n")
                    continue
                u = rng.random()
                if u < 0.90:
                    f.write(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId><TxSts>ACSC</TxSts>"
                            f"<OrgnlTxRef><Amt><InstdAmt Ccy=\"CNY\">{rng.randint(1, 10_000_000) / 100:.2f}"
                            "</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>\n")
                elif u < 0.97:
                    code, info = rng.choice(REASONS)
                    f.write(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
                            f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn><AddtlInf>{info}</AddtlInf></StsRsnInf>"
                            "</TxInfAndSts>\n")
                else:
                    f.write(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId><TxSts>PDNG</TxSts>"
                            "</TxInfAndSts>\n")
            f.write("</OrgnlPmtInfAndSts>\n")
        f.write("</CstmrPmtStsRpt>\n</Document>\n")
    os.replace(tmp, path)


def floor(path: Path) -> int:
    count = 0
    for _event, el in etree.iterparse(str(path), events=("end",), tag=f"{{{NS}}}TxInfAndSts",
                                      resolve_entities=False, no_network=True, huge_tree=False):
        count += 1
        el.clear()
        prev = el.getprevious()
        if prev is not None and prev.tag == el.tag:
            el.getparent().remove(prev)
    return count


def best(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--statuses", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"pain002-{args.statuses}.xml"
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.statuses)
        print(f"生成 generated {path} in {time.perf_counter() - started:.1f} s")
    size_mb = path.stat().st_size / 1e6
    print(f"文件 file: {path.name}, {size_mb:.0f} MB, {args.statuses:,} statuses; "
          f"{platform.python_implementation()} {platform.python_version()}, lxml {etree.__version__}, "
          f"{os.cpu_count()} CPUs (shared machine: timings vary with other load), "
          f"load average {os.getloadavg()[0]:.1f}")
    t_floor, n_floor = best(lambda: floor(path), args.repeat)
    assert n_floor == args.statuses, n_floor
    t_check, checked = best(lambda: check_report(path), args.repeat)
    assert checked.count == args.statuses
    t_items, n_items = best(lambda: sum(1 for _ in checked.items()), args.repeat)
    assert n_items == args.statuses
    n = args.statuses
    rows = [("floor: lxml iterparse, nothing done 基线", t_floor),
            ("phase 1 check_report 校验", t_check),
            ("phase 2 items() 逐条读出", t_items),
            ("both phases 两阶段合计", t_check + t_items)]
    print(f"{'step':<44}{'seconds':>10}{'statuses/s':>14}{'× floor':>10}")
    for name, t in rows:
        print(f"{name:<44}{t:>10.2f}{n / t:>14,.0f}{t / t_floor:>10.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"峰值内存 peak RSS of this process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
