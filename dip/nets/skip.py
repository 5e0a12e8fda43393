"""The hourglass with skip connections (the authors' ``models/skip.py``) and the encoder-decoder without them.

:func:`skip` is the network of almost every experiment of the paper (default: 5 levels of 128 channels, 4-channel
skips, 2,217,831 parameters for 32 input channels - "two million" in the paper); :func:`encoder_decoder` is the same
hourglass with ``channels_skip = 0``. Built as the authors build it, layer for layer and in their order, so that
parameter counts, initialisation and hence results are comparable. Inputs must be multiples of ``2**levels`` (and, with
reflection padding, at least ``net.min_size``: 64 px for the default net, 192 px for ``skip_depth6``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dip.errors import DipInputError
from dip.nets.layers import (
    DOWNSAMPLE_MODES,
    PAD_MODES,
    UPSAMPLE_MODES,
    activation,
    check_choice,
    check_kernel,
    concat_centre_cropped,
    conv,
    per_level,
)
from dip.nets.recompute import apply_layers, recomputes, region

__all__ = ["SkipLevel", "SkipNet", "skip", "encoder_decoder"]


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
                conv(in_channels, channels_skip, kernel_skip, bias=bias, pad=pad),
                nn.BatchNorm2d(channels_skip),
                activation(act, inplace=True),
            )
        # The deeper branch: halve the size, convolve, recurse, double the size back.
        self.down = nn.Sequential(
            conv(in_channels, channels_down, kernel_down, stride=2, bias=bias, pad=pad, downsample=downsample),
            nn.BatchNorm2d(channels_down),
            activation(act, inplace=True),
            conv(channels_down, channels_down, kernel_down, bias=bias, pad=pad),
            nn.BatchNorm2d(channels_down),
            activation(act, inplace=True),
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
            conv(merged, channels_up, kernel_up, bias=bias, pad=pad),
            nn.BatchNorm2d(channels_up),
            activation(act, inplace=True),
        ]
        if need1x1_up:
            layers += [
                conv(channels_up, channels_up, 1, bias=bias, pad=pad),
                nn.BatchNorm2d(channels_up),
                activation(act, inplace=True),
            ]
        self.merge = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.down(x)
        if self.inner is not None:
            deep = self.inner(deep)
        deep = self.upsample(deep)
        if self.skip is not None:
            deep = concat_centre_cropped([self.skip(x), deep])
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

    def recompute_targets(self) -> list[nn.Module]:
        """What :func:`dip.nets.recompute.enable_checkpointing` switches: every level, and the net itself."""
        return [m for m in self.modules() if type(m) in (SkipLevel, RecomputedSkipLevel)] + [self]



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
    (Long for its 15 keyword settings, the authors' own, and their checks.)
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
    kernels_down = per_level("kernel_down", kernel_down, levels)
    kernels_up = per_level("kernel_up", kernel_up, levels)
    kernels_skip = per_level("kernel_skip", kernel_skip, levels)
    for name, ks in (("kernel_down", kernels_down), ("kernel_up", kernels_up), ("kernel_skip", kernels_skip)):
        for k in ks:
            check_kernel(name, k)
    upsamples = per_level("upsample", upsample, levels)
    downsamples = per_level("downsample", downsample, levels)
    for mode in upsamples:
        check_choice("upsample mode", mode, UPSAMPLE_MODES)
    for mode in downsamples:
        check_choice("downsample mode", mode, DOWNSAMPLE_MODES)
    check_choice("padding", pad, PAD_MODES)
    activation(act)  # validates the name before anything is built

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
    head: list[nn.Module] = [conv(channels_up[0], out_channels, 1, bias=need_bias, pad=pad)]
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
    widths = per_level("channels", channels, depth)
    return skip(in_channels, out_channels, widths, widths, [0] * depth, **kw)


# --- the same network, recomputing its activations in backward (dip.nets.recompute: memory saving) -------------------


@recomputes(SkipLevel)
class RecomputedSkipLevel(SkipLevel):
    """A :class:`~dip.nets.skip.SkipLevel` whose activations are recomputed in backward.

    How the level is cut. A region keeps only its inputs; everything inside it is recomputed in backward, and torch's
    early stop ends a recomputation as soon as the region's last operation has saved its inputs, so a region that
    *ends* with a convolution never runs that convolution twice. Each level therefore runs as regions that start
    after a convolution and end with the next one (``batch norm -> activation -> [upsample, concat] -> convolution``),
    and what stays between regions is a convolution's raw output, handed on with the norm and activation still to
    apply. On top of that, the full-resolution level spends one extra 3x3 convolution so that neither of its two
    128-channel outputs is held through the other's backward, and its concatenation is rebuilt (from the
    half-resolution branch and the 4-channel skip) for its batch norm's backward. Reflection padding inside a region
    keeps nothing (:class:`~dip.nets.recompute._ReflectPad`). What this saves against checkpointing each whole level, and the floor of
    any scheme that keeps autograd's arithmetic: BENCHMARKS.md, "Memory: activation checkpointing".
    """


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre, tail = self._forward_pre(x, (), top=False)
        return apply_layers(tail, pre)

    def _forward_pre(
        self, x: torch.Tensor, entry: Sequence[nn.Module], top: bool
    ) -> tuple[torch.Tensor, Sequence[nn.Module]]:
        """The level on ``entry(x)``, returned as ``(pre, tail)``: its output is ``tail(pre)``.

        ``entry`` and ``tail`` are the batch norm + activation that follow a convolution: the level hands them to the
        regions that consume the tensor, so that what is kept between regions is always a convolution's output.
        ``top``: the full-resolution level, which spends one more convolution to keep less (see the class notes).
        """
        down, merge, skip = self.down, self.merge, self.skip
        s: torch.Tensor | None = None
        if skip is not None and not entry:
            s = skip[0](x)  # on the network input, which is kept anyway

        # The down path, ending with its second convolution (which early stop skips when recomputing; the strided
        # one, at a quarter of the pixels, and the 4-channel skip convolution run again).
        def down_path(t: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
            u = apply_layers(entry, t)
            return (skip[0](u) if skip is not None and entry else None), down[3](apply_layers(down[:3], u))

        s_in, d = region((*entry, *down[:3]), down_path, x)
        s = s if s is not None else s_in
        if self.inner is not None:
            deep, deep_tail = self.inner._forward_pre(d, down[4:6], top=False)
        else:
            deep, deep_tail = d, down[4:6]
        skip_args = (s,) if s is not None else ()
        merge_norms = (*deep_tail, *(skip[1:3] if skip is not None else ()), merge[0])

        def merge_in(deep_pre: torch.Tensor, *skip_pre: torch.Tensor) -> torch.Tensor:
            y = self.upsample(apply_layers(deep_tail, deep_pre))
            if skip_pre:
                y = concat_centre_cropped([apply_layers(skip[1:3], skip_pre[0]), y])
            return merge[0](y)

        def conv_a(deep_pre: torch.Tensor, *skip_pre: torch.Tensor) -> torch.Tensor:
            if top:
                # The batch norm of the concatenation in a region of its own: its input is rebuilt for its backward
                # instead of being held through the 3x3 convolution's.
                return merge[1](region(merge_norms, merge_in, deep_pre, *skip_pre))
            return merge[1](merge_in(deep_pre, *skip_pre))

        if len(merge) == 4:  # no 1x1 up-convolution: BN, conv, BN, act
            return region(merge_norms, conv_a, deep, *skip_args), merge[2:4]

        def conv_b(c: torch.Tensor) -> torch.Tensor:  # BN, act, 1x1 conv
            return merge[4](apply_layers(merge[2:4], c))

        if top:
            # Keep neither convolution's output of the full-resolution merge beyond its own backward: the 3x3 one is
            # rebuilt (one more 3x3 convolution) when the 1x1 one's backward needs it.
            def conv_ab(deep_pre: torch.Tensor, *skip_pre: torch.Tensor) -> torch.Tensor:
                return region(merge[2:4], conv_b, region(merge_norms, conv_a, deep_pre, *skip_pre))

            c = region((), conv_ab, deep, *skip_args)
        else:
            c = region((*merge_norms, *merge[2:4]), lambda d_, *s_: conv_b(conv_a(d_, *s_)), deep, *skip_args)
        return c, merge[5:7]


@recomputes(SkipNet)
class RecomputedSkipNet(SkipNet):
    """A :class:`~dip.nets.skip.SkipNet` whose levels are :class:`RecomputedSkipLevel`\\ s."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_size(x)
        pre, tail = self.body._forward_pre(x, (), top=True)
        # The last norm + activation and the 1x1 output convolution: the 128-channel activation is not kept.
        return region(tail, lambda t: self.head(apply_layers(tail, t)), pre)
