"""Making degraded inputs the way the paper did: Gaussian noise, Lanczos low-resolution images, inpainting masks, and
the targets of the learning curves of Fig. 2 (:func:`learning_curve_target`).

Every random function takes an explicit ``seed`` (an int or a ``numpy.random.Generator``): the authors' notebooks
seed nothing, so their inputs cannot be regenerated; ours can. Masks follow the library convention: float32
``(H, W, 1)`` shared by all channels or ``(H, W, C)`` per channel, 1 = known pixel, 0 = missing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dip.errors import DipInputError
from dip.tasks import LEARNING_CURVE_KINDS
from dip.data.imageio import check_image, crop_to_multiple, read_image, to_pil, uint8_roundtrip

__all__ = [
    "add_gaussian_noise",
    "make_lr",
    "bernoulli_mask",
    "text_mask",
    "mask_from_file",
    "mask_from_masked",
    "apply_mask",
    "validate_mask",
    "learning_curve_target",
]


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise DipInputError(f"a seed must be an integer >= 0 (or a numpy Generator), got {seed!r}")
    return np.random.default_rng(int(seed))


def _check_hw(shape_hw) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in tuple(shape_hw)[:2])
    except (TypeError, ValueError):
        raise DipInputError(f"expected an image size (H, W), got {shape_hw!r}") from None
    if h < 1 or w < 1:
        raise DipInputError(f"an image size must be positive, got {h}x{w} (H x W)")
    return h, w


def add_gaussian_noise(
    img: np.ndarray, sigma: float, seed: int | np.random.Generator, *, quantize: bool = False
) -> np.ndarray:
    """``clip(img + N(0, (sigma/255)^2), 0, 1)`` with ``sigma`` on the 0-255 scale (the paper uses 25 and 50).

    ``quantize=True`` rounds the result to 8 bits, as the released ``*_noisy.png`` files are; the authors' notebook
    (``get_noisy_image``) keeps the float values.
    """
    arr = check_image(img)
    if not np.isfinite(sigma) or sigma < 0:
        raise DipInputError(f"the noise level sigma must be >= 0 (on the 0-255 scale, e.g. 25), got {sigma}")
    noise = _rng(seed).normal(0.0, sigma / 255.0, size=arr.shape)
    noisy = np.clip(arr.astype(np.float64) + noise, 0.0, 1.0).astype(np.float32)
    return uint8_roundtrip(noisy) if quantize else noisy


def make_lr(hr: np.ndarray, factor: int, *, multiple: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The authors' SR input (``load_LR_HR_imgs_sr(..., 'CROP')``): returns ``(hr_cropped, lr)``.

    The HR image is centre-cropped to a multiple of ``lcm(multiple, factor)`` (32 in the paper, which x4 and x8
    divide) and the LR image is Pillow's Lanczos resize (``Image.LANCZOS`` == the removed ``Image.ANTIALIAS``) of the
    8-bit HR image to ``(W / factor, H / factor)``. Both are float32 in [0, 1].
    """
    arr = check_image(hr, "HR image")
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise DipInputError(f"the SR factor must be a positive integer, got {factor!r}")
    factor = int(factor)
    m = math.lcm(int(multiple), factor)
    h, w = arr.shape[:2]
    if h < m or w < m:
        raise DipInputError(
            f"the image ({w}x{h}) is too small for x{factor} super-resolution: it needs at least {m}x{m} pixels "
            f"(the HR image is cropped to a multiple of {m})"
        )
    hr_crop, _ = crop_to_multiple(arr, m)
    pil = to_pil(hr_crop)  # rounded in float32, as the LR inputs always were
    lr_pil = pil.resize((pil.width // factor, pil.height // factor), Image.LANCZOS)
    lr = np.asarray(lr_pil, dtype=np.float32) / np.float32(255.0)
    if lr.ndim == 2:
        lr = lr[..., None]
    return hr_crop, lr


def validate_mask(mask: np.ndarray, shape_hw=None, channels: int | None = None) -> np.ndarray:
    """Check a mask and return it as float32 ``(H, W, 1|C)``; DipInputError if it does not fit or is empty."""
    m = np.asarray(mask)
    if m.ndim == 2:
        m = m[..., None]
    if m.ndim != 3:
        raise DipInputError(f"a mask must be (H, W), (H, W, 1) or (H, W, C), got shape {m.shape}")
    m = m.astype(np.float32)
    if shape_hw is not None:
        h, w = _check_hw(shape_hw)
        if m.shape[:2] != (h, w):
            raise DipInputError(
                f"the mask is {m.shape[1]}x{m.shape[0]} but the image is {w}x{h} (W x H); they must be the same size"
            )
    if channels is not None and m.shape[2] not in (1, channels):
        raise DipInputError(f"the mask has {m.shape[2]} channels; the image has {channels} (use 1 or {channels})")
    if not np.any(m > 0):
        raise DipInputError("the mask is empty: no pixel is known (1 = known, 0 = missing), there is nothing to fit")
    return m


def bernoulli_mask(
    shape_hw, missing_fraction: float, seed: int | np.random.Generator, *, channels: int = 1
) -> np.ndarray:
    """Random pixel mask: each entry is kept (1) with probability ``1 - missing_fraction``.

    Like the authors' ``get_bernoulli_mask`` (``random_sample > zero_fraction``). ``channels=1`` drops the same
    pixels in every channel; ``channels=C`` draws each channel independently (what the authors' code does for a
    colour image unless the mask is copied).
    """
    h, w = _check_hw(shape_hw)
    if not 0.0 <= missing_fraction < 1.0:
        raise DipInputError(f"the missing fraction must be in [0, 1), got {missing_fraction}")
    if channels < 1:
        raise DipInputError(f"a mask needs at least one channel, got {channels}")
    mask = (_rng(seed).random((h, w, channels)) > missing_fraction).astype(np.float32)
    return validate_mask(mask)


def text_mask(
    shape_hw,
    text: str = "Deep Image Prior",
    font_size: int | None = None,
    *,
    line_spacing: float = 2.0,
) -> np.ndarray:
    """A mask with ``text`` written over the whole image as missing pixels (the text-inpainting setting, Fig. 7).

    Lines of ``text`` are repeated from the top-left corner every ``line_spacing * font_size`` rows. The font is
    Pillow's own (``ImageFont.load_default(size=...)``), so no system font is needed and the mask is the same on
    every machine with the same Pillow. ``font_size`` defaults to 1/10 of the shorter side (at least 8 px).
    Returns float32 ``(H, W, 1)``.
    """
    h, w = _check_hw(shape_hw)
    if not text or not text.strip():
        raise DipInputError("the text of a text mask must not be empty")
    if font_size is None:
        font_size = max(8, min(h, w) // 10)
    if font_size < 1:
        raise DipInputError(f"the font size must be >= 1, got {font_size}")
    if line_spacing <= 0:
        raise DipInputError(f"the line spacing must be > 0, got {line_spacing}")
    font = ImageFont.load_default(size=font_size)
    canvas = Image.new("L", (w, h), 255)  # 255 = known
    draw = ImageDraw.Draw(canvas)
    # Repeat the text along each line so it crosses the whole width, as the authors' kate example does.
    text_w = max(1, int(draw.textlength(text + " ", font=font)))
    line = " ".join([text] * (w // text_w + 1))
    step = max(1, int(round(line_spacing * font_size)))
    y = max(1, font_size // 4)
    while y < h:
        draw.text((max(1, font_size // 4), y), line, font=font, fill=0)
        y += step
    mask = (np.asarray(canvas) > 127).astype(np.float32)[..., None]
    return validate_mask(mask)


def mask_from_file(path: str | os.PathLike, shape_hw=None) -> np.ndarray:
    """Read a mask image (white/1 = known, black/0 = missing), binarised at 0.5.

    A colour mask whose channels agree becomes ``(H, W, 1)``; otherwise it stays per channel ``(H, W, 3)``.
    With ``shape_hw`` the mask must have that size (DipInputError naming both sizes otherwise).
    """
    path = Path(path)
    raw = read_image(path, alpha="ignore")
    mask = (raw > 0.5).astype(np.float32)
    if mask.shape[2] == 3 and np.array_equal(mask[..., :1].repeat(3, axis=2), mask):
        mask = mask[..., :1]
    if shape_hw is not None:
        h, w = _check_hw(shape_hw)
        if mask.shape[:2] != (h, w):
            raise DipInputError(
                f"the mask {path} is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h} (W x H); "
                "they must be the same size"
            )
    try:
        return validate_mask(mask)
    except DipInputError as exc:
        raise DipInputError(f"{path}: {exc}") from None


def mask_from_masked(masked: np.ndarray) -> np.ndarray:
    """Recover the mask from a released ``*_masked.png``: missing pixels are exactly 0.

    (A known pixel whose true value is 0 is misread as missing; in the released 50% images that is a handful of
    pixels.) Per-channel for colour input, collapsed to ``(H, W, 1)`` when all channels agree.
    """
    arr = check_image(masked, "masked image")
    mask = (arr != 0).astype(np.float32)
    if mask.shape[2] == 3 and np.array_equal(mask[..., :1].repeat(3, axis=2), mask):
        mask = mask[..., :1]
    return validate_mask(mask)


def apply_mask(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``img * mask`` (missing pixels set to 0), after checking that the mask fits the image."""
    arr = check_image(img)
    m = validate_mask(mask, arr.shape[:2], channels=arr.shape[2])
    return (arr * m).astype(np.float32)


def learning_curve_target(img: np.ndarray, kind: str, seed: int = 0, noise_sigma: float = 25.0) -> np.ndarray:
    """The four targets of Fig. 2 (:data:`dip.tasks.LEARNING_CURVE_KINDS`) made from ``img`` (H, W, C) in [0, 1]; the
    workflow's learning_curve job (:func:`dip.pipeline.steps.learning_curve`) fits them.

    ``image``: the image; ``image_noise``: plus N(0, (sigma/255)^2), clipped; ``shuffled``: its pixels (all channels
    together) randomly permuted; ``noise``: U(0, 1) i.i.d. values of the same shape.
    """
    arr = np.asarray(img, dtype=np.float32)
    rng = np.random.default_rng(int(seed))
    if kind == "image":
        return arr.copy()
    if kind == "image_noise":
        return np.clip(arr + rng.normal(0.0, noise_sigma / 255.0, arr.shape), 0, 1).astype(np.float32)
    if kind == "shuffled":
        h, w, c = arr.shape
        flat = arr.reshape(h * w, c)
        return flat[rng.permutation(h * w)].reshape(h, w, c).copy()
    if kind == "noise":
        return rng.random(arr.shape).astype(np.float32)
    raise DipInputError(f"unknown learning-curve target {kind!r}; choose one of: {', '.join(LEARNING_CURVE_KINDS)}")
