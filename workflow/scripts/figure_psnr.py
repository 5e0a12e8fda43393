"""Shim: PSNR per method for one (dataset, task, level), ours and published (dip.eval.figures.plot_psnr_per_method)."""

import numpy as np
import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.eval.figures import plot_psnr_per_method
    from dip.eval.tables import METHOD_LABELS

    wc, out = snakemake.wildcards, snakemake.output
    metrics = pd.read_csv(snakemake.input[0])
    sel = metrics[
        (metrics["dataset"] == wc.dataset)
        & (metrics["task"] == wc.task)
        & np.isclose(metrics["level"].astype(float), float(snakemake.params.level))
    ]
    sel = sel.groupby(["method", "source", "image"], as_index=False)["psnr"].mean()  # mean over seeds
    plot_psnr_per_method(sel, out.png, out.pdf, title=f"{wc.dataset}: {wc.task} {wc.level}",
                         method_labels=METHOD_LABELS)
