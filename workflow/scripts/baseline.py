"""Shim: one baseline (dip.pipeline.steps.baseline over dip.baselines.run_baseline) -> restored PNG + JSON record."""

from _shim import files, logged

with logged(snakemake):
    from dip.pipeline import steps

    steps.baseline(snakemake.params.spec, files(snakemake.input), files(snakemake.output), snakemake.threads)
