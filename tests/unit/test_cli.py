"""The `dip` command: it writes a PNG and a JSON sidecar; bad input gets exit code 2 and leaves nothing behind."""

from __future__ import annotations

import json
import logging
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
    import torch

    assert record["environment"]["torch"] == torch.__version__  # any torch in pyproject's range, not only 2.13
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


# --- option values argparse cannot check: exit 2, one line on stderr, nothing written ------------------------------

# (command line with IN = a good 64x64 input, OUT = the output, DIR = the test's folder; the one line on stderr).
# Each command line would otherwise run a 2-step fit, so a value that slipped through fails the test fast.
_FIT = [("--iters", "2"), ("--width", "8"), ("--device", "cpu")]
BAD_VALUES = [
    ("denoise IN -o OUT --lr nan", "--lr must be a finite number > 0, got nan"),
    ("denoise IN -o OUT --lr inf", "--lr must be a finite number > 0, got inf"),
    ("denoise IN -o OUT --lr 0", "--lr must be a finite number > 0, got 0.0"),
    ("denoise IN -o OUT --lr -0.01", "--lr must be a finite number > 0, got -0.01"),
    ("denoise IN -o OUT --device tpu", "unknown device 'tpu'; use auto, cpu, cuda or cuda:N"),
    ("denoise IN -o OUT --device cuda:x", "unknown device 'cuda:x'; use auto, cpu, cuda or cuda:N"),
    ("denoise IN -o OUT --device CPU", "unknown device 'CPU'; use auto, cpu, cuda or cuda:N"),
    ("denoise IN -o OUT --iters 0", "--iters must be an integer >= 1, got 0"),
    ("denoise IN -o OUT --iters -3", "--iters must be an integer >= 1, got -3"),
    ("denoise IN -o OUT --log-every 0", "--log-every must be an integer >= 1, got 0"),
    ("denoise IN -o OUT --reg-noise-std nan", "--reg-noise-std must be a finite number >= 0, got nan"),
    ("denoise IN -o OUT --reg-noise-std inf", "--reg-noise-std must be a finite number >= 0, got inf"),
    ("denoise IN -o OUT --reg-noise-std -1", "--reg-noise-std must be a finite number >= 0, got -1.0"),
    ("denoise IN -o OUT --exp-weight nan", "--exp-weight must be a number in [0, 1) (0 disables averaging), got nan"),
    ("denoise IN -o OUT --exp-weight -0.5", "--exp-weight must be a number in [0, 1) (0 disables averaging), got -0.5"),
    ("denoise IN -o OUT --exp-weight 1", "--exp-weight must be a number in [0, 1) (0 disables averaging), got 1.0"),
    ("denoise IN -o OUT --width 0", "--width must be an integer >= 1, got 0"),
    ("denoise IN -o OUT --seed -1", "--seed must be an integer from 0 to 2**63 - 1, got -1"),
    (f"denoise IN -o OUT --seed {2**63}", f"--seed must be an integer from 0 to 2**63 - 1, got {2**63}"),
    ("denoise IN -o OUT --checkpoint-every -1", "--checkpoint-every must be an integer >= 0, got -1"),
    ("denoise IN -o OUT --checkpoint-every 5", "--checkpoint-every needs --checkpoint PATH"),
    ("denoise IN -o OUT --checkpoint DIR", "--checkpoint must be a file, but DIR is a folder"),
    ("denoise IN -o OUT --sidecar DIR", "--sidecar must be a file, but DIR is a folder"),
    ("denoise IN -o DIR/sub.png", "the output (-o) must be a file, but DIR/sub.png is a folder"),
    ("denoise IN -o OUT --sidecar OUT",
     "the sidecar (--sidecar) and the output (-o) are the same file (OUT); give two different paths"),
    ("denoise IN -o OUT --checkpoint DIR/out.json",
     "--checkpoint and the sidecar (--sidecar) are the same file (DIR/out.json); give two different paths"),
    ("denoise IN -o OUT --es-window 1 --early-stop", "--es-window must be an integer >= 2, got 1"),
    ("denoise IN -o OUT --es-patience 0 --early-stop-record", "--es-patience must be an integer >= 1, got 0"),
    ("denoise IN -o OUT --early-output DIR/e.png", "--early-output needs --early-stop-record"),
    ("denoise IN -o OUT --early-stop --early-output DIR/e.png", "--early-output needs --early-stop-record"),
    ("denoise IN -o OUT --early-stop-record --early-output DIR/e.jpg",
     "--early-output must be a .png file, got DIR/e.jpg"),
    ("denoise IN -o OUT --early-stop-record --early-output OUT",
     "the early output (--early-output) and the output (-o) are the same file (OUT); give two different paths"),
    ("denoise IN -o OUT --sigma nan", "--sigma must be a finite number > 0 (on the 0-255 scale), got nan"),
    ("denoise IN -o OUT --sigma inf", "--sigma must be a finite number > 0 (on the 0-255 scale), got inf"),
    ("denoise IN -o OUT --sigma -25", "--sigma must be a finite number > 0 (on the 0-255 scale), got -25.0"),
    ("denoise IN -o OUT --sigma 0", "--sigma must be a finite number > 0 (on the 0-255 scale), got 0.0"),
    ("denoise IN -o OUT --preset nope", "unknown preset 'nope'; choose one of: "),
    ("sr IN -o OUT --factor 0", "an SR level is an integer factor >= 1, got 0"),
    ("sr IN -o OUT --factor 0 --preset sr4", "an SR level is an integer factor >= 1, got 0"),
    ("inpaint IN -o OUT --missing nan", "--missing must be a number in [0, 1), got nan"),
    ("inpaint IN -o OUT --missing 1", "--missing must be a number in [0, 1), got 1.0"),
    ("inpaint IN -o OUT --missing 0.5 --seed -1", "--seed must be an integer from 0 to 2**63 - 1, got -1"),
    ("jpeg IN -o OUT --lr nan", "--lr must be a finite number > 0, got nan"),
    ("flash IN --flash IN -o OUT --device tpu", "unknown device 'tpu'; use auto, cpu, cuda or cuda:N"),
    ("degrade noise IN -o OUT --sigma nan", "--sigma must be a finite number >= 0 (on the 0-255 scale), got nan"),
    ("degrade noise IN -o OUT --sigma -1", "--sigma must be a finite number >= 0 (on the 0-255 scale), got -1.0"),
    ("degrade noise IN -o OUT --seed -1", "--seed must be an integer from 0 to 2**63 - 1, got -1"),
    ("degrade noise IN -o DIR/noisy.jpg", "the output (-o) must be a .png file, got DIR/noisy.jpg"),
    ("degrade lr IN -o OUT --factor 0", "--factor must be an integer >= 1, got 0"),
    ("degrade lr IN -o OUT --factor 2 --hr-output DIR/hr.jpg", "--hr-output must be a .png file, got DIR/hr.jpg"),
    ("degrade lr IN -o OUT --factor 2 --hr-output OUT",
     "--hr-output and the output (-o) are the same file (OUT); give two different paths"),
    ("degrade mask IN -o OUT --missing nan", "--missing must be a number in [0, 1), got nan"),
    ("degrade mask IN -o OUT --missing 1", "--missing must be a number in [0, 1), got 1.0"),
    ("degrade mask IN -o OUT --seed -1", "--seed must be an integer from 0 to 2**63 - 1, got -1"),
    ("degrade mask IN -o OUT --text=", "the text of a text mask must not be empty"),
]


