"""Processes seen through Linux /proc, and polling for a condition."""

from __future__ import annotations

import time
from pathlib import Path


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (Linux /proc; a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, limit: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds or ``limit`` seconds pass; its last value."""
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()
