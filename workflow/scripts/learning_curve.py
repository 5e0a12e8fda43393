"""Shim: one learning curve of Fig. 2 (dip.eval.figures.run_learning_curve) -> JSON history."""

import json

from _shim import dump, fit_config, logged, set_threads

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    from dip.data.benchmarks import load_benchmark_image, load_embedded
    from dip.eval.figures import run_learning_curve

    set_threads(snakemake.threads)  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    inp = snakemake.input  # noqa: F821
    if spec["source"] == "embedded":
        img = load_embedded(spec["image"], spec.get("size"))
    else:
        img = load_benchmark_image(inp.image, spec["benchmark"])
    config = fit_config(spec)
    print(dump({"spec": spec, "config": config.to_dict()}))
    history, result = run_learning_curve(img, spec["kind"], config, seed=spec["seed"])
    record = {"spec": spec, "config": config.to_dict(), "summary": result.summary(), "history": history}
    with open(snakemake.output[0], "w") as fh:  # noqa: F821
        json.dump(record, fh)
    print(dump(result.summary()))
