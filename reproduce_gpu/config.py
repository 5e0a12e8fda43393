"""The run's config: config/config.yaml + config/paper.yaml, as ``snakemake --configfile config/paper.yaml`` sees
them (:func:`dip.pipeline.workflow_config.load`, the loader the workflow's tests use), with one more layer that cuts it down
to the blocks this run fits; the blocks themselves (``--blocks`` paths); and the layer that lets the workflow take
the run's results as its own."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from reproduce_gpu.common import REPO, TINY

PAPER = "config/paper.yaml"
# What runs without --blocks, in priority order (as time allows): Set5 x4; the grey inpainting block on its four
# 256 px images (11000 steps each; the other seven are 512 px); Set14 x4. --tiny: Set5 x4.
GRAY11_256 = ("house", "peppers256", "Cameraman256", "montage")
DEFAULT_BLOCKS = ("set5/sr/x4", *(f"gray11/inpaint/0.5/{image}" for image in GRAY11_256), "set14/sr/x4")
TINY_BLOCKS = ("set5/sr/x4",)
# The baselines a run makes beside DIP: those of CPU seconds (not cbm3d, no_prior, tv_prior: minutes to hours)
CHEAP_BASELINES = ("bicubic", "biharmonic", "nlm")


def _absolute(config: dict) -> dict:
    """The manifest and the paper numbers as absolute paths (the fit processes run in the repository, this one in
    any folder)."""
    from dip.pipeline.workflow_config import SHIPPED_FILES

    return {key: str(REPO / config[key]) for key in SHIPPED_FILES}


def paper_config() -> dict:
    """config/config.yaml + config/paper.yaml; the manifest and paper numbers as absolute paths."""
    from dip.pipeline.workflow_config import load

    config = load(PAPER)
    return config | _absolute(config)


@dataclass(frozen=True)
class Block:
    """One block of config/paper.yaml's tables: a dataset, task and level (its label: ``x4``, ``sigma50``,
    ``missing50``) and the images fitted (``whole``: all of the dataset's)."""

    dataset: str
    task: str
    level: str
    images: tuple[str, ...]
    whole: bool = True

    @property
    def key(self) -> tuple[str, str, str]:
        return self.dataset, self.task, self.level

    @property
    def paths(self) -> list[str]:
        """The block as ``only:`` paths (dip.pipeline.selection): one, or one per image."""
        head = "/".join(self.key)
        return [head] if self.whole else [f"{head}/{image}" for image in self.images]

    def __str__(self) -> str:
        return "/".join(self.key) + ("" if self.whole else f" [{' '.join(self.images)}]")


def _level(task: str, text: str) -> str | None:
    """The label of a level given as its label (``x4``, ``missing50``) or as a number (4, 0.5); None if neither."""
    from dip.tasks import level_label, parse_level

    try:
        return level_label(task, parse_level(task, text))
    except ValueError:
        pass
    try:
        return level_label(task, float(text))
    except ValueError:
        return None


def parse_blocks(entries, paper: dict | None = None) -> list[Block]:
    """``--blocks`` paths ``dataset[/task[/level[/image]]]`` -- the syntax of a config's ``only:`` key, the seed
    left to ``--seed`` -- as the blocks of config/paper.yaml they name, in the order first named; paths of one
    dataset/task/level make one block (so ``gray11/inpaint/0.5/house gray11/inpaint/0.5/montage`` is one block of
    two images), a shorter path every level (and task) under it. A ``ValueError`` says what the config runs."""
    from dip.data.benchmarks import BENCHMARKS
    from dip.tasks import level_label

    paper = paper or paper_config()
    experiments = {(e["dataset"], e["task"]): e for e in paper["experiments"]}
    datasets = list(dict.fromkeys(d for d, _ in experiments))
    chosen: dict[tuple, set | None] = {}
    for entry in entries:
        parts = [p for p in str(entry).strip().strip("/").split("/") if p]
        if not 1 <= len(parts) <= 4:
            raise ValueError(f"--blocks: {entry!r} is not dataset[/task[/level[/image]]] (the seed: --seed)")
        d = parts[0]
        if d not in datasets:
            raise ValueError(f"--blocks: {entry!r}: {PAPER} runs no dataset {d!r} (it runs {', '.join(datasets)})")
        tasks = [t for dd, t in experiments if dd == d]
        if len(parts) > 1 and parts[1] not in tasks:
            raise ValueError(f"--blocks: {entry!r}: {PAPER} runs no task {parts[1]!r} on {d} (it runs "
                             f"{', '.join(tasks)})")  # fmt: skip
        for t in parts[1:2] or tasks:
            labels = [level_label(t, lv) for lv in experiments[(d, t)]["levels"]]
            if len(parts) > 2 and _level(t, parts[2]) not in labels:
                raise ValueError(f"--blocks: {entry!r}: {PAPER} runs no level {parts[2]!r} of {d}/{t} (levels: "
                                 f"{', '.join(labels)})")  # fmt: skip
            images = (paper["datasets"].get(d) or {}).get("images") or BENCHMARKS[d].images
            if len(parts) > 3 and parts[3] not in images:
                raise ValueError(f"--blocks: {entry!r}: {d} has no image {parts[3]!r} (images: {', '.join(images)})")
            for lv in [_level(t, parts[2])] if len(parts) > 2 else labels:
                named = chosen.get((d, t, lv), set())
                chosen[(d, t, lv)] = None if named is None or len(parts) < 4 else named | {parts[3]}
    blocks = []
    for (d, t, lv), named in chosen.items():
        images = tuple((paper["datasets"].get(d) or {}).get("images") or BENCHMARKS[d].images)
        blocks.append(Block(d, t, lv, tuple(i for i in images if named is None or i in named), named is None))
    return blocks


def run_layer(args, paper: dict, resources: Path) -> dict:
    """The layer on config/paper.yaml that restricts it to the blocks this run fits (``args.blocks``): each block's
    experiment with its preset(s) and settings (+ precision), only the blocks' levels, one seed, only the cheap
    baselines (:data:`CHEAP_BASELINES`: bicubic, biharmonic, nlm), ES-WMV recorded as the paper config says; the
    images through the planner's own ``only:`` (the blocks' paths); results under ``args.out``, benchmark files from
    ``resources``; no released outputs, learning curves or other experiments (null turns a key off, as in a layered
    config file)."""
    from dip.tasks import parse_level

    levels: dict[tuple[str, str], list] = {}
    for block in args.blocks:  # one experiment per dataset and task, as the planner wants them
        levels.setdefault((block.dataset, block.task), []).append(parse_level(block.task, block.level))
    experiments = []
    for (name, task), chosen in levels.items():
        found = [e for e in paper["experiments"] if e["dataset"] == name and e["task"] == task]
        if not found:
            raise SystemExit(f"{PAPER} has no {task} experiment for dataset {name!r}")
        exp = copy.deepcopy(found[0])
        baselines = [b for b in exp.get("baselines", []) if b in CHEAP_BASELINES]
        exp.update(levels=chosen, seeds=[args.seed], baselines=baselines)
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
        "only": [path for block in args.blocks for path in block.paths],
    }  # fmt: skip


