"""Does a speed mode cost quality? Full-length fits in fp32 and bf16, same image, seed, weights and input noise.

Each (image, precision) runs ``dip.fit.fit`` (the denoising preset, channels_last) in a fresh process and keeps the
PSNR curve (raw output and the returned exponential average, every ``--log-every`` steps). The table compares each
precision with fp32 at the last step (what a fit returns), at the best logged step, and as the largest gap along
the curve. Speed is not measured here (``bench_fit.py`` does that); these runs may share the CPU.

    python benchmarks/bench_quality.py --images astronaut --size 256 --iterations 3000
    python benchmarks/bench_quality.py --images astronaut chelsea coffee --size 128 --iterations 3000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIGMA = 25  # on the 0-255 scale (dip.data.degrade.add_gaussian_noise)
SEED = 0
PRECISIONS = ("fp32", "bf16")


def test_image(name: str, size: int):
    """A scikit-image photo: its centre square resized to ``size`` (Lanczos), and a noisy copy (sigma 25 of 255)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from dip.data import degrade

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = img[top : top + side, left : left + side, :3]
    img = np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS), dtype=np.float32) / 255.0
    return img, degrade.add_gaussian_noise(img, SIGMA, seed=SEED)


def child(spec: dict) -> dict:
    from dip.eval import metrics
    from dip import physics
    from dip.fit import BaseHook, fit, set_threads
    from dip.presets import get_preset

    class Progress(BaseHook):
        """Writes the curve so far after every logged step: a run cut short still leaves its numbers."""

        def on_log(self, state, record):
            curve.append({"step": record["step"], "raw": record["psnr_gt"], "avg": record["psnr_gt_avg"]})
            if spec.get("progress"):
                Path(spec["progress"]).write_text(json.dumps({**spec, "curve": curve}))

    curve: list[dict] = []

    set_threads(spec["threads"])
    gt, noisy = test_image(spec["image"], spec["size"])
    cfg = get_preset(
        "denoise", iterations=spec["iterations"], seed=SEED, precision=spec["precision"], channels_last=True,
        log_every=spec["log_every"],
    )  # fmt: skip
    result = fit(noisy, physics.Identity(), cfg, ground_truth=gt, hooks=[Progress()])
    return {
        **spec,
        "psnr_returned": float(metrics.psnr(gt, result.output)),
        "curve": [
            {"step": r["step"], "raw": r["psnr_gt"], "avg": r["psnr_gt_avg"]} for r in result.history
        ],
        "seconds": result.seconds,
        "backtracks": result.backtracks,
    }


def _run_child(spec: dict, queue) -> None:
    queue.put(child(spec))


def run_isolated(spec: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_child, args=(spec, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def compare(runs: list[dict]) -> list[dict]:
    """Per image and precision: PSNR returned, best average, and the gap to fp32 (last, best, largest on the curve)."""
    rows = []
    for r in runs:
        base = next(b for b in runs if b["image"] == r["image"] and b["precision"] == "fp32")
        gaps = [a["avg"] - b["avg"] for a, b in zip(r["curve"], base["curve"]) if a["avg"] is not None]
        rows.append({
            "image": r["image"], "precision": r["precision"], "returned": r["psnr_returned"],
            "best_avg": max(c["avg"] for c in r["curve"] if c["avg"] is not None),
            "gap_returned": r["psnr_returned"] - base["psnr_returned"],
            "gap_best": max(c["avg"] for c in r["curve"] if c["avg"] is not None)
            - max(c["avg"] for c in base["curve"] if c["avg"] is not None),
            "gap_worst_on_curve": max(gaps, key=abs) if gaps else float("nan"),
            "seconds": r["seconds"],
        })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+", default=["astronaut"], help="scikit-image photo names")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    if "fp32" not in args.precisions:
        ap.error("fp32 is the baseline every other precision is compared with; include it")

    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"bench_quality_{stamp}.json"
    runs: list[dict] = []
    for image in args.images:
        for precision in args.precisions:
            spec = dict(image=image, size=args.size, iterations=args.iterations, precision=precision,
                        log_every=args.log_every, threads=args.threads,
                        progress=str(args.out / f"bench_quality_{stamp}_{image}_{precision}.partial.json"))  # fmt: skip
            r = run_isolated(spec)
            runs.append(r)
            print(f"{image} {args.size} px {args.iterations} it {precision}: returned {r['psnr_returned']:.2f} dB "
                  f"({r['seconds']:.0f} s)", flush=True)  # fmt: skip
            path.write_text(json.dumps({
                "started": stamp, "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                "sigma": SIGMA, "seed": SEED, "runs": runs,
            }, indent=1))  # fmt: skip
    rows = compare(runs)
    print("\n| image | precision | returned dB | best avg dB | vs fp32 returned | vs fp32 best | largest gap on curve |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['image']} | {row['precision']} | {row['returned']:.2f} | {row['best_avg']:.2f} | "
              f"{row['gap_returned']:+.2f} | {row['gap_best']:+.2f} | {row['gap_worst_on_curve']:+.2f} |")  # fmt: skip
    data = json.loads(path.read_text())
    data["comparison"] = rows
    path.write_text(json.dumps(data, indent=1))
    print(f"\n{path}")


if __name__ == "__main__":
    main()
