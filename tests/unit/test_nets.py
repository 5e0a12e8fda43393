"""Networks and network inputs: the authors' architectures (parameter counts, layer order, shapes) and ``z``.

The expected parameter counts are those of the authors' ``models/skip.py`` / ``unet.py`` / ``resnet.py`` with the
notebook settings. When the networks were written (then as dip/models.py) their outputs were also checked to be
identical to the authors' networks given the same weights (lanczos within 3e-6); that check needs their code and is
not repeated here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dip.errors import DipInputError
from dip.nets import networks as models

LIBRARY_WIDTHS = [16, 32, 64, 128, 128, 128]


def _levels(net: models.SkipNet) -> list[models.SkipLevel]:
    """The net's levels, outer to inner."""
    out, level = [], net.body
    while level is not None:
        out.append(level)
        level = level.inner
    return out


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _forward(net: nn.Module, channels: int, height: int, width: int | None = None, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    x = torch.rand(1, channels, height, width or height) * 0.1
    with torch.no_grad():
        return net(x)


# --------------------------------------------------------------------------------------------------------------------
# Parameter counts: the architecture is the authors', layer for layer
# --------------------------------------------------------------------------------------------------------------------

PARAMETER_COUNTS = {
    # The paper's default (denoising / SR): "two million parameters".
    "default": (lambda: models.skip(), 2_217_831),
    "inpainting kate": (lambda: models.skip(32, 3, [128] * 5, [128] * 5, [128] * 5, upsample="nearest"), 3_002_627),
    "inpainting vase": (lambda: models.skip(2, 3, [128] * 5, [128] * 5, [0] * 5, upsample="nearest"), 2_157_955),
    "denoising snail": (
        lambda: models.skip(3, 3, [8, 16, 32, 64, 128], [8, 16, 32, 64, 128], [0, 0, 0, 4, 4]),
        572_827,
    ),
    "library skip_depth6 (explicit)": (
        lambda: models.skip(
            1,
            3,
            LIBRARY_WIDTHS,
            LIBRARY_WIDTHS,
            [0] * 6,
            kernel_down=5,
            kernel_up=3,
            need1x1_up=False,
            upsample="nearest",
        ),
        2_996_467,
    ),
    "library skip_depth6 (registry)": (lambda: models.build_net("skip_depth6", 1, 3), 2_996_467),
    "flash/no-flash": (
        lambda: models.skip(
            3, 3, [128] * 5, [128] * 5, [4] * 5, upsample=["nearest", "nearest", "bilinear", "bilinear", "bilinear"]
        ),
        2_184_307,
    ),
    # The Fig. 8 alternatives, counted on the authors' UNet(1, 3, feature_scale=8, more_layers=1, InstanceNorm2d)
    # and ResNet(1, 3, 8, 32).
    "library UNet": (lambda: models.unet(1, 3, feature_scale=8, more_layers=1), 1_616_315),
    "library ResNet": (lambda: models.resnet(1, 3), 158_979),
}


@pytest.mark.parametrize("case", list(PARAMETER_COUNTS))
def test_parameter_count_matches_the_authors_network(case):
    build, expected = PARAMETER_COUNTS[case]
    assert models.count_parameters(build()) == expected


def test_default_net_is_the_papers_two_million_parameter_hourglass():
    net = models.skip()
    levels = _levels(net)
    assert len(levels) == 5 and net.spatial_multiple == 32
    first = levels[0]
    # Skip branch: 1x1 conv 32 -> 4, BN, LeakyReLU(0.2).
    skip_conv = _convs(first.skip)[0]
    assert (skip_conv.in_channels, skip_conv.out_channels, skip_conv.kernel_size) == (32, 4, (1, 1))
    assert isinstance(first.skip[2], nn.LeakyReLU) and first.skip[2].negative_slope == 0.2
    # Deeper branch: the first conv is 3x3 with stride 2 after a reflection pad; the second keeps the size.
    down_convs = _convs(first.down)
    assert down_convs[0].stride == (2, 2) and down_convs[0].padding == (1, 1)
    assert isinstance(down_convs[0], models.ReflectConv2d) and down_convs[0].padding_mode == "reflect"
    assert down_convs[1].stride == (1, 1)
    # Merge: BN over skip + inner channels (4 + 128), 3x3 conv, BN, act, 1x1 conv, BN, act.
    assert first.merge[0].num_features == 4 + 128
    assert [c.kernel_size for c in _convs(first.merge)] == [(3, 3), (1, 1)]
    assert first.upsample.mode == "bilinear" and first.upsample.align_corners is False
    # Head: 1x1 conv to 3 channels and a sigmoid.
    assert _convs(net.head)[0].kernel_size == (1, 1) and isinstance(net.head[-1], nn.Sigmoid)
    # The innermost level has no inner level; its merge BN sees skip + its own down channels.
    assert levels[-1].inner is None and levels[-1].merge[0].num_features == 4 + 128


# --------------------------------------------------------------------------------------------------------------------
# Forward behaviour of the hourglass
# --------------------------------------------------------------------------------------------------------------------


def test_default_net_keeps_the_size_and_outputs_images_in_0_1():
    y = _forward(models.skip(), 32, 64)
    assert y.shape == (1, 3, 64, 64) and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert float(y.std()) > 0  # not a constant image


def test_output_channels_and_no_sigmoid():
    net = models.skip(4, 1, [8] * 3, [8] * 3, [2] * 3, need_sigmoid=False)
    assert not any(isinstance(m, nn.Sigmoid) for m in net.modules())
    y = _forward(net, 4, 32)
    assert y.shape == (1, 1, 32, 32)
    assert float(y.min()) < 0.0  # a linear head: the batch-normalised features reach negative values


def test_no_bias_removes_every_conv_bias():
    with_bias = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3)
    without = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, need_bias=False)
    assert all(c.bias is None for c in _convs(without))
    n_conv_out = sum(c.out_channels for c in _convs(with_bias))
    assert models.count_parameters(with_bias) - models.count_parameters(without) == n_conv_out


