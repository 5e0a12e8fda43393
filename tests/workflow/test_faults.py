"""Faults around a run, through the real workflow (slow): a checkpoint is set aside (kept, as <ckpt>.bad) only for
its own error and the fit then starts afresh, saying so; a restored image damaged after its fit fails the next job
with one line that names it and the fix, and deleting it repairs it; a planted pickle in a checkpoint's place is
refused without running; a Snakemake killed with SIGKILL leaves no fit running, and the same command resumes it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import TEST_CONFIG, scratch, snakemake, start_snakemake

pytestmark = pytest.mark.slow

DIP = "results/restored/photos/denoise/sigma25/dip"
FIT = f"{DIP}/astronaut_seed0"
FIT_LOG = "results/logs/fit/photos/denoise/sigma25/dip/astronaut_seed0.log"
SCORES = "results/scores/ours/photos/denoise_sigma25.csv"
SCORE_LOG = "results/logs/score/photos/denoise_sigma25.log"
REMEDY = "delete it and re-run: the workflow rebuilds it"


def _config(iterations=20, **settings):
    return {
        "experiments": [{"dataset": "photos", "task": "denoise", "levels": [25], "seeds": [0], "baselines": [],
                         "dip": {"preset": "denoise", "width": 8,
                                 "settings": {"iterations": iterations, "log_every": 5, "device": "cpu",
                                              **settings}}}],
        "learning_curves": None,
        "checkpoint_minutes": 0.005,
        "progress": {"every_steps": 50, "every_seconds": 2},
    }  # fmt: skip


def _work(tmp_path, name="work", **config):
    (tmp_path / name).mkdir()
    work = scratch(tmp_path / name)
    (work / "faults.yaml").write_text(yaml.safe_dump(_config(**config)))
    return work


def _run(work, *targets, check=True, config="faults.yaml", timeout=600):
    return snakemake(work, *targets, "--cores", "1", "--configfile", str(TEST_CONFIG), config, check=check,
                     timeout=timeout)  # fmt: skip


def _failure_lines(proc, text):
    """The lines of Snakemake's output that carry ``text`` (the job's one line)."""
    return [line for line in (proc.stdout + proc.stderr).splitlines() if text in line]


@pytest.mark.slow(seconds=10)
def test_a_checkpoint_is_set_aside_only_for_its_own_error(tmp_path):
    work = _work(tmp_path)
    ckpt = work / f"{FIT}.ckpt"
    ckpt.parent.mkdir(parents=True)
    planted = b"not a checkpoint, e.g. a copy cut short"
    ckpt.write_bytes(planted)
    # An input error during the fit (no memory budget fits it) is not the checkpoint's: the checkpoint stays.
    (work / "no_memory.yaml").write_text(yaml.safe_dump(_config(memory_saving="on", memory_budget_mb=1)))
    proc = _run(work, f"{FIT}.json", check=False, config="no_memory.yaml")
    assert proc.returncode != 0
    assert ckpt.read_bytes() == planted and not (work / f"{FIT}.ckpt.bad").exists(), proc.stderr[-3000:]
    (line,) = _failure_lines(proc, "DipInputError: ")
    assert "memory" in line and "Traceback" not in (work / FIT_LOG).read_text()
    # The checkpoint's own error: set aside, the fit starts afresh; its log and its record say so.
    _run(work, f"{FIT}.json")
    assert (work / f"{FIT}.ckpt.bad").read_bytes() == planted and not ckpt.exists()
    record = json.loads((work / f"{FIT}.json").read_text())
    assert record["summary"]["resumed_from"] == 0 and record["summary"]["iterations_done"] == 20
    (note,) = [n for n in record["notes"] if "set aside" in n]
    assert f"{FIT}.ckpt cannot be read" in note and f"set aside as {FIT}.ckpt.bad" in note and "afresh" in note
    assert note in (work / FIT_LOG).read_text()


@pytest.mark.slow(seconds=30)
def test_a_truncated_restored_image_fails_the_next_job_in_one_line_and_deleting_it_repairs_it(tmp_path):
    work = _work(tmp_path)
    _run(work, SCORES)
    png = work / f"{FIT}.png"
    data = png.read_bytes()
    png.write_bytes(data[: len(data) // 2])  # as a full disk or an interrupted copy leaves it
    proc = _run(work, SCORES, check=False)
    assert proc.returncode != 0
    log = (work / SCORE_LOG).read_text()
    assert "Traceback" not in proc.stdout + proc.stderr and "Traceback" not in log, log
    (line,) = _failure_lines(proc, "damaged or truncated")
    print(line)
    assert f"cannot read image {FIT}.png: the file is damaged or truncated (" in line and line.endswith(REMEDY)
    assert log.strip().splitlines()[-1] == line.strip()
    # What the line says to do.
    png.unlink()
    proc = _run(work, SCORES)
    assert "fit_dip" in proc.stdout + proc.stderr and len(png.read_bytes()) > len(data) // 2
    assert (work / SCORES).is_file()


class _Planted:
    """A pickle whose unpickling creates ``marker`` (any code could run instead)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.slow(seconds=15)
