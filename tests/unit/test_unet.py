"""The U-Net (dip.nets.unet): the authors' ``models/unet.py`` (parameter count of the Fig. 8 network, structure),
sizes and settings."""

from __future__ import annotations

import pytest
from torch import nn

from dip import nets
from dip.errors import DipInputError
from tests.helpers import convs, forward_once


def test_parameter_count_is_the_authors_fig8_unet():
    # Counted on the authors' UNet(1, 3, feature_scale=8, more_layers=1, InstanceNorm2d).
    assert nets.count_parameters(nets.unet(1, 3, feature_scale=8, more_layers=1)) == 1_616_315


@pytest.mark.parametrize(
    "kwargs,channels,size",
    [
        (dict(), 32, 32),  # defaults: feature_scale 4, deconv, instance norm
        (dict(feature_scale=8, more_layers=1), 1, 64),  # the Fig. 8 library network
        (dict(feature_scale=16, more_layers=2), 2, 128),  # the authors' forward crashes here (undefined self.more)
        (dict(feature_scale=16, concat_x=True, upsample="bilinear", norm="batch", pad="reflection"), 3, 32),
        (dict(feature_scale=16, upsample="nearest", norm="none", need_sigmoid=False), 3, 32),
    ],
)
def test_unet_keeps_the_size(kwargs, channels, size):
    net = nets.unet(channels, 3, **kwargs)
    assert net.spatial_multiple == 2 ** (4 + kwargs.get("more_layers", 0))
    y = forward_once(net, channels, size)
    assert y.shape == (1, 3, size, size)
    if kwargs.get("need_sigmoid", True):
        assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_unet_structure():
    net = nets.unet(1, 3, feature_scale=8, more_layers=1)
    # Encoder widths [64, 128, 256, 512, 1024] / 8; the extra level keeps 128.
    assert [convs(m)[-1].out_channels for m in [net.start, *net.downs, *net.more_downs]] == [8, 16, 32, 64, 128, 128]
    norms = [m for m in net.modules() if isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d))]
    assert norms and all(isinstance(m, nn.InstanceNorm2d) and not m.affine for m in norms)
    # Decoder blocks have no normalisation, only ReLU.
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in net.ups.modules())
    assert all(isinstance(up.up, nn.ConvTranspose2d) for up in net.ups)
    # concat_x keeps the widths: each encoder conv gives in_channels fewer, the pooled input fills them up.
    cx = nets.unet(3, 3, feature_scale=16, concat_x=True)
    assert convs(cx.start)[-1].out_channels == 4 - 3


def test_unet_too_small_input_raises_an_actionable_error():
    net = nets.unet(1, 3, feature_scale=16)
    with pytest.raises(DipInputError, match="at least 32 px"):
        forward_once(net, 1, 16)  # four poolings leave 1x1: instance norm has a single value
    assert forward_once(nets.unet(1, 3, feature_scale=16, norm="none"), 1, 16).shape == (1, 3, 16, 16)
    with pytest.raises(DipInputError, match="too small"):
        forward_once(nets.unet(1, 3, feature_scale=16, norm="none"), 1, 8)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(upsample="pixelshuffle"), "upsample"),
        (dict(norm="group"), "normalisation"),
        (dict(feature_scale=3), "feature_scale"),
        (dict(more_layers=-1), "more_layers"),
        (dict(feature_scale=64, concat_x=True), "no channels"),
    ],
)
def test_bad_unet_settings_raise(kwargs, match):
    with pytest.raises(DipInputError, match=match):
        nets.unet(**kwargs)
