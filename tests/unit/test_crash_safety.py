"""Crash safety and trusted inputs: wall-time checkpoints (a SIGKILL costs at most checkpoint_seconds of fitting), a
checkpoint resumes whatever the checkpoint cadence of the re-run, the workflow's fit job takes the interval from the
config (not its params) and cleans up after itself, and a downloaded file altered later is refused by name."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from dip import physics
from dip.data.manifest import CorruptedDownload, verify_downloads
from dip.errors import DipInputError
from dip.fit import fit
from dip.pipeline import steps
from tests.helpers import CrashAt, save_png, tiny_fit_config


def test_wall_time_checkpoints_resume_bit_identical(photo64, tmp_path):
    config = tiny_fit_config(iterations=20, exp_weight=0.9, checkpoint_seconds=1e-9)  # due after every step
    ckpt = tmp_path / "fit.ckpt"
    uninterrupted = fit(photo64, physics.Identity(), config)
    with pytest.raises(KeyboardInterrupt):  # killed without warning (no SIGTERM) in step 12
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt, hooks=[CrashAt(12)])
    assert ckpt.exists() and not list(tmp_path.glob(".*.tmp"))
    resumed = fit(photo64, physics.Identity(), config, checkpoint_path=ckpt)
    assert resumed.resumed_from == 12  # the checkpoint after step 11: one step lost
    np.testing.assert_array_equal(resumed.output, uninterrupted.output)
    np.testing.assert_array_equal(resumed.output_raw, uninterrupted.output_raw)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in uninterrupted.history]


def test_no_checkpoint_before_the_interval_is_up(photo64, tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(photo64, physics.Identity(), tiny_fit_config(iterations=20, checkpoint_seconds=3600), checkpoint_path=ckpt,
            hooks=[CrashAt(12)])  # fmt: skip
    assert not ckpt.exists()
    with pytest.raises(DipInputError, match="checkpoint_every and checkpoint_seconds"):
        tiny_fit_config(checkpoint_seconds=-1).validate()


def test_a_checkpoint_resumes_under_another_cadence(photo64, tmp_path):
    # What a workflow whose checkpoint_minutes changed between the crash and the re-run does.
    config = tiny_fit_config(iterations=20, checkpoint_every=5)
    ckpt = tmp_path / "fit.ckpt"
    uninterrupted = fit(photo64, physics.Identity(), config)
    with pytest.raises(KeyboardInterrupt):
        fit(photo64, physics.Identity(), config, checkpoint_path=ckpt, hooks=[CrashAt(12)])
    other = config.replace(checkpoint_every=0, checkpoint_seconds=600)
    resumed = fit(photo64, physics.Identity(), other, checkpoint_path=ckpt)
    assert resumed.resumed_from == 10
    np.testing.assert_array_equal(resumed.output, uninterrupted.output)


def test_an_unreadable_checkpoint_is_an_input_error(photo64, tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(DipInputError, match="cannot be read"):
        fit(photo64, physics.Identity(), tiny_fit_config(iterations=3), checkpoint_path=ckpt)


# --- the workflow's fit job ----------------------------------------------------------------------------------------


def _fit_job(tmp_path, photo64, settings=None):
    save_png(tmp_path / "obs.png", photo64)
    spec = {"task": "denoise", "level": 25, "preset": "denoise", "width": 8, "seed": 0,
            "settings": {"iterations": 4, "log_every": 2, "device": "cpu", **(settings or {})}}  # fmt: skip
    inputs = {"observation": str(tmp_path / "obs.png"), "target": str(tmp_path / "obs.png")}
    outputs = {k: str(tmp_path / f"out{suffix}") for k, suffix in (("png", ".png"), ("raw", "_raw.png"),
                                                                    ("json", ".json"))}  # fmt: skip
    return spec, inputs, outputs


def test_fit_job_takes_the_interval_from_the_config_and_cleans_up(photo64, tmp_path, capsys):
    spec, inputs, outputs = _fit_job(tmp_path, photo64)
    stale = tmp_path / ".out.ckpt.123.abcd1234.tmp"  # what a process killed while writing a checkpoint leaves
    stale.write_bytes(b"half")
    with steps.workflow_settings({"checkpoint_minutes": 0.5, "progress": {"every_steps": 2}}, fits=True):
        steps.fit(spec, inputs, outputs, threads=1)
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["config"]["checkpoint_seconds"] == 30.0 and record["summary"]["resumed_from"] == 0
    assert "checkpoint_minutes" not in json.dumps(record["spec"])  # not a param: changing it re-runs nothing
    assert not stale.exists() and not (tmp_path / "out.ckpt").exists()
    out = capsys.readouterr().out
    assert "fit: step 1/4" in out and "fit: step 4/4 (100%)" in out and "ETA 0s" in out
    # defaults: 10 minutes without a workflow config; a checkpoint_seconds in the spec's own settings wins
    spec, inputs, outputs = _fit_job(tmp_path, photo64)
    assert steps.fit(spec, inputs, outputs, threads=1).config.checkpoint_seconds == 600.0
    spec, inputs, outputs = _fit_job(tmp_path, photo64, {"checkpoint_seconds": 5})
    with steps.workflow_settings({"checkpoint_minutes": 0}, fits=False):
        assert steps.fit(spec, inputs, outputs, threads=1).config.checkpoint_seconds == 5


def test_fit_job_sets_aside_only_a_checkpoint_that_cannot_be_resumed(photo64, tmp_path, capsys):
    planted = b"PK not a checkpoint"
    # An input error during the fit (here: no memory budget fits it) is not the checkpoint's: it stays as it is.
    spec, inputs, outputs = _fit_job(tmp_path, photo64, {"memory_saving": "on", "memory_budget_mb": 1})
    ckpt = tmp_path / "out.ckpt"
    ckpt.write_bytes(planted)
    with pytest.raises(DipInputError, match="memory"):
        steps.fit(spec, inputs, outputs, threads=1)
    assert ckpt.read_bytes() == planted and not (tmp_path / "out.ckpt.bad").exists()
    # The checkpoint's own error: set aside (kept), the fit starts afresh, the log and the record say so.
    spec, inputs, outputs = _fit_job(tmp_path, photo64)
    result = steps.fit(spec, inputs, outputs, threads=1)
    assert result.resumed_from == 0 and (tmp_path / "out.ckpt.bad").read_bytes() == planted
    assert not ckpt.exists() and not (tmp_path / "out.ckpt.lock").exists()
    (note,) = [n for n in json.loads((tmp_path / "out.json").read_text())["notes"] if "set aside" in n]
    assert f"the checkpoint {ckpt} cannot be read" in note and "set aside as" in note and "started afresh" in note
    assert note in capsys.readouterr().out


# --- downloaded files ----------------------------------------------------------------------------------------------


def test_a_downloaded_file_altered_later_is_refused_by_name(tmp_path):
    resources = tmp_path / "resources"
    good, bad = resources / "bench/a_GT.png", resources / "bench/b_GT.png"
    good.parent.mkdir(parents=True)
    good.write_bytes(b"a" * 100)
    bad.write_bytes(b"b" * 100)
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("path\tsha256\n" + "".join(
        f"bench/{p.name}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in (good, bad)))  # fmt: skip
    made = tmp_path / "results/inputs/x.png"  # made by the workflow, not downloaded: not checked
    assert verify_downloads([str(good), str(bad), str(made)], resources_dir=resources, manifest=manifest) == [good, bad]
    bad.write_bytes(b"b" * 50)  # truncated after the download
    with pytest.raises(CorruptedDownload) as err:
        verify_downloads([str(good), str(bad)], resources_dir=resources, manifest=manifest)
    message = str(err.value)
    assert str(bad) in message and str(good) not in message
    assert "does not match the manifest" in message and "50 bytes" in message
    assert "delete it and re-run the same snakemake command" in message
    assert isinstance(err.value, DipInputError)
    # nothing downloaded among the inputs: the manifest is not even read
    assert verify_downloads([str(made)], resources_dir=resources, manifest=tmp_path / "missing.tsv") == []


def test_the_degrade_and_fit_jobs_record_what_defines_the_fits_inputs(photo64, tmp_path):
    # issue #28 item 1: the fit's record holds the degradation its inputs were made by, which dip.pipeline.pins
    # compares with the plan's, so that a changed dataset size or degrade_seed re-runs the fit in the same run
    from dip.data.benchmarks import degradation

    folder = tmp_path / "inputs"
    outputs = {k: str(folder / f"{k}.png") for k in ("gt", "observation")} | {"info": str(folder / "inputs.json")}
    folder.mkdir()
    spec = {"source": "embedded", "dataset": "photos", "benchmark": None, "image": "astronaut", "size": 64,
            "task": "denoise", "level": 25, "seed": 3}  # fmt: skip
    steps.degrade(spec, {}, outputs)
    assert json.loads((folder / "inputs.json").read_text())["degradation"] == degradation(spec, None)
    fit_spec, _, fit_out = _fit_job(tmp_path, photo64)
    inputs = {"observation": outputs["observation"], "target": outputs["gt"]}
    steps.fit(fit_spec, inputs, fit_out, threads=1)
    assert json.loads(open(fit_out["json"]).read())["degradation"] == degradation(spec, None)


def test_the_fit_job_sets_a_checkpoint_of_other_inputs_aside_and_starts_afresh(photo64, tmp_path):
    # issue #28 item 3, the workflow's side: as for a damaged checkpoint (kept as <ckpt>.bad, the record says so)
    from pathlib import Path

    from dip.presets import config_from_spec

    spec, inputs, outputs = _fit_job(tmp_path, photo64)
    ckpt = Path(outputs["png"]).with_suffix(".ckpt")
    config = config_from_spec(spec).replace(checkpoint_every=1)
    with pytest.raises(KeyboardInterrupt):  # a fit of another image crashed, leaving its checkpoint here
        fit(np.ascontiguousarray(photo64[::-1]), physics.Identity(), config, checkpoint_path=ckpt, hooks=[CrashAt(2)])
    result = steps.fit(spec, inputs, outputs, threads=1)
    assert result.resumed_from == 0 and ckpt.with_name(ckpt.name + ".bad").exists() and not ckpt.exists()
    assert "was made for other input images" in json.loads(open(outputs["json"]).read())["notes"][-1]
