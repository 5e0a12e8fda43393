"""Fitting big images in little memory: activation checkpointing for the DIP networks, and memory estimates.

A DIP fit's memory grows with the pixels: autograd keeps the activations of every layer for the backward pass, and
the paper's skip net carries 128+ channels at full resolution (fp32: ~1.25 GB kept at 512 px, ~5 GB at 1024 px,
~20 GB at 2048 px). This module trades some compute for most of that memory, without changing the fit:

* :func:`enable_checkpointing` / :func:`disable_checkpointing` switch a built network (skip hourglass,
  encoder-decoder, ``skip_depthN``, U-Net, ResNet) between keeping its activations and recomputing them in backward
  (``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)`` around regions of every level). In place and
  idempotent; parameters, buffers and ``state_dict`` keys are unchanged (checkpoint/resume files load either way).
  Outputs, gradients *and* batch-norm running statistics are **bit-identical** to the plain network's (CPU, fp32 and
  under bf16 autocast, with or without channels_last; tests): the recomputation runs the same kernels on the same
  inputs in the same order, and nothing is summed differently. Batch norms in training mode normalise with the
  statistics of the recomputed batch, which are the same numbers; they would also update their running statistics
  a second time, so while recomputing they update scratch copies instead.
* :func:`fit_memory` / :func:`estimate_fit_memory` predict a fit's peak memory from a dry run of one training step on
  fake tensors (shapes only, no real memory, ~1 s); :func:`choose_memory_mode` turns that into "plain" /
  "checkpoint" or an actionable :class:`~dip.errors.DipInputError` before the fit starts, instead of an
  out-of-memory crash; :func:`mem_mb_for` is what a workflow job should ask its scheduler for.

How the skip hourglass is cut. A region keeps only its inputs; everything inside it is recomputed in backward, and
torch's early stop ends a recomputation as soon as the region's last operation has saved its inputs, so a region
that *ends* with a convolution never runs that convolution twice. Each level therefore runs as regions that start
after a convolution and end with the next one (``batch norm -> activation -> [upsample, concat] -> convolution``),
and what stays between regions is a convolution's raw output, handed on with the norm and activation still to apply.
On top of that, the full-resolution level spends one extra 3x3 convolution so that neither of its two 128-channel
outputs is held through the other's backward, and its concatenation is rebuilt (from the half-resolution branch and
the 4-channel skip) for its batch norm's backward. Reflection padding inside a region keeps nothing (its backward
needs only the input's shape). At 1024 px fp32 (default net, CPU) a fit keeps 1.0 GB for backward instead of
5.0 GB, its tensors peak at ~2.5 GB instead of ~5.9 GB, and its resident memory rose by 3.6 GB instead of 6.5 GB,
for ~26% more arithmetic (1.1-1.35x the CPU time per step; ``benchmarks/bench_memory.py``). Checkpointing each whole
level instead (the textbook "recompute each scale") peaked at ~4.9 GB for +46% arithmetic, because its backward
rebuilds a whole full-resolution level at once. The floor of any scheme that keeps autograd's arithmetic is about
four full-resolution 128-channel tensors alive at once (e.g. a 3x3 convolution's padded input, output gradient and
input gradient, plus the norm input its backward needs next: 2 GB at 1024 px, 8 GB at 2048 px), plus the fit's own
32-channel input, noise and perturbed input. U-Net and ResNet checkpoint each block (double convolution, up block,
residual block) whole.

Limits: under ``torch.func`` transforms (``vmap``: :func:`dip.fit.stacked.fit_many`) torch's checkpointing does not
work (its saved-tensor hooks are not supported there): the regions then run plainly, with a one-time
``RuntimeWarning``, and the fit keeps what a plain network keeps. Under ``torch.compile`` (tried on CPU with the
inductor and aot_eager backends) each region becomes torch's checkpoint operator and the compiler decides what to
recompute; compiled outputs differ from eager ones by float rounding, checkpointed or not.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from dip.errors import DipInputError
from dip.nets import layers
from dip.nets.layers import ReflectConv2d, concat_centre_cropped
from dip.nets.registry import build_net
from dip.nets.resnet import ResNet, _ResidualBlock
from dip.nets.skip import SkipLevel, SkipNet
from dip.nets.unet import UNet, _UNetDoubleConv, _UNetDown, _UNetUp

__all__ = [
    "MEMORY_MODES",
    "MEMORY_SAVING",
    "enable_checkpointing",
    "disable_checkpointing",
    "is_checkpointed",
    "set_checkpointing",
    "FitMemory",
    "fit_memory",
    "estimate_fit_memory",
    "memory_budget",
    "choose_memory_mode",
    "mem_mb_for",
    "measure_kept_for_backward",
]

MEMORY_MODES = ("plain", "checkpoint")  # what a fit runs
MEMORY_SAVING = ("auto", "on", "off")  # what a user asks for (``--memory-saving``)

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
    """A :class:`~dip.nets.skip.SkipLevel` whose activations are recomputed in backward (see the module notes)."""

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
        ``top``: the full-resolution level, which spends one more convolution to keep less (see the module notes).
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


# --------------------------------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------------------------------

# Calibration (benchmarks/bench_memory.py, CPU, torch 2.13, 1 thread, the default net, 256-1024 px, fp32 and bf16):
# the peak-RSS rise of a fit over the process after imports was ~1.01 x (dry-run peak + weights + the fit's images)
# + ~120 MB for plain fits, and ~1.18 x (...) + ~150 MB with checkpointing (the recomputation allocates and frees
# more; the allocator and oneDNN's buffers follow). With these constants the predictions were within -2..+4% of the
# measured rises at 256, 512 and 1024 px. On CUDA (max_memory_allocated: the dry-run peak plus cuDNN workspaces and
# the caching allocator's rounding) the same factors and a larger allowance: a margin, not measured here.
_FACTOR = {"plain": 1.03, "checkpoint": 1.20}
_CPU_RUNTIME, _CUDA_RUNTIME = 150 * 2**20, 512 * 2**20
# Resident memory of a process that has imported dip and torch (the part of a job's mem_mb that is not the fit).
_PROCESS_BASE = 400 * 2**20  # measured ~320 MB (CPU wheel)
_CUDA_PROCESS_BASE = 3 * 2**30  # CUDA libraries and context on the host: an allowance, not measured here
# The default CPU budget: this fraction of the memory available to the process.
CPU_BUDGET_FRACTION = 0.8


@dataclass(frozen=True)
class FitMemory:
    """What :func:`fit_memory` predicts for one fit, in bytes, for both memory modes.

    ``plain`` / ``checkpoint``: the fit's peak memory over the process (CPU: rise of the resident memory; CUDA:
    ``max_memory_allocated``), including weights, gradients, Adam's moments, the fit's images and a measured
    allowance for the runtime. ``kept_*``: what autograd keeps from the forward pass for backward (the part that
    grows with the pixels and that checkpointing cuts). ``activations_*``: the peak of the tensors one training step
    creates (activations, their gradients and the weights' gradients), the dry run's raw measure.
    """

    height: int
    width: int
    precision: str
    device: str
    net: str
    plain: int
    checkpoint: int
    kept_plain: int
    kept_checkpoint: int
    activations_plain: int
    activations_checkpoint: int

    def bytes_for(self, mode: str) -> int:
        return self.checkpoint if mode == "checkpoint" else self.plain


def _dry_run(net: nn.Module, in_channels: int, height: int, width: int, precision: str) -> tuple[int, int]:
    """(bytes kept for backward after the forward pass, peak bytes of tensors live during forward + backward).

    One training step of ``net`` (already on the meta device, in the wanted layout and memory mode) on fake CPU
    tensors: real shapes, dtypes and autocast, no data. Tensors are counted once per storage from their creation to
    their release, so views, in-place operations and what autograd keeps are accounted as they are in a real step.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.weak import WeakIdKeyDictionary

    class Live(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.live = self.peak = 0
            self.seen: WeakIdKeyDictionary = WeakIdKeyDictionary()

        def _release(self, nbytes: int) -> None:
            self.live -= nbytes

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    if storage not in self.seen:
                        self.seen[storage] = n = storage.nbytes()
                        self.live += n
                        weakref.finalize(storage, self._release, n)
                        self.peak = max(self.peak, self.live)
            return out

    net = copy.deepcopy(net)  # to_empty works in place
    with FakeTensorMode(allow_non_fake_inputs=True):
        net = net.to_empty(device="cpu").train()
        z = torch.empty(1, in_channels, height, width)
        live = Live()
        with live:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = net(z)
            kept = live.live
            out.float().square().mean().backward()
            del out
    return kept, live.peak


def measure_kept_for_backward(net: nn.Module, z: torch.Tensor, precision: str = "fp32") -> int:
    """Bytes autograd keeps from one real forward pass of ``net`` on ``z`` for its backward pass, parameters aside,
    counted once per storage with saved-tensor hooks: the measurement the dry run's ``kept_*`` are checked against
    (tests) and that ``benchmarks/bench_memory.py`` reports.

    ReflectConv2d keeps its unpadded input under saved-tensor hooks of its own, which an outer hook never sees: what
    it keeps is counted where it builds its record of it.
    """
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    kept: dict[int, int] = {}
    tensors = []  # alive until counted: no address is reused

    def count(t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            kept[storage.data_ptr()] = storage.nbytes()
            tensors.append(t)

    class CountedRepad(layers._Repad):
        # A dataclass calls only a __post_init__ it had when it was defined, so this overrides __init__.
        def __init__(self, source, *args):
            super().__init__(source, *args)
            count(source)

    original = layers._Repad
    layers._Repad = CountedRepad
    try:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: count(t) or t, lambda t: t):
            with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                net(z)
    finally:
        layers._Repad = original
    return sum(kept.values())


def _meta_net(net: nn.Module) -> tuple[nn.Module, int, str]:
    """A meta-device copy of a built network, its input depth and its name."""
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise DipInputError(f"cannot estimate the memory of {type(net).__name__}: it has no convolution")
    return copy.deepcopy(net).to("meta"), first.in_channels, type(net).__name__


@functools.lru_cache(maxsize=256)
def _dry_run_cached(key: str, height: int, width: int, precision: str, channels_last: bool) -> tuple[int, ...]:
    spec = json.loads(key)
    with torch.device("meta"):
        net = build_net(spec["net"], spec["input_depth"], spec["channels"], **spec["net_kwargs"])
    return _dry_runs(net, spec["input_depth"], height, width, precision, channels_last)


def _dry_runs(net: nn.Module, depth: int, height: int, width: int, precision: str, channels_last: bool) -> tuple:
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    kept_plain, peak_plain = _dry_run(disable_checkpointing(net), depth, height, width, precision)
    kept_ckpt, peak_ckpt = _dry_run(enable_checkpointing(net), depth, height, width, precision)
    return params, kept_plain, peak_plain, kept_ckpt, peak_ckpt


def fit_memory(
    net_or_config: Any,
    height: int,
    width: int,
    *,
    channels: int = 3,
    precision: str = "fp32",
    channels_last: bool = True,
    device: str | torch.device = "cpu",
) -> FitMemory:
    """Predict the peak memory of a fit producing ``height x width`` images, plain and with checkpointing.

    net_or_config: a :class:`~dip.fit.FitConfig` (its network is built on the meta device; results are cached) or a
        built network (copied to the meta device).
    channels: the image's channels (the network's output); precision: "fp32" | "bf16" (resolve "auto" first);
    channels_last: the fit's memory layout; device: where the fit runs ("cpu" or "cuda[:N]"; only the allowance for
        the runtime differs).
    """
    if precision not in ("fp32", "bf16"):
        raise DipInputError(
            f"precision must be fp32 or bf16 for a memory estimate (resolve 'auto' first), not {precision!r}"
        )
    if height < 1 or width < 1:
        raise DipInputError(f"the image size must be positive, got {height}x{width}")
    if isinstance(net_or_config, nn.Module):
        net, depth, name = _meta_net(net_or_config)
        params, kept_plain, peak_plain, kept_ckpt, peak_ckpt = _dry_runs(
            net, depth, height, width, precision, channels_last
        )
    else:
        config = net_or_config
        depth, name = config.input_depth, config.net
        key = json.dumps(
            {"net": config.net, "net_kwargs": config.net_kwargs, "input_depth": depth, "channels": channels},
            sort_keys=True,
        )
        params, kept_plain, peak_plain, kept_ckpt, peak_ckpt = _dry_run_cached(
            key, height, width, precision, channels_last
        )
    runtime = _CUDA_RUNTIME if torch.device(device).type == "cuda" else _CPU_RUNTIME
    # Weights and Adam's two moments (the gradients are in the dry run); the fit's z, its noise and the perturbed
    # input (depth channels), and the observation, output, averaged output and loss terms (image channels).
    fixed = 3 * params + 4 * height * width * (3 * depth + 5 * channels)

    def total(peak: int, mode: str) -> int:
        return int(math.ceil((peak + fixed) * _FACTOR[mode] + runtime))

    return FitMemory(
        height=height, width=width, precision=precision, device=str(device), net=name,
        plain=total(peak_plain, "plain"), checkpoint=total(peak_ckpt, "checkpoint"), kept_plain=kept_plain, kept_checkpoint=kept_ckpt,
        activations_plain=peak_plain, activations_checkpoint=peak_ckpt,
    )  # fmt: skip


def estimate_fit_memory(
    net_or_config: Any,
    height: int,
    width: int,
    *,
    channels: int = 3,
    precision: str = "fp32",
    checkpointing: bool = False,
    channels_last: bool = True,
    device: str | torch.device = "cpu",
) -> int:
    """The predicted peak memory (bytes) of one fit in one mode; see :func:`fit_memory`."""
    estimate = fit_memory(
        net_or_config, height, width, channels=channels, precision=precision, channels_last=channels_last,
        device=device,
    )  # fmt: skip
    return estimate.checkpoint if checkpointing else estimate.plain


def _available_ram() -> int:
    """Bytes of RAM this process may still use: the system's available memory, capped by a cgroup limit (SLURM)."""
    available = None
    try:
        import psutil  # optional

        available = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                info = dict(line.split(":", 1) for line in f)
            available = int(info["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:  # cgroup v2 (what SLURM's --mem sets): the limit minus what the group already uses
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                available = min(available, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return max(int(available), 0)


def memory_budget(device: str | torch.device = "cpu", budget_bytes: int | None = None) -> int:
    """The memory a fit on ``device`` may use, in bytes.

    ``budget_bytes`` when given (a configured budget); on CUDA the device's free memory (``torch.cuda.mem_get_info``,
    plus what torch's allocator caches); on CPU ``CPU_BUDGET_FRACTION`` (80%) of the memory available to the process
    (``psutil`` if installed, else ``/proc/meminfo``; capped by a cgroup v2 limit such as SLURM's ``--mem``).
    """
    if budget_bytes is not None:
        if budget_bytes <= 0:
            raise DipInputError(f"a memory budget must be positive, got {budget_bytes} bytes")
        return int(budget_bytes)
    dev = torch.device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        free, _total = torch.cuda.mem_get_info(index)
        return int(free + torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index))
    return int(_available_ram() * CPU_BUDGET_FRACTION)


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB"


def choose_memory_mode(
    estimate: FitMemory,
    budget_bytes: int | None = None,
    device: str | torch.device | None = None,
    *,
    memory_saving: str = "auto",
) -> str:
    """The memory mode for a fit with this ``estimate``: "plain" or "checkpoint", or a :class:`DipInputError` saying
    what to do when neither fits.

    memory_saving: "auto" (plain when it fits the budget, else checkpointing), "on" (always checkpointing), "off"
        (never). budget_bytes / device: see :func:`memory_budget` (device defaults to the estimate's).
    """
    if memory_saving not in MEMORY_SAVING:
        raise DipInputError(f"memory saving must be one of {', '.join(MEMORY_SAVING)}, got {memory_saving!r}")
    device = estimate.device if device is None else str(device)
    budget = memory_budget(device, budget_bytes)
    if memory_saving == "off":
        if estimate.plain <= budget:
            return "plain"
    elif memory_saving == "on" or estimate.plain > budget:
        if estimate.checkpoint <= budget:
            return "checkpoint"
    else:
        return "plain"
    where = "the configured budget" if budget_bytes is not None else f"what {device} has free"
    size = f"a {estimate.width}x{estimate.height} {estimate.precision} fit of {estimate.net!r}"
    if memory_saving == "off" and estimate.checkpoint <= budget:
        raise DipInputError(
            f"{size} needs about {_gb(estimate.plain)}, more than {where} ({_gb(budget)}); with --memory-saving on "
            f"(activation checkpointing, about 1.3x the time per step) it needs about {_gb(estimate.checkpoint)} "
            "and fits"
        )
    raise DipInputError(
        f"{size} needs about {_gb(estimate.plain)} ({_gb(estimate.checkpoint)} with --memory-saving on), more than "
        f"{where} ({_gb(budget)}); use a smaller image (or crop it), --precision bf16, a narrower network, or a "
        "device with more memory"
    )


def mem_mb_for(
    config: Any,
    height: int,
    width: int,
    *,
    channels: int = 3,
    memory_saving: str = "off",
    device: str = "cpu",
    margin: float = 1.2,
) -> int:
    """Megabytes a scheduler should grant a process that runs this fit (e.g. a workflow job's ``mem_mb``).

    The predicted peak of the mode the fit will run in ("on": checkpointing; "off" and "auto": plain, which "auto"
    picks when the job has that much), times ``margin``, plus the memory of a Python process with torch imported.
    Fits on a GPU need little host memory: then only the process (with CUDA's libraries) and the images count.
    """
    if memory_saving not in MEMORY_SAVING:
        raise DipInputError(f"memory saving must be one of {', '.join(MEMORY_SAVING)}, got {memory_saving!r}")
    precision = "fp32" if config.precision == "auto" else config.precision
    base = _PROCESS_BASE
    if torch.device(device).type == "cuda":
        fit, base = 4 * height * width * (config.input_depth + 5 * channels), _CUDA_PROCESS_BASE
    else:
        estimate = fit_memory(
            config, height, width, channels=channels, precision=precision, channels_last=config.channels_last,
        )  # fmt: skip
        fit = estimate.bytes_for("checkpoint" if memory_saving == "on" else "plain")
    return int(math.ceil((fit * margin + base) / 2**20))
