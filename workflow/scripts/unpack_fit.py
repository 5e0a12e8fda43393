"""Shim: copy one fit's files (restored PNG, raw PNG, JSON record, _es PNG) out of the pack folder it was fitted in."""

import shutil
from pathlib import Path

from _shim import logged

with logged(snakemake):
    wc, out = snakemake.wildcards, snakemake.output
    stem = Path(snakemake.input.pack) / f"{wc.image}_seed{wc.seed}"
    pairs = [(f"{stem}.png", out.png), (f"{stem}_raw.png", out.raw), (f"{stem}.json", out.json)]
    if "es" in out.keys():
        pairs.append((f"{stem}_es.png", out.es))
    for src, dst in pairs:
        shutil.copyfile(src, dst)
        print(f"{src} -> {dst}")
