"""What ``dip <task>`` says about the fit it ran and the image it wrote: which image the output holds (averaged or
raw, of which step, why there, its PSNR against ``--gt``), the early-stopping output, and the last line."""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

log = logging.getLogger("dip")


def say_auto_stop(task: str, args: argparse.Namespace, result, mode: str) -> None:
    """A warning when the user's --sigma and the image's noise disagree (the preset was chosen by the former)."""
    auto = result.auto_stop or {}
    sigma_hat = auto.get("sigma_255")
    if task == "denoise" and args.sigma is not None and sigma_hat is not None and math.isfinite(sigma_hat):
        if abs(sigma_hat - args.sigma) > 0.3 * args.sigma:
            log.warning("the image's noise looks like sigma %.1f (estimated), not --sigma %g; the preset was chosen "
                        "by --sigma", sigma_hat, args.sigma)  # fmt: skip


def n_steps(n: int) -> str:
    """``1 step``, ``3 steps``."""
    return f"{n} step{'' if n == 1 else 's'}"


def written(result, args: argparse.Namespace, mode: str, extra: dict, ground_truth) -> dict:
    """What the output file holds: which image (averaged or raw), of which step, and (with --gt) its PSNR."""
    averaged = result.config.exp_weight is not None
    kind = "averaged output (EMA)" if averaged else "raw output"
    last = result.iterations_done - 1
    step, why = last, f"the last of {n_steps(result.iterations_done)} (fixed budget)"
    auto = result.auto_stop or {}
    if mode == "auto":
        if auto.get("fired"):
            why = f"auto stop ({auto['rule']}): {auto['reason']}"
        elif auto.get("rule") == "budget":
            why = f"the last of {n_steps(result.iterations_done)}: the auto stop runs the budget here, {auto['reason']}"
        else:
            why = f"the last step: the auto stop ({auto.get('rule')}) did not fire, {auto.get('reason')}"
    elif mode == "es-wmv" and "output_step" in extra:
        step = extra["output_step"]
        kind = "raw output"  # ES-WMV keeps the step's own output
        why = "ES-WMV's detected step"
    elif mode == "es-wmv":
        why = "ES-WMV did not detect a step; the last step"
    info = {"path": str(args.output), "kind": kind, "step": step, "steps_done": result.iterations_done,
            "max_steps": result.config.iterations, "why": why}  # fmt: skip
    if mode != "auto" and auto:
        info["auto_stop_would_stop_at"] = auto.get("stop_step")
    if ground_truth is not None:
        from dip.data.imageio import crop_to_box
        from dip.eval import metrics

        scale = getattr(args, "factor", None) or 1
        gt = crop_to_box(ground_truth, result.crop_box, scale) if result.crop_box is not None else ground_truth
        info["psnr_gt"] = metrics.psnr(gt, result.output)
    return info


def last_line(path: Path, output: dict, result) -> str:
    psnr = "" if output.get("psnr_gt") is None else f"; PSNR vs --gt {output['psnr_gt']:.2f} dB"
    return (f"wrote {path}: the {output['kind']} of step {output['step']} ({output['why']}); "
            f"{n_steps(result.iterations_done)} in {result.seconds:.1f} s on {result.device}{psnr}")


def early_png(args: argparse.Namespace) -> Path | None:
    """Where --early-stop-record writes the detected step's output (--early-output, or OUTPUT with .early.png)."""
    return (args.early_output or args.output.with_suffix(".early.png")) if args.early_stop_record else None


def keep_early_output(args: argparse.Namespace, result, extra: dict) -> None:
    """With early stopping: make the detected step's output the result (--early-stop) or write it beside it
    (--early-stop-record), and say what was detected."""
    es = result.early_stopping
    if result.output_early is None:
        log.warning("early stopping: the fit ended before the variance window (%s) filled", n_steps(args.es_window))
    elif args.early_stop:
        result.output = result.output_early  # the image to keep is the one at the detected step
        extra["output_step"] = es["detected_step"]
    else:
        from dip.data.imageio import write_image

        path = early_png(args)
        write_image(path, result.output_early)
        es["output"] = str(path)
    log.info("early stopping: detected step %s%s%s", es["detected_step"],
             "" if es.get("psnr_detected") is None else
             f" (PSNR {es['psnr_detected']:.2f} dB there, {es['psnr_final']:.2f} dB after "
             f"{n_steps(es['iterations_done'])})",
             f"; wrote its output to {es['output']}" if es.get("output") else "")