def _args(tmp_path, photo64, line: str) -> list[str]:
    """``line`` with IN/OUT/DIR filled in and the quick fit settings it does not set itself."""
    good = save_png(tmp_path / "in.png", photo64)
    (tmp_path / "sub.png").mkdir()  # a folder with an image's name
    args = [a.replace("IN", str(good)).replace("OUT", str(tmp_path / "out.png")).replace("DIR", str(tmp_path))
            for a in line.split()]
    if args[0] != "degrade":
        args += [a for option, value in _FIT for a in (option, value) if option not in args] + ["--quiet"]
    return args


def _run_dip(tmp_path, photo64, line: str) -> subprocess.CompletedProcess:
    """`dip <line>` in a subprocess (see _args)."""
    args = _args(tmp_path, photo64, line)
    return subprocess.run([sys.executable, "-m", "dip", *args], capture_output=True, text=True, timeout=300)


def _filled(text: str, tmp_path) -> str:
    return text.replace("DIR", str(tmp_path)).replace("OUT", str(tmp_path / "out.png"))


@pytest.mark.parametrize("line, message", BAD_VALUES, ids=[line for line, _ in BAD_VALUES])
def test_a_bad_option_value_is_one_message_and_exit_2(tmp_path, photo64, caplog, line, message):
    """Every value argparse cannot check (non-finite, out of range, an unknown device, clashing paths) is refused
    before any image is read: exit 2, one message, nothing written."""
    assert main(_args(tmp_path, photo64, line)) == 2
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and said[0].startswith(_filled(message, tmp_path)), said
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in.png", "sub.png"]  # nothing written


