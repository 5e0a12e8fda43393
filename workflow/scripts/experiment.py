"""Shim: run one of the paper's other experiments (dip.pipeline.run_experiment) -> its images and record.json.

params.name picks the experiment, params.spec is its `paper_experiments` config entry.
"""

from _shim import files, logged

with logged(snakemake):
    from dip.pipeline import steps
    from dip.pipeline.run_experiment import run_experiment

    steps.set_threads(snakemake.threads)
    params = snakemake.params
    run_experiment(params.name, params.spec, files(snakemake.input), snakemake.output.record)
