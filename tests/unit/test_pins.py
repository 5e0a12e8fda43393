"""What re-runs a finished job (dip.pipeline.pins): its spec and the inputs it read, not file dates."""

from __future__ import annotations

import json
from pathlib import Path

from dip.data.benchmarks import degradation
from dip.pipeline import pins
from dip.pipeline.dag import Job

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


# --- what defines a fit's inputs: the degradation (issue #28, item 1) -----------------------------------------------

DEGRADE = {"source": "embedded", "dataset": "photos", "benchmark": None, "image": "coffee", "size": 64,
           "task": "denoise", "level": 25, "seed": 0}  # fmt: skip


def _fit_made_from(tmp_path: Path, degrade=DEGRADE, gt_sha256=None) -> Job:
    job = _fit(tmp_path)
    return Job(job.rule, job.output, job.input, job.params, job.wildcards,
               made_from={"coffee": degradation(degrade, gt_sha256)})  # fmt: skip


def _finish_with(job: Job, degradation) -> None:
    _finish(job, SPEC)
    record = json.loads(Path(job.output["json"]).read_text())
    if degradation is not None:
        record["degradation"] = degradation
    Path(job.output["json"]).write_text(json.dumps(record))


def test_a_changed_degradation_makes_a_finished_fit_stale_even_without_its_inputs(tmp_path):
    made_at_64 = degradation(DEGRADE, None)
    job = _fit_made_from(tmp_path)
    _finish_with(job, made_at_64)
    assert pins.state(job) == "finished"  # no input is there (a fresh clone): the record alone says what it read
    for changed in ({"size": 96}, {"seed": 1}):
        assert pins.state(_fit_made_from(tmp_path, DEGRADE | changed)) == "stale", changed
    # a benchmark's ground truth is its download, pinned by the manifest's sha256: another one is another input
    bench = _fit_made_from(tmp_path, DEGRADE, "a" * 64)
    _finish_with(bench, degradation(DEGRADE, "a" * 64))
    assert pins.state(bench) == "finished"
    assert pins.state(_fit_made_from(tmp_path, DEGRADE, "b" * 64)) == "stale"


def test_a_record_made_before_degradations_were_recorded_is_trusted(tmp_path):
    # results/paper/restored/ holds such records: a fresh clone must not refit them
    job = _fit_made_from(tmp_path, DEGRADE | {"size": 96})
    _finish_with(job, None)
    assert pins.state(job) == "finished"
