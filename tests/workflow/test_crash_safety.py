"""Long runs a person can watch and trust, through the real workflow (slow): a fit job killed without warning
(SIGKILL to it and to Snakemake, as on a node failure) resumes from its wall-time checkpoint when the same command
is run again and ends exactly where an uninterrupted run ends, its log showing progress lines all along; a
downloaded file corrupted after the download fails the job that reads it, by name, and deleting it repairs it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import pytest
import yaml

from tests.helpers import TEST_CONFIG, scratch, snakemake, start_snakemake

pytestmark = pytest.mark.slow

FIT = "results/restored/photos/denoise/sigma25/dip/astronaut_seed0"
FIT_LOG = "results/logs/fit/photos/denoise/sigma25/dip/astronaut_seed0.log"
# One fit, long enough to be killed in the middle (10-20 s on one slow core, 2-3 s on a fast one), checkpointing every
# 0.3 s of fitting: the first checkpoint lands early and stays until the outputs are written, whatever the speed.
ONE_FIT = {
    "experiments": [{"dataset": "photos", "task": "denoise", "levels": [25], "seeds": [0], "baselines": [],
                     "dip": {"preset": "denoise", "width": 8,
                             "settings": {"iterations": 200, "log_every": 5, "device": "cpu"}}}],
    "learning_curves": None,
    "checkpoint_minutes": 0.005,
    "progress": {"every_steps": 50, "every_seconds": 2},
}  # fmt: skip


def _one_fit(tmp_path, name):
    (tmp_path / name).mkdir()
    work = scratch(tmp_path / name)
    (work / "one_fit.yaml").write_text(yaml.safe_dump(ONE_FIT))
    return work, (f"{FIT}.json", "--cores", "1", "--configfile", str(TEST_CONFIG), "one_fit.yaml")


def _wait_for_checkpoint(work, proc, limit_s=240.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        log = work / FIT_LOG
        if (work / f"{FIT}.ckpt").exists() and log.exists() and "checkpoint after step" in log.read_text():
            return
        assert proc.poll() is None, (work / "run.log").read_text()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint within {limit_s} s:\n{(work / 'run.log').read_text()[-3000:]}")


@pytest.mark.slow(seconds=35)
def test_fit_killed_without_warning_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    ref, command = _one_fit(tmp_path, "uninterrupted")
    snakemake(ref, *command, timeout=600)
    reference = json.loads((ref / f"{FIT}.json").read_text())
    assert reference["summary"]["resumed_from"] == 0

    work, command = _one_fit(tmp_path, "killed")
    proc = start_snakemake(work, *command, log=work / "run.log")
    try:
        _wait_for_checkpoint(work, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):  # already ended: the wait above says why
            os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its fit job, at once: nothing can be saved
        proc.wait(timeout=30)
    assert not (work / f"{FIT}.json").exists()
    killed_log = (work / FIT_LOG).read_text()
    # The same command again (the lock of the killed run first; --rerun-incomplete for its half-made outputs).
    snakemake(work, "--unlock", *command[3:])
    snakemake(work, *command, "--rerun-incomplete", timeout=600)

    record = json.loads((work / f"{FIT}.json").read_text())
    resumed_from = record["summary"]["resumed_from"]
    final, ref_final = record["summary"]["final"], reference["summary"]["final"]
    print(f"resumed_from={resumed_from} psnr_gt_avg: resumed {final['psnr_gt_avg']!r} "
          f"uninterrupted {ref_final['psnr_gt_avg']!r}")  # fmt: skip
    assert 0 < resumed_from < 200 and record["summary"]["iterations_done"] == 200
    assert final["psnr_gt_avg"] == ref_final["psnr_gt_avg"] and final["loss"] == ref_final["loss"]
    assert [r["loss"] for r in record["history"]] == [r["loss"] for r in reference["history"]]
    assert not (work / f"{FIT}.ckpt").exists()  # removed once the outputs were written
    # What `tail -f` on the fit's log showed: progress lines before the kill, the resume, the end.
    log = (work / FIT_LOG).read_text()
    print("--- killed run's log ---\n" + killed_log + "--- resumed run's log ---\n" + log)
    assert "fit: step 1/200 (0%), loss " in killed_log and "ETA" in killed_log
    assert f"fit: resumed from its checkpoint at step {resumed_from}/200" in log
    assert "fit: step 200/200 (100%)" in log and "psnr_gt_avg" in log
    assert f"resumed from the checkpoint at step {resumed_from}" in log


BENCH = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior/SR/Set5/x4"
SET5 = {
    "datasets": {"set5": {"source": "benchmark", "images": ["bird", "butterfly"]}},
    "experiments": [{"dataset": "set5", "task": "sr", "levels": [4], "seeds": [0], "run_dip": False}],
    "learning_curves": None,
}


@pytest.mark.slow(seconds=10)
def test_corrupted_download_fails_by_name_and_deleting_it_repairs_it(tmp_path, mirror_url):
    work = scratch(tmp_path)
    (work / "set5.yaml").write_text(yaml.safe_dump({**SET5, "download_base_url": mirror_url}))
    targets = {image: f"results/inputs/set5/sr/x4/{image}/inputs.json" for image in ("bird", "butterfly")}
    inputs = {image: work / target for image, target in targets.items()}
    command = (*targets.values(), "--cores", "1", "--configfile", str(TEST_CONFIG), "set5.yaml")
    snakemake(work, *command, timeout=600)
    cached = work / "resources" / BENCH / "bird_GT.png"
    good = cached.read_bytes()
    untouched = inputs["butterfly"].stat().st_mtime_ns

    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF  # one byte flipped, the size unchanged
    cached.write_bytes(bytes(data))
    inputs["bird"].unlink()  # make the job that reads it run again
    proc = snakemake(work, *command, check=False, timeout=600)
    assert proc.returncode != 0
    log = (work / "results/logs/degrade/set5/sr/x4/bird.log").read_text()
    for text in (proc.stderr, log):
        assert f"resources/{BENCH}/bird_GT.png" in text and "does not match the manifest" in text, text[-2000:]
        assert "delete it and re-run the same snakemake command" in text
    print(next(line for line in proc.stderr.splitlines() if "does not match the manifest" in line))

    cached.unlink()
    proc = snakemake(work, *command, timeout=600)
    assert cached.read_bytes() == good  # downloaded again from the mirror
    assert inputs["bird"].is_file()
    # Only the job that reads the re-downloaded file ran again: downloads are pinned by checksum, not by date.
    assert inputs["butterfly"].stat().st_mtime_ns == untouched
    assert "degrade_sr" in proc.stdout + proc.stderr


@pytest.mark.slow(seconds=5)
def test_kept_downloads_older_than_the_workflow_re_download_nothing_and_the_target_is_built_in_one_run(
    tmp_path, mirror_url
):
    """Downloads kept from before a fresh clone or a `git pull` (files older than the workflow's code) are left as
    they are, and a target that reads them is made by the first run. Snakemake re-runs a `script:` job whose script
    is newer than its outputs; a download job re-run that way, with its outputs in place, left every job below it
    unscheduled (Snakemake 9 skips jobs whose only link to it is an ancient() input) and the run ended without the
    target."""
    work = scratch(tmp_path)
    (work / "set5.yaml").write_text(yaml.safe_dump({**SET5, "download_base_url": mirror_url}))
    target = "results/inputs/set5/sr/x4/bird/inputs.json"
    command = (target, "--cores", "1", "--configfile", str(TEST_CONFIG), "set5.yaml")
    snakemake(work, *command, timeout=600)
    downloads = [p for p in (work / "resources").rglob("*") if p.is_file()]
    week_ago = time.time() - 7 * 24 * 3600
    for path in downloads:
        os.utime(path, (week_ago, week_ago))
    for path in (work / target).parent.iterdir():
        path.unlink()

    proc = snakemake(work, *command, timeout=600)
    assert (work / target).is_file(), proc.stdout + proc.stderr
    assert "download_set5_x4" not in proc.stdout + proc.stderr  # nothing fetched again
    assert all(p.stat().st_mtime == week_ago for p in downloads)
