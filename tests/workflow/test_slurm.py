"""The workflow on a real SLURM (issue #4): a controller and a node started by .ci/slurm/up.sh, not a mock of sbatch.

    sudo bash .ci/slurm/up.sh && python -m pytest -m slurm tests/test_slurm.py; sudo bash .ci/slurm/down.sh

Every test skips (with the reason) when no SLURM controller with accounting answers on this machine.

Why `sacct` is the record asserted on: up.sh runs slurmdbd + MariaDB, so every job has a durable row (State,
ExitCode, WorkDir, Comment, ReqTRES) that does not vanish after MinJobAge as squeue/scontrol's view does, and it is
also the executor plugin's default status path on real clusters. Jobs of one test are found by their WorkDir (a
fresh temporary folder per test).

What runs (measured on 2 shared cores: see docs/SLURM.md):
1. test_slurm_harness: a two-rule toy (a CPU job, then a gpu=1 job on the node's fake GPU) -- the wiring alone.
2. test_workflow_on_slurm_matches_local: the tiny test configuration's SR slice (.test/config, `only: [photos/sr]`)
   with --executor slurm and the project's SLURM profile (profiles/slurm, its two EDIT lines filled in), against a
   local run:
   every job COMPLETED in sacct, metrics.csv PSNR/SSIM columns equal.
3. test_fit_resumes_after_scancel: one fit, `scancel --signal=TERM` while it runs; the retry resumes from the
   checkpoint (its record says resumed_from > 0) and ends with the same PSNR as an uninterrupted local fit.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = REPO / "profiles" / "slurm" / "profile.yaml"
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"
# Wall-clock limits: the plugin's status loop can hang (e.g. sacct without accounting) and ignores SIGTERM, so every
# Snakemake run is wrapped in `timeout -k` (kill 30 s after the TERM).
RUN_LIMIT_S = int(os.environ.get("DIP_SLURM_RUN_LIMIT_S", "900"))
# CI overrides on top of the profile: poll status after 2 s instead of 40 s (~25 s saved per workflow level).
CI_FLAGS = ["--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5", "--jobs", "4"]


# ------------------------------------------------------------------------------------------------------- helpers
def _sh(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _controller_problem() -> str | None:
    """None when a controller answers and accounting works; else why the SLURM tests cannot run."""
    for tool in ("sinfo", "sbatch", "squeue", "scancel", "sacct", "sacctmgr"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found: no SLURM client here (start one with `sudo bash .ci/slurm/up.sh`)"
    try:
        ping = _sh("scontrol", "ping", timeout=15)
        if ping.returncode != 0 or "UP" not in ping.stdout:
            return f"no SLURM controller answers (`scontrol ping`: {(ping.stdout + ping.stderr).strip()[:200]})"
        nodes = _sh("sinfo", "-h", "-o", "%T", timeout=15).stdout.split()
        if not any(s.rstrip("*~#") in ("idle", "mixed", "allocated") for s in nodes):
            return f"no usable SLURM node (sinfo states: {nodes})"
        acct = _sh("sacct", "-n", "-X", "-S", "now", "-o", "JobID", timeout=15)
        if acct.returncode != 0:
            return f"SLURM accounting (sacct) does not answer: {(acct.stdout + acct.stderr).strip()[:200]}"
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"SLURM commands do not answer: {err}"
    return None


@pytest.fixture(scope="module")
def slurm() -> dict:
    problem = _controller_problem()
    if problem and os.environ.get("DIP_REQUIRE_SLURM") == "1":
        # .ci/run started SLURM: a controller that does not answer is then a failure, not a reason to skip.
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)
    parts = _sh("sinfo", "-h", "-o", "%P").stdout.split()
    partition = next((p.rstrip("*") for p in parts if p.endswith("*")), parts[0].rstrip("*"))
    user = os.environ.get("USER") or _sh("id", "-un").stdout.strip()
    accounts = _sh("sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account").stdout.split()
    return {
        "partition": os.environ.get("DIP_SLURM_PARTITION", partition),
        "account": os.environ.get("DIP_SLURM_ACCOUNT", accounts[0] if accounts else ""),
    }


def _env() -> dict:
    """The submitting environment (exported into the jobs): the project's interpreter and scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SLURM_CONF", None)  # the in-job step plugin drops it too: /etc/slurm/slurm.conf is what counts
    return env