@pytest.mark.parametrize(
    "line",
    ["denoise IN -o OUT --lr nan", "denoise IN -o OUT --device tpu", "denoise IN -o OUT --sigma inf",
     "denoise IN -o OUT --preset nope", "degrade noise IN -o OUT --seed -1"],
)
def test_the_command_says_it_in_one_line_on_stderr(tmp_path, photo64, line):
    done = _run_dip(tmp_path, photo64, line)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("dip: "), done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out.png").exists()


def test_a_cuda_device_without_cuda_is_one_line_and_exit_2(tmp_path, photo64):
    import torch

    done = _run_dip(tmp_path, photo64, "denoise IN -o OUT --device cuda:99")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    if torch.cuda.is_available():
        assert f"this machine has {torch.cuda.device_count()} CUDA device(s)" in done.stderr
    else:
        assert "device 'cuda:99' was asked for but CUDA is not available" in done.stderr
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "line, message",
    [
        ("denoise IN -o OUT --iters abc", "dip denoise: error: argument --iters: invalid int value: 'abc'"),
        ("denoise IN -o OUT --precision fp16", "dip denoise: error: argument --precision: invalid choice: 'fp16'"),
        ("degrade mask IN -o OUT --text x --missing 0.3", "dip degrade mask: error: argument --missing: not allowed"),
        ("denoise IN", "dip denoise: error: the following arguments are required: -o/--output"),
    ],
)
def test_argparse_errors_are_one_line_too(tmp_path, photo64, line, message):
    done = _run_dip(tmp_path, photo64, line)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), lines
    assert lines[0].endswith("--help)")
    assert not (tmp_path / "out.png").exists()


# --- a safe, repeatable command: outputs never on inputs, the record repeats the run ---------------------------------


def _untouched(path, data):
    return path.read_bytes() == data


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink", "hard link", "sidecar", "gt", "checkpoint",
                                 "mask", "degrade"])  # fmt: skip
def test_an_output_on_an_input_is_refused(tmp_path, photo64, caplog, how, monkeypatch):
    """`dip denoise x.png -o x.png` used to overwrite x.png: any output that is any input file -- by path, through a
    link, or a hard link to it (same inode) -- is refused before anything is read or written."""
    src = save_png(tmp_path / "x.png", photo64)
    data = src.read_bytes()
    args = ["denoise", str(src), "-o", str(src), *QUICK]
    if how == "relative path":
        monkeypatch.chdir(tmp_path)
        args = ["denoise", str(src), "-o", "./sub/../x.png", *QUICK]
        (tmp_path / "sub").mkdir()
    elif how == "symlink":
        (tmp_path / "link.png").symlink_to(src)
        args[3] = str(tmp_path / "link.png")
    elif how == "hard link":
        (tmp_path / "hard.png").hardlink_to(src)
        args[3] = str(tmp_path / "hard.png")
    elif how == "sidecar":
        args = ["denoise", str(src), "-o", str(tmp_path / "out.png"), "--sidecar", str(src), *QUICK]
    elif how == "gt":
        gt = save_png(tmp_path / "gt.png", photo64)
        data = gt.read_bytes()
        args = ["denoise", str(src), "-o", str(gt), "--gt", str(gt), *QUICK]
        src = gt
    elif how == "checkpoint":
        args = ["denoise", str(src), "-o", str(tmp_path / "out.png"), "--checkpoint", str(src), *QUICK]
    elif how == "mask":
        mask = save_png(tmp_path / "mask.png", np.ones((64, 64), np.float32))
        data, src = mask.read_bytes(), mask
        args = ["inpaint", str(tmp_path / "x.png"), "--mask", str(mask), "-o", str(mask), *QUICK]
    elif how == "degrade":
        args = ["degrade", "noise", str(src), "-o", str(tmp_path / "hard.png")]
        (tmp_path / "hard.png").hardlink_to(src)
    assert main(args) == 2
    assert "would overwrite an input" in caplog.text
    assert _untouched(src, data)
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.json").exists()
    assert not src.with_suffix(".json").exists()


