"""Task-level entry point: one degraded image in, one restored image (and its record) out.

``restore`` checks and, where needed, crops the inputs to a size the network can take, builds the task's observation
operator and the stopping hooks (ES-WMV, the auto stop) and runs :func:`dip.fit.fit`; ``restore_many`` does the same for
K fits of one size in one batched fit (:func:`dip.fit.stacked.fit_many`). ``save_result`` writes the image and a JSON
sidecar (config, seed, versions, device, time, history) atomically. The ``dip`` command and the workflow's fit_dip and
fit_dip_pack rules all go through here.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from dip import physics
from dip.data.imageio import centre_crop_box, check_image, crop_to_box, write_image
from dip.errors import DipInputError
from dip.files import write_json
from dip.fit import FitConfig, FitResult, Hook, fit
from dip.fit.stopping.hooks import annotate_stops, auto_stop_hook, early_stopping_hook
from dip.nets.registry import size_multiple
from dip.tasks import get_task

# An old name for outside callers (nothing in this repository imports it); the one implementation: dip.files.write_json.
write_json_atomic = write_json


def net_size_multiple(config: FitConfig) -> int:
    """Spatial multiple the network's input must have (each level halves the size)."""
    return size_multiple(config.net, **config.net_kwargs)


@dataclasses.dataclass
class PreparedInputs:
    observation: np.ndarray
    mask: np.ndarray | None
    ground_truth: np.ndarray | None
    guide: np.ndarray | None
    crop_box: tuple[int, int, int, int] | None  # (top, left, height, width) in the observation's pixels
    notes: list[str]


def prepare_inputs(
    task: str,
    observation: np.ndarray,
    *,
    config: FitConfig,
    factor: int | None = None,
    mask: np.ndarray | None = None,
    ground_truth: np.ndarray | None = None,
    guide: np.ndarray | None = None,
    crop: bool = True,
) -> PreparedInputs:
    """Validate the inputs of ``task`` and centre-crop them to a size the network can take.

    For super-resolution the observation is the low-resolution image; the network produces ``factor`` times its size,
    which must be a multiple of the network's size multiple, so the LR image is cropped to ``lcm(m, f) / f``.
    """
    get_task(task)  # an unknown task fails here, with the choices
    check_image(observation)
    h, w = observation.shape[:2]
    notes: list[str] = []
    multiple = net_size_multiple(config)
    scale = 1
    if task == "sr":
        if factor is None or factor < 1:
            raise DipInputError("super-resolution needs an integer factor >= 1 (e.g. --factor 4)")
        scale = factor
        lr_multiple = math.lcm(multiple, factor) // factor
    else:
        if factor not in (None, 1):
            raise DipInputError(f"a factor only applies to super-resolution, not to {task!r}")
        lr_multiple = multiple
    if task == "inpaint":
        if mask is None:
            raise DipInputError("inpainting needs a mask (1 = known pixel, 0 = missing)")
        if mask.shape[:2] != (h, w):
            raise DipInputError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h}")
        if not np.any(mask > 0):
            raise DipInputError("the mask is empty: no pixel is known, there is nothing to fit")
    elif mask is not None:
        raise DipInputError(f"a mask only applies to inpainting, not to {task!r}")
    if task == "flash":
        if guide is None:
            raise DipInputError("flash/no-flash needs the flash image as the guide (network input)")
        if guide.shape[:2] != (h, w):
            raise DipInputError(f"the flash image is {guide.shape[1]}x{guide.shape[0]} but the no-flash is {w}x{h}")
    if ground_truth is not None and ground_truth.shape[:2] != (h * scale, w * scale):
        raise DipInputError(
            f"the ground truth is {ground_truth.shape[1]}x{ground_truth.shape[0]}, expected "
            f"{w * scale}x{h * scale} for this {task} input"
        )

    box = centre_crop_box(h, w, lr_multiple)
    if box[2] < lr_multiple or box[3] < lr_multiple:
        raise DipInputError(
            f"the image ({w}x{h}) is smaller than the network's minimum size ({lr_multiple * scale}px output)"
        )
    crop_box = None
    if (box[2], box[3]) != (h, w):
        if not crop:
            raise DipInputError(
                f"the network needs sizes that are multiples of {lr_multiple} (input {w}x{h}); crop the image"
            )
        crop_box = box
        notes.append(
            f"cropped the input from {w}x{h} to {box[3]}x{box[2]} (centre) because the network needs multiples of "
            f"{lr_multiple}{' at the low resolution' if task == 'sr' else ''}"
        )
        observation = crop_to_box(observation, box)
        mask = crop_to_box(mask, box)
        guide = crop_to_box(guide, box)
        ground_truth = crop_to_box(ground_truth, box, scale)
        if mask is not None and not np.any(mask > 0):
            raise DipInputError("after cropping, the mask has no known pixel left")
    return PreparedInputs(observation, mask, ground_truth, guide, crop_box, notes)


