"""Automatic early stopping for DIP by windowed moving variance (ES-WMV).

Wang, Li, Zhuang, Chen, Liang, Sun, "Early Stopping for Deep Image Prior" (arXiv 2112.06074): the variance of the
last ``window`` outputs, ``VAR_t = 1/W sum_{i<W} ||x_{t-i} - mean||^2``, falls while the network fits the image and
rises once it starts fitting the noise; the step of minimal variance is a good stopping point, found without ground
truth. We keep the window in a ring buffer on the device with running sums, so the hook adds no host sync per step;
the patience test (has the minimum not moved for ``patience`` steps?) runs every ``check_every`` steps.
"""

from __future__ import annotations

import torch

from dip.fit import BaseHook, FitState

__all__ = ["EarlyStopping", "EarlyStoppingEMV"]


class _LowestVariance(BaseHook):
    """What ES-WMV and ES-EMV share: the lowest variance seen, its step and the output kept there (tensors on the
    fit's device, no host sync per step), the patience test every ``check_every`` steps (has the minimum not moved for
    ``patience`` steps?), the summary's common fields and the checkpointable state (the attributes ``_STATE`` names)."""

    _STATE: tuple[str, ...] = ()

    def __init__(self, patience: int, stop: bool, check_every: int):
        self.patience = patience
        self.stop = stop
        self.check_every = check_every
        self._count = 0
        self._best_var: torch.Tensor | None = None
        self._best_step: torch.Tensor | None = None
        self._best_output: torch.Tensor | None = None
        self.detected_step: int | None = None
        self.stopped_at: int | None = None

    def _start_tracking(self, kept: torch.Tensor) -> None:
        """At the first step: no minimum yet; ``kept`` (the output to keep at the minimum) gives shape and device."""
        self._best_var = torch.full((), float("inf"), dtype=torch.float64, device=kept.device)
        self._best_step = torch.zeros((), dtype=torch.long, device=kept.device)
        self._best_output = kept.detach().clone()

    def _track(self, state: FitState, variance: torch.Tensor, kept: torch.Tensor) -> None:
        """Keep ``variance`` (and ``kept``, the step's output to return) if it is the lowest yet; every
        ``check_every`` steps, detect the minimum once it is ``patience`` steps old and, with ``stop``, end the fit."""
        improved = variance < self._best_var
        self._best_var = torch.where(improved, variance, self._best_var)
        self._best_step = torch.where(improved, torch.tensor(state.step, device=variance.device), self._best_step)
        self._best_output = torch.where(improved, kept.detach(), self._best_output)
        if state.step % self.check_every == 0:
            best_step = int(self._best_step.item())
            if state.step - best_step >= self.patience:
                self.detected_step = best_step
                self._on_detected(state)
                if self.stop:
                    self.stopped_at = state.step
                    state.stop = True

    def _on_detected(self, state: FitState) -> None:
        """Called once, at the step the minimum is detected (before the fit is told to stop)."""

    def _summary(self, step: int) -> dict:
        """The fields every summary starts with: the detected step, where the fit stopped, whether detection fired."""
        patience_ran_out = self.detected_step is not None and step - self.detected_step >= self.patience
        return {"detected_step": self.detected_step, "stopped_at": self.stopped_at,
                "triggered": self.stopped_at is not None or patience_ran_out}  # fmt: skip

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class EarlyStopping(_LowestVariance):
    """ES-WMV as a fit hook.

    window: number of recent outputs whose variance is tracked (the paper's W = 100).
    patience: stop once the minimum variance is this many steps old (the paper's notebooks use 1000).
    stop: end the fit at detection (True) or only record the detected step and its output (False), so that the
        fixed-step result and the early-stopped one come out of one run.
    After the fit, ``state.extra["early_stopping"]`` holds the detected step, the step the fit stopped at and,
    through :meth:`best_output`, the output at the detected step.
    """

    _STATE = ("_buffer", "_sum", "_sum_sq", "_count", "_best_var", "_best_step", "_best_output", "detected_step",
              "stopped_at")  # fmt: skip

    def __init__(self, window: int = 100, patience: int = 1000, stop: bool = True, check_every: int = 50):
        if window < 2 or patience < 1:
            raise ValueError("window must be >= 2 and patience >= 1")
        super().__init__(patience, stop, check_every)
        self.window = window
        self._buffer: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        self._sum_sq: torch.Tensor | None = None

    def on_step(self, state: FitState) -> None:
        if self.detected_step is not None:
            # Detection is final: with stop=False the fit goes on, but the recorded step and output must stay those
            # a stopping run would have returned (a later, lower variance must not replace them).
            return
        out = state.output.detach().float().reshape(-1)
        if self._buffer is None:
            self._buffer = torch.zeros((self.window, out.numel()), device=out.device)
            self._sum = torch.zeros_like(out, dtype=torch.float64)
            self._sum_sq = torch.zeros((), dtype=torch.float64, device=out.device)
            self._start_tracking(state.output)
        slot = self._count % self.window
        if self._count >= self.window:
            old = self._buffer[slot]
            self._sum -= old.double()
            self._sum_sq -= old.double().pow(2).sum()
        self._buffer[slot] = out
        self._sum += out.double()
        self._sum_sq += out.double().pow(2).sum()
        self._count += 1
        if self._count < self.window:
            return
        mean = self._sum / self.window
        # Mean squared distance to the window mean, per pixel, so the value does not depend on the image size.
        variance = (self._sum_sq / self.window - mean.pow(2).sum()) / out.numel()
        # The detected output is the one at the window's end when the variance was minimal.
        self._track(state, variance, state.output)

    def _on_detected(self, state: FitState) -> None:
        state.extra["early_stopping"] = self.summary(state.step)

    def on_end(self, state: FitState) -> None:
        if self._best_step is not None and self.detected_step is None and self._count >= self.window:
            # Never triggered: report the minimum seen so far (the fit ended first).
            self.detected_step = int(self._best_step.item())
        state.extra["early_stopping"] = self.summary(state.step)

    def summary(self, step: int) -> dict:
        return {**self._summary(step), "window": self.window, "patience": self.patience}

    def best_output(self) -> torch.Tensor | None:
        """The network output at the detected step (on the fit's device), or None before the window filled."""
        return self._best_output if self._count >= self.window else None


