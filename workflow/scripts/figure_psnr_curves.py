"""Shim: PSNR vs iteration of the denoising fits, raw and averaged output (dip.eval.figures.plot_psnr_curves)."""

import json
from pathlib import Path

import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.data.benchmarks import display_name
    from dip.eval.figures import plot_psnr_curves

    wc, inp, out = snakemake.wildcards, snakemake.input, snakemake.output
    curves = {}
    for image, path in zip(snakemake.params.images, inp.traces):
        curves[display_name(wc.dataset, image)] = json.loads(Path(path).read_text())["history"]
    scores = pd.read_csv(inp.scores)
    noisy = scores[scores["method"] == "input"]
    reference = {display_name(wc.dataset, r.image): r.psnr for r in noisy.itertuples()}
    plot_psnr_curves(curves, out.png, out.pdf, reference=reference)
