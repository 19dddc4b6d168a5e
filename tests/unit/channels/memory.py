"""Peak resident memory of a snippet run in a fresh interpreter (lxml's tree lives in C, unseen by tracemalloc)."""

from __future__ import annotations

import subprocess
import sys

_SUFFIX = "\nimport resource\nprint('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"


def peak_rss_kib(code: str) -> int:
    """Run ``code`` in a new Python process and return its peak resident set size in KiB."""
    proc = subprocess.run([sys.executable, "-c", code + _SUFFIX], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MAXRSS "))
    return int(line.split()[1])
