"""Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018) as a library.

The data path: :mod:`dip.data.benchmarks` -> :mod:`dip.data.degrade` -> :mod:`dip.fit` (with :mod:`dip.nets` and
:mod:`dip.physics`) -> :mod:`dip.eval.metrics` -> :mod:`dip.eval.tables` / :mod:`dip.eval.figures`. The tasks, their
levels and default presets are one table, :mod:`dip.tasks`.

The public names below are imported on first use, so ``import dip`` stays cheap (no torch) for the workflow's
planner and for ``dip --help``::

    import dip
    config = dip.get_preset(dip.default_preset("sr", 8))      # the x8 preset
    result = dip.restore.restore("sr", dip.read_image("lr.png"), config=config, factor=8)
    dip.write_image("sr.png", result.output)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Submodules reachable as attributes (``dip.restore``, ``dip.tasks``, ...) without importing them first.
_SUBMODULES = (
    "baselines", "cli", "data", "errors", "eval", "experiments", "files", "fit", "nets", "physics", "pipeline",
    "presets", "restore", "tasks",
)
# Public name -> the module that defines it.
_NAMES = {
    "DipInputError": "dip.errors",
    "TASKS": "dip.tasks",
    "default_preset": "dip.tasks",
    "level_label": "dip.tasks",
    "parse_level": "dip.tasks",
    "FitConfig": "dip.fit",
    "FitResult": "dip.fit",
    "PRESETS": "dip.presets",
    "get_preset": "dip.presets",
    "config_from_spec": "dip.presets",
    "prepare_inputs": "dip.restore",
    "restore_many": "dip.restore",
    "save_result": "dip.restore",
    "read_image": "dip.data.imageio",
    "write_image": "dip.data.imageio",
    "psnr": "dip.eval.metrics",
    "ssim": "dip.eval.metrics",
}

__all__ = ["__version__", *_SUBMODULES, *_NAMES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"dip.{name}")
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'dip' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
