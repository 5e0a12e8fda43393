"""Observation operators ``A``: what turns the unknown clean image ``x`` into what we observe, ``y = A(x) (+ noise)``.

DIP fits ``A(f_theta(z))`` to ``y``; the task only changes ``A`` (deepinv's "physics"): identity for denoising (and
JPEG / flash-no-flash), the authors' Lanczos downsampler for super-resolution, a pixel mask for inpainting.
Operators are ``torch.nn.Module``s without trainable parameters; their constants are buffers, so ``.to(device)``
moves them with the fit. Inputs are ``(N, C, H, W)`` tensors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dip.errors import DipInputError
from dip.tasks import get_task

__all__ = [
    "KERNEL_SUPPORT",
    "lanczos_weights",
    "lanczos_kernel",
    "Identity",
    "LanczosDownsampler",
    "Mask",
    "data_term",
    "build_operator",
]

# Kernel name -> Lanczos support ``a`` (the authors' 'lanczos2' / 'lanczos3' in models/downsampler.py). The networks'
# Lanczos downsampling layers take the same names.
KERNEL_SUPPORT = {"lanczos2": 2, "lanczos3": 3}


def lanczos_weights(factor: int, support: int = 2, phase: float = 0.5) -> np.ndarray:
    """The 1-D weights of the authors' separable Lanczos kernel (``models/downsampler.py: get_kernel``), float64,
    not normalised: :func:`lanczos_kernel` (the SR operator) and the networks' Lanczos downsampling layer
    (:class:`dip.nets.layers.LanczosDownsample`) each normalise them their way.

    ``kernel_width = 2 * support * factor + 1`` (4f+1 for lanczos2, 6f+1 for lanczos3), centre ``(width + 1) / 2``.
    With ``phase=0.5`` there are ``width - 1`` taps (16 at x4, 32 at x8 for lanczos2) and tap ``i = 1..width-1`` sits
    at distance ``d = |i + 0.5 - centre| / factor``; with ``phase=0`` there are ``width`` taps at
    ``d = |i - centre| / factor``. Each weight is ``a sin(pi d) sin(pi d / a) / (pi^2 d^2)`` (1 at d=0).
    """
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise DipInputError(f"the downsampling factor must be a positive integer, got {factor!r}")
    if support < 1:
        raise DipInputError(f"the Lanczos support must be >= 1, got {support}")
    if phase not in (0, 0.5):
        raise DipInputError(f"phase must be 0 or 0.5, got {phase}")
    width = 2 * support * factor + 1
    taps = width - 1 if phase == 0.5 else width
    centre = (width + 1) / 2.0
    i = np.arange(1, taps + 1, dtype=np.float64)
    d = np.abs(i + phase - centre) / factor
    with np.errstate(divide="ignore", invalid="ignore"):
        w1 = support * np.sin(np.pi * d) * np.sin(np.pi * d / support) / (np.pi**2 * d**2)
    return np.where(d == 0, 1.0, w1)


def lanczos_kernel(factor: int, support: int = 2, phase: float = 0.5) -> np.ndarray:
    """The authors' 2-D Lanczos downsampling kernel: the outer product of :func:`lanczos_weights`, normalised to sum 1
    (16x16 at x4, 32x32 at x8 for lanczos2 with ``phase=0.5``)."""
    w1 = lanczos_weights(factor, support, phase)
    kernel = np.outer(w1, w1)
    return kernel / kernel.sum()


class Identity(nn.Module):
    """``A(x) = x``: denoising, JPEG-artefact removal, flash/no-flash."""

    factor = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class LanczosDownsampler(nn.Module):
    """The authors' SR degradation: replication pad, then a fixed per-channel Lanczos convolution, stride ``factor``.

    Matches ``Downsampler(n_planes, factor, 'lanczos2', phase=0.5, preserve_size=True)``: ``ReplicationPad2d(
    (ks - factor) / 2)`` (6 at x4, 12 at x8) and a convolution whose weight is the kernel on the channel diagonal.
    The output is exactly ``H / factor x W / factor``. (For odd factors ``ks - factor`` is odd and the authors'
    symmetric ``int()`` padding loses a row; we pad the extra pixel at the bottom/right so the size still holds.)
    """

    def __init__(self, factor: int, channels: int = 3, kernel: str = "lanczos2"):
        super().__init__()
        if kernel not in KERNEL_SUPPORT:
            raise DipInputError(f"unknown downsampling kernel {kernel!r}; choose one of: {', '.join(KERNEL_SUPPORT)}")
        if channels < 1:
            raise DipInputError(f"the number of channels must be >= 1, got {channels}")
        self.factor = int(factor)
        self.channels = int(channels)
        self.kernel_name = kernel
        k = lanczos_kernel(factor, KERNEL_SUPPORT[kernel], phase=0.5)
        self.kernel_size = k.shape[0]
        total = self.kernel_size - self.factor
        self.padding = (total // 2, total - total // 2)  # (before, after), equal for the paper's even factors
        # A depthwise (groups=C) convolution equals the authors' C->C convolution with the kernel on the diagonal and
        # zeros elsewhere, at 1/C of the cost.
        weight = torch.from_numpy(k).to(torch.float32).expand(self.channels, 1, *k.shape).contiguous()
        self.register_buffer("weight", weight)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, channels={self.channels}, kernel={self.kernel_name}, size={self.kernel_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise DipInputError(
                f"super-resolution by x{self.factor} needs an image whose sides are multiples of {self.factor}; "
                f"got {w}x{h}. Crop it (dip.data.imageio.crop_to_multiple) first"
            )
        if x.shape[1] != self.channels:
            raise DipInputError(f"the downsampler was built for {self.channels} channel(s), got {x.shape[1]}")
        before, after = self.padding
        x = F.pad(x, (before, after, before, after), mode="replicate")
        return F.conv2d(x, self.weight.to(x.dtype), stride=self.factor, groups=self.channels)


class Mask(nn.Module):
    """``A(x) = x * m`` with ``m`` 1 on known pixels and 0 on missing ones (inpainting)."""

    factor = 1

    def __init__(self, mask: np.ndarray | torch.Tensor):
        super().__init__()
        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).to(torch.float32)
        if m.dim() == 2:
            m = m[..., None]
        if m.dim() != 3:
            raise DipInputError(f"a mask must be (H, W), (H, W, 1) or (H, W, C), got shape {tuple(m.shape)}")
        if not bool(torch.any(m > 0)):
            raise DipInputError("the mask is empty: no pixel is known (1 = known, 0 = missing), nothing to fit")
        # (H, W, C) -> (1, C, H, W); a single-channel mask broadcasts over the image's channels.
        self.register_buffer("mask", m.permute(2, 0, 1).unsqueeze(0).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mh, mw = self.mask.shape[-2:]
        if x.shape[-2:] != (mh, mw):
            raise DipInputError(f"the mask is {mw}x{mh} but the image is {x.shape[-1]}x{x.shape[-2]}")
        if self.mask.shape[1] not in (1, x.shape[1]):
            raise DipInputError(f"the mask has {self.mask.shape[1]} channels but the image has {x.shape[1]}")
        return x * self.mask.to(x.dtype)


def data_term(operator: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``A(x)`` and ``y`` (the authors' ``MSELoss``; for a Mask, ``y`` is already masked).

    Computed in float32 even if the network ran under bf16 autocast, so the loss keeps its precision.
    """
    ax = operator(x)
    if ax.shape != y.shape:
        raise DipInputError(
            f"the observation has shape {tuple(y.shape)} but the operator produces {tuple(ax.shape)} from the image"
        )
    return torch.mean((ax.float() - y.float()) ** 2)


