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
    "to_markdown",
    "to_latex",
    "write_table",
    "published_check_table",
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
# Row order of the tables: the degraded input, baselines, learned / published methods, DIP last (as in the paper).
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
    """The ``released`` values as records for :func:`dip.eval.scoring.check_published` (optionally for some datasets)."""
    _, released, _ = load_paper_numbers(path)
    if datasets is not None:
        released = released[released["dataset"].isin(list(datasets))]
    return released.drop(columns=["kind", "note"]).to_dict("records")


# --- building a table ----------------------------------------------------------------------------------------------


def results_table(
    metrics: pd.DataFrame,
    reported: pd.DataFrame | None,
    dataset: str,
    task: str,
    level: float,
    *,
    images: list[str] | None = None,
) -> pd.DataFrame:
    """Per-image PSNR table for one (dataset, task, level): rows (method, source), columns images + ``mean``.

    Our rows average over seeds; the ``mean`` column is the mean of the per-image values shown (the paper's
    convention: the average of per-image PSNRs). Paper rows fill the cells the paper gives.
    """
    sel = metrics[
        (metrics["dataset"] == dataset) & (metrics["task"] == task)
        & np.isclose(metrics["level"].astype(float), float(level))
    ].copy()
    sel["source"] = sel["source"].replace({"published": "released"})
    if images is None:
        bench = BENCHMARKS.get(dataset)
        present = list(dict.fromkeys(sel["image"]))
        images = [i for i in bench.images if i in present] if bench else present
        images += [i for i in present if i not in images]
    per = sel.groupby(["method", "source", "image"], sort=False)["psnr"].mean().unstack("image")
    per = per.reindex(columns=images)
    per["mean"] = per[images].mean(axis=1, skipna=True) if images else np.nan
    frames = [per]
    if reported is not None and len(reported):
        rep = reported[
            (reported["dataset"] == dataset) & (reported["task"] == task)
            & np.isclose(reported["level"].astype(float), float(level))
        ]
        if len(rep):
            rep = rep.assign(source="paper").pivot_table(index=["method", "source"], columns="image", values="psnr")
            rep = rep.reindex(columns=images + ["mean"])
            per_image_given = rep[images].notna().all(axis=1) if images else pd.Series(False, index=rep.index)
            derived = rep[images].mean(axis=1) if images else np.nan
            rep["mean"] = rep["mean"].where(rep["mean"].notna() | ~per_image_given, derived)
            frames.append(rep)
    table = pd.concat(frames)
    order = sorted(table.index, key=lambda k: (_method_rank(k[0]), k[0], SOURCE_ORDER.index(k[1])))
    table = table.loc[order]
    table.index = pd.MultiIndex.from_tuples(
        [(_method_label(m), s) for m, s in table.index], names=["method", "source"]
    )
    table.columns = [display_name(dataset, c) if c != "mean" else "mean" for c in table.columns]
    return table


def table_caption(dataset: str, task: str, level: float) -> str:
    bench = BENCHMARKS.get(dataset)
    name = {"set5": "Set5", "set14": "Set14", "color9": "the 9 colour images", "gray11": "the 11 grey images"}.get(
        dataset, dataset
    )
    text = f"{TASK_TITLES.get(task, task).capitalize()} on {name}, {_level_text(task, level)}. {PROTOCOL.get(task, '')}."
    text += (" Rows: ours = this project's runs (mean over seeds); released = the authors' released result images "
             "re-scored with the same code; paper = the number printed in the paper.")
    if bench is not None and bench.note:
        text += f" Data: {bench.note}."
    return text


# --- writers -------------------------------------------------------------------------------------------------------


def _fmt(value, digits: int = 2) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
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
    """Write ``table`` to any of Markdown / LaTeX / CSV (each atomically)."""
    if md is not None:
        _write_text(md, to_markdown(table, caption, digits))
    if tex is not None:
        _write_text(tex, to_latex(table, caption, label, digits))
    if csv is not None:
        _write_text(csv, table.reset_index().to_csv(index=False, float_format="%.4f"))


def published_check_table(check: pd.DataFrame) -> pd.DataFrame:
    """Format :func:`dip.eval.scoring.check_published`'s result for writing (one row per checked number)."""
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
