"""The paper's tables, rebuilt from a tidy metrics table with the paper's reported rows beside ours.

A table has one row per (method, source) and one column per image plus the mean. ``source`` is

* ``ours`` -- computed by this project (mean over seeds when a method ran with several);
* ``released`` -- the authors' released result images, re-scored with our metric code;
* ``paper`` -- the number printed in the paper (``config/paper_numbers.yaml``; often only the mean).

Writers produce Markdown, LaTeX (booktabs) and CSV from the same frame. No optional pandas extras are needed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dip.data.benchmarks import BENCHMARKS, display_name
from dip.files import atomic_write
from dip.tasks import level_label

__all__ = [
    "METHOD_LABELS",
    "load_paper_numbers",
    "released_records",
    "results_table",
    "table_caption",
    "early_stopping_table",
    "to_markdown",
    "to_latex",
    "write_table",
    "released_check_table",
]

METHOD_LABELS = {
    "input": "Degraded input",
    "dip": "DIP",
    "dip_raw": "DIP, no output averaging",
    "dip_ensemble": "DIP (K runs)",
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
    "dip_es", "dip_es_ensemble",
]
SOURCE_ORDER = ["ours", "released", "paper"]
TASK_TITLES = {"sr": "super-resolution", "denoise": "denoising", "inpaint": "inpainting"}
PROTOCOL = {
    "sr": "PSNR (dB) of the Y channel on the centre multiple-of-32 crop minus a 4/5 px border (the authors' script)",
    "denoise": "PSNR (dB), full RGB image",
    "inpaint": "PSNR (dB), full image",
}


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


MEAN_ALL = "mean"
MEAN_SAME = "mean (same images)"


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
    return frame[images].mean(axis=1).where(frame[images].notna().all(axis=1))


def _paper_frame(reported, dataset, task, level) -> pd.DataFrame | None:
    if reported is None or not len(reported):
        return None
    rep = reported[
        (reported["dataset"] == dataset) & (reported["task"] == task)
        & np.isclose(reported["level"].astype(float), float(level))
    ]
    if not len(rep):
        return None
    return rep.assign(source="paper").pivot_table(index=["method", "source"], columns="image", values="psnr")


def _full_means(per: pd.DataFrame, rep: pd.DataFrame | None, universe: list[str]) -> dict[tuple[str, str], float]:
    """The released and paper means over *all* the dataset's images (for the caption of a subset table)."""
    out = {}
    released = per[[s == "released" for _, s in per.index]]
    if len(released) and all(i in released.columns for i in universe):
        for key, value in _strict_mean(released, universe).items():
            if math.isfinite(value):
                out[key] = float(value)
    if rep is not None:
        for key, row in rep.iterrows():
            if "mean" in rep.columns and pd.notna(row.get("mean")):
                out[key] = float(row["mean"])
            elif all(i in rep.columns and pd.notna(row[i]) for i in universe):
                out[key] = float(np.mean([row[i] for i in universe]))
    return out


def _subset_note(dataset: str, images: list[str], universe: list[str], full: dict) -> str:
    names = ", ".join(display_name(dataset, i) for i in images)
    text = (f"Same images: this run covers {len(images)} of the {len(universe)} images ({names}), so every row -- "
            f"ours, released and paper -- is shown on those images, and \"{MEAN_SAME}\" is each row's mean over them "
            "only; a paper row that gives only a dataset mean has no value here.")
    parts = []
    for source, words in (("paper", "paper"), ("released", "released images")):
        keys = sorted((k for k in full if k[1] == source), key=lambda k: (_method_rank(k[0]), k[0]))
        if keys:
            parts.append(f"{words}: " + ", ".join(f"{_method_label(k[0])} {full[k]:.2f}" for k in keys))
    if parts:
        text += f" Means over all {len(universe)} images, for reference -- " + "; ".join(parts) + "."
    return text


