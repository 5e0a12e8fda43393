"""Shim: an experiment's record.json -> its image grid and table (dip.pipeline.run_experiment.report_experiment)."""

from _shim import logged

with logged(snakemake):
    from dip.pipeline.run_experiment import report_experiment

    out = snakemake.output
    report_experiment(snakemake.input.record, out.png, out.pdf, out.md, out.csv)
