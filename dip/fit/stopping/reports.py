"""What a stop did in a finished fit, in one shape for both kinds of stop (ES-WMV / ES-EMV, the auto stop): the
hook's summary, ``iterations_done`` and ``stopped_early``, the output kept at the stop step and, with the ground
truth, its PSNR beside the PSNR of the image the fit returned. :func:`early_stopping_report` and
:func:`auto_stop_report` add what is their own."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dip.fit.stopping.discrepancy import AutoStop
    from dip.fit.stopping.variance import EarlyStopping

__all__ = ["stop_report", "early_stopping_report", "auto_stop_report"]


def stop_report(summary: Mapping, kept, result, ground_truth=None, *, psnr_key: str,
                **extra) -> tuple[dict, np.ndarray | None]:  # fmt: skip
    """``(record, output at the stop step)``: ``summary`` (the hook's) plus ``iterations_done``, ``stopped_early`` and
    ``extra``; with ``ground_truth`` (the size of the fit's output) ``psnr_key`` (the kept output's full-image PSNR,
    None without one) and ``psnr_final`` (the fit's returned image). ``kept``: the hook's output tensor or None."""
    from dip.data.imageio import to_numpy
    from dip.eval import metrics

    output = to_numpy(kept) if kept is not None else None
    record = dict(summary)
    record.update(iterations_done=result.iterations_done, stopped_early=bool(result.stopped_early), **extra)
    if ground_truth is not None:
        gt = np.asarray(ground_truth, dtype=np.float32)
        record[psnr_key] = metrics.psnr(gt, output) if output is not None else None
        record["psnr_final"] = metrics.psnr(gt, result.output)
    return record, output


def early_stopping_report(hook: EarlyStopping, result, ground_truth=None) -> tuple[dict, np.ndarray | None]:
    """What a fit with ``hook`` found: ``(record, output_at_detected_step)`` for the JSON sidecar and the tables.

    ``result`` is the :class:`~dip.fit.FitResult` of that fit. The record (:func:`stop_report`) holds the detected
    step, the step the fit stopped at, and -- when ``ground_truth`` is given -- ``psnr_detected`` beside the PSNR of
    the fit's final output (the fixed step count, or the stop step), of its raw final output, and the best PSNR the
    logged history saw (an oracle no real run has, shown for scale).
    """
    from dip.eval import metrics

    record, output = stop_report(hook.summary(result.iterations_done - 1), hook.best_output(), result, ground_truth,
                                 psnr_key="psnr_detected")  # fmt: skip
    if ground_truth is not None:
        record["psnr_final_raw"] = metrics.psnr(np.asarray(ground_truth, dtype=np.float32), result.output_raw)
        logged = [
            (h["step"], h[key])
            for h in result.history
            for key in ("psnr_gt", "psnr_gt_avg")
            if h.get(key) is not None and math.isfinite(h[key])
        ]
        if logged:
            peak_step, peak = max(logged, key=lambda item: item[1])
            record["psnr_peak_logged"], record["peak_step_logged"] = peak, peak_step
    return record, output


def auto_stop_report(hook: AutoStop, result, ground_truth=None) -> tuple[dict, np.ndarray | None]:
    """What the auto stop of a finished fit did: ``(record, output_at_stop_step)`` for the JSON sidecar and the tables.

    ``result``: the :class:`~dip.fit.FitResult` of the fit ``hook`` watched. The record (:func:`stop_report`) is
    :meth:`AutoStop.summary <dip.fit.stopping.discrepancy.AutoStop.summary>` plus ``returned_step`` (the step of the
    image the fit returned: the stop step when the rule was obeyed, else the last step) and, with ``ground_truth``,
    ``psnr_stop`` (the image at the stop step) beside ``psnr_final``.
    """
    last_step = result.iterations_done - 1
    returned = hook.stop_step if hook.stop and hook.stop_step is not None else last_step
    return stop_report(hook.summary(last_step), hook.output(), result, ground_truth, psnr_key="psnr_stop",
                       returned_step=returned)  # fmt: skip
