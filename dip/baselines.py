"""The non-DIP methods the paper compares with, runnable on a CPU in seconds.

* ``bicubic`` -- the super-resolution literature's bicubic row: MATLAB ``imresize`` bicubic down and up from the
  ground truth (:func:`sr_bicubic`, :func:`dip.data.resize.matlab_bicubic_baseline`), which reproduces the authors'
  released ``*_bicubic.png`` images exactly. It is computed from the GT, not from DIP's LR input (Pillow Lanczos of
  the multiple-of-32 crop), which is sharper: Pillow bicubic upsampling of that LR (:func:`pil_bicubic_upsample`,
  the authors' ``get_baselines``; also the ``"bicubic"`` start of the pixel-optimising baselines) scores
  0.15-0.37 dB above the paper's Bicubic rows on Set5 x4 (the function ``bicubic`` is an alias of that upsampler,
  kept for its existing callers; the *baseline* named ``bicubic`` is :func:`sr_bicubic`);
* ``no_prior`` / ``tv_prior`` -- the supplementary "prior effect" experiment (``sr_prior_effect.ipynb``): optimise the
  pixels of ``x`` directly under the same observation operator as DIP, without / with a TV term;
* ``cbm3d`` -- ``bm3d.bm3d_rgb`` (colour; ``bm3d.bm3d`` for grey) at the true noise level;
* ``nlm`` -- scikit-image non-local means at the true noise level;
* ``biharmonic`` -- scikit-image biharmonic inpainting (a cheap stand-in for the paper's Papyan et al. CSC, whose
  code is not public; the released Papyan outputs are scored from the benchmark files instead).

All take and return library images: float32 ``(H, W, C)`` in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from dip import physics
from dip.data.imageio import check_image, to_pil
from dip.errors import DipInputError
from dip.tasks import BASELINES  # which baseline applies to which task: the task table's
from dip.fit.pixels import optimise_pixels, tv_loss  # noqa: F401 -- tv_loss is part of this module's interface

__all__ = [
    "pil_bicubic_upsample",
    "sr_bicubic",
    "cbm3d",
    "nlm",
    "biharmonic",
    "tv_loss",
    "no_prior",
    "tv_prior",
    "run_baseline",
    "BASELINES",
]


# The authors' prior-effect notebook: Adam, LR 0.01, 2000 steps, TV weight 1e-7 (on a *sum* over pixels).
PRIOR_EFFECT_ITERATIONS = 2000
PRIOR_EFFECT_TV_WEIGHT = 1e-7


def _check_sigma(sigma) -> float:
    if sigma is None or not np.isfinite(sigma) or sigma <= 0:
        raise DipInputError(f"this denoiser needs the noise level sigma > 0 (0-255 scale, e.g. 25), got {sigma!r}")
    return float(sigma)


def _from_pil(pil: Image.Image) -> np.ndarray:
    arr = np.asarray(pil, dtype=np.float32) / np.float32(255.0)
    return arr[..., None] if arr.ndim == 2 else arr


def pil_bicubic_upsample(lr: np.ndarray, factor: int) -> np.ndarray:
    """Pillow bicubic upsampling of the uint8-quantised LR image by ``factor`` (the authors' ``get_baselines``).

    An upsampler of a given LR image (e.g. DIP's own Lanczos LR), not the literature's Bicubic row: for that, see
    :func:`sr_bicubic`.
    """
    arr = check_image(lr, "LR image")
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise DipInputError(f"the SR factor must be a positive integer, got {factor!r}")
    pil = to_pil(arr)
    return _from_pil(pil.resize((pil.width * int(factor), pil.height * int(factor)), Image.BICUBIC))


def sr_bicubic(ground_truth: np.ndarray, factor: int) -> np.ndarray:
    """The super-resolution literature's Bicubic result for ``ground_truth`` (float32, the GT's full frame).

    MATLAB ``imresize(imresize(GT, 1/factor), factor)`` (bicubic, antialiased, edge-replicating, LR kept in double)
    rounded to 8 bits: :func:`dip.data.resize.matlab_bicubic_baseline`. It reproduces the authors' released
    ``*_bicubic.png`` files of Set5/Set14 x4/x8 pixel for pixel from their ``*_GT.png``. A GT whose sides are not
    multiples of ``factor`` is cropped to them first (the literature's ``modcrop``: the last rows/columns go) and
    the result is edge-padded back to the GT frame, so that it is scored on the same region as every other output.
    """
    from dip.data.resize import matlab_bicubic_baseline, modcrop

    gt = check_image(ground_truth, "ground truth")
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise DipInputError(f"the SR factor must be a positive integer, got {factor!r}")
    cropped = modcrop(gt, int(factor))
    out = matlab_bicubic_baseline(cropped, int(factor))
    pad = ((0, gt.shape[0] - out.shape[0]), (0, gt.shape[1] - out.shape[1]), (0, 0))
    return np.pad(out, pad, mode="edge") if any(p[1] for p in pad) else out


def cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D at the true noise level ``sigma`` (0-255 scale): CBM3D (``bm3d_rgb``, 'np' profile) for colour.

    The default profile on purpose: ``profile='refilter'`` crashes with a scalar sigma in bm3d 4.0.3.
    """
    import bm3d as bm3d_lib  # imported here: it is slow to import and only the denoising baselines need it

    arr = check_image(noisy, "noisy image").astype(np.float64)
    s = _check_sigma(sigma) / 255.0
    if arr.shape[2] == 3:
        out = bm3d_lib.bm3d_rgb(arr, s)
    else:
        out = np.asarray(bm3d_lib.bm3d(arr[..., 0], s))[..., None]
    return np.clip(np.asarray(out, dtype=np.float32).reshape(arr.shape), 0.0, 1.0)


def nlm(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Non-local means (skimage ``denoise_nl_means``) with the true ``sigma``: fast mode, 5x5 patches, distance 6,
    ``h = 0.8 sigma`` (a calibrated setting)."""
    from skimage.restoration import denoise_nl_means

    arr = check_image(noisy, "noisy image").astype(np.float64)
    s = _check_sigma(sigma) / 255.0
    out = denoise_nl_means(
        arr, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1
    )
    return np.clip(np.asarray(out, dtype=np.float32).reshape(arr.shape), 0.0, 1.0)


def biharmonic(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Biharmonic inpainting (skimage ``inpaint_biharmonic``) of the pixels where ``mask`` is 0.

    A per-channel mask is reduced to "missing in any channel" (skimage takes one mask for all channels); known
    pixels keep their observed values.
    """
    from skimage.restoration import inpaint_biharmonic

    from dip.data.degrade import validate_mask

    arr = check_image(img).astype(np.float64)
    m = validate_mask(mask, arr.shape[:2], channels=arr.shape[2])
    missing = np.any(m <= 0.5, axis=2)
    if not missing.any():
        return arr.astype(np.float32)
    out = inpaint_biharmonic(arr, missing, channel_axis=-1)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def _initial_pixels(init, shape_hw_c, y, operator, seed) -> torch.Tensor:
    h, w, c = shape_hw_c
    gen = torch.Generator().manual_seed(int(seed))
    if isinstance(init, np.ndarray):
        start = check_image(init, "initial image")
        if start.shape != (h, w, c):
            raise DipInputError(f"the initial image has shape {start.shape}, expected {(h, w, c)}")
        return torch.from_numpy(start.transpose(2, 0, 1).copy())[None]
    if init == "noise":  # the notebook: get_noise(3, 'noise', HR size) = U(0, 0.1)
        return torch.rand((1, c, h, w), generator=gen) * 0.1
    if init == "zero":
        return torch.zeros((1, c, h, w))
    if init == "bicubic":
        factor = getattr(operator, "factor", 1)
        if factor == 1:
            return y.detach().clone()  # same size as x: start from the observation itself
        lr = y[0].permute(1, 2, 0).numpy()
        return torch.from_numpy(pil_bicubic_upsample(lr, factor).transpose(2, 0, 1).copy())[None]
    raise DipInputError(f"unknown initialisation {init!r}; use 'noise', 'zero', 'bicubic' or an image array")


def _optimise_pixels(
    y: np.ndarray,
    operator: nn.Module,
    shape,
    *,
    iterations: int,
    lr: float,
    seed: int,
    init,
    tv_weight: float,
    beta: float,
) -> np.ndarray:
    obs = check_image(y, "observation")
    if iterations < 1:
        raise DipInputError(f"iterations must be >= 1, got {iterations}")
    if len(shape) == 2:
        shape = (shape[0], shape[1], obs.shape[2])
    h, w, c = (int(v) for v in shape)
    y_t = torch.from_numpy(obs.transpose(2, 0, 1).copy())[None]
    x = _initial_pixels(init, (h, w, c), y_t, operator, seed).to(torch.float32)
    with torch.no_grad():
        probe = operator(x)
    if probe.shape != y_t.shape:
        raise DipInputError(
            f"an image of shape {(h, w, c)} maps to {tuple(probe.shape)} under the operator, "
            f"but the observation is {tuple(y_t.shape)}"
        )
    # The notebook optimises the identity network's input ("OPT_OVER = 'input'"): plain Adam on the pixels, no sigmoid
    # or clipping during the fit, clipped to [0, 1] at the end.
    x = optimise_pixels(x, lambda pixels: physics.data_term(operator, pixels, y_t), iterations=iterations, lr=lr,
                        tv_weight=tv_weight, tv_beta=beta)  # fmt: skip
    out = x[0].permute(1, 2, 0).numpy()
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def no_prior(
    y: np.ndarray,
    operator: nn.Module,
    shape,
    *,
    iterations: int = PRIOR_EFFECT_ITERATIONS,
    lr: float = 0.01,
    seed: int = 0,
    init="noise",
) -> np.ndarray:
    """Fit the pixels of ``x`` (shape ``(H, W[, C])``) to ``y`` under ``operator`` with no prior at all.

    The supplementary "no prior" baseline: the data term alone leaves everything ``A`` cannot see (high frequencies
    for SR, missing pixels for inpainting) at its initial value. ``init``: ``"noise"`` (U(0, 0.1), the notebook's),
    ``"zero"``, ``"bicubic"`` (:func:`pil_bicubic_upsample` of ``y``, or ``y`` itself when ``A`` keeps the size), or an
    image. It is :func:`tv_prior` with weight 0.
    """
    return tv_prior(y, operator, shape, tv_weight=0.0, iterations=iterations, lr=lr, seed=seed, init=init)


def tv_prior(
    y: np.ndarray,
    operator: nn.Module,
    shape,
    *,
    tv_weight: float = PRIOR_EFFECT_TV_WEIGHT,
    beta: float = 0.5,
    iterations: int = PRIOR_EFFECT_ITERATIONS,
    lr: float = 0.01,
    seed: int = 0,
    init="noise",
) -> np.ndarray:
    """:func:`no_prior` plus ``tv_weight * tv_loss(x, beta)`` (notebook: weight 1e-7 on the pixel *sum*, beta 0.5)."""
    if tv_weight < 0:
        raise DipInputError(f"the TV weight must be >= 0, got {tv_weight}")
    return _optimise_pixels(
        y, operator, shape, iterations=iterations, lr=lr, seed=seed, init=init, tv_weight=tv_weight, beta=beta
    )


def run_baseline(
    name: str,
    task: str,
    observation: np.ndarray,
    *,
    sigma: float | None = None,
    factor: int | None = None,
    mask: np.ndarray | None = None,
    ground_truth: np.ndarray | None = None,
    seed: int = 0,
    iterations: int = PRIOR_EFFECT_ITERATIONS,
    **options,
) -> np.ndarray:
    """Run baseline ``name`` on ``observation`` for ``task``; DipInputError if it does not apply to that task.

    ``observation`` is what DIP would get: the noisy image (denoise), the LR image (sr), the image with missing pixels
    (inpaint, with ``mask``). ``options`` go to :func:`tv_prior` (``tv_weight``, ``beta``, ``lr``, ``init``).
    ``bicubic`` is the SR literature's row (:func:`sr_bicubic`): it is made from ``ground_truth`` (the full GT frame;
    the output has its shape), not from ``observation``.
    """
    if name not in BASELINES:
        raise DipInputError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")
    if task not in BASELINES[name]:
        raise DipInputError(
            f"the {name} baseline does not apply to {task!r}; it is for: {', '.join(BASELINES[name])}"
        )
    obs = check_image(observation, "observation")
    if name == "bicubic":
        if factor is None:
            raise DipInputError("the bicubic baseline needs the SR factor")
        if ground_truth is None:
            raise DipInputError(
                "the bicubic baseline is the SR literature's (MATLAB imresize down and up from the ground truth): "
                "it needs the ground truth; pil_bicubic_upsample upsamples an LR image instead"
            )
        return sr_bicubic(ground_truth, factor)
    if name == "cbm3d":
        return cbm3d(obs, sigma)
    if name == "nlm":
        return nlm(obs, sigma)
    if name == "biharmonic":
        if mask is None:
            raise DipInputError("the biharmonic baseline needs the inpainting mask")
        return biharmonic(obs, mask)

    # no_prior / tv_prior: pixel optimisation under the task's own observation operator.
    operator = physics.build_operator(task, channels=obs.shape[2], factor=factor, mask=mask)
    scale = operator.factor
    shape = (obs.shape[0] * scale, obs.shape[1] * scale, obs.shape[2])
    y = obs if task != "inpaint" else obs * np.asarray(operator.mask[0].permute(1, 2, 0))
    optimise, allowed = {"no_prior": (no_prior, {"lr", "init"}),
                         "tv_prior": (tv_prior, {"lr", "init", "tv_weight", "beta"})}[name]  # fmt: skip
    unknown = set(options) - allowed
    if unknown:
        raise DipInputError(f"unknown option(s) for {name}: {', '.join(sorted(unknown))}")
    return optimise(y, operator, shape, iterations=iterations, seed=seed, **options)
