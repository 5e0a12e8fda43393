"""Plumbing shared by the workflow's script shims: find the `dip` package, send output to the job's log.

Not restoration logic: every shim calls the `dip` library for the actual work.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

try:  # an installed (pip install -e .) package wins; a plain checkout works too
    import dip  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(REPO))


@contextlib.contextmanager
def logged(snakemake):
    """Redirect stdout/stderr to the job's log file and write the traceback there if the job fails."""
    log = snakemake.log[0] if len(snakemake.log) else None
    if log is None:
        yield
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        try:
            yield
        except BaseException:
            traceback.print_exc()
            raise


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)


def fit_config(spec: dict):
    """The FitConfig of a fit job's spec: its preset, width cap and settings, and its seed when it has one."""
    from dip.presets import get_preset

    config = get_preset(spec["preset"], width=spec.get("width"), **spec["settings"])
    return config.replace(seed=spec["seed"]) if "seed" in spec else config


def sr_factor(spec: dict) -> int | None:
    """The super-resolution factor of a job's spec (its level), None for the other tasks."""
    return int(spec["level"]) if spec["task"] == "sr" else None


def early_output(result):
    """The output at the ES-WMV detected step, or (window never filled, e.g. a fit shorter than it) the final one."""
    if result.output_early is None:
        print("early stopping: the variance window never filled; the _es output is the fit's final output")
        return result.output
    return result.output_early
