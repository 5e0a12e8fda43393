"""Shim: one DIP fit (dip.restore.restore) -> restored PNG, raw PNG, JSON record (dip.restore.save_result).

The fit checkpoints to <output>.ckpt on SIGTERM (SLURM preemption / time limit) and every `checkpoint_every` steps;
a re-run of the job resumes from it. The checkpoint is removed once the outputs are written.
"""

from pathlib import Path

from _shim import dump, logged, set_threads

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.degrade import mask_from_file
    from dip.errors import DipInputError
    from dip.imageio import read_image, write_image
    from dip.presets import get_preset
    from dip.restore import restore, save_result

    set_threads(snakemake.threads)  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    config = get_preset(spec["preset"], width=spec.get("width"), **spec["settings"]).replace(seed=spec["seed"])
    print(dump({"spec": spec, "config": config.to_dict()}))
    observation = read_image(inp.observation)
    target = read_image(inp.target)
    mask = mask_from_file(inp.mask) if "mask" in inp.keys() else None
    factor = int(spec["level"]) if spec["task"] == "sr" else None
    ckpt = Path(out.png).with_suffix(".ckpt")

    def run():
        return restore(spec["task"], observation, config=config, factor=factor, mask=mask, ground_truth=target,
                       checkpoint_path=ckpt)

    try:
        result = run()
    except DipInputError as exc:
        if not ckpt.exists():
            raise
        print(f"discarding the checkpoint {ckpt} ({exc}); starting afresh")
        ckpt.unlink()
        result = run()
    save_result(result, out.png, out.json, extra={"spec": spec, "method": "dip"})
    write_image(out.raw, result.output_raw)
    ckpt.unlink(missing_ok=True)
    print(dump(result.summary()))