class EarlyStoppingEMV(_LowestVariance):
    """ES-EMV (Wang et al., the exponential variant of ES-WMV): an exponential moving average ``m`` of the outputs and
    an exponential moving variance ``v_t = (1 - a) v_{t-1} + a (1 - a) ||x_t - m_{t-1}||^2 / N``; the step of minimal
    ``v`` is detected once it is ``patience`` steps old. Two vectors on the device, no host sync per step (the patience
    test reads one scalar every ``check_every`` steps). Same interface as :class:`EarlyStopping` (``detected_step``,
    :meth:`best_output`, :meth:`summary`, checkpointable state); ``burn_in`` steps pass before a minimum counts (the
    variance starts at 0).

    keep: which output :meth:`best_output` holds at the detected step: ``"raw"`` (the step's output, as ES-WMV) or
        ``"average"`` (the fit's EMA of outputs there, the image a fit with ``exp_weight`` returns; raw without one).
    """

    _STATE = ("_mean", "_var", "_best_var", "_best_step", "_best_output", "_count", "detected_step", "stopped_at")

    def __init__(self, alpha: float = 0.1, patience: int = 1000, stop: bool = True, check_every: int = 50,
                 burn_in: int = 100, keep: str = "raw"):  # fmt: skip
        if not 0 < alpha < 1 or patience < 1 or burn_in < 0 or keep not in ("raw", "average"):
            raise ValueError("alpha must be in (0, 1), patience >= 1, burn_in >= 0, keep 'raw' or 'average'")
        super().__init__(patience, stop, check_every)
        self.alpha, self.burn_in, self.keep = alpha, burn_in, keep
        self._mean = self._var = None

    def on_step(self, state: FitState) -> None:
        if self.detected_step is not None:
            return
        out = state.output.detach().float().reshape(-1)
        kept = state.output_avg if self.keep == "average" and state.output_avg is not None else state.output
        if self._mean is None:
            self._mean = out.double().clone()
            self._var = torch.zeros((), dtype=torch.float64, device=out.device)
            self._start_tracking(kept)
            self._count = 1
            return
        a = self.alpha
        diff = out.double() - self._mean
        self._var = (1 - a) * self._var + a * (1 - a) * diff.pow(2).mean()
        self._mean += a * diff
        self._count += 1
        if self._count <= self.burn_in:
            return
        self._track(state, self._var, kept)

    def on_end(self, state: FitState) -> None:
        if self.detected_step is None and self._count > self.burn_in:
            self.detected_step = int(self._best_step.item())
        state.extra["early_stopping_emv"] = self.summary(state.step)

    def summary(self, step: int) -> dict:
        return {**self._summary(step), "alpha": self.alpha, "patience": self.patience, "burn_in": self.burn_in,
                "keep": self.keep}  # fmt: skip

    def best_output(self) -> torch.Tensor | None:
        return self._best_output if self._count > self.burn_in else None
