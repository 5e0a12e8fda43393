"""The checks of the values argparse cannot check itself, shared by every subcommand: each failure is a
:class:`~dip.errors.DipInputError` (exit 2, one line, nothing written), raised before any image is read."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from dip.errors import DipInputError

# What --device takes; torch.device() would take more ("mps", "meta", "xla", ...) but fits run on the CPU or CUDA.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
MAX_SEED = 2**63 - 1  # torch.manual_seed takes up to 2**64 - 1 and a fit also seeds with seed + 1; numpy needs >= 0


def check_number(option: str, value: float | None, *, low: float, low_ok: bool = True,
                  high: float | None = None, note: str = "") -> None:
    """``value`` (when given) is finite and in [low, high) (or (low, high) without ``low_ok``)."""
    if value is None:
        return
    above = value >= low if low_ok else value > low
    if not (math.isfinite(value) and above and (high is None or value < high)):
        if high is None:
            wanted = f"a finite number {'>=' if low_ok else '>'} {low:g}"
        else:
            wanted = f"a number in {'[' if low_ok else '('}{low:g}, {high:g})"
        raise DipInputError(f"{option} must be {wanted}{note}, got {value}")


def check_int(option: str, value: int | None, low: int, high: int | None = None, high_text: str = "") -> None:
    if value is not None and (value < low or (high is not None and value > high)):
        wanted = f">= {low}" if high is None else f"from {low} to {high_text or high}"
        raise DipInputError(f"{option} must be an integer {wanted}, got {value}")


def check_png(option: str, path: Path | None) -> None:
    """An image to write: a .png path that is not a folder."""
    if path is None:
        return
    if path.suffix.lower() != ".png":
        raise DipInputError(f"{option} must be a .png file, got {path}")
    if path.is_dir():
        raise DipInputError(f"{option} must be a file, but {path} is a folder")


def check_distinct(paths: dict[str, Path | None]) -> None:
    """No two outputs are the same file (the second would overwrite the first)."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise DipInputError(f"{option} and {seen[key]} are the same file ({path}); give two different paths")
        seen[key] = option


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path once links are resolved, or (both existing) the same
    inode (a hard link)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_inputs(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """No output is one of the inputs (writing it would destroy the input, and the run could not be repeated)."""
    for out_name, out in outputs.items():
        for in_name, src in inputs.items():
            if out is not None and src is not None and same_file(out, src):
                raise DipInputError(
                    f"{out_name} ({out}) is {in_name} ({src}): writing it would overwrite an input; give another path"
                )


def check_device(name: str) -> None:
    """``--device``: auto, cpu, cuda or cuda:N, and CUDA (with device N) present for a cuda device."""
    if not DEVICE_PATTERN.fullmatch(name):
        raise DipInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DipInputError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
        index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            raise DipInputError(f"device {name!r} does not exist: this machine has {count} CUDA device(s), "
                                f"cuda:0 to cuda:{count - 1}")

