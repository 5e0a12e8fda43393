#!/usr/bin/env python
"""Memory of one DIP fit of the default skip network (issue #5: "a 512 px default fit fits in 2 GB").

For each size and precision, in a fresh subprocess:

* ``weights+adam MB`` - parameters, their gradients and Adam's two moments (fp32);
* ``kept for backward MB`` - the tensors autograd keeps from the forward pass for the backward pass (counted once per
  storage with ``torch.autograd.graph.saved_tensors_hooks``): the bulk of a fit's memory on any device, and what a
  GPU must hold at the start of backward, before the gradients' transient buffers;
* ``RSS rise MB`` - the CPU process's peak resident memory (``ru_maxrss``) over its size after imports, across a
  3-step :func:`dip.fit.fit` (channels_last, the library default; includes oneDNN's scratch buffers, layout copies
  and the allocator's caching).

    python benchmarks/bench_memory.py                 # 256 and 512 px, fp32 and bf16
    python benchmarks/bench_memory.py --sizes 512 --precisions fp32

On CUDA, :func:`dip.fit.fit` reports ``torch.cuda.max_memory_allocated`` in each fit's record (``peak_memory_mb``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def child(size: int, precision: str) -> dict:
    import numpy as np
    import torch

    from dip.nets import networks as models
    from dip import physics
    from dip.fit import FitConfig, fit

    torch.set_num_threads(2)
    image = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    config = FitConfig(iterations=3, precision=precision, device="cpu", log_every=1)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fit(image, physics.Identity(), config)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    torch.manual_seed(0)
    net = models.build_net("skip", 32, 3)
    z = torch.rand(1, 32, size, size) * 0.1
    kept: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return t

    class _CountedRepad(models._Repad):
        # ReflectConv2d keeps its unpadded input under its own saved-tensor hooks, which this outer hook never sees:
        # count what it keeps too.
        def __post_init__(self):
            storage = self.source.untyped_storage()
            kept[storage.data_ptr()] = storage.nbytes()

    models._Repad = _CountedRepad
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            net(z)
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    return {
        "size": size, "precision": precision, "weights_adam_mb": round(4 * weights / 2**20, 1),
        "kept_for_backward_mb": round(sum(kept.values()) / 2**20, 1), "peak_rss_mb": round(peak),
        "rss_rise_mb": round(peak - base), "torch": torch.__version__,
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(int(args.child[0]), args.child[1])))
        return 0
    print("| size | precision | weights+adam MB | kept for backward MB | peak RSS MB | RSS rise MB |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        for precision in args.precisions:
            proc = subprocess.run([sys.executable, __file__, "--child", str(size), precision],
                                  capture_output=True, text=True)  # fmt: skip
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"| {size} | {precision} | failed: {proc.stderr.strip().splitlines()[-1:]} |||")
                continue
            r = json.loads(line[len("RESULT "):])
            print(f"| {size} | {precision} | {r['weights_adam_mb']} | {r['kept_for_backward_mb']} | "
                  f"{r['peak_rss_mb']} | {r['rss_rise_mb']} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
