"""The workflow's side: running Snakemake, its dry runs and job stats, the configs (tiny, test, paper-cpu), the
loaded config and plan."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import BIN, REPO, SNAKEFILE


def exe(name):
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def scratch(tmp_path: Path) -> Path:
    """A working directory with config/ linked from the repository."""
    (tmp_path / "config").symlink_to(REPO / "config", target_is_directory=True)
    return tmp_path


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--workflow-profile", "none", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    block = output.split("Job stats:")[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


# --- the workflow's configs -----------------------------------------------------------------------------------------

TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"

# The paper's other experiments on tiny crops with a handful of steps (layered on TEST_CONFIG: the e2e budget).
_SMALL_NET = dict(channels_down=[8, 8, 8, 8], channels_up=[8, 8, 8, 8], channels_skip=[4] * 4, kernel_down=3,
                  kernel_up=3, upsample="nearest", downsample="avg", pad="zero")
TINY_EXPERIMENTS = {
    "device": "cpu",
    "jpeg": {"crop": 64, "steps": [4, 9], "dip": {"width": 8, "settings": {"log_every": 5}}},
    "inpaint_text": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 6, "log_every": 3}}},
    "inpaint_hole": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 6, "log_every": 3}}},
    "architectures": {"crop": 128, "names": ["depth2", "depth6", "unet", "resnet"], "width": 8, "pad": "zero",
                      "settings": {"iterations": 3, "log_every": 1}},
    "flash": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 4, "log_every": 2}},
              "bilateral": {"radius": 2}},
    "sr_prior": {"crop": 64, "iterations": 10, "dip": {"width": 8, "settings": {"iterations": 4, "log_every": 2}}},
    "preimage": {"small_cnn": True, "size": 64, "layer": "conv2",
                 "settings": {"iterations": 6, "log_every": 3, "lr": 0.01, "net_kwargs": _SMALL_NET}},
    "early_stopping": {"window": 4, "patience": 4, "check_every": 2,
                       "experiments": [{"dataset": "photos", "task": "denoise"}]},
}


def tiny_experiments_config(workdir: Path, base_url: str = "https://raw.githubusercontent.com/") -> Path:
    """A config file to layer on TEST_CONFIG (``--configfile TEST_CONFIG <it>``): TINY_EXPERIMENTS and a base URL."""
    import yaml

    path = workdir / "tiny_experiments.yaml"
    path.write_text(yaml.safe_dump({"download_base_url": base_url, "paper_experiments": TINY_EXPERIMENTS}))
    return path


def workflow_config(*configfiles: str | Path, **overrides) -> dict:
    """The config a workflow run sees: config/config.yaml (the Snakefile's configfile), then each ``--configfile``
    and the ``--config`` overrides merged as Snakemake merges them, validated against the schema (defaults filled):
    :func:`dip.pipeline.workflow_config.load`, the loader the GPU reproduction script uses too."""
    from dip.pipeline.workflow_config import load

    return load(*configfiles, **overrides)


def plan_of(*configfiles: str | Path, **overrides):
    """The plan (:func:`dip.pipeline.plan.build_plan`) of :func:`workflow_config`'s config."""
    from dip.pipeline.plan import build_plan

    return build_plan(workflow_config(*configfiles, **overrides))


def dry_run_jobs(output: str) -> dict[tuple[str, tuple[str, ...]], int]:
    """The jobs a dry run lists, as {(rule, sorted outputs): count} (target rules have no outputs). The root
    Snakefile's `default` rule is the plan's `all` (an included file cannot set the default target)."""
    jobs: dict[tuple[str, tuple[str, ...]], int] = {}
    for m in re.finditer(r"^(?:local)?rule (\S+):\n((?:    .*\n?)*)", output, re.M):
        out = re.search(r"^    output: (.*)$", m.group(2), re.M)
        rule = "all" if m.group(1) == "default" else m.group(1)
        key = (rule, tuple(sorted(out.group(1).split(", ") if out else ())))
        jobs[key] = jobs.get(key, 0) + 1
    return jobs


def start_snakemake(workdir: Path, *args: str, log: Path) -> subprocess.Popen:
    """Start snakemake as :func:`snakemake` runs it, in the background, in a session of its own (so that a test can
    kill it and its jobs at once, as a node failure would), with stdout and stderr going to ``log``."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--workflow-profile", "none", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def paper_cpu_fits() -> list[tuple[str, str, str, int]]:
    """(dataset, level label, image, seed) of every fit `config/paper-cpu.yaml`'s `only:` names (the committed slice:
    it grows as fits are added, so tests read it rather than a count)."""
    import yaml

    from dip.tasks import level_label

    config = yaml.safe_load((REPO / "config/paper-cpu.yaml").read_text())
    seeds = {e["dataset"]: e.get("seeds") or [0] for e in config["experiments"]}
    fits = []
    for entry in config["only"]:
        d, t, lv, image, *seed = entry.split("/")
        lv = lv if not lv[0].isdigit() else level_label(t, float(lv))
        fits += [(d, lv, image, int(s)) for s in ([seed[0].removeprefix("seed")] if seed else seeds[d])]
    return sorted(fits)
