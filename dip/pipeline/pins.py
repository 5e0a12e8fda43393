"""Finished fits are pinned by what defines them, not by file dates (torch-free; used by ``common.smk``).

A DIP fit, a pack of fits or a baseline is *finished* when its outputs exist, its JSON record holds the spec the
plan gives it now (preset, settings, seed, task, level) and the degradation its inputs were made by (the dataset's
size, the degrade seed, the ground truth's sha256: :func:`dip.data.benchmarks.degradation`, compared before the
inputs are re-made, so that a changed one re-runs the fit in the same run), and the inputs it read, where they are
there, still hold what its record's digest says (:func:`content_digest`) (records written before they had these
are trusted). Its inputs are deterministic (downloads pinned by their
sha256, degraded inputs re-made from them by a seeded function), so a finished job's inputs that are missing -- a fresh
clone has none of the git-ignored ``inputs/`` -- are left out of the DAG: re-making them, new file dates or a touched
file then re-run nothing. Inputs that exist stay declared (as ``ancient()``, so their dates say nothing either), so
Snakemake's own records of a working copy keep matching.

A job whose outputs exist but whose record holds another spec or other inputs is *stale*: it also reads
:func:`spec_marker`, a small note named after the new spec's hash, written (again) when the plan finds the job stale,
so that it is newer than the job's outputs and the job runs again ("Updated input files: .../changed_specs/...")
even where Snakemake has no records of its own (a fresh clone). Snakemake's params trigger says the same in a
working copy.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from dip.pipeline.layout import Layout
from dip.pipeline.dag import Job

# rule -> (the output that is the job's record, how its spec appears in the record)
PINNED_RULES = ("fit_dip", "fit_dip_pack", "baseline")


# FitConfig settings that say when checkpoints are written or how much memory a step keeps, not what is fitted
# (dip.fit.checkpoint: a fit resumes across them): a changed value does not make a finished fit stale.
NOT_DEFINING = ("checkpoint_every", "checkpoint_seconds", "memory_saving", "memory_budget_mb")


def _normal(obj: Any) -> Any:
    """``obj`` as JSON would give it back (tuples -> lists, ints and floats compare equal)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def defining(spec: Mapping | None) -> Any:
    """What of a job's spec defines its result: the spec without :data:`NOT_DEFINING` settings, JSON-normalised."""
    spec = _normal(dict(spec or {}))
    if isinstance(spec.get("settings"), dict):
        spec["settings"] = {k: v for k, v in spec["settings"].items() if k not in NOT_DEFINING}
    return spec


def spec_hash(spec: Mapping) -> str:
    return hashlib.sha256(json.dumps(_normal(spec), sort_keys=True).encode()).hexdigest()[:10]


def _read_record(path: str) -> dict:
    try:
        with open(path) as fh:
            record = json.load(fh)
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}  # unreadable: not finished (the job then re-runs and rewrites it)


def content_digest(path: str) -> str:
    """The sha256 of what a file holds: an image's decoded pixels (with its mode and size), so that the same image
    written again by another Pillow or zlib counts as the same input; any other file's bytes."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            head = f"{img.mode} {img.size}".encode()
            return "pixels:" + hashlib.sha256(head + img.tobytes()).hexdigest()
    except (OSError, ValueError, Image.DecompressionBombError):
        from dip.data.manifest import sha256sum

        return sha256sum(path)


def _inputs_changed(record: Mapping, files: Mapping[str, str], exists) -> bool:
    """Whether an input the record has a digest of is there with other content (a missing one says nothing)."""
    for role, digest in (record.get("inputs") or {}).items():
        path = files.get(role)
        if isinstance(path, str) and exists(path) and content_digest(path) != digest:
            return True
    return False


def _records(job: Job) -> list[tuple[str, dict, dict, Any]]:
    """(record path, the spec it should hold, the inputs it read by role, the degradation they are made by) of each
    fit a job makes."""
    spec = job.params.get("spec") or {}
    if job.rule == "fit_dip_pack":  # each member is recorded like a lone fit, by unpack_fit
        base = {k: v for k, v in spec.items() if k != "members"}
        return [
            (Layout.unpacked_record(job.outputs[0], m["image"], m["seed"]), base | {"seed": m["seed"]},
             {role: paths[i] for role, paths in job.input.items()}, job.made_from.get(m["image"]))
            for i, m in enumerate(spec["members"])
        ]  # fmt: skip
    record = next((p for p in job.outputs if p.endswith(".json")), None)
    return [(record, spec, dict(job.input), job.made_from.get(job.wildcards.get("image")))] if record else []


def _degradation_changed(record: Mapping, planned: Any) -> bool:
    """Whether the record says its inputs were made by another degradation than the plan's (a dataset's size, the
    degrade_seed, the ground truth's sha256). A record without one (made before fits recorded it) says nothing."""
    made = record.get("degradation")
    return made is not None and planned is not None and _normal(made) != _normal(planned)