def results_table(
    metrics: pd.DataFrame,
    reported: pd.DataFrame | None,
    dataset: str,
    task: str,
    level: float,
    *,
    images: list[str] | None = None,
) -> pd.DataFrame:
    """Per-image PSNR table for one (dataset, task, level): rows (method, source), columns images + a mean.

    Like with like: the columns are the images *ours* covers (all the images present when there are no ours rows),
    and every row -- ours, released, paper -- is shown on those images, so ours sits beside the authors' released
    output of the same image. Our rows average over seeds. The mean is the mean of the row's per-image PSNRs over
    those images (the paper's convention), or empty when the row lacks one of them (never a mean over fewer images).

    * ours covers the whole dataset: the mean column is ``"mean"``, and a paper row that gives only a dataset mean
      shows it there;
    * ours covers a subset (e.g. a CPU run of 4 of Set5's 5 images): the column is ``"mean (same images)"``; paper
      rows are averaged over the same images where the paper gives per-image numbers, and rows left with no value
      at all are dropped. The paper's and the released images' means over the whole dataset go to the caption:
      ``table.attrs["note"]`` (:func:`table_caption` and :func:`write_table` add it).

    ``table.attrs`` also holds ``images`` (the image ids shown), ``all_images`` and ``subset`` (bool).
    """
    sel = metrics[
        (metrics["dataset"] == dataset) & (metrics["task"] == task)
        & np.isclose(metrics["level"].astype(float), float(level))
    ].copy()
    rep = _paper_frame(reported, dataset, task, level)
    universe = _scope(dataset, sel, rep)
    if images is None:
        ours = set(sel.loc[sel["source"] == "ours", "image"])
        present = ours or set(sel["image"])
        images = [i for i in universe if i in present]
    images = list(images)
    missing = [i for i in universe if i not in images]
    subset = bool(images) and bool(missing) and bool(len(sel))
    mean_col = MEAN_SAME if subset else MEAN_ALL

    per = sel.groupby(["method", "source", "image"], sort=False)["psnr"].mean().unstack("image")
    full = _full_means(per, rep, universe) if subset else {}
    per = per.reindex(columns=images)
    per[mean_col] = _strict_mean(per, images)
    frames = [per]
    if rep is not None:
        given = rep["mean"] if ("mean" in rep.columns and not subset) else pd.Series(np.nan, index=rep.index)
        rep = rep.reindex(columns=images)
        rep[mean_col] = given.where(given.notna(), _strict_mean(rep, images))
        frames.append(rep)
    table = pd.concat(frames)
    if subset:
        table = table.dropna(how="all")
    order = sorted(table.index, key=lambda k: (_method_rank(k[0]), k[0], SOURCE_ORDER.index(k[1])))
    table = table.loc[order]
    table.index = pd.MultiIndex.from_tuples(
        [(_method_label(m), s) for m, s in table.index], names=["method", "source"]
    )
    table.columns = [display_name(dataset, c) if c != mean_col else mean_col for c in table.columns]
    table.attrs.update(images=images, all_images=universe, subset=subset,
                       note=_subset_note(dataset, images, universe, full) if subset else "")
    return table


SR_BICUBIC_NOTE = (
    "Bicubic (ours) is the super-resolution literature's bicubic, made from the full ground-truth frame: MATLAB "
    "imresize bicubic down by the factor and back up (antialiased, edge-replicating, the low-resolution image kept "
    "in double, rounded to 8 bits), which reproduces the authors' released bicubic images pixel for pixel; it is not "
    "an upsampling of DIP's input (Pillow Lanczos of the multiple-of-32 crop, the authors' own, which is sharper: "
    "bicubic upsampling of it scores 0.15-0.37 dB higher on Set5 x4)"
)


def setting_title(dataset: str, task: str, level: float) -> str:
    """A reader's name for one (dataset, task, level): "Denoising on the 9 colour images, sigma = 25"."""
    name = {"set5": "Set5", "set14": "Set14", "color9": "the 9 colour images", "gray11": "the 11 grey images"}.get(
        dataset, dataset
    )
    return f"{TASK_TITLES.get(task, task).capitalize()} on {name}, {_level_text(task, level)}"


def table_caption(dataset: str, task: str, level: float, table: pd.DataFrame | None = None) -> str:
    """The caption of :func:`results_table`'s table; with ``table``, its like-with-like note when ours covers only
    some of the images."""
    bench = BENCHMARKS.get(dataset)
    text = f"{setting_title(dataset, task, level)}. {PROTOCOL.get(task, '')}."
    text += (" Rows: ours = this project's runs (mean over seeds); released = the authors' released result images "
             "re-scored with the same code; paper = the number printed in the paper. The mean is the mean of the "
             "row's per-image PSNRs over the images shown (empty when the row lacks one of them).")
    if task == "sr":
        text += f" {SR_BICUBIC_NOTE}."
    if table is not None and table.attrs.get("note"):
        text += " " + table.attrs["note"]
    if bench is not None and bench.note:
        text += f" Data: {bench.note}."
    return text


EARLY_STOPPING_CAPTION = (
    "How much of the paper's fixed step budget DIP needed: per fit, the step ES-WMV (windowed moving variance of the "
    "outputs, no ground truth) detected, as a fraction of the preset's fixed step count, the PSNR of the output "
    "there and at the fixed step (the DIP row of the tables), and their difference (detected minus fixed: >= 0 "
    "means stopping early lost nothing). The fit ran all its steps and recorded the detection, so both numbers come "
    "from one run; the best logged PSNR is an oracle no real run has, for scale"
)


def _fit_key(path: Path) -> tuple[str, str, str, str, int | None]:
    """(dataset, task, level label, image, seed) of ``.../<dataset>/<task>/<level>/dip/<image>_seed<N>.json``."""
    parts = path.parts
    image, _, seed = path.stem.rpartition("_seed")
    if len(parts) < 5 or not image or not seed.isdigit():
        return (*(parts[-5:-2] if len(parts) >= 5 else ("", "", "")), path.stem, None)
    return parts[-5], parts[-4], parts[-3], image, int(seed)


