"""dip.data.benchmarks: the benchmark registry (against the manifest), embedded photos, task inputs."""

from __future__ import annotations

import numpy as np
import pytest

from dip.data import benchmarks as datasets
from dip.errors import DipInputError
from dip.data.manifest import read_manifest
from tests.helpers import MANIFEST, MIRROR


# --- the registry --------------------------------------------------------------------------------------------------


def test_benchmarks_have_the_paper_sizes():
    b = datasets.BENCHMARKS
    assert len(b["set5"].images) == 5 and len(b["set14"].images) == 14
    assert len(b["color9"].images) == 9 and len(b["gray11"].images) == 11
    assert b["set5"].released_files(8, "baby")["dip"].endswith("baby_deep_prior_005.png")
    assert b["gray11"].input_file(0.5, "boat").endswith("Reconstruction/Gray/50p/boat_masked.png")
    with pytest.raises(DipInputError, match="no level"):
        b["set5"].folder(3)
    with pytest.raises(DipInputError, match="no image"):
        b["set5"].file(4, "lena", "GT")


def test_committed_manifest_lists_every_benchmark_file():
    manifest = read_manifest(MANIFEST)
    for bench in datasets.BENCHMARKS.values():
        for level in bench.levels:
            missing = [f for f in bench.all_files(level) if f not in manifest]
            assert not missing, (bench.name, level, missing[:3])


# --- images and task inputs ----------------------------------------------------------------------------------------


def test_load_embedded_resizes_to_a_square():
    img = datasets.load_embedded("chelsea", 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    full = datasets.load_embedded("coffee")  # 400 x 600 -> multiples of 32
    assert full.shape == (384, 576, 3)
    assert datasets.load_embedded("camera", 32).shape == (32, 32, 1)
    with pytest.raises(DipInputError, match="embedded"):
        datasets.load_embedded("lena", 64)


def test_sr_inputs_crop_to_32_and_downscale():
    gt = np.random.default_rng(0).random((100, 70, 3)).astype(np.float32)
    made = datasets.make_task_inputs("sr", 4, gt)
    assert made.ground_truth.shape == gt.shape  # scored in the full GT frame
    assert made.fit_target.shape == (96, 64, 3)
    assert made.observation.shape == (24, 16, 3)


def test_denoise_inputs_are_seeded_and_quantised(photo64):
    a = datasets.make_task_inputs("denoise", 25, photo64, seed=3)
    b = datasets.make_task_inputs("denoise", 25, photo64, seed=3)
    c = datasets.make_task_inputs("denoise", 25, photo64, seed=4)
    np.testing.assert_array_equal(a.observation, b.observation)
    assert not np.array_equal(a.observation, c.observation)
    np.testing.assert_allclose(a.observation * 255, np.round(a.observation * 255), atol=1e-3)
    noise_std = float(np.std(a.observation - photo64)) * 255
    assert 18 < noise_std < 27  # sigma 25, a little less where clipping bites


def test_denoise_uses_the_released_noisy_image(photo64):
    released = np.clip(photo64 + 0.1, 0, 1)
    made = datasets.make_task_inputs("denoise", 25, photo64, released_input=released)
    np.testing.assert_array_equal(made.observation, released)
    with pytest.raises(DipInputError, match="released noisy"):
        datasets.make_task_inputs("denoise", 25, photo64, released_input=released[:32])


def test_inpaint_inputs(grey64):
    made = datasets.make_task_inputs("inpaint", 0.5, grey64, seed=1)
    assert made.mask.shape == (64, 64, 1)
    assert made.info["missing_fraction"] == pytest.approx(0.5, abs=0.05)
    np.testing.assert_array_equal(made.observation, grey64 * made.mask)
    # from a released masked image: missing pixels are exactly 0
    masked = np.clip(grey64, 1 / 255, 1) * made.mask
    again = datasets.make_task_inputs("inpaint", 0.5, np.clip(grey64, 1 / 255, 1), released_input=masked)
    np.testing.assert_array_equal(again.mask, made.mask)


def test_derive_seed_is_stable_and_distinct():
    a = datasets.derive_seed(0, "photos", "astronaut", "denoise", 25)
    assert a == datasets.derive_seed(0, "photos", "astronaut", "denoise", 25)
    assert a != datasets.derive_seed(0, "photos", "coffee", "denoise", 25)
    assert a != datasets.derive_seed(1, "photos", "astronaut", "denoise", 25)
    assert 0 <= a < 2**31


def test_released_inputs_from_the_mirror():
    if not MIRROR.is_dir():
        pytest.skip("benchmark mirror not present")
    bench = datasets.BENCHMARKS["gray11"]
    gt = datasets.load_benchmark_image(MIRROR / bench.gt_file(0.5, "house"), "gray11")
    masked = datasets.load_benchmark_image(MIRROR / bench.input_file(0.5, "house"), "gray11")
    made = datasets.make_task_inputs("inpaint", 0.5, gt, released_input=masked)
    assert made.ground_truth.shape == (256, 256, 1)
    assert made.info["missing_fraction"] == pytest.approx(0.5, abs=0.01)
    set5 = datasets.BENCHMARKS["set5"]
    gt = datasets.load_benchmark_image(MIRROR / set5.gt_file(4, "head"), "set5")
    made = datasets.make_task_inputs("sr", 4, gt)
    assert made.fit_target.shape[0] % 32 == 0 and made.observation.shape[0] * 4 == made.fit_target.shape[0]
