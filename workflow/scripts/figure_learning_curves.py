"""Shim: Fig. 2, MSE vs iteration for the four targets (dip.eval.figures.plot_learning_curves)."""

import json
from pathlib import Path

from _shim import logged

with logged(snakemake):
    from dip.eval.figures import plot_learning_curves

    curves = {}
    for path in snakemake.input:
        record = json.loads(Path(path).read_text())
        curves[record["spec"]["kind"]] = record["history"]
    out = snakemake.output
    plot_learning_curves(curves, out.png, out.pdf)
