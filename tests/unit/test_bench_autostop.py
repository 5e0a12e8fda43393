"""benchmarks/bench_autostop.py and benchmarks/replay_autostop.py: one tiny case end to end (every candidate in the
results file, the file written per case, a re-run skipping it), and the replay of the committed fits' curves."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, running, wait_for


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _meets_the_issue(cases):
    assert len(cases) >= 12 and len({c.key for c in cases}) == len(cases)
    assert sum(c.size >= 256 for c in cases) >= 4 and min(c.size for c in cases) == 128
    levels = {c.level for c in cases if c.task == "denoise"}
    assert min(levels) == 10 and max(levels) == 50
    assert {"jpeg", "inpaint"} <= {c.task for c in cases}
    assert {c.level for c in cases if c.task == "inpaint"} == {0.5}
    assert any(c.source.startswith("color9:") for c in cases) and any(c.source.startswith("skimage:") for c in cases)


def test_the_case_list_meets_the_issue_and_its_first_twelve_already_do():
    bench = _module("bench_autostop")
    _meets_the_issue(bench.CASES)
    assert {c.size for c in bench.CASES} == {128, 256, 512}
    assert all(c.fallback for c in bench.CASES if c.source.startswith("color9:"))
    _meets_the_issue(bench.CASES[:12])  # what finishes first, on the way to all of them
    assert sum(map(bench.estimated_seconds, bench.CASES[:12])) < 11 * 3600  # one thread: a few sessions of 2 cores


def test_one_tiny_case_is_written_and_a_rerun_skips_it(tmp_path, capsys):
    bench = _module("bench_autostop")
    results = tmp_path / "r.jsonl"
    argv = ["--cases", "chelsea-128-sigma25", "--size", "64", "--width", "4", "--iters", "30", "--log-every", "5",
            "--results", str(results), "--checkpoint-dir", str(tmp_path / "ckpt")]  # fmt: skip
    assert bench.main(argv) == 0
    rows = bench.read_results(results)
    assert len(rows) == 1
    row = rows[0]
    assert row["case"] == "chelsea-128-sigma25" and row["variant"] == "-w4-i30-s64-l5"
    assert row["iterations"] == 30 and row["image"] == "scikit-image chelsea" and len(row["history"]) == 7
    for name in ("fixed", "auto", "auto_log50", "dp_raw_loss", "dp_wavelet", "dp_true_sigma", "es_wmv", "es_emv"):
        assert name in row["candidates"]
    assert row["candidates"]["fixed"]["gap"] >= -1e-6 and row["oracle"]["curve"] == "psnr_gt_avg"
    assert row["candidates"]["auto"]["rule"]["rule"] == "discrepancy"
    assert not list((tmp_path / "ckpt").iterdir())  # the finished case's checkpoint is gone
    capsys.readouterr()
    assert bench.main(argv) == 0
    assert "done (in r.jsonl), skipped" in capsys.readouterr().out
    assert len(bench.read_results(results)) == 1
    # A line cut by a crash mid-write is ignored (that case runs again), the table still prints.
    with open(results, "a") as fh:
        fh.write('{"case": "cut')
    assert len(bench.read_results(results)) == 1
    assert "| chelsea-128-sigma25-w4-i30-s64-l5 |" in bench.report(bench.read_results(results))


def test_replaying_the_committed_fits_does_not_hurt_them(capsys):
    replay = _module("replay_autostop")
    if not list((REPO / "results" / "paper" / "restored").glob("**/dip/*.json")):
        pytest.skip("no committed fit records")
    assert replay.main([]) == 0
    out = capsys.readouterr().out
    assert "hill_seed0 (denoise 25) | discrepancy" in out and "(all)" in out


def test_two_cases_in_two_worker_processes_are_written_once_each(tmp_path):
    results = tmp_path / "r.jsonl"
    cases = ["chelsea-128-sigma25", "astronaut-128-q10"]
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_autostop.py"), "--cases", *cases, "--jobs", "2",
         "--size", "64", "--width", "4", "--iters", "12", "--log-every", "4", "--results", str(results),
         "--checkpoint-dir", str(tmp_path / "ckpt")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    rows = _module("bench_autostop").read_results(results)
    assert sorted(r["case"] for r in rows) == sorted(cases)  # one line each, whole: the parent is the one writer
    assert all(r["device"] == "cpu" and r["iterations"] == 12 for r in rows)


def _children(pid: int) -> set[int]:
    return {int(c) for c in (Path(f"/proc/{pid}/task/{pid}/children").read_text().split())}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc (Linux)")
def test_killing_the_parent_stops_its_workers(tmp_path):
    """A killed --jobs run must not leave its workers fitting on, unseen, with the CPU (and the checkpoints) held."""
    ckpt = tmp_path / "ckpt"
    parent = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "bench_autostop.py"), "--cases", "chelsea-128-sigma25",
         "astronaut-128-q10", "--jobs", "2", "--size", "64", "--width", "4", "--iters", "100000",
         "--results", str(tmp_path / "r.jsonl"), "--checkpoint-dir", str(ckpt)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while len(list(ckpt.glob("*.lock"))) < 2:  # both workers are fitting (a fit locks its checkpoint first)
            assert parent.poll() is None and time.monotonic() < deadline, "the workers never started fitting"
            time.sleep(0.5)
        workers = _children(parent.pid)
        assert workers
    finally:
        parent.kill()
        parent.wait()
    assert wait_for(lambda: not any(map(running, workers))), (
        f"workers {[w for w in workers if running(w)]} still run after their parent was killed")

