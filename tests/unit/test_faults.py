"""dip.pipeline.faults: a damaged workflow output (image, record, score file) is named with the fix for a workflow
output; errors the user acts on are one line with an exit code, bugs are not; a job whose parent (Snakemake) dies
gets SIGTERM, also with a shell between the two."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from dip.data.imageio import read_image, write_image
from dip.errors import USER_FILE_REMEDY, DamagedFile, DipInputError
from dip.fit.checkpoint import CheckpointError
from dip.fit.config import FitInterrupted
from dip.pipeline import faults
from tests.helpers import REPO, running, wait_for


@pytest.fixture
def outputs(tmp_path, photo64):
    """A restored image, a fit record and a score file as the workflow writes them, under results/."""
    results = tmp_path / "results"
    png = write_image(results / "restored/x.png", photo64)
    record = results / "restored/x.json"
    record.write_text(json.dumps({"summary": {"final": {"psnr_gt": 20.5}}, "history": [{"loss": float("nan")}]},
                                 indent=1))  # fmt: skip
    scores = results / "scores/s.csv"
    scores.parent.mkdir(parents=True)
    pd.DataFrame({"image": ["a", "b"], "psnr": [20.1, 21.2]}).to_csv(scores, index=False)
    return results, png, record, scores


def _cut(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])


def test_intact_outputs_pass(outputs):
    results, png, record, scores = outputs
    assert faults.check_workflow_files([png, record, scores], results) == [png, record, scores]


@pytest.mark.parametrize("kind, cut", [("png", 0.5), ("png", -12), ("png", 0), ("json", -3), ("csv", -3)])
def test_a_damaged_output_is_named_with_the_workflow_fix(outputs, kind, cut):
    results, png, record, scores = outputs
    path = {"png": png, "json": record, "csv": scores}[kind]
    size = path.stat().st_size
    _cut(path, int(size * cut) if isinstance(cut, float) else cut)  # half; the end chunk / last bytes; all
    with pytest.raises(DamagedFile) as err:
        faults.check_workflow_files([png, record, scores], results)
    message = str(err.value)
    assert message.startswith(f"cannot read {faults.KINDS['.' + kind]} {path}: the file is damaged or truncated (")
    assert message.endswith("; delete it and re-run: the workflow rebuilds it") and "\n" not in message


def test_only_files_the_workflow_made_are_checked(outputs, tmp_path):
    results, png, record, scores = outputs
    user = tmp_path / "mine.png"
    user.write_bytes(png.read_bytes()[:100])  # a user's file: left to its reader, whose message fits user files
    assert faults.check_workflow_files([user], results) == []
    with pytest.raises(DamagedFile, match=USER_FILE_REMEDY):
        read_image(user)


def test_a_damaged_file_in_an_output_folder_names_the_folder(outputs):
    results, png, record, scores = outputs
    _cut(record, -3)
    with pytest.raises(DamagedFile, match=f"it is part of {record.parent}: delete that folder and re-run"):
        faults.check_workflow_files([record.parent], results)


def test_what_the_user_acts_on_is_one_line_and_bugs_are_not(outputs):
    results, png, record, scores = outputs
    _cut(png, 200)
    with pytest.raises(DamagedFile) as err:
        read_image(png)  # read by a job's body: the reader does not know it is a workflow output
    line, code = faults.failure_line(err.value, results)
    assert code == 2 and line.startswith(f"DamagedFile: cannot read image {png}")
    assert line.endswith(faults.WORKFLOW_REMEDY) and USER_FILE_REMEDY not in line
    line, _ = faults.failure_line(err.value, results / "elsewhere")
    assert line.endswith(USER_FILE_REMEDY)
    assert faults.failure_line(DipInputError("a bad\nmask"), results) == ("DipInputError: a bad mask", 2)
    line, code = faults.failure_line(FitInterrupted(12, png.with_suffix(".ckpt")), results)
    assert code == 143 and "after step 12" in line and "run the same command again to resume" in line
    assert faults.failure_line(ZeroDivisionError("bug"), results) is None
    assert faults.failure_line(KeyboardInterrupt(), results) is None


@pytest.mark.parametrize("error", [
    FitInterrupted(12, Path("x.ckpt")), CheckpointError("x.ckpt", "was written by a fit with other settings"),
    DamagedFile("x.png", "image", "truncated", "make it again"), DipInputError("a bad mask"),
])  # fmt: skip
def test_an_error_crosses_a_process_boundary_whole(error):
    """A worker process's error reaches its parent pickled: it must come back as itself, not as a TypeError that
    breaks the whole pool (a fit stopped on SIGTERM in a benchmark's worker did)."""
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)
    assert getattr(back, "__dict__", {}) == getattr(error, "__dict__", {})


