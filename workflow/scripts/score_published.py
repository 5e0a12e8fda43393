"""Shim: score the authors' released outputs of one benchmark level (dip.eval.scoring.score_published) -> tidy CSV."""

import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.data.benchmarks import BENCHMARKS
    from dip.eval.scoring import COLUMNS, score_published

    params = snakemake.params
    first = BENCHMARKS[params.dataset].all_files(params.level)[0]
    root = snakemake.input[0][: -len(first)]  # inputs are <resources_dir>/<relative path>
    frame = pd.DataFrame(score_published(params.dataset, params.level, root), columns=COLUMNS)
    frame.to_csv(snakemake.output[0], index=False)
    print(frame.groupby("method")["psnr"].mean().round(3).to_string())
