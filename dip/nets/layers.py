"""The layers the DIP networks are built of, and the checks of their settings.

The authors' ``models/common.py``: the size-keeping convolution (:func:`conv`, zero or reflection padding, optionally
followed by a pooling or Lanczos downsampler), the activations by name, the fixed Lanczos downsampler and the
centre-cropping concatenation that joins branches of different sizes. Two layers keep less for backward than torch's
own with the same values: in-place activations after batch norm and :class:`ReflectConv2d`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dip.errors import DipInputError
from dip.physics import KERNEL_SUPPORT, lanczos_weights

__all__ = [
    "ACTIVATIONS",
    "DOWNSAMPLE_MODES",
    "UPSAMPLE_MODES",
    "PAD_MODES",
    "LanczosDownsample",
    "ReflectConv2d",
    "activation",
    "centre_crop_to",
    "check_choice",
    "check_kernel",
    "concat_centre_cropped",
    "conv",
    "per_level",
]

ACTIVATIONS = ("LeakyReLU", "ELU", "ReLU", "Swish", "none")
UPSAMPLE_MODES = ("nearest", "bilinear")
DOWNSAMPLE_MODES = ("stride", "avg", "max", *KERNEL_SUPPORT)  # the Lanczos kernels of dip.physics: lanczos2, lanczos3
PAD_MODES = ("reflection", "zero")


def activation(name: str, *, inplace: bool = False) -> nn.Module:
    """The non-linearity by name. LeakyReLU uses slope 0.2, as the authors' ``act('LeakyReLU')``.

    ``inplace=True`` (used right after a batch norm, whose output nothing else reads) overwrites its input instead of
    allocating an output: the values and gradients are the same, and autograd keeps one tensor per block instead of
    two where a 1x1 convolution follows (BENCHMARKS.md, memory).
    """
    if name == "LeakyReLU":
        return nn.LeakyReLU(0.2, inplace=inplace)
    if name == "ELU":
        return nn.ELU(inplace=inplace)
    if name == "ReLU":
        return nn.ReLU(inplace=inplace)
    if name == "Swish":
        return nn.SiLU(inplace=inplace)  # x * sigmoid(x), the authors' Swish
    if name == "none":
        return nn.Identity()
    raise DipInputError(f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}")


def check_choice(what: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise DipInputError(f"unknown {what} {value!r}; use one of {', '.join(choices)}")


class LanczosDownsample(nn.Module):
    """Fixed (not trained) Lanczos anti-aliasing + 2x decimation of every channel separately.

    Replaces the strided convolution when ``downsample="lanczos2"|"lanczos3"``. Like the authors' ``Downsampler(...,
    phase=0.5, preserve_size=True)`` it replication-pads by ``(taps - factor) / 2`` so ``H x W -> H/2 x W/2``. One
    deliberate difference: the authors build it from an ``nn.Conv2d`` whose weights are ordinary parameters, so the
    optimiser silently trains their "fixed" kernel; here the taps are a non-persistent buffer and stay fixed.
    """

    def __init__(self, channels: int, kind: str = "lanczos2", factor: int = 2):
        super().__init__()
        check_choice("Lanczos kernel", kind, tuple(KERNEL_SUPPORT))
        # The authors' 2-D kernel is the outer product of these 1-D taps, so filtering along rows then columns is the
        # same filter; normalised in 1-D so that each pass keeps a constant image constant.
        weights = lanczos_weights(factor, KERNEL_SUPPORT[kind], phase=0.5)
        taps = torch.from_numpy(weights / weights.sum()).float()
        self.channels = channels
        self.factor = factor
        self.pad = (len(taps) - factor) // 2  # len(taps) - factor is even for the even factor used here
        # Depthwise (groups = channels) 1-D kernels: one along W, one along H.
        self.register_buffer("taps", taps, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4, mode="replicate")
        k = self.taps.to(dtype=x.dtype)
        along_w = k.view(1, 1, 1, -1).expand(self.channels, 1, 1, -1)
        along_h = k.view(1, 1, -1, 1).expand(self.channels, 1, -1, 1)
        x = F.conv2d(x, along_w, stride=(1, self.factor), groups=self.channels)
        return F.conv2d(x, along_h, stride=(self.factor, 1), groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, taps={len(self.taps)}, factor={self.factor}"


class ReflectConv2d(nn.Conv2d):
    """``nn.Conv2d(padding_mode="reflect")`` (= ``ReflectionPad2d`` + an unpadded convolution, the authors' layer) that
    keeps its *unpadded* input for the backward pass and pads it again there.

    Autograd would keep the padded copy of every convolution's input, beside the unpadded tensor the activation
    before it keeps anyway (a fifth of what a default fit keeps: BENCHMARKS.md, memory); padding again in backward is
    a memory-bound copy. Values and gradients are unchanged (tests). Off under ``torch.func`` transforms
    (``fit_many``) and ``torch.compile``, where saved-tensor hooks are not supported.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=padding, bias=bias,
                         padding_mode="reflect")  # fmt: skip

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        pad = self._reversed_padding_repeated_twice
        padded = F.pad(x, pad, mode="reflect")

        def convolve():
            return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)

        if not torch.is_grad_enabled() or torch.compiler.is_compiling() or torch._C._functorch.is_batchedtensor(x):
            return convolve()
        shape, version = padded.shape, x._version

        def pack(t: torch.Tensor):
            # The convolution saves its input (or, under autocast, its low-precision copy: same shape) and its weight.
            if t.shape != shape:
                return t
            channels_last = t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
            return _Repad(x, version, t.dtype, channels_last)

        def unpack(saved):
            if not isinstance(saved, _Repad):
                return saved
            if saved.source._version != saved.version:
                raise RuntimeError("the input of a reflection-padded convolution was modified in place before backward")
            t = F.pad(saved.source, pad, mode="reflect").to(saved.dtype)
            return t.contiguous(memory_format=torch.channels_last) if saved.channels_last else t

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            return convolve()


