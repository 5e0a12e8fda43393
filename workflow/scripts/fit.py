"""Shim: one DIP fit (dip.restore.restore) -> restored PNG, raw PNG, JSON record (dip.restore.save_result) and,
when the spec has early-stopping settings, the output at the ES-WMV detected step (recorded, the fit runs on).

The fit checkpoints to <output>.ckpt on SIGTERM (SLURM preemption / time limit) and every `checkpoint_every` steps;
a re-run of the job resumes from it. The checkpoint is removed once the outputs are written.
"""

from pathlib import Path

from _shim import dump, early_output, fit_config, logged, set_threads, sr_factor

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.data.degrade import mask_from_file
    from dip.errors import DipInputError
    from dip.data.imageio import read_image, write_image
    from dip.restore import restore, save_result

    set_threads(snakemake.threads)  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    config = fit_config(spec)
    print(dump({"spec": spec, "config": config.to_dict()}))
    observation = read_image(inp.observation)
    target = read_image(inp.target)
    mask = mask_from_file(inp.mask) if "mask" in inp.keys() else None
    factor = sr_factor(spec)
    ckpt = Path(out.png).with_suffix(".ckpt")

    def run():
        return restore(spec["task"], observation, config=config, factor=factor, mask=mask, ground_truth=target,
                       checkpoint_path=ckpt, early_stopping=spec.get("early_stopping"))

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
    if "es" in out.keys():
        write_image(out.es, early_output(result))
    ckpt.unlink(missing_ok=True)
    print(dump(result.summary()))
