"""The paper's tables, rebuilt from a tidy metrics table with the paper's reported rows beside ours.

A table has one row per (method, source) and one column per image plus the means (over the images shown, and over
all the dataset's images when it shows only some). ``source`` is

* ``ours`` -- computed by this project (mean over seeds when a method ran with several);
* ``ours, seed std`` -- the spread of ours over its seeds, where an image ran with several;
* ``released`` -- the authors' released result images, re-scored with our metric code;
* ``paper`` -- the number printed in the paper (``config/paper_numbers.yaml``; often only the mean).

:mod:`dip.eval.writers` writes them as Markdown, LaTeX (booktabs) and CSV. The protocol behind the numbers (crop, Y
channel, the bicubic row, the same-images rule) is in ``results/README.md``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dip.data.benchmarks import BENCHMARKS, display_name
from dip.eval.scoring import select
from dip.tasks import level_label

__all__ = [
    "METHOD_LABELS",
    "load_paper_numbers",
    "released_records",
    "results_table",
    "mean_columns",
    "table_caption",
    "table_notes",
    "setting_title",
    "scope_text",
    "metric_label",
    "metric_phrase",
    "early_stopping_table",
    "released_check_table",
]

METHOD_LABELS = {
    "input": "Degraded input",
    "dip": "DIP",
    "dip_raw": "DIP, no output averaging",
    "dip_ensemble": "DIP (K runs)",
    "dip_auto": "DIP (auto stop)",
    "dip_auto_ensemble": "DIP (auto stop, K runs)",
    "dip_auto_logged": "DIP (auto stop, logged PSNR)",
    "dip_es": "DIP + early stop",
    "dip_es_ensemble": "DIP + early stop (K runs)",
    "dip_raw_ensemble": "DIP, no averaging, mean of runs",
    "dip_reg003": "DIP (noise reg. 0.03)",
    "bicubic": "Bicubic",
    "no_prior": "No prior",
    "tv_prior": "TV prior",
    "cbm3d": "CBM3D",
    "nlm": "NLM",
    "biharmonic": "Biharmonic",
    "glasner": "Glasner et al.",
    "selfexsr": "SelfExSR",
    "lapsrn": "LapSRN",
    "srresnet_mse": "SRResNet-MSE",
    "papyan": "Papyan et al.",
    "voronoi": "Voronoi",
}
# Row order of the tables: the degraded input, baselines, learned methods of other papers, DIP last (as in the paper).
METHOD_ORDER = [
    "input", "bicubic", "no_prior", "tv_prior", "glasner", "selfexsr", "nlm", "cbm3d", "biharmonic", "voronoi",
    "papyan", "lapsrn", "srresnet_mse", "dip_raw", "dip_raw_ensemble", "dip_reg003", "dip", "dip_ensemble",
    "dip_auto", "dip_auto_ensemble", "dip_auto_logged", "dip_es", "dip_es_ensemble",
]
SOURCE_ORDER = ["ours", "ours, seed std", "released", "paper"]
TASK_TITLES = {"sr": "super-resolution", "denoise": "denoising", "inpaint": "inpainting"}


def _method_label(method: str) -> str:
    if method in METHOD_LABELS:
        return METHOD_LABELS[method]
    return method.replace("_", " ")


def _method_rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _level_text(task: str, level: float) -> str:
    if task == "sr":
        return f"x{int(level)}"
    if task == "denoise":
        return f"sigma = {int(level)}"
    return f"{round(100 * float(level))}% of the pixels missing"


# --- paper numbers -------------------------------------------------------------------------------------------------


def _records(entries, kind: str) -> list[dict]:
    out = []
    for entry in entries or []:
        base = {"dataset": entry["dataset"], "task": entry["task"], "level": float(entry["level"]),
                "note": entry.get("source", "")}
        for method, value in (entry.get("mean") or {}).items():
            out.append({**base, "method": method, "image": "mean", "psnr": float(value), "kind": kind})
        for method, per_image in (entry.get("per_image") or {}).items():
            for image, value in per_image.items():
                out.append({**base, "method": method, "image": str(image), "psnr": float(value), "kind": kind})
    return out


def load_paper_numbers(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``(reported, released, tolerance_db)`` from ``config/paper_numbers.yaml`` as tidy frames.

    Columns: dataset, task, level, method, image (an image id or ``"mean"``), psnr, kind, note.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    cols = ["dataset", "task", "level", "method", "image", "psnr", "kind", "note"]
    reported = pd.DataFrame(_records(data.get("reported"), "reported"), columns=cols)
    released = pd.DataFrame(_records(data.get("released"), "released"), columns=cols)
    return reported, released, float(data.get("tolerance_db", 0.02))


def released_records(path: str | os.PathLike, datasets=None) -> list[dict]:
    """The ``released`` values as records for :func:`dip.eval.scoring.check_released`: all of them, those of some
    ``datasets`` (names), or of some levels of some datasets (a mapping name -> levels)."""
    _, released, _ = load_paper_numbers(path)
    if isinstance(datasets, dict):
        keep = [name in datasets and any(np.isclose(level, v) for v in datasets[name])
                for name, level in zip(released["dataset"], released["level"])]
        released = released[keep]
    elif datasets is not None:
        released = released[released["dataset"].isin(list(datasets))]
    return released.drop(columns=["kind", "note"]).to_dict("records")


# --- building a table ----------------------------------------------------------------------------------------------


SEED_STD = "ours, seed std"  # the source of a row of our seed spread (results_table)


def mean_columns(n_shown: int, n_all: int) -> tuple[str | None, str | None]:
    """The names of a table's mean columns (over the images shown, over all the dataset's images):
    ``("mean, 4 of 5 images", "mean, all 5 images")`` when it shows some of them (no mean of one image shown:
    ``(None, "mean, all 9 images")``), ``("mean, all 5 images", None)`` when it shows all of them."""
    if n_shown < n_all:
        return (f"mean, {n_shown} of {n_all} images" if n_shown > 1 else None), f"mean, all {n_all} images"
    return f"mean, all {n_all} images", None


def _scope(dataset: str, sel: pd.DataFrame, rep: pd.DataFrame | None) -> list[str]:
    """Every image of ``dataset``: the benchmark's, in its order, then any other image the rows name (``sel``: our
    and released rows; ``rep``: the paper's rows of the same table)."""
    bench = BENCHMARKS.get(dataset)
    universe = list(bench.images) if bench else []
    named = list(sel["image"]) + ([c for c in rep.columns if c != "mean"] if rep is not None else [])
    return universe + [i for i in dict.fromkeys(named) if i not in universe]


