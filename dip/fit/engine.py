"""The one DIP fit engine.

A fit optimises the weights of a randomly initialised network ``f_theta`` so that a data term of ``f_theta(z)`` is
small (the network's structure is the prior; the number of steps is the regulariser). Restoration tasks fit
``A(f_theta(z))`` to an observation ``y`` -- the task only changes the operator ``A`` (:mod:`dip.physics`) and the
settings (:mod:`dip.presets`); the natural pre-image fits a feature network's activations instead.

Two parts: a *stepper* runs the optimisation steps of one fit (:class:`~dip.fit.lone.LoneStepper`) or of K
same-shape fits at once (:class:`~dip.fit.stacked.StackedStepper`); the *driver* (:class:`FitDriver`) owns the loop
around them and treats every fit of a run alike, so a packed fit is bookkept exactly as its lone fit is. What the
driver does beyond the authors' notebooks, and why:

* **No host sync on most steps.** Losses, PSNRs and the divergence check are read on the device and copied to the
  host only every ``log_every`` steps (one copy for all fits of a run); the notebooks copy the output to numpy every
  step, which dominates GPU time.
* **Backtracking restores parameters and Adam's state.** The reference restores only the parameters (and still
  applies the bad step's gradient), so the moments that caused the divergence survive; we roll both back, per fit.
* **NaN guard.** A non-finite loss anywhere since the last check triggers the same roll-back.
* **Checkpoints and resume** (lone fits). Every ``checkpoint_every`` steps, every ``checkpoint_seconds`` seconds of
  fitting (so that a SIGKILL, an out-of-memory kill or a node failure loses at most that much), and when the process
  receives SIGTERM (SLURM preemption or time limit), the full state goes to the checkpoint atomically
  (:mod:`dip.fit.checkpoint`). A fit restarted from it ends bit-identical (CPU, same seed) to an uninterrupted one.
* **Hooks** (progress bars, early stopping, extra logging) see each fit's state every step without forcing a sync.
  Inside :func:`dip.fit.hooks.log_progress` every run also writes progress lines (:class:`~dip.fit.hooks.ProgressLog`).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
import torch

from dip.data.imageio import to_numpy
from dip.errors import DipInputError
from dip.fit.checkpoint import (CheckpointError, SigtermFlag, checkpoint_lock, inputs_digest, load_checkpoint,
                                save_checkpoint)
from dip.fit.config import FitConfig, FitInterrupted, FitResult
from dip.fit.device import peak_memory_mb, prepare_device, resolve_device, resolve_precision
from dip.fit.hooks import FitState, Hook, ProgressBar, ProgressLog, default_progress_log
from dip.fit.objectives import DataTerm, ObservationTerm


class Stepper(Protocol):
    """The optimisation steps of ``count`` fits. Tensors carry a leading fit axis: ``outputs[k]`` is fit k's."""

    count: int
    inputs: torch.Tensor  # the fits' network inputs z, (K, 1, D, H, W)

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step of every fit: this step's outputs (K, 1, C, H, W) and losses (K,), detached."""
        ...

    def take_snapshot(self, fits: list[int]) -> None:
        """Remember the weights and optimiser state of ``fits`` (the first call is for every fit)."""
        ...

    def roll_back(self, fit: int) -> None:
        """Return ``fit`` to its last snapshot (weights and optimiser state)."""
        ...

    def final_outputs(self) -> torch.Tensor:
        """``f(z)`` of every fit with its final weights and clean input, (K, 1, C, H, W)."""
        ...

    def net_of(self, fit: int) -> torch.nn.Module | None: ...  # what hooks see as ``state.net``

    def config_of(self, fit: int) -> FitConfig: ...  # the settings recorded in fit k's result

    def label(self, fit: int) -> str: ...  # how messages name fit k

    def state_dict(self) -> dict: ...  # for checkpoints: everything but the driver's own state

    def load_state_dict(self, state: dict) -> None: ...


