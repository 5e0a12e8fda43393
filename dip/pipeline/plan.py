"""Which files the workflow's extra experiments (``paper_experiments:`` in the config) read and write.

Pure Python over the config dict (no Snakemake import): ``workflow/rules/experiments.smk`` builds one
:class:`ExperimentPlan` and wires its paths into rules; the tests check it without Snakemake.

Layout under the results folder::

    experiments/<name>/record.json + <panel>.png     one job per experiment (architectures: one per network)
    figures/experiments/<name>.png|.pdf              the image grid (report)
    tables/experiments/<name>.md|.csv                its numbers (report)
    restored/<dataset>/<task>/<level>/dip/*_es.png   DIP + early stopping: the core fits' outputs at the detected step
    scores/extra/<dataset>/<task>_<level>_es.csv     their scores, rows ``dip_es`` for metrics.csv
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dip.data.benchmarks import level_label
from dip.errors import DipInputError
from dip.experiments import ARCHITECTURES, DATA_FILES, DEFAULT_ARCHITECTURES

__all__ = ["EXPERIMENT_NAMES", "PANELS", "ExperimentPlan", "build_plan"]

EXPERIMENT_NAMES = ("jpeg", "inpaint_text", "inpaint_hole", "architectures", "flash", "sr_prior", "preimage")

# The images each experiment job writes (besides record.json), in figure order.
PANELS = {
    "inpaint_text": ("gt", "input", "biharmonic", "dip"),
    "inpaint_hole": ("gt", "input", "biharmonic", "dip"),
    "flash": ("flash", "noflash", "joint_bilateral", "dip"),
    "sr_prior": ("hr", "lr", "bicubic", "no_prior", "tv_prior", "dip"),
    "preimage": ("target", "tv", "dip"),
}
DEFAULT_INPUTS = {
    "jpeg": ("snail",),
    "inpaint_text": ("kate", "kate_mask"),
    "inpaint_hole": ("vase", "vase_mask"),
    "architectures": ("library", "library_mask"),
    "flash": ("cave_flash", "cave_noflash"),
    "sr_prior": ("zebra_crop",),
    "preimage": ("building",),
}


@dataclass
class ExperimentPlan:
    results: str
    resources: str
    specs: dict[str, dict] = field(default_factory=dict)  # enabled experiment -> its config section (+ defaults)
    skipped: dict[str, str] = field(default_factory=dict)  # configured but not run -> why
    early_stopping: dict | None = None

    # --- paths ---
    def res(self, path: str) -> str:
        return f"{self.results}/{path}"

    def data(self, key: str) -> str:
        return f"{self.resources}/{DATA_FILES[key]}"

    @property
    def names(self) -> list[str]:
        return [n for n in EXPERIMENT_NAMES if n in self.specs]

    def inputs(self, name: str) -> dict[str, str]:
        """The data files an experiment reads: {role: path}."""
        spec = self.specs[name]
        if name == "preimage":
            return {key: self.data(key) for key in spec["images"]}
        keys = DEFAULT_INPUTS[name]
        return {key: self.data(key) for key in keys}

    def data_files(self) -> list[str]:
        """Every reference-repository file the enabled experiments need (relative to the download base URL)."""
        rels = set()
        for name in self.names:
            keys = self.specs[name]["images"] if name == "preimage" else DEFAULT_INPUTS[name]
            rels.update(DATA_FILES[k] for k in keys)
        return sorted(rels)

    def outputs(self, name: str) -> list[str]:
        """The images an experiment job writes (its record.json comes separately)."""
        folder = self.res(f"experiments/{name}")
        if name == "jpeg":
            return [f"{folder}/input.png"] + [f"{folder}/step{s}.png" for s in self.specs["jpeg"]["steps"]]
        if name == "preimage":
            return [f"{folder}/{image}_{p}.png" for image in self.specs["preimage"]["images"] for p in PANELS[name]]
        if name == "architectures":
            return [f"{folder}/gt.png", f"{folder}/input.png"]
        return [f"{folder}/{p}.png" for p in PANELS[name]]

    def record(self, name: str) -> str:
        return self.res(f"experiments/{name}/record.json")

    @property
    def architectures(self) -> list[str]:
        return list(self.specs.get("architectures", {}).get("names", []))

    def architecture_outputs(self) -> list[str]:
        return [self.res(f"experiments/architectures/net_{a}.png") for a in self.architectures] + [
            self.res(f"experiments/architectures/net_{a}.json") for a in self.architectures
        ]

    def report_files(self, name: str) -> dict[str, str]:
        return {
            "png": self.res(f"figures/experiments/{name}.png"),
            "pdf": self.res(f"figures/experiments/{name}.pdf"),
            "md": self.res(f"tables/experiments/{name}.md"),
            "csv": self.res(f"tables/experiments/{name}.csv"),
        }

    # --- early stopping on the core experiments ---
    def es_keys(self, experiments: list[dict], images_of) -> list[tuple[str, str, str, str, int]]:
        """(dataset, task, level label, image, seed) of every DIP + early-stop fit."""
        if not self.early_stopping:
            return []
        wanted = self.early_stopping.get("experiments")
        keys = []
        for exp in experiments:
            if wanted is not None and not any(
                w["dataset"] == exp["dataset"] and w["task"] == exp["task"] for w in wanted
            ):
                continue
            if not exp.get("run_dip", True):
                continue
            for level in exp["levels"]:
                for image in images_of(exp["dataset"]):
                    for seed in exp.get("seeds") or [0]:
                        keys.append((exp["dataset"], exp["task"], level_label(exp["task"], level), image, int(seed)))
        return keys

    def es_settings(self) -> dict | None:
        """The ES-WMV settings every core DIP fit records when early stopping is configured (None otherwise).

        Recording only (``stop=False``): the fit runs its fixed step count, so one run gives the "DIP" rows and, from
        the output kept at the detected step, the "DIP + early stop" rows.
        """
        if not self.early_stopping:
            return None
        return {k: self.early_stopping[k] for k in ("window", "patience", "check_every")} | {"stop": False}

    def es_levels(self, experiments: list[dict], images_of) -> list[tuple[str, str, str]]:
        return sorted({k[:3] for k in self.es_keys(experiments, images_of)})

    def es_score_files(self, experiments: list[dict], images_of) -> list[str]:
        """The CSVs of ``dip_es`` rows to add to metrics.csv."""
        return [self.res(f"scores/extra/{d}/{t}_{lv}_es.csv") for d, t, lv in self.es_levels(experiments, images_of)]

    def targets(self, experiments: list[dict], images_of) -> list[str]:
        out = []
        for name in self.names:
            out += [self.report_files(name)["png"], self.report_files(name)["md"]]
        if self.early_stopping and self.es_keys(experiments, images_of):
            out += self.es_score_files(experiments, images_of)
            out.append(self.res("tables/experiments/early_stopping.md"))
        return out


_DEFAULTS = {
    "jpeg": {"steps": [2399, 49999], "crop": None, "dip": {"preset": "jpeg"}},
    "inpaint_text": {"crop": None, "dip": {"preset": "inpaint-text"}},
    "inpaint_hole": {"crop": None, "dip": {"preset": "inpaint-hole"}},
    "architectures": {"crop": None, "names": list(DEFAULT_ARCHITECTURES), "width": None, "pad": None,
                      "settings": {}},
    "flash": {"crop": None, "dip": {"preset": "flash"}, "bilateral": {}},
    "sr_prior": {"crop": None, "factor": 4, "iterations": 2000, "tv_weight": 1e-7, "dip": {}},
    "preimage": {"images": ["building"], "weights": None, "small_cnn": False, "layer": "fc6", "size": 256,
                 "settings": {}},
}


def build_plan(section: dict | None, results_dir: str, resources_dir: str) -> ExperimentPlan:
    """The plan of the ``paper_experiments`` config section (None or {} = nothing to run).

    An experiment runs when its key is present (``jpeg: {}`` runs it with the paper's settings; ``jpeg: null`` turns
    off an entry of a config layered underneath); the natural
    pre-image runs only when ``weights`` names an AlexNet file (or ``small_cnn: true``, a random stand-in for tests).
    """
    section = {name: spec for name, spec in (section or {}).items() if spec is not None}
    plan = ExperimentPlan(results_dir.rstrip("/"), resources_dir.rstrip("/"))
    common = {k: section.pop(k) for k in ("device",) if k in section}
    es = section.pop("early_stopping", None)
    for name, spec in section.items():
        if name not in _DEFAULTS:
            raise DipInputError(f"paper_experiments: unknown experiment {name!r} (known: {', '.join(_DEFAULTS)})")
        if spec is None:
            continue
        merged = {**_DEFAULTS[name], **dict(spec), **common}
        if name == "architectures":
            unknown = [a for a in merged["names"] if a not in ARCHITECTURES]
            if unknown:
                raise DipInputError(
                    f"paper_experiments: architectures: unknown {unknown} (known: {', '.join(ARCHITECTURES)})"
                )
        if name == "jpeg" and not merged["steps"]:
            raise DipInputError("paper_experiments: jpeg: give at least one step to keep")
        if name == "preimage":
            unknown = [k for k in merged["images"] if k not in DATA_FILES]
            if unknown:
                raise DipInputError(f"paper_experiments: preimage: unknown image(s) {unknown}")
            if not merged["weights"] and not merged["small_cnn"]:
                plan.skipped[name] = (
                    "the natural pre-image needs AlexNet weights: set paper_experiments.preimage.weights to a "
                    "torchvision alexnet state-dict file (see dip.experiments.preimage.ALEXNET_HOWTO)"
                )
                continue
        plan.specs[name] = merged
    if es:
        plan.early_stopping = {"window": 100, "patience": 1000, "check_every": 50, "experiments": None,
                               **dict(es)}
    return plan
