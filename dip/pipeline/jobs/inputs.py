"""Stage 1-2 jobs: the benchmark downloads and the degraded inputs (``workflow/rules/download.smk``, ``degrade.smk``)."""

from __future__ import annotations

from dip.pipeline import steps
from dip.pipeline.dag import Job


def degrade(job: Job, threads=None) -> dict:
    """``degrade_<task>``: one image's task inputs (gt, observation, hr, mask, inputs.json)."""
    return steps.degrade(job.params["spec"], dict(job.input), dict(job.output))


download = steps.download  # the download jobs are `run:` rules (see workflow/rules/download.smk): no job function