def _strict_mean(frame: pd.DataFrame, images: list[str]) -> pd.Series:
    """The mean of each row over ``images``; NaN for a row that lacks one of them (never a mean of fewer images)."""
    if not images:
        return pd.Series(np.nan, index=frame.index)
    frame = frame.reindex(columns=images)
    return frame.mean(axis=1).where(frame.notna().all(axis=1))


def _paper_frame(reported, dataset, task, level) -> pd.DataFrame | None:
    if reported is None or not len(reported):
        return None
    rep = select(reported, dataset, task, level)
    if not len(rep):
        return None
    return rep.assign(source="paper").pivot_table(index=["method", "source"], columns="image", values="psnr")


def _full_means(per: pd.DataFrame, rep: pd.DataFrame | None, universe: list[str]) -> dict[tuple[str, str], float]:
    """Each row's mean over *all* the dataset's images: ours and released where they have every image, the paper's
    printed mean (or the mean of its per-image numbers when it gives them all)."""
    out = {key: float(v) for key, v in _strict_mean(per, universe).items() if math.isfinite(v)}
    if rep is not None:
        given = rep["mean"] if "mean" in rep.columns else pd.Series(np.nan, index=rep.index)
        for key, value in given.where(given.notna(), _strict_mean(rep, universe)).items():
            if math.isfinite(value):
                out[key] = float(value)
    return out


