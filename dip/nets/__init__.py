"""The DIP networks, one module per architecture as in the authors' ``models/``, and the fixed network input.

:mod:`~dip.nets.layers` (the building blocks), :mod:`~dip.nets.skip` (the hourglass with skip connections, the
paper's network, and the encoder-decoder without them), :mod:`~dip.nets.unet`, :mod:`~dip.nets.resnet` (each with its
memory-saving variant beside it), :mod:`~dip.nets.deep_decoder` and :mod:`~dip.nets.random_projector` (the DIP
family's networks),
:mod:`~dip.nets.registry` (the networks by name: ``build_net``), :mod:`~dip.nets.inputs` (the input ``z``) and
:mod:`~dip.nets.recompute` (activation recomputation: rewiring a built network to recompute its activations in
backward).

Every network maps ``(N, C_in, H, W) -> (N, C_out, H, W)`` when ``H`` and ``W`` are multiples of
:func:`size_multiple`. Batch normalisation stays in training mode (the statistics of the single image), as in the
authors' notebooks, which never call ``eval()``.
"""

from dip.nets.inputs import INPUT_KINDS, make_input
from dip.nets.layers import DOWNSAMPLE_MODES, LanczosDownsample, ReflectConv2d
from dip.nets.registry import NETWORKS, build_net, count_parameters, size_multiple
from dip.nets.resnet import ResNet, resnet
from dip.nets.skip import SkipNet, encoder_decoder, skip
from dip.nets.unet import UNet, unet

__all__ = [
    "DOWNSAMPLE_MODES",
    "INPUT_KINDS",
    "NETWORKS",
    "LanczosDownsample",
    "ReflectConv2d",
    "ResNet",
    "SkipNet",
    "UNet",
    "build_net",
    "count_parameters",
    "encoder_decoder",
    "make_input",
    "resnet",
    "size_multiple",
    "skip",
    "unet",
]
