"""The Deep Random Projector's network (Li et al., CVPR 2023): batch normalisation of the (fitted) input, then a
shallow skip network whose convolutions stay at their random initialisation.

As the authors' denoising code (sun-umn/Deep-Random-Projector, 1_Denoising/train_denoising.py, lines 44-49 and
107-108; 1_Denoising/BN_Net.py): ``BNNet`` (one ``BatchNorm2d`` over the input's channels) feeds ``get_net(..., 'skip',
skip_n33d=64, skip_n33u=64, skip_n11=4, num_scales=1, upsample_mode='bilinear')``. Freezing the convolutions and
fitting the input is the method's part (:mod:`dip.fit.family`), not the network's.
"""

from __future__ import annotations

import torch
from torch import nn

from dip.nets.skip import skip

__all__ = ["RandomProjector", "random_projector"]


class RandomProjector(nn.Module):
    """``BatchNorm2d(in_channels)`` then ``net``; sizes as ``net``'s."""

    def __init__(self, in_channels: int, net: nn.Module):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(in_channels)
        self.net = net
        self.spatial_multiple = int(getattr(net, "spatial_multiple", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.input_norm(x))


def random_projector(in_channels: int, out_channels: int, **skip_kwargs) -> RandomProjector:
    """The projector over :func:`dip.nets.skip.skip` with ``skip_kwargs`` (registry name ``random_projector``)."""
    return RandomProjector(in_channels, skip(in_channels, out_channels, **skip_kwargs))
