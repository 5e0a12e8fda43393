"""Shim: a DIP fit with ES-WMV early stopping recorded (dip.restore.restore(early_stopping=...)).

The fit runs its full step count (stop=False), so one run gives the fixed-step output (<png>_fixed.png, the same as
the plain fit's) and the output at the detected step (<png>), with the detected step and both PSNRs in the JSON.
"""


from _shim import dump, fit_config, logged, set_threads, sr_factor

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.degrade import mask_from_file
    from dip.imageio import read_image, write_image
    from dip.restore import restore, save_result

    set_threads(snakemake.threads)  # noqa: F821
    spec, es = snakemake.params.spec, snakemake.params.es  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    config = fit_config(spec)
    observation = read_image(inp.observation)
    target = read_image(inp.target)
    mask = mask_from_file(inp.mask) if "mask" in inp.keys() else None
    factor = sr_factor(spec)
    settings = {k: es[k] for k in ("window", "patience", "check_every")}
    result = restore(spec["task"], observation, config=config, factor=factor, mask=mask, ground_truth=target,
                     early_stopping={**settings, "stop": False})
    write_image(out.fixed, result.output)
    if result.output_early is not None:
        result.output = result.output_early
    else:
        print("the variance window never filled: the early-stop output is the fixed-step one")
    save_result(result, out.png, out.json, extra={"spec": spec, "method": "dip_es", "es_settings": settings})
    print(dump(result.early_stopping))
