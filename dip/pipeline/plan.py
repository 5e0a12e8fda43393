"""The workflow's plan: every job of the Snakemake DAG, from the validated config (torch-free).

``workflow/rules/common.smk`` builds one :class:`Plan` from the config once the schema has filled in its defaults;
the rules with wildcards take their inputs, params and resources from :meth:`Plan.get` (the job with those
wildcards), the generated rules (downloads, the paper's other experiments, the early-stopping scores) loop over the
plan's jobs. Nothing here imports Snakemake or torch, so the tests check the plan of every shipped config directly:
:meth:`Plan.dag` lists the jobs a target needs, as ``snakemake -n`` does.

A :class:`Plan` reads what the config asks for: it checks the config beyond the schema first
(:mod:`dip.pipeline.checks`: a clear :class:`~dip.errors.DipInputError` for each mistake), keeps what the selection
(``only:``/``select:``, :mod:`dip.pipeline.selection`) keeps, and works out the fits' specs, resources and packs. The
per-stage planners (:mod:`dip.pipeline.planners`) then add each stage's jobs, with every path where the results
tree's :class:`~dip.pipeline.layout.Layout` puts it (``Plan.paths``); :meth:`Plan.get`, :meth:`Plan.find`,
:meth:`Plan.jobs`, :meth:`Plan.by_rule`, :meth:`Plan.dag` and :meth:`Plan.counts` look them up.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from dip.data.benchmarks import BENCHMARKS, Benchmark, embedded_channels
from dip.data.manifest import DEFAULT_MANIFEST, Manifest
from dip.errors import DipInputError
from dip.pipeline import checks, planners
from dip.pipeline.layout import Layout
from dip.pipeline.memory_model import fit_mem_mb
from dip.pipeline.packs import plan_packs
from dip.pipeline.paper_experiments import DATA_FILES, read_section
from dip.pipeline.selection import Selection
from dip.tasks import LEARNING_CURVE_KINDS, default_preset, level_label, parse_level

__all__ = ["Job", "Plan", "build_plan", "runs_fits", "TARGETS"]

TARGETS = ("all", "experiments", "released")  # the workflow's target rules
# The rules whose jobs fit (DIP, or pixels for the no-prior / TV-prior baselines): planned with fit or baseline
# resources, and their logs get progress lines. The generated experiment_<name> rules fit too (see runs_fits).
FITTING_RULES = ("fit_dip", "fit_dip_pack", "learning_curve", "baseline", "experiment_architecture")
# fit_resources mem_mb: "auto": each fit (and learning curve) job asks for dip.pipeline.memory_model's estimate for
# its image; jobs whose image size is not known before downloading it (and the experiment jobs) ask for this.
AUTO_MEM_MB_DEFAULT = 16000


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
    """

    rule: str
    output: Mapping[str, Any] | list[str]
    input: Mapping[str, Any] | list[str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    wildcards: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, int] = field(default_factory=dict)

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


def build_plan(config: Mapping[str, Any], manifest: Manifest | None = None) -> Plan:
    """The plan of a config (validated against the schema, defaults filled in). The manifest (``config["manifest"]``,
    relative to the working directory) is read once, and only when something is to be downloaded."""
    return Plan(config, manifest)


def _off(mapping: Mapping | None) -> dict:
    """A mapping without its null entries: a layered config turns an entry of the one beneath off with ``null``."""
    return {k: v for k, v in (mapping or {}).items() if v is not None}


