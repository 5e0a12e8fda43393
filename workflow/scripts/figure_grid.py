"""Shim: image grid of one (dataset, task, level): GT / degraded / baselines / DIP, PSNR in the labels
(dip.pipeline.steps.figure_grid)."""

from _shim import logged

with logged(snakemake):
    from dip.pipeline import steps

    wc, out, params = snakemake.wildcards, snakemake.output, snakemake.params
    steps.figure_grid(params.plan, snakemake.input.metrics, wc.dataset, wc.task, params.level, wc.level, out.png,
                      out.pdf)  # fmt: skip