def _snakemake(workdir: Path, *args: str, log_name: str, snakefile: Path | None = None) -> subprocess.Popen:
    cmd = ["timeout", "-k", "30", str(RUN_LIMIT_S), sys.executable, "-m", "snakemake"]
    if snakefile is not None:
        cmd += ["--snakefile", str(snakefile)]
    cmd += ["--directory", str(workdir), *args]
    log = open(workdir / log_name, "w")
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    return subprocess.Popen(cmd, cwd=workdir, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _finish(proc: subprocess.Popen, workdir: Path, log_name: str) -> None:
    rc = proc.wait()
    if rc != 0:
        text = (workdir / log_name).read_text(errors="replace")
        pytest.fail(f"snakemake exited with {rc} ({log_name}); last lines:\n{text[-6000:]}")


def _run(workdir: Path, *args: str, log_name: str, snakefile: Path | None = None) -> float:
    t0 = time.monotonic()
    _finish(_snakemake(workdir, *args, log_name=log_name, snakefile=snakefile), workdir, log_name)
    return time.monotonic() - t0


def _jobs_in(workdir: Path) -> list[dict]:
    """SLURM's own records (sacct, allocations only) of the jobs that ran in workdir, oldest first."""
    fields = ["JobID", "JobName", "State", "ExitCode", "WorkDir", "Comment", "ReqTRES", "Elapsed"]
    out = _sh("sacct", "-n", "-X", "-P", "-a", "-S", "now-1days", "-o", ",".join(fields) + "%300").stdout
    rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.count("|") == len(fields) - 1]
    rows = [r for r in rows if Path(r["WorkDir"]).resolve() == workdir.resolve()]
    return sorted(rows, key=lambda r: int(r["JobID"].split("_")[0]))


def _wait_for_records(workdir: Path, expected: int, seconds: float = 30) -> list[dict]:
    """slurmctld hands finished jobs to slurmdbd asynchronously: wait until sacct has them all, finished."""
    deadline = time.monotonic() + seconds
    while True:
        rows = _jobs_in(workdir)
        if (len(rows) >= expected and all(r["State"] not in ("PENDING", "RUNNING") for r in rows)) or (
            time.monotonic() > deadline
        ):
            return rows
        time.sleep(1)


def _submitted(workdir: Path, log_name: str) -> int:
    return (workdir / log_name).read_text(errors="replace").count("has been submitted with SLURM jobid")


@pytest.fixture
def cleanup_jobs():
    """Cancel whatever a failed test left queued or running in its working directories."""
    dirs: list[Path] = []
    yield dirs
    for d in dirs:
        out = _sh("squeue", "-h", "-o", "%i|%Z").stdout
        for line in out.splitlines():
            jobid, _, wd = line.partition("|")
            if wd and Path(wd).resolve() == d.resolve():
                _sh("scancel", jobid)


def _profile_for(slurm: dict, dest: Path) -> Path:
    """The project's SLURM profile with its two EDIT lines filled in -- all a user changes for their cluster."""
    text = PROFILE.read_text()
    filled = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# slurm_account:") and "EDIT" in line and slurm["account"]:
            line = f'  slurm_account: "{slurm["account"]}"'
        elif stripped.startswith("# slurm_partition:") and "EDIT" in line and line.startswith("  #"):
            line = f'  slurm_partition: "{slurm["partition"]}"'
        filled.append(line)
    assert any(line.startswith("  slurm_partition:") for line in filled), "profile lost its EDIT line for the partition"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "profile.yaml").write_text("\n".join(filled) + "\n")
    return dest