class Plan:
    """Every job of the workflow for one config. See the module docstring."""

    def __init__(self, config: Mapping[str, Any], manifest: Manifest | None = None):
        self.config = config
        # every path of the results tree and the downloads
        self.paths = Layout(config.get("results_dir", "results"), config.get("resources_dir", "resources"))
        self.results, self.resources = self.paths.results, self.paths.resources
        self.datasets: dict[str, dict] = _off(config.get("datasets"))
        # a dataset turned off in a layer (`datasets: {set14: null}`) takes its experiments and released outputs along
        self.switched_off = {k for k, v in (config.get("datasets") or {}).items() if v is None}
        self.all_experiments = [e for e in config["experiments"] if e["dataset"] not in self.switched_off]
        self.released: dict[str, list] = {
            name: list(levels) for name, levels in _off(config.get("released")).items() if name not in self.switched_off
        }
        # a part of the config to run (only: / select:): what it leaves out is not planned at all
        self.select = Selection.from_config(config)
        extras = [k for k in _off(config.get("paper_experiments")) if k != "early_stopping"]
        self.select.check_extras(extras + ["learning_curves"] * bool(config.get("learning_curves")))
        self.learning: dict | None = (config.get("learning_curves") or None) if self.select.keeps_extra(
            "learning_curves") else None  # fmt: skip
        sections = {k: v for k, v in _off(config.get("paper_experiments")).items()
                    if k == "early_stopping" or self.select.keeps_extra(k)}  # fmt: skip
        self.section = read_section(sections)
        self.fit_resources = {"threads": 1, "mem_mb": 2000, "runtime": 60, "gpu": 0} | _off(config.get("fit_resources"))
        # mem_mb "auto": per job (see fit_job_resources); FIT_RES["mem_mb"] stays an integer, the stated default
        self.auto_mem = self.fit_resources["mem_mb"] == "auto"
        if self.auto_mem:
            self.fit_resources["mem_mb"] = AUTO_MEM_MB_DEFAULT
        self.baseline_resources = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0}
        self.baseline_resources |= _off(config.get("baseline_resources"))
        checks.check_config(self.datasets, self.all_experiments, self.released, self.learning)
        self.exps = self._selected_experiments()
        self.experiments = {(e["dataset"], e["task"]): e for e in self.exps}
        self.es_keys = self._es_keys()
        # Recorded by every core DIP fit when early stopping is configured: no second fit per image.
        self.early_stopping = self.section.es_settings() if self.es_keys else None
        self.download_groups = self._download_groups()
        needs_manifest = bool(self.download_groups or self.experiment_data)
        self.manifest = (
            (manifest or Manifest.read(config.get("manifest", DEFAULT_MANIFEST))) if needs_manifest else None
        )
        checks.check_manifest(self.manifest, [*self.download_groups.values(), self.experiment_data])
        self.packs = self._packs()
        self._jobs: list[Job] = []
        self._index: dict[tuple, Job] = {}
        planners.plan_jobs(self)

    # --- the config's datasets (dip.pipeline.checks: each lookup checks what it looks up) --------------------------

    def dataset(self, name: str) -> dict:
        return checks.dataset(self.datasets, name)

    def benchmark(self, dataset: str) -> Benchmark | None:
        """The :class:`~dip.data.benchmarks.Benchmark` of a benchmark dataset, None for embedded photos."""
        return checks.benchmark(self.datasets, dataset)

    def images(self, dataset: str) -> list[str]:
        """The images of a dataset: its `images`, or every image of its benchmark."""
        return checks.images(self.datasets, dataset)

    def _selected_experiments(self) -> list[dict]:
        """The config's experiments with only the levels the selection keeps (none: the experiment is left out)."""
        defined = {}
        for exp in self.all_experiments:
            d, t = exp["dataset"], exp["task"]
            defined[(d, t)] = {"levels": [level_label(t, lv) for lv in exp["levels"]], "images": self.images(d),
                               "seeds": self.seeds(exp)}  # fmt: skip
        self.select.check(defined)
        if not self.select.active:
            return list(self.all_experiments)
        kept = []
        for exp in self.all_experiments:
            d, t = exp["dataset"], exp["task"]
            levels = [lv for lv in exp["levels"] if self.level_images(d, t, level_label(t, lv))]
            if levels:
                kept.append({**exp, "levels": levels})
        kept_released = {}
        for name, levels in self.released.items():
            task = BENCHMARKS[name].task
            kept_released[name] = [lv for lv in levels if self.select.keeps(name, task, level_label(task, lv))]
        self.released = {k: v for k, v in kept_released.items() if v}
        if not kept and not self.learning and not self.section.names:
            runs = ", ".join(f"{d}/{t}/{lv}" for (d, t), spec in defined.items() for lv in spec["levels"])
            raise DipInputError(f"config: {self.select.describe()} keeps no fit of the config (it runs {runs})")
        return kept

    def level_images(self, d: str, t: str, lv: str) -> list[str]:
        """The images of one (dataset, task, level label) that the selection keeps."""
        return [i for i in self.images(d) if self.select.keeps(d, t, lv, i)]

    # --- what the config asks for ----------------------------------------------------------------------------------

    @staticmethod
    def seeds(exp: Mapping) -> list[int]:
        return list(exp.get("seeds") or [0])

    def methods(self, exp: Mapping, lv: str | None = None, image: str | None = None) -> list[tuple[str, int]]:
        """(method, seed) pairs of an experiment: DIP for every seed, baselines with the first seed; with a level
        label and an image, those the selection keeps."""
        seeds = self.seeds(exp)
        pairs = [("dip", s) for s in seeds] if exp.get("run_dip", True) else []
        pairs += [(b, seeds[0]) for b in exp.get("baselines", [])]
        if image is None:
            return pairs
        return [(m, s) for m, s in pairs if self.select.keeps(exp["dataset"], exp["task"], lv, image, s)]

    def experiment_keys(self) -> list[tuple[str, str, str]]:
        """(dataset, task, level label) of every experiment level."""
        return [
            (e["dataset"], e["task"], level_label(e["task"], lv))
            for e in self.exps
            for lv in e["levels"]
        ]

    def released_keys(self) -> list[tuple[str, str, str]]:
        return [
            (name, BENCHMARKS[name].task, level_label(BENCHMARKS[name].task, lv))
            for name, levels in self.released.items()
            for lv in levels
        ]

    def _es_keys(self) -> list[tuple[str, str, str, str, int]]:
        """(dataset, task, level label, image, seed) of every DIP + early-stop fit (a core fit that records ES)."""
        if not self.section.early_stopping:
            return []
        return [
            (exp["dataset"], exp["task"], level_label(exp["task"], level), image, int(seed))
            for exp in self.exps
            if exp.get("run_dip", True) and self.section.es_applies(exp["dataset"], exp["task"])
            for level in exp["levels"]
            for image in self.level_images(exp["dataset"], exp["task"], level_label(exp["task"], level))
            for method, seed in self.methods(exp, level_label(exp["task"], level), image)
            if method == "dip"
        ]

    def es_levels(self) -> list[tuple[str, str, str]]:
        return sorted({k[:3] for k in self.es_keys})

    def _download_groups(self) -> dict[str, list[str]]:
        """One download job per benchmark folder the config needs: ``{<benchmark>_<level>: [relative paths]}``."""
        needed = {}
        for exp in self.exps:
            bench = self.benchmark(exp["dataset"])
            if bench is not None:
                for lv in exp["levels"]:
                    needed[(bench.name, level_label(bench.task, lv))] = (bench, lv)
        if self.learning:
            bench = self.benchmark(self.learning["dataset"])
            if bench is not None:
                needed[(bench.name, level_label(bench.task, bench.levels[0]))] = (bench, bench.levels[0])
        for name, levels in self.released.items():
            for lv in levels:
                needed[(name, level_label(BENCHMARKS[name].task, lv))] = (BENCHMARKS[name], lv)
        return {f"{name}_{label}": bench.all_files(lv) for (name, label), (bench, lv) in sorted(needed.items())}

    @property
    def experiment_names(self) -> list[str]:
        """The paper's other experiments to run, in the paper's order."""
        return self.section.names

    @property
    def experiment_data(self) -> list[str]:
        """Every reference-repository file the experiments read (relative to the download base URL)."""
        return sorted({DATA_FILES[k] for name in self.experiment_names for k in self.section.data_keys(name)})

    # --- fit packs (pack_fits > 1) ---------------------------------------------------------------------------------
    # Fits of one (dataset, task, level) whose images have one size run together in one job and one process
    # (fit_dip_pack), written to restored/.../dip_packs/packN/; unpack_fit then copies each fit's files to where a lone
    # fit writes them, so nothing downstream knows the difference. Sizes come from the config (embedded photos) or
    # the manifest's size column (benchmarks): the DAG is known before any download.

    def source_size(self, dataset: str, task: str, label: str, image: str):
        """(width, height, channels) of the image a fit restores, None if not known before downloading it."""
        bench = self.benchmark(dataset)
        if bench is None:  # scikit-image photos, resized to squares: colour or grey by name
            size = self.dataset(dataset).get("size")
            return (size, size, embedded_channels(image)) if size else None
        size = self.manifest.sizes.get(bench.gt_file(parse_level(task, label), image))
        # SR benchmarks are read as RGB whatever the file holds (a grey GT becomes 3 channels)
        return (*size[:2], 3) if size is not None and bench.read_mode == "rgb" else size

    def _packs(self) -> dict[tuple[str, str, str, str], list[tuple[str, int]]]:
        """``{(dataset, task, level label, pack name): [(image, seed), ...]}`` for every pack of two or more fits."""
        max_fits = int(self.config.get("pack_fits", 1))
        packs = {}
        if max_fits < 2:
            return packs
        for exp in self.exps:
            if not exp.get("run_dip", True):
                continue
            d, t = exp["dataset"], exp["task"]
            for lv in exp["levels"]:
                label = level_label(t, lv)
                fits = [
                    ((i, s), self.source_size(d, t, label, i))
                    for i in self.level_images(d, t, label)
                    for m, s in self.methods(exp, label, i)
                    if m == "dip"
                ]
                for n, members in enumerate(plan_packs(fits, max_fits)):
                    packs[(d, t, label, f"pack{n}")] = members
        return packs

    @cached_property
    def pack_of(self) -> dict[tuple, str]:
        return {(d, t, lv, i, s): name for (d, t, lv, name), members in self.packs.items() for i, s in members}

    def pack_folder(self, wildcards: Mapping[str, str]) -> str:
        """The pack folder a fit was fitted in. A lone fit gets ``dip_packs/none``, which nothing makes (a pack is
        packN), so Snakemake discards its unpack_fit job and fit_dip, next in the ruleorder, makes the fit."""
        w = dict(wildcards.items())
        name = self.pack_of.get((w["dataset"], w["task"], w["level"], w["image"], int(w["seed"])), "none")
        return self.paths.pack(w["dataset"], w["task"], w["level"], name)

    # --- specs (params) --------------------------------------------------------------------------------------------

    @staticmethod
    def preset(spec: Mapping | None, task: str, level: float) -> str:
        """The preset of a fit: the config's (a name, or a mapping level -> name), else the task table's default."""
        preset = (spec or {}).get("preset")
        if isinstance(preset, Mapping):
            for key, name in preset.items():
                if math.isclose(float(key), float(level)):
                    return name
            return default_preset(task, level)
        return preset or default_preset(task, level)

    def fit_spec(self, d: str, t: str, lv: str, seed: int | None) -> dict:
        """The DIP settings of a fit (preset, width, FitConfig overrides, ES-WMV to record, seed): its params."""
        spec = self.experiments[(d, t)].get("dip") or {}
        value = parse_level(t, lv)
        out = {
            "task": t,
            "level": value,
            "preset": self.preset(spec, t, value),
            "width": spec.get("width"),
            "settings": dict(spec.get("settings") or {}),
        }
        if self.early_stopping:
            out["early_stopping"] = dict(self.early_stopping)
        if seed is not None:
            out["seed"] = int(seed)
        return out

    def fit_job_resources(self, spec: Mapping, size) -> dict:
        """The fit resources of one fit of ``spec`` (preset, width, settings) on an image of ``size`` (width, height,
        channels; None if unknown): with mem_mb "auto" its mem_mb is the model's (unknown size: the default)."""
        if not self.auto_mem or size is None:
            return dict(self.fit_resources)
        w, h, c = size
        mem = fit_mem_mb(spec.get("preset") or "denoise", spec.get("width"), h, w, c, settings=spec.get("settings"))
        return self.fit_resources | {"mem_mb": mem}

    # --- the files the rules declare, beside the planned jobs ------------------------------------------------------

    def fit_outputs(self, d=None, t=None, lv=None, image=None, seed=None) -> dict[str, str]:
        """The files of one DIP fit (the rule's patterns by default): :meth:`Layout.fit_outputs
        <dip.pipeline.layout.Layout.fit_outputs>`, with the output at the detected step when early stopping is
        recorded."""
        given = {k: v for k, v in dict(d=d, t=t, lv=lv, image=image, seed=seed).items() if v is not None}
        return self.paths.fit_outputs(**given, early_stopping=bool(self.early_stopping))

    def released_scores(self) -> list[str]:
        return [self.paths.scores(d, t, lv, "released") for d, t, lv in self.released_keys()]

    def es_scores(self) -> list[str]:
        """The CSVs of ``dip_es`` rows (DIP + early stop) to add to metrics.csv."""
        return [self.paths.es_scores(d, t, lv) for d, t, lv in self.es_levels()]

    @property
    def learning_kinds(self) -> tuple[str, ...]:
        """What the networks of Fig. 2 fit (:data:`dip.tasks.LEARNING_CURVE_KINDS` unless the config names some)."""
        return tuple(self.learning.get("kinds") or LEARNING_CURVE_KINDS)

    def learning_curve_files(self) -> list[str]:
        if not self.learning:
            return []
        return [self.paths.curve(self.learning["dataset"], self.learning["image"], k) for k in self.learning_kinds]

    def experiment_inputs(self, name: str) -> dict[str, str]:
        """The data files an experiment reads: ``{key: path}``."""
        return {key: self.paths.resource(DATA_FILES[key]) for key in self.section.data_keys(name)}

    def experiment_outputs(self, name: str) -> list[str]:
        """The images an experiment job writes (its record.json comes separately)."""
        return self.paths.experiment_outputs(name, self.section.specs[name])

    def experiment_record(self, name: str) -> str:
        return self.paths.experiment_record(name)

    def experiment_spec(self, name: str) -> dict:
        return self.section.specs[name]

    def experiment_report(self, name: str) -> dict[str, str]:
        return self.paths.experiment_report(name)

    @property
    def architectures(self) -> list[str]:
        return self.section.architectures

    def architecture_outputs(self) -> dict[str, list[str]]:
        nets = [self.paths.architecture(a) for a in self.architectures]
        return {"pngs": [net["png"] for net in nets], "jsons": [net["json"] for net in nets]}

    def table_scores(self, d: str, t: str, lv: str) -> list[str]:
        """The score files a table reads: :func:`dip.pipeline.planners.table_scores`."""
        return planners.table_scores(self, d, t, lv)

    def experiment_targets(self) -> list[str]:
        """What `snakemake experiments` makes: :func:`dip.pipeline.planners.experiment_targets`."""
        return planners.experiment_targets(self)

    def final_targets(self) -> list[str]:
        """What the default target makes: :func:`dip.pipeline.planners.final_targets`."""
        return planners.final_targets(self)

    # --- planning and looking jobs up ------------------------------------------------------------------------------

    def add(self, rule: str, output, input=None, params=None, wildcards=None, resources=None, listed=True) -> Job:
        """Plan a job (what the stage planners, :mod:`dip.pipeline.planners`, call). ``listed=False``: a job that may
        be looked up but is not run (see :func:`~dip.pipeline.planners.plan_fits`)."""
        job = Job(rule, output, input or {}, params or {}, wildcards or {}, resources or {})
        self._index[(rule, tuple(sorted(job.wildcards.items())))] = job
        if listed:
            self._jobs.append(job)
        return job

    def es_score(self, d: str, t: str, lv: str) -> Job:
        """The score_es job of one level (a generated rule: no wildcards)."""
        return self._index[(f"score_es_{d}_{t}_{lv}", ())]

    @property
    def dataset_names(self) -> list[str]:
        """Every dataset name a path can hold (the `dataset` wildcard's values)."""
        return list(dict.fromkeys([*self.datasets, *self.released]))

    def get(self, rule: str, wildcards: Mapping[str, str] = None) -> Job:
        """The job of ``rule`` with these wildcards (a Snakemake ``wildcards`` object or a dict)."""
        job = self.find(rule, wildcards)
        if job is None:
            w = dict(wildcards.items()) if wildcards is not None else {}
            which = ", ".join(f"{k}={v}" for k, v in w.items())
            raise DipInputError(f"this configuration plans no {rule} job with {which or 'no wildcards'}")
        return job

    def find(self, rule: str, wildcards: Mapping[str, str] = None) -> Job | None:
        """:meth:`get`, or None when there is no such job."""
        w = dict(wildcards.items()) if wildcards is not None else {}
        return self._index.get((rule, tuple(sorted((k, str(v)) for k, v in w.items()))))

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
