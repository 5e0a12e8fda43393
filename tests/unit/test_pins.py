"""What re-runs a finished job (dip.pipeline.pins): its spec and the inputs it read, not file dates."""

from __future__ import annotations

import json
from pathlib import Path

from dip.pipeline import pins
from dip.pipeline.plan import Job

SPEC = {"task": "denoise", "level": 25, "seed": 0, "settings": {"iterations": 5, "checkpoint_every": 10}}


def _fit(tmp_path: Path, spec=SPEC) -> Job:
    stem = tmp_path / "results/restored/photos/denoise/sigma25/dip/coffee_seed0"
    output = {"png": f"{stem}.png", "raw": f"{stem}_raw.png", "json": f"{stem}.json"}
    inputs = {"observation": str(tmp_path / "results/inputs/observation.png")}
    wildcards = {"dataset": "photos", "task": "denoise", "level": "sigma25", "image": "coffee", "seed": "0"}
    return Job("fit_dip", output, inputs, {"spec": spec}, wildcards)


def _finish(job: Job, recorded_spec) -> None:
    for path in job.outputs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"spec": recorded_spec}) if path.endswith(".json") else "png")


def test_a_fit_is_new_finished_or_stale_by_the_spec_its_record_holds(tmp_path):
    job = _fit(tmp_path)
    assert pins.state(job) == "new"
    # a setting that says when checkpoints are written does not define the result
    _finish(job, {**SPEC, "settings": {"iterations": 5, "checkpoint_every": 50}})
    assert pins.state(job) == "finished"
    _finish(job, {**SPEC, "settings": {"iterations": 6}})
    assert pins.state(job) == "stale"


def test_a_finished_fit_declares_only_the_inputs_there_and_a_stale_one_its_marker(tmp_path):
    job, results = _fit(tmp_path), str(tmp_path / "results")
    _finish(job, SPEC)
    assert pins.declared_inputs(job, results) == {}  # its input is gone (a fresh clone): nothing to re-make
    assert pins.declared_inputs(job, results, forced=True) == job.input
    _finish(job, {**SPEC, "seed": 1})
    declared = pins.declared_inputs(job, results)
    marker = pins.spec_marker(job, results)
    assert declared == {**job.input, "changed_spec": marker} and Path(marker).is_file()
    assert marker.startswith(f"{results}/changed_specs/fit_dip/") and marker.endswith(f".{pins.spec_hash(SPEC)}.json")
