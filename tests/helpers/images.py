"""Tiny photo crops, PNG writing and tiny fit settings."""

from __future__ import annotations

import numpy as np
from PIL import Image


def crop_photo(name: str = "astronaut", size: int = 64, top: int = 0, left: int = 0) -> np.ndarray:
    """A (size, size, C) float32 crop of a scikit-image photo, in [0, 1]."""
    import skimage.data

    img = getattr(skimage.data, name)()
    img = img[top : top + size, left : left + size]
    img = img.astype(np.float32) / 255.0
    return img[..., None] if img.ndim == 2 else img


def save_png(path, img):
    """Write a float [0, 1] (or uint8/uint16) image as an 8-bit PNG with PIL; return the path."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 and arr.dtype != np.uint16:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    Image.fromarray(arr).save(path)
    return path


def tiny_fit_config(**overrides):
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
