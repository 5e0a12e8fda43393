"""Scoring restored images the way the paper did, into tidy rows (one per image x method x seed).

The metric depends on the task (:mod:`dip.eval.metrics`): super-resolution uses the paper's Y-channel PSNR on the centre
multiple-of-32 region minus a 4/5 px border (the authors' eval script); denoising and inpainting use full-image PSNR
on [0, 1]. Our outputs and the authors' released outputs go through the same function, :func:`score_image`.

Rows have the columns :data:`COLUMNS`; ``source`` is ``ours`` (computed by this project) or ``released`` (the
authors' released result files, re-scored here).

The auto stop (:mod:`dip.fit.stopping`) is scored from the same fits as DIP's fixed budget (:func:`auto_stop_output`):
a workflow fit keeps the image at the step where the rule fires (``<image>_seed<N>_auto.png``, named in its record),
and that image is scored (method ``dip_auto``); where the rule runs the budget, the auto stop returns the fit's own
output, and a level where it does so on every fit gets no row of its own (it would repeat DIP's). Fits recorded before
the image was kept have the PSNR the fit logged at the rule's step instead (method ``dip_auto_logged``: the full-image
PSNR of the output before 8-bit rounding, no SSIM).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dip.data.benchmarks import BENCHMARKS, load_benchmark_image
from dip.data.imageio import crop_to_box, put_in_center, read_image
from dip.errors import DipInputError
from dip.eval import metrics

__all__ = [
    "COLUMNS",
    "select",
    "AUTO_STOP",
    "AUTO_STOP_LOGGED",
    "auto_stop_output",
    "drop_repeated",
    "average_outputs",
    "score_image",
    "read_trace",
    "score_outputs",
    "score_released",
    "check_released",
]

COLUMNS = [
    "dataset", "image", "task", "level", "method", "source", "psnr", "ssim", "seed", "iterations", "seconds",
]


def select(frame, dataset: str | None = None, task: str | None = None, level: float | None = None):
    """The rows of a score frame (any frame with ``dataset``, ``task`` and ``level`` columns: scores, the paper's
    numbers) of one ``dataset``, ``task`` and ``level``; None leaves that column unfiltered. Levels compare as floats
    (``np.isclose``: 4 == 4.0, a CSV's 0.5 == 0.5)."""
    keep = np.ones(len(frame), dtype=bool)
    if dataset is not None:
        keep &= (frame["dataset"] == dataset).to_numpy()
    if task is not None:
        keep &= (frame["task"] == task).to_numpy()
    if level is not None:
        keep &= np.isclose(frame["level"].astype(float), float(level))
    return frame[keep]


AUTO_STOP = "dip_auto"  # the auto stop's image scored: the fit's saved output, which the rule returns
AUTO_STOP_LOGGED = "dip_auto_logged"  # the auto stop's PSNR as the fit logged it: the image at its step is not saved


def auto_stop_output(fit: dict, record: dict, auto_stop: dict) -> dict:
    """The output entry of :func:`score_outputs` for the auto stop's result on one DIP fit.

    ``fit``: the fit's entry (``seed``, ``png``, ``json``); ``record``: its JSON record; ``auto_stop``: where the rule
    stopped (:func:`dip.fit.stopping.auto_stop_of` of the record: its own answer, or the rule replayed on its logged
    curve). Three cases:

    * the fit kept the image at the rule's step (``auto_stop["image"]``, beside the fit's PNG): that image, with the
      iteration (1-based) and the seconds of fitting it took (method :data:`AUTO_STOP`);
    * the rule returns the fit's own output (rule ``budget``, the fit obeyed it, or the fit's own hook saw it fire
      nowhere before the last step): the fit's image, flagged ``same_as_fit`` (a level where every entry is so gets
      no auto-stop row: :func:`drop_repeated`);
    * the rule replayed on the logged curve of a fit recorded before the image was kept: the PSNR the record logged
      at its step (the last one where it never fired), ``psnr_stop`` (method :data:`AUTO_STOP_LOGGED`).
    """
    step = auto_stop.get("stop_step")
    if auto_stop.get("image"):
        png = Path(fit["png"]).with_name(auto_stop["image"])
        if not png.is_file():
            raise DipInputError(f"{png}: the auto stop's image that the record {fit.get('json')} names is missing; "
                                "delete the record to re-run its fit")  # fmt: skip
        return {"method": AUTO_STOP, "seed": fit.get("seed"), "png": str(png), "json": fit.get("json"),
                "iterations": int(step) + 1, "seconds": _logged_seconds(record, step)}  # fmt: skip
    replayed, fired = bool(auto_stop.get("replayed")), bool(auto_stop.get("fired"))
    last = auto_stop.get("last_step")
    early = fired and step is not None and (last is None or step < last)
    obeyed = fired and bool(auto_stop.get("obeyed")) and not replayed
    if auto_stop.get("rule") == "budget" or obeyed or (not replayed and not early):
        return {"method": AUTO_STOP, "seed": fit.get("seed"), "png": fit["png"], "json": fit.get("json"),
                "same_as_fit": True}  # fmt: skip
    step = step if fired else last  # replayed on a curve where it never fired: the budget's last logged step
    return {"method": AUTO_STOP_LOGGED, "seed": fit.get("seed"), "logged_psnr": auto_stop.get("psnr_stop"),
            "iterations": None if step is None else int(step) + 1, "seconds": _logged_seconds(record, step)}


def _logged_seconds(record: dict, step) -> float | None:
    """The seconds of fitting the record logged at ``step`` (None where it logged none)."""
    return next((h.get("seconds") for h in record.get("history") or [] if h.get("step") == step), None)


def drop_repeated(entries: list[dict]) -> list[dict]:
    """The auto stop's entries of one level, or none where every one is the fit's own output (``same_as_fit``): the
    auto stop then equals DIP there, and its rows would repeat DIP's number for number (the tables' captions say so)."""
    return [] if all(e.get("same_as_fit") for e in entries) else entries


def average_outputs(images: Sequence[np.ndarray]) -> np.ndarray:
    """The pixel-wise mean of several restored images of the same shape (float32, in [0, 1]): the ``_ensemble`` rows
    (the paper's "averaged over two runs"). Summed in float64, so the mean does not depend on the order of the runs."""
    if len(images) == 0:
        raise DipInputError("nothing to average: no outputs were given")
    shapes = {np.shape(img) for img in images}
    if len(shapes) != 1:
        raise DipInputError(f"outputs to average must have one shape, got {sorted(shapes)}")
    return np.mean(np.stack([np.asarray(img, dtype=np.float64) for img in images]), axis=0).astype(np.float32)


def score_image(task: str, ground_truth: np.ndarray, estimate: np.ndarray, *, crop_box=None) -> tuple[float, float]:
    """``(psnr, ssim)`` of ``estimate`` against ``ground_truth`` with the paper's protocol for ``task``.

    SR: an estimate smaller than the GT (DIP restores the centre multiple-of-32 crop) is put back in the centre of
    the GT frame, then scored with :func:`dip.eval.metrics.psnr_sr_paper` on the centre region. Other tasks: full image;
    if the fit cropped its input (``crop_box`` = (top, left, h, w) from the fit's record), the GT is cropped alike.
    """
    gt = np.asarray(ground_truth, dtype=np.float32)
    est = np.asarray(estimate, dtype=np.float32)
    if est.shape[2] != gt.shape[2]:
        if est.shape[2] == 3 and gt.shape[2] == 1:
            gt = np.repeat(gt, 3, axis=2)
        elif est.shape[2] == 1 and gt.shape[2] == 3:
            est = np.repeat(est, 3, axis=2)
    if task == "sr":
        if crop_box is not None:
            raise DipInputError("an SR output that was cropped beyond the multiple-of-32 box cannot be scored")
        if est.shape[:2] != gt.shape[:2]:
            est = put_in_center(est, gt.shape)
        region = metrics.sr_region(gt.shape[:2])
        return metrics.psnr_sr_paper(gt, est, region), metrics.ssim_sr_paper(gt, est, region)
    if crop_box is not None and est.shape[:2] != gt.shape[:2]:
        gt = crop_to_box(gt, crop_box)
    return metrics.psnr(gt, est), metrics.ssim(gt, est)


def read_trace(path: str | os.PathLike | None) -> dict:
    """The fields of a fit/baseline JSON record that go into the metrics table."""
    if path is None or not Path(path).is_file():
        return {"averaged": False, "seed": None, "iterations": None, "seconds": None, "crop_box": None}
    data = json.loads(Path(path).read_text())
    summary = data.get("summary", {})
    config = data.get("config") or {}
    return {
        "averaged": config.get("exp_weight") is not None,
        "seed": data.get("seed"),
        "iterations": summary.get("iterations_done", data.get("iterations")),
        "seconds": summary.get("seconds", data.get("seconds")),
        "crop_box": data.get("crop_box"),
    }


def _row(dataset, image, task, level, method, source, scores, seed=None, iterations=None, seconds=None) -> dict:
    psnr, ssim = scores
    return {
        "dataset": dataset, "image": image, "task": task, "level": level, "method": method, "source": source,
        "psnr": round(float(psnr), 4) if math.isfinite(psnr) else psnr,
        "ssim": round(float(ssim), 5),
        "seed": seed, "iterations": iterations, "seconds": None if seconds is None else round(float(seconds), 3),
    }


def score_outputs(
    dataset: str,
    task: str,
    level: float,
    image: str,
    ground_truth: str | os.PathLike,
    observation: str | os.PathLike | None,
    outputs: list[dict],
) -> list[dict]:
    """Score our outputs for one image; returns tidy rows.

    ``outputs``: dicts with ``method``, ``seed``, ``png`` and optionally ``json`` (the fit record) and
    ``only_if_averaged`` (skip the output unless the fit averaged its outputs: DIP's raw output is then a different
    image from the kept one; otherwise they are the same and one row is enough); or, for a value a fit logged of an
    image it did not save (:func:`auto_stop_output`), ``logged_psnr``, ``iterations`` and ``seconds`` instead of
    ``png``: its row has that PSNR and no SSIM, and no ensemble row. Adds a row for the
    degraded input itself (method ``input``; denoising and inpainting only) and, for a method run with several seeds,
    a row ``<method>_ensemble`` scoring the mean of its outputs (the paper's "averaged over two runs").
    """
    gt = read_image(ground_truth, alpha="ignore")
    rows = []
    if observation is not None and task in ("denoise", "inpaint"):
        obs = read_image(observation, alpha="ignore")
        rows.append(_row(dataset, image, task, level, "input", "ours", score_image(task, gt, obs)))
    by_method: dict[str, list[tuple[np.ndarray, dict]]] = {}
    for out in outputs:
        if "logged_psnr" in out:
            if out["logged_psnr"] is not None:
                rows.append(_row(dataset, image, task, level, out["method"], "ours", (out["logged_psnr"], math.nan),
                                 out.get("seed"), out.get("iterations"), out.get("seconds")))
            continue
        trace = read_trace(out.get("json"))
        if out.get("only_if_averaged") and not trace["averaged"]:
            continue
        est = read_image(out["png"], alpha="ignore")
        seed = out.get("seed", trace["seed"])
        iterations, seconds = out.get("iterations", trace["iterations"]), out.get("seconds", trace["seconds"])
        rows.append(
            _row(dataset, image, task, level, out["method"], "ours",
                 score_image(task, gt, est, crop_box=trace["crop_box"]), seed, iterations, seconds)
        )
        by_method.setdefault(out["method"], []).append((est, {**trace, "iterations": iterations, "seconds": seconds}))
    for method, runs in by_method.items():
        if len(runs) < 2 or len({r[0].shape for r in runs}) != 1:
            continue
        mean = average_outputs([r[0] for r in runs])
        seconds = sum(r[1]["seconds"] or 0 for r in runs)
        rows.append(
            _row(dataset, image, task, level, f"{method}_ensemble", "ours",
                 score_image(task, gt, mean, crop_box=runs[0][1]["crop_box"]), None, runs[0][1]["iterations"],
                 seconds)
        )
    return rows


def score_released(dataset: str, level: float, root: str | os.PathLike, images=None) -> list[dict]:
    """Score the authors' released outputs of benchmark ``dataset`` at ``level`` (files under ``root``)."""
    if dataset not in BENCHMARKS:
        raise DipInputError(f"{dataset!r} is not a benchmark with released results; choose from {', '.join(BENCHMARKS)}")
    bench = BENCHMARKS[dataset]
    root = Path(root)
    rows = []
    for image in images or bench.images:
        gt = load_benchmark_image(root / bench.gt_file(level, image), dataset)
        if bench.input_suffix:
            obs = load_benchmark_image(root / bench.input_file(level, image), dataset)
            rows.append(_row(dataset, image, bench.task, level, "input", "released", score_image(bench.task, gt, obs)))
        for method, rel in bench.released_files(level, image).items():
            est = load_benchmark_image(root / rel, dataset)
            rows.append(_row(dataset, image, bench.task, level, method, "released", score_image(bench.task, gt, est)))
    return rows


def check_released(metrics_table, expected: list[dict], tolerance: float = 0.02):
    """Compare re-scored released results with the values they are known to give.

    ``metrics_table``: a DataFrame with :data:`COLUMNS`. ``expected``: records with dataset, task, level, method,
    image (an image id or ``"mean"``) and psnr. Returns a DataFrame with ``ours``, ``difference`` and ``ok``
    (``|difference| <= tolerance``); a value with no matching rows gets ``ours`` NaN and ``ok`` False.
    """
    import pandas as pd

    pub = metrics_table[metrics_table["source"] == "released"]
    out = []
    for rec in expected:
        sel = select(pub, rec["dataset"], rec["task"], rec["level"])
        sel = sel[sel["method"] == rec["method"]]
        if rec.get("image", "mean") != "mean":
            sel = sel[sel["image"] == rec["image"]]
        ours = float(sel["psnr"].mean()) if len(sel) else float("nan")
        diff = ours - float(rec["psnr"])
        out.append({**rec, "ours": round(ours, 4), "difference": round(diff, 4),
                    "ok": bool(math.isfinite(diff) and abs(diff) <= tolerance + 1e-9)})
    return pd.DataFrame(out)
