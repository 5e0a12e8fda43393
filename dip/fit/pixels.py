"""Optimising an image's pixels directly, without a network: the baselines DIP is compared with.

One routine, :func:`optimise_pixels`, serves the "no prior" and "TV prior" baselines of restoration
(:mod:`dip.baselines`, the supplementary prior-effect experiment) and the TV-regularised natural pre-image
(:func:`dip.experiments.preimage.invert_tv`): Adam on the pixels of ``x`` for a data term, plus optionally a total
variation penalty.
"""

from __future__ import annotations

from typing import Callable

import torch

from dip.fit.hooks import default_progress_log

__all__ = ["tv_loss", "optimise_pixels"]


def tv_loss(x: torch.Tensor, beta: float = 0.5, eps: float = 1e-12) -> torch.Tensor:
    """The authors' total variation (``utils/sr_utils.tv_loss``): ``sum((dx^2 + dy^2 + eps)^beta)``.

    ``dx`` and ``dy`` are forward differences on the common ``(H-1) x (W-1)`` grid. With the default ``beta=0.5`` this
    is ordinary isotropic TV, ``sum sqrt(dx^2 + dy^2)`` -- i.e. Mahendran & Vedaldi's ``TV^beta'`` with
    ``beta' = 2 beta = 1``. ``eps`` keeps the gradient finite where the image is flat (the authors' version returns
    NaN gradients there; their noise initialisation made exact zeros unlikely, a bicubic start does not).
    """
    dh = (x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2
    dw = (x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2
    return torch.sum((dh[:, :, :-1] + dw[:, :, :, :-1] + eps) ** beta)


def optimise_pixels(
    start: torch.Tensor,
    data_term: Callable[[torch.Tensor], torch.Tensor],
    *,
    iterations: int,
    lr: float,
    tv_weight: float = 0.0,
    tv_beta: float = 0.5,
    clamp: bool = False,
    log_every: int = 0,
    on_log: Callable[[int, torch.Tensor, torch.Tensor], object] | None = None,
) -> torch.Tensor:
    """Adam on the pixels of ``start`` (1, C, H, W) to minimise ``data_term(x) + tv_weight * tv_loss(x, tv_beta)``.

    clamp: project ``x`` onto [0, 1] after every step (else ``x`` is free during the fit, as in the authors'
        prior-effect notebook, which optimises the input of an identity network and clips only the result).
    on_log: called as ``on_log(step, data_term_value, x)`` (both detached, on the device) every ``log_every`` steps
        and at the last step.
    Inside :func:`dip.fit.hooks.log_progress` it writes progress lines with the data term (read where ``on_log``
    reads it, or on the CPU, where reading costs no device sync, at the line's step).
    Returns the final pixels, detached.
    """
    x = start.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    progress = default_progress_log("pixel fit")
    if progress is not None:
        progress.begin(0, iterations)
    for step in range(iterations):
        optimiser.zero_grad(set_to_none=True)
        data = data_term(x)
        loss = data + tv_weight * tv_loss(x, tv_beta) if tv_weight else data
        loss.backward()
        optimiser.step()
        if clamp:
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        logged = on_log is not None and (step % log_every == 0 or step == iterations - 1)
        if logged:
            on_log(step, data.detach(), x.detach())
        if progress is not None:
            due = progress.due(step)
            if logged or (due and x.device.type == "cpu"):
                progress.note({"step": step, "data_term": data.item()})
            if due:
                progress.report(step)
    return x.detach()
