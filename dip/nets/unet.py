"""The U-Net of the architecture comparison (the authors' ``models/unet.py``; Fig. 8, library inpainting).

``4 + more_layers`` max-pool levels of widths ``[64, 128, 256, 512, 1024] / feature_scale``, ReLU, instance norm
without parameters in the encoder and none in the decoder, as the authors' code; inputs must be multiples of
``2**(4 + more_layers)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dip.errors import DipInputError
from dip.nets.layers import PAD_MODES, UPSAMPLE_MODES, centre_crop_to, check_choice, conv
from dip.nets.recompute import WholeRegion, recomputes

__all__ = ["UNet", "unet"]


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
            conv(in_channels, out_channels, 3, bias=bias, pad=pad),
            _norm2d(norm, out_channels),
            nn.ReLU(),
            conv(out_channels, out_channels, 3, bias=bias, pad=pad),
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
                conv(in_channels, out_channels, 3, bias=bias, pad=pad),
            )
        self.conv = _UNetDoubleConv(2 * out_channels, out_channels, "none", bias, pad)

    def forward(self, deeper: torch.Tensor, encoder: torch.Tensor) -> torch.Tensor:
        up = self.up(deeper)
        encoder = centre_crop_to(encoder, up.shape[2], up.shape[3])
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
        head: list[nn.Module] = [conv(widths[0], out_channels, 1, bias=need_bias, pad=pad)]
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

    def recompute_targets(self) -> list[nn.Module]:
        """What :func:`dip.nets.recompute.enable_checkpointing` switches: every block, each one region."""
        return [self.start, *self.downs, *self.more_downs, *self.ups, *self.more_ups]



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
    check_choice("U-Net upsample mode", upsample, ("deconv",) + UPSAMPLE_MODES)
    check_choice("padding", pad, PAD_MODES)
    _norm2d(norm, 1)
    if not isinstance(feature_scale, (int, np.integer)) or feature_scale < 1 or 64 % feature_scale:
        raise DipInputError(f"feature_scale must be a divisor of 64 (1, 2, 4, 8, ...), got {feature_scale!r}")
    if not isinstance(more_layers, (int, np.integer)) or more_layers < 0:
        raise DipInputError(f"more_layers must be an integer >= 0, got {more_layers!r}")
    return UNet(
        in_channels, out_channels, feature_scale, more_layers, concat_x, upsample, pad, norm, need_sigmoid, need_bias
    )


# --- the same network, recomputing its activations in backward (dip.nets.recompute: memory saving) -------------------


@recomputes(_UNetDoubleConv)
class RecomputedUNetDoubleConv(WholeRegion, _UNetDoubleConv):
    """_UNetDoubleConv: a U-Net block that is one region (:class:`~dip.nets.recompute.WholeRegion`)."""


@recomputes(_UNetDown)
class RecomputedUNetDown(WholeRegion, _UNetDown):
    """_UNetDown: a U-Net block that is one region (:class:`~dip.nets.recompute.WholeRegion`)."""


@recomputes(_UNetUp)
class RecomputedUNetUp(WholeRegion, _UNetUp):
    """_UNetUp: a U-Net block that is one region (:class:`~dip.nets.recompute.WholeRegion`)."""
