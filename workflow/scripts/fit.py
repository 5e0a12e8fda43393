"""Shim: one DIP fit (dip.pipeline.steps.fit) -> restored PNG, raw PNG, JSON record and, when early stopping is
recorded, the output at the detected step. Checkpoints to <png>.ckpt; a re-run of the job resumes from it."""

from _shim import files, logged

with logged(snakemake):
    from dip.pipeline import steps

    steps.fit(snakemake.params.spec, files(snakemake.input), files(snakemake.output), snakemake.threads)
