"""What every phase of the GPU reproduction shares: the run (its folder, log, budget and phase rows), the --tiny
settings, child processes with a time cap."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "reproduce_gpu" / "run.py"  # the script; its --worker runs one fit process
BENCH_SIZE = 512  # px; the speed benchmark's image side (the projection scales from it by pixel count)

# --tiny: the same path on the CPU in about a minute (crops of the ground truth, a narrow net, a few steps).
TINY = {
    "width": 8,
    "iterations": 24,
    "log_every": 6,
    "early_stopping": {"window": 4, "patience": 4, "check_every": 2},
    # HR crops (height, width) by image position: four of one size (one pack) and a lone fit, per dataset
    "shapes": [(64, 64), (64, 64), (64, 64), (64, 64), (64, 96)],
}


class Log:
    """Lines with the elapsed time, to stdout and ``run.log``."""

    def __init__(self, t0: float, path: Path | None = None):
        self.t0, self.path = t0, path

    def __call__(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {msg}"
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")


@dataclass
class Run:
    """One run: its arguments, output folder, log, budget (``deadline``; the fits, tests and benchmark end by
    ``work_end``, leaving ``args.reserve`` seconds for scoring and the summary), the fit device once known, and the
    phase rows of summary.md."""

    args: object
    t0: float
    log: Log
    device: str = "cpu"
    phases: list[dict] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.args.out

    @property
    def deadline(self) -> float:
        return self.t0 + 60 * self.args.budget_minutes

    @property
    def work_end(self) -> float:
        return self.deadline - self.args.reserve

    def phase(self, name: str, status: str, since: float) -> None:
        self.phases.append({"phase": name, "status": status, "seconds": round(time.monotonic() - since, 1)})


def start(args, t0: float) -> Run | None:
    """The run in ``args.out`` (made; it must be empty unless ``--resume``), None if it is not empty."""
    out = args.out
    if out.exists() and any(out.iterdir()) and not args.resume:
        print(f"{out} is not empty: choose another --out, or --resume to reuse its fits", file=sys.stderr)
        return None
    out.mkdir(parents=True, exist_ok=True)
    return Run(args, t0, Log(t0, out / "run.log"))


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a process started with ``start_new_session=True`` and everything it started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_capped(cmd, log_path: Path, timeout: float, env=None, cwd=REPO) -> tuple[int | None, float]:
    """Run ``cmd`` with its output in ``log_path``; kill it (and its children) after ``timeout`` s. Returns
    ``(exit code or None if killed, seconds)``."""
    t = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            rc = None
            log.write(f"\n[reproduce_gpu] killed after {timeout:.0f} s (time cap)\n")
    return rc, time.monotonic() - t


def child_env(threads: int | None = None) -> dict:
    """This environment with the repository on ``PYTHONPATH`` (and ``threads`` as ``OMP_NUM_THREADS``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


@contextlib.contextmanager
def quiet():
    """What a job function prints, dropped (the run's own lines are its log)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def fmt(value, spec=".2f", empty="-"):
    """``value`` formatted, ``empty`` for None or a non-finite float."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return empty
    return format(value, spec)
