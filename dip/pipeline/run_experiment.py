"""The paper's other experiments as workflow jobs (``paper_experiments:``; ``workflow/rules/experiments.smk``).

Each experiment job reads the reference repository's images, runs its :mod:`dip.experiments` runner and writes its
panels (PNG) and ``record.json`` beside them: the figure panels (label, file, PSNR), the table rows and details.
:func:`report_experiment` turns a record into the experiment's figure and table. The architecture comparison runs
one job per network (:func:`run_architecture`) and :func:`summarise_architectures` gathers them into its record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dip.experiments.catalog import EXPERIMENTS

__all__ = ["run_experiment", "run_architecture", "summarise_architectures", "report_experiment"]


class _Record:
    """The panels, table rows and details an experiment job collects; panels are written as they come."""

    def __init__(self, folder: Path):
        self.folder, self.panels, self.rows, self.details = folder, [], [], {}

    def save(self, label: str, key: str, img, psnr: float | None = None):
        from dip.data.imageio import write_image

        write_image(self.folder / f"{key}.png", img)
        self.panels.append([label, f"{key}.png", psnr])

    def row(self, method: str, result=None, **scores):
        self.rows.append(
            {
                "method": method,
                **{k: v for k, v in scores.items() if k != "image"},
                "seconds": None if result is None else round(result.seconds, 3),
                "iterations": None if result is None else result.iterations_done,
            }
        )


def _jpeg(spec: dict, files: Mapping[str, str], rec: _Record, device: str | None):
    from dip import experiments as X
    from dip.data.imageio import centre_crop, read_image
    from dip.eval.metrics import psnr
    from dip.presets import config_from_spec

    jpeg = centre_crop(read_image(files["snail"]), spec["crop"])
    config = config_from_spec(spec["dip"], default_preset="jpeg", device=device)
    result, snaps = X.jpeg_restoration(jpeg, config, [int(s) for s in spec["steps"]])
    rec.save("JPEG input", "input", jpeg)
    for step in spec["steps"]:
        rec.save(f"DIP, step {int(step) + 1}", f"step{step}", snaps[int(step)])
        rec.row(f"dip_step{int(step) + 1}", result, psnr_to_jpeg=psnr(jpeg, snaps[int(step)]))
    rec.details["crop_box"] = result.crop_box


def _inpainting(name: str):
    key, preset = ("kate", "inpaint-text") if name == "inpaint_text" else ("vase", "inpaint-hole")

    def run(spec: dict, files: Mapping[str, str], rec: _Record, device: str | None):
        from dip import experiments as X
        from dip.data.degrade import mask_from_file
        from dip.data.imageio import centre_crop, crop_to_box, read_image
        from dip.presets import config_from_spec

        img = read_image(files[key], mode="rgb")
        mask = mask_from_file(files[f"{key}_mask"], img.shape[:2])
        img, mask = centre_crop(img, spec["crop"]), centre_crop(mask, spec["crop"])
        out = X.inpainting_comparison(img, mask, config_from_spec(spec["dip"], default_preset=preset, device=device))
        result = out["dip"]["result"]
        rec.save("ground truth", "gt", crop_to_box(img, result.crop_box))
        for method, label in (("input", "masked input"), ("biharmonic", "biharmonic"), ("dip", "DIP")):
            entry = out[method]
            rec.save(label, method, entry["image"], entry["psnr"])
            rec.row(method, result if method == "dip" else None, **{k: entry[k] for k in ("psnr", "ssim", "psnr_hole")})

    return run


def _flash(spec: dict, files: Mapping[str, str], rec: _Record, device: str | None):
    from dip import experiments as X
    from dip.data.imageio import centre_crop, read_image
    from dip.presets import config_from_spec

    flash = centre_crop(read_image(files["cave_flash"], mode="rgb"), spec["crop"])
    noflash = centre_crop(read_image(files["cave_noflash"], mode="rgb"), spec["crop"])
    config = config_from_spec(spec["dip"], default_preset="flash", device=device)
    out = X.flash_no_flash(noflash, flash, config, bilateral=spec.get("bilateral"))
    for key, label in (
        ("flash", "flash (network input)"),
        ("noflash", "no flash (target)"),
        ("joint_bilateral", "joint bilateral"),
        ("dip", "DIP"),
    ):
        rec.save(label, key, out[key]["image"])
    for key in ("joint_bilateral", "dip"):
        rec.row(key, out[key].get("result"), psnr_to_noflash=out[key]["psnr_to_noflash"])


def _sr_prior(spec: dict, files: Mapping[str, str], rec: _Record, device: str | None):
    from dip import experiments as X
    from dip.data.imageio import centre_crop, read_image
    from dip.presets import config_from_spec

    hr = centre_crop(read_image(files["zebra_crop"], mode="rgb"), spec["crop"])
    dip_config = config_from_spec(spec["dip"], base=X.PRIOR_EFFECT_DIP, device=device)
    out = X.sr_prior_comparison(
        hr,
        int(spec["factor"]),
        dip_config=dip_config,
        iterations=int(spec["iterations"]),
        tv_weight=float(spec["tv_weight"]),
    )
    rec.save("HR (ground truth)", "hr", out["hr"]["image"])
    rec.save(f"LR (x{spec['factor']})", "lr", out["lr"]["image"])
    for key, label in (("bicubic", "bicubic of the LR"), ("no_prior", "no prior"), ("tv_prior", "TV prior"), ("dip", "DIP")):
        rec.save(label, key, out[key]["image"], out[key]["psnr"])
        rec.row(key, out[key].get("result"), psnr=out[key]["psnr"], ssim=out[key]["ssim"])


def _preimage(spec: dict, files: Mapping[str, str], rec: _Record, device: str | None):
    from dip.data.imageio import read_image
    from dip.experiments import preimage as P

    if spec.get("weights"):
        net = P.load_alexnet(spec["weights"])
        rec.details["network"] = f"AlexNet ({spec['weights']})"
    else:
        net = P.small_cnn(seed=0)
        rec.details["network"] = "small random CNN (test stand-in; set preimage.weights for AlexNet)"
    config = P.PreimageConfig(layer=spec["layer"], device=device or "auto").replace(**spec.get("settings", {}))
    for image in spec["images"]:
        target = P.prepare_target(read_image(files[image], mode="rgb"), int(spec["size"]))
        dip_res, tv_res = P.invert_dip(net, target, config), P.invert_tv(net, target, config)
        rec.save(f"{image}", f"{image}_target", target)
        for res_ in (tv_res, dip_res):
            final = res_.history[-1]
            rec.save(
                f"{image}: {res_.method.upper()} pre-image", f"{image}_{res_.method}", res_.output, final["psnr_target"]
            )
            rec.rows.append(
                {
                    "method": res_.method,
                    "image": image,
                    "feature_error": final["feature_error"],
                    "psnr": final["psnr_target"],
                    "seconds": round(res_.seconds, 3),
                    "iterations": config.iterations,
                }
            )
    rec.details["layer"] = spec["layer"]


RUNNERS: dict[str, Callable] = {
    "jpeg": _jpeg,
    "inpaint_text": _inpainting("inpaint_text"),
    "inpaint_hole": _inpainting("inpaint_hole"),
    "flash": _flash,
    "sr_prior": _sr_prior,
    "preimage": _preimage,
}


def _title(name: str) -> tuple[str, str]:

    title, figure = EXPERIMENTS[name][:2]
    return title, figure


def run_experiment(name: str, spec: dict, files: Mapping[str, str], record: str | Path) -> dict[str, Any]:
    """Run experiment ``name`` (``spec``: its config entry; ``files``: data file key -> path); its panels go beside
    ``record`` (the record.json written last). Returns the record."""
    from dip.files import write_json
    from dip.restore import environment_info

    if name not in RUNNERS:
        raise ValueError(f"unknown experiment {name!r} (one of {', '.join(RUNNERS)}; architectures: run_architecture)")
    print(json.dumps({"name": name, "spec": spec}, indent=1, default=str))
    rec = _Record(Path(record).parent)
    RUNNERS[name](spec, files, rec, spec.get("device"))
    title, figure = _title(name)
    out = {
        "name": name,
        "title": title,
        "figure": figure,
        "spec": spec,
        "panels": rec.panels,
        "rows": rec.rows,
        "details": rec.details,
        "environment": environment_info(),
    }
    write_json(record, out)
    print(json.dumps(rec.rows, indent=1))
    return out


def _library(spec: dict, files: Mapping[str, str]):
    """The library image and its mask, centre-cropped as the config says (Fig. 8)."""
    from dip.data.degrade import mask_from_file
    from dip.data.imageio import centre_crop, read_image

    img = read_image(files["library"], mode="rgb")
    mask = mask_from_file(files["library_mask"], img.shape[:2])
    return centre_crop(img, spec["crop"]), centre_crop(mask, spec["crop"])


def run_architecture(arch: str, spec: dict, files: Mapping[str, str], png: str, json_path: str) -> dict:
    """Inpaint the library image with network ``arch`` of the architecture comparison (Fig. 8): the restored PNG and
    its record (dip.restore.save_result) with the network's parameter count and the PSNR over the image and the hole."""
    from dip import experiments as X
    from dip.restore import restore, save_result

    img, mask = _library(spec, files)
    settings = dict(spec.get("settings") or {})
    if spec.get("device"):
        settings.setdefault("device", spec["device"])
    config = X.architecture_config(arch, width=spec.get("width"), pad=spec.get("pad"), **settings)
    print(json.dumps({"arch": arch, "config": config.to_dict()}, indent=1, default=str))
    result = restore("inpaint", img, config=config, mask=mask, ground_truth=img)
    scores = X.score_inpainting(img, result.output, mask, result.crop_box)
    save_result(
        result,
        png,
        json_path,
        extra={
            "method": arch,
            "label": X.ARCHITECTURES[arch][0],
            "parameters": X.architecture_parameters(config),
            "scores": scores,
        },
    )
    print(json.dumps(scores, indent=1, default=str))
    return scores


