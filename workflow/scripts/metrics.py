"""Shim: gather our and the published score tables into one tidy metrics.csv."""

import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.eval.scoring import COLUMNS

    inp = snakemake.input
    frames = [pd.read_csv(p) for p in list(inp.ours) + list(inp.published)]
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    frame = frame.reindex(columns=COLUMNS)
    frame.to_csv(snakemake.output[0], index=False)
    print(f"{len(frame)} rows")
