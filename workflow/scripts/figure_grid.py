"""Shim: image grid of one (dataset, task, level): GT / degraded / baselines / DIP, PSNR in the labels."""

import numpy as np
import pandas as pd

from _shim import logged

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.data.benchmarks import display_name
    from dip.eval.figures import plot_grid
    from dip.data.imageio import read_image
    from dip.eval.tables import METHOD_LABELS

    wc, inp, out, params = snakemake.wildcards, snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    metrics = pd.read_csv(inp.metrics)
    ours = metrics[
        (metrics["dataset"] == wc.dataset)
        & (metrics["task"] == wc.task)
        & np.isclose(metrics["level"].astype(float), float(params.level))
        & (metrics["source"] == "ours")
    ]
    rows = []
    for row in params.plan:
        panels = []
        for method, path in row["panels"]:
            label = "ground truth" if method == "gt" else METHOD_LABELS.get(method, method)
            if method == "input" and wc.task == "sr":
                label = "LR input"
            sel = ours[(ours["image"] == row["image"]) & (ours["method"] == method)]
            if len(sel):
                label += f"\n{sel['psnr'].mean():.2f} dB"
            panels.append((label, read_image(path, alpha="ignore")))
        rows.append({"image": display_name(wc.dataset, row["image"]), "panels": panels})
    plot_grid(rows, out.png, out.pdf, title=f"{wc.dataset}: {wc.task} {wc.level}")
