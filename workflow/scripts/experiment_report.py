"""Shim: an extra experiment's record.json -> its image grid (dip.eval.figures.plot_grid) and table (dip.eval.tables)."""

import json
from pathlib import Path

from _shim import logged

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    import pandas as pd

    from dip.eval.figures import plot_grid
    from dip.data.imageio import read_image
    from dip.eval.tables import write_table

    out = snakemake.output  # noqa: F821
    record_path = Path(snakemake.input.record)  # noqa: F821
    rec = json.loads(record_path.read_text())
    panels = []
    for label, file, psnr in rec["panels"]:
        text = label if psnr is None else f"{label}\n{psnr:.2f} dB"
        panels.append((text, read_image(record_path.parent / file, alpha="ignore")))
    # At most 6 panels a row, so the wide comparisons (9 networks) stay readable.
    rows = [{"image": "" if i else rec["name"], "panels": panels[i : i + 6]} for i in range(0, len(panels), 6)]
    title = f"{rec['title']} ({rec['figure']})"
    plot_grid(rows, out.png, out.pdf, title=title)
    table = pd.DataFrame(rec["rows"])
    index = [c for c in ("method", "image") if c in table.columns]
    table = table.set_index(index)
    write_table(table, md=out.md, csv=out.csv, caption=title)
    print(table.to_string())
