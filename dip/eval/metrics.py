"""Scores: full-image PSNR/SSIM, and the paper's super-resolution metric.

The paper's numbers are not all measured alike (the authors' notebooks and their SR evaluation script):

* denoising and inpainting: PSNR on the full image, values in [0, 1], ``data_range=1`` (RGB for colour, grey for
  grey) -- what :func:`psnr` computes;
* super-resolution (Tables 1-2): PSNR of the BT.601 luma scaled to 16-235 (MATLAB ``rgb2ycbcr``), on the centre
  region the DIP output covers (the HR image cropped to a multiple of 32), minus 4 px at the top/left and 5 px at
  the bottom/right -- :func:`psnr_sr_paper`. This is the authors' ``super-resolution_eval_script.py``.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dip.errors import DipInputError
from dip.data.imageio import LUMA_WEIGHTS, centre_crop_box

__all__ = [
    "psnr",
    "ssim",
    "rgb_to_y",
    "sr_region",
    "sr_region_from_output",
    "sr_paper_crop",
    "psnr_sr_paper",
    "ssim_sr_paper",
    "SR_SHAVE",
]

# The eval script's slice ``[t[0] + 4 : t[-1] - 4]`` on the region's first/last index t: 4 px off the top/left,
# 5 px off the bottom/right (the end index is exclusive and t[-1] is the last row inside).
SR_SHAVE = (4, 5)


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise DipInputError(f"cannot compare images of different shapes: {ref.shape} vs {est.shape}")
    if ref.ndim == 3 and ref.shape[2] == 1:
        ref, est = ref[..., 0], est[..., 0]
    if ref.ndim not in (2, 3) or (ref.ndim == 3 and ref.shape[2] != 3):
        raise DipInputError(f"expected (H, W), (H, W, 1) or (H, W, 3) images, got {np.shape(reference)}")
    if ref.size == 0:
        raise DipInputError("cannot score an empty image")
    return ref, est


def psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """PSNR in dB over the full image (all channels), values in [0, 1] (``data_range=1``); ``inf`` if identical."""
    ref, est = _pair(reference, estimate)
    if np.array_equal(ref, est):
        return float("inf")  # skimage would divide by zero (and warn) to get the same answer
    return float(peak_signal_noise_ratio(ref, est, data_range=1.0))


def ssim(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SSIM (Wang et al. 2004, skimage defaults: 7x7 uniform window) with ``data_range=1``; channel-averaged for RGB.

    Images smaller than 7 px on a side use the largest odd window that fits (at least 3).
    """
    ref, est = _pair(reference, estimate)
    side = min(ref.shape[0], ref.shape[1])
    if side < 3:
        raise DipInputError(f"SSIM needs an image of at least 3x3 pixels, got {ref.shape[1]}x{ref.shape[0]}")
    win = min(7, side if side % 2 else side - 1)
    return float(
        structural_similarity(ref, est, data_range=1.0, win_size=win, channel_axis=-1 if ref.ndim == 3 else None)
    )


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma as the paper's SR metric uses it: ``Y = 0.299 R + 0.587 G + 0.114 B`` mapped to [16, 235]/255.

    ``Y * (235 - 16) / 255 + 16 / 255`` (= MATLAB ``rgb2ycbcr``'s Y on [0, 1]). A grey image is its own luma and goes
    through the same scaling. Returns float64 ``(H, W, 1)``.
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise DipInputError(f"expected an (H, W, 1|3) image, got shape {np.shape(img)}")
    y = arr[..., 0] if arr.shape[2] == 1 else arr[..., :3] @ LUMA_WEIGHTS  # alpha (C=4) is ignored
    return (y * (235.0 - 16.0) / 255.0 + 16.0 / 255.0)[..., None]


def sr_region(shape_hw, multiple: int = 32) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the centre crop DIP restores: sides are the largest multiples of ``multiple``.

    Same rounding as :func:`dip.data.imageio.crop_to_multiple` (the authors' ``crop_image``).
    """
    h, w = int(shape_hw[0]), int(shape_hw[1])
    return centre_crop_box(h, w, multiple)


def sr_region_from_output(img: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` spanned by the non-zero pixels of a zero-padded output (RGB part only).

    This is how the authors' eval script finds the region: from their ``*_deep_prior.png``, which ``put_in_center``
    zero-padded back into the GT frame.
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[..., None]
    colour = arr[..., :3] if arr.shape[2] >= 3 else arr
    energy = colour.sum(axis=2)
    rows = np.flatnonzero(energy.sum(axis=1) > 0)
    cols = np.flatnonzero(energy.sum(axis=0) > 0)
    if rows.size == 0:
        raise DipInputError("the image is all zeros: there is no restored region to score")
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def sr_paper_crop(img: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """``img`` inside ``region`` minus the 4/5 px shave: rows ``[top+4, top+h-5)``, cols ``[left+4, left+w-5)``."""
    top, left, h, w = (int(v) for v in region)
    before, after = SR_SHAVE
    if h <= before + after or w <= before + after:
        raise DipInputError(f"the SR region {w}x{h} is too small for the paper's {before}/{after} px border shave")
    arr = np.asarray(img)
    if top < 0 or left < 0 or top + h > arr.shape[0] or left + w > arr.shape[1]:
        raise DipInputError(
            f"the SR region {region} (top, left, h, w) lies outside the {arr.shape[1]}x{arr.shape[0]} image"
        )
    return arr[top + before : top + h - after, left + before : left + w - after]


def _sr_pair(gt: np.ndarray, estimate: np.ndarray, region) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt)
    estimate = np.asarray(estimate)
    if gt.shape[:2] != estimate.shape[:2]:
        raise DipInputError(
            f"the estimate is {estimate.shape[1]}x{estimate.shape[0]} but the ground truth is "
            f"{gt.shape[1]}x{gt.shape[0]}; put a cropped output back into the GT frame (imageio.put_in_center)"
        )
    if region is None:
        region = sr_region(gt.shape[:2])
    return sr_paper_crop(rgb_to_y(gt), region), sr_paper_crop(rgb_to_y(estimate), region)


def psnr_sr_paper(gt: np.ndarray, estimate: np.ndarray, region: tuple[int, int, int, int] | None = None) -> float:
    """The paper's SR PSNR: Y channel (16-235), inside ``region`` minus 4 px top/left and 5 px bottom/right.

    ``region`` is ``(top, left, height, width)`` in GT pixels; by default the centre multiple-of-32 box
    (:func:`sr_region`), or pass :func:`sr_region_from_output` of a zero-padded DIP output as the authors did.
    """
    a, b = _sr_pair(gt, estimate, region)
    return psnr(a, b)


def ssim_sr_paper(gt: np.ndarray, estimate: np.ndarray, region: tuple[int, int, int, int] | None = None) -> float:
    """SSIM on the same Y-channel region as :func:`psnr_sr_paper` (the paper reports no SSIM; ours is extra)."""
    a, b = _sr_pair(gt, estimate, region)
    return ssim(a, b)