def test_a_planted_pickle_in_a_checkpoints_place_is_refused_without_running(tmp_path):
    work = _work(tmp_path)
    marker, ckpt = work / "ran", work / f"{FIT}.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"format": 2, "config": {}, "step": 5, "payload": _Planted(marker)}, ckpt)
    proc = _run(work, f"{FIT}.json")
    assert not marker.exists(), "the planted checkpoint was unpickled"
    log = (work / FIT_LOG).read_text()
    assert "holds more than tensors and plain data" in log and "refused unread" in log, proc.stderr[-2000:]
    assert (work / f"{FIT}.ckpt.bad").is_file() and not ckpt.exists()
    assert json.loads((work / f"{FIT}.json").read_text())["summary"]["resumed_from"] == 0


def _session_pids(sid: int) -> dict[int, str]:
    """The processes of session ``sid`` still running (not zombies): pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


@pytest.mark.slow(seconds=30)
def test_a_snakemake_killed_with_sigkill_leaves_no_fit_running_and_the_rerun_resumes(tmp_path):
    work = _work(tmp_path, iterations=600)
    command = (f"{FIT}.json", "--cores", "1", "--configfile", str(TEST_CONFIG), "faults.yaml")
    proc = start_snakemake(work, *command, log=work / "run.log")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            log = work / FIT_LOG
            if (work / f"{FIT}.ckpt").exists() and log.exists() and "checkpoint after step" in log.read_text():
                break
            assert proc.poll() is None, (work / "run.log").read_text()[-3000:]
            time.sleep(0.05)
        fits = [pid for pid, cmd in _session_pids(proc.pid).items()
                if "-m dip.pipeline.jobs" in cmd and '"rule": "fit_dip"' in cmd and "bash" not in cmd.split()[0]]
        assert len(fits) == 1, _session_pids(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # Snakemake alone (the out-of-memory killer, kill -9): its job lives on
        proc.wait(timeout=30)
        killed = time.monotonic()
        while fits[0] in _session_pids(proc.pid) and time.monotonic() - killed < 30:
            time.sleep(0.1)
        stopped_after = time.monotonic() - killed
        left = _session_pids(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    print(f"the fit stopped {stopped_after:.1f} s after Snakemake was killed")
    assert not left, f"still running after Snakemake was killed: {left}"
    log = (work / FIT_LOG).read_text()
    assert "is gone: stopping" in log and "FitInterrupted: fit interrupted by SIGTERM" in log, log[-3000:]
    assert (work / f"{FIT}.ckpt").is_file() and not (work / f"{FIT}.json").exists()
    stopped_at = int(log.split("FitInterrupted: fit interrupted by SIGTERM after step ")[1].split(";")[0])
    # The documented recovery: one process fits, from the checkpoint the stopped one wrote last.
    snakemake(work, "--unlock", *command[3:])
    snakemake(work, *command, "--rerun-incomplete", timeout=900)
    record = json.loads((work / f"{FIT}.json").read_text())
    assert record["summary"]["resumed_from"] == stopped_at + 1 and record["summary"]["iterations_done"] == 600
    assert not (work / f"{FIT}.ckpt").exists() and not (work / f"{FIT}.ckpt.lock").exists()


@pytest.mark.slow(seconds=120)
def test_a_full_disk_when_planning_is_one_line_not_nothing_to_be_done(tmp_path):
    # issue #28 item 2: a changed setting makes the finished fit stale; its marker cannot be written on the full disk
    # (inside Snakemake's input function), which used to drop the job: "Nothing to be done", rc 0
    from tests.helpers import fill_disk, tmpfs

    work = _work(tmp_path)
    with tmpfs(work / "results", "64m"):
        _run(work)
        (work / "faults.yaml").write_text(yaml.safe_dump(_config(iterations=21)))
        fill_disk(work / "results")
        proc = _run(work, check=False)
    lines = _failure_lines(proc, "No space left on device")
    assert proc.returncode != 0 and "Nothing to be done" not in proc.stdout + proc.stderr
    assert len(lines) == 1 and "results/changed_specs/fit_dip/" in lines[0] and "free space" in lines[0], lines
