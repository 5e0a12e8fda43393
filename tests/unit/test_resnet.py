"""The ResNet (dip.nets.resnet): the authors' ``models/resnet.py`` (parameter count of the Fig. 8 network), any
size, residual blocks."""

from __future__ import annotations

import torch
from torch import nn

from dip import nets
from dip.nets.resnet import _ResidualBlock
from tests.helpers import convs, forward_once


def test_parameter_count_is_the_authors_fig8_resnet():
    # Counted on the authors' ResNet(1, 3, 8, 32).
    assert nets.count_parameters(nets.resnet(1, 3)) == 158_979


def test_resnet_any_size_and_residual_blocks():
    net = nets.resnet(1, 3)
    assert net.spatial_multiple == 1
    blocks = [m for m in net.modules() if isinstance(m, _ResidualBlock)]
    assert len(blocks) == 8 and all(c.out_channels == 32 and c.bias is None for b in blocks for c in convs(b))
    y = forward_once(net, 1, 23, 17)  # no resampling: odd sizes are fine
    assert y.shape == (1, 3, 23, 17) and float(y.min()) >= 0 and float(y.max()) <= 1
    plain = nets.resnet(
        3,
        1,
        num_blocks=2,
        num_channels=8,
        need_residual=False,
        norm="instance",
        pad="zero",
        act="ELU",
        need_sigmoid=False,
    )
    assert forward_once(plain, 3, 16).shape == (1, 1, 16, 16)
    assert not any(isinstance(m, (nn.Sigmoid, nets.ReflectConv2d)) for m in plain.modules())


def test_resnet_residual_adds_the_input():
    block = _ResidualBlock(4, "batch", "LeakyReLU", residual=True)
    nn.init.zeros_(block.body[-1].weight)  # the last BN scales to 0: the block must be the identity
    x = torch.rand(1, 4, 8, 8)
    torch.testing.assert_close(block(x), x)
