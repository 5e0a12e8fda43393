"""The networks by name (dip.nets.registry): every registered network builds and runs, the library ``skip_depthN``
networks of Fig. 8, settings and unknown names, and what callers ask of a network (parameters, size multiple)."""

from __future__ import annotations

import pytest
from torch import nn

from dip import nets
from dip.errors import DipInputError
from tests.helpers import convs, forward_once, skip_levels

# The library inpainting networks of Fig. 8 (skip_depthN): widths [16, 32, 64, 128, 128, 128][:N].
LIBRARY_WIDTHS = [16, 32, 64, 128, 128, 128]


def test_parameter_count_of_the_library_depth6_net_is_the_authors():
    explicit = nets.skip(
        1, 3, LIBRARY_WIDTHS, LIBRARY_WIDTHS, [0] * 6, kernel_down=5, kernel_up=3, need1x1_up=False, upsample="nearest"
    )
    assert nets.count_parameters(explicit) == 2_996_467
    assert nets.count_parameters(nets.build_net("skip_depth6", 1, 3)) == 2_996_467


@pytest.mark.parametrize("name", list(nets.NETWORKS))
def test_every_registered_network_builds_and_runs(name):
    small = {
        "skip": dict(channels_down=[8] * 2, channels_up=[8] * 2, channels_skip=[2] * 2),
        "encoder_decoder": dict(depth=2, channels=8),
        "unet": dict(feature_scale=16),
        "resnet": dict(num_blocks=1, num_channels=8),
        "deep_decoder": dict(channels=8, layers=3),
        "random_projector": dict(channels_down=[8], channels_up=[8], channels_skip=[2]),
    }.get(name, {})
    net = nets.build_net(name, 2, 3, **small)
    side = max(getattr(net, "min_size", 1), 2 * nets.size_multiple(net), 16)
    divisor = getattr(net, "input_divisor", 1)  # the Deep Decoder's input is smaller than its output
    assert forward_once(net, 2, side // divisor).shape == (1, 3, side, side)


@pytest.mark.parametrize("depth", [2, 3, 4, 5, 6])
def test_skip_depth_variants_are_the_library_networks(depth):
    net = nets.build_net(f"skip_depth{depth}", 1, 3)
    widths = LIBRARY_WIDTHS[:depth]
    assert [convs(level.down)[0].out_channels for level in skip_levels(net)] == widths
    assert all(level.skip is None and level.upsample.mode == "nearest" for level in skip_levels(net))
    assert {c.kernel_size for level in skip_levels(net) for c in convs(level.down)} == {(5, 5)}
    # need1x1_up=False: the merge has a single 3x3 conv.
    assert all([c.kernel_size for c in convs(level.merge)] == [(3, 3)] for level in skip_levels(net))
    assert nets.size_multiple(net) == 2**depth == nets.size_multiple(f"skip_depth{depth}")
    explicit = nets.skip(
        1, 3, widths, widths, [0] * depth, kernel_down=5, kernel_up=3, need1x1_up=False, upsample="nearest"
    )
    assert nets.count_parameters(net) == nets.count_parameters(explicit)


def test_build_net_passes_settings_and_overrides_presets():
    net = nets.build_net("skip_depth3", 1, 3, upsample="bilinear", downsample="avg")
    assert all(level.upsample.mode == "bilinear" for level in skip_levels(net))
    assert nets.count_parameters(nets.build_net("SKIP", 32, 3)) == 2_217_831  # case-insensitive
    assert nets.count_parameters(nets.build_net("UNet", 1, 3, feature_scale=8, more_layers=1)) == 1_616_315


def test_unknown_network_lists_the_valid_names():
    with pytest.raises(DipInputError) as err:
        nets.build_net("hourglass", 32, 3)
    for name in ("skip", "unet", "resnet", "encoder_decoder", "skip_depth2", "skip_depth6"):
        assert name in str(err.value)
    with pytest.raises(DipInputError, match="skip_depth"):
        nets.build_net("skip_depth7", 32, 3)


def test_unknown_network_setting_raises():
    with pytest.raises(DipInputError, match="does not take num_scales"):
        nets.build_net("skip", 32, 3, num_scales=5)
    with pytest.raises(DipInputError, match="does not take channels_down"):
        nets.build_net("resnet", 32, 3, channels_down=[8])


def test_count_parameters_counts_only_trainable_ones():
    net = nets.skip(4, 3, [8] * 2, [8] * 2, [2] * 2)
    total = sum(p.numel() for p in net.parameters())
    assert nets.count_parameters(net) == total
    for p in net.head.parameters():
        p.requires_grad_(False)
    assert nets.count_parameters(net) == total - (8 * 3 + 3)  # the 1x1 head: weights + biases


def test_size_multiple():
    assert nets.size_multiple(5) == 32 and nets.size_multiple(0) == 1
    assert nets.size_multiple(nets.skip()) == 32
    assert nets.size_multiple(nets.unet(more_layers=1)) == 32
    assert nets.size_multiple(nets.resnet()) == 1
    assert nets.size_multiple("skip", channels_down=[8] * 3, channels_up=[8] * 3, channels_skip=[0] * 3) == 8
    assert nets.size_multiple("encoder_decoder", depth=4) == 16
    assert nets.size_multiple(nn.Identity()) == 1
    with pytest.raises(DipInputError):
        nets.size_multiple("nope")
    with pytest.raises(DipInputError):
        nets.size_multiple(-1)
