"""The Deep Decoder (Heckel & Hand, ICLR 2019): an under-parameterised image model without spatial convolutions.

As the authors' ``decodernw`` (reinhardh/supplement_deep_decoder, include/decoder.py, lines 22-64, with its defaults
``upsample_first=True``, ``bn_before_act=False``, ``bn_affine=True``, ``pad='reflection'``): ``layers`` times a 1x1
convolution without bias (k -> k channels), then (all but the last layer) bilinear x2 upsampling, ReLU, and batch
normalisation with an affine part (the paper's "channel normalisation"); a last 1x1 convolution to the image's
channels and a sigmoid. The input is ``k`` channels of U(0, 0.1) noise at ``1 / 2**(layers - 1)`` of the output's
size (include/fit.py, lines 50-58: ``totalupsample = 2**len(num_channels)`` with ``num_channels = [k] * 5``, so a
512 px image has a 16 px input). The denoising notebook (denoising.ipynb) uses k = 128 and 6 layers.

Parameters: ``layers * (k**2 + 2k) + k * channels``; for k = 128, 6 layers and a colour image: 100,224 (fewer than
the 786,432 values of a 512 px colour image it represents).
"""

from __future__ import annotations

import torch
from torch import nn

from dip.errors import DipInputError

__all__ = ["DeepDecoder", "deep_decoder"]


class DeepDecoder(nn.Module):
    """``(N, in_channels, H / 2**(layers-1), W / 2**(layers-1)) -> (N, out_channels, H, W)``.

    ``input_divisor``: how much smaller than the output the input is (what a fit's input ``z`` is sized by, see
    :func:`dip.nets.inputs.input_size`); ``spatial_multiple``: the multiple the output's sides must have.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 128, layers: int = 6,
                 upsample: str = "bilinear"):  # fmt: skip
        super().__init__()
        if layers < 1 or channels < 1:
            raise DipInputError(f"a Deep Decoder needs layers >= 1 and channels >= 1, got {layers} and {channels}")
        if upsample not in ("bilinear", "nearest"):
            raise DipInputError(f"Deep Decoder upsampling must be bilinear or nearest, got {upsample!r}")
        body: list[nn.Module] = []
        width = in_channels
        for i in range(layers):
            body.append(nn.Conv2d(width, channels, kernel_size=1, bias=False))
            if i != layers - 1:
                # align_corners=False: what nn.Upsample(scale_factor=2, mode='bilinear') does in current torch
                body.append(nn.Upsample(scale_factor=2, mode=upsample))
            body += [nn.ReLU(), nn.BatchNorm2d(channels, affine=True)]
            width = channels
        body += [nn.Conv2d(channels, out_channels, kernel_size=1, bias=False), nn.Sigmoid()]
        self.body = nn.Sequential(*body)
        self.input_divisor = 2 ** (layers - 1)
        self.spatial_multiple = self.input_divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def deep_decoder(in_channels: int, out_channels: int, *, channels: int = 128, layers: int = 6,
                 upsample: str = "bilinear") -> DeepDecoder:  # fmt: skip
    """The Deep Decoder of ``layers`` layers of ``channels`` (the paper's k) channels (registry name
    ``deep_decoder``)."""
    return DeepDecoder(in_channels, out_channels, channels=channels, layers=layers, upsample=upsample)