def restore(
    task: str,
    observation: np.ndarray,
    *,
    config: FitConfig | None = None,
    method: str | None = None,
    factor: int | None = None,
    mask: np.ndarray | None = None,
    ground_truth: np.ndarray | None = None,
    guide: np.ndarray | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    progress: bool = False,
    hooks: Iterable[Hook] = (),
    crop: bool = True,
    early_stopping: Any = None,
    auto_stop: Any = None,
) -> FitResult:
    """Restore one image with DIP. For inpainting the observation may be unmasked; it is multiplied by the mask.

    early_stopping: an :class:`~dip.fit.stopping.EarlyStopping` hook or its settings as a dict (``window``,
        ``patience``, ``stop``, ``check_every``); then the result carries ``result.early_stopping`` (the record of
        :func:`~dip.fit.stopping.early_stopping_report`: detected step, PSNR there vs at the end) and
        ``result.output_early`` (the output at the detected step, or None if the window never filled).
    auto_stop: the auto stop (:mod:`dip.fit.stopping`): True (the task's rule, obeyed: the fit ends where it fires,
        at most ``config.iterations`` steps), a dict of settings (``stop``: obey it, default True; ``tau``: the
        discrepancy factor), or an :class:`~dip.fit.stopping.AutoStop` hook. The noise is estimated from the
        (cropped) observation. The result then carries ``result.auto_stop`` (the record of
        :func:`~dip.fit.stopping.auto_stop_report`: rule, estimate, stop step and why) and ``result.output_auto``
        (the returned image at the stop step; None if the rule never fired). With ``stop=False`` the fit runs its
        budget and only records where the rule would have stopped. A method that runs its budget
        (:data:`dip.methods.METHODS`' ``stop``) records why instead.
    method: a member of the DIP family (:mod:`dip.methods`: dd, dip-tv, sgld, drp, sure); without ``config`` the
        method's preset for the task. A method refuses a task its paper does not do.
    """
    config = config_for(task, config, method)
    auto_stop = _method_auto_stop(auto_stop, task, config)
    es_hook = early_stopping_hook(early_stopping)
    if es_hook is not None:
        hooks = [*hooks, es_hook]
    prepared = prepare_inputs(
        task, observation, config=config, factor=factor, mask=mask, ground_truth=ground_truth, guide=guide, crop=crop
    )
    obs, operator = _observation_and_operator(task, prepared, factor)
    auto_hook = _auto_stop_hook(auto_stop, task, prepared, config)
    if auto_hook is not None:
        hooks = [*hooks, auto_hook]
    result = fit(
        obs, operator, config, ground_truth=prepared.ground_truth, guide=prepared.guide,
        checkpoint_path=checkpoint_path, hooks=hooks, progress=progress,
    )
    return _annotate(result, prepared, es_hook, auto_hook)


