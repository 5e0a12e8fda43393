"""The full-resolution residual network of the architecture comparison (the authors' ``models/resnet.py``; Fig. 8).

No resampling, so any input size works.
"""

from __future__ import annotations

import torch
from torch import nn

from dip.errors import DipInputError
from dip.nets.layers import PAD_MODES, activation, check_choice, conv
from dip.nets.recompute import WholeRegion, recomputes

__all__ = ["ResNet", "resnet"]


class _ResidualBlock(nn.Module):
    """``x + norm(conv(act(norm(conv(x)))))`` with bias-free 3x3 convolutions (zero padding, as the authors')."""

    def __init__(self, channels: int, norm: str, act: str, residual: bool):
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _affine_norm2d(norm, channels),
            activation(act),
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

    def recompute_targets(self) -> list[nn.Module]:
        """What :func:`dip.nets.recompute.enable_checkpointing` switches: every residual block, each one region."""
        return [m for m in self.modules() if type(m) in (_ResidualBlock, RecomputedResidualBlock)]



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
    check_choice("padding", pad, PAD_MODES)
    _affine_norm2d(norm, 1)
    activation(act)
    if num_blocks < 0 or num_channels < 1:
        raise DipInputError(f"need num_blocks >= 0 and num_channels >= 1, got {num_blocks} and {num_channels}")
    layers: list[nn.Module] = [conv(in_channels, num_channels, 3, bias=True, pad=pad), activation(act)]
    layers += [_ResidualBlock(num_channels, norm, act, need_residual) for _ in range(num_blocks)]
    layers += [nn.Conv2d(num_channels, num_channels, 3, 1, 1), _affine_norm2d(norm, num_channels)]
    layers.append(conv(num_channels, out_channels, 3, bias=True, pad=pad))
    if need_sigmoid:
        layers.append(nn.Sigmoid())
    return ResNet(nn.Sequential(*layers))


# --- the same network, recomputing its activations in backward (dip.nets.recompute: memory saving) -------------------


@recomputes(_ResidualBlock)
class RecomputedResidualBlock(WholeRegion, _ResidualBlock):
    """_ResidualBlock: a residual block that is one region (:class:`~dip.nets.recompute.WholeRegion`)."""
