"""Shim: score the DIP + early-stop outputs of one (dataset, task, level) -> rows `dip_es` for metrics.csv."""

import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.eval.scoring import COLUMNS, score_outputs

    inp, params = snakemake.input, snakemake.params
    rows = []
    for image, gt in zip(params.images, inp.gt):
        outputs = [{"method": "dip_es", "seed": seed, "png": png, "json": js}
                   for (im, seed), png, js in zip(params.runs, inp.pngs, inp.jsons) if im == image]
        rows += [r for r in score_outputs(params.dataset, params.task, params.level, image, gt, None, outputs)
                 if r["method"] != "input"]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.to_csv(snakemake.output[0], index=False)
    print(frame.to_string())