def ema_update(average: torch.Tensor | None, output: torch.Tensor, weight: float) -> torch.Tensor:
    """The exponential moving average of outputs, updated in place on the device (the first output starts it)."""
    if average is None:
        return output.clone()
    return average.mul_(weight).add_(output, alpha=1 - weight)


def _of_fit(t: torch.Tensor | None, fit: int) -> torch.Tensor | None:
    return t[fit] if t is not None else None


class FitDriver:
    """Runs a stepper's fits to the end: logging, roll-backs, the EMA, hooks, checkpoints and the results.

    terms: one data term per fit (what each fit is logged by; the stepper minimises the same terms).
    hooks: one list of hooks per fit.
    stop_on_request: a hook's ``state.stop`` ends the run (a lone fit); False: the request is noted in that fit's
        result and the run goes on (a fit of a batch cannot stop apart from the others).
    after_step: called as ``after_step(step)`` after every step, after the hooks (timing, tests).
    checkpoint_path: lone fits only; an existing file there is resumed from.
    inputs: the :func:`~dip.fit.checkpoint.inputs_digest` of the fit's inputs, recorded in its checkpoints: a
        checkpoint of other inputs is refused.
    """

    def __init__(self, stepper: Stepper, terms: Sequence[DataTerm], config: FitConfig, device: torch.device, *,
                 hooks: Sequence[Sequence[Hook]], started: float, stop_on_request: bool = True,
                 after_step: Callable[[int], object] | None = None, checkpoint_path: Path | None = None,
                 inputs: str | None = None):  # fmt: skip
        count = stepper.count
        if checkpoint_path is not None and count != 1:
            raise DipInputError("checkpoints are written for lone fits only")
        self.stepper, self.terms, self.config, self.device = stepper, list(terms), config, device
        self.hooks = [list(h) for h in hooks]
        self.started, self.stop_on_request, self.after_step = started, stop_on_request, after_step
        self.checkpoint_path, self.inputs = checkpoint_path, inputs  # inputs: what the checkpoint is of (its digest)
        self.histories: list[list[dict]] = [[] for _ in range(count)]
        self.backtracks = [0] * count
        self.last_good: list[float | None] = [None] * count  # quality (e.g. psnr_obs) at the last good logged step
        self.stop_requests: list[int | None] = [None] * count
        self.average: torch.Tensor | None = None  # EMA of the outputs, (K, 1, C, H, W)
        self.average_snapshot: torch.Tensor | None = None  # the EMA at each fit's last good logged step
        self.have_snapshot = False
        # Non-finite losses are accumulated on the device and inspected at the next logged step (no per-step sync).
        self.nonfinite = torch.zeros(count, dtype=torch.bool, device=device)
        self.states: list[FitState] = []
        self.start_step = 0
        self.progress = self._progress_log()
        self.last_checkpoint = time.monotonic()  # wall time of the last checkpoint (or of the start)

    def run(self) -> list[FitResult]:
        if self.checkpoint_path is None:
            return self._run()
        with checkpoint_lock(self.checkpoint_path):  # one process at a time fits to a checkpoint
            return self._run()

    def _run(self) -> list[FitResult]:
        resumed = self._resume()
        self._start_hooks(resumed)
        self.last_checkpoint = time.monotonic()  # checkpoint_seconds counts fitting time from here
        config, step, stopped = self.config, self.start_step - 1, False
        with SigtermFlag(enabled=self.checkpoint_path is not None) as sigterm:
            for step in range(self.start_step, config.iterations):
                outputs, losses = self.stepper.step()
                self.nonfinite |= ~torch.isfinite(losses)
                if config.exp_weight is not None:
                    self.average = ema_update(self.average, outputs, config.exp_weight)
                is_last = step == config.iterations - 1
                if step % config.log_every == 0 or is_last:
                    self._log(step, outputs, losses)
                self._show_step(step, outputs, losses)
                if self.after_step is not None:
                    self.after_step(step)
                if self._checkpoint_due(step, is_last):
                    self._save(step)
                if sigterm.raised:
                    self._save(step)
                    self._end_hooks()
                    raise FitInterrupted(step, self.checkpoint_path)
                if self._stop_requested(step):
                    stopped = True
                    break
        return self._results(step, stopped)

    # --- one step ----------------------------------------------------------------------------------------------

    def _show(self, fit: int, step: int, outputs: torch.Tensor, losses: torch.Tensor) -> FitState:
        state = self.states[fit]
        state.step, state.output, state.loss = step, outputs[fit], losses[fit]
        state.output_avg = _of_fit(self.average, fit)
        return state

    def _show_step(self, step: int, outputs: torch.Tensor, losses: torch.Tensor) -> None:
        for fit, hooks in enumerate(self.hooks):
            if hooks:
                state = self._show(fit, step, outputs, losses)
                for hook in hooks:
                    hook.on_step(state)

    def _stop_requested(self, step: int) -> bool:
        for fit, state in enumerate(self.states):
            if state.stop and self.stop_requests[fit] is None:
                self.stop_requests[fit] = step
        return self.stop_on_request and any(s is not None for s in self.stop_requests)

    def _log(self, step: int, outputs: torch.Tensor, losses: torch.Tensor) -> None:
        """Record every fit's loss and PSNRs (one host sync), roll back the fits that diverged, snapshot the others."""
        with torch.no_grad():
            rows = []
            for fit, term in enumerate(self.terms):
                values = [losses[fit], self.nonfinite[fit], *term.log_values(outputs[fit], _of_fit(self.average, fit))]
                rows.append(torch.stack([v.float() for v in values]))
            host = torch.stack(rows).cpu().tolist()  # the one sync for all fits
        elapsed = time.perf_counter() - self.started
        good = []
        for fit, term in enumerate(self.terms):
            loss, nonfinite, *values = host[fit]
            entries = term.record(loss, values, outputs[fit], _of_fit(self.average, fit))
            record = {"step": step, **entries, "seconds": elapsed}
            quality = record.get(term.quality_key) if term.quality_key is not None else None
            if self._diverged(fit, step, loss, bool(nonfinite), quality):
                self._roll_back(fit)
                record["backtracked"] = True
            else:
                self.last_good[fit] = quality
                good.append(fit)
            self.histories[fit].append(record)
        self._take_snapshot(good)
        for fit, hooks in enumerate(self.hooks):
            if hooks:
                state = self._show(fit, step, outputs, losses)
                for hook in hooks:
                    hook.on_log(state, self.histories[fit][-1])

    def _diverged(self, fit: int, step: int, loss: float, nonfinite: bool, quality: float | None) -> bool:
        # Checked at logged steps only (the notebooks check every step, at the price of a sync per step): a
        # divergence rolls back at most log_every steps further than theirs.
        diverged = nonfinite or not math.isfinite(loss)
        last_good = self.last_good[fit]
        if self.config.backtrack_db is not None and last_good is not None and quality is not None:
            diverged = diverged or quality < last_good - self.config.backtrack_db
        if diverged and not self.have_snapshot:
            raise FloatingPointError(
                f"{self.stepper.label(fit)} diverged at step {step} (loss {loss}) before any good state was saved; "
                "lower the learning rate"
            )
        return diverged

    def _roll_back(self, fit: int) -> None:
        # Weights AND Adam moments go back; the EMA returns to its (pre-divergence) content at the same step.
        self.stepper.roll_back(fit)
        if self.average is not None and self.average_snapshot is not None:
            self.average[fit].copy_(self.average_snapshot[fit])
        self.backtracks[fit] += 1
        self.nonfinite[fit] = False

    def _take_snapshot(self, fits: list[int]) -> None:
        # Kept even with backtracking off: the NaN guard rolls back to it too.
        if not fits:
            return
        self.stepper.take_snapshot(fits)
        if self.average is not None:
            if self.average_snapshot is None:
                self.average_snapshot = self.average.clone()
            else:
                for fit in fits:
                    self.average_snapshot[fit].copy_(self.average[fit])
        self.have_snapshot = True

    # --- start, checkpoints, end ---------------------------------------------------------------------------------

    def _progress_log(self) -> ProgressLog | None:
        """The run's progress lines: a ProgressLog among the hooks, else one shared by every fit while
        :func:`~dip.fit.hooks.log_progress` is active (one line per report for all the fits of a batch)."""
        for hooks in self.hooks:
            for hook in hooks:
                if isinstance(hook, ProgressLog):
                    return hook
        count = self.stepper.count
        progress = default_progress_log("fit" if count == 1 else f"batch of {count} fits")
        if progress is not None:
            for hooks in self.hooks:
                hooks.append(progress)  # last: its lines show what the other hooks did at that step
        return progress

    def _start_hooks(self, resumed: dict) -> None:
        self.states = [
            FitState(step=self.start_step, iterations=self.config.iterations, net=self.stepper.net_of(fit),
                     output=self.stepper.inputs[fit], output_avg=_of_fit(self.average, fit),
                     loss=torch.zeros((), device=self.device), history=self.histories[fit], fit=fit)
            for fit in range(self.stepper.count)
        ]  # fmt: skip
        if resumed:
            self.states[0].extra = dict(resumed.get("extra", {}))
            # Hooks with state of their own (e.g. early stopping) resume with the fit.
            for hook, hook_state in zip(self.hooks[0], resumed.get("hooks", [])):
                if hook_state is not None and hasattr(hook, "load_state_dict"):
                    hook.load_state_dict(hook_state)
        for fit, hooks in enumerate(self.hooks):
            for hook in hooks:
                hook.on_start(self.states[fit])

    def _end_hooks(self) -> None:
        for fit, hooks in enumerate(self.hooks):
            for hook in hooks:
                hook.on_end(self.states[fit])

    def _resume(self) -> dict:
        """Load the checkpoint if there is one (a lone fit's); returns its state, or {} for a fresh start."""
        if self.checkpoint_path is None:
            return {}
        state = load_checkpoint(self.checkpoint_path, self.config, self.device, self.inputs)
        if state is None:
            return {}
        try:
            self.stepper.load_state_dict(state)
            with_fit_axis = lambda t: t.unsqueeze(0) if t is not None else None  # noqa: E731
            average = with_fit_axis(state["out_avg"])
            snapshot = state["snapshot"]
            average_snapshot = with_fit_axis(snapshot["out_avg"]) if snapshot is not None else None
            history, backtracks, last_good = list(state["history"]), int(state["backtracks"]), state["last_good_psnr"]
            torch.set_rng_state(state["torch_rng"].cpu())
            start_step = int(state["step"]) + 1
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            # the right format and settings, but not the state of this fit (e.g. a file put together by hand)
            problem = f"does not hold the state of this fit ({type(exc).__name__}: {str(exc)[:200]})"
            raise CheckpointError(self.checkpoint_path, problem) from None
        self.average, self.average_snapshot = average, average_snapshot
        self.have_snapshot = snapshot is not None
        self.histories[0], self.backtracks[0], self.last_good[0] = history, backtracks, last_good
        self.start_step = start_step
        return state

    def _checkpoint_due(self, step: int, is_last: bool) -> bool:
        # Not after the last step: the outputs are written next, and the checkpoint removed.
        config = self.config
        if self.checkpoint_path is None or is_last:
            return False
        if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            return True
        return bool(config.checkpoint_seconds) and time.monotonic() - self.last_checkpoint >= config.checkpoint_seconds

    def _save(self, step: int) -> None:
        """Write the checkpoint (format 2: the stepper's state with the driver's, fit 0's entries at the top)."""
        if self.checkpoint_path is None:
            return
        stepper_state = self.stepper.state_dict()
        snapshot = stepper_state.pop("snapshot")
        if snapshot is not None:
            snapshot = {**snapshot, "out_avg": _of_fit(self.average_snapshot, 0)}
        hook_states = [h.state_dict() if hasattr(h, "state_dict") else None for h in self.hooks[0]]
        save_checkpoint(self.checkpoint_path, {
            "config": self.config.to_dict(), "step": step, **stepper_state, "out_avg": _of_fit(self.average, 0),
            "history": self.histories[0], "backtracks": self.backtracks[0], "snapshot": snapshot,
            "last_good_psnr": self.last_good[0], "torch_rng": torch.get_rng_state(), "extra": self.states[0].extra,
            "hooks": hook_states, "inputs": self.inputs,
        })  # fmt: skip
        self.last_checkpoint = time.monotonic()
        if self.progress is not None:
            self.progress.write(f"{self.progress.label}: checkpoint after step {step + 1} -> {self.checkpoint_path}")

    def _results(self, step: int, stopped: bool) -> list[FitResult]:
        final = self.stepper.final_outputs()
        self._end_hooks()
        peak = peak_memory_mb(self.device)
        seconds = time.perf_counter() - self.started
        results = []
        for fit in range(self.stepper.count):
            raw = to_numpy(final[fit])
            avg = to_numpy(self.average[fit]) if self.average is not None else None
            notes = []
            if self.stop_requests[fit] is not None and not stopped:
                notes.append(f"a hook asked to stop at step {self.stop_requests[fit]}; a fit in a batch runs its full "
                             "step count")  # fmt: skip
            results.append(FitResult(
                output=avg if avg is not None else raw, output_raw=raw, output_avg=avg, history=self.histories[fit],
                seconds=seconds, iterations_done=step + 1, resumed_from=self.start_step, stopped_early=stopped,
                backtracks=self.backtracks[fit], device=str(self.device), peak_memory_mb=peak,
                config=self.stepper.config_of(fit), notes=notes,
            ))  # fmt: skip
        return results


