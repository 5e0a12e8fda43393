"""Activation recomputation (memory saving) for the DIP networks: recompute activations in backward instead of keeping
them (torch calls it activation checkpointing; a fit's resumable checkpoints are :mod:`dip.fit.checkpoint`'s).

A DIP fit's memory grows with the pixels: autograd keeps every layer's activations for the backward pass, and the
paper's skip net carries 128+ channels at full resolution. :func:`enable_checkpointing` rewires a built network (skip
hourglass, encoder-decoder, ``skip_depthN``, U-Net, ResNet) in place so that regions of every level keep only their
inputs and run again in backward (``torch.utils.checkpoint``, non-reentrant): some compute for most of that memory.
This module holds the machinery (regions, the padded convolution, the switch); each architecture's recomputing
classes live beside it in :mod:`~dip.nets.skip`, :mod:`~dip.nets.unet` and :mod:`~dip.nets.resnet`, registered
with :func:`recomputes`.
Outputs, gradients and batch-norm running statistics stay **bit-identical** (the recomputation runs the same kernels on
the same inputs in the same order), and parameter and buffer names do not change, so checkpoints load either way.
Under ``torch.func`` transforms (``vmap``: :func:`dip.fit.stacked.fit_many`) torch's checkpointing does not work: the
regions run plainly, with a one-time ``RuntimeWarning``. Under ``torch.compile`` each region becomes torch's checkpoint
operator and the compiler decides what to recompute. Measurements: BENCHMARKS.md, "Memory: activation checkpointing".
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from dip.errors import DipInputError
from dip.nets.layers import ReflectConv2d

__all__ = ["MEMORY_MODES", "enable_checkpointing", "disable_checkpointing", "is_checkpointed", "set_checkpointing",
           "recomputes", "region", "apply_layers", "WholeRegion", "RecomputedReflectConv2d"]

MEMORY_MODES = ("plain", "checkpoint")  # what a fit runs

# --------------------------------------------------------------------------------------------------------------------
# Regions: torch's non-reentrant checkpoint plus what DIP's layers need around it
# --------------------------------------------------------------------------------------------------------------------


class _RegionState(threading.local):
    depth = 0  # > 0 while a checkpointed region's function runs (forward or recomputation)
    recomputing = 0  # > 0 while a region's function runs again in backward (or inside one that does)


_STATE = _RegionState()
_warned_functorch = False


def _norms(modules: Sequence[nn.Module]) -> list[nn.Module]:
    return [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def _running_stats_frozen(modules: Sequence[nn.Module]):
    """While a region is recomputed, its batch norms update scratch copies of their running statistics.

    Training-mode batch norm normalises with the batch statistics and updates its running ones in place; recomputing
    would update them a second time per step. The scratch copies (same shapes, so the recomputation saves the same
    tensors as the forward pass did) are dropped afterwards: running means, variances and ``num_batches_tracked``
    end up bit-identical to a plain network's.
    """
    saved = []
    for m in _norms(modules):
        if m.training and m.track_running_stats and m.running_mean is not None:
            saved.append((m, m.running_mean, m.running_var, m.num_batches_tracked))
            m.running_mean, m.running_var = m.running_mean.clone(), m.running_var.clone()
            if m.num_batches_tracked is not None:
                m.num_batches_tracked = m.num_batches_tracked.clone()
    try:
        yield
    finally:
        for m, mean, var, count in saved:
            m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count


def _is_batched(args: Sequence[Any]) -> bool:
    return any(isinstance(a, torch.Tensor) and torch._C._functorch.is_batchedtensor(a) for a in args)


def region(modules: Sequence[nn.Module], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, keeping only ``args`` for backward and recomputing the rest of ``fn``'s activations there.

    ``modules``: those ``fn`` runs (their batch norms' running statistics are protected while recomputing).
    """
    global _warned_functorch
    if not torch.is_grad_enabled():
        return fn(*args)  # nothing is kept without autograd
    if torch.compiler.is_compiling():
        return checkpoint(fn, *args, use_reentrant=False)
    if _is_batched(args):
        if not _warned_functorch:
            _warned_functorch = True
            warnings.warn(
                "activation checkpointing does not work under torch.func transforms (vmap, e.g. stacked fits): "
                "the network runs without it and keeps its activations",
                RuntimeWarning,
                stacklevel=3,
            )
        return fn(*args)
    calls = [0]

    def run(*inputs: Any) -> Any:
        calls[0] += 1
        again = calls[0] > 1 or _STATE.recomputing > 0
        _STATE.depth += 1
        _STATE.recomputing += again
        try:
            with _running_stats_frozen(modules) if again else contextlib.nullcontext():
                return fn(*inputs)
        finally:
            _STATE.depth -= 1
            _STATE.recomputing -= again

    return checkpoint(run, *args, use_reentrant=False)