def config_for(task: str, config: FitConfig | None, method: str | None) -> FitConfig:
    """The config a restoration runs: ``config`` (its method must be ``method`` when both are given), else the
    preset of ``method`` (default DIP) for ``task``; refuses a task the method does not do."""
    from dip.methods import check_task, preset_for
    from dip.presets import get_preset
    from dip.tasks import default_preset

    if config is None:
        method = method or "dip"
        config = get_preset(preset_for(method, task) or default_preset(task))
    elif method is not None and method != config.method:
        raise DipInputError(f"method {method!r} but the config is a {config.method!r} fit; give one of the two")
    check_task(config.method, task)
    return config


def _method_auto_stop(auto_stop: Any, task: str, config: FitConfig):
    """The auto stop of a method that runs its budget: an AutoStop that never fires and says why (else as given)."""
    from dip.methods import get_method

    reason = get_method(config.method).stop
    if reason is None or auto_stop is None or auto_stop is False or not isinstance(auto_stop, (bool, Mapping)):
        return auto_stop
    from dip.fit.stopping import AutoStop, Budget

    settings = {} if auto_stop is True else dict(auto_stop)
    return AutoStop(Budget(reason), stop=bool(settings.get("stop", True)), task=task)


def _annotate(result: FitResult, prepared: PreparedInputs, es_hook, auto_hook=None) -> FitResult:
    """Add what the task level knows to a fit's result: the crop, the notes, the early-stopping and auto-stop records
    (:func:`dip.fit.stopping.hooks.annotate_stops`)."""
    result.crop_box = prepared.crop_box
    result.notes = prepared.notes + result.notes
    return annotate_stops(result, es_hook, auto_hook, prepared.ground_truth)


def _auto_stop_hook(auto_stop: Any, task: str, prepared: PreparedInputs, config: FitConfig):
    """:func:`dip.fit.stopping.hooks.auto_stop_hook` on the prepared inputs."""
    return auto_stop_hook(auto_stop, task, prepared.observation, prepared.mask, config.exp_weight)


def _observation_and_operator(task: str, prepared: PreparedInputs, factor: int | None):
    """The fit's target (masked for inpainting) and the task's observation operator A (x -> observation)."""
    obs = prepared.observation.astype(np.float32)
    if task == "inpaint":
        obs = obs * prepared.mask
    operator = physics.build_operator(task, channels=obs.shape[2], factor=factor, mask=prepared.mask)
    return obs, operator


