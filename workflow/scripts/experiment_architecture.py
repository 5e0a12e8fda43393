"""Shim: inpaint the library image with one network of the architecture comparison (Fig. 8).

Writes the restored PNG and a JSON record (dip.restore.save_result) with the network's parameter count and the
PSNR over the full image and over the hole.
"""

from _shim import dump, logged, set_threads

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip import experiments as X
    from dip.data.degrade import mask_from_file
    from dip.data.imageio import read_image
    from dip.restore import restore, save_result

    set_threads(snakemake.threads)  # noqa: F821
    arch, spec = snakemake.wildcards.arch, snakemake.params.spec  # noqa: F821
    files, out = snakemake.input, snakemake.output  # noqa: F821
    img = read_image(files.library, mode="rgb")
    mask = mask_from_file(files.library_mask, img.shape[:2])
    img, mask = X.centre_crop(img, spec["crop"]), X.centre_crop(mask, spec["crop"])
    settings = dict(spec.get("settings") or {})
    if spec.get("device"):
        settings.setdefault("device", spec["device"])
    config = X.architecture_config(arch, width=spec.get("width"), pad=spec.get("pad"), **settings)
    print(dump({"arch": arch, "config": config.to_dict()}))
    result = restore("inpaint", img, config=config, mask=mask, ground_truth=img)
    scores = X.score_inpainting(img, result.output, mask, result.crop_box)
    save_result(result, out.png, out.json, extra={
        "method": arch, "label": X.ARCHITECTURES[arch][0], "parameters": X.architecture_parameters(config),
        "scores": scores,
    })
    print(dump(scores))
