"""Shim: inpaint the library image with one network of the architecture comparison (Fig. 8), via
dip.pipeline.run_experiment.run_architecture -> restored PNG + JSON record (parameters, PSNR, PSNR in the hole)."""

from _shim import files, logged

with logged(snakemake):
    from dip.pipeline import steps
    from dip.pipeline.run_experiment import run_architecture

    steps.set_threads(snakemake.threads)
    out = snakemake.output
    run_architecture(snakemake.wildcards.arch, snakemake.params.spec, files(snakemake.input), out.png, out.json)
