"""The networks by name (what configs and the command line say), and what callers ask of a built network.

:func:`build_net` builds a network of :data:`NETWORKS` from its name and settings (unknown names and settings raise
:class:`~dip.errors.DipInputError`, since they usually come from a config file); the ``skip_depthN`` names are the
library inpainting networks of Fig. 8. :func:`size_multiple` and :func:`count_parameters` answer the two questions
the fits and experiments ask of a network.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dip.errors import DipInputError
from dip.nets.deep_decoder import deep_decoder
from dip.nets.random_projector import random_projector
from dip.nets.resnet import resnet
from dip.nets.skip import SkipNet, encoder_decoder, skip
from dip.nets.unet import unet

__all__ = ["NETWORKS", "build_net", "count_parameters", "size_multiple"]

# The library inpainting networks of Fig. 8 (``NET_TYPE='skip_depthN'``): widths [16, 32, 64, 128, 128, 128][:N],
# no skip connections, 5x5 down / 3x3 up kernels, no 1x1 up-convolutions, nearest upsampling.
_LIBRARY_WIDTHS = (16, 32, 64, 128, 128, 128)


def _skip_depth(in_channels: int, out_channels: int, *, depth: int, **kw: Any) -> SkipNet:
    widths = list(_LIBRARY_WIDTHS[:depth])
    settings: dict[str, Any] = dict(
        channels_down=widths,
        channels_up=widths,
        channels_skip=[0] * depth,
        kernel_down=5,
        kernel_up=3,
        kernel_skip=1,
        need1x1_up=False,
        upsample="nearest",
    )
    settings.update(kw)  # explicit keyword arguments win over the preset
    return skip(in_channels, out_channels, **settings)


def _skip_depth_factory(depth: int) -> Callable[..., SkipNet]:
    factory = functools.partial(_skip_depth, depth=depth)
    functools.update_wrapper(factory, _skip_depth)
    factory.__signature__ = inspect.signature(skip)  # type: ignore[attr-defined]  # accepts skip()'s keywords
    return factory


NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "skip": skip,
    "encoder_decoder": encoder_decoder,
    "unet": unet,
    "resnet": resnet,
    **{f"skip_depth{d}": _skip_depth_factory(d) for d in range(2, 7)},
    "deep_decoder": deep_decoder,
    "random_projector": random_projector,
}


def build_net(name: str, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    """The network called ``name`` (see :data:`NETWORKS`), ``in_channels -> out_channels``, other settings as kwargs.

    Names are case-insensitive (the authors' notebooks say "UNET", "ResNet"). Unknown names and keyword arguments
    the network does not take raise :class:`DipInputError` (they usually come from a config file).
    """
    key = name.lower() if isinstance(name, str) else name
    factory = NETWORKS.get(key)
    if factory is None:
        raise DipInputError(f"unknown network {name!r}; use one of {', '.join(NETWORKS)}")
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            valid = [p for p in params if p not in ("in_channels", "out_channels")]
            raise DipInputError(
                f"network {key!r} does not take {', '.join(unknown)}; its settings are {', '.join(valid)}"
            )
    return factory(in_channels, out_channels, **kwargs)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable scalars (what the paper's "two million parameters" counts)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def size_multiple(net_or_depth: nn.Module | int | str, **net_kwargs: Any) -> int:
    """The spatial multiple a network's input height and width must have for the output to keep the size.

    Accepts a network from this module, a number of halving levels (``2**levels``), or a registry name plus its
    settings (e.g. ``size_multiple("skip", channels_down=[8] * 3, ...)``). Networks without resampling return 1.
    """
    if isinstance(net_or_depth, bool):
        raise DipInputError(f"size_multiple needs a network, a depth or a name, got {net_or_depth!r}")
    if isinstance(net_or_depth, (int, np.integer)):
        if net_or_depth < 0:
            raise DipInputError(f"depth must be >= 0, got {net_or_depth}")
        return 2 ** int(net_or_depth)
    if isinstance(net_or_depth, str):
        # Build on the meta device: shapes only, no memory, no initialisation cost.
        with torch.device("meta"):
            net_or_depth = build_net(net_or_depth, 1, 1, **net_kwargs)
    return int(getattr(net_or_depth, "spatial_multiple", 1))
