"""Where a fit runs and how: the device, CPU threads, bf16 or fp32, and what the device is asked before and after."""

from __future__ import annotations

import resource

import torch

from dip.errors import DipInputError
from dip.fit.config import FitConfig


DEVICE_TYPES = ("cpu", "cuda", "mps")  # what a fit can run on: auto picks the first available of cuda, mps, cpu


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str) -> torch.device:
    """The device a fit runs on: ``auto`` is CUDA if available, else Apple's MPS if available, else the CPU.

    ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` name one; an unknown name, or a device this machine does not have,
    raises :class:`~dip.errors.DipInputError` (one sentence saying what to use instead).
    """
    name = str(name).strip()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise DipInputError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DipInputError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DipInputError(
                f"device {name!r} was asked for but this machine has {torch.cuda.device_count()} CUDA device(s); "
                "use cuda:0 or auto"
            )
    if device.type == "mps" and not _mps_available():
        raise DipInputError(f"device {name!r} was asked for but Apple's MPS is not available; use --device cpu or auto")
    return device


def set_threads(n: int | None) -> int:
    """Use ``n`` CPU threads for this process's tensor maths (a workflow job's ``threads``); returns the number in use.

    torch otherwise takes every core of the machine, so two jobs sharing a node oversubscribe it (a 1-thread fit runs
    at about half the speed of a 2-thread one on 2 cores; two at once gain nothing). Inter-op threads are set to 1
    only if torch has not started its pool yet (it refuses afterwards; DIP's graph is a chain, so they never help).
    ``None`` or ``n < 1`` leaves torch's choice.
    """
    if n is not None and n >= 1:
        torch.set_num_threads(int(n))
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already running; harmless
    return torch.get_num_threads()


def bf16_is_fast(device: str | torch.device = "auto") -> bool:
    """Whether ``precision="bf16"`` speeds a fit up on ``device`` (a hint for choosing; results differ from fp32).

    CUDA: GPUs with bf16 (Ampere and newer). CPU: only processors with native bf16 dot products (AVX512-BF16 or AMX:
    AMD Zen 4, Intel Sapphire Rapids and newer), where bf16 + channels_last ran 1.7-2.1x faster than fp32 at
    256-512 px. Without them (e.g. Intel Ice Lake) oneDNN emulates bf16 and a step ran over 2x *slower*
    (BENCHMARKS.md).
    """
    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if dev.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(config: FitConfig, device: torch.device) -> FitConfig:
    """``config`` with ``precision="auto"`` replaced by what it means on ``device``: bf16 where fast, else fp32."""
    if config.precision != "auto":
        return config
    return config.replace(precision="bf16" if bf16_is_fast(device) else "fp32")


def prepare_device(device: torch.device, config: FitConfig) -> None:
    """Start the peak-memory count and choose cuDNN's algorithms (autotuned, or deterministic when asked)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic


def peak_memory_mb(device: torch.device) -> float:
    """The most memory the fit took: allocated GPU memory on CUDA, the process's peak resident size on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def autocast_for(device: torch.device, precision: str):
    """The autocast context of the forward pass: bf16 when asked, else explicitly off (fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)
