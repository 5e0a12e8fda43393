"""Shared fixtures: tiny crops of scikit-image's bundled photos (offline) and the benchmark mirror on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import MIRROR, crop_photo, serve

# Two threads is what CI has; fixing it keeps timings and CPU results stable between runs. DIP_TEST_THREADS=1 when
# the other core is busy (two multi-threaded processes on two cores slow small fits down many times over).
torch.set_num_threads(int(os.environ.get("DIP_TEST_THREADS", "2")))


@pytest.fixture
def photo64() -> np.ndarray:
    # The astronaut's face and helmet: textured enough that a prior matters.
    return crop_photo("astronaut", 64, top=60, left=180)


@pytest.fixture
def grey64() -> np.ndarray:
    return crop_photo("camera", 64, top=100, left=200)


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not MIRROR.is_dir():
        pytest.skip(f"benchmark mirror not found at {MIRROR}")
    return MIRROR


@pytest.fixture(scope="module")
def mirror_url(mirror):
    """The benchmark mirror served over HTTP on 127.0.0.1: the real download code runs against it."""
    with serve(mirror) as url:
        yield url
