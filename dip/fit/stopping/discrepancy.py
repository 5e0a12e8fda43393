"""The ``auto`` stop: end a DIP fit near its best without ground truth.

DIP fits the image before it fits the noise; the step count is the regulariser, and a fixed budget is right only for
the size and noise level it was tuned on (the paper's 3000 denoising steps lose 6.4 dB on a 128 px photo at sigma 25,
2.5 dB on House at 256 px). The rule here is the **discrepancy principle** (Morozov): stop at the first logged step
where the residual ``||A(f(z)) - y||^2`` per observed value of the image the fit returns has come down to the noise
variance -- past it, the fit gets closer to ``y`` only by reproducing its noise. Two details make it work for DIP:

* the noise level is estimated once from the observation (:func:`estimate_noise_sigma`, a patch-PCA estimate that
  texture fools less than the wavelet one), so the rule needs no ground truth and no belief of the user's;
* the residual is that of the *returned* image: a fit that returns the exponential average of its outputs (the
  denoising presets, ``exp_weight`` 0.99) is judged on the logged losses averaged with the same weight, so that the
  rule lags the raw outputs as much as the returned image does (on a 128 px photo the averaged output peaks ~1.5-2
  averaging times after the raw one; at the paper's sizes the lag hardly matters).

How it runs. :class:`AutoStop` is a fit hook that looks only at the records the engine logs every ``log_every`` steps
(the loss is already on the host there): it adds **no host sync** and no work per step. Its decision at a logged step
is a function of the logged records so far and the estimate, so that

* a packed fit (:func:`dip.fit.stacked.fit_many`) gets the same decision per fit (it cannot stop alone: the hook
  keeps a copy of the output at its stop step, the one the fit would have returned);
* checkpoint / resume stays bit-identical (the hook's state -- the rule's and the kept output -- goes into the
  checkpoint, :meth:`AutoStop.state_dict`);
* the rule can be **replayed** on a finished fit's logged curve (:func:`replay`), which is how
  ``benchmarks/bench_autostop.py`` measures it and how :func:`auto_stop_of` answers for a record written without it.

Which rule per task (:data:`RULES`): denoising uses the discrepancy principle. Every other task runs the preset's
budget (rule ``budget``): super-resolution and pixel inpainting observe noise-free images (there is no noise level to
stop at; their committed curves still rise at the end), a JPEG's compression error is neither Gaussian nor visible to
a noise estimator (the estimate is ~1/255 where the JPEG error is 10-20/255, so the principle would run to the end
anyway), and flash / no-flash fits a second photo. BENCHMARKS.md ("Stopping near the best") has the candidates
compared (ES-WMV, ES-EMV, SURE, self-validation, the principle's variants) and the numbers behind the choice.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from dip.errors import DipInputError
from dip.fit.hooks import BaseHook, FitState
from dip.fit.stopping.noise import estimate_noise_sigma

__all__ = ["RULES", "Discrepancy", "Budget", "AutoStop", "rule_for", "make_rule", "replay", "auto_stop_of",
           "returned_curve_key"]

# The rule each task stops by in auto mode (see the module docstring for why).
RULES: dict[str, str] = {"denoise": "discrepancy", "jpeg": "budget", "sr": "budget", "inpaint": "budget",
                         "flash": "budget"}  # fmt: skip


@dataclasses.dataclass
class Discrepancy:
    """Morozov's discrepancy principle on the logged loss: fire at the first logged step where the residual of the
    image the fit returns, per observed value, is down to ``tau * sigma**2``.

    The residual is read from the logged losses (the step's output, from the perturbed input): where the fit returns
    an exponential average of its outputs (``average``: the fit's ``exp_weight``), the losses are averaged the same
    way, ``m <- a^d m + (1 - a^d) loss`` over the ``d`` steps since the previous record, so that the rule lags the
    raw outputs as much as the returned image does (on a small image the averaged output peaks 1.5-2 averaging times
    after the raw one); without averaging (``average=0``) it is the logged loss itself.

    sigma: the noise level in [0, 1] units (:func:`estimate_noise_sigma`).
    tau: the factor on the noise variance (1: stop as soon as the residual is down to the noise).
    observed_fraction: the share of values the loss averages over that are observed (inpainting: the mask's mean;
        the loss is a mean over all values).
    average: the fit's ``exp_weight`` (0 or None: no averaging).
    """

    sigma: float
    tau: float = 1.0
    observed_fraction: float = 1.0
    average: float = 0.0
    name = "discrepancy"

    def __post_init__(self):
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise DipInputError(f"discrepancy: tau must be a finite number > 0, got {self.tau}")
        if not 0 < self.observed_fraction <= 1:
            raise DipInputError(f"discrepancy: observed_fraction must be in (0, 1], got {self.observed_fraction}")
        self.average = float(self.average or 0.0)
        if not 0 <= self.average < 1:
            raise DipInputError(f"discrepancy: average must be in [0, 1), got {self.average}")
        self.sigma = float(self.sigma)
        self.reset()

    def reset(self) -> None:
        self.residual: float | None = None  # the (averaged) residual per observed value at the last record
        self.at: int | None = None  # its step

    @property
    def threshold(self) -> float:
        """The residual (per observed value) to reach; NaN (never fires) for an unknown sigma."""
        return self.tau * self.sigma**2 if math.isfinite(self.sigma) else float("nan")

    def update(self, record: Mapping) -> bool:
        """Take the logged record of a step; True when the rule fires there."""
        value = float(record["loss"]) / self.observed_fraction
        step = int(record["step"])
        if self.residual is None or not math.isfinite(self.residual):
            self.residual = value
        else:
            keep = self.average ** max(1, step - self.at)
            self.residual = keep * self.residual + (1 - keep) * value
        self.at = step
        return math.isfinite(self.residual) and self.residual <= self.threshold  # a NaN threshold never fires

    def why(self) -> str:
        what = "averaged residual" if self.average else "residual"
        return (f"{what} {self.residual:.4g} per observed value <= {self.tau:g} x sigma_hat^2 = {self.threshold:.4g} "
                f"(sigma_hat {255 * self.sigma:.2f}/255)")  # fmt: skip

    def never(self) -> str:
        if not math.isfinite(self.sigma):
            return "no noise estimate (sigma_hat unknown): ran the budget"
        left = "" if self.residual is None else f" (last: {self.residual:.4g} at step {self.at})"
        return (f"the {'averaged ' if self.average else ''}residual stayed above {self.tau:g} x sigma_hat^2 = "
                f"{self.threshold:.4g}{left}: the fit did not reach the noise level within its budget")  # fmt: skip

    def settings(self) -> dict:
        return {"rule": self.name, "sigma": self.sigma, "sigma_255": 255 * self.sigma, "tau": self.tau,
                "observed_fraction": self.observed_fraction, "average": self.average,
                "threshold": self.threshold}  # fmt: skip

    def state_dict(self) -> dict:
        return {"residual": self.residual, "at": self.at}

    def load_state_dict(self, state: Mapping) -> None:
        self.residual, self.at = state["residual"], state["at"]


@dataclasses.dataclass
class Budget:
    """Never fires: the fit runs its step count (the tasks whose observation is taken as noise-free, see RULES)."""

    reason: str = "the task's observation is taken as noise-free: the preset's step count"
    name = "budget"

    def reset(self) -> None:
        pass

    def update(self, record: Mapping) -> bool:
        return False

    def why(self) -> str:  # pragma: no cover - never fires
        return ""

    def never(self) -> str:
        return self.reason

    def settings(self) -> dict:
        return {"rule": self.name, "reason": self.reason}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: Mapping) -> None:
        pass


_BUDGET_REASONS = {
    "jpeg": "JPEG error is not Gaussian noise (a noise estimate misses it): the preset's step count",
    "flash": "the target is a second photo, not a noisy one: the preset's step count",
}


def rule_for(task: str, observation: np.ndarray, *, mask: np.ndarray | None = None, tau: float = 1.0,
             average: float | None = None, method: str = "pca"):  # fmt: skip
    """The auto rule of ``task`` for this observation (the estimate is made here, once).

    average: the fit's ``exp_weight`` (the rule follows the image the fit returns); method: the noise estimate.
    """
    name = RULES.get(task)
    if name is None:
        raise DipInputError(f"unknown task {task!r} for the auto stop; choose one of: {', '.join(RULES)}")
    if name == "budget":
        return Budget(_BUDGET_REASONS.get(task, Budget.reason))
    fraction = float(np.mean(np.asarray(mask) > 0)) if mask is not None else 1.0
    sigma = estimate_noise_sigma(observation, mask, method=method)
    return Discrepancy(sigma, tau=tau, observed_fraction=fraction, average=average or 0.0)


def make_rule(settings: Mapping) -> Discrepancy | Budget:
    """A fresh rule from its :meth:`settings` (as a record holds them)."""
    settings = dict(settings)
    name = settings.get("rule")
    if name == "discrepancy":
        return Discrepancy(settings["sigma"], tau=settings.get("tau", 1.0),
                           observed_fraction=settings.get("observed_fraction", 1.0),
                           average=settings.get("average", 0.0))  # fmt: skip
    if name == "budget":
        return Budget(settings.get("reason", Budget.reason))
    raise DipInputError(f"unknown auto-stop rule {name!r}; known: discrepancy, budget")


def returned_curve_key(history: Sequence[Mapping]) -> str:
    """The history entry that measures the image a fit returns: the averaged output's PSNR where the fit averages
    (``psnr_gt_avg``), else the raw output's (``psnr_gt``)."""
    return "psnr_gt_avg" if any(h.get("psnr_gt_avg") is not None for h in history) else "psnr_gt"


class AutoStop(BaseHook):
    """The auto stop as a fit hook (see the module docstring): decides on logged steps only.

    rule: a :class:`Discrepancy` or :class:`Budget` (:func:`rule_for` makes the task's).
    stop: end the fit when the rule fires (True, a lone fit's default) or only record the step and keep the output
        there (False: the fit runs its budget; a packed fit always runs on).
    After the fit, ``state.extra["auto_stop"]`` holds :meth:`summary`; :meth:`output` is the image the fit returned
    (or would have) at the stop step: the averaged output where the fit averages, else the raw output of that step.
    """

    def __init__(self, rule, *, stop: bool = True, task: str | None = None):
        self.rule, self.stop, self.task = rule, bool(stop), task
        self.stop_step: int | None = None
        self.reason: str | None = None
        self.iterations: int | None = None
        self._output = None  # the returned image at the stop step (on the fit's device)
        self._kind: str | None = None

    def on_start(self, state: FitState) -> None:
        self.iterations = state.iterations

    def on_log(self, state: FitState, record: dict) -> None:
        if self.stop_step is not None or record.get("backtracked"):
            return  # the decision is final; a rolled-back step's loss is that of a diverged output
        if not self.rule.update(record):
            return
        self.stop_step = int(record["step"])
        self.reason = self.rule.why()
        kept = state.output_avg if state.output_avg is not None else state.output
        self._kind = "average" if state.output_avg is not None else "raw"
        self._output = kept.detach().clone()
        if self.stop:
            state.stop = True

    def on_end(self, state: FitState) -> None:
        state.extra["auto_stop"] = self.summary(state.step)

    def output(self):
        """The returned image at the stop step (a device tensor), or None if the rule never fired."""
        return self._output

    def summary(self, last_step: int | None = None) -> dict:
        fired = self.stop_step is not None
        return {
            **self.rule.settings(),
            "task": self.task,
            "fired": fired,
            "stop_step": self.stop_step,
            "obeyed": self.stop,
            "reason": self.reason if fired else self.rule.never(),
            "output_kind": self._kind,
            "iterations": self.iterations,
            "last_step": last_step,
        }

    def state_dict(self) -> dict:
        return {"stop_step": self.stop_step, "reason": self.reason, "output": self._output, "kind": self._kind,
                "rule": self.rule.settings(), "rule_state": self.rule.state_dict()}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        if state.get("rule") != self.rule.settings():
            raise DipInputError(
                f"the checkpoint's auto-stop rule {state.get('rule')} is not this fit's {self.rule.settings()}; "
                "delete the checkpoint to start afresh"
            )
        self.stop_step, self.reason = state["stop_step"], state["reason"]
        self._output, self._kind = state["output"], state["kind"]
        self.rule.load_state_dict(state["rule_state"])


def replay(history: Iterable[Mapping], rule, *, every: int | None = None) -> dict:
    """Where ``rule`` stops on a logged curve: the summary :class:`AutoStop` writes, computed from ``history``.

    every: keep only the records of steps that are multiples of ``every`` (and the last), as a fit logging every
        ``every`` steps would have seen them: a fit logged finely replays the command's default of 50.
    The summary gains, where the history has ground-truth PSNRs, ``psnr_stop`` (the returned curve at the stop step,
    or at the last step when the rule never fired), ``psnr_last`` and ``psnr_best`` / ``best_step`` (the oracle).
    """
    records = [dict(h) for h in history]
    if every:
        records = [h for i, h in enumerate(records) if h["step"] % every == 0 or i == len(records) - 1]
    rule = make_rule(rule.settings())  # a fresh one: replaying never changes the caller's rule
    hook = AutoStop(rule, stop=False)
    state = FitState(step=0, iterations=records[-1]["step"] + 1 if records else 0, net=None,
                     output=_NoTensor(), output_avg=None, loss=None, history=records)  # fmt: skip
    hook.on_start(state)
    for record in records:
        state.step = record["step"]
        hook.on_log(state, record)
    out = hook.summary(records[-1]["step"] if records else None)
    out["output_kind"] = None
    key = returned_curve_key(records)
    curve = [(h["step"], h[key]) for h in records if h.get(key) is not None and math.isfinite(h[key])]
    if curve:
        by_step = dict(curve)
        best_step, best = max(curve, key=lambda item: item[1])
        stop = out["stop_step"] if out["fired"] else curve[-1][0]
        out.update(curve=key, psnr_stop=by_step.get(stop), psnr_last=curve[-1][1], psnr_best=best,
                   best_step=best_step)  # fmt: skip
    return out


class _NoTensor:
    """Stands in for the output tensor when replaying a curve (nothing is kept)."""

    def detach(self):
        return self

    def clone(self):
        return None


def auto_stop_of(record_or_result: Any, *, sigma: float | None = None, observation: np.ndarray | None = None,
                 task: str | None = None, every: int | None = None) -> dict:  # fmt: skip
    """Where the auto rule stopped (or would have) in a finished fit, and what it estimated.

    record_or_result: a :class:`~dip.fit.FitResult` (from :func:`dip.restore.restore` / ``restore_many``) or its JSON
        record (a dict, or the path of a ``.json`` sidecar). A fit that ran with the auto stop holds its own answer
        (``record["auto_stop"]`` / ``result.auto_stop``), returned as it is. For a fit that ran without it (older
        records, the workflow's fixed-budget fits), the task's rule is replayed on the logged history; the noise
        estimate then comes from ``sigma`` (in [0, 1] units) or ``observation`` (the fit's input), else from the
        record's declared level (``spec.level`` / ``sigma``: a denoising level on the 0-255 scale), said in
        ``estimate_source``.
    Returns the summary of :class:`AutoStop` (rule, sigma, threshold, stop_step, fired, reason, ...), plus the PSNRs
    of :func:`replay` when it was replayed.
    """
    import json
    import os

    if isinstance(record_or_result, (str, os.PathLike)):
        record_or_result = json.loads(open(record_or_result, encoding="utf-8").read())
    if isinstance(record_or_result, Mapping):
        record = record_or_result
        own = record.get("auto_stop")
        history = record.get("history") or []
        task = task or record.get("task") or (record.get("spec") or {}).get("task")
        level = (record.get("spec") or {}).get("level", (record.get("parameters") or {}).get("sigma"))
        average = (record.get("config") or {}).get("exp_weight")
    else:
        own = getattr(record_or_result, "auto_stop", None)
        history = record_or_result.history
        level, average = None, record_or_result.config.exp_weight
    if own:
        return dict(own)
    if task is None:
        raise DipInputError("auto_stop_of: the record names no task; pass task=")
    source = None
    if RULES.get(task) == "discrepancy":
        if sigma is None and observation is not None:
            sigma, source = estimate_noise_sigma(observation), "estimate_noise_sigma(observation)"
        elif sigma is None and level is not None:
            sigma, source = float(level) / 255.0, "the record's declared noise level"
        elif sigma is not None:
            source = "given"
        if sigma is None:
            raise DipInputError("auto_stop_of: replaying the discrepancy rule needs sigma= or observation=")
        rule = Discrepancy(sigma, average=average or 0.0)
    else:
        rule = make_rule({"rule": RULES.get(task, "budget")})
    out = replay(history, rule, every=every)
    out.update(task=task, replayed=True, estimate_source=source)
    return out
