"""Shim: several DIP fits of one size in one process (dip.restore.restore_many) -> a pack folder holding, per fit,
the restored PNG, the raw PNG, the JSON record and (early stopping recorded) the _es PNG that a lone fit (fit.py)
writes; unpack_fit.py copies them out.

No checkpoints in a pack: a pack stopped mid-way (SLURM preemption, time limit) starts again from step 0.
"""

from pathlib import Path

from _shim import dump, early_output, fit_config, logged, set_threads, sr_factor

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.data.degrade import mask_from_file
    from dip.data.imageio import read_image, write_image
    from dip.restore import restore_many, save_result

    set_threads(snakemake.threads)  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    inp = snakemake.input  # noqa: F821
    members = spec["members"]
    config = fit_config(spec)
    print(dump({"spec": spec, "config": config.to_dict()}))
    observations = [read_image(f) for f in inp.observation]
    targets = [read_image(f) for f in inp.target]
    masks = [mask_from_file(f) for f in inp.mask] if "mask" in inp.keys() else None
    factor = sr_factor(spec)
    results = restore_many(spec["task"], observations, config=config, seeds=[m["seed"] for m in members],
                           factor=factor, masks=masks, ground_truths=targets,
                           early_stopping=spec.get("early_stopping"))  # fmt: skip
    folder = Path(snakemake.output[0])  # noqa: F821
    folder.mkdir(parents=True, exist_ok=True)
    for member, result in zip(members, results):
        stem = folder / f"{member['image']}_seed{member['seed']}"
        one_spec = {**{k: v for k, v in spec.items() if k != "members"}, "seed": member["seed"]}
        pack = {"size": len(members), "members": members}
        save_result(result, f"{stem}.png", f"{stem}.json", extra={"spec": one_spec, "method": "dip", "pack": pack})
        write_image(f"{stem}_raw.png", result.output_raw)
        if spec.get("early_stopping"):
            write_image(f"{stem}_es.png", early_output(result))
        print(dump({"fit": member, **result.summary()}))
