"""Shim: make one task input (dip.data.benchmarks.make_task_inputs) and write gt / observation / (hr, mask) + a record."""

import json

from _shim import dump, logged

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.data.benchmarks import derive_seed, load_benchmark_image, load_embedded, make_task_inputs
    from dip.data.imageio import write_image

    spec = snakemake.params.spec  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    print(dump(spec))
    if spec["source"] == "embedded":
        gt = load_embedded(spec["image"], spec.get("size"))
    else:
        gt = load_benchmark_image(inp.gt, spec["benchmark"])
    released = load_benchmark_image(inp.released, spec["benchmark"]) if "released" in inp.keys() else None
    seed = derive_seed(spec["seed"], spec["dataset"], spec["image"], spec["task"], spec["level"])
    made = make_task_inputs(spec["task"], spec["level"], gt, released_input=released, seed=seed)
    write_image(out.gt, made.ground_truth)
    write_image(out.observation, made.observation)
    if "hr" in out.keys():
        write_image(out.hr, made.fit_target)
    if "mask" in out.keys():
        write_image(out.mask, made.mask)
    info = {**made.info, **spec, "derived_seed": seed, "gt_shape": list(made.ground_truth.shape),
            "observation_shape": list(made.observation.shape)}
    with open(out.info, "w") as fh:
        json.dump(info, fh, indent=1)
    print(dump(info))