def test_the_record_holds_the_task_parameters_inputs_and_command(tmp_path, photo64):
    lr = save_png(tmp_path / "lr8.png", photo64[::8, ::8])
    out = tmp_path / "sr.png"
    argv = ["sr", str(lr), "--factor", "8", "--preset", "sr4", "-o", str(out), *QUICK]
    assert main(argv) == 0
    record = _record(out)
    # `--preset sr4 --factor 8` is recorded as what it is: the x4 settings at factor 8.
    assert record["parameters"]["factor"] == 8 and record["preset"] == "sr4" and record["preset_from"] == "--preset"
    assert record["command"]["argv"] == argv and record["command"]["line"].startswith("dip sr ")
    assert "--factor 8" in record["command"]["line"] and record["command"]["cwd"]
    facts = record["inputs"]["input"]
    import hashlib

    assert facts["sha256"] == hashlib.sha256(lr.read_bytes()).hexdigest() and facts["path"] == str(lr)
    assert record["stop"]["mode"] == "fixed" and record["output"]["step"] == 3

    grey = save_png(tmp_path / "grey.png", photo64[..., 0])
    out = tmp_path / "inpaint.png"
    assert main(["inpaint", str(grey), "--missing", "0.3", "--seed", "5", "-o", str(out), *QUICK]) == 0
    params = _record(out)["parameters"]
    assert params["missing"] == 0.3 and params["mask_seed"] == 5 and params["mask"] is None

    gt = save_png(tmp_path / "gt.png", photo64)
    out = tmp_path / "den.png"
    assert main(["denoise", str(gt), "--gt", str(gt), "--sigma", "50", "-o", str(out), *QUICK]) == 0
    record = _record(out)
    assert record["parameters"] == {"sigma": 50.0, "sigma_for_preset": 50.0, "gt": str(gt)}
    assert set(record["inputs"]) == {"input", "gt"}


def test_a_record_is_replayed_into_the_same_command(tmp_path, photo64, monkeypatch, caplog):
    """`dip replay RECORD -o NEW.png` parses the recorded command line, checks the inputs' sha256 and fits again:
    the same settings, seed and image (CPU, same machine), from another folder too (paths resolved against the
    recorded one)."""
    from dip.data import degrade

    caplog.set_level(logging.INFO)
    work = tmp_path / "work"
    work.mkdir()
    save_png(work / "noisy.png", degrade.add_gaussian_noise(photo64, 25, seed=0))
    save_png(work / "gt.png", photo64)
    monkeypatch.chdir(work)
    assert main(["denoise", "noisy.png", "-o", "first.png", "--gt", "gt.png", "--seed", "7", "--lr", "0.02",
                 *QUICK]) == 0  # fmt: skip
    first = _record(work / "first.png")

    monkeypatch.chdir(tmp_path)
    again = tmp_path / "again.png"
    assert main(["replay", str(work / "first.json"), "-o", str(again), "--quiet"]) == 0
    second = _record(again)
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(work / "first.png")))
    assert second["config"] == first["config"] and second["seed"] == 7
    assert second["replayed_from"]["record"] == str(work / "first.json")
    assert second["inputs"]["input"]["sha256"] == first["inputs"]["input"]["sha256"]
    assert second["history"][-1]["psnr_gt"] == first["history"][-1]["psnr_gt"]
    assert "replaying dip denoise " in caplog.text

    # The new output must not be the record (its default sidecar would overwrite it) nor an input.
    assert main(["replay", str(work / "first.json"), "-o", str(work / "first.png")]) == 2
    assert "the replayed record" in caplog.text
    assert main(["replay", str(work / "first.json"), "-o", str(work / "noisy.png")]) == 2
    # A changed input is refused: a replay of other data would not be a replay.
    save_png(work / "noisy.png", photo64)
    assert main(["replay", str(work / "first.json"), "-o", str(tmp_path / "third.png")]) == 2
    assert "changed since the record" in caplog.text and not (tmp_path / "third.png").exists()
    (tmp_path / "old.json").write_text(json.dumps({"config": {}}))
    assert main(["replay", str(tmp_path / "old.json"), "-o", str(tmp_path / "x.png")]) == 2
    assert "holds no command line" in caplog.text


