"""Shim: Fig. 2, MSE vs iteration for the four targets (dip.eval.figures.plot_learning_curves)."""

import json
from pathlib import Path

from _shim import logged

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.eval.figures import plot_learning_curves

    curves = {}
    for path in snakemake.input:  # noqa: F821
        record = json.loads(Path(path).read_text())
        curves[record["spec"]["kind"]] = record["history"]
    out = snakemake.output  # noqa: F821
    plot_learning_curves(curves, out.png, out.pdf)
