"""The bodies of the jobs that make images: download, degrade, DIP fits (lone and packed), baselines, learning
curves -- called by the workflow's job functions (:mod:`dip.pipeline.jobs`, which the GPU reproduction script runs
too).

Each function takes a job's spec (its params, planned by :mod:`dip.pipeline.plan`) and its files (``inputs``/
``outputs``: role -> path, as the rule names them), does the work with the ``dip`` library and writes the outputs;
what it prints goes to the job's log. ``threads`` caps torch's CPU threads. No Snakemake here: plain dicts, so the
tests can call these directly.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dip.pipeline.layout import Layout

__all__ = [
    "set_threads",
    "workflow_settings",
    "CHECKPOINT_MINUTES",
    "download",
    "degrade",
    "fit",
    "fit_pack",
    "baseline",
    "learning_curve",
]


def set_threads(n: int | None) -> None:
    """Cap torch's CPU threads at the job's ``threads``."""
    import torch

    if n is not None:
        torch.set_num_threads(max(1, int(n)))


# A lone fit's checkpoint interval when the workflow config does not say (its `checkpoint_minutes`): a SIGKILL, an
# out-of-memory kill or a node failure then costs at most this much fitting.
CHECKPOINT_MINUTES = 10.0


_WORKFLOW: contextvars.ContextVar[Mapping] = contextvars.ContextVar("dip_workflow_config", default={})


@contextlib.contextmanager
def workflow_settings(config: Mapping | None, *, fits: bool = True) -> Iterator[None]:
    """Run a job with the settings it reads from the workflow config rather than from its params, so that changing
    them re-runs nothing (and, as they are not in the job's script either, neither does adding them):
    ``checkpoint_minutes`` (:func:`fit`) and, with ``fits`` (a job that fits), progress lines for every fit it runs
    (:func:`dip.fit.hooks.log_progress` with the config's ``progress``: ``every_steps``, ``every_seconds``).
    Every workflow job runs inside it (:func:`dip.pipeline.jobs.runner.run`)."""
    config = dict(config or {})
    token = _WORKFLOW.set(config)
    try:
        with contextlib.ExitStack() as stack:
            if fits:  # only then: dip.fit imports torch, which a table or figure job does not need
                from dip.fit.hooks import log_progress

                stack.enter_context(log_progress(**dict(config.get("progress") or {})))
            yield
    finally:
        _WORKFLOW.reset(token)


def input_checksums(inputs: Mapping[str, str]) -> dict[str, str]:
    """``{role: digest}`` of the files a job read (:func:`dip.pipeline.pins.content_digest`): its record keeps them,
    so that a finished job whose inputs now hold something else runs again."""
    from dip.pipeline.pins import content_digest

    return {role: content_digest(path) for role, path in sorted(inputs.items()) if isinstance(path, str)}


def made_by(observation: str):
    """The degradation a task input was made by (:func:`dip.data.benchmarks.degradation`), as its degrade job
    recorded it beside the input (``inputs.json``); None where it recorded none (made before it did, or not by the
    workflow). Fits and baselines copy it into their records (:mod:`dip.pipeline.pins` compares it)."""
    info = Layout.input_info(observation)
    try:
        with open(info) as fh:
            return json.load(fh).get("degradation")
    except (OSError, ValueError, AttributeError):
        return None


def _dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)


def _sr_factor(spec: Mapping) -> int | None:
    """The super-resolution factor of a job's spec (its level), None for the other tasks."""
    return int(spec["level"]) if spec["task"] == "sr" else None


def _mask(inputs: Mapping[str, Any]):
    from dip.data.degrade import mask_from_file

    return mask_from_file(inputs["mask"]) if inputs.get("mask") else None


def _auto_stop_image(result, png) -> None:
    """Write the image the auto stop returns where its rule fired before the fit's last step (``<image>_seed<N>_auto
    .png``, :func:`dip.pipeline.layout.auto_stop_image`), named in the record as ``auto_stop.image``; elsewhere remove
    a stale one: the auto stop then returns the fit's own output. Called before the record is written, so that a
    record never names an image that is not there."""
    from dip.data.imageio import write_image
    from dip.pipeline.layout import auto_stop_image

    path = Path(auto_stop_image(png))
    auto = result.auto_stop or {}
    if auto.get("fired") and result.output_auto is not None and auto["stop_step"] < auto["last_step"]:
        write_image(path, result.output_auto)
        auto["image"] = path.name
    else:
        path.unlink(missing_ok=True)


def _early_output(result):
    """The output at the ES-WMV detected step, or (window never filled, e.g. a fit shorter than it) the final one."""
    if result.output_early is None:
        print("early stopping: the variance window never filled; the _es output is the fit's final output")
        return result.output
    return result.output_early


def download(outputs: Sequence[str], config: Mapping, log: str | None = None) -> list[Path]:
    """The download job: fetch each of ``outputs`` (files under the config's ``resources_dir``, at the relative paths
    of its ``manifest``) from the config's ``download_base_url`` (:func:`dip.data.benchmarks.fetch`: sha256 checked,
    a file already there with the right hash is kept), writing one line per file to ``log``.

    Everything it reads comes from the config, nothing from the job's params or a script: a job re-run for changed
    params or a newer script, while its files are in place, would leave every job that reads them (through
    ancient() inputs) unscheduled in that run -- Snakemake 9 then skips them and the run ends without its targets.
    This way a download job runs only when a file is missing."""
    import traceback

    from dip.data.benchmarks import DEFAULT_BASE_URL, DEFAULT_MANIFEST, fetch, read_manifest

    root = Path(config.get("resources_dir", "resources"))
    checksums = read_manifest(config.get("manifest", DEFAULT_MANIFEST))
    base_url = config.get("download_base_url", DEFAULT_BASE_URL)
    retries, timeout = int(config.get("download_retries", 3)), float(config.get("download_timeout", 60))
    fetched = []
    with contextlib.ExitStack() as stack:
        out = None
        if log is not None:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(open(log, "w", buffering=1))
        print(f"base URL: {base_url}", file=out)
        try:
            for path in outputs:
                rel = Path(os.path.relpath(path, root)).as_posix()
                fetched.append(fetch(rel, checksums[rel], root, base_url=base_url, retries=retries, timeout=timeout))
                print(f"ok {path} sha256={checksums[rel]}", file=out)
        except BaseException:
            if out is not None:
                traceback.print_exc(file=out)
            raise
    return fetched


def degrade(spec: Mapping, inputs: Mapping[str, str], outputs: Mapping[str, str]) -> dict:
    """Make one task input (:func:`dip.data.benchmarks.make_task_inputs`): gt, observation, (hr, mask) and a record
    (``info``). ``inputs``: the benchmark's ``gt`` and ``released`` input, if any (none for embedded photos)."""
    from dip.data.benchmarks import degradation, derive_seed, load_benchmark_image, load_embedded, make_task_inputs
    from dip.data.imageio import write_image
    from dip.data.manifest import sha256sum
    from dip.files import write_json

    print(_dump(spec))
    if spec["source"] == "embedded":
        gt = load_embedded(spec["image"], spec.get("size"))
    else:
        gt = load_benchmark_image(inputs["gt"], spec["benchmark"])
    released = load_benchmark_image(inputs["released"], spec["benchmark"]) if inputs.get("released") else None
    seed = derive_seed(spec["seed"], spec["dataset"], spec["image"], spec["task"], spec["level"])
    made = make_task_inputs(spec["task"], spec["level"], gt, released_input=released, seed=seed)
    write_image(outputs["gt"], made.ground_truth)
    write_image(outputs["observation"], made.observation)
    if "hr" in outputs:
        write_image(outputs["hr"], made.fit_target)
    if "mask" in outputs:
        write_image(outputs["mask"], made.mask)
    info = {
        **made.info,
        **spec,
        "derived_seed": seed,
        "gt_shape": list(made.ground_truth.shape),
        "observation_shape": list(made.observation.shape),
        "degradation": degradation(spec, sha256sum(inputs["gt"]) if inputs.get("gt") else None),
    }
    write_json(outputs["info"], info)
    print(_dump(info))
    return info


def fit(spec: Mapping, inputs: Mapping[str, str], outputs: Mapping[str, str], threads: int | None = None,
        checkpoint_minutes: float | None = None):  # fmt: skip
    """One DIP fit (:func:`dip.restore.restore`) -> ``png`` (restored), ``raw``, ``json`` (record) and, when the spec
    records early stopping, ``es`` (the output at the detected step; the fit runs on).

    The fit checkpoints to <png>.ckpt every ``checkpoint_minutes`` of fitting (default: the workflow config's, see
    :func:`workflow_settings`, else :data:`CHECKPOINT_MINUTES`; 0: off; a ``checkpoint_seconds`` in the spec's
    settings wins), every ``checkpoint_every`` steps if the spec sets it, and on SIGTERM (SLURM preemption, time
    limit); a re-run resumes from it and the record's ``summary.resumed_from`` says from which step. It is removed once
    the outputs are written. The interval is not part of the spec: a fit's params, and so its rerun trigger, do not
    depend on it.

    A checkpoint that cannot be resumed (:class:`~dip.fit.checkpoint.CheckpointError`: unreadable, not written by dip,
    another format or other settings) is set aside as ``<png>.ckpt.bad`` (kept, not deleted) and the fit starts
    afresh; the log and the record's ``notes`` say so. Any other error, an input error during the fit included,
    leaves the checkpoint where it is. The job holds the checkpoint's lock (:func:`~dip.fit.checkpoint.
    checkpoint_lock`) throughout: a second job of the same fit (its Snakemake killed, the command run again while
    the first still stops) waits for the first to let go and then resumes from its checkpoint.
    """
    from dip.data.imageio import read_image, write_image
    from dip.fit.checkpoint import CheckpointError, checkpoint_lock
    from dip.presets import config_from_spec
    from dip.restore import restore, save_result

    set_threads(threads)
    config = config_from_spec(spec)
    if "checkpoint_seconds" not in (spec.get("settings") or {}):
        if checkpoint_minutes is None:
            checkpoint_minutes = _WORKFLOW.get().get("checkpoint_minutes")
        minutes = CHECKPOINT_MINUTES if checkpoint_minutes is None else float(checkpoint_minutes)
        config = config.replace(checkpoint_seconds=60.0 * minutes)
    print(_dump({"spec": spec, "config": config.to_dict()}))
    observation, target, mask = read_image(inputs["observation"]), read_image(inputs["target"]), _mask(inputs)
    ckpt = Path(outputs["png"]).with_suffix(".ckpt")

    def run():
        return restore(
            spec["task"],
            observation,
            config=config,
            factor=_sr_factor(spec),
            mask=mask,
            ground_truth=target,
            checkpoint_path=ckpt,
            early_stopping=spec.get("early_stopping"),
            auto_stop={"stop": False},  # runs the budget; keeps the image at the rule's step (_auto_stop_image)
        )

    with checkpoint_lock(ckpt):
        # A process killed while writing a checkpoint leaves atomic_write's temporary file (never a half checkpoint).
        for stale in ckpt.parent.glob(f".{ckpt.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        notes = []
        try:
            result = run()
        except CheckpointError as exc:
            if not (exc.path.exists() and exc.path.samefile(ckpt)):
                raise  # not this job's checkpoint: nothing to set aside
            bad = ckpt.with_name(f"{ckpt.name}.bad")
            os.replace(ckpt, bad)  # kept for a look, out of the fresh fit's way
            notes.append(f"the checkpoint {ckpt} {exc.problem}: it was set aside as {bad} and the fit started afresh")
            print(f"fit: {notes[-1]}", flush=True)
            result = run()
        result.notes.extend(notes)
        extra = {"spec": spec, "method": "dip", "inputs": input_checksums(inputs),
                 "degradation": made_by(inputs["observation"])}  # fmt: skip
        _auto_stop_image(result, outputs["png"])
        save_result(result, outputs["png"], outputs["json"], extra=extra)
        write_image(outputs["raw"], result.output_raw)
        if "es" in outputs:
            write_image(outputs["es"], _early_output(result))
        ckpt.unlink(missing_ok=True)
    if result.resumed_from:
        print(f"resumed from the checkpoint at step {result.resumed_from} (record: summary.resumed_from)")
    print(_dump(result.summary()))
    return result


def fit_pack(spec: Mapping, inputs: Mapping[str, Sequence[str]], folder: str, threads: int | None = None):
    """Several DIP fits of one size in one process (:func:`dip.restore.restore_many`) -> ``folder`` holding, per fit
    (``spec["members"]``: image, seed), the files a lone :func:`fit` writes; unpack_fit copies them out.

    No checkpoints in a pack (:func:`dip.fit.stacked.fit_many` has none): a pack stopped mid-way (SLURM preemption,
    time limit, a crash) starts again from step 0. Its progress lines hold every fit's values.
    """
    from dip.data.degrade import mask_from_file
    from dip.data.imageio import read_image, write_image
    from dip.presets import config_from_spec
    from dip.restore import restore_many, save_result

    set_threads(threads)
    members = spec["members"]
    config = config_from_spec(spec)
    print(_dump({"spec": spec, "config": config.to_dict()}))
    observations = [read_image(f) for f in inputs["observation"]]
    targets = [read_image(f) for f in inputs["target"]]
    masks = [mask_from_file(f) for f in inputs["mask"]] if inputs.get("mask") else None
    results = restore_many(
        spec["task"],
        observations,
        config=config,
        seeds=[m["seed"] for m in members],
        factor=_sr_factor(spec),
        masks=masks,
        ground_truths=targets,
        early_stopping=spec.get("early_stopping"),
        auto_stop=True,  # recorded per fit; a pack runs its budget (restore_many)
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (member, result) in enumerate(zip(members, results)):
        files = Layout.in_pack(str(folder), member["image"], member["seed"])
        one_spec = {**{k: v for k, v in spec.items() if k != "members"}, "seed": member["seed"]}
        pack = {"size": len(members), "members": members}
        read = input_checksums({role: paths[i] for role, paths in inputs.items()})
        extra = {"spec": one_spec, "method": "dip", "pack": pack, "inputs": read,
                 "degradation": made_by(inputs["observation"][i])}  # fmt: skip
        _auto_stop_image(result, files["png"])
        save_result(result, files["png"], files["json"], extra=extra)
        write_image(files["raw"], result.output_raw)
        if spec.get("early_stopping"):
            write_image(files["es"], _early_output(result))
        print(_dump({"fit": member, **result.summary()}))
    return results


def baseline(spec: Mapping, inputs: Mapping[str, str], outputs: Mapping[str, str], threads: int | None = None):
    """One baseline (:func:`dip.baselines.run_baseline`) -> ``png`` and a JSON record (``json``). ``inputs``: the
    task inputs and, for the SR ``bicubic`` baseline (made from the ground truth, as the SR literature), ``gt``."""
    from dip.baselines import PRIOR_EFFECT_ITERATIONS, run_baseline
    from dip.data.imageio import read_image, write_image
    from dip.files import write_json
    from dip.restore import environment_info

    set_threads(threads)
    print(_dump(spec))
    options = dict(spec["options"])
    iterations = options.pop("iterations", None)
    kwargs = {"iterations": int(iterations)} if iterations is not None else {}
    started = time.perf_counter()
    output = run_baseline(
        spec["name"],
        spec["task"],
        read_image(inputs["observation"]),
        sigma=spec["level"] if spec["task"] == "denoise" else None,
        factor=_sr_factor(spec),
        mask=_mask(inputs),
        ground_truth=read_image(inputs["gt"]) if inputs.get("gt") else None,
        seed=spec["seed"],
        **kwargs,
        **options,
    )
    seconds = time.perf_counter() - started
    optimised = spec["name"] in ("no_prior", "tv_prior")
    iterations_done = kwargs.get("iterations", PRIOR_EFFECT_ITERATIONS) if optimised else None
    write_image(outputs["png"], output)
    record = {
        "method": spec["name"],
        "seed": spec["seed"],
        "spec": spec,
        "inputs": input_checksums(inputs),
        "degradation": made_by(inputs["observation"]),
        "summary": {"seconds": round(seconds, 3), "iterations_done": iterations_done},
        "environment": environment_info(),
    }
    write_json(outputs["json"], record)
    print(_dump(record["summary"]))
    return record


def learning_curve(spec: Mapping, image: str | None, output: str, threads: int | None = None) -> dict:
    """One learning curve of Fig. 2: DIP fitted to the ``kind`` target of the image
    (:func:`dip.data.degrade.learning_curve_target`) with no corruption (plain reconstruction) -> a JSON history, whose
    loss is the MSE the figure plots. ``image``: the benchmark file (None for an embedded photo)."""
    from dip.data.benchmarks import load_benchmark_image, load_embedded
    from dip.data.degrade import learning_curve_target
    from dip.files import atomic_write
    from dip.presets import config_from_spec
    from dip.restore import restore

    set_threads(threads)
    if spec["source"] == "embedded":
        img = load_embedded(spec["image"], spec.get("size"))
    else:
        img = load_benchmark_image(image, spec["benchmark"])
    config = config_from_spec(spec)
    print(_dump({"spec": spec, "config": config.to_dict()}))
    result = restore("denoise", learning_curve_target(img, spec["kind"], spec["seed"]), config=config)
    record = {"spec": spec, "config": config.to_dict(), "summary": result.summary(), "history": result.history}
    with atomic_write(output, "w") as fh:
        json.dump(record, fh)
    print(_dump(result.summary()))
    return record
