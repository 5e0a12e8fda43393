"""Shim: gather the architecture comparison (one fit per network) into record.json + the GT and masked input."""

import json
from pathlib import Path

from _shim import logged

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.data import degrade
    from dip import experiments as X
    from dip.data.imageio import read_image, write_image
    from dip.restore import write_json_atomic

    inp, out, spec = snakemake.input, snakemake.output, snakemake.params.spec  # noqa: F821
    folder = Path(out.record).parent
    img = X.centre_crop(read_image(inp.library, mode="rgb"), spec["crop"])
    mask = X.centre_crop(degrade.mask_from_file(inp.library_mask, read_image(inp.library).shape[:2]), spec["crop"])
    panels, rows = [], []
    box = None
    for png, js in zip(inp.pngs, inp.jsons):
        rec = json.loads(Path(js).read_text())
        box = rec.get("crop_box")
        s = rec["scores"]
        panels.append([rec["label"].split(" (")[0], Path(png).name, s["psnr"]])
        rows.append({"method": rec["method"], "network": rec["label"], "parameters": rec["parameters"],
                     "psnr": s["psnr"], "psnr_hole": s["psnr_hole"], "ssim": s["ssim"],
                     "seconds": rec["summary"]["seconds"], "iterations": rec["summary"]["iterations_done"]})
    gt, m = X._crop(img, box), X._crop(mask, box)
    write_image(out.gt, gt)
    write_image(out.input, degrade.apply_mask(gt, m))
    panels = [["ground truth", "gt.png", None], ["masked input", "input.png", None]] + panels
    write_json_atomic(out.record, {"name": "architectures", "title": X.EXPERIMENTS["architectures"][0],
                                   "figure": X.EXPERIMENTS["architectures"][1], "spec": spec, "panels": panels,
                                   "rows": rows, "details": {"crop_box": box}})
