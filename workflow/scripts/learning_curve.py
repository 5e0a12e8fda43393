"""Shim: one learning curve of Fig. 2 (dip.pipeline.steps.learning_curve) -> JSON history."""

from _shim import logged

with logged(snakemake):
    from dip.pipeline import steps

    image = snakemake.input.get("image")  # a benchmark's file; none for an embedded photo
    steps.learning_curve(snakemake.params.spec, image, snakemake.output[0], snakemake.threads)
