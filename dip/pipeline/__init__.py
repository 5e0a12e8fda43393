"""The Snakemake workflow's library side: :mod:`~dip.pipeline.plan` (every job of the DAG, from the validated config;
torch-free, with :mod:`~dip.pipeline.packs` and :mod:`~dip.pipeline.paper_experiments`) and the jobs' bodies that the
script shims of ``workflow/scripts/`` call (:mod:`~dip.pipeline.steps`, :mod:`~dip.pipeline.run_experiment`)."""
