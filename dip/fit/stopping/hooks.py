"""The stopping hooks of a task-level fit (:func:`dip.restore.restore`, :func:`dip.restore.restore_many`): built from
what a caller gives (a hook, True, or its settings), and what they did, put on the fit's result."""

from __future__ import annotations

from typing import Any

import numpy as np

from dip.errors import DipInputError
from dip.fit.config import FitResult
from dip.fit.stopping.discrepancy import AutoStop, rule_for
from dip.fit.stopping.reports import auto_stop_report, early_stopping_report
from dip.fit.stopping.variance import EarlyStopping

__all__ = ["auto_stop_hook", "early_stopping_hook", "annotate_stops"]


def auto_stop_hook(auto_stop: Any, task: str, observation: np.ndarray, mask: np.ndarray | None,
                   average: float | None) -> AutoStop | None:  # fmt: skip
    """An :class:`~dip.fit.stopping.discrepancy.AutoStop` hook from itself, True or its settings (a dict); None for
    None/False. ``average``: the fit's ``exp_weight`` (the rule judges the image the fit returns)."""
    if auto_stop is None or auto_stop is False:
        return None
    if isinstance(auto_stop, AutoStop):
        return auto_stop
    settings = {} if auto_stop is True else dict(auto_stop)
    unknown = set(settings) - {"stop", "tau"}
    if unknown:
        raise DipInputError(f"bad auto-stop settings {auto_stop!r}: unknown {', '.join(sorted(unknown))}; "
                            "give stop and/or tau")  # fmt: skip
    rule = rule_for(task, observation, mask=mask, tau=float(settings.get("tau", 1.0)), average=average)
    return AutoStop(rule, stop=bool(settings.get("stop", True)), task=task)


def early_stopping_hook(early_stopping: Any) -> EarlyStopping | None:
    """An :class:`~dip.fit.stopping.variance.EarlyStopping` hook from itself or its settings (a dict); None for None."""
    if early_stopping is None:
        return None
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    try:
        return EarlyStopping(**dict(early_stopping))
    except (TypeError, ValueError) as err:
        raise DipInputError(f"bad early-stopping settings {early_stopping!r}: {err}") from None


def annotate_stops(result: FitResult, es_hook, auto_hook, ground_truth=None) -> FitResult:
    """Put the early-stopping and auto-stop records on ``result``: ``early_stopping``, ``output_early``,
    ``auto_stop`` and ``output_auto`` are set on every result (None without them), so that readers (records, the
    command, the workflow) can read them as attributes."""
    result.early_stopping = result.output_early = None
    result.auto_stop = result.output_auto = None
    if es_hook is not None:
        result.early_stopping, result.output_early = early_stopping_report(es_hook, result, ground_truth)
    if auto_hook is not None:
        result.auto_stop, result.output_auto = auto_stop_report(auto_hook, result, ground_truth)
    return result
