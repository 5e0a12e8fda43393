"""Shim: the early-stopping summary table (dip.pipeline.steps.early_stop_table): per fit the detected step, the
PSNR there, at the fixed step and the best logged one."""

from _shim import logged

with logged(snakemake):
    from dip.pipeline import steps

    steps.early_stop_table(list(snakemake.input), snakemake.output.md, snakemake.output.csv)
