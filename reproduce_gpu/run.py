#!/usr/bin/env python3
"""One-command GPU reproduction: machine facts, the CUDA tests, blocks of the paper's tables at the paper's settings
(by default Set5 x4, then the grey inpainting block on its four 256 px images, then Set14 x4, as time allows), a
short speed benchmark and a projection of the paper's GPU time -- in one output folder, inside a wall-time budget.
Run it through ``reproduce_gpu/run.sh`` (BENCHMARKS.md, "GPU reproduction").

    reproduce_gpu/run.sh --out DIR [--blocks set5/sr/x4 gray11/inpaint/0.5/house set14/sr/x8 ...]
                                [--inputs DIR] [--budget-minutes 8] [--precision bf16] [--tiny] ...

A block is a dataset, task and level of config/paper.yaml (``--blocks`` paths as in a config's ``only:`` key:
``dataset[/task[/level[/image]]]``; paths of one level make one block; ``--datasets set5 set14`` is short for
``--blocks set5/sr/x4 set14/sr/x4``). No Snakemake here (a lent GPU machine has none): the jobs come from the
workflow's own planner (:mod:`dip.pipeline.plan`, fed ``config/config.yaml`` + ``config/paper.yaml`` restricted to
the blocks, layered by :func:`dip.pipeline.workflow_config.load`) and run through the workflow's own job functions
(:mod:`dip.pipeline.jobs`: degrade, fit_dip, fit_dip_pack, unpack_fit, baseline, score, score_es), so the files land
where the workflow puts them, under ``--out`` instead of ``results/paper``::

    inputs/<d>/<t>/<lv>/<image>/                         gt, observation (hr, mask), inputs.json
    restored/<d>/<t>/<lv>/dip/<image>_seed0.png|.json    DIP (+ _raw.png, _es.png); the baseline's likewise
    scores/ours/<d>/<t>_<lv>.csv                         dip and baseline rows (dip.eval.scoring.COLUMNS)
    scores/extra/<d>/<t>_<lv>_es.csv                     dip_es rows (the output at the ES-WMV detected step)
    facts.txt|json, cuda-tests.log|xml, bench_fit.log|json, fits.json, logs/, run.log, summary.md|json

(e.g. ``scores/ours/gray11/inpaint_missing50.csv``: dip and biharmonic rows.) Baselines: only the cheap ones
(bicubic, biharmonic, nlm). Fits of one size are packed (:func:`dip.restore.restore_many`); packs and lone fits
run as separate processes, ``--jobs`` at a time on the GPU, block by block in the order given. A fit (or pack)
starts only if its estimated time fits in what is left of the budget (estimate: measured s/step of the benchmark,
or of the fits so far, times pixels x steps, times the number of processes sharing the device; the first in order
that fits starts, so a later, cheaper block may run when an earlier one no longer fits); whatever still runs at the
deadline is killed, so the run ends inside the budget.

The phases live in :mod:`reproduce_gpu` (one module each); :func:`main` runs them in order.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from reproduce_gpu import bench, facts, inputs, report, schedule  # noqa: E402
from reproduce_gpu.bundle import bundle_run, unpack  # noqa: E402
from reproduce_gpu.common import BENCH_SIZE, start  # noqa: E402
from reproduce_gpu.config import DEFAULT_BLOCKS, TINY_BLOCKS, parse_blocks, run_config  # noqa: E402
from dip.pipeline.plan import build_plan  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: crops, width 8, few steps (~1 min)")
    ap.add_argument("--out", default=None, help="output folder (default: gpu-run/ in the checkout)")
    ap.add_argument("--inputs", default=None,
                    help="benchmark files laid out like the download base URL (default: .carry/inputs, made by "
                         "reproduce_gpu/prepare_carry.sh)")  # fmt: skip
    ap.add_argument("--budget-minutes", type=float, default=None, help="wall-time budget (default 8; --tiny 2)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--blocks", nargs="+", metavar="PATH",
                       help="the blocks of config/paper.yaml to fit, in this order, as time allows: "
                            "dataset[/task[/level[/image]]] as in a config's only: key (e.g. set5/sr/x4 "
                            "gray11/inpaint/0.5/house set14/sr/x8 color9/denoise/50); paths of one level make one "
                            "block (default: set5/sr/x4, gray11/inpaint/0.5 on house peppers256 Cameraman256 "
                            "montage, set14/sr/x4; --tiny: set5/sr/x4)")  # fmt: skip
    which.add_argument("--datasets", nargs="+", choices=("set5", "set14"), default=None,
                       help="short for --blocks set5/sr/x4 [set14/sr/x4]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu (fits; --tiny: cpu)")
    ap.add_argument("--jobs", type=int, default=None, help="fit processes at a time (default: GPU 4, CPU 1)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per fit process (default: GPU 2, CPU 1)")
    ap.add_argument("--pack-max", type=int, default=4, help="fits of one size per process (1: no packing)")
    ap.add_argument("--iterations", type=int, default=None, help="override the preset's steps (a quicker check)")
    ap.add_argument("--width", type=int, default=None, help="cap the network's channels (a quicker check)")
    ap.add_argument("--no-cuda-tests", action="store_true")
    ap.add_argument("--cuda-tests-timeout", type=float, default=240)
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--bench-modes", nargs="+", default=None,
                    help="default: reference ours-fp32 ours-cl ours-cl-bf16 (--tiny: ours-cl)")
    ap.add_argument("--bench-sizes", type=int, nargs="+", default=None, help="default 512 (--tiny: 64)")
    ap.add_argument("--bench-warmup", type=int, default=None, help="default 10 (--tiny: 1)")
    ap.add_argument("--bench-steps", type=int, default=None, help="default 40 (--tiny: 1)")
    ap.add_argument("--bench-timeout", type=float, default=150)
    ap.add_argument("--reserve", type=float, default=None, help="seconds kept for scoring and the summary "
                                                                   "(default: 30; --tiny 10)")  # fmt: skip
    ap.add_argument("--resume", action="store_true", help="reuse the fits already in --out (else --out must be empty)")
    ap.add_argument("--unpack", metavar="DIR",
                    help="no run: join DIR/results.tar.NNN (a --bundle run) and extract it into --into, with mtimes "
                         "in the workflow's order")
    ap.add_argument("--into", default=None, help="where --unpack extracts to (default: results/paper)")
    ap.add_argument("--bundle", action="store_true",
                    help="end with --out packed into at most 8 files of at most 16 MiB at its top (what a lent GPU "
                         "machine sends back): summary.md, facts.txt, cuda-tests.log, records.tar.gz, results.tar.NNN")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    tiny = args.tiny
    args.out = Path(args.out or REPO / "gpu-run").resolve()
    args.inputs = Path(args.inputs or REPO / ".carry" / "inputs").resolve()
    args.budget_minutes = args.budget_minutes or (2.0 if tiny else 8.0)
    if not (args.worker or args.unpack):
        default = TINY_BLOCKS if tiny else DEFAULT_BLOCKS
        entries = args.blocks or [f"{d}/sr/x4" for d in args.datasets or ()] or default
        try:
            args.blocks = parse_blocks(entries)
        except ValueError as err:
            ap.error(str(err))
    if tiny and args.device == "auto":
        args.device = "cpu"
    args.bench_modes = args.bench_modes or (["ours-cl"] if tiny else ["reference", "ours-fp32", "ours-cl",
                                                                       "ours-cl-bf16"])  # fmt: skip
    args.bench_sizes = args.bench_sizes or ([64] if tiny else [BENCH_SIZE])
    args.bench_warmup = args.bench_warmup if args.bench_warmup is not None else (1 if tiny else 10)
    args.bench_steps = args.bench_steps if args.bench_steps is not None else (1 if tiny else 40)
    args.reserve = args.reserve if args.reserve is not None else (10.0 if tiny else 30.0)
    return args


def main(argv=None) -> int:
    t0 = time.monotonic()
    args = parse_args(argv)
    if args.worker:  # one fit process of the scheduler
        return schedule.run_worker(args.worker)
    if args.unpack:
        return unpack(Path(args.unpack).resolve(), Path(args.into or REPO / "results" / "paper").resolve())
    run = start(args, t0)  # --out, run.log, the budget
    if run is None:
        return 2
    machine = facts.machine_facts(run)  # (a) facts.txt|json; the fit device
    resources = inputs.check(run)  # the blocks' benchmark files, sha256 checked (--tiny: cropped)
    if resources is None:
        return 2
    plan = build_plan(run_config(args, resources))  # the workflow's jobs of the blocks
    inputs.degrade_and_baselines(run, plan)  # CPU: bicubic, biharmonic, nlm
    speed = bench.speed(run)  # (d) alone on the device; its s/step sizes the fits' estimates
    cuda_tests = facts.CudaTests(run)  # (b) in the background, beside the fits
    done, fit_wall = schedule.run_fits(run, plan, speed)  # (c) inside the budget
    cuda = cuda_tests.finish()
    frames = report.scores(run, plan, done)  # scores/, workflow-layer.yaml (the blocks completed)
    report.summary(run, machine, plan, frames, done, fit_wall, speed, cuda)  # a table per block: summary.md|json
    if args.bundle:
        bundle_run(run)  # at most 8 files of at most 16 MiB
    failed = any(g["status"] == "failed" for g in done) or cuda.get("exit_code") not in (None, 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
