"""The hourglass with skip connections and the encoder-decoder (dip.nets.skip): the authors' architecture (parameter
counts, layer order), its settings and its forward behaviour.

The expected parameter counts are those of the authors' ``models/skip.py`` with the notebook settings. When the
networks were written (then as dip/nets.py) their outputs were also checked to be identical to the authors'
networks given the same weights (lanczos within 3e-6); that check needs their code and is not repeated here.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dip import nets
from dip.errors import DipInputError
from tests.helpers import convs, forward_once, skip_levels

PARAMETER_COUNTS = {
    # The paper's default (denoising / SR): "two million parameters".
    "default": (lambda: nets.skip(), 2_217_831),
    "inpainting kate": (lambda: nets.skip(32, 3, [128] * 5, [128] * 5, [128] * 5, upsample="nearest"), 3_002_627),
    "inpainting vase": (lambda: nets.skip(2, 3, [128] * 5, [128] * 5, [0] * 5, upsample="nearest"), 2_157_955),
    "denoising snail": (
        lambda: nets.skip(3, 3, [8, 16, 32, 64, 128], [8, 16, 32, 64, 128], [0, 0, 0, 4, 4]),
        572_827,
    ),
    "flash/no-flash": (
        lambda: nets.skip(
            3, 3, [128] * 5, [128] * 5, [4] * 5, upsample=["nearest", "nearest", "bilinear", "bilinear", "bilinear"]
        ),
        2_184_307,
    ),
}


@pytest.mark.parametrize("case", list(PARAMETER_COUNTS))
def test_parameter_count_matches_the_authors_network(case):
    build, expected = PARAMETER_COUNTS[case]
    assert nets.count_parameters(build()) == expected


def test_default_net_is_the_papers_two_million_parameter_hourglass():
    net = nets.skip()
    levels = skip_levels(net)
    assert len(levels) == 5 and net.spatial_multiple == 32
    first = levels[0]
    # Skip branch: 1x1 conv 32 -> 4, BN, LeakyReLU(0.2).
    skip_conv = convs(first.skip)[0]
    assert (skip_conv.in_channels, skip_conv.out_channels, skip_conv.kernel_size) == (32, 4, (1, 1))
    assert isinstance(first.skip[2], nn.LeakyReLU) and first.skip[2].negative_slope == 0.2
    # Deeper branch: the first conv is 3x3 with stride 2 after a reflection pad; the second keeps the size.
    down_convs = convs(first.down)
    assert down_convs[0].stride == (2, 2) and down_convs[0].padding == (1, 1)
    assert isinstance(down_convs[0], nets.ReflectConv2d) and down_convs[0].padding_mode == "reflect"
    assert down_convs[1].stride == (1, 1)
    # Merge: BN over skip + inner channels (4 + 128), 3x3 conv, BN, act, 1x1 conv, BN, act.
    assert first.merge[0].num_features == 4 + 128
    assert [c.kernel_size for c in convs(first.merge)] == [(3, 3), (1, 1)]
    assert first.upsample.mode == "bilinear" and first.upsample.align_corners is False
    # Head: 1x1 conv to 3 channels and a sigmoid.
    assert convs(net.head)[0].kernel_size == (1, 1) and isinstance(net.head[-1], nn.Sigmoid)
    # The innermost level has no inner level; its merge BN sees skip + its own down channels.
    assert levels[-1].inner is None and levels[-1].merge[0].num_features == 4 + 128


def test_default_net_keeps_the_size_and_outputs_images_in_0_1():
    y = forward_once(nets.skip(), 32, 64)
    assert y.shape == (1, 3, 64, 64) and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert float(y.std()) > 0  # not a constant image


def test_output_channels_and_no_sigmoid():
    net = nets.skip(4, 1, [8] * 3, [8] * 3, [2] * 3, need_sigmoid=False)
    assert not any(isinstance(m, nn.Sigmoid) for m in net.modules())
    y = forward_once(net, 4, 32)
    assert y.shape == (1, 1, 32, 32)
    assert float(y.min()) < 0.0  # a linear head: the batch-normalised features reach negative values


def test_no_bias_removes_every_conv_bias():
    with_bias = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3)
    without = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, need_bias=False)
    assert all(c.bias is None for c in convs(without))
    n_conv_out = sum(c.out_channels for c in convs(with_bias))
    assert nets.count_parameters(with_bias) - nets.count_parameters(without) == n_conv_out


def test_skip_branches_follow_channels_skip():
    net = nets.skip(3, 3, [8, 16, 32, 64, 128], [8, 16, 32, 64, 128], [0, 0, 0, 4, 4])
    assert [level.skip is None for level in skip_levels(net)] == [True, True, True, False, False]
    # Without a skip the merge BN sees only the inner level's up channels.
    assert [level.merge[0].num_features for level in skip_levels(net)] == [16, 32, 64, 4 + 128, 4 + 128]


def test_odd_sizes_are_centre_cropped_in_the_concat():
    # 37 and 45 are not multiples of 8: the strided convs round up, the upsampled branch is bigger than the skip
    # branch and is centre-cropped, so a net whose outer level has a skip still returns the input size.
    y = forward_once(nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3), 4, 37, 45)
    assert y.shape == (1, 3, 37, 45)


def test_per_level_upsample_modes():
    modes = ["nearest", "nearest", "bilinear", "bilinear", "bilinear"]
    net = nets.skip(3, 3, [8] * 5, [8] * 5, [4] * 5, upsample=modes)
    assert [level.upsample.mode for level in skip_levels(net)] == modes
    assert forward_once(net, 3, 64).shape == (1, 3, 64, 64)


def test_per_level_kernel_sizes():
    # The activation-maximisation settings: kernel sizes differ per level.
    k_down, k_up = [5, 3, 5], [5, 3, 3]
    net = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, kernel_down=k_down, kernel_up=k_up, kernel_skip=[1, 3, 1])
    for level, kd, ku, ks in zip(skip_levels(net), k_down, k_up, [1, 3, 1]):
        assert {c.kernel_size for c in convs(level.down)} == {(kd, kd)}
        assert convs(level.merge)[0].kernel_size == (ku, ku)
        assert convs(level.skip)[0].kernel_size == (ks, ks)
    assert forward_once(net, 4, 32).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("mode", nets.DOWNSAMPLE_MODES)
def test_every_downsample_mode_halves_once_per_level(mode):
    net = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, downsample=mode)
    first_down = net.body.down[0]
    conv = convs(first_down)[0]
    if mode == "stride":
        assert conv.stride == (2, 2) and len(first_down) == 1  # the reflection-padded conv alone
    else:
        assert conv.stride == (1, 1)  # full-resolution conv, then the pooling layer
        expected = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}.get(mode, nets.LanczosDownsample)
        assert isinstance(first_down[-1], expected)
    # A fixed downsampler adds no trainable parameters.
    assert nets.count_parameters(net) == nets.count_parameters(nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3))
    assert forward_once(net, 4, 32).shape == (1, 3, 32, 32)


def test_zero_and_reflection_padding():
    reflect = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, pad="reflection")
    zero = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, pad="zero")
    assert any(isinstance(m, nets.ReflectConv2d) for m in reflect.modules())
    assert not any(isinstance(m, nets.ReflectConv2d) for m in zero.modules())
    assert all(c.padding == ((c.kernel_size[0] - 1) // 2,) * 2 for c in convs(zero))
    assert nets.count_parameters(reflect) == nets.count_parameters(zero)
    assert forward_once(zero, 4, 32).shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    "act,layer", [("LeakyReLU", nn.LeakyReLU), ("ELU", nn.ELU), ("ReLU", nn.ReLU), ("Swish", nn.SiLU), ("none", None)]
)
def test_activations(act, layer):
    net = nets.skip(4, 3, [8] * 2, [8] * 2, [2] * 2, act=act)
    kinds = {type(m) for m in net.modules()}
    for other in (nn.LeakyReLU, nn.ELU, nn.ReLU, nn.SiLU):
        assert (other in kinds) == (other is layer)
    assert forward_once(net, 4, 16).shape == (1, 3, 16, 16)


def test_every_parameter_gets_a_gradient():
    net = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, downsample="lanczos2")
    x = torch.rand(1, 4, 32, 32) * 0.1
    net(x).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_channels_last_gives_the_same_output():
    # dip.fit may run the net in channels_last memory format.
    net = nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, downsample="lanczos3")
    x = torch.rand(1, 4, 32, 32) * 0.1
    with torch.no_grad():
        y = net(x)
        y_cl = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y, y_cl, rtol=1e-4, atol=1e-5)


def test_too_small_inputs_raise_an_actionable_error():
    net = nets.skip()
    assert net.min_size == 64  # 32 px leaves 1x1 at the fifth level, too small for a reflection pad of 1
    with pytest.raises(DipInputError, match="at least 64x64"):
        forward_once(net, 32, 32)
    # The library depth-6 net (5x5 down convs) needs 192 px; depth 2 runs at its bound.
    assert nets.build_net("skip_depth6", 1, 3).min_size == 192
    depth2 = nets.build_net("skip_depth2", 1, 3)
    assert forward_once(depth2, 1, depth2.min_size).shape == (1, 3, 12, 12)
    # Zero padding has no such bound, but batch norm cannot normalise a single 1x1 value per channel.
    with pytest.raises(DipInputError, match="batch norm"):
        forward_once(nets.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, pad="zero"), 4, 8)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(channels_down=[8] * 3, channels_up=[8] * 2, channels_skip=[2] * 3), "same number of levels"),
        (dict(channels_down=[], channels_up=[], channels_skip=[]), "one entry per level"),
        (dict(channels_skip=[4, 4, -1, 4, 4]), "channels_skip"),
        (dict(kernel_down=4), "odd"),
        (dict(kernel_up=[3, 3]), "kernel_up has 2 entries"),
        (dict(upsample="bicubicc"), "upsample mode"),
        (dict(downsample="lanczos5"), "downsample mode"),
        (dict(pad="replicate"), "padding"),
        (dict(act="Tanh"), "activation"),
    ],
)
def test_bad_skip_settings_raise(kwargs, match):
    with pytest.raises(DipInputError, match=match):
        nets.skip(**kwargs)


def test_encoder_decoder_is_the_hourglass_without_skips():
    net = nets.encoder_decoder(4, 3, depth=3, channels=8)
    assert all(level.skip is None for level in skip_levels(net))
    same = nets.skip(4, 3, [8] * 3, [8] * 3, [0] * 3)
    assert nets.count_parameters(net) == nets.count_parameters(same)
    assert forward_once(net, 4, 32).shape == (1, 3, 32, 32)
    assert nets.count_parameters(nets.encoder_decoder()) == nets.count_parameters(nets.skip(channels_skip=[0] * 5))
    # Keywords go through to skip().
    assert skip_levels(nets.encoder_decoder(4, 3, 2, [8, 16], upsample="nearest"))[1].upsample.mode == "nearest"
