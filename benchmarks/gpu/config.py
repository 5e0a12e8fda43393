"""The run's config: config/config.yaml + config/paper.yaml, as ``snakemake --configfile config/paper.yaml`` sees
them (:func:`dip.pipeline.config.load`, the loader the workflow's tests use), with one more layer that cuts it down
to what this run fits; and the layer that lets the workflow take the run's results as its own."""

from __future__ import annotations

import copy
from pathlib import Path

from benchmarks.gpu.common import REPO, TINY

PAPER = "config/paper.yaml"


def _absolute(config: dict) -> dict:
    """The manifest and the paper numbers as absolute paths (the fit processes run in the repository, this one in
    any folder)."""
    from dip.pipeline.config import SHIPPED_FILES

    return {key: str(REPO / config[key]) for key in SHIPPED_FILES}


def paper_config() -> dict:
    """config/config.yaml + config/paper.yaml; the manifest and paper numbers as absolute paths."""
    from dip.pipeline.config import load

    config = load(PAPER)
    return config | _absolute(config)


def run_layer(args, paper: dict, resources: Path) -> dict:
    """The layer on config/paper.yaml that restricts it to what this run fits: SR x4 of ``args.datasets`` with one
    seed, DIP (the config's presets and settings, + precision), the bicubic baseline, ES-WMV recorded as the paper
    config says; results under ``args.out``, benchmark files from ``resources``; no released outputs, learning curves
    or other experiments (null turns a key off, as in a layered config file)."""
    experiments = []
    for name in args.datasets:
        found = [e for e in paper["experiments"] if e["dataset"] == name and e["task"] == "sr"]
        if not found:
            raise SystemExit(f"config/paper.yaml has no SR experiment for dataset {name!r}")
        exp = copy.deepcopy(found[0])
        exp.update(levels=[4], seeds=[args.seed], baselines=[b for b in exp.get("baselines", []) if b == "bicubic"])
        dip = exp.setdefault("dip", {})
        settings = dip.setdefault("settings", {})
        if args.precision != "fp32":
            settings["precision"] = args.precision
        if args.tiny:
            dip["width"] = TINY["width"]
            settings.update(iterations=TINY["iterations"], log_every=TINY["log_every"])
        if args.width:
            dip["width"] = args.width
        if args.iterations:
            settings["iterations"] = args.iterations
        if args.device != "auto":
            settings["device"] = args.device
        experiments.append(exp)
    sections = dict.fromkeys(paper.get("paper_experiments") or {})  # all off ...
    es = (paper.get("paper_experiments") or {}).get("early_stopping")
    if es:  # ... but the early-stopping record
        sections["early_stopping"] = TINY["early_stopping"] if args.tiny else es
    return {
        "experiments": experiments, "results_dir": str(args.out), "resources_dir": str(resources),
        "learning_curves": None, "released": None, "pack_fits": 1, "paper_experiments": sections,
    }  # fmt: skip


def run_config(args, resources: Path) -> dict:
    """The config of this run: config/paper.yaml and :func:`run_layer` (see there)."""
    from dip.pipeline.config import load

    config = load(PAPER, run_layer(args, paper_config(), resources))
    return config | _absolute(config)


def write_layer(config: dict, path: Path, datasets) -> None:
    """A config file to layer after config/paper.yaml (``--configfile config/paper.yaml <it>``) so that the workflow
    plans just the experiments of ``datasets`` (those whose fits this run completed): their tables and figures can
    then be rendered before the paper's other fits exist."""
    import yaml

    others = {name: None for name in (paper_config().get("paper_experiments") or {}) if name != "early_stopping"}
    experiments = [e for e in config["experiments"] if e["dataset"] in datasets]
    layer = {"experiments": experiments, "learning_curves": None, "paper_experiments": others}
    head = ("# Written by benchmarks/gpu_reproduce.py: layer it after config/paper.yaml to plan only the experiments\n"
            f"# whose fits this run completed ({', '.join(datasets)}); BENCHMARKS.md, 'GPU reproduction'.\n")
    path.write_text(head + yaml.safe_dump(layer, sort_keys=False))
