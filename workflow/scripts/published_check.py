"""Shim: compare the re-scored released outputs with the values they are known to give (config/paper_numbers.yaml)."""

import pandas as pd

from _shim import logged

with logged(snakemake):
    from dip.eval.scoring import check_published
    from dip.eval.tables import load_paper_numbers, published_check_table, released_records, write_table

    inp, out = snakemake.input, snakemake.output
    scores = pd.concat([pd.read_csv(p) for p in inp.scores], ignore_index=True)
    _, _, tolerance = load_paper_numbers(inp.paper)
    check = check_published(scores, released_records(inp.paper, snakemake.params.datasets), tolerance)
    caption = (
        f"The authors' released result images re-scored with this project's metric code, against the values they "
        f"give (config/paper_numbers.yaml: released); ok = within {tolerance} dB."
    )
    write_table(published_check_table(check), md=out.md, csv=out.csv, caption=caption, digits=3)
    print(check.to_string())
    if not check["ok"].all():
        print("WARNING: some re-scored numbers differ from the expected values by more than the tolerance")