def test_skip_branches_follow_channels_skip():
    net = models.skip(3, 3, [8, 16, 32, 64, 128], [8, 16, 32, 64, 128], [0, 0, 0, 4, 4])
    assert [level.skip is None for level in _levels(net)] == [True, True, True, False, False]
    # Without a skip the merge BN sees only the inner level's up channels.
    assert [level.merge[0].num_features for level in _levels(net)] == [16, 32, 64, 4 + 128, 4 + 128]


def test_odd_sizes_are_centre_cropped_in_the_concat():
    # 37 and 45 are not multiples of 8: the strided convs round up, the upsampled branch is bigger than the skip
    # branch and is centre-cropped, so a net whose outer level has a skip still returns the input size.
    y = _forward(models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3), 4, 37, 45)
    assert y.shape == (1, 3, 37, 45)


def test_concat_centre_crop_takes_the_middle():
    small = torch.zeros(1, 1, 2, 2)
    big = torch.arange(16.0).view(1, 1, 4, 4)
    out = models._concat_centre_cropped([small, big])
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 1].tolist() == [[5.0, 6.0], [9.0, 10.0]]


def test_per_level_upsample_modes():
    modes = ["nearest", "nearest", "bilinear", "bilinear", "bilinear"]
    net = models.skip(3, 3, [8] * 5, [8] * 5, [4] * 5, upsample=modes)
    assert [level.upsample.mode for level in _levels(net)] == modes
    assert _forward(net, 3, 64).shape == (1, 3, 64, 64)


