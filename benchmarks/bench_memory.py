#!/usr/bin/env python
"""Memory of one DIP fit of the paper's default skip net, plain and with activation checkpointing
(issue #5: "a 512 px default fit fits in 2 GB"; issue "fit a 2048 x 2048 photo within 8 GB").

For each size, precision and memory mode, in a fresh subprocess, a short :func:`dip.fit.fit` of the ``denoise``
preset's network (5 levels of 128 channels, 4-channel skips; built as ``dip/fit/engine.py`` builds it), with
``memory_saving`` "off" (plain) or "on" (checkpoint) so that the fit's own automatic choice does not pick the mode,
channels_last (the library default), one warm-up step and ``--steps`` timed ones:

* ``weights+adam MB`` - parameters, their gradients and Adam's two moments (fp32);
* ``kept for backward MB`` - the tensors autograd keeps from the forward pass for the backward pass (counted once
  per storage with ``torch.autograd.graph.saved_tensors_hooks``, plus what ``ReflectConv2d`` keeps under hooks of its
  own; with checkpointing, what the regions keep as their inputs): what a GPU must hold at the start of backward;
* ``estimate MB`` - :func:`dip.fit.memory.fit_memory`'s prediction of the next column (dry run, no real memory);
* ``peak RSS MB`` / ``RSS rise MB`` - the CPU process's peak resident memory (``ru_maxrss``) and its rise over the
  process after imports and set-up, across the fit (includes oneDNN's scratch buffers, the fit's images and the
  allocator's caching); on CUDA, ``torch.cuda.max_memory_allocated`` instead;
* ``s/step`` - median wall time of the timed steps (the fit's own loop: forward, backward, Adam, EMA);
  ``CPU s/step`` - the same steps' CPU time (user + system) of the process, which other processes sharing the cores
  do not inflate (with ``--threads 1`` it is the step's compute time); ``vs plain`` - the CPU time's ratio to the
  plain fit of the same size and precision (wall time on CUDA).

    python benchmarks/bench_memory.py                 # 256 and 512 px, fp32 and bf16, plain and checkpointed
    python benchmarks/bench_memory.py --sizes 512 1024 2048 --precisions fp32 --threads 1 --budget-gb 12

A configuration whose predicted peak exceeds the budget (``--budget-gb``, default 80% of the available memory) is
not started: the table says what it would need (the same check :func:`dip.fit.memory.choose_memory_mode` makes
before a fit). ``--max-gb`` also caps each child's address space, so a wrong estimate fails that child, not the
machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODES = ("plain", "checkpoint")


def child(size: int, precision: str, mode: str, steps: int, threads: int, device: str, max_gb: float | None) -> dict:
    if max_gb:
        limit = int(max_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np
    import torch

    from dip import physics
    from dip import nets
    from dip.fit import BaseHook, fit, memory
    from dip.nets.recompute import is_checkpointed
    from dip.presets import get_preset

    torch.set_num_threads(threads)
    image = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    config = get_preset("denoise").replace(
        iterations=1 + steps, precision=precision, device=device, log_every=1 + steps, backtrack_db=None,
        memory_saving={"plain": "off", "checkpoint": "on"}[mode],  # "auto" would pick for us
    )

    class Clock(BaseHook):
        def __init__(self):
            self.times = [(time.perf_counter(), time.process_time())]

        def on_step(self, state):
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            self.times.append((time.perf_counter(), time.process_time()))

    # The network exactly as dip.fit.fit builds it (seeded first); the fit puts it in the asked memory mode.
    torch.manual_seed(config.seed)
    net = nets.build_net(config.net, config.input_depth, image.shape[2], **config.net_kwargs)
    clock = Clock()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = fit(image, physics.Identity(), config, net=net, hooks=[clock])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = [b[0] - a[0] for a, b in zip(clock.times[1:], clock.times[2:])]  # without the warm-up step
    cpu = [b[1] - a[1] for a, b in zip(clock.times[1:], clock.times[2:])]

    z = torch.rand(1, config.input_depth, size, size, device=result.device) * 0.1
    net = net.to(memory_format=torch.channels_last)
    assert is_checkpointed(net) == (mode == "checkpoint"), "the fit ran in another memory mode"
    kept = memory.measure_kept_for_backward(net, z, precision)
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    cuda = torch.device(device).type == "cuda"
    return {
        "size": size, "precision": precision, "mode": mode, "weights_adam_mb": round(4 * weights / 2**20, 1),
        "kept_for_backward_mb": round(kept / 2**20, 1), "peak_rss_mb": round(peak), "rss_rise_mb": round(peak - base),
        "cuda_peak_mb": round(result.peak_memory_mb) if cuda else None,
        "s_per_step": round(statistics.median(wall), 3), "cpu_s_per_step": round(statistics.median(cpu), 3),
        "step_times": [round(t, 3) for t in wall], "cpu_step_times": [round(t, 3) for t in cpu],
        "threads": threads, "torch": torch.__version__,
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step (default 2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget-gb", type=float, default=None, help="skip what needs more (default: 80%% of free RAM)")
    ap.add_argument("--max-gb", type=float, default=None, help="cap each child's address space (RLIMIT_AS)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        size, precision, mode, steps = args.child
        row = child(int(size), precision, mode, int(steps), args.threads, args.device, args.max_gb)
        print("RESULT " + json.dumps(row))
        return 0

    from dip.fit import memory
    from dip.presets import get_preset

    config = get_preset("denoise")
    budget = memory.memory_budget(args.device, int(args.budget_gb * 2**30) if args.budget_gb else None)
    cuda = args.device.startswith("cuda")
    peak_col = "CUDA peak MB" if cuda else "RSS rise MB"
    print(f"| size | precision | mode | weights+adam MB | kept for backward MB | estimate MB | peak RSS MB | {peak_col} "
          "| s/step | CPU s/step | vs plain |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows, plain_time = [], {}
    for size in args.sizes:
        for precision in args.precisions:
            estimate = memory.fit_memory(config, size, size, precision=precision, device=args.device)
            for mode in args.modes:
                predicted = estimate.bytes_for(mode)
                head = f"| {size} | {precision} | {mode} |"
                if predicted > budget:
                    print(f"{head} | | {predicted / 2**20:.0f} | not run: predicted peak over the "
                          f"{budget / 2**30:.1f} GB budget | | | | |", flush=True)  # fmt: skip
                    continue
                cmd = [sys.executable, __file__, "--child", str(size), precision, mode, str(args.steps),
                       "--threads", str(args.threads), "--device", args.device]  # fmt: skip
                if args.max_gb:
                    cmd += ["--max-gb", str(args.max_gb)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    print(f"{head} failed: {proc.stderr.strip().splitlines()[-1:]} ||||||||", flush=True)
                    continue
                r = json.loads(line[len("RESULT ") :])
                r["estimate_mb"] = round(predicted / 2**20)
                timing = "s_per_step" if cuda else "cpu_s_per_step"
                if mode == "plain":
                    plain_time[(size, precision)] = r[timing]
                ratio = r[timing] / plain_time[(size, precision)] if (size, precision) in plain_time else None
                r["time_vs_plain"] = round(ratio, 2) if ratio else None
                rows.append(r)
                measured = r["cuda_peak_mb"] if cuda else r["rss_rise_mb"]
                print(f"{head} {r['weights_adam_mb']} | {r['kept_for_backward_mb']} | {r['estimate_mb']} | "
                      f"{r['peak_rss_mb']} | {measured} | {r['s_per_step']} | {r['cpu_s_per_step']} | "
                      f"{f'{ratio:.2f}x' if ratio else ''} |", flush=True)  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