def test_a_preset_of_another_task_is_refused_and_jpeg_denoise_warn(tmp_path, photo64, caplog):
    src = save_png(tmp_path / "in.png", photo64)
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--preset", "sr4", *QUICK]) == 2
    assert "--preset sr4 is made for `dip sr`, not `dip denoise`" in caplog.text and not out.exists()
    assert main(["sr", str(src), "--factor", "2", "-o", str(out), "--preset", "inpaint-pixels", *QUICK]) == 2
    caplog.clear()
    assert main(["jpeg", str(src), "-o", str(out), "--preset", "denoise", *QUICK]) == 0
    assert "--preset denoise is made for `dip denoise`; running it for `dip jpeg`" in caplog.text


def test_the_last_line_names_the_image_its_step_and_psnr(tmp_path, photo64, caplog):
    caplog.set_level(logging.INFO)
    src = save_png(tmp_path / "in.png", photo64)
    gt = save_png(tmp_path / "gt.png", photo64)
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--gt", str(gt), *QUICK]) == 0
    last = caplog.records[-1].getMessage()
    record = _record(out)
    assert last.startswith(f"wrote {out}: the averaged output (EMA) of step 3 (the last of 4 steps (fixed budget))")
    assert f"PSNR vs --gt {record['output']['psnr_gt']:.2f} dB" in last and "psnr_gt_avg" not in last
    # The PSNR printed is that of the image written (the averaged one here), not of the raw output.
    assert record["output"]["psnr_gt"] == pytest.approx(record["history"][-1]["psnr_gt_avg"], abs=0.05)
    assert record["output"]["kind"] == "averaged output (EMA)" and "auto_stop_would_stop_at" in record["output"]
    assert main(["denoise", str(src), "-o", str(out), *QUICK[:1], "1", *QUICK[2:], "--exp-weight", "0"]) == 0
    last = caplog.records[-1].getMessage()
    assert "the raw output of step 0 (the last of 1 step (fixed budget)); 1 step in" in last and "1 steps" not in last


def test_every_file_written_is_named(tmp_path, photo64, caplog):
    """The early output beside the image (--early-stop-record) and degrade lr's HR image are said, not only written."""
    caplog.set_level(logging.INFO)
    src = save_png(tmp_path / "in.png", photo64)
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--early-stop-record", "--es-window", "2", "--es-patience", "1",
                 *QUICK[:1], "4", *QUICK[2:], "--log-every", "1"]) == 0  # fmt: skip
    said, early = [r.getMessage() for r in caplog.records], tmp_path / "out.early.png"
    assert said[-2].startswith("early stopping: detected step ") and said[-2].endswith(f"; wrote its output to {early}")
    assert said[-1].startswith(f"wrote {out}: ") and early.is_file()
    lr, hr = tmp_path / "lr.png", tmp_path / "hr.png"
    assert main(["degrade", "lr", str(src), "-o", str(lr), "--factor", "2", "--hr-output", str(hr)]) == 0
    assert caplog.records[-1].getMessage() == f"wrote {lr} and the HR image {hr}" and hr.is_file()
    assert main(["degrade", "noise", str(src), "-o", str(tmp_path / "noisy.png")]) == 0
    assert caplog.records[-1].getMessage() == f"wrote {tmp_path / 'noisy.png'}"


