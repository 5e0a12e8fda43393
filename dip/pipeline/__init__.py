"""The Snakemake workflow's library side: :mod:`~dip.pipeline.plan` (every job of the DAG, from the validated config;
torch-free, with :mod:`~dip.pipeline.planners` for each stage's jobs, :mod:`~dip.pipeline.config_checks` for the config
checks, :mod:`~dip.pipeline.layout` for every path of the results tree, :mod:`~dip.pipeline.selection` for subsets,
:mod:`~dip.pipeline.pins` for what re-runs a fit, :mod:`~dip.pipeline.packs` and
:mod:`~dip.pipeline.paper_experiments`) and the jobs' bodies, one module per stage in
:mod:`~dip.pipeline.jobs` (with :mod:`~dip.pipeline.steps` and :mod:`~dip.pipeline.run_experiment` beneath)."""