def run_config(args, resources: Path) -> dict:
    """The config of this run: config/paper.yaml and :func:`run_layer` (see there)."""
    from dip.pipeline.workflow_config import load

    config = load(PAPER, run_layer(args, paper_config(), resources))
    return config | _absolute(config)


def write_layer(config: dict, path: Path, blocks: list[Block]) -> None:
    """A config file to layer after config/paper.yaml (``--configfile config/paper.yaml <it>``) so that the workflow
    plans just ``blocks`` (those whose fits this run completed): their experiments with only their levels, their
    images through ``only:``; their tables and figures can then be rendered before the paper's other fits exist."""
    import yaml

    from dip.tasks import level_label

    others = {name: None for name in (paper_config().get("paper_experiments") or {}) if name != "early_stopping"}
    keys = {block.key for block in blocks}
    experiments = []
    for exp in config["experiments"]:
        levels = [lv for lv in exp["levels"] if (exp["dataset"], exp["task"], level_label(exp["task"], lv)) in keys]
        if levels:
            experiments.append({**exp, "levels": levels})
    layer = {"experiments": experiments, "only": [p for block in blocks for p in block.paths],
             "learning_curves": None, "paper_experiments": others}  # fmt: skip
    head = ("# Written by reproduce_gpu/run.py: layer it after config/paper.yaml to plan only the blocks\n"
            f"# whose fits this run completed ({'; '.join(map(str, blocks))}); BENCHMARKS.md, 'GPU reproduction'.\n")
    path.write_text(head + yaml.safe_dump(layer, sort_keys=False))
