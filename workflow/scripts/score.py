"""Shim: score one (dataset, task, level) of ours (dip.eval.scoring.score_outputs) -> tidy CSV."""

import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.eval.scoring import COLUMNS, score_outputs

    wc, inp, params = snakemake.wildcards, snakemake.input, snakemake.params
    rows = []
    for image, gt, obs in zip(params.images, inp.gt, inp.observation):
        outputs = [p for p in params.plan if p["image"] == image]
        rows += score_outputs(wc.dataset, wc.task, params.level, image, gt, obs, outputs)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.to_csv(snakemake.output[0], index=False)
    print(frame.groupby("method")["psnr"].mean().round(3).to_string())