def fit(
    observation: np.ndarray | torch.Tensor,
    operator: torch.nn.Module,
    config: FitConfig,
    *,
    ground_truth: np.ndarray | None = None,
    guide: np.ndarray | None = None,
    net: torch.nn.Module | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    hooks: Iterable[Hook] = (),
    progress: bool = False,
) -> FitResult:
    """Fit a DIP network so that ``operator(net(z))`` matches ``observation``.

    observation: (H, W, C) image (for inpainting already multiplied by the mask).
    operator: an observation model from :mod:`dip.physics` (its ``factor`` attribute, if any, sets the output size).
    ground_truth: if given, PSNR against it is logged (raw and averaged output).
    guide: the input image when ``config.input_kind == "image"`` (flash/no-flash).
    net: a ready network instead of ``build_net(config.net, ...)``.
    checkpoint_path: where to save/resume the state. An existing file is resumed from.
    """
    config.validate()
    device = resolve_device(config.device)
    config = resolve_precision(config, device)
    hooks = list(hooks)
    if progress:
        hooks.append(ProgressBar())
    started = time.perf_counter()
    prepare_device(device, config)
    from dip.fit.family import stepper_for, term_for  # the method's parts (dip.methods); DIP's are the plain ones

    term = term_for(config, ObservationTerm(operator, observation, device, ground_truth))
    stepper = stepper_for(config, device, term, net=net, guide=guide)
    driver = FitDriver(
        stepper, [term], config, device, hooks=[hooks], started=started,
        checkpoint_path=Path(checkpoint_path) if checkpoint_path is not None else None,
        inputs=inputs_digest(observation, operator, guide) if checkpoint_path is not None else None,
    )  # fmt: skip
    result = driver.run()[0]
    result.notes[:0] = stepper.notes
    return result
