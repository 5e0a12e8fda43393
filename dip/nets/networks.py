"""The networks of Deep Image Prior and the fixed code ``z`` they are fed.

DIP has no training set: a randomly initialised generator ``f_theta`` is fitted to one degraded image, and the
*structure* of the network is the prior. This module builds the architectures the paper uses, behaving like the
authors' ``models/`` (``DmitryUlyanov/deep-image-prior``) layer for layer, so that parameter counts, initialisation
and hence results are comparable:

* :func:`skip` - the "hourglass with skip connections" used for almost every experiment (default: 5 levels of
  128 channels, 4-channel skips, 2,217,831 parameters - "two million" in the paper);
* :func:`encoder_decoder` - the same hourglass without skips (:func:`skip` with ``channels_skip = 0``);
* :func:`unet` and :func:`resnet` - the alternatives of the architecture comparison (Fig. 8, library inpainting);
* :func:`build_net` - the name -> network registry that configs and the command line use;
* :func:`make_input` - the network input ``z``: uniform noise ``U(0, scale)``, a 2-channel meshgrid, or an image.

Every network maps ``(N, C_in, H, W) -> (N, C_out, H, W)`` when ``H`` and ``W`` are multiples of
:func:`size_multiple` (and, for the hourglass with reflection padding, at least ``net.min_size``: 64 px for the
default net, 192 px for ``skip_depth6``; smaller inputs raise :class:`DipInputError`). Batch normalisation is meant to stay in training mode (batch statistics of the single image),
as in the authors' notebooks, which never call ``eval()``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
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
    "INPUT_KINDS",
    "SkipNet",
    "UNet",
    "ResNet",
    "LanczosDownsample",
    "skip",
    "encoder_decoder",
    "unet",
    "resnet",
    "NETWORKS",
    "build_net",
    "make_input",
    "count_parameters",
    "size_multiple",
]

ACTIVATIONS = ("LeakyReLU", "ELU", "ReLU", "Swish", "none")
UPSAMPLE_MODES = ("nearest", "bilinear")
DOWNSAMPLE_MODES = ("stride", "avg", "max", *KERNEL_SUPPORT)  # the Lanczos kernels of dip.physics: lanczos2, lanczos3
PAD_MODES = ("reflection", "zero")
INPUT_KINDS = ("noise", "meshgrid", "image")


# --------------------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------------------


def _activation(name: str, *, inplace: bool = False) -> nn.Module:
    """The non-linearity by name. LeakyReLU uses slope 0.2, as the authors' ``act('LeakyReLU')``.

    ``inplace=True`` (used right after a batch norm, whose output nothing else reads) overwrites its input instead of
    allocating an output: the values and gradients are the same, and autograd keeps one tensor per block instead of
    two where a 1x1 convolution follows (about 340 MB less of the 1.9 GB saved for backward at 512 px, fp32).
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


def _check_choice(what: str, value: Any, choices: Sequence[str]) -> None:
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
        _check_choice("Lanczos kernel", kind, tuple(KERNEL_SUPPORT))
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
    before it keeps anyway: at 512 px that is 300 MB of a default fit's 1.55 GB kept for backward (fp32). Padding
    again in backward is a memory-bound copy (~1% of a step). Values and gradients are unchanged (tests). Off under
    ``torch.func`` transforms (``fit_many``) and ``torch.compile``, where saved-tensor hooks are not supported.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=padding, bias=bias,
                         padding_mode="reflect")  # fmt: skip

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        pad = self._reversed_padding_repeated_twice
        padded = F.pad(x, pad, mode="reflect")

        def conv():
            return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)

        if not torch.is_grad_enabled() or torch.compiler.is_compiling() or torch._C._functorch.is_batchedtensor(x):
            return conv()
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
            return conv()


@dataclass(frozen=True)
class _Repad:
    """What :class:`ReflectConv2d` keeps instead of its padded input: the unpadded tensor and how to rebuild it."""

    source: torch.Tensor
    version: int
    dtype: torch.dtype
    channels_last: bool


