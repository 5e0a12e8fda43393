"""The GPU reproduction (``reproduce_gpu/run.sh``, BENCHMARKS.md "GPU reproduction") as phases over the
library, one module each, in the order ``reproduce_gpu/run.py``'s ``main`` runs them:

* :mod:`.common`   -- what every phase shares: the run (folder, log, budget, phase rows), child processes
* :mod:`.config`   -- the blocks (``--blocks``), config/paper.yaml cut down to them (:func:`dip.pipeline.workflow_config.load`)
* :mod:`.facts`    -- (a) machine, software and code facts; (b) the CUDA tests, beside the fits
* :mod:`.inputs`   -- the blocks' benchmark files checked against the manifest (--tiny: crops); degraded inputs,
                      the cheap baselines (bicubic, biharmonic, nlm)
* :mod:`.bench`    -- (d) the speed benchmark (bench_fit.py) and the paper profile's workload
* :mod:`.schedule` -- (c) the DIP fits as processes, block by block, each started only if it ends inside the budget
* :mod:`.report`   -- the scores, summary.md|json (a table per block)
* :mod:`.bundle`   -- what a lent GPU machine sends back, and unpacking it here

The jobs are the workflow's own (:func:`dip.pipeline.plan.build_plan`) and run through its job functions
(:mod:`dip.pipeline.jobs`), so the files are those the workflow writes, in its layout. No Snakemake here: a lent GPU
machine has none.
"""
