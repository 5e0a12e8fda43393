"""Stage 6 jobs: the paper's tables and figures (``workflow/rules/report.smk``). Each reads the scores of its own
(dataset, task, level) -- ours, DIP + early stop, the released outputs -- the fit records and the restored images:
they never fit, and one table needs only its own fits."""

from __future__ import annotations

import json
from pathlib import Path

from dip.pipeline.jobs.scores import gather
from dip.pipeline.plan import Job


def table(job: Job, threads=None):
    """One paper table (ours beside the released outputs and the paper's numbers) as Markdown, LaTeX and CSV."""
    from dip.eval.tables import load_paper_numbers, results_table, table_caption, write_table

    wc, out, level = job.wildcards, job.output, job.params["level"]
    scores = gather(job.input["scores"])
    reported, _, _ = load_paper_numbers(job.input["paper"])
    frame = results_table(scores, reported, wc["dataset"], wc["task"], level)
    caption = table_caption(wc["dataset"], wc["task"], level, frame)
    label = f"tab:{wc['dataset']}-{wc['task']}-{wc['level']}"
    write_table(frame, md=out["md"], tex=out["tex"], csv=out["csv"], caption=caption, label=label)
    print(frame.round(2).to_string())
    return frame


def figure_grid(job: Job, threads=None):
    """The image grid of one (dataset, task, level): per row of the plan (image, panels: (method, path)) the GT, the
    degraded input and each method's output, with our mean PSNR in the labels."""
    from dip.data.benchmarks import display_name
    from dip.data.imageio import read_image
    from dip.eval.figures import plot_grid
    from dip.eval.tables import METHOD_LABELS, setting_title

    wc, p, out = job.wildcards, job.params, job.output
    dataset, task = wc["dataset"], wc["task"]
    scores = gather(job.input["scores"])
    ours = scores[scores["source"] == "ours"]
    rows = []
    for row in p["plan"]:
        panels = []
        for method, path in row["panels"]:
            text = "Ground truth" if method == "gt" else METHOD_LABELS.get(method, method)
            if method == "input" and task == "sr":
                text = "LR input"
            sel = ours[(ours["image"] == row["image"]) & (ours["method"] == method)]
            if len(sel):
                text += f"\n{sel['psnr'].mean():.2f} dB"
            panels.append((text, read_image(path, alpha="ignore")))
        rows.append({"image": display_name(dataset, row["image"]), "panels": panels})
    return plot_grid(rows, out["png"], out["pdf"], title=setting_title(dataset, task, p["level"]))


def figure_psnr(job: Job, threads=None):
    """PSNR per method and image of one (dataset, task, level)."""
    from dip.eval.figures import plot_psnr_per_method
    from dip.eval.tables import METHOD_LABELS

    wc, out = job.wildcards, job.output
    scores = gather(job.input["scores"])
    per_image = scores.groupby(["method", "source", "image"], as_index=False)["psnr"].mean()  # mean over seeds
    title = f"{wc['dataset']}: {wc['task']} {wc['level']}"
    return plot_psnr_per_method(per_image, out["png"], out["pdf"], title=title, method_labels=METHOD_LABELS)


def figure_psnr_curves(job: Job, threads=None):
    """PSNR along each denoising fit (raw and averaged output), the noisy input's PSNR for reference."""
    import pandas as pd

    from dip.data.benchmarks import display_name
    from dip.eval.figures import plot_psnr_curves

    wc, inp, out = job.wildcards, job.input, job.output
    curves = {
        display_name(wc["dataset"], image): json.loads(Path(path).read_text())["history"]
        for image, path in zip(job.params["images"], inp["traces"])
    }
    scores = pd.read_csv(inp["scores"])
    noisy = scores[scores["method"] == "input"]
    reference = {display_name(wc["dataset"], r.image): r.psnr for r in noisy.itertuples()}
    return plot_psnr_curves(curves, out["png"], out["pdf"], reference=reference)


def figure_learning_curves(job: Job, threads=None):
    """Fig. 2: the MSE along the fit of an image, image + noise, shuffled pixels and noise."""
    from dip.eval.figures import plot_learning_curves

    curves = {}
    for path in job.inputs:
        record = json.loads(Path(path).read_text())
        curves[record["spec"]["kind"]] = record["history"]
    return plot_learning_curves(curves, job.output["png"], job.output["pdf"])


def early_stop_table(job: Job, threads=None):
    """The early-stopping summary (:func:`dip.eval.tables.early_stopping_table`): per fit that recorded ES-WMV the
    detected step, its fraction of the preset's budget, and the PSNR there vs at the fixed step count."""
    from dip.eval.tables import EARLY_STOPPING_CAPTION, early_stopping_table, write_table

    frame = early_stopping_table(job.inputs)
    write_table(frame, md=job.output["md"], csv=job.output["csv"], caption=EARLY_STOPPING_CAPTION)
    print(frame.to_string())
    return frame
