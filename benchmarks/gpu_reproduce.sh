#!/usr/bin/env bash
# One-command GPU reproduction (BENCHMARKS.md, "GPU reproduction"): machine facts, the CUDA tests, the Set5 (then,
# as time allows, Set14) x4 table at the paper's settings, a short speed benchmark and the paper's projected GPU time,
# all under one folder, inside a wall-time budget (default 8 minutes).
#
#   benchmarks/prepare_gpu_carry.sh MIRROR_DIR                  # once: the inputs, into .carry/inputs (ignored)
#   benchmarks/gpu_reproduce.sh --out DIR                       # on the GPU machine (carry .carry/inputs along)
#   benchmarks/gpu_reproduce.sh --tiny --out DIR                # the same path on the CPU in about a minute
#
# Options: --tiny, --out DIR (default gpu-run/), --inputs DIR (default .carry/inputs), --budget-minutes N,
# --precision fp32|bf16, --datasets set5 [set14], --jobs N, --no-cuda-tests, --no-bench, ... (--help lists all).
# Needs python3 with torch, numpy, scipy, scikit-image, pandas, pillow, pyyaml, pytest; not Snakemake.
# PYTHON=... picks the interpreter (default python3). Exit status: 0 all ran, 1 a fit or the CUDA tests failed,
# 2 bad inputs or a non-empty --out.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" "$repo/benchmarks/gpu_reproduce.py" "$@"