def _seed_spread(ours: pd.DataFrame, images: list[str]) -> tuple[pd.DataFrame, dict]:
    """Rows of our seed spread: per method run with several seeds of an image, the standard deviation (ddof 1) of its
    PSNR over the seeds, per image, and over the images shown of the per-seed means when every image has the same
    seeds. Returns (rows indexed (method, SEED_STD), {(method, SEED_STD): {image or "mean": n seeds}})."""
    seeded = ours[pd.to_numeric(ours["seed"], errors="coerce").notna() & ours["image"].isin(images)]
    rows, counts = {}, {}
    for method, runs in seeded.groupby("method", sort=False):
        per_image = runs.groupby("image")["psnr"]
        n = per_image.count()
        if n.max() < 2:
            continue
        std = per_image.std(ddof=1).where(n >= 2).reindex(images)
        key = (method, SEED_STD)
        counts[key] = {image: int(n[image]) for image in images if image in n and n[image] >= 2}
        seeds = runs.groupby("image")["seed"].apply(lambda s: frozenset(pd.to_numeric(s)))
        same = len(seeds) == len(images) and len(set(seeds)) == 1 and len(next(iter(seeds))) >= 2
        if same:
            per_seed = runs.pivot_table(index="seed", columns="image", values="psnr").reindex(columns=images)
            std["mean"] = float(per_seed.mean(axis=1).std(ddof=1))
            counts[key]["mean"] = len(per_seed)
        rows[key] = std
    frame = pd.DataFrame.from_dict(rows, orient="index")
    if len(frame):
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=["method", "source"])
    return frame, counts


def results_table(
    metrics: pd.DataFrame,
    reported: pd.DataFrame | None,
    dataset: str,
    task: str,
    level: float,
    *,
    images: list[str] | None = None,
) -> pd.DataFrame:
    """Per-image PSNR table for one (dataset, task, level): rows (method, source), columns images + means.

    Like with like: the columns are the images *ours* covers (all the images present when there are no ours rows),
    and every row -- ours, released, paper -- is shown on those images, so ours sits beside the authors' released
    output of the same image. Our rows average over seeds. The first mean column (:func:`mean_columns`) is each row's
    mean over those images, or empty when the row lacks one of them (never a mean over fewer images). When ours covers
    only some of the dataset's images (e.g. a CPU run of 4 of Set5's 5), a second column holds each row's mean over
    *all* of them: the released outputs' and the paper's full-set means, in a column of their own.

    Where ours ran an image with several seeds, a row ``(method, "ours, seed std")`` holds the standard deviation of
    its PSNR over them per image (empty for an image run once); ``table.attrs["seed_counts"]`` has the seed counts
    the writers print beside them.

    ``table.attrs`` also holds ``images`` (the image ids shown), ``all_images``, ``subset`` (bool),
    ``mean_columns`` and ``full_means`` ({(method id, source): mean over all the images}).
    """
    sel = select(metrics, dataset, task, level).copy()
    rep = _paper_frame(reported, dataset, task, level)
    universe = _scope(dataset, sel, rep)
    if images is None:
        ours = set(sel.loc[sel["source"] == "ours", "image"])
        present = ours or set(sel["image"])
        images = [i for i in universe if i in present]
    images = list(images)
    subset = bool(images) and bool(len(sel)) and len(images) < len(universe)
    shown_col, all_col = mean_columns(len(images) if subset else len(universe), len(universe))
    columns = [*images, *([shown_col] if shown_col else [])]
    per = sel.groupby(["method", "source", "image"], sort=False)["psnr"].mean().unstack("image")
    full = _full_means(per, rep, universe)
    per = per.reindex(columns=images)
    if shown_col:
        per[shown_col] = _strict_mean(per, images)
    frames = [per]
    if rep is not None:
        given = rep["mean"] if ("mean" in rep.columns and not subset) else pd.Series(np.nan, index=rep.index)
        shown = rep.reindex(columns=images)
        if shown_col:
            shown[shown_col] = given.where(given.notna(), _strict_mean(rep, images))
        frames.append(shown)
    spread, counts = _seed_spread(sel[sel["source"] == "ours"], images)
    if len(spread):
        frames.append(spread.rename(columns={"mean": shown_col}).reindex(columns=columns))
    table = pd.concat(frames)
    if all_col is not None:
        table[all_col] = [full.get(key, np.nan) for key in table.index]
    table = table.dropna(how="all")
    order = sorted(table.index, key=lambda k: (_method_rank(k[0]), k[0], SOURCE_ORDER.index(k[1])))
    table = table.loc[order]
    means = {shown_col, all_col}
    labels = {c: c if c in means else display_name(dataset, c) for c in table.columns}
    seed_counts = {
        (_method_label(m), s): {(shown_col if c == "mean" else labels[c]): n for c, n in cells.items()
                                if c != "mean" or shown_col}
        for (m, s), cells in counts.items()
    }
    table.index = pd.MultiIndex.from_tuples(
        [(_method_label(m), s) for m, s in table.index], names=["method", "source"]
    )
    table.columns = [labels[c] for c in table.columns]
    table.attrs.update(images=images, all_images=universe, subset=subset, seed_counts=seed_counts,
                       mean_columns=[c for c in (shown_col, all_col) if c], full_means=full,
                       overfit=_overfit(sel[sel["source"] == "ours"], dataset))
    return table


