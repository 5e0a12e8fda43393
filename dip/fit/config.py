"""What defines a fit (:class:`FitConfig`) and what it produced (:class:`FitResult`); torch-free."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dip.errors import DipInputError

PRECISIONS = ("fp32", "bf16", "auto")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
MEMORY_SAVING = ("auto", "on", "off")  # what a user asks for (``--memory-saving``): see dip.fit.memory


@dataclass
class FitConfig:
    """Everything that defines a fit. Presets in :mod:`dip.presets` fill it with the authors' settings."""

    net: str = "skip"
    net_kwargs: dict = field(default_factory=dict)
    input_kind: str = "noise"  # noise | meshgrid | image
    input_depth: int = 32
    input_scale: float = 0.1  # z ~ U(0, input_scale), the paper's choice
    lr: float = 0.01
    iterations: int = 3000
    reg_noise_std: float = 1.0 / 30.0  # fresh N(0, std^2) added to z every step
    exp_weight: float | None = 0.99  # EMA of outputs; None disables it
    backtrack_db: float | None = 5.0  # roll back when PSNR(A(x), y) drops by more than this; None disables it
    log_every: int = 50
    # When a checkpoint path is given, the fit's state is saved every checkpoint_every steps and every
    # checkpoint_seconds seconds of fitting, whichever comes first (0 turns either off), and on SIGTERM. Neither
    # changes the result: a resumed checkpoint accepts other values of these two (dip.fit.checkpoint).
    checkpoint_every: int = 0
    checkpoint_seconds: float = 0.0
    seed: int = 0
    device: str = "auto"  # auto (cuda, else mps, else cpu) | cpu | cuda | cuda:N | mps
    # fp32 | bf16 (autocast of the forward pass; the loss stays fp32) | auto (bf16 where the device has native bf16
    # arithmetic, see bf16_is_fast; else fp32). A fit's record holds what "auto" chose.
    precision: str = "fp32"
    channels_last: bool = True
    deterministic: bool = False  # on CUDA: deterministic algorithms instead of cuDNN autotuning
    # torch.compile the network's forward (DIP's shapes never change, so it compiles once). Off by default: on CPU
    # compiling takes 80-100 s and only pays back at 512 px and above; on CUDA "reduce-overhead" also replays
    # forward + backward as CUDA graphs. Adam, the loss and the bookkeeping stay eager.
    compile: bool = False
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs
    # Activation checkpointing (dip.nets.recompute; dip.fit.memory chooses): "auto" recomputes activations in
    # backward only when the plain fit's predicted peak exceeds the memory budget (the result is bit-identical either
    # way, ~1.1-1.35x the time per step), "on" always, "off" never. memory_budget_mb overrides the budget (default: 80% of the RAM available on
    # CPU, the free memory on CUDA). Neither changes the result: a checkpoint resumes under other values.
    memory_saving: str = "auto"
    memory_budget_mb: int | None = None
    # The member of the DIP family the fit runs (dip.methods: dip, dd, dip-tv, sgld, drp, sure) and its own settings
    # (the table's defaults filled in by validate); "dip" with none is the paper's fit.
    method: str = "dip"
    method_settings: dict = field(default_factory=dict)

    def replace(self, **changes: Any) -> "FitConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise DipInputError(f"unknown fit setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FitConfig":
        return cls(**data)

    def validate(self) -> None:
        if self.iterations < 1:
            raise DipInputError(f"iterations must be >= 1, got {self.iterations}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise DipInputError(f"learning rate must be a finite number > 0, got {self.lr}")
        if self.log_every < 1:
            raise DipInputError(f"log_every must be >= 1, got {self.log_every}")
        if self.exp_weight is not None and not 0.0 <= self.exp_weight < 1.0:
            raise DipInputError(f"exp_weight must be in [0, 1) or None, got {self.exp_weight}")
        if self.precision not in PRECISIONS:
            raise DipInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.checkpoint_every < 0 or self.checkpoint_seconds < 0:
            raise DipInputError(
                f"checkpoint_every and checkpoint_seconds must be >= 0 (0 = off), got {self.checkpoint_every} and "
                f"{self.checkpoint_seconds}"
            )
        if not math.isfinite(self.reg_noise_std) or self.reg_noise_std < 0:
            raise DipInputError(f"reg_noise_std must be a finite number >= 0, got {self.reg_noise_std}")
        if not 0 <= self.seed <= 2**63 - 1:
            raise DipInputError(f"seed must be an integer from 0 to 2**63 - 1, got {self.seed}")
        if self.memory_saving not in MEMORY_SAVING:
            raise DipInputError(f"memory_saving must be one of {', '.join(MEMORY_SAVING)}, got {self.memory_saving!r}")
        budget = self.memory_budget_mb
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
            raise DipInputError(f"memory_budget_mb must be a number of megabytes > 0 or None, got {budget!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise DipInputError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        from dip.methods import check_config  # torch-free, like this module

        check_config(self)


@dataclass
class FitResult:
    """What a fit produced. Images are numpy (H, W, C) in [0, 1]."""

    output: np.ndarray  # the image to keep: the EMA output when exp_weight is set, else the raw output
    output_raw: np.ndarray  # f(z) with the final weights and the clean input
    output_avg: np.ndarray | None
    history: list[dict]
    seconds: float
    iterations_done: int
    resumed_from: int  # step the fit resumed from (0 = fresh start)
    stopped_early: bool
    backtracks: int
    device: str
    peak_memory_mb: float
    config: FitConfig
    crop_box: tuple[int, int, int, int] | None = None  # set by dip.restore when the input was cropped
    notes: list[str] = field(default_factory=list)
    # Set by dip.restore when the fit ran with early stopping: the record of
    # dip.fit.stopping.early_stopping_report and the output at the detected step (None before the window filled).
    early_stopping: dict | None = None
    output_early: np.ndarray | None = None

    def summary(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {
            "iterations_done": self.iterations_done,
            "resumed_from": self.resumed_from,
            "stopped_early": self.stopped_early,
            "backtracks": self.backtracks,
            "seconds": round(self.seconds, 3),
            "device": self.device,
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "final": last,
        }


class FitInterrupted(RuntimeError):
    """Raised when a fit stopped on SIGTERM after writing its checkpoint; re-run with the same checkpoint to resume."""

    exit_code = 143

    def __init__(self, step: int, checkpoint_path: Path | None):
        self.step = step
        self.checkpoint_path = checkpoint_path
        where = f"checkpoint written to {checkpoint_path}" if checkpoint_path else "no checkpoint path was given"
        super().__init__(f"fit interrupted by SIGTERM after step {step}; {where}")

    def __reduce__(self):  # whole across processes (a worker's fit stopped on SIGTERM reaches its parent as itself)
        return type(self), (self.step, self.checkpoint_path)
