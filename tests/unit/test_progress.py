"""Progress lines (dip.fit.hooks.ProgressLog, log_progress): what a person following a fit's log with tail -f sees.
They come every N steps or M seconds, hold the last logged values, add no device sync and change no result."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from dip import physics
from dip.errors import DipInputError
from dip.fit import FitState, ProgressLog, fit, log_progress
from dip.fit.hooks import BaseHook, default_progress_log
from tests.helpers import tiny_fit_config

LINE = re.compile(
    r"^(?P<label>[^:]+): step (?P<done>\d+)/(?P<total>\d+) \(\d+%\), (?P<values>.*)"
    r"(?P<rate>[\d.e+-]+) s/step, elapsed (?P<elapsed>\S+), ETA (?P<eta>\S+)$"
)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tick(BaseHook):
    """Advances a fake clock by ``seconds`` per step (before the progress hook looks at it)."""

    def __init__(self, clock: FakeClock, seconds: float):
        self.clock, self.seconds = clock, seconds

    def on_step(self, state):
        self.clock.now += self.seconds


def _lines(stream: io.StringIO) -> list[re.Match]:
    text = stream.getvalue().splitlines()
    matches = [LINE.match(line) for line in text]
    assert all(matches), text
    return matches


def test_a_line_every_n_steps_with_loss_psnr_and_eta(photo64):
    stream = io.StringIO()
    progress = ProgressLog(stream, every_steps=10, every_seconds=0)
    fit(photo64, physics.Identity(), tiny_fit_config(iterations=30, log_every=5), ground_truth=photo64,
        hooks=[progress])  # fmt: skip
    lines = _lines(stream)
    assert [int(m["done"]) for m in lines] == [1, 11, 21, 30]  # after steps 0, 10, 20 and the last one
    assert {m["total"] for m in lines} == {"30"} and {m["label"] for m in lines} == {"fit"}
    for m in lines:
        assert "loss " in m["values"] and "psnr_gt " in m["values"] and "psnr_gt_avg " in m["values"]
        assert "psnr_obs" not in m["values"]  # the ground truth is known: its PSNR is the one shown
        assert "(values of step" not in m["values"]  # every line falls on a logged step
        assert float(m["rate"]) > 0
    assert lines[-1]["eta"] == "0s"


def test_time_trigger_between_logged_steps_shows_the_last_logged_values(photo64):
    clock, stream = FakeClock(), io.StringIO()
    progress = ProgressLog(stream, every_steps=0, every_seconds=7, clock=clock)
    config = tiny_fit_config(iterations=20, log_every=5)
    fit(photo64, physics.Identity(), config, ground_truth=photo64, hooks=[Tick(clock, 1.0), progress])
    lines = _lines(stream)
    # one simulated second per step: a line after 7, 14 steps and at the end
    assert [int(m["done"]) for m in lines] == [7, 14, 20]
    assert "(values of step 6)" in lines[0]["values"]  # logged at step index 5 -> 6 steps done
    assert "(values of step 11)" in lines[1]["values"]
    assert [float(m["rate"]) for m in lines] == [1.0, 1.0, 1.0]
    assert [m["elapsed"] for m in lines] == ["7s", "14s", "20s"]
    assert [m["eta"] for m in lines] == ["13s", "6s", "0s"]


def test_plain_loop_interface_and_long_durations():
    clock, stream = FakeClock(), io.StringIO()
    progress = ProgressLog(stream, every_steps=5000, every_seconds=600, label="pixel fit", clock=clock)
    progress.begin(0, 10_000)
    for step in range(10_000):
        clock.now += 0.5  # half a second per step: the clock triggers every 1200 steps
        if step == 100:
            progress.note({"step": step, "data_term": 0.25})
        if progress.due(step):
            progress.report(step)
    lines = _lines(stream)
    assert [int(m["done"]) for m in lines] == [1, 1201, 2401, 3601, 4801, 5001, 6201, 7401, 8601, 9801, 10000]
    assert lines[1]["elapsed"] == "10m00s" and lines[1]["eta"] == "1h13m20s" and lines[1]["label"] == "pixel fit"
    assert "data_term 2.500e-01" in lines[1]["values"] and "(values of step 101)" in lines[1]["values"]


def test_the_hook_reads_no_tensor():
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"the progress hook read a tensor ({name}): that would sync the device")

    stream = io.StringIO()
    progress = ProgressLog(stream, every_steps=1, every_seconds=0)
    state = FitState(step=0, iterations=3, net=None, output=Untouchable(), output_avg=Untouchable(),
                     loss=Untouchable(), history=[])  # fmt: skip
    progress.on_start(state)
    for step in range(3):
        state.step = step
        progress.on_log(state, {"step": step, "loss": 0.1, "psnr_obs": 20.0, "seconds": 1.0})
        progress.on_step(state)
    assert len(_lines(stream)) == 3 and "psnr_obs 20.00" in stream.getvalue()


def test_progress_lines_change_nothing_in_the_fit(photo64):
    config = tiny_fit_config(iterations=15, log_every=5)
    plain = fit(photo64, physics.Identity(), config, ground_truth=photo64)
    with log_progress(io.StringIO(), every_steps=1, every_seconds=0):
        watched = fit(photo64, physics.Identity(), config, ground_truth=photo64)
    np.testing.assert_array_equal(plain.output, watched.output)
    np.testing.assert_array_equal(plain.output_raw, watched.output_raw)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(plain.history) == drop(watched.history)


def test_log_progress_reaches_lone_fits_batches_and_pixel_fits(photo64):
    from dip.fit.pixels import optimise_pixels
    from dip.restore import restore_many

    assert default_progress_log("fit") is None  # off outside log_progress
    stream = io.StringIO()
    config = tiny_fit_config(iterations=10, log_every=5)
    with log_progress(stream, every_steps=5, every_seconds=0):
        fit(photo64, physics.Identity(), config, ground_truth=photo64)
        restore_many("denoise", [photo64, photo64], config=config, seeds=[0, 1], ground_truths=[photo64, photo64])
        optimise_pixels(__import__("torch").zeros(1, 3, 8, 8), lambda x: (x - 0.5).pow(2).mean(), iterations=10,
                        lr=0.1)  # fmt: skip
    lines = _lines(stream)
    labels = [m["label"] for m in lines]
    assert labels == ["fit"] * 3 + ["batch of 2 fits"] * 3 + ["pixel fit"] * 3
    batch = lines[3]["values"]
    assert re.search(r"psnr_gt \[[\d.]+, [\d.]+\]", batch), batch  # one line per report, every fit's values
    assert "data_term" in lines[-1]["values"]
    with log_progress(io.StringIO(), every_steps=0, every_seconds=0):
        assert default_progress_log("fit") is None  # both triggers off: no lines
    with pytest.raises(DipInputError, match="every_steps"):
        with log_progress(every_steps=-1):
            pass
