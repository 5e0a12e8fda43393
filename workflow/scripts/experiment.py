"""Shim: run one of the paper's extra experiments (dip.experiments) -> its images and record.json.

params.name picks the experiment, params.spec is its `paper_experiments` config section. The record lists the
figure panels (label, file, PSNR) and the table rows that experiment_report.py turns into a figure and a table.
"""

import json
from pathlib import Path

from _shim import dump, logged, set_threads

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip import experiments as X
    from dip.data.degrade import mask_from_file
    from dip.data.imageio import read_image, write_image
    from dip.restore import environment_info, write_json_atomic

    set_threads(snakemake.threads)  # noqa: F821
    name, spec = snakemake.params.name, snakemake.params.spec  # noqa: F821
    files = dict(snakemake.input)  # noqa: F821
    record_path = Path(snakemake.output.record)  # noqa: F821
    folder = record_path.parent
    device = spec.get("device")
    print(dump({"name": name, "spec": spec}))
    panels, rows, details = [], [], {}

    def save(label, key, img, psnr=None):
        write_image(folder / f"{key}.png", img)
        panels.append([label, f"{key}.png", psnr])

    def row(method, result=None, **scores):
        rows.append({"method": method, **{k: v for k, v in scores.items() if k != "image"},
                     "seconds": None if result is None else round(result.seconds, 3),
                     "iterations": None if result is None else result.iterations_done})

    if name == "jpeg":
        jpeg = X.centre_crop(read_image(files["snail"]), spec["crop"])
        config = X.config_from_spec(spec["dip"], default_preset="jpeg", device=device)
        result, snaps = X.jpeg_restoration(jpeg, config, [int(s) for s in spec["steps"]])
        save("JPEG input", "input", jpeg)
        for step in spec["steps"]:
            save(f"DIP, step {int(step) + 1}", f"step{step}", snaps[int(step)])
            row(f"dip_step{int(step) + 1}", result, psnr_to_jpeg=X.metrics.psnr(jpeg, snaps[int(step)]))
        details["crop_box"] = result.crop_box
    elif name in ("inpaint_text", "inpaint_hole"):
        key = "kate" if name == "inpaint_text" else "vase"
        img = read_image(files[key], mode="rgb")
        mask = mask_from_file(files[f"{key}_mask"], img.shape[:2])
        img, mask = X.centre_crop(img, spec["crop"]), X.centre_crop(mask, spec["crop"])
        preset = "inpaint-text" if name == "inpaint_text" else "inpaint-hole"
        out = X.inpainting_comparison(img, mask, X.config_from_spec(spec["dip"], default_preset=preset, device=device))
        result = out["dip"]["result"]
        save("ground truth", "gt", X._crop(img, result.crop_box))
        for method, label in (("input", "masked input"), ("biharmonic", "biharmonic"), ("dip", "DIP")):
            entry = out[method]
            save(label, method, entry["image"], entry["psnr"])
            row(method, result if method == "dip" else None, **{k: entry[k] for k in ("psnr", "ssim", "psnr_hole")})
    elif name == "flash":
        flash = X.centre_crop(read_image(files["cave_flash"], mode="rgb"), spec["crop"])
        noflash = X.centre_crop(read_image(files["cave_noflash"], mode="rgb"), spec["crop"])
        out = X.flash_no_flash(noflash, flash, X.config_from_spec(spec["dip"], default_preset="flash", device=device),
                               bilateral=spec.get("bilateral"))
        for key, label in (("flash", "flash (network input)"), ("noflash", "no flash (target)"),
                           ("joint_bilateral", "joint bilateral"), ("dip", "DIP")):
            save(label, key, out[key]["image"])
        for key in ("joint_bilateral", "dip"):
            row(key, out[key].get("result"), psnr_to_noflash=out[key]["psnr_to_noflash"])
    elif name == "sr_prior":
        hr = X.centre_crop(read_image(files["zebra_crop"], mode="rgb"), spec["crop"])
        dip_config = X.config_from_spec(spec["dip"], base=X.PRIOR_EFFECT_DIP, device=device)
        out = X.sr_prior_comparison(hr, int(spec["factor"]), dip_config=dip_config,
                                    iterations=int(spec["iterations"]), tv_weight=float(spec["tv_weight"]))
        save("HR (ground truth)", "hr", out["hr"]["image"])
        save(f"LR (x{spec['factor']})", "lr", out["lr"]["image"])
        for key, label in (("bicubic", "bicubic"), ("no_prior", "no prior"), ("tv_prior", "TV prior"),
                           ("dip", "DIP")):
            save(label, key, out[key]["image"], out[key]["psnr"])
            row(key, out[key].get("result"), psnr=out[key]["psnr"], ssim=out[key]["ssim"])
    elif name == "preimage":
        from dip.experiments import preimage as P

        if spec.get("weights"):
            net = P.load_alexnet(spec["weights"])
            details["network"] = f"AlexNet ({spec['weights']})"
        else:
            net = P.small_cnn(seed=0)
            details["network"] = "small random CNN (test stand-in; set preimage.weights for AlexNet)"
        config = P.PreimageConfig(layer=spec["layer"], device=device or "auto").replace(**spec.get("settings", {}))
        for image in spec["images"]:
            target = P.prepare_target(read_image(files[image], mode="rgb"), int(spec["size"]))
            dip_res, tv_res = P.invert_dip(net, target, config), P.invert_tv(net, target, config)
            save(f"{image}", f"{image}_target", target)
            for res_ in (tv_res, dip_res):
                final = res_.history[-1]
                save(f"{image}: {res_.method.upper()} pre-image", f"{image}_{res_.method}", res_.output,
                     final["psnr_target"])
                rows.append({"method": res_.method, "image": image, "feature_error": final["feature_error"],
                             "psnr": final["psnr_target"], "seconds": round(res_.seconds, 3),
                             "iterations": config.iterations})
        details["layer"] = spec["layer"]
    else:
        raise ValueError(f"unknown experiment {name!r}")

    write_json_atomic(record_path, {"name": name, "title": X.EXPERIMENTS[name.replace("_", "-")][0],
                                    "figure": X.EXPERIMENTS[name.replace("_", "-")][1], "spec": spec,
                                    "panels": panels, "rows": rows, "details": details,
                                    "environment": environment_info()})
    print(json.dumps(rows, indent=1))
