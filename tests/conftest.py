"""Shared fixtures: tiny crops of scikit-image's bundled photos (offline), small and fast fit settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "benchmark-mirror"

# Two threads is what CI has; fixing it keeps timings and CPU results stable between runs.
torch.set_num_threads(2)


def crop_photo(name: str = "astronaut", size: int = 64, top: int = 0, left: int = 0) -> np.ndarray:
    """A (size, size, C) float32 crop of a scikit-image photo, in [0, 1]."""
    import skimage.data

    img = getattr(skimage.data, name)()
    img = img[top : top + size, left : left + size]
    img = img.astype(np.float32) / 255.0
    return img[..., None] if img.ndim == 2 else img


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
    from tests.httpmirror import serve

    with serve(mirror) as url:
        yield url


def tiny_config(**overrides):
    """A 3-level, 16-channel skip net: fits a 64 px image in a few seconds on 2 cores."""
    from dip.fit import FitConfig

    base = dict(
        net="skip",
        net_kwargs=dict(channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3, upsample="bilinear"),
        input_depth=8,
        iterations=30,
        log_every=5,
        device="cpu",
    )
    base.update(overrides)
    return FitConfig(**base)
