"""Checkpoints of a fit: written atomically every ``checkpoint_every`` steps, every ``checkpoint_seconds`` seconds and
on SIGTERM, read back to resume.

A checkpoint holds the full state of a lone fit -- weights, Adam, the input-noise generator, the EMA, the roll-back
snapshot, the history, the global RNG, the hooks' own state -- so that a resumed fit ends bit-identical (CPU, same
seed) to an uninterrupted one. The layout is ``CHECKPOINT_FORMAT`` 2 (unchanged since reflection-padded
convolutions became one module), so a fit interrupted under an earlier version of this engine resumes under this one.

It holds tensors and plain data only (dicts, lists, numbers, strings: the config is a dict, the generators' states
are byte tensors), and it is read with ``torch.load(weights_only=True)``: a file that holds anything else -- a pickle
planted in a shared results folder, whose unpickling would run code as whoever resumes the fit -- is refused unread
(:class:`CheckpointError`, as for any checkpoint that cannot be resumed).

One process at a time fits to a checkpoint path: :func:`checkpoint_lock` holds an exclusive lock on ``<path>.lock``
while a fit runs, and a second fit of the same path waits for it (a stopping fit that is still writing its last
checkpoint, say) and then refuses with one line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dip.errors import CannotWrite, DipInputError
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
# How long a fit waits for another process that holds its checkpoint's lock before it refuses: long enough for a fit
# that was told to stop (its Snakemake died, SIGTERM) to finish its step and write its checkpoint.
LOCK_WAIT_SECONDS = 120.0


class CheckpointError(DipInputError):
    """A checkpoint that cannot be resumed: unreadable, holding more than tensors and plain data (refused unread), of
    another format, or of a fit with other settings. Only this error says that the file itself is at fault."""

    def __init__(self, path: str | os.PathLike, problem: str, remedy: str = "delete it to start afresh"):
        self.path, self.problem, self.remedy = Path(path), " ".join(problem.split()), remedy
        super().__init__(f"checkpoint {path} {self.problem}; {remedy}")

    def __reduce__(self):  # whole across processes, like every error here with arguments of its own
        return type(self), (self.path, self.problem, self.remedy)


class CheckpointBusy(DipInputError):
    """Another process holds the lock of the checkpoint a fit would write (it is fitting the same output)."""


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` (the layout :class:`dip.fit.engine.FitDriver` builds) to ``path``, never half a file.

    :func:`dip.files.atomic_write` writes a temporary file beside ``path``, fsyncs it and renames it over ``path``: a
    process killed mid-write (SIGKILL, out of memory, node failure) or a full disk leaves the previous checkpoint in
    place. numpy scalars become Python numbers, so that the file holds only what a weights-only load accepts.
    """
    with atomic_write(path) as fh:
        torch.save(_plain({"format": CHECKPOINT_FORMAT, **state}), fh)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return type(obj)((k, _plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _load_error(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "Weights only load failed" in text:  # torch's long explanation, less what is about torch.load's default
        text = text.split("trusted source.", 1)[-1].split("WeightsUnpickler error:", 1)[-1]
        text = text.split(" Check the documentation", 1)[0].split(". ")[0].strip(" .")
        if "GLOBAL" in text:  # a pickled object of some class or function: never built, never called
            return f"holds more than tensors and plain data ({text[:200]}): refused unread, it was not written by dip"
    return f"cannot be read ({type(exc).__name__}: {text[:300]})"


def load_checkpoint(path: Path, config: FitConfig, device: torch.device, inputs: str | None = None) -> dict | None:
    """The state saved at ``path`` by a fit with ``config`` of the inputs whose :func:`inputs_digest` is ``inputs``,
    on ``device``; None if there is no file.

    Loaded weights-only: nothing in the file is run. A file that holds anything but tensors and plain data, one of
    another format, an unreadable one or one of a fit with other settings or other input images raises
    :class:`CheckpointError` (resuming it would silently mix two fits); the settings of :data:`CADENCE_SETTINGS` and :data:`MEMORY_SETTINGS` may differ.
    """
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol is named in the error, if it matters
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # a file not written by save_checkpoint (they are never half-written): say which
        raise CheckpointError(path, _load_error(exc)) from None
    found = state.get("format") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"is not a checkpoint of this version of dip (format {found}; this version "
                                    f"reads format {CHECKPOINT_FORMAT})")  # fmt: skip
    if not isinstance(state.get("config"), dict) or _defining(state["config"]) != _defining(config.to_dict()):
        raise CheckpointError(path, "was written by a fit with other settings")
    if inputs is not None and state.get("inputs") not in (None, inputs):  # written before it recorded them: trusted
        raise CheckpointError(path, "was made for other input images (another observation, mask or guide) than "
                                    "this fit's")  # fmt: skip
    return state


def inputs_digest(observation, operator: torch.nn.Module, guide=None) -> str:
    """The sha256 of what a fit is fitted to: the observation's values, the operator (its kind, factor and buffers:
    an inpainting mask) and the guide image. A checkpoint records it; resuming one of other inputs is refused
    (:meth:`dip.fit.engine.FitDriver` -- a fit of image b resumed from image a's checkpoint would mix the two)."""
    import hashlib

    h = hashlib.sha256(f"{type(operator).__name__} {getattr(operator, 'factor', None)}".encode())
    arrays = [observation, guide, *operator.state_dict().values()]
    for array in arrays:
        if array is None:
            h.update(b"none")
            continue
        values = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
        values = np.ascontiguousarray(values, dtype=np.float32)
        h.update(f"{values.shape}".encode() + values.tobytes())
    return h.hexdigest()


def _defining(settings: dict) -> dict:
    settings = {"method": "dip", "method_settings": {}, **settings}  # a checkpoint from before dip.methods: DIP's
    return {k: v for k, v in settings.items() if k not in CADENCE_SETTINGS and k not in MEMORY_SETTINGS}


# --- one writer per checkpoint ---------------------------------------------------------------------------------------

_HELD: dict[str, list] = {}  # lock file (absolute) -> [fd or None, depth]: the locks this process holds
_HELD_GUARD = threading.Lock()


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of the checkpoint ``path``: ``<path>.lock`` beside it (removed when the fit ends)."""
    path = Path(path)
    return path.with_name(f"{path.name}.lock")


@contextlib.contextmanager
def checkpoint_lock(path: str | os.PathLike, *, wait: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of the checkpoint ``path`` (``fcntl.flock`` on :func:`lock_path`) for the block.

    Another process holding it (a fit of the same output still running, or still writing its last checkpoint) is
    waited for, at most ``wait`` seconds (default :data:`LOCK_WAIT_SECONDS`), with one line on stderr; then
    :class:`CheckpointBusy`, naming its pid and host. Re-entrant within a process (the workflow's fit job holds it
    around the fit, which takes it again). On a file system without locks the block runs unlocked, said once.
    """
    lock = lock_path(path)
    key = os.path.abspath(lock)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield
        finally:
            with _HELD_GUARD:
                held[1] -= 1
        return
    fd = _acquire(lock, LOCK_WAIT_SECONDS if wait is None else wait)
    with _HELD_GUARD:
        _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        with _HELD_GUARD:
            del _HELD[key]
        if fd is not None:
            lock.unlink(missing_ok=True)  # while still holding it: a waiter that then gets the old file retries
            os.close(fd)


def _holder(lock: Path) -> str:
    try:
        pid, host = (lock.read_text().split() + ["?", "?"])[:2]
    except OSError:
        return "another process"
    return f"process {pid} on {host}"


def _acquire(lock: Path, wait: float) -> int | None:
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotWrite.of(exc, lock.parent) or exc from None
    deadline, announced = time.monotonic() + wait, False
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise CannotWrite.of(exc, lock) or exc from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _holder(lock)
            if time.monotonic() >= deadline:
                raise CheckpointBusy(
                    f"{holder} is fitting to the checkpoint {lock.with_suffix('')} (it holds {lock}); wait for it "
                    "to end or stop it, then run again"
                ) from None
            if not announced:
                print(f"fit: {holder} holds {lock} (a fit of the same output still running or stopping); waiting "
                      f"for it, at most {wait:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
                announced = True
            time.sleep(0.1)
            continue
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            print(f"fit: cannot lock {lock} ({exc.strerror}): this file system has no locks; going on unlocked",
                  file=sys.stderr, flush=True)  # fmt: skip
            return None
        try:  # the file locked must still be the one at the path: a holder removes it as it lets go
            current = os.stat(lock)
            mine = os.fstat(fd)
            same = (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        except OSError as exc:  # a full disk: no lock file is left behind, empty or not
            lock.unlink(missing_ok=True)
            os.close(fd)
            raise CannotWrite.of(exc, lock) or exc from None
        return fd


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