def early_stopping_table(records, metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """The early-stopping summary, one row per DIP fit record (``restored/<dataset>/<task>/<level>/dip/
    <image>_seed<N>.json``, with the ``early_stopping`` entry the fit recorded).

    Columns: ``detected step`` (0-based), ``fixed steps`` (the preset's budget), ``fraction of budget``
    ((detected step + 1) / fixed steps), ``PSNR at detected step``, ``PSNR at fixed step``, ``difference``
    (detected minus fixed), ``best logged PSNR`` and ``at step``. The PSNRs come from the record (full-image PSNR
    against the fit's target: for SR the multiple-of-32 HR crop, in RGB -- not the paper's SR metric); with
    ``metrics`` (metrics.csv: the ``dip_es`` and ``dip`` rows of the same image and seed) they are the tables' scores
    instead, with the paper's metric for the task, and ``PSNR metric`` says which. The detected-step output is the
    network's raw output there; the fixed-step one is the fit's kept output (exponentially averaged when the preset
    averages, e.g. denoising): the DIP + early stop and DIP rows of the tables.
    """
    rows = []
    for path in records:
        path = Path(path)
        data = _read_json(path)
        es = data.get("early_stopping") or {}
        dataset, task, label, image, seed = _fit_key(path)
        budget = (data.get("config") or {}).get("iterations") or es.get("iterations_done")
        detected = es.get("detected_step")
        psnr_es, psnr_fixed, metric = es.get("psnr_detected"), es.get("psnr_final"), "record (RGB, fit target)"
        if metrics is not None and len(metrics):
            level = ((data.get("spec") or {}).get("level"))
            sel = metrics[(metrics["dataset"] == dataset) & (metrics["task"] == task) & (metrics["image"] == image)
                          & (metrics["source"] == "ours")]
            if level is not None:
                sel = sel[np.isclose(sel["level"].astype(float), float(level))]
            if seed is not None:
                sel = sel[pd.to_numeric(sel["seed"], errors="coerce") == seed]
            found = {m: sel.loc[sel["method"] == m, "psnr"] for m in ("dip_es", "dip")}
            if all(len(v) == 1 for v in found.values()):
                psnr_es, psnr_fixed = float(found["dip_es"].iloc[0]), float(found["dip"].iloc[0])
                metric = "paper (as the tables)"
        fraction = (detected + 1) / budget if detected is not None and budget else None
        diff = psnr_es - psnr_fixed if psnr_es is not None and psnr_fixed is not None else None
        rows.append({
            "fit": "/".join([dataset, task, label, path.stem]),
            "detected step": detected,
            "fixed steps": budget,
            "fraction of budget": fraction,
            "PSNR at detected step": psnr_es,
            "PSNR at fixed step": psnr_fixed,
            "difference": diff,
            "best logged PSNR": es.get("psnr_peak_logged"),
            "at step": es.get("peak_step_logged"),
            "PSNR metric": metric,
        })
    columns = ["fit", "detected step", "fixed steps", "fraction of budget", "PSNR at detected step",
               "PSNR at fixed step", "difference", "best logged PSNR", "at step", "PSNR metric"]
    table = pd.DataFrame(rows, columns=columns).set_index("fit")
    for col in ("detected step", "fixed steps", "at step"):
        table[col] = table[col].astype("Int64")
    return table


def _read_json(path: Path) -> dict:
    import json

    return json.loads(Path(path).read_text())


# --- writers -------------------------------------------------------------------------------------------------------


def _fmt(value, digits: int = 2) -> str:
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def to_markdown(table: pd.DataFrame, caption: str | None = None, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table (index levels become the first columns)."""
    names = [n or "" for n in table.index.names]
    header = names + [str(c) for c in table.columns]
    lines = []
    if caption:
        lines += [f"**{caption}**", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([" --- "] * len(names) + [" ---: "] * len(table.columns)) + "|")
    for key, row in table.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        cells = [str(k) for k in key] + [_fmt(v, digits) for v in row.to_numpy()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex(text) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text)).replace("–", "--")


def to_latex(table: pd.DataFrame, caption: str | None = None, label: str | None = None, digits: int = 2) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    names = [n or "" for n in table.index.names]
    spec = "l" * len(names) + "r" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_tex(h) for h in names + [str(c) for c in table.columns]) + r" \\")
    lines.append(r"\midrule")
    for key, row in table.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        cells = [_tex(k) for k in key] + [_tex(_fmt(v, digits)) for v in row.to_numpy()]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _write_text(path, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_table(table: pd.DataFrame, *, md=None, tex=None, csv=None, caption=None, label=None, digits=2) -> None:
    """Write ``table`` to any of Markdown / LaTeX / CSV (each atomically).

    A caption is completed with the table's like-with-like note (``table.attrs["note"]``, set by
    :func:`results_table` when ours covers only some images) unless it holds it already.
    """
    note = table.attrs.get("note") if caption is not None else None
    if note and note not in caption:
        caption = f"{caption} {note}"
    if md is not None:
        _write_text(md, to_markdown(table, caption, digits))
    if tex is not None:
        _write_text(tex, to_latex(table, caption, label, digits))
    if csv is not None:
        _write_text(csv, table.reset_index().to_csv(index=False, float_format="%.4f"))


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
