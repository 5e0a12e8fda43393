"""dip.restore: the task level over a fit (the task's output size and channels)."""

from __future__ import annotations

from dip.data import degrade
from dip.restore import restore
from tests.helpers import tiny_fit_config


def test_sr_fit_produces_hr_output(photo64):
    lr = photo64[::4, ::4].copy()  # 16x16: any LR image will do for the shape contract
    result = restore("sr", lr, config=tiny_fit_config(iterations=3), factor=4, ground_truth=photo64)
    assert result.output.shape == (64, 64, 3)


def test_grey_inpainting_fit_output_is_grey(grey64):
    mask = degrade.bernoulli_mask(grey64.shape[:2], 0.5, seed=0)
    result = restore("inpaint", grey64, config=tiny_fit_config(iterations=3), mask=mask)
    assert result.output.shape == (64, 64, 1)
