"""Is each member of the DIP family faithful to its authors? One comparison case per method, with its authors' number.

Each case fits the method's preset (:mod:`dip.presets`, the authors' settings) on the image and noise its authors
used, and prints our PSNR (the returned image against the clean one, the paper's metric), the authors' number, and the
gap. One seed (``--seed``, default 0): the authors report one run too, so a gap within a few tenths of a dB is seed
noise, not unfaithfulness.

Where no published number could be checked (see each case's ``source``), the authors' column says so and only our
PSNR is printed: a number from memory would be no comparison.

    python benchmarks/bench_family.py --images-dir resources --threads 1             # all five (CPU: many hours)
    python benchmarks/bench_family.py --methods dd --image dd=astronaut.png --threads 1   # the Deep Decoder's case
    python benchmarks/bench_family.py --tiny                                          # seconds: the harness itself

``--images-dir``: a folder holding the manifest's paths (the workflow's ``resources/``), for the paper's 9 colour
images (Peppers); without it those cases fall back to a scikit-image photo of the same size and say so. ``--tiny``
crops to 64 px, caps the networks at 8 channels and runs 10 steps: a check that every case runs, not a number.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclasses.dataclass(frozen=True)
class Case:
    method: str
    preset: str
    image: str  # "skimage:<name>" or "color9:<name>" (the paper's 9 colour images, --images-dir)
    size: int
    sigma: float  # Gaussian noise, 0-255 scale; the noisy image is clipped to [0, 1] as the authors' code does
    authors_psnr: float | None
    source: str  # where the authors' number (or the case) comes from
    settings: dict = dataclasses.field(default_factory=dict)  # FitConfig overrides beyond the preset


CASES = {
    "dd": Case(
        "dd", "dd-denoise", "skimage:astronaut", 512, 30.0, 10 * math.log10(1 / 0.001325),
        "reinhardh/supplement_deep_decoder, denoising.ipynb, cell 'Denoise noisy image' (test_data/astronaut.png 512 "
        "px, sigma 30, k=128, 1900 it, find_best): prints 'Iteration 01890 ... Actual loss 0.001325' (MSE to the "
        "clean image) = 28.78 dB. Their astronaut is another crop than scikit-image's: give it with --image dd=PATH",
    ),
    "dip-tv": Case(
        "dip-tv", "dip-tv-denoise", "color9:peppers", 512, 25.0, None,
        "Liu et al. ICASSP 2019 report SNR (not PSNR) on their own test images with lambda tuned per image; no "
        "number of theirs on this case was checked: ours only",
    ),
    "sgld": Case(
        "sgld", "sgld-denoise", "color9:peppers", 512, 25.0, None,
        "ZezhouCheng/GP-DIP, Image_Denoising.ipynb (Peppers 512 px, sigma 25, 20000 it, burn-in 7000): the notebook "
        "prints no final PSNR (its plot shows 'SGLD Avg'); the paper's denoising table was not checked: ours only",
    ),
    "drp": Case(
        "drp", "drp-denoise", "color9:peppers", 512, 0.12 * 255, None,
        "sun-umn/Deep-Random-Projector, 1_Denoising/Main_Start.py (Peppers 512 px, Gaussian_Noise_2: std 0.12, "
        "ImageNet-C level 2, clipped; 5000 it): the repository prints no PSNR and the paper's table was not checked: "
        "ours only",
    ),
    "sure": Case(
        "sure", "sure-denoise", "color9:peppers", 512, 25.0, None,
        "gistvision/DIP-denosing, exp_denoising.sh 'ablation' (dip_sure, CSet9, sigma 25, 3000 it; their s2s network, "
        "ours the default skip net): per-image results only on a drive link, not checked: ours only",
        settings={"method_settings": {"sigma": 25.0, "epsilon": 0.5, "lr_milestones": [2000], "lr_gamma": 0.5}},
    ),
}

TINY = dict(width=8, iterations=10, log_every=5)
TINY_SIZE = 64


def load_clean(case: Case, images_dir: Path | None, size: int, path: Path | None = None):
    """The clean image of ``case`` (centre square of ``size``) and what was read: ``path`` when given (``--image``),
    else the case's own."""
    import skimage.data

    from benchmarks.bench_autostop import COLOR9, _manifest, square
    from dip.data.imageio import read_image

    if path is not None:
        return square(read_image(path, mode="rgb"), size), path.name
    kind, name = case.image.split(":")
    if kind == "color9" and images_dir is not None:
        rel = f"{COLOR9}/{name}_GT.png"
        path = images_dir / rel
        if path.is_file():
            import hashlib

            want, got = _manifest().get(rel), hashlib.sha256(path.read_bytes()).hexdigest()
            if want is not None and got != want:
                raise SystemExit(f"{path}: sha256 {got[:12]}... is not the manifest's {want[:12]}...")
            return square(read_image(path, mode="rgb"), size), f"{name}_GT.png"
    if kind == "color9":
        name = "coffee"  # no Peppers offline: a colour photo of the same size, and the table says so
    return square(getattr(skimage.data, name)(), size), f"scikit-image {name}"