def _overfit(ours: pd.DataFrame, dataset: str, gap_db: float = 1.0) -> list[dict]:
    """The images where DIP's fixed budget overfits: the auto stop's output (an earlier step of the same fit) scores
    ``gap_db`` or more above the budget's, per image over the seeds (for the notes, :func:`table_notes`)."""
    found = []
    for image, rows in ours.groupby("image", sort=False):
        fixed = rows[rows["method"] == "dip"]
        auto = rows[rows["method"].isin(["dip_auto", "dip_auto_logged"])]
        if not len(fixed) or not len(auto):
            continue
        psnr_fixed, psnr_auto = float(fixed["psnr"].mean()), float(auto["psnr"].mean())
        steps_fixed, steps_auto = pd.to_numeric(fixed["iterations"]).max(), pd.to_numeric(auto["iterations"]).max()
        if psnr_auto - psnr_fixed >= gap_db and steps_auto < steps_fixed:
            found.append({"image": display_name(dataset, image), "steps": int(steps_fixed), "psnr": psnr_fixed,
                          "auto_steps": int(steps_auto), "auto_psnr": psnr_auto})  # fmt: skip
    return found


DATASET_NAMES = {"set5": "Set5", "set14": "Set14", "color9": "the 9 colour images", "gray11": "the 11 grey images"}
METRICS = {"sr": "PSNR (dB), Y channel", "denoise": "PSNR (dB), full image", "inpaint": "PSNR (dB), full image"}


def metric_label(task: str) -> str:
    """The metric of a task's tables and figures, as an axis label: "PSNR (dB), Y channel" for super-resolution."""
    return METRICS.get(task, "PSNR (dB)")


def metric_phrase(task: str) -> str:
    """The metric of a task in words, for a title: "PSNR of the Y channel" for super-resolution."""
    return "PSNR of the Y channel" if task == "sr" else "PSNR of the full image"


def setting_title(dataset: str, task: str, level: float) -> str:
    """A reader's name for one (dataset, task, level): "Denoising on the 9 colour images, sigma = 25"."""
    name = DATASET_NAMES.get(dataset, dataset)
    return f"{TASK_TITLES.get(task, task).capitalize()} on {name}, {_level_text(task, level)}"


def scope_text(dataset: str, images: list[str], all_images: list[str]) -> str:
    """Which of a dataset's images a figure shows: "4 of the 5 images", "1 of the 9 images (House)", "all 5 images"."""
    if len(images) >= len(all_images):
        return f"all {len(all_images)} images"
    text = f"{len(images)} of the {len(all_images)} images"
    return text + (f" ({display_name(dataset, images[0])})" if len(images) == 1 else "")


def table_caption(dataset: str, task: str, level: float, table: pd.DataFrame | None = None) -> str:
    """The caption of :func:`results_table`'s table: what it shows, in one or two sentences (the protocol is in
    ``results/README.md``)."""
    sources = set(table.index.get_level_values("source")) if table is not None else {"released", "paper"}
    named = (("released", "the authors' released outputs"), ("paper", "the paper's numbers"))
    beside = [words for source, words in named if source in sources]
    text = f"{setting_title(dataset, task, level)}: {metric_label(task)}, per image"
    text += f"; ours beside {' and '.join(beside)}." if beside else ", of this project's runs."
    if table is not None and table.attrs.get("subset"):
        n, total = len(table.attrs["images"]), len(table.attrs["all_images"])
        text += (f" Every row is shown on the images this run covers ({n} of {total}); \"mean, all {total} images\" "
                 "is each row's full-set mean.")
    return text


