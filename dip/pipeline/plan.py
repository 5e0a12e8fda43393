"""The workflow's plan: every job of the Snakemake DAG, from the validated config (torch-free).

``workflow/rules/common.smk`` builds one :class:`Plan` from the config once the schema has filled in its defaults;
the rules with wildcards take their inputs, params and resources from :meth:`Plan.get` (the job with those
wildcards), the generated rules (downloads, the paper's other experiments, the early-stopping scores) loop over the
plan's jobs. Nothing here imports Snakemake or torch, so the tests check the plan of every shipped config directly:
:meth:`Plan.dag` lists the jobs a target needs, as ``snakemake -n`` does.

Built in one direction: a :class:`~dip.pipeline.request.Request` reads what the config asks for (checks, selection,
specs, resources, packs, paths), the per-stage planners (:mod:`dip.pipeline.planners`) book each stage's jobs into
it, and the Plan looks them up: :meth:`Plan.get`, :meth:`Plan.find`, :meth:`Plan.jobs`, :meth:`Plan.by_rule`,
:meth:`Plan.dag` and :meth:`Plan.counts`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from dip.data.manifest import Manifest
from dip.pipeline import planners
from dip.pipeline.dag import TARGETS, Job, runs_fits
from dip.pipeline.request import AUTO_MEM_MB_DEFAULT, Request

__all__ = ["Job", "Plan", "build_plan", "runs_fits", "TARGETS", "AUTO_MEM_MB_DEFAULT"]


def build_plan(config: Mapping[str, Any], manifest: Manifest | None = None) -> Plan:
    """The plan of a config (validated against the schema, defaults filled in). The manifest (``config["manifest"]``,
    relative to the working directory) is read once, and only when something is to be downloaded."""
    return Plan(config, manifest)


class Plan(Request):
    """Every job of the workflow for one config: the :class:`~dip.pipeline.request.Request` with each stage's jobs
    booked (:func:`dip.pipeline.planners.plan_jobs`), and the lookups the rules make."""

    def __init__(self, config: Mapping[str, Any], manifest: Manifest | None = None):
        super().__init__(config, manifest)
        planners.plan_jobs(self)

    def es_score(self, d: str, t: str, lv: str) -> Job:
        """The score_es job of one level (a generated rule: no wildcards)."""
        return self._index[(f"score_es_{d}_{t}_{lv}", ())]

    def jobs(self) -> list[Job]:
        """Every job of the plan: the jobs of all its targets (all, experiments, released)."""
        return list(self._jobs)

    def by_rule(self, rule: str) -> list[Job]:
        return [job for job in self._jobs if job.rule == rule]

    def downloads(self) -> list[Job]:
        """The download jobs: one per benchmark folder (``download_<benchmark>_<level>``) and the experiments' data."""
        return [job for job in self._jobs if job.rule.startswith("download_")]

    def dag(self, *targets: str) -> list[Job]:
        """The jobs that making ``targets`` (target rules or files; default: all) takes, as ``snakemake -n`` lists them
        when nothing exists yet."""
        producer = {path: job for job in self._jobs for path in job.outputs}
        rules = {job.rule: job for job in self._jobs if job.rule in TARGETS}
        todo = [rules[t] if t in rules else producer[t] for t in (targets or ("all",))]
        seen: dict[int, Job] = {}
        while todo:
            job = todo.pop()
            if id(job) in seen:
                continue
            seen[id(job)] = job
            todo += [producer[path] for path in job.inputs if path in producer]
        return list(seen.values())

    def counts(self, *targets: str) -> Counter:
        """Jobs per rule of :meth:`dag`: the "Job stats" of a dry run."""
        return Counter(job.rule for job in self.dag(*targets))
