"""Shared by the benchmarks: each heavy phase runs in a freshly spawned interpreter, so that one
phase's memory and caches do not count for the next; the parent only orchestrates and logs.

``run_child("phase_x", **kwargs)`` calls ``phase_x(**kwargs)`` of the running benchmark script (the
``__main__`` module, which a spawned child imports again) and returns its dict result with the
child's ``peak_rss_mb`` added; a failure in the child is raised in the parent with its traceback.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import traceback
from datetime import datetime
from typing import Any


def peak_rss_mb() -> float:
    """Peak RSS of this process image (VmHWM); falls back to getrusage."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_entry(pipe: Any, fn_name: str, kwargs: dict[str, Any]) -> None:
    try:
        out = getattr(sys.modules["__main__"], fn_name)(**kwargs)
        out["peak_rss_mb"] = round(peak_rss_mb(), 1)
        pipe.send(("ok", out))
    except BaseException:  # noqa: BLE001 - reported to the parent
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


def run_child(fn_name: str, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn_name(**kwargs)`` of the benchmark script in a fresh (spawned) interpreter."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_entry, args=(send, fn_name, kwargs), name=fn_name)
    proc.start()
    send.close()
    try:
        status, payload = recv.recv()
    except EOFError:
        status, payload = "error", "child exited without a result"
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{fn_name} failed (exit code {proc.exitcode}):\n{payload}")
    return dict(payload)


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)  # noqa: DTZ005 - local wall clock
