"""Checkpoints of a fit: written atomically every ``checkpoint_every`` steps, every ``checkpoint_seconds`` seconds and
on SIGTERM, read back to resume.

A checkpoint holds the full state of a lone fit -- weights, Adam, the input-noise generator, the EMA, the roll-back
snapshot, the history, the global RNG, the hooks' own state -- so that a resumed fit ends bit-identical (CPU, same
seed) to an uninterrupted one. The layout is ``CHECKPOINT_FORMAT`` 2 (unchanged since reflection-padded
convolutions became one module), so a fit interrupted under an earlier version of this engine resumes under this one.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import torch

from dip.errors import DipInputError
from dip.files import atomic_write
from dip.fit.config import FitConfig

CHECKPOINT_FORMAT = 2  # 2: reflection-padded convolutions are one module (models.ReflectConv2d)
# Settings that say when checkpoints are written, not what is fitted: a fit may resume with other values (a workflow
# whose checkpoint_minutes changed between the crash and the re-run), and a checkpoint written before a setting
# existed lacks it.
CADENCE_SETTINGS = ("checkpoint_every", "checkpoint_seconds")
# Settings that say how much memory a step may keep, not what is fitted (activation checkpointing is bit-identical):
# a fit may resume with other values, and checkpoints written before they existed lack them.
MEMORY_SETTINGS = ("memory_saving", "memory_budget_mb")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` (the layout :class:`dip.fit.engine.FitDriver` builds) to ``path``, never half a file.

    :func:`dip.files.atomic_write` writes a temporary file beside ``path``, fsyncs it and renames it over ``path``: a
    process killed mid-write (SIGKILL, out of memory, node failure) leaves the previous checkpoint in place.
    """
    with atomic_write(path) as fh:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, fh)


def load_checkpoint(path: Path, config: FitConfig, device: torch.device) -> dict | None:
    """The state saved at ``path`` by a fit with ``config``, on ``device``; None if there is no file.

    A file of another format, an unreadable one or one of a fit with other settings is refused (resuming it would
    silently mix two fits); the settings of :data:`CADENCE_SETTINGS` and :data:`MEMORY_SETTINGS` may differ.
    """
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # a file not written by save_checkpoint (they are never half-written): say which
        raise DipInputError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); delete it") from None
    found = state.get("format") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise DipInputError(f"{path} is not a checkpoint of this version of dip (format {found})")
    if _defining(state["config"]) != _defining(config.to_dict()):
        raise DipInputError(f"checkpoint {path} was written by a fit with other settings; delete it to start afresh")
    return state


def _defining(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in CADENCE_SETTINGS and k not in MEMORY_SETTINGS}


class SigtermFlag:
    """Turns SIGTERM into a flag the loop checks between steps (only possible from the main thread).

    SLURM sends SIGTERM before it preempts a job or at its time limit; the fit then saves a checkpoint and stops.
    """

    def __init__(self, enabled: bool):
        self.raised = False
        self._previous = None
        self._enabled = enabled and threading.current_thread() is threading.main_thread()

    def __enter__(self) -> "SigtermFlag":
        if self._enabled:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        if self._enabled:
            signal.signal(signal.SIGTERM, self._previous)
