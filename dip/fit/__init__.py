"""Fitting DIP networks: the settings and results (:mod:`~dip.fit.config`), the one engine (:mod:`~dip.fit.engine`:
``fit``), the lone and stacked steppers it drives (:mod:`~dip.fit.lone`, :mod:`~dip.fit.stacked`), data terms
(:mod:`~dip.fit.objectives`), checkpoints (:mod:`~dip.fit.checkpoint`), hooks and progress lines
(:mod:`~dip.fit.hooks`), the DIP family's terms and steppers (:mod:`~dip.fit.family`: DIP-TV, SGLD, the Deep
Random Projector, DIP-SURE; the table is :mod:`dip.methods`), stopping near the best (:mod:`~dip.fit.stopping`: ES-WMV and ES-EMV, the auto stop by the
discrepancy principle with the noise estimated from the image, their records), pixel optimisation without a
network (:mod:`~dip.fit.pixels`), and a fit's memory: the dry-run estimates, the budget and the memory mode
(:mod:`~dip.fit.memory`) and the torch-free model the planner reads (:mod:`~dip.fit.memory_model`).

The public names below load on first use: :mod:`~dip.fit.config` (``FitConfig``) imports no torch, so the presets
and the workflow's planner can read it without loading torch."""

from __future__ import annotations

import importlib

# Public name -> the submodule that defines it.
_NAMES = {
    "CHECKPOINT_FORMAT": "checkpoint",
    **dict.fromkeys(("COMPILE_MODES", "PRECISIONS", "FitConfig", "FitInterrupted", "FitResult"), "config"),
    **dict.fromkeys(("bf16_is_fast", "resolve_device", "resolve_precision", "set_threads"), "device"),
    **dict.fromkeys(("ema_update", "fit"), "engine"),
    **dict.fromkeys(("BaseHook", "FitState", "Hook", "ProgressBar", "ProgressLog", "log_progress"), "hooks"),
    "output_shape_for": "objectives",
}

__all__ = list(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f"dip.fit.{_NAMES[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'dip.fit' has no attribute {name!r}")
