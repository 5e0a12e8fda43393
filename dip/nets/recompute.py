"""Activation checkpointing for the DIP networks: recompute activations in backward instead of keeping them.

A DIP fit's memory grows with the pixels: autograd keeps every layer's activations for the backward pass, and the
paper's skip net carries 128+ channels at full resolution. :func:`enable_checkpointing` rewires a built network (skip
hourglass, encoder-decoder, ``skip_depthN``, U-Net, ResNet) in place so that regions of every level keep only their
inputs and run again in backward (``torch.utils.checkpoint``, non-reentrant): some compute for most of that memory.
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
from dip.nets.layers import ReflectConv2d, concat_centre_cropped
from dip.nets.resnet import ResNet, _ResidualBlock
from dip.nets.skip import SkipLevel, SkipNet
from dip.nets.unet import UNet, _UNetDoubleConv, _UNetDown, _UNetUp

__all__ = ["MEMORY_MODES", "enable_checkpointing", "disable_checkpointing", "is_checkpointed", "set_checkpointing"]

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


def _region(modules: Sequence[nn.Module], fn: Callable[..., Any], *args: Any) -> Any:
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


def _apply(layers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


# --------------------------------------------------------------------------------------------------------------------
# The switched classes (subclasses of the networks' own: isinstance, state_dict and repr stay as they were)
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


class CheckpointedReflectConv2d(ReflectConv2d):
    """:class:`~dip.nets.layers.ReflectConv2d` that, inside a checkpointed region, pads with :class:`_ReflectPad`.

    Its saved-tensor hooks would keep the unpadded input beside the region (inner hooks take precedence over the
    checkpoint's), which is exactly what the region must not keep; inside a region the convolution keeps its padded
    input the checkpoint's way (recomputed in backward) and the padding keeps nothing. Outside regions it keeps its
    unpadded input as usual. Values are the same either way.
    """

    _dip_plain_class = ReflectConv2d

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if _STATE.depth == 0:
            return super()._conv_forward(x, weight, bias)
        padded = _ReflectPad.apply(x, self._reversed_padding_repeated_twice)
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)


class CheckpointedSkipLevel(SkipLevel):
    """A :class:`~dip.nets.skip.SkipLevel` whose activations are recomputed in backward.

    How the level is cut. A region keeps only its inputs; everything inside it is recomputed in backward, and torch's
    early stop ends a recomputation as soon as the region's last operation has saved its inputs, so a region that
    *ends* with a convolution never runs that convolution twice. Each level therefore runs as regions that start
    after a convolution and end with the next one (``batch norm -> activation -> [upsample, concat] -> convolution``),
    and what stays between regions is a convolution's raw output, handed on with the norm and activation still to
    apply. On top of that, the full-resolution level spends one extra 3x3 convolution so that neither of its two
    128-channel outputs is held through the other's backward, and its concatenation is rebuilt (from the
    half-resolution branch and the 4-channel skip) for its batch norm's backward. Reflection padding inside a region
    keeps nothing (:class:`_ReflectPad`). What this saves against checkpointing each whole level, and the floor of
    any scheme that keeps autograd's arithmetic: BENCHMARKS.md, "Memory: activation checkpointing".
    """

    _dip_plain_class = SkipLevel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre, tail = self._forward_pre(x, (), top=False)
        return _apply(tail, pre)

    def _forward_pre(
        self, x: torch.Tensor, entry: Sequence[nn.Module], top: bool
    ) -> tuple[torch.Tensor, Sequence[nn.Module]]:
        """The level on ``entry(x)``, returned as ``(pre, tail)``: its output is ``tail(pre)``.

        ``entry`` and ``tail`` are the batch norm + activation that follow a convolution: the level hands them to the
        regions that consume the tensor, so that what is kept between regions is always a convolution's output.
        ``top``: the full-resolution level, which spends one more convolution to keep less (see the class notes).
        """
        down, merge, skip = self.down, self.merge, self.skip
        s: torch.Tensor | None = None
        if skip is not None and not entry:
            s = skip[0](x)  # on the network input, which is kept anyway

        # The down path, ending with its second convolution (which early stop skips when recomputing; the strided
        # one, at a quarter of the pixels, and the 4-channel skip convolution run again).
        def down_path(t: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
            u = _apply(entry, t)
            return (skip[0](u) if skip is not None and entry else None), down[3](_apply(down[:3], u))

        s_in, d = _region((*entry, *down[:3]), down_path, x)
        s = s if s is not None else s_in
        if self.inner is not None:
            deep, deep_tail = self.inner._forward_pre(d, down[4:6], top=False)
        else:
            deep, deep_tail = d, down[4:6]
        skip_args = (s,) if s is not None else ()
        merge_norms = (*deep_tail, *(skip[1:3] if skip is not None else ()), merge[0])

        def merge_in(deep_pre: torch.Tensor, *skip_pre: torch.Tensor) -> torch.Tensor:
            y = self.upsample(_apply(deep_tail, deep_pre))
            if skip_pre:
                y = concat_centre_cropped([_apply(skip[1:3], skip_pre[0]), y])
            return merge[0](y)

        def conv_a(deep_pre: torch.Tensor, *skip_pre: torch.Tensor) -> torch.Tensor:
            if top:
                # The batch norm of the concatenation in a region of its own: its input is rebuilt for its backward
                # instead of being held through the 3x3 convolution's.
                return merge[1](_region(merge_norms, merge_in, deep_pre, *skip_pre))
            return merge[1](merge_in(deep_pre, *skip_pre))

        if len(merge) == 4:  # no 1x1 up-convolution: BN, conv, BN, act
            return _region(merge_norms, conv_a, deep, *skip_args), merge[2:4]

        def conv_b(c: torch.Tensor) -> torch.Tensor:  # BN, act, 1x1 conv
            return merge[4](_apply(merge[2:4], c))

        if top:
            # Keep neither convolution's output of the full-resolution merge beyond its own backward: the 3x3 one is
            # rebuilt (one more 3x3 convolution) when the 1x1 one's backward needs it.
            def conv_ab(deep_pre: torch.Tensor, *skip_pre: torch.Tensor) -> torch.Tensor:
                return _region(merge[2:4], conv_b, _region(merge_norms, conv_a, deep_pre, *skip_pre))

            c = _region((), conv_ab, deep, *skip_args)
        else:
            c = _region((*merge_norms, *merge[2:4]), lambda d_, *s_: conv_b(conv_a(d_, *s_)), deep, *skip_args)
        return c, merge[5:7]


class CheckpointedSkipNet(SkipNet):
    """A :class:`~dip.nets.skip.SkipNet` whose levels are :class:`CheckpointedSkipLevel`\\ s."""

    _dip_plain_class = SkipNet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_size(x)
        pre, tail = self.body._forward_pre(x, (), top=True)
        # The last norm + activation and the 1x1 output convolution: the 128-channel activation is not kept.
        return _region(tail, lambda t: self.head(_apply(tail, t)), pre)


class _WholeRegion:
    """Mixin: the module's whole forward is one region (U-Net blocks, residual blocks)."""

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return _region((self,), super().forward, *args)  # type: ignore[misc]


