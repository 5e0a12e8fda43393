"""The workflow's jobs: one library function per rule, in one module per stage, as ``workflow/rules/*.smk`` are.

Every rule runs ``python -m dip.pipeline.jobs --job <json> [--threads N] [--log FILE]`` (``shell:``, not
``script:``: Snakemake re-runs a script job whenever its script file is newer than its outputs, which in a fresh clone
is a coin toss). ``--job`` is the planned :class:`~dip.pipeline.plan.Job` (its files by role, params, wildcards), so a
job never rebuilds the plan; :func:`run` finds the rule's function in :data:`RULES` and runs it with its output in the
log (:func:`dip.pipeline.jobs.runner.logged`).

Stages: :mod:`~dip.pipeline.jobs.inputs` (download, degrade), :mod:`~dip.pipeline.jobs.fits` (DIP fits, packs,
baselines, learning curves), :mod:`~dip.pipeline.jobs.scores` (scores, metrics.csv, the released outputs),
:mod:`~dip.pipeline.jobs.reports` (tables, figures), :mod:`~dip.pipeline.jobs.experiments` (the paper's other
experiments).
"""

from __future__ import annotations

from dip.pipeline.jobs.runner import find, run

__all__ = ["find", "run"]