def test_per_level_kernel_sizes():
    # The activation-maximisation settings: kernel sizes differ per level.
    k_down, k_up = [5, 3, 5], [5, 3, 3]
    net = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, kernel_down=k_down, kernel_up=k_up, kernel_skip=[1, 3, 1])
    for level, kd, ku, ks in zip(_levels(net), k_down, k_up, [1, 3, 1]):
        assert {c.kernel_size for c in _convs(level.down)} == {(kd, kd)}
        assert _convs(level.merge)[0].kernel_size == (ku, ku)
        assert _convs(level.skip)[0].kernel_size == (ks, ks)
    assert _forward(net, 4, 32).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("mode", models.DOWNSAMPLE_MODES)
def test_every_downsample_mode_halves_once_per_level(mode):
    net = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, downsample=mode)
    first_down = net.body.down[0]
    conv = _convs(first_down)[0]
    if mode == "stride":
        assert conv.stride == (2, 2) and len(first_down) == 1  # the reflection-padded conv alone
    else:
        assert conv.stride == (1, 1)  # full-resolution conv, then the pooling layer
        expected = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}.get(mode, models.LanczosDownsample)
        assert isinstance(first_down[-1], expected)
    # A fixed downsampler adds no trainable parameters.
    assert models.count_parameters(net) == models.count_parameters(models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3))
    assert _forward(net, 4, 32).shape == (1, 3, 32, 32)


def _lanczos_taps_by_loop(support: int, factor: int) -> list[float]:
    """The authors' half-phase taps, written out term by term (independent of the vectorised code)."""
    width = 2 * support * factor + 1
    centre = (width + 1) / 2
    taps = []
    for i in range(1, width):
        d = abs(i + 0.5 - centre) / factor
        taps.append(support * math.sin(math.pi * d) * math.sin(math.pi * d / support) / (math.pi * d) ** 2)
    return [t / sum(taps) for t in taps]


@pytest.mark.parametrize("kind,support,n_taps", [("lanczos2", 2, 8), ("lanczos3", 3, 12)])
def test_lanczos_downsample_is_the_authors_2d_kernel(kind, support, n_taps):
    down = models.LanczosDownsample(3, kind)
    taps = _lanczos_taps_by_loop(support, 2)
    assert len(down.taps) == n_taps
    np.testing.assert_allclose(down.taps.numpy(), taps, rtol=1e-6)
    # Separable application == the authors' 2-D outer-product kernel after replication padding (ks - 2) / 2.
    x = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    kernel2d = torch.tensor(np.outer(taps, taps), dtype=torch.float32)
    weight = kernel2d.expand(3, 1, n_taps, n_taps)
    pad = (n_taps - 2) // 2
    expected = F.conv2d(F.pad(x, (pad,) * 4, mode="replicate"), weight, stride=2, groups=3)
    got = down(x)
    assert got.shape == (1, 3, 8, 10)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # Normalised to sum 1: a constant image stays constant; and nothing in it is trainable.
    torch.testing.assert_close(down(torch.full((1, 3, 8, 8), 0.7)), torch.full((1, 3, 4, 4), 0.7))
    assert list(down.parameters()) == [] and "taps" not in down.state_dict()


def test_zero_and_reflection_padding():
    reflect = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, pad="reflection")
    zero = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, pad="zero")
    assert any(isinstance(m, models.ReflectConv2d) for m in reflect.modules())
    assert not any(isinstance(m, models.ReflectConv2d) for m in zero.modules())
    assert all(c.padding == ((c.kernel_size[0] - 1) // 2,) * 2 for c in _convs(zero))
    assert models.count_parameters(reflect) == models.count_parameters(zero)
    assert _forward(zero, 4, 32).shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    "act,layer", [("LeakyReLU", nn.LeakyReLU), ("ELU", nn.ELU), ("ReLU", nn.ReLU), ("Swish", nn.SiLU), ("none", None)]
)
def test_activations(act, layer):
    net = models.skip(4, 3, [8] * 2, [8] * 2, [2] * 2, act=act)
    kinds = {type(m) for m in net.modules()}
    for other in (nn.LeakyReLU, nn.ELU, nn.ReLU, nn.SiLU):
        assert (other in kinds) == (other is layer)
    assert _forward(net, 4, 16).shape == (1, 3, 16, 16)


def test_every_parameter_gets_a_gradient():
    net = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, downsample="lanczos2")
    x = torch.rand(1, 4, 32, 32) * 0.1
    net(x).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_channels_last_gives_the_same_output():
    # dip.fit may run the net in channels_last memory format.
    net = models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, downsample="lanczos3")
    x = torch.rand(1, 4, 32, 32) * 0.1
    with torch.no_grad():
        y = net(x)
        y_cl = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y, y_cl, rtol=1e-4, atol=1e-5)


