"""Shim: one paper table (dip.eval.tables.results_table) as Markdown, LaTeX and CSV."""

import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.eval.tables import load_paper_numbers, results_table, table_caption, write_table

    wc, inp, out = snakemake.wildcards, snakemake.input, snakemake.output
    level = snakemake.params.level
    metrics = pd.read_csv(inp.metrics)
    reported, _, _ = load_paper_numbers(inp.paper)
    table = results_table(metrics, reported, wc.dataset, wc.task, level)
    caption = table_caption(wc.dataset, wc.task, level, table)
    write_table(table, md=out.md, tex=out.tex, csv=out.csv, caption=caption,
                label=f"tab:{wc.dataset}-{wc.task}-{wc.level}")
    print(table.round(2).to_string())
