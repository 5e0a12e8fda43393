"""The paper's other experiments as the planner sees them (``paper_experiments:`` in the workflow config), torch-free:
their names, the reference-repository files each reads, the panels each writes and the paper's settings.

:mod:`dip.experiments.runners` runs them (and imports torch); both read the tables of :mod:`dip.experiments.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dip.experiments.catalog import ARCHITECTURES, DATA_FILES, EXPERIMENT_NAMES, EXPERIMENTS, PANELS
from dip.errors import DipInputError

__all__ = [
    "EXPERIMENT_NAMES",
    "PANELS",
    "INPUTS",
    "DATA_FILES",
    "ARCHITECTURE_NAMES",
    "ExperimentSection",
    "read_section",
]

# The data files each experiment reads (the pre-image: the images of its config entry).
INPUTS = {name: entry[2] for name, entry in EXPERIMENTS.items()}
ARCHITECTURE_NAMES = tuple(ARCHITECTURES)

# The paper's settings: an entry given as {} runs with these.
DEFAULTS = {
    "jpeg": {"steps": [2399, 49999], "crop": None, "dip": {"preset": "jpeg"}},
    "inpaint_text": {"crop": None, "dip": {"preset": "inpaint-text"}},
    "inpaint_hole": {"crop": None, "dip": {"preset": "inpaint-hole"}},
    "architectures": {"crop": None, "names": list(ARCHITECTURE_NAMES), "width": None, "pad": None, "settings": {}},
    "flash": {"crop": None, "dip": {"preset": "flash"}, "bilateral": {}},
    "sr_prior": {"crop": None, "factor": 4, "iterations": 2000, "tv_weight": 1e-7, "dip": {}},
    "preimage": {
        "images": ["building"],
        "weights": None,
        "small_cnn": False,
        "layer": "fc6",
        "size": 256,
        "settings": {},
    },
}
ES_DEFAULTS = {"window": 100, "patience": 1000, "check_every": 50, "experiments": None}


@dataclass
class ExperimentSection:
    """A checked ``paper_experiments`` section: the experiments to run, those left out and why, early stopping."""

    specs: dict[str, dict] = field(default_factory=dict)  # experiment -> its config entry over the defaults
    skipped: dict[str, str] = field(default_factory=dict)  # configured but not run -> why
    early_stopping: dict | None = None

    @property
    def names(self) -> list[str]:
        return [n for n in EXPERIMENT_NAMES if n in self.specs]

    def data_keys(self, name: str) -> tuple[str, ...]:
        """The data files experiment ``name`` reads (keys of :data:`DATA_FILES`)."""
        return tuple(self.specs[name]["images"]) if name == "preimage" else INPUTS[name]

    @property
    def architectures(self) -> list[str]:
        return list(self.specs.get("architectures", {}).get("names", []))

    def es_settings(self) -> dict | None:
        """The ES-WMV settings a core DIP fit records (``stop=False``: it runs its full step count), or None."""
        if not self.early_stopping:
            return None
        return {k: self.early_stopping[k] for k in ("window", "patience", "check_every")} | {"stop": False}

    def es_applies(self, dataset: str, task: str) -> bool:
        wanted = (self.early_stopping or {}).get("experiments")
        return wanted is None or any(w["dataset"] == dataset and w["task"] == task for w in wanted)


def read_section(section: dict | None) -> ExperimentSection:
    """Check the ``paper_experiments`` section (None or {} = nothing to run) and fill in the paper's settings.

    An experiment runs when its key is present (``jpeg: {}`` runs it with the paper's settings; ``jpeg: null`` turns
    off an entry of a config layered underneath); ``device`` applies to every experiment; the natural pre-image runs
    only when ``weights`` names an AlexNet file (or ``small_cnn: true``, a random stand-in for tests).
    """
    section = {name: spec for name, spec in (section or {}).items() if spec is not None}
    out = ExperimentSection()
    common = {k: section.pop(k) for k in ("device",) if k in section}
    es = section.pop("early_stopping", None)
    for name, spec in section.items():
        if name not in DEFAULTS:
            raise DipInputError(f"paper_experiments: unknown experiment {name!r} (known: {', '.join(DEFAULTS)})")
        merged = {**DEFAULTS[name], **dict(spec), **common}
        if name == "architectures":
            unknown = [a for a in merged["names"] if a not in ARCHITECTURE_NAMES]
            if unknown:
                raise DipInputError(
                    f"paper_experiments: architectures: unknown {unknown} (known: {', '.join(ARCHITECTURE_NAMES)})"
                )
        if name == "jpeg" and not merged["steps"]:
            raise DipInputError("paper_experiments: jpeg: give at least one step to keep")
        if name == "preimage":
            unknown = [k for k in merged["images"] if k not in DATA_FILES]
            if unknown:
                raise DipInputError(f"paper_experiments: preimage: unknown image(s) {unknown}")
            if not merged["weights"] and not merged["small_cnn"]:
                out.skipped[name] = (
                    "the natural pre-image needs AlexNet weights: set paper_experiments.preimage.weights to a "
                    "torchvision alexnet state-dict file (see dip.experiments.preimage.ALEXNET_HOWTO)"
                )
                continue
        out.specs[name] = merged
    if es:
        out.early_stopping = {**ES_DEFAULTS, **dict(es)}
    return out