def _workflow_copy(dest: Path, config: dict | None = None) -> Path:
    """A working directory for the real workflow: the repo's config/ with the tiny test config as config.yaml."""
    if not TEST_CONFIG.is_file() or not (REPO / "Snakefile").is_file():
        pytest.skip(f"the workflow or its tiny test configuration ({TEST_CONFIG.relative_to(REPO)}) is missing")
    shutil.copytree(REPO / "config", dest / "config")
    for item in (REPO / ".test").iterdir():
        target = dest / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    if config is not None:
        (dest / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def _metrics(workdir: Path) -> list[dict]:
    found = sorted(p for p in workdir.rglob("metrics.csv") if ".snakemake" not in p.parts)
    assert found, f"no metrics.csv under {workdir}"
    with open(found[0], newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------------------- tests
TOY_SNAKEFILE = """
rule all:
    input: "gpu.txt"
    localrule: True

rule cpu_step:
    output: "cpu.txt"
    threads: 1
    resources: mem_mb=100, runtime=2
    shell: "echo cpu $SLURM_JOB_ID > {output}"

rule gpu_step:
    input: "cpu.txt"
    output: "gpu.txt"
    resources: gpu=1, mem_mb=100, runtime=2
    shell: "echo gpu $SLURM_JOB_ID cuda=${{CUDA_VISIBLE_DEVICES:-unset}} > {output}"
"""


@pytest.mark.slow(seconds=25)
def test_slurm_harness(slurm, tmp_path, cleanup_jobs):
    """The wiring alone, in ~20 s: a CPU job then a gpu=1 job, both COMPLETED in sacct, the GPU one with gres/gpu."""
    cleanup_jobs.append(tmp_path)
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    args = ["--executor", "slurm", "--workflow-profile", "none", *CI_FLAGS,
            "--default-resources", f"slurm_partition={slurm['partition']}"]
    if slurm["account"]:
        args += [f"slurm_account={slurm['account']}"]
    _run(tmp_path, *args, log_name="slurm.log", snakefile=tmp_path / "Snakefile")
    rows = _wait_for_records(tmp_path, 2)
    assert [r["State"] for r in rows] == ["COMPLETED", "COMPLETED"], rows
    assert "gres/gpu=1" in rows[1]["ReqTRES"] or "gpu" in rows[1]["ReqTRES"], rows[1]
    assert (tmp_path / "gpu.txt").read_text().split()[2] == "cuda=0"  # SLURM bound the (fake) GPU to the job


def _sr_slice_config() -> dict:
    """The tiny test configuration's SR slice (`only: [photos/sr]`, 14 of its 42 jobs): degrading, two fits on the
    GPU, baselines, scores, a table and figures -- every kind of job SLURM runs, in a third of the queue waits."""
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["only"] = ["photos/sr"]
    return cfg


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """The SR slice of the tiny test configuration run locally (the reference the SLURM run must equal)."""
    wd = _workflow_copy(tmp_path_factory.mktemp("local"), _sr_slice_config())
    seconds = _run(wd, "--cores", "2", "--workflow-profile", "none", log_name="local.log", snakefile=REPO / "Snakefile")
    print(f"local run of .test (SR slice): {seconds:.0f} s")
    return wd


@pytest.mark.slow(seconds=120)
def test_workflow_on_slurm_matches_local(slurm, local_run, tmp_path, cleanup_jobs):
    wd = _workflow_copy(tmp_path / "run", _sr_slice_config())
    cleanup_jobs.append(wd)
    profile = _profile_for(slurm, tmp_path / "profile")
    t0 = time.monotonic()
    _run(wd, "--workflow-profile", str(profile), *CI_FLAGS, log_name="slurm.log", snakefile=REPO / "Snakefile")
    print(f"SLURM run of .test (SR slice): {time.monotonic() - t0:.0f} s")

    submitted = _submitted(wd, "slurm.log")
    rows = _wait_for_records(wd, submitted)
    assert submitted > 0 and len(rows) == submitted, f"{submitted} submitted, sacct knows {len(rows)}: {rows}"
    bad = [r for r in rows if r["State"] != "COMPLETED" or r["ExitCode"] != "0:0"]
    assert not bad, f"jobs that did not end COMPLETED 0:0 in sacct: {bad}"
    fit_jobs = [r for r in rows if "fit" in r["Comment"]]
    assert fit_jobs and all("gres/gpu=1" in r["ReqTRES"] for r in fit_jobs), rows

    ours, ref = _metrics(wd), _metrics(local_run)
    assert len(ours) == len(ref) > 0
    scored = [c for c in ref[0] if any(k in c.lower() for k in ("psnr", "ssim"))]
    assert scored, f"metrics.csv has no PSNR/SSIM column: {list(ref[0])}"
    key = [c for c in ref[0] if c not in scored and "time" not in c.lower() and "second" not in c.lower()]
    by_key = lambda rows_: {tuple(r[c] for c in key): {c: r[c] for c in scored} for r in rows_}  # noqa: E731
    assert by_key(ours) == by_key(ref), "the SLURM run's metrics differ from the local run's"


# --- preemption ---------------------------------------------------------------------------------------------------
KILL_ITERATIONS = int(os.environ.get("DIP_SLURM_KILL_ITERATIONS", "300"))
KILL_CHECKPOINT_EVERY = 10


def _one_fit_config() -> tuple[dict, dict]:
    """The test config reduced to its first experiment, long enough to be killed mid-fit; and that experiment."""
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    exp = dict(cfg["experiments"][0])
    exp["seeds"] = list(exp.get("seeds") or [0])[:1]
    exp["levels"] = list(exp["levels"])[:1]
    exp["baselines"] = []
    dip_cfg = dict(exp.get("dip") or {})
    settings = dict(dip_cfg.get("settings") or {})
    settings.update(iterations=KILL_ITERATIONS, checkpoint_every=KILL_CHECKPOINT_EVERY, device="cpu")
    dip_cfg["settings"] = settings
    exp["dip"] = dip_cfg
    cfg["experiments"] = [exp]
    cfg.pop("learning_curves", None)
    cfg["released"] = {}
    return cfg, exp


def _fit_target(workdir: Path) -> str:
    """The record (JSON) of the first DIP fit the workflow plans, from Snakemake's own detailed summary."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--workflow-profile", "none", "--cores", "1", "--detailed-summary"],
        cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    header = rows[0]
    fits = [r[0] for r in rows[1:] if len(r) == len(header) and r[header.index("rule")] == "fit_dip"]
    fits = sorted(f for f in fits if f.endswith(".json"))
    assert fits, f"the workflow plans no fit_dip job: {out.stdout[:2000]}"
    return fits[0]


def _fit_record(workdir: Path) -> dict:
    records = [p for p in workdir.rglob("*.json") if "/dip/" in p.as_posix() and ".snakemake" not in p.parts
               and "restored" in p.parts]
    assert len(records) == 1, f"expected one DIP fit record under {workdir}, found {records}"
    return json.loads(records[0].read_text())


def _checkpoints(workdir: Path) -> list[Path]:
    return [p for p in workdir.rglob("*") if p.is_file() and ".snakemake" not in p.parts
            and (p.suffix in (".ckpt", ".pt") or "checkpoints" in p.parts)]


def _running_fit_job(workdir: Path) -> str | None:
    out = _sh("squeue", "-h", "-t", "RUNNING", "-o", "%i|%Z|%k").stdout
    for line in out.splitlines():
        jobid, wd, comment = (line.split("|") + ["", ""])[:3]
        if Path(wd).resolve() == workdir.resolve() and "fit" in comment:
            return jobid
    return None


def _psnr(record: dict) -> float:
    final = record["summary"]["final"]
    return final.get("psnr_gt_avg") if final.get("psnr_gt_avg") is not None else final["psnr_gt"]


@pytest.mark.slow(seconds=130)
def test_fit_resumes_after_scancel(slurm, tmp_path, cleanup_jobs):
    """SIGTERM to a running fit (as at a time limit or preemption): the retry resumes and ends where a clean run ends."""
    cfg, _ = _one_fit_config()
    # The reference: the same single fit, uninterrupted, locally.
    ref = _workflow_copy(tmp_path / "local", cfg)
    target = _fit_target(ref)
    _run(ref, target, "--cores", "2", "--workflow-profile", "none", log_name="local.log", snakefile=REPO / "Snakefile")
    ref_record = _fit_record(ref)

    wd = _workflow_copy(tmp_path / "run", cfg)
    cleanup_jobs.append(wd)
    profile = _profile_for(slurm, tmp_path / "profile")
    t0 = time.monotonic()
    proc = _snakemake(wd, target, "--workflow-profile", str(profile), *CI_FLAGS, "--retries", "2",
                      log_name="slurm.log", snakefile=REPO / "Snakefile")
    killed = None
    try:
        while time.monotonic() - t0 < RUN_LIMIT_S and proc.poll() is None:
            job = _running_fit_job(wd)
            if job and _checkpoints(wd):
                killed = job
                # Like SLURM at a time limit: SIGTERM to the job's steps (the fit runs in an srun step).
                res = _sh("scancel", "--signal=TERM", job)
                assert res.returncode == 0, res.stderr
                break
            time.sleep(0.5)
    finally:
        if killed is None:
            proc.send_signal(signal.SIGTERM)
    assert killed, f"never saw a running fit job with a checkpoint; log:\n{(wd / 'slurm.log').read_text()[-4000:]}"
    _finish(proc, wd, "slurm.log")
    print(f"SLURM run with one scancel: {time.monotonic() - t0:.0f} s")

    rows = _wait_for_records(wd, _submitted(wd, "slurm.log"))
    by_id = {r["JobID"]: r for r in rows}
    assert by_id[killed]["State"] in ("FAILED", "CANCELLED", "PREEMPTED", "TIMEOUT"), by_id[killed]
    later_fits = [r for r in rows if "fit" in r["Comment"] and int(r["JobID"]) > int(killed)]
    assert later_fits and later_fits[-1]["State"] == "COMPLETED", rows

    record = _fit_record(wd)
    assert record["summary"]["resumed_from"] > 0, "the retried fit did not resume from its checkpoint"
    assert record["summary"]["iterations_done"] == ref_record["summary"]["iterations_done"] == KILL_ITERATIONS
    assert record["summary"]["final"]["loss"] == ref_record["summary"]["final"]["loss"]
    assert _psnr(record) == _psnr(ref_record), "resumed fit ended differently from the uninterrupted one"