def _conv(
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


def _centre_crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height x width`` window of ``x`` (offsets rounded down, as the authors' ``Concat``)."""
    if x.shape[2] == height and x.shape[3] == width:
        return x
    top = (x.shape[2] - height) // 2
    left = (x.shape[3] - width) // 2
    return x[:, :, top : top + height, left : left + width]


def _concat_centre_cropped(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate along channels after centre-cropping every tensor to the smallest height and width.

    Branches differ in size when ``H``/``W`` are not multiples of the network's :func:`size_multiple` (a strided
    convolution rounds up, the upsampling doubles).
    """
    height = min(t.shape[2] for t in tensors)
    width = min(t.shape[3] for t in tensors)
    return torch.cat([_centre_crop_to(t, height, width) for t in tensors], dim=1)


def _per_level(name: str, value: Any, levels: int) -> list:
    """Broadcast a scalar setting to every level, or check that a per-level list has one entry per level."""
    if isinstance(value, (list, tuple)):
        if len(value) != levels:
            raise DipInputError(f"{name} has {len(value)} entries but the network has {levels} levels")
        return list(value)
    return [value] * levels


def _check_kernel(name: str, k: Any) -> None:
    # Even kernels cannot keep the size with symmetric padding: the branches would drift by a pixel per level.
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1 or k % 2 == 0:
        raise DipInputError(f"{name} must be a positive odd integer (1, 3, 5, ...), got {k!r}")


# --------------------------------------------------------------------------------------------------------------------
# The hourglass with skip connections
# --------------------------------------------------------------------------------------------------------------------


class SkipLevel(nn.Module):
    """One level of the hourglass; it owns the next (deeper) level, so the whole net is a chain of these.

    ``x -> [skip(x), up(inner(down(x)))] -> concat -> BN -> conv(k_up) -> BN -> act [-> conv1x1 -> BN -> act]``.
    Submodules are registered in the authors' order (skip, down, inner, merge), so ``parameters()`` lists the same
    tensors in the same order as their ``skip()``; only the module names differ.
    """

    def __init__(
        self,
        in_channels: int,
        channels_down: int,
        channels_up: int,
        channels_skip: int,
        inner: SkipLevel | None,
        inner_channels: int,
        *,
        kernel_down: int,
        kernel_up: int,
        kernel_skip: int,
        upsample: str,
        downsample: str,
        pad: str,
        bias: bool,
        act: str,
        need1x1_up: bool,
    ):
        super().__init__()
        # The skip branch: a cheap (1x1 by default) projection of this level's input, kept at full resolution.
        self.skip: nn.Sequential | None = None
        if channels_skip > 0:
            self.skip = nn.Sequential(
                _conv(in_channels, channels_skip, kernel_skip, bias=bias, pad=pad),
                nn.BatchNorm2d(channels_skip),
                _activation(act, inplace=True),
            )
        # The deeper branch: halve the size, convolve, recurse, double the size back.
        self.down = nn.Sequential(
            _conv(in_channels, channels_down, kernel_down, stride=2, bias=bias, pad=pad, downsample=downsample),
            nn.BatchNorm2d(channels_down),
            _activation(act, inplace=True),
            _conv(channels_down, channels_down, kernel_down, bias=bias, pad=pad),
            nn.BatchNorm2d(channels_down),
            _activation(act, inplace=True),
        )
        self.inner = inner
        # align_corners=False is torch's default since 0.4 and what the authors' 0.4 port ran with; the paper-era
        # code (torch <= 0.3) behaved like align_corners=True. It changes no parameter, only the interpolation.
        self.upsample = nn.Upsample(
            scale_factor=2, mode=upsample, align_corners=False if upsample == "bilinear" else None
        )
        merged = channels_skip + (inner_channels if inner is not None else channels_down)
        layers: list[nn.Module] = [
            nn.BatchNorm2d(merged),
            _conv(merged, channels_up, kernel_up, bias=bias, pad=pad),
            nn.BatchNorm2d(channels_up),
            _activation(act, inplace=True),
        ]
        if need1x1_up:
            layers += [
                _conv(channels_up, channels_up, 1, bias=bias, pad=pad),
                nn.BatchNorm2d(channels_up),
                _activation(act, inplace=True),
            ]
        self.merge = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.down(x)
        if self.inner is not None:
            deep = self.inner(deep)
        deep = self.upsample(deep)
        if self.skip is not None:
            deep = _concat_centre_cropped([self.skip(x), deep])
        return self.merge(deep)


class SkipNet(nn.Module):
    """The hourglass built by :func:`skip`: nested :class:`SkipLevel`\\ s, a 1x1 output convolution, a sigmoid."""

    def __init__(self, body: SkipLevel, head: nn.Sequential, levels: int, min_size: int = 1):
        super().__init__()
        self.body = body
        self.head = head
        self.levels = levels
        # Every level halves the size once: inputs must be multiples of 2**levels to come back unchanged.
        self.spatial_multiple = 2**levels
        self.min_size = min_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_size(x)
        return self.head(self.body(x))

    def _check_size(self, x: torch.Tensor) -> None:
        """Fail with a message the user can act on; otherwise torch fails deep inside, naming no setting."""
        height, width = x.shape[2], x.shape[3]
        if height < self.min_size or width < self.min_size:
            raise DipInputError(
                f"input is {height}x{width} but this {self.levels}-level network with reflection padding "
                f"needs at least {self.min_size}x{self.min_size}; use a bigger image or fewer levels"
            )
        # Training-mode batch norm needs more than one value per channel; a single image shrunk to 1x1 has one.
        inner_h, inner_w = height, width
        for _ in range(self.levels):
            inner_h, inner_w = -(-inner_h // 2), -(-inner_w // 2)
        if self.training and x.shape[0] * inner_h * inner_w == 1:
            raise DipInputError(
                f"input is {height}x{width}: the innermost of the {self.levels} levels is 1x1, too small for batch "
                f"norm; use at least {2 * self.spatial_multiple} px on one side or fewer levels"
            )


def _reflection_min_size(kernels_down: list[int], kernels_up: list[int], kernels_skip: list[int]) -> int:
    """Smallest side (a multiple of ``2**levels``) for which every reflection pad is narrower than its input.

    ``ReflectionPad2d(p)`` needs an input wider than ``p``. Level ``i`` sees side ``s / 2**i``: the skip, stride and
    up convolutions pad it; the second down convolution pads ``s / 2**(i+1)``. Sizes between multiples only round up,
    so this bound holds for them too. (The default 5-level, 3x3 net needs 64 px; the library depth-6 net, 192 px.)
    """
    levels = len(kernels_down)
    side = 2**levels
    while True:
        ok = all(
            side / 2 ** (i + 1) > (kernels_down[i] - 1) // 2
            and side / 2**i > max(kernels_down[i], kernels_up[i], kernels_skip[i]) // 2
            for i in range(levels)
        )
        if ok:
            return side
        side += 2**levels


def skip(
    in_channels: int = 32,
    out_channels: int = 3,
    channels_down: Sequence[int] = (128,) * 5,
    channels_up: Sequence[int] = (128,) * 5,
    channels_skip: Sequence[int] = (4,) * 5,
    kernel_down: int | Sequence[int] = 3,
    kernel_up: int | Sequence[int] = 3,
    kernel_skip: int | Sequence[int] = 1,
    upsample: str | Sequence[str] = "bilinear",
    downsample: str | Sequence[str] = "stride",
    pad: str = "reflection",
    need_sigmoid: bool = True,
    need_bias: bool = True,
    need1x1_up: bool = True,
    act: str = "LeakyReLU",
) -> SkipNet:
    """The paper's encoder-decoder ("hourglass") with skip connections (the authors' ``models/skip.py``).

    channels_down / channels_up / channels_skip: channels per level, outer to inner (one entry per level; a skip of 0
        drops that level's skip connection).
    kernel_down / kernel_up / kernel_skip: odd kernel sizes, one for all levels or one per level.
    upsample: "nearest" | "bilinear" (x2 per level), one for all levels or one per level.
    downsample: "stride" (strided conv) | "avg" | "max" | "lanczos2" | "lanczos3" (conv at stride 1, then that
        2x downsampler); one for all levels or one per level.
    pad: "reflection" | "zero".
    act: "LeakyReLU" (slope 0.2) | "ELU" | "ReLU" | "Swish" | "none".

    The defaults are the paper's denoising / super-resolution network: 2,217,831 parameters for 32 input channels.
    """
    channels_down, channels_up, channels_skip = list(channels_down), list(channels_up), list(channels_skip)
    levels = len(channels_down)
    if levels == 0 or not levels == len(channels_up) == len(channels_skip):
        raise DipInputError(
            "channels_down, channels_up and channels_skip need one entry per level and the same number of levels; "
            f"got {len(channels_down)}, {len(channels_up)} and {len(channels_skip)}"
        )
    for name, values, minimum in (
        ("channels_down", channels_down, 1),
        ("channels_up", channels_up, 1),
        ("channels_skip", channels_skip, 0),
    ):
        if any(not isinstance(c, (int, np.integer)) or c < minimum for c in values):
            raise DipInputError(f"{name} must hold integers >= {minimum}, got {values}")
    if in_channels < 1 or out_channels < 1:
        raise DipInputError(f"in_channels and out_channels must be >= 1, got {in_channels} and {out_channels}")
    kernels_down = _per_level("kernel_down", kernel_down, levels)
    kernels_up = _per_level("kernel_up", kernel_up, levels)
    kernels_skip = _per_level("kernel_skip", kernel_skip, levels)
    for name, ks in (("kernel_down", kernels_down), ("kernel_up", kernels_up), ("kernel_skip", kernels_skip)):
        for k in ks:
            _check_kernel(name, k)
    upsamples = _per_level("upsample", upsample, levels)
    downsamples = _per_level("downsample", downsample, levels)
    for mode in upsamples:
        _check_choice("upsample mode", mode, UPSAMPLE_MODES)
    for mode in downsamples:
        _check_choice("downsample mode", mode, DOWNSAMPLE_MODES)
    _check_choice("padding", pad, PAD_MODES)
    _activation(act)  # validates the name before anything is built

    # Build inside out: each level needs to know how many channels its inner level hands back (its channels_up).
    level: SkipLevel | None = None
    for i in reversed(range(levels)):
        level_in = in_channels if i == 0 else channels_down[i - 1]
        level = SkipLevel(
            level_in,
            channels_down[i],
            channels_up[i],
            channels_skip[i],
            inner=level,
            inner_channels=channels_up[i + 1] if i + 1 < levels else 0,
            kernel_down=kernels_down[i],
            kernel_up=kernels_up[i],
            kernel_skip=kernels_skip[i],
            upsample=upsamples[i],
            downsample=downsamples[i],
            pad=pad,
            bias=need_bias,
            act=act,
            need1x1_up=need1x1_up,
        )
    head: list[nn.Module] = [_conv(channels_up[0], out_channels, 1, bias=need_bias, pad=pad)]
    if need_sigmoid:
        head.append(nn.Sigmoid())  # images live in [0, 1]
    assert level is not None
    min_size = _reflection_min_size(kernels_down, kernels_up, kernels_skip) if pad == "reflection" else 1
    return SkipNet(level, nn.Sequential(*head), levels, min_size)


def encoder_decoder(
    in_channels: int = 32, out_channels: int = 3, depth: int = 5, channels: int | Sequence[int] = 128, **kw: Any
) -> SkipNet:
    """The hourglass *without* skip connections: :func:`skip` with ``channels_skip = 0`` at every level.

    channels: one width for every level, or one per level (used for both the down and the up path).
    Other keyword arguments go to :func:`skip`.
    """
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise DipInputError(f"depth must be a positive integer, got {depth!r}")
    widths = _per_level("channels", channels, depth)
    return skip(in_channels, out_channels, widths, widths, [0] * depth, **kw)


# --------------------------------------------------------------------------------------------------------------------
# U-Net (the authors' models/unet.py)
# --------------------------------------------------------------------------------------------------------------------


def _norm2d(norm: str, channels: int) -> nn.Module:
    # The authors pass a class; InstanceNorm2d's default is affine=False (no parameters), BatchNorm2d's affine=True.
    if norm == "instance":
        return nn.InstanceNorm2d(channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise DipInputError(f"unknown normalisation {norm!r}; use one of instance, batch, none")


class _UNetDoubleConv(nn.Sequential):
    """(conv3x3 -> norm -> ReLU) x 2, the authors' ``unetConv2``. ReLU here, not LeakyReLU, as in their U-Net."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, bias: bool, pad: str):
        super().__init__(
            _conv(in_channels, out_channels, 3, bias=bias, pad=pad),
            _norm2d(norm, out_channels),
            nn.ReLU(),
            _conv(out_channels, out_channels, 3, bias=bias, pad=pad),
            _norm2d(norm, out_channels),
            nn.ReLU(),
        )


class _UNetDown(nn.Sequential):
    """2x2 max pooling, then the double convolution (``unetDown``)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, bias: bool, pad: str):
        super().__init__(nn.MaxPool2d(2, 2), _UNetDoubleConv(in_channels, out_channels, norm, bias, pad))


class _UNetUp(nn.Module):
    """Upsample the deeper map, concatenate the (centre-cropped) encoder map, double conv without norm (``unetUp``).

    ``in_channels`` is the deeper map's width (``2 * out_channels`` except for the extra levels of ``more_layers``).
    The transposed convolution always has a bias, as in the authors' code (it ignores ``need_bias``).
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: str, bias: bool, pad: str):
        super().__init__()
        if upsample == "deconv":
            self.up: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode=upsample, align_corners=False if upsample == "bilinear" else None),
                _conv(in_channels, out_channels, 3, bias=bias, pad=pad),
            )
        self.conv = _UNetDoubleConv(2 * out_channels, out_channels, "none", bias, pad)

    def forward(self, deeper: torch.Tensor, encoder: torch.Tensor) -> torch.Tensor:
        up = self.up(deeper)
        encoder = _centre_crop_to(encoder, up.shape[2], up.shape[3])
        return self.conv(torch.cat([up, encoder], dim=1))


