"""One job of the workflow's DAG (:class:`Job`: rule, files, params, wildcards, resources), the target rules, and
which rules fit: what the plan (:mod:`dip.pipeline.plan`), its planners and the job bodies (:mod:`dip.pipeline.jobs`)
share, torch-free and importing nothing of the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Job", "TARGETS", "FITTING_RULES", "runs_fits"]

TARGETS = ("all", "experiments", "released")  # the workflow's target rules
# The rules whose jobs fit (DIP, or pixels for the no-prior / TV-prior baselines): planned with fit or baseline
# resources, and their logs get progress lines. The generated experiment_<name> rules fit too (see runs_fits).
FITTING_RULES = ("fit_dip", "fit_dip_pack", "learning_curve", "baseline", "experiment_architecture")


def runs_fits(rule: str) -> bool:
    """Whether a job of ``rule`` runs fits: what the workflow's shims turn progress lines on for. Known from the rule's
    name alone, because a job does not rebuild the plan (a test checks it against the plan's jobs)."""
    if rule in FITTING_RULES:
        return True
    return rule.startswith("experiment_") and not rule.endswith("_report") and rule != "experiment_architectures"


@dataclass(frozen=True)
class Job:
    """One job of the DAG: its rule, wildcards (empty for a generated rule), files and params.

    ``input``/``output`` are what the rule declares: ``{name: path or [paths]}`` (named) or ``[paths]``.
    ``made_from`` (fits and baselines): ``{image: the degradation its inputs are made by}``
    (:func:`dip.data.benchmarks.degradation`), for :mod:`dip.pipeline.pins` only: not in :meth:`to_json`, so that a
    working copy's Snakemake records (its params trigger) see no fit changed for it.
    """

    rule: str
    output: Mapping[str, Any] | list[str]
    input: Mapping[str, Any] | list[str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    wildcards: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, int] = field(default_factory=dict)
    made_from: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def _flat(files) -> list[str]:
        values = files.values() if isinstance(files, Mapping) else files
        out = []
        for value in values:
            out.extend([value] if isinstance(value, str) else value)
        return out

    @property
    def inputs(self) -> list[str]:
        """Every input file, flattened."""
        return self._flat(self.input)

    @property
    def outputs(self) -> list[str]:
        """Every output file (or folder), flattened."""
        return self._flat(self.output)

    def to_json(self) -> dict:
        """What a job's body needs (:mod:`dip.pipeline.jobs`): its files by role, params and wildcards."""
        return {
            "rule": self.rule,
            "input": self.input,
            "output": self.output,
            "params": self.params,
            "wildcards": self.wildcards,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        return cls(
            data["rule"], data["output"], data.get("input") or {}, data.get("params") or {}, data.get("wildcards") or {}
        )
