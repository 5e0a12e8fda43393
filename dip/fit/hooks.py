"""What a fit shows the code that watches it: :class:`FitState`, the :class:`Hook` protocol, :class:`ProgressBar`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


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
