"""Stage 6 jobs: the paper's tables and figures (``workflow/rules/report.smk``). Each reads the scores of its own
(dataset, task, level) -- ours, DIP + early stop, the released outputs -- the fit records and the restored images:
they never fit, and one table needs only its own fits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dip.pipeline.jobs.scores import gather
from dip.pipeline.dag import Job


def table(job: Job, threads=None):
    """One paper table (ours beside the released outputs and the paper's numbers) as Markdown, LaTeX and CSV."""
    from dip.eval.tables import load_paper_numbers, results_table, table_caption, table_notes
    from dip.eval.writers import write_table

    wc, out, level = job.wildcards, job.output, job.params["level"]
    scores = gather(job.input["scores"])
    reported, _, _ = load_paper_numbers(job.input["paper"])
    frame = results_table(scores, reported, wc["dataset"], wc["task"], level)
    caption = table_caption(wc["dataset"], wc["task"], level, frame)
    label = f"tab:{wc['dataset']}-{wc['task']}-{wc['level']}"
    notes = table_notes(wc["task"], frame)
    write_table(frame, md=out["md"], tex=out["tex"], csv=out["csv"], caption=caption, label=label, notes=notes)
    print(frame.round(2).to_string())
    return frame


def _table(job: Job, reported=None):
    """The job's scores and the table of its (dataset, task, level): the images it shows and all of them."""
    from dip.eval.tables import results_table

    wc = job.wildcards
    scores = gather(job.input["scores"])
    return scores, results_table(scores, reported, wc["dataset"], wc["task"], job.params["level"])


def figure_grid(job: Job, threads=None):
    """The image grid of one (dataset, task, level): per row of the plan (image, panels: (method, path, seed)) the
    GT, the degraded input and each method's output, with the PSNR of the output shown in the labels."""
    from dip.data.benchmarks import display_name
    from dip.data.imageio import read_image
    from dip.eval.figures import plot_grid
    from dip.eval.tables import METHOD_LABELS, metric_phrase, scope_text, setting_title

    wc, p, out = job.wildcards, job.params, job.output
    dataset, task = wc["dataset"], wc["task"]
    scores, table = _table(job)
    ours = scores[scores["source"] == "ours"]
    rows = []
    for row in p["plan"]:
        panels = []
        for method, path, seed in _with_auto_stop(row["panels"], ours, row["image"]):
            text = "Ground truth" if method == "gt" else METHOD_LABELS.get(method, method)
            if method == "input" and task == "sr":
                text = "LR input"
            sel = ours[(ours["image"] == row["image"]) & (ours["method"] == method)]
            runs = pd.to_numeric(sel["seed"], errors="coerce")
            if seed is not None and (runs == seed).any():  # the score of the output shown (its first seed)
                several = runs.nunique() > 1
                text += f"\n{sel.loc[runs == seed, 'psnr'].iloc[0]:.2f} dB" + (f" (seed {seed})" if several else "")
            elif len(sel):
                text += f"\n{sel['psnr'].mean():.2f} dB"
            panels.append((text, read_image(path, alpha="ignore")))
            print(f"{row['image']}: {text.splitlines()[0]} <- {path}")
        rows.append({"image": display_name(dataset, row["image"]), "panels": panels})
    shown = [row["image"] for row in p["plan"]]
    scope = scope_text(dataset, shown, table.attrs["all_images"] or shown)
    title = f"{setting_title(dataset, task, p['level'])}: {scope}; {metric_phrase(task)}"
    return plot_grid(rows, out["png"], out["pdf"], title=title)


def _with_auto_stop(panels: list, ours: pd.DataFrame, image: str) -> list:
    """A grid row's panels with the auto stop's image after DIP's, where the level has auto-stop rows scoring an image
    of its own (``dip_auto``) and the DIP fit shown kept one (its record's ``auto_stop.image``, beside its PNG)."""
    if not ((ours["image"] == image) & (ours["method"] == "dip_auto")).any():
        return list(panels)
    out = []
    for method, path, seed in panels:
        out.append((method, path, seed))
        record = Path(path).with_suffix(".json")
        if method == "dip" and record.is_file():
            kept = (json.loads(record.read_text()).get("auto_stop") or {}).get("image")
            if kept:
                out.append(("dip_auto", str(Path(path).with_name(kept)), seed))
    return out


def figure_psnr(job: Job, threads=None):
    """PSNR per method and image of one (dataset, task, level) on the images its table shows; when those are only some
    of the dataset's, the released outputs' and the paper's means over all of them apart."""
    from dip.data.benchmarks import display_name
    from dip.eval.figures import plot_psnr_per_method
    from dip.eval.scoring import select
    from dip.eval.tables import METHOD_LABELS, load_paper_numbers, metric_label, scope_text, setting_title

    wc, out, level = job.wildcards, job.output, job.params["level"]
    reported, _, _ = load_paper_numbers(job.input["paper"])
    scores, table = _table(job, reported)
    images, universe, subset = table.attrs["images"], table.attrs["all_images"], table.attrs["subset"]
    paper = select(reported, wc["dataset"], wc["task"], level)
    paper = paper[paper["image"] != "mean"]
    frame = pd.concat([scores, paper.assign(source="paper")], ignore_index=True)
    means = table.attrs["full_means"]
    # a paper row's printed mean is over all the images: apart on a subset, beside the others' on the whole set
    full = means if subset else {}
    given = {} if subset else {k: v for k, v in means.items() if k[1] == "paper"}
    title = f"{setting_title(wc['dataset'], wc['task'], level)}: {scope_text(wc['dataset'], images, universe)}"
    return plot_psnr_per_method(
        frame, out["png"], out["pdf"], title=title, method_labels=METHOD_LABELS, images=images, full_means=full,
        given_means=given, n_all=len(universe), image_labels={i: display_name(wc["dataset"], i) for i in universe},
        ylabel=metric_label(wc["task"]),
    )


def figure_psnr_curves(job: Job, threads=None):
    """PSNR along each denoising fit (raw and averaged output), the noisy input's PSNR for reference."""
    from dip.data.benchmarks import BENCHMARKS, display_name
    from dip.eval.figures import plot_psnr_curves
    from dip.eval.tables import scope_text, setting_title
    from dip.tasks import parse_level

    wc, inp, out = job.wildcards, job.input, job.output
    images = job.params["images"]
    curves = {
        display_name(wc["dataset"], image): json.loads(Path(path).read_text())["history"]
        for image, path in zip(images, inp["traces"])
    }
    scores = pd.read_csv(inp["scores"])
    noisy = scores[scores["method"] == "input"]
    reference = {display_name(wc["dataset"], r.image): r.psnr for r in noisy.itertuples()}
    bench = BENCHMARKS.get(wc["dataset"])
    universe = list(bench.images) if bench else list(images)
    setting = setting_title(wc["dataset"], "denoise", parse_level("denoise", wc["level"]))
    title = f"{setting}: {scope_text(wc['dataset'], images, universe)}"
    return plot_psnr_curves(curves, out["png"], out["pdf"], reference=reference, title=title)


def figure_learning_curves(job: Job, threads=None):
    """Fig. 2: the MSE along the fit of an image, image + noise, shuffled pixels and noise."""
    from dip.eval.figures import plot_learning_curves

    curves = {}
    for path in job.inputs:
        record = json.loads(Path(path).read_text())
        curves[record["spec"]["kind"]] = record["history"]
    return plot_learning_curves(curves, job.output["png"], job.output["pdf"])


def early_stop_table(job: Job, threads=None):
    """The early-stopping summary (:func:`dip.eval.tables.early_stopping_table`): per fit that recorded ES-WMV whether
    it triggered, the iteration of its output, the tables' PSNR there and at the fixed step, and the oracle's gain."""
    from dip.eval.tables import EARLY_STOPPING_CAPTION, early_stopping_table
    from dip.eval.writers import write_table

    frame = early_stopping_table(job.input["records"], gather(job.input["scores"]))
    write_table(frame, md=job.output["md"], csv=job.output["csv"], caption=EARLY_STOPPING_CAPTION)
    print(frame.to_string())
    return frame