def summarise_architectures(spec: dict, files: Mapping[str, Any], gt: str, masked: str, record: str) -> dict:
    """Gather the architecture comparison (``files``: the data files, and ``pngs``/``jsons`` of every network) into
    its record.json, with the ground truth and the masked input cropped as the fits cropped them."""
    from dip.data import degrade
    from dip.data.imageio import crop_to_box, write_image
    from dip.files import write_json

    img, mask = _library(spec, files)
    panels, rows, box = [], [], None
    for png, js in zip(files["pngs"], files["jsons"]):
        rec = json.loads(Path(js).read_text())
        box, s = rec.get("crop_box"), rec["scores"]
        panels.append([rec["label"].split(" (")[0], Path(png).name, s["psnr"]])
        rows.append(
            {
                "method": rec["method"],
                "network": rec["label"],
                "parameters": rec["parameters"],
                "psnr": s["psnr"],
                "psnr_hole": s["psnr_hole"],
                "ssim": s["ssim"],
                "seconds": rec["summary"]["seconds"],
                "iterations": rec["summary"]["iterations_done"],
            }
        )
    img, mask = crop_to_box(img, box), crop_to_box(mask, box)
    write_image(gt, img)
    write_image(masked, degrade.apply_mask(img, mask))
    title, figure = _title("architectures")
    out = {
        "name": "architectures",
        "title": title,
        "figure": figure,
        "spec": spec,
        "panels": [["ground truth", "gt.png", None], ["masked input", "input.png", None]] + panels,
        "rows": rows,
        "details": {"crop_box": box},
    }
    write_json(record, out)
    return out


def report_experiment(record: str | Path, png: str, pdf: str, md: str, csv: str):
    """An experiment's record.json -> its image grid (at most 6 panels a row) and its table."""
    import pandas as pd

    from dip.data.imageio import read_image
    from dip.eval.figures import plot_grid
    from dip.eval.writers import write_table

    record = Path(record)
    rec = json.loads(record.read_text())
    panels = []
    for label, file, psnr in rec["panels"]:
        text = label if psnr is None else f"{label}\n{psnr:.2f} dB"
        panels.append((text, read_image(record.parent / file, alpha="ignore")))
    # At most 6 panels a row, so the wide comparisons (9 networks) stay readable.
    rows = [{"image": "" if i else rec["name"], "panels": panels[i : i + 6]} for i in range(0, len(panels), 6)]
    title = f"{rec['title']} ({rec['figure']})"
    plot_grid(rows, png, pdf, title=title)
    table = pd.DataFrame(rec["rows"])
    table = table.set_index([c for c in ("method", "image") if c in table.columns])
    write_table(table, md=md, csv=csv, caption=title)
    print(table.to_string())
