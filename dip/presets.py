"""The authors' per-task settings, as :class:`~dip.fit.FitConfig` presets.

Source: the notebooks of the authors' repository (DmitryUlyanov/deep-image-prior, HEAD 042e0d4); each preset's
description names its notebook. All use Adam and reflection padding; the network input is U(0, 0.1) noise unless a
preset says otherwise. Override anything with ``get_preset(name, iterations=..., ...)``; ``width=`` rescales the
channel counts of a skip network (useful for quick CPU runs). Which preset a task runs at which level (SR x8 ->
``sr8``) is the task table's business: :func:`dip.tasks.default_preset`.
"""

from __future__ import annotations

from dip.errors import DipInputError
from dip.fit.config import FitConfig

# The default "hourglass with skips": 5 levels of 128 channels, 4-channel skips, 3x3, bilinear upsampling.
_DEFAULT_SKIP = dict(channels_down=[128] * 5, channels_up=[128] * 5, channels_skip=[4] * 5, upsample="bilinear")

PRESETS: dict[str, tuple[str, FitConfig]] = {
    "denoise": (
        "Denoising, sigma 25 (denoising.ipynb, F16): 3000 it, reg 1/30, EMA 0.99, backtracking",
        FitConfig(net_kwargs=_DEFAULT_SKIP, iterations=3000, reg_noise_std=1 / 30, exp_weight=0.99, backtrack_db=5.0),
    ),
    "denoise-set9": (
        "Denoising the paper's 9 colour images, sigma 25: as 'denoise' for 1800 it (the paper: '29.22 after 1800 "
        "optimization steps'; by 3000 a fit has overfitted the noise)",
        FitConfig(net_kwargs=_DEFAULT_SKIP, iterations=1800, reg_noise_std=1 / 30, exp_weight=0.99, backtrack_db=5.0),
    ),
    "denoise-sigma50": (
        "Denoising, sigma 50: as 'denoise' with reg 1/20 (the notebook's comment for sigma 50)",
        FitConfig(net_kwargs=_DEFAULT_SKIP, iterations=3000, reg_noise_std=1 / 20, exp_weight=0.99, backtrack_db=5.0),
    ),
    "sr4": (
        "Super-resolution x4 (super-resolution.ipynb): 2000 it, reg 0.03, Lanczos2 downsampler in the loss",
        FitConfig(net_kwargs=_DEFAULT_SKIP, iterations=2000, reg_noise_std=0.03, exp_weight=None, backtrack_db=None),
    ),
    "sr8": (
        "Super-resolution x8: 4000 it, reg 0.05 (the project page's 'ours' for x8)",
        FitConfig(net_kwargs=_DEFAULT_SKIP, iterations=4000, reg_noise_std=0.05, exp_weight=None, backtrack_db=None),
    ),
    "inpaint-pixels": (
        "Restoration of 50% missing pixels (restoration.ipynb, Barbara; CVPR Table 1): LR 0.001, 11000 it, reg 0.03",
        FitConfig(
            net_kwargs=_DEFAULT_SKIP, lr=0.001, iterations=11000, reg_noise_std=0.03, exp_weight=None,
            backtrack_db=5.0,
        ),
    ),
    "inpaint-text": (
        "Text inpainting (inpainting.ipynb, kate): 128-channel skips, nearest upsampling, 6001 it, reg 0.03",
        FitConfig(
            net_kwargs=dict(channels_down=[128] * 5, channels_up=[128] * 5, channels_skip=[128] * 5,
                            upsample="nearest"),
            iterations=6001, reg_noise_std=0.03, exp_weight=None, backtrack_db=None,
        ),
    ),
    "inpaint-hole": (
        "Large-hole inpainting (inpainting.ipynb, vase): meshgrid input, no skips, nearest, 5001 it, reg 0.03",
        FitConfig(
            net_kwargs=dict(channels_down=[128] * 5, channels_up=[128] * 5, channels_skip=[0] * 5,
                            upsample="nearest"),
            input_kind="meshgrid", input_depth=2, iterations=5001, reg_noise_std=0.03, exp_weight=None,
            backtrack_db=None,
        ),
    ),
    "inpaint-library": (
        "Architecture study (inpainting.ipynb, library, Fig. 8): skip_depth6, 1-channel input, 3001 it, no reg",
        FitConfig(net="skip_depth6", input_depth=1, iterations=3001, reg_noise_std=0.0, exp_weight=None,
                  backtrack_db=None),
    ),
    "jpeg": (
        "JPEG / blind restoration (denoising.ipynb, snail): small skip net, 3-channel input, 2400 it, EMA 0.99",
        FitConfig(
            net_kwargs=dict(channels_down=[8, 16, 32, 64, 128], channels_up=[8, 16, 32, 64, 128],
                            channels_skip=[0, 0, 0, 4, 4], upsample="bilinear"),
            input_depth=3, iterations=2400, reg_noise_std=1 / 30, exp_weight=0.99, backtrack_db=5.0,
        ),
    ),
    "flash": (
        "Flash / no-flash (flash-no-flash.ipynb, cave): z = the flash image, LR 0.1, 601 it, no reg",
        FitConfig(
            net_kwargs=dict(channels_down=[128] * 5, channels_up=[128] * 5, channels_skip=[4] * 5,
                            upsample=["nearest", "nearest", "bilinear", "bilinear", "bilinear"]),
            input_kind="image", input_depth=3, lr=0.1, iterations=601, reg_noise_std=0.0, exp_weight=None,
            backtrack_db=None,
        ),
    ),
    # --- the DIP family (dip.methods): each method's preset per task, its sources in its docstring there and in
    # dip.fit.family / dip.nets.deep_decoder / dip.nets.random_projector.
    "dd-denoise": (
        "Deep Decoder denoising (supplement_deep_decoder denoising.ipynb, astronaut sigma 30): k=128, 6 layers, "
        "input 128 x H/32 x W/32 of U(0, 0.1), Adam 0.01, 1900 it, no reg, no EMA, no backtracking",
        FitConfig(method="dd", net="deep_decoder", net_kwargs=dict(channels=128, layers=6), input_depth=128, lr=0.01,
                  iterations=1900, reg_noise_std=0.0, exp_weight=None, backtrack_db=None),
    ),
    "dip-tv-denoise": (
        "DIP-TV denoising (Liu et al. ICASSP 2019): 'denoise' plus 0.01 x the isotropic TV of the output",
        FitConfig(method="dip-tv", method_settings=dict(tv_weight=0.01), net_kwargs=_DEFAULT_SKIP, iterations=3000,
                  reg_noise_std=1 / 30, exp_weight=0.99, backtrack_db=5.0),
    ),
    "sgld-denoise": (
        "SGLD denoising (GP-DIP Image_Denoising.ipynb, Peppers sigma 25): the default skip net, Adam 0.01 with weight "
        "decay 5e-8, Langevin noise std 2 x lr on the conv weights, 20000 it, the mean of samples every 50 it after "
        "7000, reg 1/30, backtracking",
        FitConfig(method="sgld", method_settings=dict(param_noise_sigma=2.0, weight_decay=5e-8, burn_in=7000,
                                                      sample_every=50),
                  net_kwargs=_DEFAULT_SKIP, iterations=20000, reg_noise_std=1 / 30, exp_weight=None, backtrack_db=5.0),
    ),
    "drp-denoise": (
        "Deep Random Projector denoising (Deep-Random-Projector 1_Denoising): BN + a 1-level skip net of 64 channels "
        "with frozen random convs, fitted N(0, 0.01) input of 3 channels, Adam 0.1, sqrt(MSE) + 0.45 x TV, 5000 it",
        FitConfig(method="drp", method_settings=dict(tv_weight=0.45), net="random_projector",
                  net_kwargs=dict(channels_down=[64], channels_up=[64], channels_skip=[4], upsample="bilinear"),
                  input_kind="normal", input_depth=3, input_scale=0.1, lr=0.1, iterations=5000, reg_noise_std=0.0,
                  exp_weight=None, backtrack_db=None),
    ),
    "sure-denoise": (
        "DIP-SURE denoising (DIP-denosing, dip_sure): the noisy image as input, SURE loss with one MC probe at "
        "0.5 sigma, RAdam 0.1 halved at 2000, 3000 it, EMA 0.99; the default skip net (theirs: s2s)",
        FitConfig(method="sure", method_settings=dict(sigma=None, epsilon=0.5, lr_milestones=[2000], lr_gamma=0.5),
                  net_kwargs=_DEFAULT_SKIP, input_kind="image", input_depth=3, lr=0.1, iterations=3000,
                  reg_noise_std=0.0, exp_weight=0.99, backtrack_db=None),
    ),
}