def test_auto_is_the_default_and_iters_a_fixed_budget(tmp_path, photo64, caplog):
    caplog.set_level(logging.INFO)
    from dip.cli import build_parser
    from dip.cli.restore_command import stop_mode

    parse = build_parser().parse_args
    assert stop_mode(parse(["denoise", "x.png", "-o", "y.png"])) == "auto"
    assert stop_mode(parse(["denoise", "x.png", "-o", "y.png", "--iters", "9"])) == "fixed"
    assert stop_mode(parse(["denoise", "x.png", "-o", "y.png", "--iters", "9", "--stop", "auto"])) == "auto"
    assert stop_mode(parse(["denoise", "x.png", "-o", "y.png", "--early-stop"])) == "es-wmv"
    from dip.data import degrade

    src = save_png(tmp_path / "noisy.png", degrade.add_gaussian_noise(photo64, 50, seed=0))
    out = tmp_path / "out.png"
    assert main(["denoise", str(src), "-o", str(out), "--stop", "auto", "--iters", "40", "--width", "8",
                 "--device", "cpu", "--quiet", "--log-every", "5", "--exp-weight", "0.9", "--lr", "0.03"]) == 0
    record = _record(out)
    auto = record["auto_stop"]
    assert record["stop"]["mode"] == "auto" and auto["rule"] == "discrepancy" and auto["sigma_255"] > 30
    assert record["output"]["step"] == record["summary"]["iterations_done"] - 1
    if auto["fired"]:
        assert record["output"]["step"] == auto["stop_step"] and "auto stop (discrepancy)" in caplog.text
    else:
        assert "did not fire" in record["output"]["why"]
    assert main(["denoise", str(src), "-o", str(out), "--stop", "auto", "--early-stop", *QUICK]) == 2


def test_every_option_has_help():
    import argparse

    from dip.cli import build_parser

    def parsers(parser, name="dip"):
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from parsers(sub, f"{name} {sub_name}")

    missing = [f"{name} {action.option_strings or action.dest}" for name, parser in parsers(build_parser())
               for action in parser._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help]
    assert not missing
    # Every subcommand's --help starts with what it does, and every option that may be left out says what it is then
    # (flags are off, and one of a required group is given).
    assert not [name for name, parser in parsers(build_parser()) if name != "dip" and not parser.description]
    unsaid = [f"{name} {action.option_strings}" for name, parser in parsers(build_parser())
              for required in [{a for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}]
              for action in parser._actions
              if action.option_strings and action.nargs != 0 and not action.required and action not in required
              and "default" not in action.help.lower()]  # fmt: skip
    assert not unsaid
    done = subprocess.run([sys.executable, "-m", "dip", "degrade", "noise", "--help"], capture_output=True, text=True)
    text = " ".join(done.stdout.split())
    assert "0-255 scale (default 25)" in text and "seed of the noise (default 0)" in text


def test_a_checkpoint_on_a_full_disk_is_one_line_and_leaves_no_lock(tmp_path, photo64, full_disk):
    # issue #28 item 2: one line naming the file and the cause, exit 2, no empty .lock left behind
    src = save_png(tmp_path / "noisy.png", photo64)
    ckpt = full_disk / "fit.ckpt"
    proc = subprocess.run([sys.executable, "-m", "dip", "denoise", str(src), "-o", str(tmp_path / "out.png"),
                           "--checkpoint", str(ckpt), "--checkpoint-every", "2", *QUICK],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "No space left on device" in proc.stderr and "free space" in proc.stderr
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_a_checkpoint_of_another_image_is_refused_in_one_line_and_removed_after_success(tmp_path, photo64,
                                                                                         monkeypatch, caplog):
    # issue #28 item 3: `dip inpaint a.png ... --checkpoint c.ckpt` then the same on b.png resumed a's fit silently
    import dip.fit.engine

    a = save_png(tmp_path / "a.png", photo64)
    b = save_png(tmp_path / "b.png", np.ascontiguousarray(photo64[:, ::-1]))
    ckpt = tmp_path / "fit.ckpt"
    args = ["--checkpoint", str(ckpt), "--checkpoint-every", "2", *QUICK]
    real = dip.fit.engine.FitDriver._save

    def save_then_crash(self, step):  # killed right after the first checkpoint
        real(self, step)
        raise KeyboardInterrupt

    monkeypatch.setattr(dip.fit.engine.FitDriver, "_save", save_then_crash)
    assert main(["denoise", str(a), "-o", str(tmp_path / "a_out.png"), *args]) == 130 and ckpt.exists()
    monkeypatch.setattr(dip.fit.engine.FitDriver, "_save", real)
    caplog.clear()
    assert main(["denoise", str(b), "-o", str(tmp_path / "b_out.png"), *args]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "was made for other input images" in errors[0] and str(ckpt) in errors[0]
    assert not (tmp_path / "b_out.png").exists()
    assert main(["denoise", str(a), "-o", str(tmp_path / "a_out.png"), *args]) == 0  # its own image: resumed
    assert json.loads((tmp_path / "a_out.json").read_text())["summary"]["resumed_from"] == 2
    assert not ckpt.exists()  # removed once the outputs are written (dip --help says so)
