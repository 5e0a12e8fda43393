"""What a workflow config asks for (torch-free), and the book the per-stage planners write its jobs into.

A :class:`Request` reads the validated config: it checks it beyond the schema first
(:mod:`dip.pipeline.config_checks`: a clear :class:`~dip.errors.DipInputError` for each mistake), keeps what the
selection (``only:``/``select:``, :mod:`dip.pipeline.selection`) keeps, and works out the fits' specs, resources and
packs, every path where the results tree's :class:`~dip.pipeline.layout.Layout` puts it (``paths``), and the files a
table and the targets read. :meth:`Request.add` books a :class:`Job`. The planners (:mod:`dip.pipeline.planners`)
read a Request and book each stage's jobs; the :class:`~dip.pipeline.plan.Plan` (one Request, planned) answers the
rules. The order of the imports is one way: request <- planners <- plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from dip.data.benchmarks import BENCHMARKS, Benchmark, degradation, embedded_channels
from dip.data.manifest import DEFAULT_MANIFEST, Manifest
from dip.errors import DipInputError
from dip.fit.memory_model import fit_mem_mb
from dip.pipeline import config_checks
from dip.pipeline.dag import Job
from dip.pipeline.layout import Layout
from dip.pipeline.packs import plan_packs
from dip.pipeline.paper_experiments import DATA_FILES, read_section
from dip.pipeline.selection import Selection
from dip.presets import preset_net
from dip.tasks import LEARNING_CURVE_KINDS, Level, default_preset, level_label

__all__ = ["Request", "AUTO_MEM_MB_DEFAULT"]

# fit_resources mem_mb: "auto": each fit (and learning curve) job asks for dip.fit.memory_model's estimate for
# its image; jobs whose image size is not known before downloading it (and the experiment jobs) ask for this.
AUTO_MEM_MB_DEFAULT = 16000


def _off(mapping: Mapping | None) -> dict:
    """A mapping without its null entries: a layered config turns an entry of the one beneath off with ``null``."""
    return {k: v for k, v in (mapping or {}).items() if v is not None}


class Request:
    """What one config asks for, and the book of the jobs planned for it. See the module docstring."""

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
        config_checks.check_config(self.datasets, self.all_experiments, self.released, self.learning)
        # every level the config names, made once: (task, label) -> Level (label and value together)
        self.levels: dict[tuple[str, str], Level] = {}
        for task, value in self._config_levels():
            level = Level.of(task, value)
            self.levels.setdefault((task, level.label), level)
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
        config_checks.check_manifest(self.manifest, [*self.download_groups.values(), self.experiment_data])
        self.packs = self._packs()
        self._jobs: list[Job] = []
        self._index: dict[tuple, Job] = {}

    # --- the config's datasets (dip.pipeline.config_checks: each lookup checks what it looks up) -------------------

    def dataset(self, name: str) -> dict:
        return config_checks.dataset(self.datasets, name)

    def benchmark(self, dataset: str) -> Benchmark | None:
        """The :class:`~dip.data.benchmarks.Benchmark` of a benchmark dataset, None for embedded photos."""
        return config_checks.benchmark(self.datasets, dataset)

    def images(self, dataset: str) -> list[str]:
        """The images of a dataset: its `images`, or every image of its benchmark."""
        return config_checks.images(self.datasets, dataset)

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

    def _config_levels(self):
        """(task, level value) of every experiment's, released output's and learning curve's level."""
        for exp in self.all_experiments:
            yield from ((exp["task"], lv) for lv in exp["levels"])
        for name, levels in self.released.items():
            yield from ((BENCHMARKS[name].task, lv) for lv in levels)

    def level(self, task: str, label: str) -> Level:
        """The :class:`~dip.tasks.Level` of ``task`` labelled ``label``, as the config made it."""
        return self.levels[(task, label)]

    def exp_levels(self, exp: Mapping) -> list[Level]:
        """The levels of an experiment, in the config's order."""
        return [self.levels[(exp["task"], level_label(exp["task"], lv))] for lv in exp["levels"]]

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
        size = self.manifest.sizes.get(bench.gt_file(self.level(task, label).value, image))
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
        value = self.level(t, lv).value
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

    def degradation(self, d: str, t: str, lv: str, images) -> dict[str, dict]:
        """``{image: what its fits' inputs are made by}``: the planned degrade job's spec and the ground truth's sha256
        (the manifest's; None for an embedded photo) -- :func:`dip.data.benchmarks.degradation`."""
        bench, out = self.benchmark(d), {}
        for image in images:
            spec = self.get(f"degrade_{t}", {"dataset": d, "level": lv, "image": image}).params["spec"]
            gt = self.manifest.checksums.get(bench.gt_file(self.level(t, lv).value, image)) if bench else None
            out[image] = degradation(spec, gt)
        return out

    def fit_job_resources(self, spec: Mapping, size) -> dict:
        """The fit resources of one fit of ``spec`` (preset, width, settings) on an image of ``size`` (width, height,
        channels; None if unknown): with mem_mb "auto" its mem_mb is the model's (unknown size: the default)."""
        if not self.auto_mem or size is None:
            return dict(self.fit_resources)
        w, h, c = size
        net = preset_net(spec.get("preset") or "denoise")
        mem = fit_mem_mb(net, spec.get("width"), h, w, c, settings=spec.get("settings"))
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

    # --- the files a table and the targets read ----------------------------------------------------------------------

    def table_scores(self, d: str, t: str, lv: str) -> list[str]:
        """The score files of one table (dataset, task, level): ours, DIP + early stop, the released outputs. A table,
        its figures and its report section read these, not metrics.csv, so that one table needs only its own fits."""
        out = []
        if (d, t, lv) in self.experiment_keys():
            out.append(self.paths.scores(d, t, lv))
        if (d, t, lv) in self.es_levels():
            out.append(self.paths.es_scores(d, t, lv))
        if (d, t, lv) in self.released_keys():
            out.append(self.paths.scores(d, t, lv, "released"))
        return out

    def experiment_targets(self) -> list[str]:
        """What `snakemake experiments` makes: each experiment's figure and table, the early-stopping rows. (The
        early-stopping table is the default target's: it shows the tables' DIP rows, whose scores need the baselines
        of their levels scored too.)"""
        out = []
        for name in self.experiment_names:
            out += [self.experiment_report(name)["png"], self.experiment_report(name)["md"]]
        return out + self.es_scores()

    def final_targets(self) -> list[str]:
        """What the default target makes: metrics.csv, the tables, the figures, the released check, the experiments."""
        figures = []
        for d, t, lv in self.experiment_keys():
            figures += [self.paths.figure(self.paths.figure_key(kind, d, t, lv))["png"] for kind in ("grid", "psnr")]
            if t == "denoise" and self.experiments[(d, t)].get("run_dip", True):
                figures.append(self.paths.figure(self.paths.figure_key("psnr_curves", d, t, lv))["png"])
        for d, t, lv in self.released_keys():
            if (d, t) not in self.experiments:
                figures.append(self.paths.figure(self.paths.figure_key("psnr", d, t, lv))["png"])
        if self.learning:
            figures.append(self.paths.figure("learning_curves")["png"])
        tables = sorted(set(self.experiment_keys()) | set(self.released_keys()))
        targets = [self.paths.metrics]
        targets += [path for d, t, lv in tables for path in self.paths.table(self.paths.level_key(d, t, lv)).values()]
        targets += sorted(set(figures))
        if self.released:
            targets += list(self.paths.released_check().values())
        if self.es_keys:
            targets.append(self.paths.early_stopping_table()["md"])
        return targets + self.experiment_targets()

    # --- planning and looking jobs up ------------------------------------------------------------------------------

    def add(self, rule: str, output, input=None, params=None, wildcards=None, resources=None, listed=True,
            made_from=None) -> Job:  # fmt: skip
        """Plan a job (what the stage planners, :mod:`dip.pipeline.planners`, call). ``listed=False``: a job that may
        be looked up but is not run (see :func:`~dip.pipeline.planners.plan_fits`)."""
        job = Job(rule, output, input or {}, params or {}, wildcards or {}, resources or {}, made_from or {})
        self._index[(rule, tuple(sorted(job.wildcards.items())))] = job
        if listed:
            self._jobs.append(job)
        return job

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