def build_operator(
    task: str,
    *,
    channels: int,
    factor: int | None = None,
    mask: np.ndarray | torch.Tensor | None = None,
    kernel: str = "lanczos2",
) -> nn.Module:
    """The operator ``A`` of ``task``: denoise/jpeg/flash -> Identity, sr -> LanczosDownsampler, inpaint -> Mask."""
    get_task(task)  # an unknown task fails here, with the choices
    if task != "sr" and factor not in (None, 1):
        raise DipInputError(f"a factor only applies to super-resolution, not to {task!r}")
    if task != "inpaint" and mask is not None:
        raise DipInputError(f"a mask only applies to inpainting, not to {task!r}")
    if task == "sr":
        if factor is None or isinstance(factor, bool) or int(factor) != factor or factor < 1:
            raise DipInputError(f"super-resolution needs an integer factor >= 1 (e.g. 4), got {factor!r}")
        return LanczosDownsampler(int(factor), channels, kernel)
    if task == "inpaint":
        if mask is None:
            raise DipInputError("inpainting needs a mask (1 = known pixel, 0 = missing)")
        m = Mask(mask)
        if m.mask.shape[1] not in (1, channels):
            raise DipInputError(f"the mask has {m.mask.shape[1]} channels but the image has {channels}")
        return m
    return Identity()
