"""``dip <task> --method M``: each member of the DIP family runs from the command line as DIP does -- the record names
the method, ``dip replay`` repeats it, a checkpoint resumes bit-identically -- and a task its paper does not do exits
2 with one line."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from dip.cli import main
from tests.helpers import CrashAt, save_png

QUICK = ["--iters", "6", "--width", "8", "--device", "cpu", "--quiet", "--log-every", "2"]
METHODS = ["dd", "dip-tv", "sgld", "drp", "sure"]


def _image(path):
    return np.asarray(Image.open(path))


@pytest.mark.slow(seconds=6)
@pytest.mark.parametrize("method", METHODS)
def test_each_method_runs_records_replays_and_resumes(method, tmp_path, noisy64, photo64, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    src, gt = save_png(tmp_path / "noisy.png", noisy64), save_png(tmp_path / "gt.png", photo64)
    out = tmp_path / "out.png"
    line = ["denoise", str(src), "--gt", str(gt), "--method", method, "--sigma", "25", *QUICK]
    assert main([*line, "-o", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["method"] == method == record["config"]["method"]
    assert record["preset"] == f"{method}-denoise" and "--method" in record["command"]["argv"]
    assert record["output"]["psnr_gt"] > 0

    again = tmp_path / "again.png"
    assert main(["replay", str(out.with_suffix(".json")), "-o", str(again), "--quiet"]) == 0
    np.testing.assert_array_equal(_image(again), _image(out))

    # Killed after step 4 with a checkpoint at step 3, then run again: the same image as the uninterrupted run.
    import dip.restore

    real_fit = dip.restore.fit
    ckpt = tmp_path / "fit.ckpt"
    resumed = tmp_path / "resumed.png"
    monkeypatch.setattr(dip.restore, "fit", lambda *a, hooks=(), **k: real_fit(*a, hooks=[*hooks, CrashAt(4)], **k))
    assert main([*line, "-o", str(resumed), "--checkpoint", str(ckpt), "--checkpoint-every", "3"]) == 130
    assert ckpt.exists() and not resumed.exists()
    monkeypatch.setattr(dip.restore, "fit", real_fit)
    assert main([*line, "-o", str(resumed), "--checkpoint", str(ckpt), "--checkpoint-every", "3"]) == 0
    assert json.loads(resumed.with_suffix(".json").read_text())["summary"]["resumed_from"] == 3
    np.testing.assert_array_equal(_image(resumed), _image(out))


@pytest.mark.parametrize("line, message", [
    ("sr IN --factor 2 --method dd",
     "--method dd (Deep Decoder) does not do 'sr'; it does denoise (use --method dip for sr)"),
    ("inpaint IN --missing 0.5 --method sure", "--method sure (DIP-SURE) does not do 'inpaint'"),
    ("jpeg IN --method drp", "--method drp (Deep Random Projector) does not do 'jpeg'"),
    ("denoise IN --method dd --preset denoise",
     "--preset denoise is a Deep Image Prior preset (--method dip), not --method dd's; use dd-denoise or --method dip"),
    ("denoise IN --preset sgld-denoise",
     "--preset sgld-denoise is a SGLD (Bayesian DIP) preset (--method sgld), not --method dip's"),
    ("denoise IN --method dd --memory-saving on", "--memory-saving on: the Deep Decoder's network has no activation"),
])  # fmt: skip
def test_an_unsupported_task_or_preset_exits_2_with_one_line(line, message, tmp_path, photo64, caplog):
    src = save_png(tmp_path / "in.png", photo64)
    out = tmp_path / "out.png"
    args = [str(src) if word == "IN" else word for word in line.split()]
    assert main([*args, "-o", str(out), "--device", "cpu", "--quiet"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and message in errors[0], errors
    assert not out.exists()


def test_a_method_without_the_auto_stop_says_why_it_ran_its_budget(tmp_path, noisy64):
    src = save_png(tmp_path / "noisy.png", noisy64)
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--method", "dd", "--stop", "auto", *QUICK]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["auto_stop"]["rule"] == "budget" and "under-parameterised" in record["output"]["why"]
    assert record["summary"]["iterations_done"] == 6 and record["stop"]["mode"] == "auto"
