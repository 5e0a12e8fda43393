"""The paper's other experiments (beyond the three tables), as library functions the workflow's rules call.

Each function takes library images (float32 ``(H, W, C)`` in [0, 1]) and a :class:`~dip.fit.FitConfig` (the
authors' preset, or a small one for CPU runs) and returns images and numbers; nothing here reads config files.

=====================  =======================================================  ==========================
experiment             what                                                     paper
=====================  =======================================================  ==========================
jpeg                   blind restoration of a JPEG; outputs at a good step and  Fig. 3 (snail, 2400 / 50K)
                       at an overfitted one (:class:`Snapshots`)
inpaint-text           text inpainting vs biharmonic (kate + mask)              Fig. 7 top
inpaint-hole           large-hole inpainting, meshgrid input (vase + mask)      Fig. 6
architectures          depth / architecture comparison for inpainting          Fig. 8 (library)
flash                  flash / no-flash: z = flash image, target = no-flash     Fig. 10 (cave01)
sr-prior               SR x4 with no prior / TV prior / DIP                     supp. (zebra_crop)
preimage               natural pre-image, DIP vs TV (:mod:`dip.experiments.preimage`)      Fig. 9 (AlexNet)
=====================  =======================================================  ==========================

Input files are the reference repository's ``data/`` folder (:data:`DATA_FILES`), downloaded like the benchmarks.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from dip import baselines
from dip.data import degrade
from dip.data.imageio import crop_to_box, to_numpy
from dip.errors import DipInputError
from dip.experiments.catalog import ARCHITECTURES, DATA_FILES, DEFAULT_ARCHITECTURES, EXPERIMENTS  # noqa: F401
from dip.eval import metrics
from dip.fit import BaseHook, FitConfig, FitResult, FitState
from dip import nets
from dip.presets import get_preset

__all__ = [
    "DATA_FILES",
    "EXPERIMENTS",
    "Snapshots",
    "jpeg_restoration",
    "hole_psnr",
    "score_inpainting",
    "inpainting_comparison",
    "ARCHITECTURES",
    "DEFAULT_ARCHITECTURES",
    "architecture_config",
    "architecture_parameters",
    "PRIOR_EFFECT_DIP",
    "sr_prior_comparison",
    "joint_bilateral",
    "flash_no_flash",
]


# name -> (what, paper figure, input files, preset)


# --- snapshots of the output during a fit ---------------------------------------------------------------------------


class Snapshots(BaseHook):
    """Keeps the output at chosen steps (0-based), e.g. the snail at 2400 (good) and 50000 (overfitted) in one run.

    which: "avg" keeps the exponential average when the fit has one (else the raw output), "raw" the raw output.
    ``images`` maps step -> (H, W, C) numpy image. Resumes with the fit (its state goes into the checkpoint).
    """

    def __init__(self, steps: Sequence[int], which: str = "avg"):
        if which not in ("avg", "raw"):
            raise DipInputError(f"which must be 'avg' or 'raw', got {which!r}")
        self.steps = sorted({int(s) for s in steps})
        if any(s < 0 for s in self.steps):
            raise DipInputError(f"snapshot steps must be >= 0, got {self.steps}")
        self.which = which
        self.images: dict[int, np.ndarray] = {}

    def on_step(self, state: FitState) -> None:
        if state.step in self.steps:
            out = state.output_avg if self.which == "avg" and state.output_avg is not None else state.output
            self.images[state.step] = to_numpy(out.detach().clone())

    def state_dict(self) -> dict:
        return {"images": dict(self.images)}

    def load_state_dict(self, state: dict) -> None:
        self.images = dict(state["images"])


def jpeg_restoration(
    jpeg: np.ndarray, config: FitConfig, steps: Sequence[int], *, which: str = "avg", **restore_kwargs: Any
) -> tuple[FitResult, dict[int, np.ndarray]]:
    """Fit the JPEG itself (identity operator, no ground truth) and keep the outputs at ``steps``.

    ``config.iterations`` is raised to ``max(steps) + 1`` if needed. Returns the fit and ``{step: image}``.
    """
    from dip.restore import restore

    steps = sorted({int(s) for s in steps})
    if not steps:
        raise DipInputError("give at least one step to keep (e.g. 2400 and 50000)")
    if config.iterations < steps[-1] + 1:
        config = config.replace(iterations=steps[-1] + 1)
    snaps = Snapshots(steps, which=which)
    hooks = [*restore_kwargs.pop("hooks", ()), snaps]
    result = restore("jpeg", jpeg, config=config, hooks=hooks, **restore_kwargs)
    return result, snaps.images


# --- inpainting ------------------------------------------------------------------------------------------------------


def hole_psnr(gt: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the missing pixels only (mask 0), all channels; NaN when nothing is missing."""
    gt = np.asarray(gt, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    missing = np.broadcast_to(m <= 0.5, gt.shape)
    if not missing.any():
        return float("nan")
    mse = float(np.mean((gt[missing] - np.clip(est[missing], 0, 1)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def score_inpainting(gt: np.ndarray, estimate: np.ndarray, mask: np.ndarray, crop_box=None) -> dict[str, float]:
    """PSNR / SSIM over the full image and PSNR over the hole; ``crop_box`` crops ``gt`` and ``mask`` like the fit."""
    gt, mask = crop_to_box(gt, crop_box), crop_to_box(mask, crop_box)
    if gt.shape != estimate.shape:
        raise DipInputError(f"the estimate is {estimate.shape} but the (cropped) image is {gt.shape}")
    return {"psnr": metrics.psnr(gt, estimate), "ssim": metrics.ssim(gt, estimate),
            "psnr_hole": hole_psnr(gt, estimate, mask)}


def inpainting_comparison(
    image: np.ndarray, mask: np.ndarray, config: FitConfig, **restore_kwargs: Any
) -> dict[str, dict]:
    """DIP vs biharmonic inpainting of ``image`` where ``mask`` is 0; the masked input scored too.

    Returns ``{"input"|"biharmonic"|"dip": {"image": ..., "psnr": ..., "ssim": ..., "psnr_hole": ...}}`` plus
    ``"dip"["result"]`` (the :class:`FitResult`). All on the crop the network could take.
    """
    from dip.restore import restore

    mask = degrade.validate_mask(mask, image.shape[:2], channels=image.shape[2])
    result = restore("inpaint", image, config=config, mask=mask, ground_truth=image, **restore_kwargs)
    box = result.crop_box
    img_c, mask_c = crop_to_box(image, box), crop_to_box(mask, box)
    masked = degrade.apply_mask(img_c, mask_c)
    out: dict[str, dict] = {}
    for name, est in (("input", masked), ("biharmonic", baselines.biharmonic(masked, mask_c)),
                      ("dip", result.output)):
        out[name] = {"image": est, **score_inpainting(img_c, est, mask_c)}
    out["dip"]["result"] = result
    return out


# --- architecture comparison (Fig. 8) -------------------------------------------------------------------------------

# The library notebook: skip_depthN are hourglasses WITHOUT skip connections (channels_skip 0), widths
# [16, 32, 64, 128, 128, 128][:N], 5x5 down / 3x3 up, nearest; the paper's Fig. 8 labels them "encoder-decoder".
# U-Net and ResNet use LR 1e-3 there; everything else the inpaint-library preset (1-channel input, 3001 steps).


def architecture_config(
    name: str,
    *,
    base: FitConfig | None = None,
    width: int | None = None,
    pad: str | None = None,
    **overrides: Any,
) -> FitConfig:
    """The fit settings of architecture ``name`` (see :data:`ARCHITECTURES`) for the library inpainting task.

    base: settings to start from (default: the ``inpaint-library`` preset). width: cap every channel count (quick
    CPU runs: hourglass widths, the U-Net's widest level, the ResNet's channels). pad: "zero" lets the hourglasses
    take images smaller than their reflection-padding minimum (192 px for depth 6). overrides: any FitConfig field.
    """
    if name not in ARCHITECTURES:
        raise DipInputError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    config = base if base is not None else get_preset("inpaint-library")
    spec = dict(ARCHITECTURES[name][1])
    kwargs = dict(spec.pop("net_kwargs", {}))
    net = spec.pop("net")
    if net.startswith("skip_depth") or net == "encoder_decoder":
        if width is not None:
            depth = int(net[len("skip_depth"):]) if net.startswith("skip_depth") else kwargs["depth"]
            widths = (16, 32, 64, 128, 128, 128)[:depth] if net.startswith("skip_depth") else [kwargs["channels"]] * depth
            capped = [min(int(c), int(width)) for c in widths]
            if net == "encoder_decoder":
                kwargs["channels"] = capped
            else:
                kwargs["channels_down"] = kwargs["channels_up"] = capped
        if pad is not None:
            kwargs["pad"] = pad
    elif net == "unet" and width is not None:
        # The U-Net's widest level has 1024 / feature_scale channels.
        kwargs["feature_scale"] = max(kwargs["feature_scale"], min(64, 2 ** int(np.ceil(np.log2(1024 / width)))))
    elif net == "resnet" and width is not None:
        kwargs["num_channels"] = min(kwargs["num_channels"], int(width))
    changes = {"net": net, "net_kwargs": kwargs, **spec}
    changes.update({k: v for k, v in overrides.items() if v is not None})
    return config.replace(**changes)


def architecture_parameters(config: FitConfig, out_channels: int = 3) -> int:
    """Trainable parameters of the network ``config`` builds (shapes only, nothing is initialised)."""
    with torch.device("meta"):
        net = nets.build_net(config.net, config.input_depth, out_channels, **config.net_kwargs)
    return nets.count_parameters(net)


# --- super-resolution prior comparison (supplementary material) -------------------------------------------------------

# sr_prior_effect.ipynb's DIP: skip(3, 3, [128] * 5, skip 4, bilinear), 3-channel noise input, reg 1/30, 2000 steps.
PRIOR_EFFECT_DIP = FitConfig(
    net="skip",
    net_kwargs=dict(channels_down=[128] * 5, channels_up=[128] * 5, channels_skip=[4] * 5, upsample="bilinear"),
    input_depth=3, lr=0.01, iterations=2000, reg_noise_std=1 / 30, exp_weight=None, backtrack_db=None,
)


def sr_prior_comparison(
    hr: np.ndarray,
    factor: int = 4,
    *,
    dip_config: FitConfig = PRIOR_EFFECT_DIP,
    iterations: int = baselines.PRIOR_EFFECT_ITERATIONS,
    tv_weight: float = baselines.PRIOR_EFFECT_TV_WEIGHT,
    seed: int = 0,
    methods: Sequence[str] = ("bicubic", "no_prior", "tv_prior", "dip"),
    **restore_kwargs: Any,
) -> dict[str, dict]:
    """Super-resolve the LR version of ``hr`` with each method under the same Lanczos observation model.

    The LR image is made as the paper did (:func:`dip.data.degrade.make_lr`: crop to a multiple of 32, PIL Lanczos).
    ``iterations`` applies to the pixel-optimising baselines (the notebook's 2000); DIP uses ``dip_config``.
    Returns ``{"lr": {"image"}, "hr": {"image"}, method: {"image", "psnr", "ssim"}}`` (full-image RGB PSNR / SSIM).
    """
    from dip.restore import restore

    hr_c, lr = degrade.make_lr(hr, factor)
    out: dict[str, dict] = {"hr": {"image": hr_c}, "lr": {"image": lr}}
    for method in methods:
        if method == "dip":
            result = restore("sr", lr, config=dip_config.replace(seed=seed), factor=factor, ground_truth=hr_c,
                             **restore_kwargs)
            if result.crop_box is not None:
                raise DipInputError("the HR image must be a multiple of the network's size multiple (32)")
            est, extra = result.output, {"result": result}
        elif method == "bicubic":
            est, extra = baselines.pil_bicubic_upsample(lr, factor), {}
        elif method in ("no_prior", "tv_prior"):
            options = {"tv_weight": tv_weight} if method == "tv_prior" else {}
            est = baselines.run_baseline(method, "sr", lr, factor=factor, seed=seed, iterations=iterations, **options)
            extra = {}
        else:
            raise DipInputError(f"unknown method {method!r}; use bicubic, no_prior, tv_prior or dip")
        out[method] = {"image": est, "psnr": metrics.psnr(hr_c, est), "ssim": metrics.ssim(hr_c, est), **extra}
    return out


# --- flash / no-flash ------------------------------------------------------------------------------------------------


def joint_bilateral(
    image: np.ndarray, guide: np.ndarray, *, radius: int = 5, sigma_space: float = 3.0, sigma_range: float = 0.1
) -> np.ndarray:
    """Joint (cross) bilateral filter of ``image`` with range weights taken from ``guide`` (Petschnigg et al. /
    Eisemann & Durand, the paper's flash/no-flash comparison [26]): the no-flash image smoothed where the flash
    image is flat, its edges kept where the flash image has edges.
    """
    img = np.asarray(image, dtype=np.float32)
    g = np.asarray(guide, dtype=np.float32)
    if img.shape[:2] != g.shape[:2]:
        raise DipInputError(f"the image is {img.shape[:2]} but the guide is {g.shape[:2]}")
    if radius < 1 or sigma_space <= 0 or sigma_range <= 0:
        raise DipInputError("need radius >= 1 and positive sigmas")
    h, w = img.shape[:2]
    r = int(radius)
    pad_i = np.pad(img, ((r, r), (r, r), (0, 0)), mode="reflect")
    pad_g = np.pad(g, ((r, r), (r, r), (0, 0)), mode="reflect")
    num = np.zeros_like(img)
    den = np.zeros((h, w, 1), dtype=np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            ws = np.exp(-(dx * dx + dy * dy) / (2 * sigma_space**2))
            gi = pad_g[r + dy : r + dy + h, r + dx : r + dx + w]
            wr = np.exp(-np.sum((gi - g) ** 2, axis=2, keepdims=True) / (2 * sigma_range**2))
            weight = (ws * wr).astype(np.float32)
            num += weight * pad_i[r + dy : r + dy + h, r + dx : r + dx + w]
            den += weight
    return np.clip(num / den, 0.0, 1.0)


def flash_no_flash(
    noflash: np.ndarray, flash: np.ndarray, config: FitConfig, *, bilateral: dict | None = None, **restore_kwargs
) -> dict[str, dict]:
    """DIP with the flash image as the network input and the no-flash image as the target, plus the joint
    bilateral baseline. There is no ground truth: the images are returned for the figure, with each one's PSNR to
    the no-flash target (how far it moved from it) for the record."""
    from dip.restore import restore

    result = restore("flash", noflash, config=config, guide=flash, **restore_kwargs)
    nf, fl = crop_to_box(noflash, result.crop_box), crop_to_box(flash, result.crop_box)
    jbf = joint_bilateral(nf, fl, **(bilateral or {}))
    out = {"noflash": {"image": nf}, "flash": {"image": fl}, "joint_bilateral": {"image": jbf},
           "dip": {"image": result.output, "result": result}}
    for key in ("joint_bilateral", "dip"):
        out[key]["psnr_to_noflash"] = metrics.psnr(nf, out[key]["image"])
    return out