def run_case(case: Case, args) -> dict:
    import numpy as np

    from dip.eval.metrics import psnr
    from dip.presets import get_preset
    from dip.restore import restore

    size = TINY_SIZE if args.tiny else case.size
    clean, read = load_clean(case, args.images_dir, size, args.image.get(case.method))
    rng = np.random.default_rng(args.seed)
    noisy = np.clip(clean + rng.normal(0.0, case.sigma / 255, clean.shape), 0, 1).astype(np.float32)
    overrides = dict(case.settings)
    if args.tiny:
        overrides.update(TINY)
        if case.method == "sgld":
            overrides["method_settings"] = {**get_preset(case.preset).method_settings, "burn_in": 3, "sample_every": 2}
    config = get_preset(case.preset, device=args.device, seed=args.seed, **overrides)
    started = time.perf_counter()
    result = restore("denoise", noisy, config=config, ground_truth=clean)
    ours = psnr(clean, result.output)
    gap = None if case.authors_psnr is None else ours - case.authors_psnr
    return {"method": case.method, "image": read, "size": size, "sigma": case.sigma, "steps": result.iterations_done,
            "ours": ours, "authors": case.authors_psnr, "gap": gap, "seconds": time.perf_counter() - started,
            "source": case.source}  # fmt: skip


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--images-dir", type=Path, help="folder with the manifest's paths (the 9 colour images)")
    parser.add_argument("--image", action="append", default=[], metavar="METHOD=PATH",
                        help="the clean image of a method's case (e.g. dd=astronaut.png from supplement_deep_decoder's "
                             "test_data/, the authors' own crop)")
    parser.add_argument("--tiny", action="store_true", help="64 px, width 8, 10 steps: the harness, not a number")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (the machine's default if unset)")
    args = parser.parse_args(argv)
    try:
        args.image = {k: Path(v) for k, v in (item.split("=", 1) for item in args.image)}
    except ValueError:
        parser.error("--image takes METHOD=PATH")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"{'method':7s} {'image':22s} {'px':>4s} {'sigma':>6s} {'steps':>6s} {'ours':>7s} {'authors':>7s} "
          f"{'gap':>6s} {'s':>7s}")  # fmt: skip
    for name in args.methods:
        row = run_case(CASES[name], args)
        print(f"{row['method']:7s} {row['image'][:22]:22s} {row['size']:4d} {row['sigma']:6.1f} {row['steps']:6d} "
              f"{row['ours']:7.2f} {_cell(row['authors']):>7s} {_cell(row['gap']):>6s} {row['seconds']:7.1f}",
              flush=True)  # fmt: skip
    print("\nauthors' numbers:")
    for name in args.methods:
        print(f"  {name}: {CASES[name].source}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