def restore_many(
    task: str,
    observations: Sequence[np.ndarray],
    *,
    config: FitConfig,
    seeds: Sequence[int],
    factor: int | None = None,
    masks: Sequence[np.ndarray] | None = None,
    ground_truths: Sequence[np.ndarray | None] | None = None,
    crop: bool = True,
    early_stopping: dict | None = None,
    auto_stop: Any = None,
) -> list[FitResult]:
    """Restore K images of one size (or one image with K seeds) in one batched fit (:func:`dip.fit.stacked.fit_many`).

    Fit ``k`` is ``restore(task, observations[k], config=config.replace(seed=seeds[k]), ...)`` run alongside the
    others: same inputs, cropping, operator and seed, equal up to float rounding. This is how the workflow packs
    small fits into one (GPU) job. The inputs must crop to one size; checkpoints are not available in a batch (use
    :func:`restore`).

    early_stopping: ES-WMV settings (a dict, as for :func:`restore`) recorded in every fit: each result carries
        ``early_stopping`` and ``output_early``. A fit in a batch cannot stop apart from the others, so ``stop``
        must be False (the detected step and its output are recorded; the fit runs its full step count).
    auto_stop: the auto stop (True or settings, as for :func:`restore`), recorded in every fit with its own noise
        estimate: each result carries ``auto_stop`` and ``output_auto`` (the image a lone fit would have returned).
        A fit in a batch cannot stop apart from the others, so the batch runs its budget (``stop`` is noted, not
        obeyed).
    """
    from dip.fit.stacked import fit_many
    from dip.methods import check_task

    check_task(config.method, task)
    count = len(observations)
    if count == 0:
        raise DipInputError("restore_many needs at least one observation")
    masks = list(masks) if masks is not None else [None] * count
    ground_truths = list(ground_truths) if ground_truths is not None else [None] * count
    if not (len(seeds) == len(masks) == len(ground_truths) == count):
        raise DipInputError(
            f"restore_many: {count} observations but {len(seeds)} seeds, {len(masks)} masks and "
            f"{len(ground_truths)} ground truths; give one of each per fit"
        )
    prepared = [
        prepare_inputs(task, obs, config=config, factor=factor, mask=m, ground_truth=gt, crop=crop)
        for obs, m, gt in zip(observations, masks, ground_truths)
    ]
    shapes = [p.observation.shape for p in prepared]
    if len(set(shapes)) != 1:
        listed = ", ".join(f"{s[1]}x{s[0]}x{s[2]}" for s in shapes)
        raise DipInputError(f"restore_many needs inputs of one size after cropping, got {listed}; fit them apart")
    if early_stopping is not None and not isinstance(early_stopping, Mapping):
        raise DipInputError("restore_many takes early-stopping settings (a dict), one hook is built per fit")
    es_hooks = [early_stopping_hook(early_stopping) for _ in range(count)]
    if early_stopping is not None and any(h.stop for h in es_hooks):
        raise DipInputError("a fit in a batch cannot stop early on its own: give early_stopping with stop=False")
    if isinstance(auto_stop, Mapping) or auto_stop is True:
        auto_stop = {**({} if auto_stop is True else dict(auto_stop)), "stop": False}
    elif auto_stop not in (None, False):
        raise DipInputError("restore_many takes auto-stop settings (True or a dict), one hook is built per fit")
    auto_hooks = [_auto_stop_hook(_method_auto_stop(auto_stop, task, config), task, p, config) for p in prepared]
    pairs = [_observation_and_operator(task, p, factor) for p in prepared]
    results = fit_many(
        [obs for obs, _ in pairs], [op for _, op in pairs], config,
        seeds=[int(s) for s in seeds], ground_truths=[p.ground_truth for p in prepared],
        hooks=[[h for h in (es, auto) if h is not None] for es, auto in zip(es_hooks, auto_hooks)],
    )  # fmt: skip
    return [_annotate(result, p, es_hook, auto_hook)
            for result, p, es_hook, auto_hook in zip(results, prepared, es_hooks, auto_hooks)]  # fmt: skip


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The commit of the checkout ``path`` is in (None outside a git checkout)."""
    cwd = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5,
                             check=True)  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                               text=True, timeout=5, check=True)  # fmt: skip
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info() -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    import PIL
    import skimage
    import torch

    import dip

    info: dict[str, Any] = {
        "dip": dip.__version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-image": skimage.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def result_record(result: FitResult, *, extra: dict | None = None) -> dict[str, Any]:
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": result.config.to_dict(),
        "seed": result.config.seed,
        "summary": result.summary(),
        "crop_box": result.crop_box,
        "notes": result.notes,
        "environment": environment_info(),
        "history": result.history,
        **({"early_stopping": result.early_stopping} if result.early_stopping else {}),
        **({"auto_stop": result.auto_stop} if getattr(result, "auto_stop", None) else {}),
        **(extra or {}),
    }


def save_result(
    result: FitResult,
    output_png: str | os.PathLike,
    sidecar_json: str | os.PathLike | None = None,
    *,
    extra: dict | None = None,
) -> dict[str, Any]:
    """Write the restored image and its JSON record, each atomically. The sidecar defaults to ``<png>.json``."""
    output_png = Path(output_png)
    sidecar = Path(sidecar_json) if sidecar_json is not None else output_png.with_suffix(".json")
    record = result_record(result, extra=extra)
    write_image_and_record(output_png, result.output, sidecar, record)
    return record


def write_image_and_record(output_png: Path, image: np.ndarray, sidecar: Path, record: dict) -> None:
    """Write an image and its JSON record, each atomically; never leave the image without its record."""
    write_image(output_png, image)
    try:
        write_json(sidecar, record)
    except BaseException:
        output_png.unlink(missing_ok=True)
        raise
