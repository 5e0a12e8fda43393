#!/usr/bin/env python
"""Side-by-side speed A/B of the fit engine: another checkout's ``dip.fit.fit`` against this one's.

Both sides fit the same image with the same seed and settings -- denoising a 128 px crop of scikit-image's
astronaut with the default skip network (5 levels, 128 channels) -- each run in a fresh subprocess that imports
``dip`` from its own checkout, with the same Python and torch. Rounds alternate which side goes first, so a
machine that slows down or speeds up during the run affects both alike. A step's time is the median gap between
consecutive steps after the warm-up steps (the median resists other processes' bursts on a shared CPU), by the wall
clock and by the process's CPU time per thread (nearly unaffected by other processes competing for the cores).

    python benchmarks/bench_engine_ab.py --old /path/to/other/checkout
    python benchmarks/bench_engine_ab.py --old /tmp/dip-before --rounds 3 --steps 10 --threads 1

Prints the seconds per step of each side in every round, the medians, and new/old for both clocks (below 1: this
checkout is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(size: int, steps: int, warmup: int, threads: int, seed: int) -> dict:
    """One timed fit with the ``dip`` on ``sys.path``; returns where it came from and the step times."""
    import time

    import numpy as np
    import skimage.data
    import torch
    from PIL import Image

    import dip
    from dip import physics
    from dip.fit import BaseHook, FitConfig, fit

    torch.set_num_threads(threads)
    img = skimage.data.astronaut()[64:448, 64:448]
    clean = np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS), dtype=np.float32) / 255.0
    noisy = np.clip(clean + np.random.default_rng(seed).normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    stamps: list[tuple[float, float]] = []  # (wall clock, process CPU time of all threads)

    class Stamp(BaseHook):
        def on_step(self, state):
            stamps.append((time.perf_counter(), time.process_time()))

    # The library's defaults (skip net, 128 channels, channels_last, fp32, EMA, input noise, backtracking).
    config = FitConfig(iterations=warmup + steps, log_every=max(1, (warmup + steps) // 2), seed=seed, device="cpu")
    result = fit(noisy, physics.Identity(), config, ground_truth=clean, hooks=[Stamp()])
    gaps = np.diff(np.asarray(stamps[warmup - 1 :]), axis=0)
    return {"dip": str(Path(dip.__file__).resolve().parent), "s_per_step": float(np.median(gaps[:, 0])),
            "cpu_s_per_step": float(np.median(gaps[:, 1])) / threads, "psnr": result.history[-1]["psnr_gt"]}


def _run_side(checkout: Path, args: argparse.Namespace) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); import bench_engine_ab as b; "
            f"print(json.dumps(b._child({args.size}, {args.steps}, {args.warmup}, {args.threads}, {args.seed})))")
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": str(args.threads)}
    # From inside the checkout, so that its dip wins over an installed (editable) one.
    proc = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the fit in {checkout} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if Path(out["dip"]) != (checkout / "dip").resolve():
        raise SystemExit(f"imported dip from {out['dip']}, not from {checkout}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="the other checkout (the repository root)")
    parser.add_argument("--new", type=Path, default=REPO, help="this checkout by default")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per fit")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"old": [], "new": []}
    cpu_times: dict[str, list[float]] = {"old": [], "new": []}
    psnrs: dict[str, float] = {}
    for round_ in range(args.rounds):
        order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
        for side in order:
            out = _run_side((args.old if side == "old" else args.new).resolve(), args)
            times[side].append(out["s_per_step"])
            cpu_times[side].append(out["cpu_s_per_step"])
            psnrs[side] = out["psnr"]
            print(f"round {round_ + 1} {side}: {out['s_per_step']:.4f} s/step (CPU {out['cpu_s_per_step']:.4f})",
                  flush=True)  # fmt: skip
    for clock, values in (("wall", times), ("CPU", cpu_times)):
        old, new = statistics.median(values["old"]), statistics.median(values["new"])
        print(f"median s/step ({clock}) at {args.size} px, {args.threads} thread(s): old {old:.4f}, new {new:.4f}; "
              f"new/old = {new / old:.3f}")  # fmt: skip
    print(f"final PSNR: old {psnrs['old']:.4f} dB, new {psnrs['new']:.4f} dB (same seed: equal on one machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
