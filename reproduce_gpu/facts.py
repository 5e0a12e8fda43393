"""(a) The machine, software and code facts of a run (facts.txt, facts.json) and the fit device; (b) the CUDA tests,
run beside the fits (cuda-tests.log, cuda-tests.xml)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from reproduce_gpu.common import REPO, Run, child_env, kill_group

NVSMI_FIELDS = (
    "name,memory.total,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit,pstate,"
    "temperature.gpu,compute_mode"
)


def machine_facts(run: Run) -> dict:
    """The facts phase: the fit device (and with it the default fit processes and threads), facts.json and
    facts.txt. Returns the facts."""
    import torch

    t, args = time.monotonic(), run.args
    if args.device == "auto":
        run.device = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        run.device = args.device.split(":")[0]
    args.jobs = args.jobs or (4 if run.device == "cuda" else 1)
    args.threads = args.threads or (2 if run.device == "cuda" else 1)
    facts, nvsmi = collect_facts(args, args.inputs)
    facts["fit_device"] = run.device
    (run.out / "facts.json").write_text(json.dumps(facts, indent=1, default=str))
    (run.out / "facts.txt").write_text(facts_text(facts, nvsmi))
    run.log(f"facts: {facts.get('gpu') or 'no GPU'}; torch {facts['torch']} (CUDA {facts['torch_cuda']}); "
            f"fits on {run.device}, {args.jobs} at a time; budget {args.budget_minutes:g} min")  # fmt: skip
    run.phase("facts", "ok", t)
    return facts


def _run_text(cmd, timeout=30) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as err:
        return None if isinstance(err, FileNotFoundError) else f"error: {err}"
    return (out.stdout + out.stderr).strip()


def collect_facts(args, inputs: Path) -> tuple[dict, str]:
    """Machine, software and code facts: ``(facts, nvidia-smi's full output)``."""
    import numpy
    import PIL
    import scipy
    import skimage
    import torch

    from dip.restore import git_commit

    facts: dict = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": "tiny (CPU smoke test)" if args.tiny else "full",
        "argv": sys.argv[1:],
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-image": skimage.__version__,
        "pillow": PIL.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(
            gpu=props.name, gpu_count=torch.cuda.device_count(), gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}", gpu_bf16=torch.cuda.is_bf16_supported(),
        )
    facts["nvidia_smi"] = _nvidia_smi_query()
    full = _run_text(["nvidia-smi"]) or "nvidia-smi: not found"
    facts["git_commit"] = git_commit(REPO)
    for where in (inputs / "COMMIT", REPO / "COMMIT"):
        if where.is_file():
            facts["commit_file"] = {"path": str(where), "text": where.read_text().strip()}
            break
    facts["code_sha256"] = code_digest()
    return facts, full


def _nvidia_smi_query():
    """``nvidia-smi --query-gpu``: a row per GPU ({field: value}), its text if it gave no table, or "not found"."""
    query = _run_text(["nvidia-smi", f"--query-gpu={NVSMI_FIELDS}", "--format=csv"])
    if query is not None and "," not in query:  # a driver that lacks one of the fields: the basic ones
        query = _run_text(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv"])
    if query is None:
        return "not found"
    lines = [ln for ln in query.splitlines() if ln.strip()]
    if len(lines) >= 2 and "," in lines[0]:
        keys = [k.strip() for k in lines[0].split(",")]
        return [dict(zip(keys, (v.strip() for v in ln.split(",")))) for ln in lines[1:]]
    return query


def _cpu_model() -> str:
    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        return names[0] if names else platform.processor()
    except OSError:
        return platform.processor()


def code_digest() -> str:
    """sha256 over the code and config that make the results (dip/, workflow/, config/, benchmarks/, reproduce_gpu/, tests/): ties
    a result to the exact working tree, which on a GPU machine has no .git."""
    h = hashlib.sha256()
    for top in ("dip", "workflow", "config", "benchmarks", "reproduce_gpu", "tests"):
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".smk", ".tsv", ".sh") \
                    and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def facts_text(facts: dict, nvsmi: str) -> str:
    lines = []
    for key, value in facts.items():
        if key == "commit_file":
            lines.append(f"commit_file: {value['path']}")
            lines += [f"    {ln}" for ln in value["text"].splitlines()]
        elif key == "nvidia_smi" and isinstance(value, list):
            for i, row in enumerate(value):
                lines.append(f"nvidia_smi[{i}]: " + ", ".join(f"{k} = {v}" for k, v in row.items()))
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n\n--- nvidia-smi ---\n" + nvsmi + "\n"


class CudaTests:
    """(b) ``pytest -m cuda tests/unit/test_cuda.py`` in the background while the fits run, capped at
    ``--cuda-tests-timeout`` and at the end of the fits' time; not run with --tiny or --no-cuda-tests."""

    def __init__(self, run: Run):
        self.run, self.result, self.proc, self.fh = run, {}, None, None
        self.t0 = time.monotonic()
        args, out = run.args, run.out
        if args.tiny or args.no_cuda_tests:
            self.result["result"] = "not run (--tiny)" if args.tiny else "not run (--no-cuda-tests)"
            (out / "cuda-tests.log").write_text(self.result["result"] + "\n")
            return
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "cuda", "-p", "no:cacheprovider",
               f"--junitxml={out / 'cuda-tests.xml'}", "tests/unit/test_cuda.py"]  # fmt: skip
        self.fh = open(out / "cuda-tests.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.fh, stderr=subprocess.STDOUT, cwd=REPO, env=child_env(),
                                     start_new_session=True)  # fmt: skip
        self.end = min(self.t0 + args.cuda_tests_timeout, run.work_end)
        run.log("CUDA tests started: " + " ".join(cmd[1:]))

    def finish(self) -> dict:
        """Wait for the tests (at most until their cap), their phase row; ``{"result": last line, "exit_code"}``."""
        if self.proc is None:
            return self.result
        try:
            self.proc.wait(timeout=max(1.0, self.end - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            self.fh.write(f"\n[reproduce_gpu] killed at its time cap ({self.end - self.t0:.0f} s)\n")
        self.fh.close()
        tail = [ln for ln in (self.run.out / "cuda-tests.log").read_text().splitlines() if ln.strip()]
        self.result["exit_code"] = self.proc.returncode
        self.result["result"] = (tail[-1] if tail else "no output") + f" (exit {self.proc.returncode})"
        self.run.phase("CUDA tests (beside the fits)", self.result["result"], self.t0)
        self.run.log(f"CUDA tests: {self.result['result']}")
        return self.result
