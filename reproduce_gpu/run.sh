#!/usr/bin/env bash
# One-command GPU reproduction (BENCHMARKS.md, "GPU reproduction"): machine facts, the CUDA tests, blocks of the
# paper's tables at the paper's settings -- by default Set5 x4, then the grey inpainting block (gray11, 50% missing)
# on its four 256 px images, then Set14 x4, in that order as time allows -- a short speed benchmark and the paper's
# projected GPU time, all under one folder, inside a wall-time budget (default 8 minutes).
#
#   reproduce_gpu/prepare_carry.sh MIRROR_DIR                  # once: the inputs, into .carry/inputs (ignored)
#   reproduce_gpu/run.sh --out DIR                       # on the GPU machine (carry .carry/inputs along)
#   reproduce_gpu/run.sh --out DIR --blocks set14/sr/x8 gray11/inpaint/0.5 color9/denoise/50
#   reproduce_gpu/run.sh --tiny --out DIR                # the same path on the CPU in about a minute
#
# Options: --tiny, --out DIR (default gpu-run/), --inputs DIR (default .carry/inputs), --budget-minutes N,
# --precision fp32|bf16, --blocks dataset/task/level[/image] ... (config/paper.yaml's blocks, in priority order; the
# syntax of a config's only: key) or --datasets set5 [set14] (short for set5/sr/x4 [set14/sr/x4]), --jobs N,
# --no-cuda-tests, --no-bench, ... (--help lists all).
# Needs python3 with torch, numpy, scipy, scikit-image, pandas, pillow, pyyaml, pytest; not Snakemake.
# PYTHON=... picks the interpreter (default python3). Exit status: 0 all ran, 1 a fit or the CUDA tests failed,
# 2 bad inputs or a non-empty --out.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" "$repo/reproduce_gpu/run.py" "$@"