def table_notes(task: str, table: pd.DataFrame) -> list[str]:
    """The notes under a table (:func:`results_table`) on the auto stop: which kind each of its rows is, why it has
    none where it equals DIP, and where DIP's fixed budget overfits (:func:`_overfit`)."""
    methods = set(table.index.get_level_values("method"))
    ours = {m for m, s in table.index if s == "ours"}
    auto, logged = METHOD_LABELS["dip_auto"], METHOD_LABELS["dip_auto_logged"]
    notes = []
    if auto in methods:
        notes.append(f"{auto}: the image each DIP fit returned at the step where the auto-stop rule fires (kept during "
                     "the fit, which ran on to its budget for the DIP row).")  # fmt: skip
    if logged in methods:
        notes.append(f"{logged}: the PSNR each DIP fit logged (full image, before 8-bit rounding) at the step where "
                     "the auto-stop rule ends it on that curve; these fits were made before the image there was kept.")
    if METHOD_LABELS["dip"] in ours and not methods & {auto, logged}:
        why = ("its rule did not fire within the budget" if task == "denoise"
               else f"its rule for {TASK_TITLES.get(task, task)} runs the preset's budget")  # fmt: skip
        notes.append(f"{auto} equals DIP here ({why}), so it has no row of its own.")
    for case in table.attrs.get("overfit") or []:
        notes.append(f"{case['image']}: DIP at the preset's {case['steps']} steps overfits the noise "
                     f"({case['psnr']:.2f} dB, against {case['auto_psnr']:.2f} where the auto stop ends it, after "
                     f"{case['auto_steps']} steps); the row stays as the paper's fixed budget.")  # fmt: skip
    return notes


EARLY_STOPPING_CAPTION = (
    "Early stopping by ES-WMV (no ground truth), one row per DIP fit: whether it triggered within the fixed budget, "
    "the iteration of its output, and PSNR as in the tables at the fixed step and there. The oracle is how much the "
    "best logged iteration of the returned output beats the fixed step, in the fit record's own PSNR (RGB, fit "
    "target)."
)


def _fit_key(path: Path) -> tuple[str, str, str, str, int | None]:
    """(dataset, task, level label, image, seed) of ``.../<dataset>/<task>/<level>/dip/<image>_seed<N>.json``."""
    parts = path.parts
    image, _, seed = path.stem.rpartition("_seed")
    if len(parts) < 5 or not image or not seed.isdigit():
        return (*(parts[-5:-2] if len(parts) >= 5 else ("", "", "")), path.stem, None)
    return parts[-5], parts[-4], parts[-3], image, int(seed)


def _oracle(record: dict, fixed: float | None) -> tuple[float | None, int | None]:
    """The best PSNR of the returned output along its logged curve, and its iteration (1-based): the record's history of
    the averaged output (``psnr_gt_avg``) when the fit averaged, else of the raw one (``psnr_gt``), with the returned
    output itself at the last iteration (``fixed``). In the record's metric (RGB, the fit's target)."""
    averaged = (record.get("config") or {}).get("exp_weight") is not None
    key = "psnr_gt_avg" if averaged else "psnr_gt"
    points = [(h["step"] + 1, float(h[key])) for h in record.get("history") or []
              if h.get(key) is not None and math.isfinite(h[key])]
    done = (record.get("summary") or {}).get("iterations_done") or (record.get("early_stopping") or {}).get(
        "iterations_done")
    if fixed is not None and done:
        points.append((int(done), float(fixed)))
    if not points:
        return None, None
    iteration, best = max(points, key=lambda p: (p[1], -p[0]))  # the earliest of equal values
    return best, iteration