class CheckpointedUNetDoubleConv(_WholeRegion, _UNetDoubleConv):
    _dip_plain_class = _UNetDoubleConv


class CheckpointedUNetDown(_WholeRegion, _UNetDown):
    _dip_plain_class = _UNetDown


class CheckpointedUNetUp(_WholeRegion, _UNetUp):
    _dip_plain_class = _UNetUp


class CheckpointedResidualBlock(_WholeRegion, _ResidualBlock):
    _dip_plain_class = _ResidualBlock


_SWITCHED = {
    cls._dip_plain_class: cls
    for cls in (
        CheckpointedReflectConv2d,
        CheckpointedSkipLevel,
        CheckpointedSkipNet,
        CheckpointedUNetDoubleConv,
        CheckpointedUNetDown,
        CheckpointedUNetUp,
        CheckpointedResidualBlock,
    )
}
_PLAIN = {switched: plain for plain, switched in _SWITCHED.items()}


def _targets(net: nn.Module) -> list[nn.Module]:
    """The modules to switch: the levels / blocks of the network (never one nested in another) and its padded convs."""
    targets: list[nn.Module] = []
    if isinstance(net, SkipNet):
        targets = [m for m in net.modules() if type(m) in (SkipLevel, CheckpointedSkipLevel)]
        targets.append(net)
    elif isinstance(net, UNet):
        targets = [net.start, *net.downs, *net.more_downs, *net.ups, *net.more_ups]
    elif isinstance(net, ResNet):
        targets = [m for m in net.modules() if type(m) in (_ResidualBlock, CheckpointedResidualBlock)]
    targets += [m for m in net.modules() if type(m) in (ReflectConv2d, CheckpointedReflectConv2d)]
    return targets


def enable_checkpointing(net: nn.Module) -> nn.Module:
    """Make ``net`` recompute its activations in backward instead of keeping them; returns ``net``, changed in place.

    net: a network of :mod:`dip.nets` (``skip``, ``encoder_decoder``, ``skip_depthN``, ``unet``,
        ``resnet``), freshly built or already trained, on any device. Calling it again changes nothing.
    The modules keep their parameters, buffers and names (``state_dict`` is unchanged) and become instances of
    subclasses of their own classes; outputs and gradients are bit-identical. Undo with :func:`disable_checkpointing`.
    """
    if not isinstance(net, (SkipNet, UNet, ResNet)):
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
