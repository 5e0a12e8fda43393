"""Shim: several DIP fits of one size in one process (dip.pipeline.steps.fit_pack) -> a pack folder holding, per
fit, what a lone fit (fit.py) writes; unpack_fit.py copies them out. No checkpoints in a pack."""

from _shim import files, logged

with logged(snakemake):
    from dip.pipeline import steps

    steps.fit_pack(snakemake.params.spec, files(snakemake.input), snakemake.output[0], snakemake.threads)
