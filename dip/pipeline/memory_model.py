"""What a fit job should ask its scheduler for (``mem_mb``), without torch: a per-pixel model of the library's estimate.

:func:`dip.nets.memory.fit_memory` predicts a fit's peak memory from a dry run of one training step (torch, ~1-2 s
per shape); the planner (:mod:`dip.pipeline.plan`) must stay torch-free and plans hundreds of fits. This module
models that estimate (its plain mode, on CPU) as a fixed part plus bytes per output pixel::

    mem_mb = MARGIN * (FIXED + pixels * (4 * (3 * input_depth + 5 * channels) + PER_PIXEL_BASE
                                          + PER_PIXEL_128[precision] * widest / 128))

``widest``: the widest layer of a skip network at full resolution (the largest of ``channels_down``/``channels_up``,
plus the largest skip), after the spec's ``width`` cap. The constants come from the library's dry runs of the
default skip net (CPU, channels_last) at 64-1024 px and widths 32/64/128: the plain estimate is ~176 MB (runtime
allowance, weights, Adam) plus 6.5 KB per pixel (fp32) or 4.6 KB (bf16) at 128 channels, 2.0 / 1.6 KB at 32 channels;
4 * (3 * depth + 5 * channels) is the fit's own images (as in ``fit_memory``). MARGIN 1.2 keeps the request above the
estimate (tests: 1.0-1.6x of it for the paper's presets): a scheduler request may over-ask a little, never under-ask.
Networks outside the skip family (U-Net, ResNet), whose structure the model does not follow, get 4x the per-pixel
part; ``skip_depthN`` counts as a 128-channel skip net.

Precision ``auto`` counts as fp32 (the larger). The estimate is the CPU one; a fit on a GPU needs less host memory,
so there the request is an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dip.presets import PRESETS  # torch-free (FitConfig is): the presets' networks are read, not copied

__all__ = ["fit_mem_mb", "net_of"]

MIB = 2**20
FIXED = 180 * MIB
PER_PIXEL_BASE = 160
PER_PIXEL_128 = {"fp32": 6000, "bf16": 4100}  # bytes per output pixel per 128 channels of the widest layer
MARGIN = 1.2
OTHER_NETS_FACTOR = 4


def net_of(preset_or_config: str | Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"net", "input_depth", "net_kwargs", "precision"}`` of a preset name (with FitConfig ``settings`` applied)
    or of a config dict (:meth:`dip.fit.FitConfig.to_dict`); unknown presets count as the default skip net."""
    if isinstance(preset_or_config, str):
        config = PRESETS.get(preset_or_config, PRESETS["denoise"])[1]
        base = {"net": config.net, "input_depth": config.input_depth, "net_kwargs": config.net_kwargs}
    else:
        base = {"net": "skip", "input_depth": 32, "net_kwargs": {}} | dict(preset_or_config)
    base.setdefault("precision", "fp32")
    return base | {k: v for k, v in (settings or {}).items() if k in ("net", "input_depth", "net_kwargs", "precision")}


def _widths(value: Any) -> list[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [int(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def fit_mem_mb(
    preset_or_config: str | Mapping[str, Any],
    width_cap: int | None,
    height: int,
    width: int,
    channels: int = 3,
    precision: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> int:
    """Megabytes to ask for one fit of a ``height x width`` output with ``channels`` channels (see the module notes).

    preset_or_config: a preset name or a config dict; width_cap: the spec's ``width`` (None: the preset's);
    precision: overrides the config's ("auto" counts as fp32); settings: the spec's FitConfig overrides.
    """
    net = net_of(preset_or_config, settings)
    precision = precision or net["precision"]
    kwargs = net.get("net_kwargs") or {}
    main = max([*_widths(kwargs.get("channels_down", [])), *_widths(kwargs.get("channels_up", []))], default=128)
    main = max([main, *_widths(kwargs.get("num_channels", [])), *_widths(kwargs.get("channels", []))])
    skip = max(_widths(kwargs.get("channels_skip", [])), default=0)
    if width_cap:
        main, skip = min(main, int(width_cap)), min(skip, int(width_cap))
    per_pixel = PER_PIXEL_BASE + PER_PIXEL_128.get(precision, PER_PIXEL_128["fp32"]) * (main + skip) / 128
    if not str(net["net"]).lower().startswith(("skip", "encoder_decoder")):
        per_pixel *= OTHER_NETS_FACTOR
    per_pixel += 4 * (3 * int(net["input_depth"]) + 5 * int(channels))
    return int(math.ceil(MARGIN * (FIXED + height * width * per_pixel) / MIB))
