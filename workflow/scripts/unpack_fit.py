"""Shim: copy one fit's files (restored PNG, raw PNG, JSON record) out of the pack folder it was fitted in."""

import shutil
from pathlib import Path

from _shim import logged

with logged(snakemake):  # noqa: F821 -- injected by Snakemake
    wc, out = snakemake.wildcards, snakemake.output  # noqa: F821
    stem = Path(snakemake.input.pack) / f"{wc.image}_seed{wc.seed}"  # noqa: F821
    for src, dst in ((f"{stem}.png", out.png), (f"{stem}_raw.png", out.raw), (f"{stem}.json", out.json)):
        shutil.copyfile(src, dst)
        print(f"{src} -> {dst}")
