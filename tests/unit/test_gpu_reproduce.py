"""benchmarks/gpu_reproduce.sh, the one-command GPU reproduction: its --tiny run end to end on the CPU (inputs carried
by benchmarks/prepare_gpu_carry.sh from the benchmark mirror), the budget rule that decides which fits start, and
that its fits are the ones `snakemake --configfile config/paper.yaml` plans."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from tests.helpers import MIRROR, REPO

SCRIPT = REPO / "benchmarks" / "gpu_reproduce.sh"
CARRY = REPO / "benchmarks" / "prepare_gpu_carry.sh"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_reproduce", REPO / "benchmarks" / "gpu_reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_fit_starts_only_if_it_is_estimated_to_end_inside_the_budget():
    gr = _module()
    groups = [{"name": "big", "work": 1000}, {"name": "small", "work": 10}]
    pick = lambda running, now: gr.pick_next(groups, running, now, deadline=100, rate=0.05, startup=5)  # noqa: E731
    assert pick(0, 0)["name"] == "big"  # 5 + 1000 * 0.05 = 55 s
    assert pick(1, 0)["name"] == "small"  # beside another process the big one would take 105 s
    assert pick(0, 60)["name"] == "small"
    assert pick(0, 99) is None


def test_the_run_fits_what_the_paper_config_plans(tmp_path):
    """Same fit specs (preset, settings, early stopping) and file layout as the workflow with config/paper.yaml."""
    pytest.importorskip("snakemake")
    from dip.pipeline.plan import build_plan
    from tests.helpers import workflow_config

    gr = _module()
    args = gr.parse_args(["--out", str(tmp_path / "out"), "--inputs", str(tmp_path / "in")])
    ours = build_plan(gr.run_config(args, tmp_path / "in"))
    paper = build_plan(workflow_config("config/paper.yaml"))
    for dataset, image in (("set5", "baby"), ("set14", "zebra")):
        wc = {"dataset": dataset, "task": "sr", "level": "x4", "image": image, "seed": "0"}
        assert ours.get("fit_dip", wc).params == paper.get("fit_dip", wc).params
        for role, path in paper.get("fit_dip", wc).output.items():
            assert ours.get("fit_dip", wc).output[role] == path.replace("results/paper", str(args.out))
    score = {"dataset": "set5", "task": "sr", "level": "x4"}
    assert ours.get("score", score).output == [p.replace("results/paper", str(args.out))
                                                for p in paper.get("score", score).output]  # fmt: skip


@pytest.mark.slow  # ~25 s of CPU (five fresh processes import torch); longer on a shared machine
def test_the_tiny_run_writes_the_workflow_layout_and_a_summary(tmp_path):
    if not MIRROR.is_dir():
        pytest.skip(f"benchmark mirror not found at {MIRROR}")
    import pandas as pd

    from dip.data.benchmarks import BENCHMARKS
    from dip.eval.scoring import COLUMNS

    carry = tmp_path / "carry"
    subprocess.run(["bash", str(CARRY), "--minimal", str(MIRROR), str(carry)], check=True, capture_output=True)
    assert (carry / "COMMIT").is_file() and (carry / "SHA256SUMS").is_file()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    # a budget a slow, shared CPU does not exhaust (the budget rule itself is tested above)
    cmd = ["bash", str(SCRIPT), "--tiny", "--budget-minutes", "5", "--bundle", "--inputs", str(carry),
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # what a lent GPU machine sends back: at most 8 files of at most 16 MiB, no folder
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all((out / f).is_file() and (out / f).stat().st_size <= 16 * 2**20 for f in files)
    assert {"summary.md", "facts.txt", "cuda-tests.log", "records.tar.gz", "results.tar.000"} <= set(files)
    assert "nvidia-smi" in (out / "facts.txt").read_text()

    paper = tmp_path / "paper"  # as results/paper
    unpacked = subprocess.run(["bash", str(SCRIPT), "--unpack", str(out), "--into", str(paper)], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert unpacked.returncode == 0, unpacked.stderr
    records = out / "records"
    facts = json.loads((records / "facts.json").read_text())
    assert facts["torch"] and facts["python"] and facts["commit_file"]["text"]

    images = BENCHMARKS["set5"].images
    scores = pd.read_csv(paper / "scores/ours/set5/sr_x4.csv")
    assert list(scores.columns) == COLUMNS
    for method in ("dip", "bicubic"):
        rows = scores[scores["method"] == method]
        assert sorted(rows["image"]) == sorted(images) and rows["psnr"].map(math.isfinite).all()
    es = pd.read_csv(paper / "scores/extra/set5/sr_x4_es.csv")
    assert list(es.columns) == COLUMNS and set(es["method"]) == {"dip_es"} and len(es) == len(images)

    packed = []
    for image in images:
        stem = paper / f"restored/set5/sr/x4/dip/{image}_seed0"
        record = json.loads(stem.with_suffix(".json").read_text())
        assert record["spec"]["preset"] == "sr4" and record["early_stopping"]["detected_step"] is not None
        assert all((stem.parent / f"{stem.name}{suffix}").is_file() for suffix in (".png", "_raw.png", "_es.png"))
        assert (paper / f"inputs/set5/sr/x4/{image}/inputs.json").is_file()
        packed.append("pack" in record)
    assert any(packed) and not all(packed)  # one pack of four, one lone fit

    summary = (out / "summary.md").read_text()
    assert "| **mean** (5/5)" in summary and "Projected GPU time" in summary
    record = json.loads((records / "summary.json").read_text())
    steps = {row["what"]: row["steps"] for row in record["paper_workload"]}
    assert steps["set5 sr x4"] == 5 * 2000 and steps["set14 sr x8"] == 14 * 4000
    assert steps["gray11 inpaint missing50"] == 11 * 11000
    assert json.loads((records / "bench_fit.json").read_text())["speed"]
    assert "set5" in (records / "workflow-layer.yaml").read_text()
    assert (paper / "restored/set5/sr/x4/dip/baby_seed0.png").stat().st_mtime > (
        paper / "inputs/set5/sr/x4/baby/observation.png").stat().st_mtime  # the workflow's order

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not empty" in again.stderr
