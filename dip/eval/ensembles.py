"""Averaging over restarts, and the spread of a result over seeds.

DIP's output depends on the seed (the network's initial weights, the input ``z`` and the perturbation noise). The
paper's 31.00 dB colour-denoising number is the PSNR of the *mean of two runs'* outputs; a mean over K restarts is a
cheap ensemble that reduces the seed's variance. :func:`restore_restarts` fits K seeds and averages their outputs
("DIP (K runs)"); :func:`mean_std` / :func:`seed_summary` give the mean +- standard deviation of a number over seeds
for the tables.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from dip.data.imageio import crop_to_box
from dip.errors import DipInputError
from dip.eval import metrics
from dip.eval.scoring import average_outputs
from dip.fit import FitConfig, FitResult

__all__ = [
    "average_outputs",
    "RestartsResult",
    "restore_restarts",
    "save_restarts",
    "mean_std",
    "format_mean_std",
    "seed_summary",
]


@dataclass
class RestartsResult:
    """K fits of one image with different seeds and the mean of their outputs."""

    output: np.ndarray  # the mean of the members' outputs
    members: list[FitResult]
    seeds: list[int]
    psnr_members: list[float] | None = None  # each run against the ground truth, if one was given
    psnr_average: float | None = None  # the averaged output against the ground truth
    early_stopping: list[dict] = field(default_factory=list)  # per member, when early stopping was on
    output_early: np.ndarray | None = None  # mean of the members' outputs at their detected steps

    @property
    def seconds(self) -> float:
        return float(sum(m.seconds for m in self.members))

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary (per-seed PSNR, their mean +- std, the PSNR of the mean, times)."""
        rec: dict[str, Any] = {
            "seeds": self.seeds,
            "runs": len(self.members),
            "seconds": round(self.seconds, 3),
            "iterations_done": [m.iterations_done for m in self.members],
            "crop_box": self.members[0].crop_box,
        }
        if self.psnr_members is not None:
            mean, std, n = mean_std(self.psnr_members)
            rec.update(psnr_members=self.psnr_members, psnr_members_mean=mean, psnr_members_std=std,
                       psnr_average=self.psnr_average)
        if self.early_stopping:
            rec["early_stopping"] = self.early_stopping
        return rec


def restore_restarts(
    task: str,
    observation: np.ndarray,
    *,
    config: FitConfig,
    seeds: Iterable[int],
    ground_truth: np.ndarray | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    **restore_kwargs: Any,
) -> RestartsResult:
    """Restore ``observation`` once per seed with :func:`dip.restore.restore` and average the outputs.

    ``config.seed`` is replaced by each seed in turn; every other argument goes to ``restore`` unchanged (``factor``,
    ``mask``, ``guide``, ``hooks``, ``early_stopping`` -- the latter as a dict, so that each run gets a fresh hook).
    With ``checkpoint_dir`` each run checkpoints to ``seed<N>.ckpt`` there, so an interrupted ensemble resumes.
    """
    from dip.restore import restore

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise DipInputError("averaging over restarts needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise DipInputError(f"the seeds must differ (the same seed gives the same run), got {seeds}")
    es = restore_kwargs.get("early_stopping")
    if es is not None and not isinstance(es, dict):
        raise DipInputError("for several runs give early_stopping as a dict of settings (each run needs its own hook)")
    members = []
    for seed in seeds:
        ckpt = Path(checkpoint_dir) / f"seed{seed}.ckpt" if checkpoint_dir is not None else None
        members.append(
            restore(task, observation, config=config.replace(seed=seed), ground_truth=ground_truth,
                    checkpoint_path=ckpt, **restore_kwargs)
        )
    result = RestartsResult(output=average_outputs([m.output for m in members]), members=members, seeds=seeds)
    if es is not None:
        result.early_stopping = [m.early_stopping for m in members]
        early = [m.output_early for m in members]
        if all(e is not None for e in early):
            result.output_early = average_outputs(early)
    if ground_truth is not None:
        gt = ground_truth
        box = members[0].crop_box
        if box is not None:
            gt = crop_to_box(ground_truth, box, scale=result.output.shape[0] // box[2])  # SR: the box is in LR pixels
        result.psnr_members = [metrics.psnr(gt, m.output) for m in members]
        result.psnr_average = metrics.psnr(gt, result.output)
    return result


def save_restarts(
    result: RestartsResult,
    output_png: str | os.PathLike,
    sidecar_json: str | os.PathLike | None = None,
    *,
    extra: dict | None = None,
) -> dict[str, Any]:
    """Write the averaged image and a JSON record (each member's summary and seed, the ensemble's PSNRs)."""
    from dip.restore import environment_info, write_image_and_record

    output_png = Path(output_png)
    sidecar = Path(sidecar_json) if sidecar_json is not None else output_png.with_suffix(".json")
    record = {
        "kind": "restarts",
        "config": result.members[0].config.to_dict(),
        "seed": None,
        **result.record(),
        "summary": {
            "iterations_done": result.members[0].iterations_done,
            "seconds": round(result.seconds, 3),
            "members": [m.summary() for m in result.members],
        },
        "environment": environment_info(),
        **(extra or {}),
    }
    write_image_and_record(output_png, result.output, sidecar, record)
    return record


# --- spread over seeds ---------------------------------------------------------------------------------------------


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """``(mean, sample standard deviation, n)`` of the finite values; std is NaN for fewer than two values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1)) if n >= 2 else math.nan
    return mean, std, n


def format_mean_std(mean: float, std: float, digits: int = 2) -> str:
    """``"31.00 ± 0.12"`` (just the mean when the std is undefined, an empty string when there is no mean)."""
    if mean is None or not math.isfinite(mean):
        return ""
    if std is None or not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def seed_summary(frame, value: str = "psnr", by: Sequence[str] | None = None, digits: int = 2):
    """Mean +- std of ``value`` over seeds: one row per group of ``by`` (default: every column but seed, the value
    and the per-run bookkeeping), with columns ``mean``, ``std``, ``n`` and ``text`` (``"31.00 ± 0.12"``).

    ``frame`` is a tidy metrics table (:data:`dip.eval.scoring.COLUMNS`): one row per image x method x seed.
    """
    import pandas as pd

    if value not in frame.columns:
        raise DipInputError(f"the table has no column {value!r}")
    if by is None:
        skip = {value, "seed", "iterations", "seconds", "ssim", "psnr"}
        by = [c for c in frame.columns if c not in skip]
    rows = []
    for key, group in frame.groupby(list(by), sort=False, dropna=False):
        mean, std, n = mean_std(group[value])
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": mean, "std": std, "n": n,
                     "text": format_mean_std(mean, std, digits)})
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "n", "text"])