@dataclass(frozen=True)
class _Repad:
    """What :class:`ReflectConv2d` keeps instead of its padded input: the unpadded tensor and how to rebuild it."""

    source: torch.Tensor
    version: int
    dtype: torch.dtype
    channels_last: bool


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    bias: bool = True,
    pad: str = "zero",
    downsample: str = "stride",
) -> nn.Sequential:
    """Convolution that keeps the size (odd kernels), as the authors' ``common.conv``.

    ``pad="reflection"`` pads by reflection (:class:`ReflectConv2d`: it avoids the dark borders zero padding causes in
    generated images); ``pad="zero"`` uses the convolution's own zero padding.
    With ``stride=2`` and a non-``"stride"`` ``downsample`` the convolution runs at stride 1 and a pooling /
    Lanczos layer halves the size afterwards.
    """
    layers: list[nn.Module] = []
    pool: nn.Module | None = None
    if stride != 1 and downsample != "stride":
        if downsample == "avg":
            pool = nn.AvgPool2d(stride, stride)
        elif downsample == "max":
            pool = nn.MaxPool2d(stride, stride)
        else:
            pool = LanczosDownsample(out_channels, downsample, factor=stride)
        stride = 1
    padding = (kernel_size - 1) // 2
    if pad == "reflection" and padding > 0:
        layers.append(ReflectConv2d(in_channels, out_channels, kernel_size, stride, padding=padding, bias=bias))
    else:
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=padding, bias=bias))
    if pool is not None:
        layers.append(pool)
    return nn.Sequential(*layers)


def centre_crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height x width`` window of ``x`` (offsets rounded down, as the authors' ``Concat``)."""
    if x.shape[2] == height and x.shape[3] == width:
        return x
    top = (x.shape[2] - height) // 2
    left = (x.shape[3] - width) // 2
    return x[:, :, top : top + height, left : left + width]


def concat_centre_cropped(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate along channels after centre-cropping every tensor to the smallest height and width.

    Branches differ in size when ``H``/``W`` are not multiples of the network's :func:`size_multiple` (a strided
    convolution rounds up, the upsampling doubles).
    """
    height = min(t.shape[2] for t in tensors)
    width = min(t.shape[3] for t in tensors)
    return torch.cat([centre_crop_to(t, height, width) for t in tensors], dim=1)


def per_level(name: str, value: Any, levels: int) -> list:
    """Broadcast a scalar setting to every level, or check that a per-level list has one entry per level."""
    if isinstance(value, (list, tuple)):
        if len(value) != levels:
            raise DipInputError(f"{name} has {len(value)} entries but the network has {levels} levels")
        return list(value)
    return [value] * levels


def check_kernel(name: str, k: Any) -> None:
    # Even kernels cannot keep the size with symmetric padding: the branches would drift by a pixel per level.
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1 or k % 2 == 0:
        raise DipInputError(f"{name} must be a positive odd integer (1, 3, 5, ...), got {k!r}")