# --- a job whose Snakemake is gone ---------------------------------------------------------------------------------

_JOB = textwrap.dedent("""
    import os, signal, sys, time
    sys.stdout = sys.stderr = open(sys.argv[1], "a", buffering=1)
    from dip.pipeline import faults
    def stop(signum, frame):
        print("job: SIGTERM", flush=True)
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop)
    watch = faults.watch_parent(interval=0.05)
    print("job: watching", watch.watched, "pid", os.getpid(), flush=True)
    time.sleep(60)
    print("job: never stopped", flush=True)
""")
_PARENT = "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(60)"


@pytest.mark.parametrize("shell", [False, True])
def test_a_job_whose_parent_is_killed_gets_sigterm(tmp_path, shell):
    job_py, log = tmp_path / "job.py", tmp_path / "job.log"
    job_py.write_text(_JOB)
    log.touch()
    job = [sys.executable, str(job_py), str(log)]
    if shell:  # a shell that does not exec the job (another command follows): it outlives the parent
        job = ["/bin/sh", "-c", f"{sys.executable} {job_py} {log}; true"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, *job], env=env, start_new_session=True)
    try:
        assert wait_for(lambda: "job: watching" in log.read_text()), log.read_text()
        watched, _, pid = log.read_text().split("job: watching")[1].split()[:3]
        assert int(watched) == parent.pid  # past the shell, if any
        os.kill(parent.pid, signal.SIGKILL)  # as the out-of-memory killer does: nothing of it runs any more
        parent.wait(timeout=10)
        assert wait_for(lambda: not running(int(pid)), limit=30), log.read_text()
        text = log.read_text()
        assert "job: SIGTERM" in text and "is gone: stopping" in text and "never stopped" not in text
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)


# --- a job that cannot write (issue #28 item 2) ---------------------------------------------------------------------


def _job_json(tmp_path) -> str:
    """A metrics job (torch-free, quick) that reads one score file and writes the metrics table."""
    scores = tmp_path / "results/scores/s.csv"
    scores.parent.mkdir(parents=True, exist_ok=True)
    scores.write_text("dataset,task,level,image,method,seed,psnr\n")
    return json.dumps({"rule": "metrics", "input": {"scores": [str(scores)]},
                       "output": [str(tmp_path / "results/metrics.csv")], "params": {}, "wildcards": {}})  # fmt: skip


def test_a_job_whose_log_cannot_be_written_says_so_in_one_line(tmp_path, full_disk):
    log = full_disk / "logs" / "metrics.log"
    proc = subprocess.run([sys.executable, "-m", "dip.pipeline.jobs", "--job", _job_json(tmp_path), "--log", str(log)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"cannot write {log}: No space left on device" in lines[0] and "free space" in lines[0]


def test_a_job_whose_log_folder_is_not_writable_says_so_in_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    log = folder / "logs" / "metrics.log"
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root writes anywhere: the stand-in is the test of the full disk
        folder.chmod(0o700)
        pytest.skip("running as root: a read-only folder is still writable")
    try:
        proc = subprocess.run([sys.executable, "-m", "dip.pipeline.jobs", "--job", _job_json(tmp_path), "--log",
                               str(log)], cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        folder.chmod(0o700)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Permission denied" in proc.stderr and str(folder / "logs") in proc.stderr


def test_a_failed_write_of_an_output_is_one_line(tmp_path, full_disk):
    job = json.loads(_job_json(tmp_path))
    job["output"] = [str(full_disk / "metrics.csv")]
    log = tmp_path / "metrics.log"
    proc = subprocess.run([sys.executable, "-m", "dip.pipeline.jobs", "--job", json.dumps(job), "--log", str(log)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"cannot write {full_disk / 'metrics.csv'}: No space left on device" in proc.stderr
    assert "Traceback" not in log.read_text()
