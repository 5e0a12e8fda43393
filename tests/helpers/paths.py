"""Where things are: the checkout, its Snakefile, the venv's bin, the benchmark mirror beside the checkout, the
committed manifest."""

from __future__ import annotations

import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
BIN = Path(sys.executable).parent
# The byte-exact copy of the public benchmark files beside the checkout (tests and CI serve it on loopback).
MIRROR = REPO.parent / "shared" / "benchmark-mirror"
MANIFEST = REPO / "config" / "manifest" / "benchmarks.tsv"  # the committed download manifest
