"""SHA-256 of a file's bytes, read in 1 MiB blocks: the fingerprint every import keeps to recognise a file it has seen
(transactions, merchants, bank reports and statements, terminal logs, inbox files) and backups write in their manifest.

Standard library only; callers that must name the file in their own error catch OSError around it.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20


def sha256_stream(fh: BinaryIO, stop: threading.Event | None = None) -> str:
    """Hex SHA-256 of the rest of ``fh``; "" when ``stop`` is set before the end."""
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(BLOCK), b""):
        if stop is not None and stop.is_set():
            return ""
        h.update(block)
    return h.hexdigest()


def sha256_file(path: Path, stop: threading.Event | None = None) -> str:
    """Hex SHA-256 of the file at ``path`` (OSError when it cannot be read); "" when ``stop`` is set first."""
    with Path(path).open("rb") as fh:
        return sha256_stream(fh, stop)