def state(job: Job, exists: Callable[[str], bool] = os.path.exists, made: tuple[str, ...] = ()) -> str:
    """``"new"`` (some output is missing), ``"finished"`` or ``"stale"``.

    A fit, pack or baseline (:data:`PINNED_RULES`) is stale when its record holds another spec or other inputs; any
    other job (a score, a table, a figure) when one of its inputs that is not ``made`` deterministically (paths under
    the prefixes ``made``: downloads, degraded inputs) is missing -- a fit added to the config, say -- which Snakemake
    alone would not re-run it for (a missing input it can make is no reason to re-run a job whose outputs exist).
    """
    if not job.outputs or not all(exists(p) for p in job.outputs if job.rule != "fit_dip_pack"):
        return "new"
    if job.rule not in PINNED_RULES:
        missing = [p for p in job.inputs if not p.startswith(made) and not exists(p)]
        return "stale" if missing else "finished"
    records = _records(job)
    outputs = [r[0] for r in records] + [r[0].removesuffix(".json") + ".png" for r in records]
    if not records or not all(exists(p) for p in outputs):
        return "new"
    for path, spec, files, made_from in records:
        record = _read_record(path)
        if defining(record.get("spec")) != defining(spec) or _inputs_changed(record, files, exists):
            return "stale"
        if _degradation_changed(record, made_from):
            return "stale"
    return "finished"


def spec_marker(job: Job, results_dir: str) -> str:
    """The file a stale job reads so that it runs again: ``<results_dir>/changed_specs/<rule>/<job>.<hash>.json``."""
    name = "_".join(f"{k}={v}" for k, v in sorted(job.wildcards.items())) or job.rule
    return Layout(results_dir).spec_marker(job.rule, name, spec_hash(job.params.get("spec") or {}))


def declared_inputs(job: Job, results_dir: str, made: tuple[str, ...] = (), forced: bool = False,
                    exists=os.path.exists) -> dict | list:  # fmt: skip
    """The inputs to declare to Snakemake for ``job``: all of them; for a finished fit, pack or baseline (not forced
    to run) without the missing ones; for a stale job with :func:`spec_marker`, written now."""
    status = "new" if forced else state(job, exists, made)
    if status == "stale":
        marker = spec_marker(job, results_dir)
        write_marker(marker, "the spec or the inputs of this finished job changed: it runs again")
        return _with(job.input, {"changed_spec": marker})
    if status == "finished" and job.rule in PINNED_RULES:
        return _keep(job.input, exists)
    return job.input


def _keep(files, exists):
    if isinstance(files, Mapping):
        out = {}
        for role, value in files.items():
            kept = _keep([value] if isinstance(value, str) else value, exists)
            if kept:
                out[role] = kept[0] if isinstance(value, str) else kept
        return out
    return [p for p in files if exists(p)]


def _with(files, extra: Mapping[str, str]):
    return {**files, **extra} if isinstance(files, Mapping) else [*files, *extra.values()]


def write_marker(path: str, note: str = "") -> None:
    """A stale job's marker, written now (so it is newer than the job's outputs)."""
    from dip.files import write_json

    write_json(path, {"changed_spec": os.path.basename(path), "note": note})