def test_too_small_inputs_raise_an_actionable_error():
    net = models.skip()
    assert net.min_size == 64  # 32 px leaves 1x1 at the fifth level, too small for a reflection pad of 1
    with pytest.raises(DipInputError, match="at least 64x64"):
        _forward(net, 32, 32)
    # The library depth-6 net (5x5 down convs) needs 192 px; depth 2 runs at its bound.
    assert models.build_net("skip_depth6", 1, 3).min_size == 192
    depth2 = models.build_net("skip_depth2", 1, 3)
    assert _forward(depth2, 1, depth2.min_size).shape == (1, 3, 12, 12)
    # Zero padding has no such bound, but batch norm cannot normalise a single 1x1 value per channel.
    with pytest.raises(DipInputError, match="batch norm"):
        _forward(models.skip(4, 3, [8] * 3, [8] * 3, [2] * 3, pad="zero"), 4, 8)


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
        models.skip(**kwargs)


# --------------------------------------------------------------------------------------------------------------------
# Encoder-decoder, U-Net, ResNet
# --------------------------------------------------------------------------------------------------------------------


def test_encoder_decoder_is_the_hourglass_without_skips():
    net = models.encoder_decoder(4, 3, depth=3, channels=8)
    assert all(level.skip is None for level in _levels(net))
    same = models.skip(4, 3, [8] * 3, [8] * 3, [0] * 3)
    assert models.count_parameters(net) == models.count_parameters(same)
    assert _forward(net, 4, 32).shape == (1, 3, 32, 32)
    assert models.count_parameters(models.encoder_decoder()) == models.count_parameters(
        models.skip(channels_skip=[0] * 5)
    )
    # Keywords go through to skip().
    assert _levels(models.encoder_decoder(4, 3, 2, [8, 16], upsample="nearest"))[1].upsample.mode == "nearest"


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
    net = models.unet(channels, 3, **kwargs)
    assert net.spatial_multiple == 2 ** (4 + kwargs.get("more_layers", 0))
    y = _forward(net, channels, size)
    assert y.shape == (1, 3, size, size)
    if kwargs.get("need_sigmoid", True):
        assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_unet_structure():
    net = models.unet(1, 3, feature_scale=8, more_layers=1)
    # Encoder widths [64, 128, 256, 512, 1024] / 8; the extra level keeps 128.
    assert [_convs(m)[-1].out_channels for m in [net.start, *net.downs, *net.more_downs]] == [8, 16, 32, 64, 128, 128]
    norms = [m for m in net.modules() if isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d))]
    assert norms and all(isinstance(m, nn.InstanceNorm2d) and not m.affine for m in norms)
    # Decoder blocks have no normalisation, only ReLU.
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in net.ups.modules())
    assert all(isinstance(up.up, nn.ConvTranspose2d) for up in net.ups)
    # concat_x keeps the widths: each encoder conv gives in_channels fewer, the pooled input fills them up.
    cx = models.unet(3, 3, feature_scale=16, concat_x=True)
    assert _convs(cx.start)[-1].out_channels == 4 - 3


