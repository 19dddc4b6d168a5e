"""Benchmark of the failure classifier (docs/benchmarks.md, "Diagnosing failures").

    python bench/diagnose.py                 # 1,000,000 inputs, Python API + batch CLI
    python bench/diagnose.py --n 200000 --skip-cli

The inputs are mixed as a bank's return files are: a few hundred distinct (scheme, code, message)
triples — codes of every scheme with the bank's text, codes embedded in the text (RESP=…|MSG=…), free
text alone (simplified, traditional, English) — drawn with a Zipf-like skew, so a few reasons dominate
and most lines repeat. Reported: classifications/s of the Python API (LRU cache cold at the start),
of the batch CLI (a subprocess, file in, /dev/null out, start-up included and excluded), the uncached
free-text rate (the classifier without its cache, over the distinct free-text messages), and the ratio
of the API to a floor: a plain dict lookup of the same (scheme, code) keys.
Exit status 1 when the in-process rate is below the target (200,000/s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from settleguard.diagnosis import classifier, classify, knowledge_base

TARGET = 200_000
Triple = tuple[str | None, str | None, str | None]

EXTRA_TEXT = [
    "收款人戶名與帳號不符", "帳戶已凍結，請聯繫開戶行", "賬戶餘額不足", "系統繁忙，請稍後再試", "交易處理中",
    "account closed", "Invalid account number", "Beneficiary name mismatch", "Insufficient funds",
    "Amount exceeds limit", "System busy, please try again later", "Timeout", "Duplicate transaction",
    "交易失败", "退票", "银行退票，原因：收款人户名不符", "ＡＣＣＯＵＮＴ　ＣＬＯＳＥＤ", "处理失败，请联系客服",
]


def distinct_triples(seed: int) -> tuple[list[Triple], list[str]]:
    """A few hundred distinct triples and the free-text messages among them."""
    rng = random.Random(seed)
    kb = knowledge_base()
    code_rules = [r for r in kb.rules if r.codes and r.scheme != "text"]
    rng.shuffle(code_rules)
    triples: list[Triple] = []
    for r in code_rules[:320]:
        code = rng.choice(r.codes)
        message = r.meaning_zh if rng.random() < 0.8 else None
        triples.append((r.scheme, code, message))
    for r in code_rules[320:380]:                   # no scheme given: the classifier looks in every scheme
        triples.append((None, r.codes[0], r.meaning_zh))
    allinpay = [r for r in kb.rules if r.scheme == "allinpay"]
    for r in rng.sample(allinpay, 40):              # codes embedded in the text
        triples.append(("allinpay", None, f"RESP={r.codes[0]}|MSG={r.meaning_zh}"))
    free = sorted({ex for r in kb.rules for ex in r.examples} | set(EXTRA_TEXT))
    free = rng.sample(free, min(80, len(free)))
    triples.extend((None, None, m) for m in free)
    return triples, free


def workload(n: int, seed: int) -> tuple[list[Triple], list[Triple], list[str]]:
    distinct, free = distinct_triples(seed)
    rng = random.Random(seed + 1)
    rng.shuffle(distinct)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(distinct))]
    return rng.choices(distinct, weights=weights, k=n), distinct, free


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_api(inputs: list[Triple]) -> float:
    classify.cache_clear()
    start = time.perf_counter()
    for s, c, m in inputs:
        classify(s, c, m)
    return rate(len(inputs), time.perf_counter() - start)


def bench_floor(inputs: list[Triple]) -> float:
    table: dict[tuple[str | None, str | None], str] = {(s, c): "x" for s, c, _ in inputs}
    get = table.get
    start = time.perf_counter()
    for s, c, _m in inputs:
        get((s, c))
    return rate(len(inputs), time.perf_counter() - start)


def bench_uncached_text(free: list[str], rounds: int) -> float:
    clf = classifier()
    start = time.perf_counter()
    for _ in range(rounds):
        for m in free:
            clf.classify(None, None, m)
    return rate(rounds * len(free), time.perf_counter() - start)


def bench_cli(inputs: list[Triple], workdir: Path) -> tuple[float, float, float]:
    """(rate with start-up, rate without start-up, start-up seconds)."""
    path = workdir / "diagnose-input.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i, (s, c, m) in enumerate(inputs):
            f.write(json.dumps({"id": i, "scheme": s, "code": c, "message": m}, ensure_ascii=False) + "\n")
    one = workdir / "diagnose-one.jsonl"
    one.write_text('{"id":0,"code":"AC04"}\n', encoding="utf-8")
    cmd = [sys.executable, "-m", "settleguard", "diagnose", "--batch"]
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run([*cmd, str(one)], stdout=null, check=True)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([*cmd, str(path)], stdout=null, check=True)
    total = time.perf_counter() - start
    return rate(len(inputs), total), rate(len(inputs), max(total - startup, 1e-9)), startup


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="inputs (1,000,000)")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--skip-cli", action="store_true", help="only the in-process measurements")
    ap.add_argument("--text-rounds", type=int, default=20, help="rounds over the distinct free-text messages")
    args = ap.parse_args()

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    knowledge_base()
    classifier()
    load_s = time.perf_counter() - t0
    inputs, distinct, free = workload(args.n, args.seed)
    free_share = sum(1 for s, c, _ in inputs if s is None and c is None) / len(inputs)

    api = bench_api(inputs)
    floor = bench_floor(inputs)
    text = bench_uncached_text(free, args.text_rounds)
    cli = None
    if not args.skip_cli:
        with tempfile.TemporaryDirectory() as d:
            cli = bench_cli(inputs, Path(d))
    load_after = os.getloadavg()

    result = {
        "inputs": len(inputs), "distinct_triples": len(distinct), "free_text_share": round(free_share, 3),
        "kb_rules": len(knowledge_base().rules), "kb_load_s": round(load_s, 3),
        "api_per_s": round(api), "floor_dict_per_s": round(floor), "api_to_floor_ratio": round(api / floor, 3),
        "uncached_free_text_per_s": round(text), "distinct_free_text_messages": len(free),
        "cli_per_s_with_startup": round(cli[0]) if cli else None,
        "cli_per_s_without_startup": round(cli[1]) if cli else None,
        "cli_startup_s": round(cli[2], 2) if cli else None,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(), "python": sys.version.split()[0],
    }
    print(f"inputs {len(inputs):,} ({len(distinct)} distinct triples, free text {free_share:.0%}); "
          f"knowledge base {result['kb_rules']} rules loaded in {load_s:.2f} s")
    print(f"Python API (LRU cache, cold at start)   {api:>12,.0f} classifications/s")
    print(f"floor: dict lookup of the same codes     {floor:>12,.0f} lookups/s   (API/floor = {api / floor:.2f})")
    print(f"uncached free text ({len(free)} distinct)     {text:>12,.0f} classifications/s")
    if cli:
        print(f"batch CLI, file -> /dev/null            {cli[0]:>12,.0f} lines/s (incl. {cli[2]:.1f} s start-up); "
              f"{cli[1]:,.0f} lines/s excluding start-up")
    print(f"load average before {load_before}, after {load_after} on {os.cpu_count()} CPUs")
    print(json.dumps(result))
    ok = api >= TARGET
    print(("PASS" if ok else "FAIL") + f" in-process >= {TARGET:,}/s: {api:,.0f}/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