def with_width(config: FitConfig, width: int) -> FitConfig:
    """Scale every non-zero channel count of a skip network to at most ``width`` (skip channels keep their ratio)."""
    if width < 1:
        raise DipInputError(f"width must be >= 1, got {width}")
    kwargs = dict(config.net_kwargs)
    for key in ("channels_down", "channels_up"):
        if key in kwargs:
            kwargs[key] = [min(c, width) for c in kwargs[key]]
    if "channels_skip" in kwargs:
        kwargs["channels_skip"] = [min(c, width) for c in kwargs["channels_skip"]]
    if "channels" in kwargs:  # the Deep Decoder's k (its input depth follows: the first layer takes k channels)
        kwargs["channels"] = min(kwargs["channels"], width)
        config = config.replace(input_depth=min(config.input_depth, width))
    if config.net.startswith("skip_depth") or not kwargs:
        raise DipInputError(f"width= applies to presets with an explicit skip network, not {config.net!r}")
    return config.replace(net_kwargs=kwargs)


def get_preset(name: str, *, width: int | None = None, **overrides) -> FitConfig:
    """The preset ``name`` with ``overrides`` applied (any :class:`FitConfig` field)."""
    if name not in PRESETS:
        raise DipInputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    config = PRESETS[name][1].replace(**{k: v for k, v in overrides.items() if v is not None})
    # never share the module-level dicts
    config = config.replace(net_kwargs=dict(config.net_kwargs), method_settings=dict(config.method_settings))
    if width is not None:
        config = with_width(config, width)
    return config


