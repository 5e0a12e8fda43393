"""How much memory a fit needs, how much it may use, and which memory mode it runs in.

:func:`fit_memory` predicts a fit's peak memory, plain and with activation checkpointing
(:mod:`dip.nets.recompute`), from a dry run of one training step on fake tensors (shapes only, no real memory,
1-2 s); :func:`memory_budget` is what the fit may use; :func:`choose_memory_mode` turns the two into "plain" /
"checkpoint" or an actionable :class:`~dip.errors.DipInputError` before the fit starts, instead of an out-of-memory
crash mid-fit. :func:`memory_mode_for_fit` and :func:`check_batch_memory` are that policy as a lone fit and a batch
of fits apply it (``FitConfig.memory_saving`` / ``memory_budget_mb``); small images skip the dry run when the
torch-free bound of :mod:`dip.fit.memory_model` fits the budget.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dip.errors import DipInputError
from dip.fit.config import MEMORY_SAVING, FitConfig
from dip.fit.memory_model import image_bytes_per_pixel, plain_memory_bound
from dip.nets import layers
from dip.nets.inputs import input_size
from dip.nets.recompute import disable_checkpointing, enable_checkpointing
from dip.nets.registry import build_net

__all__ = [
    "CPU_BUDGET_FRACTION",
    "FitMemory",
    "fit_memory",
    "estimate_fit_memory",
    "measure_kept_for_backward",
    "memory_budget",
    "choose_memory_mode",
    "memory_mode_for_fit",
    "check_batch_memory",
]

# The dry run's peak plus the fit's fixed part, times a factor per mode, plus the runtime's allowance: calibrated
# against the peak-RSS rise that benchmarks/bench_memory.py measures on a CPU (BENCHMARKS.md, memory). On CUDA
# (max_memory_allocated: cuDNN workspaces, the caching allocator's rounding) the same factors and a larger allowance,
# a margin not yet measured.
_FACTOR = {"plain": 1.03, "checkpoint": 1.20}
_CPU_RUNTIME, _CUDA_RUNTIME = 150 * 2**20, 512 * 2**20
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
        z = torch.empty(1, in_channels, *input_size(net, (height, width)))
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
    fixed = 3 * params + height * width * image_bytes_per_pixel(depth, channels)

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


# --------------------------------------------------------------------------------------------------------------------
# The policy as the fits apply it
# --------------------------------------------------------------------------------------------------------------------


def _budget_of(config: FitConfig, device: str | torch.device) -> int:
    budget_bytes = None if config.memory_budget_mb is None else int(config.memory_budget_mb * 2**20)
    return memory_budget(device, budget_bytes)


def memory_mode_for_fit(config: FitConfig, device: torch.device, net: nn.Module | None, height: int, width: int,
                        channels: int) -> tuple[str, list[str]]:  # fmt: skip
    """The memory mode of a lone fit ("plain" / "checkpoint") and the notes its result records.

    "off": plain, no estimate. "auto": plain without an estimate where
    :func:`~dip.fit.memory_model.plain_memory_bound` (torch-free, small images only) fits the budget; else the
    dry-run estimate decides (checkpointing when the plain fit would not fit; said on stderr). "on": checkpointing,
    after checking that the checkpointed fit fits. ``net``: the fit's own network when it was given (else
    ``config``'s is estimated). Raises :class:`~dip.errors.DipInputError` naming ``--memory-saving`` when nothing fits.
    """
    saving = config.memory_saving
    if saving == "off":
        return "plain", []
    budget = _budget_of(config, device)
    bound = plain_memory_bound(config, height, width, channels) if net is None else None
    if saving == "auto" and bound is not None and bound <= budget:
        return "plain", []
    try:
        estimate = fit_memory(
            net if net is not None else config, height, width, channels=channels, precision=config.precision,
            channels_last=config.channels_last, device=str(device),
        )  # fmt: skip
    except DipInputError:
        if saving == "on":
            raise
        return "plain", []  # a network the estimate does not understand: fitted as given
    mode = choose_memory_mode(estimate, budget, device, memory_saving=saving)
    if mode == "plain":
        return "plain", []
    gb = 2**30
    why = f"estimate plain {estimate.plain / gb:.1f} GB > budget {budget / gb:.1f} GB"
    why = "asked for" if saving == "on" else why
    note = (f"memory: checkpointing ({why}; checkpointed {estimate.checkpoint / gb:.1f} GB; the result is "
            "bit-identical, each step takes ~1.1-1.35x the time)")  # fmt: skip
    if saving == "auto":
        print(f"dip: {width}x{height} fit: activation checkpointing on ({why}); --memory-saving off to refuse",
              file=sys.stderr, flush=True)  # fmt: skip
    return "checkpoint", [note]


def check_batch_memory(config: FitConfig, device: torch.device, height: int, width: int, channels: int,
                       count: int) -> None:  # fmt: skip
    """Refuse a batch whose ``count`` plain fits (a batch cannot checkpoint) would not fit the memory budget.

    "off" checks nothing; "auto" skips the dry-run estimate where the bound of one fit, times ``count``, fits.
    """
    if config.memory_saving == "off":
        return
    budget = _budget_of(config, device)
    bound = plain_memory_bound(config, height, width, channels)
    if bound is not None and bound * count <= budget:
        return
    estimate = fit_memory(config, height, width, channels=channels, precision=config.precision,
                          channels_last=config.channels_last, device=str(device))  # fmt: skip
    if estimate.plain * count > budget:
        gb = 2**30
        raise DipInputError(
            f"a batch of {count} {width}x{height} {config.precision} fits needs about {estimate.plain * count / gb:.1f}"
            f" GB (batches cannot use activation checkpointing), more than the budget of {budget / gb:.1f} GB; fit "
            f"fewer at once (pack_fits), or one at a time with dip.fit.fit, which checkpoints when needed "
            f"({estimate.checkpoint / gb:.1f} GB each)"
        )