def apply_layers(layers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


# plain class -> its recomputing subclass, registered by each architecture's module (:func:`recomputes`)
_SWITCHED: dict[type, type] = {}
_PLAIN: dict[type, type] = {}


def recomputes(plain: type) -> Callable[[type], type]:
    """Class decorator: the decorated subclass of ``plain`` is what :func:`enable_checkpointing` switches ``plain``'s
    instances to (and :func:`disable_checkpointing` back)."""

    def register(switched: type) -> type:
        switched._dip_plain_class = plain
        _SWITCHED[plain], _PLAIN[switched] = switched, plain
        return switched

    return register


# --------------------------------------------------------------------------------------------------------------------
# The switched classes (subclasses of the networks' own: isinstance, state_dict and repr stay as they were); each
# architecture's own live beside it (skip.py, unet.py, resnet.py)
# --------------------------------------------------------------------------------------------------------------------


class _ReflectPad(torch.autograd.Function):
    """``F.pad(x, pad, mode="reflect")`` that keeps nothing for backward but ``x``'s shape and layout.

    Autograd's own padding keeps ``x``, though its backward kernel reads only ``x``'s sizes and layout; inside a
    region that would hold the recomputed ``x`` beside the padded copy the convolution needs, through the
    convolution's backward (a full-resolution tensor at the peak). The backward runs the same kernel into a gradient
    laid out as ``x`` was, which also serves as the kernel's (sizes-only) ``x``: same values, same layout (tests).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pad: tuple[int, ...]) -> torch.Tensor:
        ctx.pad, ctx.shape = list(pad), x.shape
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        ctx.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        return F.pad(x, pad, mode="reflect")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad_x = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=ctx.memory_format)
        return torch.ops.aten.reflection_pad2d_backward.grad_input(grad, grad_x, ctx.pad, grad_input=grad_x), None


@recomputes(ReflectConv2d)
class RecomputedReflectConv2d(ReflectConv2d):
    """:class:`~dip.nets.layers.ReflectConv2d` that, inside a checkpointed region, pads with :class:`_ReflectPad`.

    Its saved-tensor hooks would keep the unpadded input beside the region (inner hooks take precedence over the
    checkpoint's), which is exactly what the region must not keep; inside a region the convolution keeps its padded
    input the checkpoint's way (recomputed in backward) and the padding keeps nothing. Outside regions it keeps its
    unpadded input as usual. Values are the same either way.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if _STATE.depth == 0:
            return super()._conv_forward(x, weight, bias)
        padded = _ReflectPad.apply(x, self._reversed_padding_repeated_twice)
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)


class WholeRegion:
    """Mixin: the module's whole forward is one region (U-Net blocks, residual blocks)."""

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return region((self,), super().forward, *args)  # type: ignore[misc]


def _targets(net: nn.Module) -> list[nn.Module]:
    """The modules to switch: the network's own (``recompute_targets``: its levels or blocks, never one nested in
    another) and its padded convolutions."""
    targets = list(net.recompute_targets())
    targets += [m for m in net.modules() if type(m) in (ReflectConv2d, RecomputedReflectConv2d)]
    return targets


def enable_checkpointing(net: nn.Module) -> nn.Module:
    """Make ``net`` recompute its activations in backward instead of keeping them; returns ``net``, changed in place.

    net: a network of :mod:`dip.nets` (``skip``, ``encoder_decoder``, ``skip_depthN``, ``unet``,
        ``resnet``), freshly built or already trained, on any device. Calling it again changes nothing.
    The modules keep their parameters, buffers and names (``state_dict`` is unchanged) and become instances of
    subclasses of their own classes; outputs and gradients are bit-identical. Undo with :func:`disable_checkpointing`.
    """
    if not hasattr(net, "recompute_targets"):  # SkipNet, UNet, ResNet
        raise DipInputError(
            "activation checkpointing (--memory-saving) supports the DIP networks (skip, encoder_decoder, "
            f"skip_depthN, unet, resnet), not {type(net).__name__}"
        )
    for module in _targets(net):
        module.__class__ = _SWITCHED.get(type(module), type(module))
    return net


def disable_checkpointing(net: nn.Module) -> nn.Module:
    """Undo :func:`enable_checkpointing` in place (a no-op on a plain network); returns ``net``."""
    for module in net.modules():
        plain = _PLAIN.get(type(module))
        if plain is not None:
            module.__class__ = plain
    return net


def is_checkpointed(net: nn.Module) -> bool:
    """Whether :func:`enable_checkpointing` is in effect on ``net``."""
    return any(type(m) in _PLAIN for m in net.modules())


def set_checkpointing(net: nn.Module, mode: str | bool) -> nn.Module:
    """Put ``net`` in memory mode ``mode`` ("plain" / "checkpoint", or a bool) in place; returns ``net``.

    The one call a fit needs after :func:`choose_memory_mode`.
    """
    if mode not in (*MEMORY_MODES, True, False):
        raise DipInputError(f"unknown memory mode {mode!r}; use one of {', '.join(MEMORY_MODES)}")
    return enable_checkpointing(net) if mode in ("checkpoint", True) else disable_checkpointing(net)
