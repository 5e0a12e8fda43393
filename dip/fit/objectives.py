"""What a fit minimises (its data term) and what it logs about it.

The engine (:mod:`dip.fit.engine`) is the same for every DIP fit; a :class:`DataTerm` is the part that differs.
Restoration (denoising, SR, inpainting, ...) fits ``A(f(z))`` to an observation (:class:`ObservationTerm`); the
natural pre-image fits a feature network's activations of ``f(z)`` (:class:`dip.experiments.preimage.FeatureTerm`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from dip import physics
from dip.data.imageio import to_tensor
from dip.errors import DipInputError


class DataTerm(Protocol):
    """The loss of one fit, and the values logged every ``log_every`` steps.

    quality_key: the record entry that measures how well the fit explains its data (higher is better); a drop of more
        than ``backtrack_db`` below the last good value rolls the fit back. None: only the NaN guard rolls back.
    """

    quality_key: str | None

    def loss(self, output: torch.Tensor) -> torch.Tensor:
        """The scalar loss of the network's ``output`` (1, C, H, W), on the device, differentiable."""
        ...

    def log_values(self, output: torch.Tensor, average: torch.Tensor | None) -> list[torch.Tensor]:
        """Device scalars to log (copied to the host with everything else in one sync; NaN where not available).

        Every data term of one run returns the same number of values."""
        ...

    def record(self, loss: float, values: list[float], output: torch.Tensor, average: torch.Tensor | None) -> dict:
        """The history entries of a logged step (the engine adds ``step`` first and ``seconds`` last)."""
        ...


def psnr_on_device(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR on [0, 1] computed on the device (no sync)."""
    mse = torch.mean((a.float() - b.float()) ** 2)
    return -10.0 * torch.log10(mse.clamp_min(1e-20))


def image_on_device(img: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A library image (H, W, C) or a tensor (C, H, W) / (1, C, H, W) as a contiguous (1, C, H, W) fp32 tensor."""
    t = img if isinstance(img, torch.Tensor) else to_tensor(np.asarray(img, dtype=np.float32))
    if t.dim() == 3:
        t = t.unsqueeze(0)
    return t.to(device=device, dtype=torch.float32).contiguous()


def output_shape_for(operator: torch.nn.Module, observation_hw: tuple[int, int]) -> tuple[int, int]:
    """The spatial size of the image the network must produce for this operator."""
    factor = getattr(operator, "factor", 1)
    return observation_hw[0] * factor, observation_hw[1] * factor


class ObservationTerm:
    """``||A(x) - y||^2`` (mean) for an observation operator ``A`` (:mod:`dip.physics`) and observation ``y``.

    Logged: the loss, PSNR(A(x), y) (``psnr_obs``, what backtracking watches) and, given a ground truth, the PSNR of
    the raw and of the averaged output against it (``psnr_gt``, ``psnr_gt_avg``).
    """

    quality_key = "psnr_obs"

    def __init__(self, operator: torch.nn.Module, observation, device: torch.device, ground_truth=None):
        self.observation = image_on_device(observation, device)
        self.output_hw = output_shape_for(operator, tuple(self.observation.shape[2:]))
        self.ground_truth = image_on_device(ground_truth, device) if ground_truth is not None else None
        if self.ground_truth is not None and tuple(self.ground_truth.shape[2:]) != self.output_hw:
            raise DipInputError(
                f"ground truth is {tuple(self.ground_truth.shape[2:])} but the fit produces {self.output_hw}"
            )
        self.operator = operator.to(device)
        self._nan = torch.full((), float("nan"), device=device)

    @property
    def channels(self) -> int:
        return self.observation.shape[1]

    def loss(self, output: torch.Tensor) -> torch.Tensor:
        return physics.data_term(self.operator, output, self.observation)

    def log_values(self, output: torch.Tensor, average: torch.Tensor | None) -> list[torch.Tensor]:
        gt = self.ground_truth
        return [
            psnr_on_device(self.operator(output), self.observation),
            psnr_on_device(output, gt) if gt is not None else self._nan,
            psnr_on_device(average, gt) if gt is not None and average is not None else self._nan,
        ]

    def record(self, loss: float, values: list[float], output: torch.Tensor, average: torch.Tensor | None) -> dict:
        has_gt = self.ground_truth is not None
        return {
            "loss": loss,
            "psnr_obs": values[0],
            "psnr_gt": values[1] if has_gt else None,
            "psnr_gt_avg": values[2] if has_gt and average is not None else None,
        }
