"""What a fit shows the code that watches it: :class:`FitState`, the :class:`Hook` protocol, :class:`ProgressBar` (a
tqdm bar, for a terminal) and :class:`ProgressLog` (plain lines, for a log file that someone follows with tail -f).

:func:`log_progress` turns progress lines on for every fit run inside it, without passing hooks down: the workflow's
jobs run fits deep inside experiments and baselines, and the engine (:class:`dip.fit.engine.FitDriver`) and
:func:`dip.fit.pixels.optimise_pixels` add a :class:`ProgressLog` themselves while it is active.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import torch

from dip.errors import DipInputError


@dataclass
class FitState:
    """What hooks see. Tensors live on the fit's device; reading them (``.item()``) forces a sync, so hooks that
    run every step should keep their own statistics on the device."""

    step: int
    iterations: int
    net: torch.nn.Module | None  # None in a stacked run (the K networks' weights are stacked)
    output: torch.Tensor  # this step's output (from the perturbed input), detached
    output_avg: torch.Tensor | None
    loss: torch.Tensor  # detached, on device
    history: list[dict]
    stop: bool = False  # a hook sets this to end the fit after this step
    extra: dict = field(default_factory=dict)  # hooks may record results here (e.g. the early-stopping step)
    fit: int = 0  # which fit of the run this is (0 for a lone fit; k for fit k of a batch)


class Hook(Protocol):
    def on_start(self, state: FitState) -> None: ...
    def on_step(self, state: FitState) -> None: ...
    def on_log(self, state: FitState, record: dict) -> None: ...
    def on_end(self, state: FitState) -> None: ...


class BaseHook:
    """Convenience base class with no-op methods."""

    def on_start(self, state: FitState) -> None:
        pass

    def on_step(self, state: FitState) -> None:
        pass

    def on_log(self, state: FitState, record: dict) -> None:
        pass

    def on_end(self, state: FitState) -> None:
        pass


class ProgressBar(BaseHook):
    """A tqdm bar that advances at logged steps only (no per-step sync) and shows the latest loss / PSNR."""

    def __init__(self, desc: str = "DIP fit", **tqdm_kwargs: Any):
        self.desc = desc
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None

    def on_start(self, state: FitState) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.iterations, initial=state.step, desc=self.desc, unit="it", **self.tqdm_kwargs)

    def on_log(self, state: FitState, record: dict) -> None:
        if self.bar is None:
            return
        self.bar.update(record["step"] + 1 - self.bar.n)
        shown = {"loss": f"{record['loss']:.2e}"} if "loss" in record else {}
        for key in ("psnr_gt", "psnr_gt_avg", "psnr_obs"):
            if record.get(key) is not None:
                shown[key] = f"{record[key]:.2f}"
        self.bar.set_postfix(shown, refresh=False)

    def on_end(self, state: FitState) -> None:
        if self.bar is not None:
            self.bar.close()


# --- progress lines ------------------------------------------------------------------------------------------------

PROGRESS_EVERY_STEPS = 50  # a line every 50 steps ...
PROGRESS_EVERY_SECONDS = 60.0  # ... or every minute, whichever comes first
_NOT_SHOWN = ("step", "seconds", "backtracked")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _shown(records: list[dict]) -> list[str]:
    """``key value`` for each logged value (one value per fit, in brackets for a batch). PSNR against the observation
    is left out where a PSNR against the ground truth is known (the one that says how good the result is)."""
    keys = [k for k, v in records[0].items() if k not in _NOT_SHOWN and isinstance(v, (int, float))]
    if any(k.startswith("psnr_gt") for k in keys):
        keys = [k for k in keys if k != "psnr_obs"]
    parts = []
    for key in keys:
        fmt = "{:.2f}" if "psnr" in key else "{:.3e}"
        values = [r.get(key) for r in records]
        text = [fmt.format(v) if isinstance(v, (int, float)) and math.isfinite(v) else str(v) for v in values]
        parts.append(f"{key} {text[0] if len(text) == 1 else '[' + ', '.join(text) + ']'}")
    return parts


class ProgressLog(BaseHook):
    """A line of text every ``every_steps`` steps or ``every_seconds`` seconds, whichever comes first, and at the last
    step: ``step done/total, loss, PSNRs, s/step, elapsed, ETA``, flushed at once (``tail -f`` shows it live).

    The values are those of the last step the engine logged (every ``log_every`` steps it copies them to the host
    anyway): the hook never reads a tensor, so it adds no device sync, and a line written between two logged steps
    (by the clock) says which step its values are from. Nothing it does touches the fit's numbers or random draws.

    One instance may watch all the fits of a batch (the same object in every fit's hooks, as the engine adds it):
    fit 0's steps drive the lines, and each line holds every fit's values. ``every_steps=0`` or ``every_seconds=0``
    turns that trigger off. ``stream``: where lines go (default: ``sys.stdout`` at the time of writing, i.e. a job's
    log once the workflow's shim has redirected it); ``clock``: seconds, monotonic (tests pass a fake one).
    The plain-loop interface (:meth:`begin`, :meth:`note`, :meth:`due`, :meth:`report`) serves loops without hooks.
    """

    def __init__(self, stream: IO[str] | None = None, *, every_steps: int = PROGRESS_EVERY_STEPS,
                 every_seconds: float = PROGRESS_EVERY_SECONDS, label: str = "fit",
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        if every_steps < 0 or every_seconds < 0:
            raise DipInputError(
                f"progress: every_steps and every_seconds must be >= 0, got {every_steps}, {every_seconds}"
            )
        self.stream, self.label, self.clock = stream, label, clock
        self.every_steps, self.every_seconds = int(every_steps), float(every_seconds)
        self.records: dict[int, dict] = {}
        self.total = 0
        self.started = self.last_time = 0.0
        self.last_step = -1

    # --- as a hook

    def on_start(self, state: FitState) -> None:
        if state.fit == 0:
            self.begin(state.step, state.iterations)

    def on_log(self, state: FitState, record: dict) -> None:
        self.note(record, state.fit)

    def on_step(self, state: FitState) -> None:
        if state.fit == 0 and self.due(state.step):
            self.report(state.step)

    # --- for any loop

    def begin(self, step: int, total: int) -> None:
        """A run of ``total`` steps starts at ``step`` (> 0: resumed from a checkpoint)."""
        self.total, self.records = int(total), {}
        self.started = self.last_time = self.clock()
        self.last_step = step - 1
        if step > 0:
            self.write(f"{self.label}: resumed from its checkpoint at step {step}/{total}")

    def note(self, record: dict, fit: int = 0) -> None:
        """The values logged at a step (host numbers, a history record) of fit ``fit``."""
        self.records[fit] = record

    def due(self, step: int) -> bool:
        """Whether step ``step`` (0-based, just done) gets a line."""
        if step <= self.last_step:
            return False
        by_steps = self.every_steps > 0 and step % self.every_steps == 0
        by_time = self.every_seconds > 0 and self.clock() - self.last_time >= self.every_seconds
        return by_steps or by_time or step == self.total - 1

    def report(self, step: int) -> None:
        """Write the line of step ``step`` (0-based, just done)."""
        now = self.clock()
        per_step = (now - self.last_time) / max(1, step - self.last_step)
        done, total = step + 1, self.total
        parts = [f"{self.label}: step {done}/{total} ({100 * done // max(1, total)}%)"]
        records = [self.records[k] for k in sorted(self.records)]
        if records:
            parts += _shown(records)
            logged = records[0].get("step")
            if logged is not None and logged != step:
                parts.append(f"(values of step {logged + 1})")
        parts += [f"{per_step:.3g} s/step", f"elapsed {_duration(now - self.started)}",
                  f"ETA {_duration((total - done) * per_step)}"]  # fmt: skip
        self.write(", ".join(parts))
        self.last_time, self.last_step = now, step

    def write(self, line: str) -> None:
        print(line, file=self.stream if self.stream is not None else sys.stdout, flush=True)


_PROGRESS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("dip_progress", default=None)


@contextlib.contextmanager
def log_progress(stream: IO[str] | None = None, *, every_steps: int = PROGRESS_EVERY_STEPS,
                 every_seconds: float = PROGRESS_EVERY_SECONDS) -> Iterator[None]:  # fmt: skip
    """Progress lines (:class:`ProgressLog`) for every fit run inside this block that has none of its own: DIP fits
    (lone or batched, through :class:`dip.fit.engine.FitDriver`) and pixel optimisations (no prior, TV prior).

    Both triggers 0: no lines. The workflow's fitting jobs run inside it with the config's ``progress`` settings.
    """
    ProgressLog(every_steps=every_steps, every_seconds=every_seconds)  # the settings are checked here, once
    on = every_steps > 0 or every_seconds > 0
    settings = {"stream": stream, "every_steps": every_steps, "every_seconds": every_seconds}
    token = _PROGRESS.set(settings if on else None)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def default_progress_log(label: str) -> ProgressLog | None:
    """A new :class:`ProgressLog` with the settings of the enclosing :func:`log_progress`, None outside one."""
    settings = _PROGRESS.get()
    return ProgressLog(**settings, label=label) if settings is not None else None
