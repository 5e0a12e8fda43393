"""The Deep Decoder (dip.nets.deep_decoder): what defines it -- no spatial convolutions, its paper's parameter count,
an input 2**(layers-1) times smaller than its output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dip.errors import DipInputError
from dip.nets import build_net, count_parameters, size_multiple
from dip.nets.deep_decoder import deep_decoder
from dip.nets.inputs import input_size

# Heckel & Hand (ICLR 2019): k = 128 channels, d = 6 layers, a colour image: N = d (k^2 + 2k) + 3k = 100,224 (1x1
# weights without bias, affine channel normalisation, the k -> 3 output layer), as reinhardh/supplement_deep_decoder's
# decodernw builds it (include/decoder.py) -- 0.13 parameters per value of a 512 px colour image.
PAPER_PARAMETERS_K128 = 100_224


def test_the_deep_decoder_has_no_spatial_convolutions():
    net = deep_decoder(128, 3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7  # six layers and the output layer
    assert all(c.kernel_size == (1, 1) and c.padding == (0, 0) and c.bias is None for c in convs)
    assert sum(isinstance(m, nn.Upsample) for m in net.modules()) == 5
    assert sum(isinstance(m, nn.BatchNorm2d) and m.affine for m in net.modules()) == 6


def test_its_parameter_count_is_the_papers():
    assert count_parameters(deep_decoder(128, 3)) == PAPER_PARAMETERS_K128
    # The authors' inpainting.ipynb (cell 7: k=256 on their 4-channel poster.png) prints "number of parameters:
    # 397312" = 6 (256^2 + 2 * 256) + 4 * 256: the same count, from their own code.
    assert count_parameters(deep_decoder(256, 4, channels=256)) == 397_312
    assert count_parameters(build_net("deep_decoder", 64, 3, channels=64, layers=6)) == 6 * (64**2 + 2 * 64) + 3 * 64
    assert PAPER_PARAMETERS_K128 < 512 * 512 * 3  # under-parameterised: fewer weights than the image's values


def test_the_input_is_smaller_than_the_output_by_the_upsampling():
    torch.manual_seed(0)
    net = build_net("deep_decoder", 8, 3, channels=8, layers=4)
    assert input_size(net, (64, 48)) == (8, 6) and size_multiple(net) == 8
    assert input_size(deep_decoder(128, 3), (512, 512)) == (16, 16)  # the notebook's [1, 128, 16, 16]
    out = net(torch.rand(1, 8, 8, 6) * 0.1)
    assert out.shape == (1, 3, 64, 48) and 0 < out.min() and out.max() < 1


def test_bad_settings_are_refused():
    with pytest.raises(DipInputError, match="layers >= 1"):
        deep_decoder(8, 3, layers=0)
    with pytest.raises(DipInputError, match="does not take width"):
        build_net("deep_decoder", 8, 3, width=4)
