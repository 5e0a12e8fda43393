"""The torch-free memory model of a fit: a fixed part plus bytes per output pixel, read off the network's settings.

The dry-run estimate (:func:`dip.fit.memory.fit_memory`) needs torch and 1-2 s a shape. Two callers cannot wait for
it: the workflow's planner, which stays torch-free and plans hundreds of fits (:func:`fit_mem_mb`, a job's
``mem_mb``), and a fit asking whether it needs the estimate at all (:func:`plain_memory_bound`). Both read this one
model of the estimate's plain peak on a CPU::

    bytes = MARGIN * (FIXED + pixels * (PER_PIXEL_BASE + PER_PIXEL_128[precision] * widest / 128 + images))

``widest``: the widest full-resolution layer of a skip network (:func:`widest_layer`); ``images``: the fit's own
tensors (:func:`image_bytes_per_pixel`). Networks outside the skip family (U-Net, ResNet), whose structure the model
does not follow, get ``OTHER_NETS_FACTOR`` times the per-pixel part. The constants are fitted to the dry runs of the
default skip net (BENCHMARKS.md, memory); tests keep the model at 1.0-1.6x the estimate for the paper's presets, so a
scheduler request may over-ask a little, never under-ask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dip.fit.config import FitConfig

__all__ = ["fit_mem_mb", "net_of", "plain_memory_bound", "model_bytes", "image_bytes_per_pixel", "widest_layer"]

MIB = 2**20
FIXED = 180 * MIB  # the runtime's allowance, the weights and Adam's moments
PER_PIXEL_BASE = 160
PER_PIXEL_128 = {"fp32": 6000, "bf16": 4100}  # bytes per output pixel per 128 channels of the widest layer
MARGIN = 1.2
OTHER_NETS_FACTOR = 4
# The bound a fit trusts instead of the dry run: this many times the model, for images up to CHEAP_BOUND_PIXELS
# (512 x 512); larger fits always pay for the dry run.
BOUND_FACTOR = 2
CHEAP_BOUND_PIXELS = 512 * 512


def image_bytes_per_pixel(input_depth: int, channels: int) -> int:
    """Bytes per output pixel of a fit's own fp32 tensors: ``z``, its noise and the perturbed input (``input_depth``
    channels each), and the observation, output, averaged output and loss terms (the image's ``channels``)."""
    return 4 * (3 * input_depth + 5 * channels)


def _widths(value: Any) -> list[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [int(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def widest_layer(net_kwargs: Mapping[str, Any] | None, width_cap: int | None = None) -> int:
    """The channels of a skip network's widest full-resolution layer: the largest of ``channels_down`` /
    ``channels_up`` (128 when neither is given), ``num_channels`` and ``channels``, plus the largest skip; each capped
    at ``width_cap`` (a spec's ``width``) when given."""
    kwargs = net_kwargs or {}
    main = max([*_widths(kwargs.get("channels_down", [])), *_widths(kwargs.get("channels_up", []))], default=128)
    main = max([main, *_widths(kwargs.get("num_channels", [])), *_widths(kwargs.get("channels", []))])
    skip = max(_widths(kwargs.get("channels_skip", [])), default=0)
    if width_cap:
        main, skip = min(main, int(width_cap)), min(skip, int(width_cap))
    return main + skip


def model_bytes(net: str, input_depth: int, net_kwargs: Mapping[str, Any] | None, height: int, width: int,
                channels: int = 3, precision: str = "fp32", width_cap: int | None = None) -> float:  # fmt: skip
    """The model's plain peak (bytes, ``MARGIN`` included) of a fit of network ``net`` producing ``height x width``
    images with ``channels`` channels; precision "auto" (or any other) counts as fp32, the larger."""
    per_128 = PER_PIXEL_128.get(precision, PER_PIXEL_128["fp32"])
    per_pixel = PER_PIXEL_BASE + per_128 * widest_layer(net_kwargs, width_cap) / 128
    if not str(net).lower().startswith(("skip", "encoder_decoder")):
        per_pixel *= OTHER_NETS_FACTOR
    per_pixel += image_bytes_per_pixel(int(input_depth), int(channels))
    return MARGIN * (FIXED + height * width * per_pixel)


def net_of(config: Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"net", "input_depth", "net_kwargs", "precision"}`` of a config dict (:meth:`dip.fit.FitConfig.to_dict`, or
    a preset's network: :func:`dip.presets.preset_net`) with FitConfig ``settings`` applied; what it leaves out counts
    as the default skip net's, in fp32."""
    base = {"net": "skip", "input_depth": 32, "net_kwargs": {}} | dict(config)
    base.setdefault("precision", "fp32")
    return base | {k: v for k, v in (settings or {}).items() if k in ("net", "input_depth", "net_kwargs", "precision")}


def fit_mem_mb(
    config: Mapping[str, Any],
    width_cap: int | None,
    height: int,
    width: int,
    channels: int = 3,
    precision: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> int:
    """Megabytes a job should ask its scheduler for to run one fit of a ``height x width`` output.

    config: the network's settings (a config dict, or :func:`dip.presets.preset_net`); width_cap: the spec's ``width`` (None: the preset's);
    precision: overrides the config's ("auto" counts as fp32); settings: the spec's FitConfig overrides. The model is
    the CPU estimate; a fit on a GPU needs less host memory, so there the request is an upper bound.
    """
    net = net_of(config, settings)
    precision = precision or net["precision"]
    estimate = model_bytes(net["net"], net["input_depth"], net.get("net_kwargs"), height, width, channels, precision,
                           width_cap)  # fmt: skip
    return int(math.ceil(estimate / MIB))


def plain_memory_bound(config: FitConfig, height: int, width: int, channels: int = 3) -> int | None:
    """An upper bound (bytes) on the peak memory of ``config``'s plain fit of a ``height x width`` output, without
    torch: ``BOUND_FACTOR`` times the model, which is itself above the dry-run estimate (tests). None above
    :data:`CHEAP_BOUND_PIXELS`, where the bound is not worth trusting."""
    if height * width > CHEAP_BOUND_PIXELS:
        return None
    estimate = model_bytes(config.net, config.input_depth, config.net_kwargs, height, width, channels, config.precision)
    return int(BOUND_FACTOR * estimate)