class UNet(nn.Module):
    """U-Net with ``4 + more_layers`` max-pool levels; widths ``[64, 128, 256, 512, 1024] / feature_scale``.

    ``concat_x`` appends the average-pooled input to every encoder output (those convolutions then produce
    ``in_channels`` fewer channels, so widths stay the same).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        feature_scale: int,
        more_layers: int,
        concat_x: bool,
        upsample: str,
        pad: str,
        norm: str,
        need_sigmoid: bool,
        need_bias: bool,
    ):
        super().__init__()
        self.concat_x = concat_x
        self.more_layers = more_layers
        self.spatial_multiple = 2 ** (4 + more_layers)
        self.normalised = norm != "none"
        widths = [w // feature_scale for w in (64, 128, 256, 512, 1024)]
        if widths[0] - (in_channels if concat_x else 0) < 1:
            raise DipInputError(f"feature_scale={feature_scale} leaves no channels for in_channels={in_channels}")
        extra = in_channels if concat_x else 0  # channels the concatenated input takes from each encoder output

        self.start = _UNetDoubleConv(in_channels, widths[0] - extra, norm, need_bias, pad)
        self.downs = nn.ModuleList(_UNetDown(widths[i], widths[i + 1] - extra, norm, need_bias, pad) for i in range(4))
        self.more_downs = nn.ModuleList(
            _UNetDown(widths[4], widths[4] - extra, norm, need_bias, pad) for _ in range(more_layers)
        )
        # The extra (innermost) levels keep the width: their up-blocks take widths[4] in and give widths[4] out.
        self.more_ups = nn.ModuleList(
            _UNetUp(widths[4], widths[4], upsample, need_bias, pad) for _ in range(more_layers)
        )
        # ups[i] brings level i+1 back to level i (widths[i+1] -> widths[i]); listed outer to inner.
        self.ups = nn.ModuleList(_UNetUp(widths[i + 1], widths[i], upsample, need_bias, pad) for i in range(4))
        head: list[nn.Module] = [_conv(widths[0], out_channels, 1, bias=need_bias, pad=pad)]
        if need_sigmoid:
            head.append(nn.Sigmoid())
        self.final = nn.Sequential(*head)

    def _check_size(self, x: torch.Tensor) -> None:
        """Fail with a message the user can act on instead of a shape error deep inside torch."""
        levels = 4 + self.more_layers
        inner_h, inner_w = x.shape[2] >> levels, x.shape[3] >> levels  # max pooling rounds down
        # Normalising the innermost map needs more than one value per channel (batch norm: over the batch too).
        values = inner_h * inner_w * (x.shape[0] if self.training else 1)
        if inner_h == 0 or inner_w == 0 or (self.normalised and self.training and values < 2):
            need = self.spatial_multiple * (2 if self.normalised else 1)
            raise DipInputError(
                f"input is {x.shape[2]}x{x.shape[3]}, too small for this U-Net's {levels} poolings; use at least "
                f"{need} px on a side (multiples of {self.spatial_multiple}) or fewer more_layers"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_size(x)
        # Average-pooled copies of the input, one per level, for concat_x.
        pooled = [x]
        if self.concat_x:
            for _ in range(4 + self.more_layers):
                pooled.append(F.avg_pool2d(pooled[-1], 2, 2))

        def with_input(features: torch.Tensor, level: int) -> torch.Tensor:
            return torch.cat([features, pooled[level]], dim=1) if self.concat_x else features

        encoder = [with_input(self.start(x), 0)]
        for level, down in enumerate(list(self.downs) + list(self.more_downs), start=1):
            encoder.append(with_input(down(encoder[-1]), level))

        # Decode from the innermost map; the authors' forward refers to an undefined ``self.more`` and crashes for
        # more_layers >= 2 - this is the loop it meant.
        y = encoder[-1]
        for j in reversed(range(self.more_layers)):
            y = self.more_ups[j](y, encoder[4 + j])
        for i in reversed(range(4)):
            y = self.ups[i](y, encoder[i])
        return self.final(y)


def unet(
    in_channels: int = 32,
    out_channels: int = 3,
    feature_scale: int = 4,
    more_layers: int = 0,
    concat_x: bool = False,
    upsample: str = "deconv",
    pad: str = "zero",
    norm: str = "instance",
    need_sigmoid: bool = True,
    need_bias: bool = True,
) -> UNet:
    """The authors' U-Net (``models/unet.py``), the "UNET" of the library inpainting comparison (Fig. 8).

    upsample: "deconv" (4x4 transposed conv, stride 2) | "nearest" | "bilinear" (then a 3x3 conv).
    norm: "instance" (no affine parameters, the Fig. 8 setting) | "batch" | "none"; decoder blocks have no norm.
    The Fig. 8 network is ``unet(1, 3, feature_scale=8, more_layers=1)``.
    """
    _check_choice("U-Net upsample mode", upsample, ("deconv",) + UPSAMPLE_MODES)
    _check_choice("padding", pad, PAD_MODES)
    _norm2d(norm, 1)
    if not isinstance(feature_scale, (int, np.integer)) or feature_scale < 1 or 64 % feature_scale:
        raise DipInputError(f"feature_scale must be a divisor of 64 (1, 2, 4, 8, ...), got {feature_scale!r}")
    if not isinstance(more_layers, (int, np.integer)) or more_layers < 0:
        raise DipInputError(f"more_layers must be an integer >= 0, got {more_layers!r}")
    return UNet(
        in_channels, out_channels, feature_scale, more_layers, concat_x, upsample, pad, norm, need_sigmoid, need_bias
    )


# --------------------------------------------------------------------------------------------------------------------
# ResNet (the authors' models/resnet.py)
# --------------------------------------------------------------------------------------------------------------------


class _ResidualBlock(nn.Module):
    """``x + norm(conv(act(norm(conv(x)))))`` with bias-free 3x3 convolutions (zero padding, as the authors')."""

    def __init__(self, channels: int, norm: str, act: str, residual: bool):
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _affine_norm2d(norm, channels),
            _activation(act),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _affine_norm2d(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def _affine_norm2d(norm: str, channels: int) -> nn.Module:
    # The authors' ResNet builds its norm layers with affine=True (so InstanceNorm here has parameters too).
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise DipInputError(f"unknown normalisation {norm!r}; use one of batch, instance")


class ResNet(nn.Module):
    """Full-resolution residual network: conv -> act -> residual blocks -> conv -> norm -> conv -> sigmoid."""

    spatial_multiple = 1  # no resampling: any size works

    def __init__(self, model: nn.Sequential):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def resnet(
    in_channels: int = 32,
    out_channels: int = 3,
    num_blocks: int = 8,
    num_channels: int = 32,
    need_residual: bool = True,
    act: str = "LeakyReLU",
    need_sigmoid: bool = True,
    norm: str = "batch",
    pad: str = "reflection",
) -> ResNet:
    """The authors' ResNet (``models/resnet.py``), the "ResNet" of the library inpainting comparison (Fig. 8).

    The library notebook builds ``ResNet(1, 3, 8, 32)``: 8 blocks of 32 channels - our defaults. (Their ``get_net``
    passes its arguments positionally into the wrong slots and fails; this is the intended network.) ``pad`` applies
    to the first and last convolutions only; the inner ones zero-pad, as in the authors' code.
    """
    _check_choice("padding", pad, PAD_MODES)
    _affine_norm2d(norm, 1)
    _activation(act)
    if num_blocks < 0 or num_channels < 1:
        raise DipInputError(f"need num_blocks >= 0 and num_channels >= 1, got {num_blocks} and {num_channels}")
    layers: list[nn.Module] = [_conv(in_channels, num_channels, 3, bias=True, pad=pad), _activation(act)]
    layers += [_ResidualBlock(num_channels, norm, act, need_residual) for _ in range(num_blocks)]
    layers += [nn.Conv2d(num_channels, num_channels, 3, 1, 1), _affine_norm2d(norm, num_channels)]
    layers.append(_conv(num_channels, out_channels, 3, bias=True, pad=pad))
    if need_sigmoid:
        layers.append(nn.Sigmoid())
    return ResNet(nn.Sequential(*layers))


# --------------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------------

# The library inpainting networks of Fig. 8 (``NET_TYPE='skip_depthN'``): widths [16, 32, 64, 128, 128, 128][:N],
# no skip connections, 5x5 down / 3x3 up kernels, no 1x1 up-convolutions, nearest upsampling.
_LIBRARY_WIDTHS = (16, 32, 64, 128, 128, 128)


def _skip_depth(in_channels: int, out_channels: int, *, depth: int, **kw: Any) -> SkipNet:
    widths = list(_LIBRARY_WIDTHS[:depth])
    settings: dict[str, Any] = dict(
        channels_down=widths,
        channels_up=widths,
        channels_skip=[0] * depth,
        kernel_down=5,
        kernel_up=3,
        kernel_skip=1,
        need1x1_up=False,
        upsample="nearest",
    )
    settings.update(kw)  # explicit keyword arguments win over the preset
    return skip(in_channels, out_channels, **settings)


def _skip_depth_factory(depth: int) -> Callable[..., SkipNet]:
    factory = functools.partial(_skip_depth, depth=depth)
    functools.update_wrapper(factory, _skip_depth)
    factory.__signature__ = inspect.signature(skip)  # type: ignore[attr-defined]  # accepts skip()'s keywords
    return factory


NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "skip": skip,
    "encoder_decoder": encoder_decoder,
    "unet": unet,
    "resnet": resnet,
    **{f"skip_depth{d}": _skip_depth_factory(d) for d in range(2, 7)},
}


def build_net(name: str, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    """The network called ``name`` (see :data:`NETWORKS`), ``in_channels -> out_channels``, other settings as kwargs.

    Names are case-insensitive (the authors' notebooks say "UNET", "ResNet"). Unknown names and keyword arguments
    the network does not take raise :class:`DipInputError` (they usually come from a config file).
    """
    key = name.lower() if isinstance(name, str) else name
    factory = NETWORKS.get(key)
    if factory is None:
        raise DipInputError(f"unknown network {name!r}; use one of {', '.join(NETWORKS)}")
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            valid = [p for p in params if p not in ("in_channels", "out_channels")]
            raise DipInputError(
                f"network {key!r} does not take {', '.join(unknown)}; its settings are {', '.join(valid)}"
            )
    return factory(in_channels, out_channels, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# Network input and helpers
# --------------------------------------------------------------------------------------------------------------------


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
    kind "image": ``image`` itself, ``(H, W, C)`` with ``C == depth`` (flash/no-flash feeds the flash photo).
    """
    _check_choice("input kind", kind, INPUT_KINDS)
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise DipInputError(f"input depth must be a positive integer, got {depth!r}")
    if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in size):
        raise DipInputError(f"size must be (height, width) with positive integers, got {size!r}")
    height, width = int(size[0]), int(size[1])

    if kind == "noise":
        if not math.isfinite(scale) or scale <= 0:
            raise DipInputError(f"noise scale must be a positive number, got {scale!r}")
        z = torch.rand((1, depth, height, width), generator=generator, dtype=torch.float32) * scale
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


def count_parameters(net: nn.Module) -> int:
    """Number of trainable scalars (what the paper's "two million parameters" counts)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def size_multiple(net_or_depth: nn.Module | int | str, **net_kwargs: Any) -> int:
    """The spatial multiple a network's input height and width must have for the output to keep the size.

    Accepts a network from this module, a number of halving levels (``2**levels``), or a registry name plus its
    settings (e.g. ``size_multiple("skip", channels_down=[8] * 3, ...)``). Networks without resampling return 1.
    """
    if isinstance(net_or_depth, bool):
        raise DipInputError(f"size_multiple needs a network, a depth or a name, got {net_or_depth!r}")
    if isinstance(net_or_depth, (int, np.integer)):
        if net_or_depth < 0:
            raise DipInputError(f"depth must be >= 0, got {net_or_depth}")
        return 2 ** int(net_or_depth)
    if isinstance(net_or_depth, str):
        # Build on the meta device: shapes only, no memory, no initialisation cost.
        with torch.device("meta"):
            net_or_depth = build_net(net_or_depth, 1, 1, **net_kwargs)
    return int(getattr(net_or_depth, "spatial_multiple", 1))
