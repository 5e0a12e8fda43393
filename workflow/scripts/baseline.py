"""Shim: one baseline (dip.baselines.run_baseline) -> restored PNG + JSON record."""

import json
import time

from _shim import dump, logged, set_threads, sr_factor

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.baselines import PRIOR_EFFECT_ITERATIONS, run_baseline
    from dip.data.degrade import mask_from_file
    from dip.data.imageio import read_image, write_image
    from dip.restore import environment_info

    set_threads(snakemake.threads)  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    print(dump(spec))
    observation = read_image(inp.observation)
    mask = mask_from_file(inp.mask) if "mask" in inp.keys() else None
    options = dict(spec["options"])
    iterations = options.pop("iterations", None)
    kwargs = {"iterations": int(iterations)} if iterations is not None else {}
    started = time.perf_counter()
    output = run_baseline(
        spec["name"],
        spec["task"],
        observation,
        sigma=spec["level"] if spec["task"] == "denoise" else None,
        factor=sr_factor(spec),
        mask=mask,
        seed=spec["seed"],
        **kwargs,
        **options,
    )
    seconds = time.perf_counter() - started
    optimised = spec["name"] in ("no_prior", "tv_prior")
    iterations_done = kwargs.get("iterations", PRIOR_EFFECT_ITERATIONS) if optimised else None
    write_image(out.png, output)
    record = {
        "method": spec["name"],
        "seed": spec["seed"],
        "spec": spec,
        "summary": {"seconds": round(seconds, 3), "iterations_done": iterations_done},
        "environment": environment_info(),
    }
    with open(out.json, "w") as fh:
        json.dump(record, fh, indent=1)
    print(dump(record["summary"]))
