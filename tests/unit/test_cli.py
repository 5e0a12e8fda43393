"""The `dip` command: it writes a PNG and a JSON sidecar; bad input gets exit code 2 and leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dip.cli import main
from tests.helpers import save_png

QUICK = ["--iters", "4", "--width", "8", "--device", "cpu", "--quiet", "--log-every", "2"]


def test_denoise_writes_png_and_sidecar(tmp_path, photo64):
    src = save_png(tmp_path / "noisy.png", photo64)
    gt = save_png(tmp_path / "gt.png", photo64)
    out = tmp_path / "out" / "restored.png"
    assert main(["denoise", str(src), "-o", str(out), "--gt", str(gt), "--seed", "3", *QUICK]) == 0
    restored = np.asarray(Image.open(out))
    assert restored.shape == (64, 64, 3)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["seed"] == 3 and record["task"] == "denoise"
    assert record["config"]["iterations"] == 4
    assert record["summary"]["iterations_done"] == 4
    assert record["environment"]["torch"].startswith("2.13")
    assert [h["step"] for h in record["history"]] == [0, 2, 3]
    assert record["history"][-1]["psnr_gt"] is not None
    assert not list(out.parent.glob(".*tmp*"))  # atomic writes leave no temp files


def test_odd_size_is_cropped_and_said(tmp_path, caplog):
    from tests.helpers import crop_photo

    src = save_png(tmp_path / "odd.png", crop_photo("astronaut", 128)[:100, :90])
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), *QUICK]) == 0
    assert np.asarray(Image.open(out)).shape == (96, 64, 3)
    assert "cropped the input from 90x100 to 64x96" in caplog.text
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["crop_box"] == [2, 13, 96, 64] and record["notes"]


def test_too_small_for_the_network_is_refused(tmp_path, photo64, caplog):
    src = save_png(tmp_path / "small.png", photo64[:40, :40])
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), *QUICK]) == 2
    assert "needs at least 64x64" in caplog.text and not out.exists()


def test_sr_and_inpaint_commands(tmp_path, photo64, grey64):
    lr = save_png(tmp_path / "lr.png", photo64[::4, ::4])
    out = tmp_path / "sr.png"
    assert main(["sr", str(lr), "--factor", "4", "-o", str(out), *QUICK]) == 0
    assert np.asarray(Image.open(out)).shape == (64, 64, 3)
    grey = save_png(tmp_path / "grey.png", grey64)
    out = tmp_path / "inpaint.png"
    assert main(["inpaint", str(grey), "--missing", "0.5", "-o", str(out), *QUICK]) == 0
    assert np.asarray(Image.open(out)).shape == (64, 64)  # grey in, grey out


def _record(out):
    return json.loads(out.with_suffix(".json").read_text())


def test_the_level_chooses_the_preset_unless_one_is_given(tmp_path, photo64):
    """`dip sr --factor 8` runs the x8 preset (4000 steps, reg 0.05), `--sigma 50` the sigma-50 one: the task table's
    choice by task and level; an explicit --preset wins."""
    from dip.presets import PRESETS

    lr = save_png(tmp_path / "lr8.png", photo64[::8, ::8])
    out = tmp_path / "sr8.png"
    assert main(["sr", str(lr), "--factor", "8", "-o", str(out), *QUICK]) == 0
    record = _record(out)
    assert record["preset"] == "sr8" and np.asarray(Image.open(out)).shape == (64, 64, 3)
    assert record["config"]["reg_noise_std"] == PRESETS["sr8"][1].reg_noise_std == 0.05
    assert main(["sr", str(lr), "--factor", "8", "--preset", "sr4", "-o", str(out), *QUICK]) == 0
    assert _record(out)["preset"] == "sr4" and _record(out)["config"]["reg_noise_std"] == 0.03

    noisy = save_png(tmp_path / "noisy.png", photo64)
    for sigma, preset in ((None, "denoise"), ("50", "denoise-sigma50")):
        out = tmp_path / f"denoise-{sigma}.png"
        assert main(["denoise", str(noisy), "-o", str(out), *(["--sigma", sigma] if sigma else []), *QUICK]) == 0
        record = _record(out)
        assert record["preset"] == preset
        assert record["config"]["reg_noise_std"] == pytest.approx(PRESETS[preset][1].reg_noise_std)


def test_a_sigma_the_table_does_not_know_is_refused(tmp_path, photo64, caplog):
    src = save_png(tmp_path / "noisy.png", photo64)
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--sigma", "37.5", *QUICK]) == 2
    assert "integer sigma" in caplog.text and not out.exists()


def test_sixteen_bit_input_is_handled(tmp_path, grey64):
    src = save_png(tmp_path / "deep.png", (grey64[..., 0] * 65535).astype(np.uint16))
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), *QUICK]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "No such file"),
        ("truncated", "truncated"),
        ("text", "cannot identify"),
        ("rgba", "transparen"),
        ("mask_size", "mask"),
        ("empty_mask", "empty"),
        ("not_png", ".png"),
    ],
)
def test_bad_input_exit_2_and_no_output(tmp_path, photo64, case, message, caplog):
    good = save_png(tmp_path / "good.png", photo64)
    out = tmp_path / "out.png"
    args = ["denoise", str(good), "-o", str(out), *QUICK]
    if case == "missing":
        args[1] = str(tmp_path / "nope.png")
    elif case == "truncated":
        data = good.read_bytes()
        (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
        args[1] = str(tmp_path / "trunc.png")
    elif case == "text":
        (tmp_path / "notes.txt").write_text("not an image")
        args[1] = str(tmp_path / "notes.txt")
    elif case == "rgba":
        rgba = np.dstack([(photo64 * 255).astype(np.uint8), np.full((64, 64), 128, np.uint8)])
        Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
        args[1] = str(tmp_path / "rgba.png")
    elif case == "mask_size":
        save_png(tmp_path / "mask.png", np.ones((32, 48), np.float32))
        args = ["inpaint", str(good), "--mask", str(tmp_path / "mask.png"), "-o", str(out), *QUICK]
    elif case == "empty_mask":
        save_png(tmp_path / "mask.png", np.zeros((64, 64), np.float32))
        args = ["inpaint", str(good), "--mask", str(tmp_path / "mask.png"), "-o", str(out), *QUICK]
    elif case == "not_png":
        out = tmp_path / "out.jpg"
        args[3] = str(out)
    assert main(args) == 2
    assert message.lower() in caplog.text.lower()
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_factor_that_does_not_fit_is_refused(tmp_path, photo64):
    # x3 with a 5-level net needs LR sides that are multiples of 32 (HR multiples of 96): 16 px LR cannot be cropped.
    lr = save_png(tmp_path / "lr.png", photo64[::4, ::4])
    out = tmp_path / "out.png"
    assert main(["sr", str(lr), "--factor", "3", "-o", str(out), "--iters", "2", "--device", "cpu", "--quiet"]) == 2
    assert not out.exists()


def test_console_script_and_presets():
    done = subprocess.run([sys.executable, "-m", "dip", "presets"], capture_output=True, text=True, check=True)
    assert "denoise" in done.stdout and "sr4" in done.stdout and "inpaint-text" in done.stdout
    assert "dip sr        --factor < 8: sr4; --factor >= 8: sr8" in done.stdout
    assert "dip denoise   --sigma < 50: denoise; --sigma >= 50: denoise-sigma50" in done.stdout
    done = subprocess.run([sys.executable, "-m", "dip", "denoise"], capture_output=True, text=True)
    assert done.returncode == 2 and "required" in done.stderr
