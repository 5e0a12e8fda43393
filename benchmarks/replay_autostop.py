"""Does the auto stop hurt the paper's settings? Replay it on the committed fits' logged curves.

The committed reproduction fits (``results/paper/restored/**/dip/*.json``: Set5 x4 at the paper's 2000 steps, House
at sigma 25 and the paper's 1800) ran with a fixed budget and logged their curves every 50 steps (``history``: loss,
psnr_obs, psnr_gt, psnr_gt_avg). The auto rule decides on logged records only, so replaying it on those curves
(:func:`dip.fit.stopping.auto_stop_of`) is what a fit with the auto stop would have done, step for step. Printed per
fit: the rule, its noise estimate, the step it stops at, the returned curve's PSNR there, at the fixed budget and at
the best logged step (the oracle), and the verdict: the auto stop lands within 0.2 dB of the fixed budget or above.

    python benchmarks/replay_autostop.py                                   # sigma-hat: the declared noise level
    python benchmarks/replay_autostop.py --images-dir resources            # sigma-hat from the released noisy input

``--images-dir``: a folder holding the manifest's relative paths (the workflow's ``resources/`` or a mirror of the
download base URL); the denoising fits' noise is then estimated from the released noisy image they fitted, as the
auto stop does. Without it the declared level (sigma 25) stands in, said in the table. PSNRs are the history's (full
image, RGB; SR's table metric is the Y channel of a cropped region, so these SR numbers differ from the table's by a
constant per image, the differences between steps do not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLOR = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior/Denoising/Color"
SR = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior/SR"
TOLERANCE = 0.2  # dB below the fixed budget that still counts as "not hurt"


def _observation(record: dict, path: Path, images_dir: Path | None):
    """The released noisy input of a denoising fit, or None (no folder, not a denoising fit, file absent)."""
    spec = record.get("spec") or {}
    if images_dir is None or spec.get("task") != "denoise":
        return None
    image = path.stem.rsplit("_seed", 1)[0]
    noisy = images_dir / COLOR / str(int(spec["level"])) / f"{image}_noisy.png"
    if not noisy.is_file():
        return None
    from dip.data.imageio import read_image

    return read_image(noisy, mode="rgb")


def _sr_if_applied(record: dict, path: Path, images_dir: Path | None) -> dict | None:
    """What the discrepancy principle would do on an SR fit (the auto stop runs SR's budget): sigma-hat of the LR
    input (made from the GT as the workflow makes it) and the step where the logged loss reaches it."""
    spec = record.get("spec") or {}
    if images_dir is None or spec.get("task") != "sr":
        return None
    dataset = Path(path).parts[-5] if len(Path(path).parts) >= 5 else ""
    image = path.stem.rsplit("_seed", 1)[0]
    gt_path = images_dir / SR / {"set5": "Set5", "set14": "Set14"}.get(dataset, dataset) / f"x{spec['level']}" / (
        f"{image}_GT.png")
    if not gt_path.is_file():
        return None
    from dip.data import degrade
    from dip.data.imageio import read_image
    from dip.fit.stopping import Discrepancy, estimate_noise_sigma, replay

    _, lr = degrade.make_lr(read_image(gt_path, mode="rgb"), int(spec["level"]))
    out = replay(record["history"], Discrepancy(estimate_noise_sigma(lr)))
    return {"sigma_255": out["sigma_255"], "stop_step": out["stop_step"], "psnr_stop": out["psnr_stop"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=Path, default=ROOT / "results" / "paper" / "restored",
                   help="folder searched for */dip/*.json fit records (default results/paper/restored)")
    p.add_argument("--images-dir", type=Path, help="folder holding the manifest's relative paths (for sigma-hat)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)

    from dip.fit.stopping import auto_stop_of

    rows = []
    for path in sorted(args.records.glob("**/dip/*.json")):
        record = json.loads(path.read_text())
        spec = record.get("spec") or {}
        observation = _observation(record, path, args.images_dir)
        out = auto_stop_of(record, task=spec.get("task"), observation=observation)
        fixed, best = out.get("psnr_last"), out.get("psnr_best")
        stop = out.get("psnr_stop")
        rows.append({
            "record": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
            "task": spec.get("task"), "level": spec.get("level"), "preset": spec.get("preset"),
            "budget": record["config"]["iterations"], "rule": out["rule"],
            "sigma_255": out.get("sigma_255"), "estimate": out.get("estimate_source"),
            "stop_step": out["stop_step"] if out["fired"] else record["config"]["iterations"] - 1,
            "fired": out["fired"], "curve": out.get("curve"), "psnr_stop": stop, "psnr_fixed": fixed,
            "psnr_best": best, "best_step": out.get("best_step"),
            "auto_minus_fixed": None if stop is None or fixed is None else stop - fixed,
            "sr_discrepancy_if_applied": _sr_if_applied(record, path, args.images_dir),
        })  # fmt: skip
    head = ("| fit | rule | sigma-hat | stop step | PSNR there | fixed budget (step) | best logged (step) "
            "| auto - fixed | verdict |")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    ok = True
    for r in rows:
        diff = r["auto_minus_fixed"]
        good = diff is not None and diff >= -TOLERANCE
        ok &= good
        sigma = "" if r["sigma_255"] is None else f"{r['sigma_255']:.2f} ({r['estimate']})"
        name = Path(r["record"]).stem + f" ({r['task']} {r['level']})"
        print(f"| {name} | {r['rule']} | {sigma} | {r['stop_step']}{'' if r['fired'] else ' (never fired)'} | "
              f"{r['psnr_stop']:.2f} | {r['psnr_fixed']:.2f} ({r['budget'] - 1}) | {r['psnr_best']:.2f} "
              f"({r['best_step']}) | {diff:+.2f} | {'ok' if good else 'HURT'} |")  # fmt: skip
    for r in rows:
        dp = r["sr_discrepancy_if_applied"]
        if dp is not None:
            where = (f"step {dp['stop_step']} ({dp['psnr_stop']:.2f} dB, {dp['psnr_stop'] - r['psnr_fixed']:+.2f})"
                     if dp["stop_step"] is not None else "never")  # fmt: skip
            print(f"{Path(r['record']).stem}: the discrepancy principle, if SR used it (sigma-hat of the LR input "
                  f"{dp['sigma_255']:.2f}/255): {where}")  # fmt: skip
    print(f"\n{len(rows)} fits; the auto stop is within {TOLERANCE} dB of the fixed budget or above on "
          f"{sum(1 for r in rows if r['auto_minus_fixed'] is not None and r['auto_minus_fixed'] >= -TOLERANCE)}"
          f" ({'all' if ok else 'NOT all'})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