def test_unet_too_small_input_raises_an_actionable_error():
    net = models.unet(1, 3, feature_scale=16)
    with pytest.raises(DipInputError, match="at least 32 px"):
        _forward(net, 1, 16)  # four poolings leave 1x1: instance norm has a single value
    assert _forward(models.unet(1, 3, feature_scale=16, norm="none"), 1, 16).shape == (1, 3, 16, 16)
    with pytest.raises(DipInputError, match="too small"):
        _forward(models.unet(1, 3, feature_scale=16, norm="none"), 1, 8)


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
        models.unet(**kwargs)


def test_resnet_any_size_and_residual_blocks():
    net = models.resnet(1, 3)
    assert net.spatial_multiple == 1
    blocks = [m for m in net.modules() if isinstance(m, models._ResidualBlock)]
    assert len(blocks) == 8 and all(c.out_channels == 32 and c.bias is None for b in blocks for c in _convs(b))
    y = _forward(net, 1, 23, 17)  # no resampling: odd sizes are fine
    assert y.shape == (1, 3, 23, 17) and float(y.min()) >= 0 and float(y.max()) <= 1
    plain = models.resnet(
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
    assert _forward(plain, 3, 16).shape == (1, 1, 16, 16)
    assert not any(isinstance(m, (nn.Sigmoid, models.ReflectConv2d)) for m in plain.modules())


def test_resnet_residual_adds_the_input():
    block = models._ResidualBlock(4, "batch", "LeakyReLU", residual=True)
    nn.init.zeros_(block.body[-1].weight)  # the last BN scales to 0: the block must be the identity
    x = torch.rand(1, 4, 8, 8)
    torch.testing.assert_close(block(x), x)


# --------------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(models.NETWORKS))
def test_every_registered_network_builds_and_runs(name):
    small = {
        "skip": dict(channels_down=[8] * 2, channels_up=[8] * 2, channels_skip=[2] * 2),
        "encoder_decoder": dict(depth=2, channels=8),
        "unet": dict(feature_scale=16),
        "resnet": dict(num_blocks=1, num_channels=8),
    }.get(name, {})
    net = models.build_net(name, 2, 3, **small)
    side = max(getattr(net, "min_size", 1), 2 * models.size_multiple(net), 16)
    assert _forward(net, 2, side).shape == (1, 3, side, side)


@pytest.mark.parametrize("depth", [2, 3, 4, 5, 6])
def test_skip_depth_variants_are_the_library_networks(depth):
    net = models.build_net(f"skip_depth{depth}", 1, 3)
    widths = LIBRARY_WIDTHS[:depth]
    assert [_convs(level.down)[0].out_channels for level in _levels(net)] == widths
    assert all(level.skip is None and level.upsample.mode == "nearest" for level in _levels(net))
    assert {c.kernel_size for level in _levels(net) for c in _convs(level.down)} == {(5, 5)}
    # need1x1_up=False: the merge has a single 3x3 conv.
    assert all([c.kernel_size for c in _convs(level.merge)] == [(3, 3)] for level in _levels(net))
    assert models.size_multiple(net) == 2**depth == models.size_multiple(f"skip_depth{depth}")
    explicit = models.skip(
        1, 3, widths, widths, [0] * depth, kernel_down=5, kernel_up=3, need1x1_up=False, upsample="nearest"
    )
    assert models.count_parameters(net) == models.count_parameters(explicit)


def test_build_net_passes_settings_and_overrides_presets():
    net = models.build_net("skip_depth3", 1, 3, upsample="bilinear", downsample="avg")
    assert all(level.upsample.mode == "bilinear" for level in _levels(net))
    assert models.count_parameters(models.build_net("SKIP", 32, 3)) == 2_217_831  # case-insensitive
    assert models.count_parameters(models.build_net("UNet", 1, 3, feature_scale=8, more_layers=1)) == 1_616_315


def test_unknown_network_lists_the_valid_names():
    with pytest.raises(DipInputError) as err:
        models.build_net("hourglass", 32, 3)
    for name in ("skip", "unet", "resnet", "encoder_decoder", "skip_depth2", "skip_depth6"):
        assert name in str(err.value)
    with pytest.raises(DipInputError, match="skip_depth"):
        models.build_net("skip_depth7", 32, 3)


def test_unknown_network_setting_raises():
    with pytest.raises(DipInputError, match="does not take num_scales"):
        models.build_net("skip", 32, 3, num_scales=5)
    with pytest.raises(DipInputError, match="does not take channels_down"):
        models.build_net("resnet", 32, 3, channels_down=[8])


# --------------------------------------------------------------------------------------------------------------------
# Network input z
# --------------------------------------------------------------------------------------------------------------------


def test_noise_input_is_uniform_0_to_0_1():
    z = models.make_input("noise", 32, (64, 48), generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, 32, 64, 48) and z.dtype == torch.float32 and z.is_contiguous()
    assert float(z.min()) >= 0.0 and float(z.max()) <= 0.1
    # Uniform on [0, 0.1]: mean 0.05, std 0.1 / sqrt(12) = 0.0289; close to both ends (a Gaussian would go below 0).
    assert float(z.mean()) == pytest.approx(0.05, abs=1e-3)
    assert float(z.std()) == pytest.approx(0.1 / math.sqrt(12), rel=0.02)
    assert float(z.min()) < 1e-4 and float(z.max()) > 0.1 - 1e-4
    counts = torch.histc(z, bins=10, min=0.0, max=0.1)
    assert float(counts.min()) / float(counts.max()) > 0.9  # flat histogram


def test_noise_input_is_reproducible_with_a_seeded_generator():
    def draw(seed):
        return models.make_input("noise", 4, (8, 8), generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(draw(3), draw(3), rtol=0, atol=0)
    assert not torch.equal(draw(3), draw(4))
    z = models.make_input("noise", 2, (8, 8), generator=torch.Generator().manual_seed(0), scale=1.0)
    assert float(z.max()) > 0.5  # scale sets the upper end


def test_meshgrid_input():
    z = models.make_input("meshgrid", 2, (5, 9))
    assert z.shape == (1, 2, 5, 9) and z.dtype == torch.float32 and z.is_contiguous()
    x, y = z[0, 0], z[0, 1]
    # Channel 0 is x (along the width), channel 1 is y (along the height), both from 0 to 1.
    assert float(x[0, 0]) == 0.0 and float(x[0, -1]) == 1.0 and float(x[-1, -1]) == 1.0
    assert float(y[0, 0]) == 0.0 and float(y[-1, 0]) == 1.0 and float(y[0, -1]) == 0.0
    torch.testing.assert_close(x[2], torch.arange(9, dtype=torch.float32) / 8)
    torch.testing.assert_close(y[:, 4], torch.arange(5, dtype=torch.float32) / 4)
    assert torch.equal(x, x[:1].expand(5, 9)) and torch.equal(y, y[:, :1].expand(5, 9))


def test_image_input():
    img = np.random.default_rng(0).random((6, 10, 3), dtype=np.float32)
    z = models.make_input("image", 3, (6, 10), image=img)
    assert z.shape == (1, 3, 6, 10) and z.dtype == torch.float32 and z.is_contiguous()
    np.testing.assert_array_equal(z[0].permute(1, 2, 0).numpy(), img)
    z64 = models.make_input("image", 3, (6, 10), image=img.astype(np.float64))
    assert z64.dtype == torch.float32


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        (("gaussian", 32, (8, 8)), {}, "input kind"),
        (("meshgrid", 3, (8, 8)), {}, "2 channels"),
        (("noise", 0, (8, 8)), {}, "depth"),
        (("noise", 4, (8,)), {}, "size"),
        (("noise", 4, (8, 0)), {}, "size"),
        (("noise", 4, (8, 8)), {"scale": -0.1}, "scale"),
        (("image", 3, (8, 8)), {}, "needs the image"),
        (("image", 1, (8, 8)), {"image": np.zeros((8, 8, 3), np.float32)}, "3 channels"),
        (("image", 3, (8, 8)), {"image": np.zeros((8, 9, 3), np.float32)}, "8x9"),
        (("image", 3, (8, 8)), {"image": np.zeros((8, 8), np.float32)}, r"\(H, W, C\)"),
    ],
)
def test_bad_inputs_raise(args, kwargs, match):
    with pytest.raises(DipInputError, match=match):
        models.make_input(*args, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------------


def test_count_parameters_counts_only_trainable_ones():
    net = models.skip(4, 3, [8] * 2, [8] * 2, [2] * 2)
    total = sum(p.numel() for p in net.parameters())
    assert models.count_parameters(net) == total
    for p in net.head.parameters():
        p.requires_grad_(False)
    assert models.count_parameters(net) == total - (8 * 3 + 3)  # the 1x1 head: weights + biases


def test_size_multiple():
    assert models.size_multiple(5) == 32 and models.size_multiple(0) == 1
    assert models.size_multiple(models.skip()) == 32
    assert models.size_multiple(models.unet(more_layers=1)) == 32
    assert models.size_multiple(models.resnet()) == 1
    assert models.size_multiple("skip", channels_down=[8] * 3, channels_up=[8] * 3, channels_skip=[0] * 3) == 8
    assert models.size_multiple("encoder_decoder", depth=4) == 16
    assert models.size_multiple(nn.Identity()) == 1
    with pytest.raises(DipInputError):
        models.size_multiple("nope")
    with pytest.raises(DipInputError):
        models.size_multiple(-1)


def test_inplace_activations_change_values_not_memory_kept_for_backward():
    # The skip net's activations run in place after each batch norm: same outputs and gradients as out-of-place ones,
    # fewer tensors kept for backward.
    import copy

    torch.manual_seed(0)
    net = models.build_net("skip", 8, 3, channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3)
    plain = copy.deepcopy(net)
    for m in plain.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    assert sum(getattr(m, "inplace", False) for m in net.modules()) > 0
    z = torch.rand(1, 8, 64, 64) * 0.1

    def run(n):
        kept = {}

        def pack(t):
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = n(z)
        out.square().mean().backward()
        return out.detach(), [p.grad for p in n.parameters()], sum(kept.values())

    out_a, grads_a, kept_a = run(net)
    out_b, grads_b, kept_b = run(plain)
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    assert kept_a < 0.9 * kept_b


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_reflect_conv_keeps_the_unpadded_input_with_the_same_values_and_gradients(precision, monkeypatch):
    # ReflectConv2d pads its input again in backward instead of keeping the padded copy: outputs and gradients equal
    # those of the plain reflection-padded convolution (nn.Conv2d's own path), in fp32 and under bf16 autocast.
    import copy

    torch.manual_seed(0)
    net = models.build_net("skip", 8, 3, channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3)
    net = net.to(memory_format=torch.channels_last)
    z = torch.rand(1, 8, 64, 64) * 0.1

    def run(n):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = n(z)
        out.float().square().mean().backward()
        return out.detach(), [p.grad for p in n.parameters()]

    reference = copy.deepcopy(net)
    out_a, grads_a = run(net)
    monkeypatch.setattr(models.ReflectConv2d, "_conv_forward", nn.Conv2d._conv_forward)
    out_b, grads_b = run(reference)
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_reflect_conv_refuses_an_input_changed_before_backward():
    conv = models.ReflectConv2d(2, 2, 3, padding=1)
    x = torch.rand(1, 2, 8, 8)
    y = conv(x)
    x.add_(1.0)  # what autograd's version check catches for tensors it keeps itself
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()
