"""Shim: one task input (dip.pipeline.steps.degrade over dip.data.benchmarks.make_task_inputs) -> gt, observation,
(hr, mask) and a record."""

from _shim import files, logged

with logged(snakemake):
    from dip.pipeline import steps

    steps.degrade(snakemake.params.spec, files(snakemake.input), files(snakemake.output))
