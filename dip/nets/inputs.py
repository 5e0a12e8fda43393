"""The fixed network input ``z`` of a DIP fit: uniform noise (the paper's), a 2-channel meshgrid, or an image."""

from __future__ import annotations

import math

import numpy as np
import torch

from dip.errors import DipInputError
from dip.nets.layers import check_choice

__all__ = ["INPUT_KINDS", "input_size", "make_input"]

INPUT_KINDS = ("noise", "meshgrid", "image", "normal")


def input_size(net: torch.nn.Module, output_hw: tuple[int, int]) -> tuple[int, int]:
    """The spatial size of the input ``z`` a network takes to produce ``output_hw``: the output's own, or smaller by
    the network's ``input_divisor`` (the Deep Decoder's input is 1/32 of its output)."""
    divisor = int(getattr(net, "input_divisor", 1))
    return output_hw[0] // divisor, output_hw[1] // divisor


def make_input(
    kind: str,
    depth: int,
    size: tuple[int, int],
    *,
    generator: torch.Generator | None = None,
    scale: float = 0.1,
    image: np.ndarray | None = None,
) -> torch.Tensor:
    """The fixed network input ``z``, a contiguous ``(1, depth, H, W)`` float32 tensor.

    kind "noise": i.i.d. ``U(0, 1) * scale`` - the authors' ``get_noise(..., 'noise', noise_type='u', var=1/10)``;
        uniform, not Gaussian. ``generator`` makes it reproducible.
    kind "meshgrid": ``depth`` must be 2; channel 0 is x = ``arange(W) / (W - 1)``, channel 1 is y =
        ``arange(H) / (H - 1)``, both in [0, 1] (the large-hole inpainting input, Fig. 6).
    kind "normal": i.i.d. ``N(0, scale**2)`` (the Deep Random Projector's input, which is then fitted).
    kind "image": ``image`` itself, ``(H, W, C)`` with ``C == depth`` (flash/no-flash feeds the flash photo).
    """
    check_choice("input kind", kind, INPUT_KINDS)
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise DipInputError(f"input depth must be a positive integer, got {depth!r}")
    if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in size):
        raise DipInputError(f"size must be (height, width) with positive integers, got {size!r}")
    height, width = int(size[0]), int(size[1])

    if kind in ("noise", "normal"):
        if not math.isfinite(scale) or scale <= 0:
            raise DipInputError(f"noise scale must be a positive number, got {scale!r}")
        draw = torch.rand if kind == "noise" else torch.randn
        z = draw((1, depth, height, width), generator=generator, dtype=torch.float32) * scale
    elif kind == "meshgrid":
        if depth != 2:
            raise DipInputError(f"a meshgrid input has 2 channels (x and y); set the input depth to 2, not {depth}")
        if height < 2 or width < 2:
            raise DipInputError(f"a meshgrid needs at least 2x2 pixels, got {height}x{width}")
        x = torch.arange(width, dtype=torch.float64) / (width - 1)
        y = torch.arange(height, dtype=torch.float64) / (height - 1)
        z = torch.stack([x.expand(height, width), y[:, None].expand(height, width)])[None].float()
    else:
        if image is None:
            raise DipInputError("input kind 'image' needs the image (e.g. the flash photo)")
        arr = np.asarray(image)
        if arr.ndim != 3:
            raise DipInputError(f"the input image must be (H, W, C), got shape {arr.shape}")
        if arr.shape[:2] != (height, width):
            raise DipInputError(f"the input image is {arr.shape[0]}x{arr.shape[1]} but the fit needs {height}x{width}")
        if arr.shape[2] != depth:
            raise DipInputError(f"the input image has {arr.shape[2]} channels; set the input depth to {arr.shape[2]}")
        z = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))[None]
    return z.contiguous()
