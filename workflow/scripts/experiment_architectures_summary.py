"""Shim: gather the architecture comparison (one fit per network) into record.json + the GT and masked input
(dip.pipeline.run_experiment.summarise_architectures)."""

from _shim import files, logged

with logged(snakemake):
    from dip.pipeline.run_experiment import summarise_architectures

    out = snakemake.output
    summarise_architectures(snakemake.params.spec, files(snakemake.input), out.gt, out.input, out.record)
