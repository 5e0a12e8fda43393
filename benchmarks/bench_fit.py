#!/usr/bin/env python
"""Side-by-side benchmark of DIP fits (issue #5): speed, peak memory and the PSNR each reaches.

Contenders, all on the default skip network (128 channels, 5 levels, 2,217,831 parameters), one image, one seed:

* ``reference`` - what the authors' notebooks (denoising.ipynb) do every iteration: fp32, default memory format,
  the output copied to the host, three skimage PSNRs (vs noisy, vs GT, EMA vs GT), the EMA of outputs, and the
  backtracking check with a host copy of all parameters (``last_net = [x.detach().cpu() ...]``).
* ``deepinv`` - ``deepinv.models.DeepImagePrior`` driving the same generator (its own loop: z ~ N(0, 1), no input
  perturbation, no EMA, Adam lr 0.01, MSE through ``physics.A``).
* ``ours-*`` - :func:`dip.fit.fit` in each speed mode (fp32 default layout; channels_last; channels_last + bf16
  autocast; on CUDA also torch.compile and CUDA graphs) and :func:`dip.fit.stacked.fit_many` (K fits at once).

Every measurement runs in a fresh subprocess (so peak memory is its own): CPU peak = ``ru_maxrss`` (and its rise
over the process after imports and set-up), CUDA peak = ``torch.cuda.max_memory_allocated``. Speed = timed steps
after warm-up steps, with a device sync at both ends. Quality ("parity") = the PSNR against the clean image after
the same number of iterations, same image, seed and initial weights.

    python benchmarks/bench_fit.py                          # CPU: sizes 128 256 512, parity at 128 px
    python benchmarks/bench_fit.py --sizes 128 256 --parity-iters 300
    python benchmarks/bench_fit.py --device cuda --sizes 512 --out benchmarks/out/   # ~5-8 min on one H100

Results: a table on stdout and ``<out>/bench_fit_<device>_<timestamp>.json`` (+ ``bench_fit_<device>_latest.json``).
What each contender runs: ``benchmarks/fit_contenders.py``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.fit_contenders import (  # noqa: E402  (after the path)
    SEED, SIGMA, peak_mb, run_batched, run_deepinv, run_ours, run_reference,
)

# The speed modes of dip.fit.fit: FitConfig overrides. "cuda_only" ones are skipped on CPU (compile costs 80-100 s
# there and gains nothing below 512 px).
OUR_MODES = {
    "ours-fp32": dict(channels_last=False, precision="fp32"),
    "ours-cl": dict(channels_last=True, precision="fp32"),
    "ours-cl-bf16": dict(channels_last=True, precision="bf16"),
    "ours-cl-bf16-compile": dict(channels_last=True, precision="bf16", compile=True),
    "ours-cl-bf16-cudagraphs": dict(channels_last=True, precision="bf16", compile=True, compile_mode="reduce-overhead"),
}
CUDA_ONLY = {"ours-cl-bf16-compile", "ours-cl-bf16-cudagraphs"}

# The paper's workload: (table, task, iterations, output sizes (W, H) of every fit).
# Sizes are the released GT sizes cropped to multiples of 32 (what dip.restore feeds the network).
_SET5 = [(512, 512), (288, 288), (256, 256), (280, 280), (228, 344)]
_SET14 = [(500, 480), (720, 576), (512, 512), (352, 288), (248, 360), (276, 276), (500, 360), (352, 288),
          (512, 512), (512, 512), (768, 512), (512, 512), (528, 656), (584, 388)]  # fmt: skip
_DENOISE9 = [(512, 512)] * 4 + [(256, 256)] + [(768, 512)] * 4  # F16 baboon lena peppers | house | 4 kodim
_INPAINT11 = [(256, 256)] * 4 + [(512, 512)] * 7  # C.man house montage peppers | barbara boat couple ...
PAPER_WORKLOAD = [
    ("SR x4 (Set5+Set14)", 2000, _SET5 + _SET14),
    ("SR x8 (Set5+Set14)", 4000, _SET5 + _SET14),
    ("Denoising sigma 25 (9 colour)", 3000, _DENOISE9),
    ("Denoising sigma 50 (9 colour)", 3000, _DENOISE9),
    ("Inpainting 50% pixels (11 grey)", 11000, _INPAINT11),
]


def _crop32(wh: tuple[int, int]) -> int:
    return (wh[0] // 32 * 32) * (wh[1] // 32 * 32)


# --------------------------------------------------------------------------------------------------------------------
# Child process: one measurement
# --------------------------------------------------------------------------------------------------------------------


def child(spec: dict) -> dict:
    import numpy as np
    import torch

    from dip.eval import metrics
    from dip.fit import resolve_device, set_threads
    from dip.presets import get_preset

    threads = set_threads(spec.get("threads"))
    device = resolve_device(spec["device"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = True
    mode, size, iters, warmup = spec["mode"], spec["size"], spec["iterations"], spec["warmup"]
    overrides = dict(OUR_MODES.get(mode, {"channels_last": False, "precision": "fp32"}))
    if mode.startswith("ours-batched"):
        overrides = dict(channels_last=False, precision=spec.get("precision", "fp32"))
    cfg = get_preset("denoise", iterations=iters, seed=SEED, device=str(device), **overrides)
    if mode == "deepinv":
        import deepinv  # noqa: F401  (fail early, before the baseline RSS is read)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t_start = time.perf_counter()
    if mode == "reference":
        res = run_reference(device, size, iters, warmup, cfg)
    elif mode == "deepinv":
        res = run_deepinv(device, size, iters, warmup, cfg)
    elif mode.startswith("ours-batched"):
        res = run_batched(device, size, iters, warmup, cfg, spec["count"])
    else:
        res = run_ours(device, size, iters, warmup, cfg)
    wall = time.perf_counter() - t_start
    timed = iters - warmup
    fits = res.get("fits", 1)
    out = {
        "mode": mode, "size": size, "iterations": iters, "warmup": warmup, "timed_steps": timed,
        "device": str(device), "threads": threads, "wall_s": round(wall, 3), "fits": fits,
    }
    stamps = np.asarray(res["stamps"], dtype=np.float64).reshape(-1, 2)
    gaps = np.diff(stamps, axis=0) if warmup >= 1 and len(stamps) > 1 else np.zeros((0, 2))
    if device.type == "cuda" and len(gaps):
        gaps = np.repeat((stamps[-1:] - stamps[:1]) / timed, timed, axis=0)
    if len(gaps):
        # The median step resists other processes' bursts on a shared CPU; the mean is kept too.
        out["wall_s_per_step"] = float(np.median(gaps[:, 0]))
        out["wall_s_per_step_mean"] = float(np.mean(gaps[:, 0]))
        # CPU seconds per step (all threads) / threads: what a step takes on an idle machine, nearly unaffected by
        # other processes competing for the cores (which stretch the wall clock instead).
        out["cpu_s_per_step"] = float(np.median(gaps[:, 1])) / max(threads, 1)
        clock = spec.get("clock", "wall")
        out["clock"] = clock
        out["s_per_step"] = out["cpu_s_per_step"] if clock == "cpu" and device.type == "cpu" else out["wall_s_per_step"]
        out["steps_per_s"] = 1.0 / out["s_per_step"]
        out["fit_steps_per_s"] = fits / out["s_per_step"]  # steps of all fits together
    if device.type == "cuda":
        out["peak_mb"] = peak_mb(device)
    else:
        out["peak_rss_mb"] = peak_mb(device)
        out["peak_rss_rise_mb"] = out["peak_rss_mb"] - base_rss
    out["psnr"] = metrics.psnr(res["gt"], np.clip(res["output"], 0, 1))
    raw = res["output_raw"]
    out["psnr_raw"] = raw.get("psnr_gt") if isinstance(raw, dict) else metrics.psnr(res["gt"], np.clip(raw, 0, 1))
    if "backtracks" in res:
        out["backtracks"] = res["backtracks"]
    return out


# --------------------------------------------------------------------------------------------------------------------
# Parent: plan, run children, tabulate
# --------------------------------------------------------------------------------------------------------------------


def versions() -> dict:
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine()}
    code = (
        "import json,torch,numpy,skimage;d={'torch':torch.__version__,'numpy':numpy.__version__,"
        "'scikit-image':skimage.__version__,'cuda':torch.version.cuda,"
        "'gpu':torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,"
        "'threads':torch.get_num_threads()}\n"
        "try:\n import deepinv;d['deepinv']=deepinv.__version__\nexcept Exception as e:\n d['deepinv']=None\n"
        "print(json.dumps(d))"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        info.update(json.loads(out.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError) as err:
        info["versions_error"] = str(err)
    try:
        cpu = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
               if ln.startswith("model name")]  # fmt: skip
        info["cpu"] = f"{cpu[0]} x{len(cpu)}" if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["loadavg_start"] = os.getloadavg()
    return info


def run_child(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {**spec, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    res = json.loads(lines[-1][len("RESULT "):])
    res["process_s"] = round(time.perf_counter() - t, 2)
    res["loadavg"] = os.getloadavg()[0]
    return res


def _ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def tabulate(speed: list[dict], parity: list[dict], device: str) -> str:
    mem_key = "peak_mb" if device == "cuda" else "peak_rss_mb"
    lines = []
    for size in sorted({r["size"] for r in speed}):
        rows = [r for r in speed if r["size"] == size]
        ref = next((r.get("steps_per_s") for r in rows if r["mode"] == "reference"), None)
        dinv = next((r.get("steps_per_s") for r in rows if r["mode"] == "deepinv"), None)
        lines.append(f"\n### speed, {size}x{size} px ({device})\n")
        lines.append("| mode | s/step | steps/s per fit | fit-steps/s (all fits) | vs reference | vs deepinv | peak MB |"
                     + (" RSS rise MB |" if device != "cuda" else ""))  # fmt: skip
        lines.append("|---|---|---|---|---|---|---|" + ("---|" if device != "cuda" else ""))
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['mode']} | error: {r['error'][:120]} |")
                continue
            sps = r.get("fit_steps_per_s", r.get("steps_per_s"))
            row = (f"| {r['mode']} | {r['s_per_step']:.4f} | {r['steps_per_s']:.3f} | {sps:.3f} | {_ratio(sps, ref)} "
                   f"| {_ratio(sps, dinv)} | {r.get(mem_key, float('nan')):.0f} |")  # fmt: skip
            if device != "cuda":
                row += f" {r.get('peak_rss_rise_mb', float('nan')):.0f} |"
            lines.append(row)
    if parity:
        size, iters = parity[0]["size"], parity[0]["iterations"]
        ref = next((r for r in parity if r["mode"] == "reference" and "error" not in r), None)
        lines.append(f"\n### quality, {size}x{size} px, {iters} iterations, sigma {SIGMA}, seed {SEED} ({device})\n")
        lines.append("| mode | PSNR of the returned image (dB) | PSNR raw last output | vs reference (dB) | wall s |")
        lines.append("|---|---|---|---|---|")
        for r in parity:
            if "error" in r:
                lines.append(f"| {r['mode']} | error: {r['error'][:120]} |")
                continue
            d = f"{r['psnr'] - ref['psnr']:+.2f}" if ref else "-"
            raw = f"{r['psnr_raw']:.2f}" if r.get("psnr_raw") is not None else "-"
            lines.append(f"| {r['mode']} | {r['psnr']:.2f} | {raw} | {d} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def estimate_paper(speed: list[dict], mode: str) -> dict | None:
    """Total fit time of the paper's workload from the measured s/step of ``mode`` (linear in pixels between sizes)."""
    pts = sorted((r["size"] ** 2, r["s_per_step"]) for r in speed if r["mode"] == mode and "s_per_step" in r)
    if not pts:
        return None
    if len(pts) == 1:
        per_px = pts[0][1] / pts[0][0]
        model = lambda px: per_px * px  # noqa: E731
    else:
        (x0, y0), (x1, y1) = pts[-2], pts[-1]  # the two largest sizes: the paper's images are 256-768 px
        slope = (y1 - y0) / (x1 - x0)
        model = lambda px: max(y0 + slope * (px - x0), y0 * px / x0 if px < x0 else 0.0)  # noqa: E731
    rows, total = [], 0.0
    for name, iters, sizes in PAPER_WORKLOAD:
        secs = sum(iters * model(_crop32(wh)) for wh in sizes)
        total += secs
        rows.append({"table": name, "fits": len(sizes), "iterations": iters, "hours": secs / 3600})
    return {"mode": mode, "measured_points": pts, "rows": rows, "total_hours": total / 3600}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--modes", nargs="+", default=None, help="default: reference deepinv and every ours-* mode")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps (default CPU 5, CUDA 20)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default CPU 15, CUDA 100; 0 = no speed runs)")
    ap.add_argument("--batch", type=int, nargs="*", default=None,
                    help="K for fit_many throughput runs, bf16 (default CUDA: 1 4 8; CPU: none)")
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=None,
                    help="image sizes for the fit_many runs (default CUDA 256, a Set5-size image; CPU: smallest size)")
    ap.add_argument("--parity-modes", nargs="*", default=None,
                    help="modes of the quality runs (default: reference deepinv ours-fp32 ours-cl-bf16, "
                         "+ ours-cl-bf16-cudagraphs on CUDA)")
    ap.add_argument("--parity-size", type=int, default=None, help="image size of the quality runs (default CPU 128)")
    ap.add_argument("--parity-iters", type=int, default=None,
                    help="iterations of the quality runs (default CPU 200, CUDA 3000; 0 = skip)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of speed runs, modes interleaved; the fastest round counts (for a shared CPU)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="CPU only: time steps by the wall clock, or by process CPU time / threads (steadier on a "
                         "machine that other jobs share)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: torch's choice)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per subprocess")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    if args.child:
        res = child(json.loads(args.child))
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    import torch

    from dip.files import write_json

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device.split(":")[0]
    if device == "cuda" and not torch.cuda.is_available():
        print("CUDA was asked for but is not available", file=sys.stderr)
        return 2
    cuda = device == "cuda"
    warmup = args.warmup if args.warmup is not None else (20 if cuda else 5)
    steps = args.steps if args.steps is not None else (100 if cuda else 15)
    parity_iters = args.parity_iters if args.parity_iters is not None else (2000 if cuda else 200)
    parity_size = args.parity_size or (512 if cuda else 128)
    batch = args.batch if args.batch is not None else ([1, 4, 8] if cuda else [])
    batch_sizes = args.batch_sizes or ([256] if cuda else [min(args.sizes)])
    modes = args.modes or (["reference", "deepinv"] + [m for m in OUR_MODES if cuda or m not in CUDA_ONLY])

    info = versions()
    print(f"# bench_fit on {device}: {info.get('cpu')} | {info.get('gpu') or ''} | torch {info.get('torch')} "
          f"| deepinv {info.get('deepinv')} | threads {info.get('threads')}", flush=True)  # fmt: skip
    speed, parity, rounds = [], [], []
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"bench_fit_{device}_{stamp}.json"

    def save(**more) -> None:
        # Written after every run, so a run cut short by a time limit still leaves its numbers.
        record = {
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device, "machine": info, "warmup": warmup, "steps": steps, "sigma": SIGMA, "seed": SEED,
            "speed": speed, "speed_rounds": rounds, "parity": parity, **more,
        }
        for target in (path, out_dir / f"bench_fit_{device}_latest.json"):
            write_json(target, record)
    for size in args.sizes if steps > 0 else []:  # --steps 0: quality runs only
        for rep in range(args.repeat):
            for mode in modes:
                spec = dict(mode=mode, size=size, iterations=warmup + steps, warmup=warmup, device=device,
                            threads=args.threads, clock=args.clock)  # fmt: skip
                r = run_child(spec, args.timeout)
                r["round"] = rep
                rounds.append(r)
                save()
                print(f"speed {size:4d} {mode:26s} " + (f"{r['s_per_step']:.4f} s/step  peak "
                      f"{r.get('peak_mb', r.get('peak_rss_mb', 0)):.0f} MB" if "s_per_step" in r else r.get("error", "")),
                      flush=True)  # fmt: skip
        for mode in modes:  # the fastest round of each mode counts
            done = [r for r in rounds if r["size"] == size and r["mode"] == mode]
            ok = [r for r in done if "s_per_step" in r]
            speed.append(min(ok, key=lambda r: r["s_per_step"]) if ok else done[-1])
    for size in batch_sizes if steps > 0 else []:
        for k in batch:
            for precision in ["bf16"]:
                spec = dict(mode=f"ours-batched-{precision}-x{k}", size=size, iterations=warmup + steps,
                            warmup=warmup, device=device, threads=args.threads, count=k, precision=precision,
                            clock=args.clock)
                r = run_child(spec, args.timeout)
                speed.append(r)
                save()
                print(f"speed {size:4d} {spec['mode']:26s} " + (f"{r['s_per_step']:.4f} s/step for {k} fits"
                      if "s_per_step" in r else r.get("error", "")), flush=True)  # fmt: skip
    parity_modes = args.parity_modes if args.parity_modes is not None else (
        ["reference", "deepinv", "ours-fp32", "ours-cl-bf16"] + (["ours-cl-bf16-cudagraphs"] if cuda else []))
    if parity_iters > 0:
        for mode in parity_modes:
            spec = dict(mode=mode, size=parity_size, iterations=parity_iters, warmup=0, device=device,
                        threads=args.threads)  # fmt: skip
            r = run_child(spec, max(args.timeout, 3600))
            parity.append(r)
            save()
            print(f"quality {parity_size} px {parity_iters} it {mode:26s} "
                  + (f"PSNR {r['psnr']:.2f} dB (raw {r['psnr_raw']:.2f})" if "psnr" in r else r.get("error", "")),
                  flush=True)  # fmt: skip

    table = tabulate(speed, parity, device)
    print(table)
    fastest = max((r for r in speed if r.get("mode", "").startswith("ours-cl") and "steps_per_s" in r
                   and r["size"] in args.sizes), key=lambda r: r["steps_per_s"], default=None)  # fmt: skip
    estimate = estimate_paper(speed, fastest["mode"]) if fastest else None
    if estimate:
        print(f"\n### paper workload from measured {estimate['mode']} s/step ({device}, one fit at a time)\n")
        for row in estimate["rows"]:
            print(f"- {row['table']}: {row['fits']} fits x {row['iterations']} it = {row['hours']:.2f} h")
        print(f"- total: {estimate['total_hours']:.2f} h")
    info["loadavg_end"] = os.getloadavg()
    save(paper_estimate=estimate, table_markdown=table)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
