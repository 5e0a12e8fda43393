"""Networks: what the tests of dip.nets, activation recomputation and the memory estimates share."""

from __future__ import annotations


# --- networks: what the tests of dip.nets, activation checkpointing and the memory estimates share ------------------

NARROW_SKIP = dict(channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3)
# (network, settings, input depth, size): every family, and the skip net's variants that change its structure
# (no 1x1 up-convolutions, no skips, pooled / Lanczos downsampling, zero padding, 5x5 kernels, other activations).
NET_FAMILIES = {
    "skip": ("skip", NARROW_SKIP, 8, 64),
    "skip-library-variants": (
        "skip",
        dict(NARROW_SKIP, need1x1_up=False, upsample="nearest", downsample="lanczos2", kernel_down=5, act="ELU"),
        8,
        96,
    ),
    "skip-zero-pad-maxpool": ("skip", dict(NARROW_SKIP, pad="zero", downsample="max", act="Swish"), 8, 64),
    "encoder_decoder": ("encoder_decoder", dict(depth=3, channels=16), 8, 64),
    "skip_depth2": ("skip_depth2", {}, 4, 64),
    "unet": ("unet", dict(feature_scale=8), 8, 64),
    "unet-batchnorm-concat": (
        "unet",
        dict(feature_scale=4, norm="batch", upsample="bilinear", pad="reflection", concat_x=True, more_layers=1),
        2,
        64,
    ),
    "resnet": ("resnet", dict(num_blocks=3, num_channels=16), 8, 32),
}


def build_family(family: str, seed: int = 0):
    """The network of ``NET_FAMILIES[family]``, built after seeding, and an input ``z`` (1, depth, size, size)."""
    import torch

    from dip.nets import build_net

    name, kwargs, depth, size = NET_FAMILIES[family]
    torch.manual_seed(seed)
    net = build_net(name, depth, 3, **kwargs)
    z = torch.rand(1, depth, size, size, generator=torch.Generator().manual_seed(seed)) * 0.1
    return net, z


def skip_levels(net) -> list:
    """A skip net's levels, outer to inner."""
    out, level = [], net.body
    while level is not None:
        out.append(level)
        level = level.inner
    return out


def convs(module) -> list:
    """The convolutions in ``module``, in order."""
    from torch import nn

    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def forward_once(net, channels: int, height: int, width: int | None = None, seed: int = 0):
    """``net`` on a seeded U(0, 0.1) input of ``channels x height x width`` (square by default), without autograd."""
    import torch

    torch.manual_seed(seed)
    x = torch.rand(1, channels, height, width or height) * 0.1
    with torch.no_grad():
        return net(x)