def _score(scores: pd.DataFrame | None, dataset, task, level, image, seed, method) -> float:
    """One ours score of the score CSVs (the tables' metric), NaN when there is none."""
    if scores is None or not len(scores):
        return float("nan")
    sel = select(scores, dataset, task, level)
    sel = sel[(sel["image"] == image) & (sel["source"] == "ours") & (sel["method"] == method)]
    if seed is not None:
        sel = sel[pd.to_numeric(sel["seed"], errors="coerce") == seed]
    return float(sel["psnr"].iloc[0]) if len(sel) == 1 else float("nan")


def early_stopping_table(records, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The early-stopping summary, one row per DIP fit record (``restored/<dataset>/<task>/<level>/dip/
    <image>_seed<N>.json``, with the ``early_stopping`` entry the fit recorded), indexed (setting, image, seed).

    Columns: ``steps`` (the preset's fixed budget); ``ES-WMV`` ("triggered" or "not triggered": the record's
    ``early_stopping.triggered``, i.e. whether the patience ran out within the budget); ``ES output at`` (the
    iteration, 1-based, of the output ES-WMV returns: where the variance was lowest -- so far, when it did not
    trigger); ``PSNR, fixed step`` and ``PSNR, ES output`` (the ``dip`` and ``dip_es`` rows of the score CSVs
    ``scores``: the tables' metric, the DIP and DIP + early stop rows; empty without them) and ``ES - fixed``;
    ``oracle - fixed (RGB)``, how much the best logged iteration of the returned output beats the fixed step, in the
    record's own metric (:func:`_oracle`; >= 0), and ``oracle at`` (its iteration).
    """
    rows = []
    for path in records:
        path = Path(path)
        data = _read_json(path)
        es = data.get("early_stopping") or {}
        dataset, task, label, image, seed = _fit_key(path)
        level = (data.get("spec") or {}).get("level")
        budget = (data.get("config") or {}).get("iterations") or es.get("iterations_done")
        detected = es.get("detected_step")
        fixed = _score(scores, dataset, task, level, image, seed, "dip")
        at_es = _score(scores, dataset, task, level, image, seed, "dip_es")
        oracle, oracle_at = _oracle(data, es.get("psnr_final"))
        gain = oracle - es["psnr_final"] if oracle is not None and es.get("psnr_final") is not None else None
        setting = (f"{DATASET_NAMES.get(dataset, dataset).removeprefix('the ')}, "
                   f"{_level_text(task, level) if level is not None else label}")
        rows.append({
            "setting": setting,
            "image": display_name(dataset, image),
            "seed": seed,
            "steps": budget,
            "ES-WMV": "triggered" if es.get("triggered") else "not triggered",
            "ES output at": None if detected is None else detected + 1,
            "PSNR, fixed step": fixed,
            "PSNR, ES output": at_es,
            "ES - fixed": at_es - fixed,
            "oracle - fixed (RGB)": gain,
            "oracle at": oracle_at,
        })
    columns = ["setting", "image", "seed", "steps", "ES-WMV", "ES output at", "PSNR, fixed step", "PSNR, ES output",
               "ES - fixed", "oracle - fixed (RGB)", "oracle at"]
    table = pd.DataFrame(rows, columns=columns)
    for col in ("seed", "steps", "ES output at", "oracle at"):
        table[col] = table[col].astype("Int64")
    return table.set_index(["setting", "image", "seed"])


def _read_json(path: Path) -> dict:
    import json

    return json.loads(Path(path).read_text())


def released_check_table(check: pd.DataFrame) -> pd.DataFrame:
    """Format :func:`dip.eval.scoring.check_released`'s result for writing (one row per checked number)."""
    if check.empty:
        return pd.DataFrame(columns=["expected", "re-scored", "difference", "ok"])
    frame = check.copy()
    frame["what"] = [
        f"{r.dataset} {level_label(r.task, r.level)} {_method_label(r.method)} ({r.image})" for r in frame.itertuples()
    ]
    out = frame.set_index("what")[["psnr", "ours", "difference", "ok"]]
    out.columns = ["expected", "re-scored", "difference", "ok"]
    out.index.name = "number"
    out["ok"] = out["ok"].map({True: "yes", False: "NO"})
    return out
