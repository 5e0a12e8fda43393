"""Shim: the early-stopping summary table: per fit the detected step, PSNR there, at the fixed step, and the peak."""

import json
from pathlib import Path

from _shim import logged

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    import pandas as pd

    from dip.eval.tables import write_table

    rows = []
    for path in snakemake.input:  # noqa: F821
        rec = json.loads(Path(path).read_text())
        es = rec.get("early_stopping") or {}
        p = Path(path)  # .../restored/<dataset>/<task>/<level>/dip/<image>_seed<N>.json
        rows.append({
            "fit": "/".join([p.parts[-5], p.parts[-4], p.parts[-3], p.stem]),
            "detected step": es.get("detected_step"), "steps": es.get("iterations_done"),
            "PSNR at detected step": es.get("psnr_detected"), "PSNR at fixed step": es.get("psnr_final"),
            "best logged PSNR": es.get("psnr_peak_logged"), "at step": es.get("peak_step_logged"),
        })
    table = pd.DataFrame(rows).set_index("fit")
    write_table(table, md=snakemake.output.md, csv=snakemake.output.csv,  # noqa: F821
                caption="DIP with ES-WMV early stopping (window/patience from the config) vs the fixed step count")
    print(table.to_string())