def preset_net(name: str) -> dict:
    """The network settings of preset ``name`` (``net``, ``input_depth``, ``net_kwargs``) that the torch-free memory
    model reads (:func:`dip.fit.memory_model.fit_mem_mb`); an unknown name counts as the default skip net's."""
    config = PRESETS.get(name, PRESETS["denoise"])[1]
    return {"net": config.net, "input_depth": config.input_depth, "net_kwargs": config.net_kwargs}


def describe() -> list[tuple[str, str]]:
    return [(name, text) for name, (text, _) in PRESETS.items()]


def config_from_spec(
    spec: dict | None, *, default_preset: str | None = None, device: str | None = None, base: FitConfig | None = None
) -> FitConfig:
    """The FitConfig a workflow job describes: ``spec`` is a dict with ``preset``, ``width`` (channel cap),
    ``settings`` (any FitConfig field) and ``seed``, each optional.

    The preset is ``spec["preset"]``, else ``default_preset``; with neither, ``base`` is the starting point (its
    settings replaced, its width capped). ``device`` fills in ``settings["device"]`` when the spec has none. A
    ``seed`` key (a fit job's spec has one) sets the seed, overriding ``settings``.
    """
    spec = dict(spec or {})
    preset = spec.get("preset") or default_preset
    settings = dict(spec.get("settings") or {})
    if device is not None:
        settings.setdefault("device", device)
    if preset is not None:
        config = get_preset(preset, width=spec.get("width"), **settings)
    elif base is None:
        raise DipInputError("no preset given and no default settings")
    else:
        config = base.replace(**settings)
        config = with_width(config, spec["width"]) if spec.get("width") else config
    return config.replace(seed=spec["seed"]) if "seed" in spec else config
