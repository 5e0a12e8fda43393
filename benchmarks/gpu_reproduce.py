#!/usr/bin/env python3
"""One-command GPU reproduction: machine facts, the CUDA tests, the Set5 (then, as time allows, Set14) x4 table at
the paper's settings, a short speed benchmark and a projection of the paper's GPU time -- in one output folder,
inside a wall-time budget. Run it through ``benchmarks/gpu_reproduce.sh`` (BENCHMARKS.md, "GPU reproduction").

    benchmarks/gpu_reproduce.sh --out DIR [--inputs DIR] [--budget-minutes 8] [--precision bf16] [--tiny] ...

No Snakemake here (a lent GPU machine has none): the jobs come from the workflow's own planner
(:mod:`dip.pipeline.plan`, fed ``config/config.yaml`` + ``config/paper.yaml`` restricted to SR x4) and run through
the workflow's own job functions (:mod:`dip.pipeline.steps`: degrade, fit, fit_pack, baseline), so the files land
where the workflow puts them, under ``--out`` instead of ``results/paper``::

    inputs/<dataset>/sr/x4/<image>/                      gt, hr, observation, inputs.json
    restored/<dataset>/sr/x4/dip/<image>_seed0.png|.json  DIP (+ _raw.png, _es.png); bicubic/ likewise
    scores/ours/<dataset>/sr_x4.csv                       dip and bicubic rows (dip.eval.scoring.COLUMNS)
    scores/extra/<dataset>/sr_x4_es.csv                   dip_es rows (the output at the ES-WMV detected step)
    facts.txt|json, cuda-tests.log|xml, bench_fit.log|json, fits.json, logs/, run.log, summary.md|json

Fits of one size are packed (:func:`dip.restore.restore_many`); packs and lone fits run as separate processes,
``--jobs`` at a time on the GPU. A fit (or pack) starts only if its estimated time fits in what is left of the
budget (estimate: measured s/step of the benchmark, or of the fits so far, times pixels x steps, times the number of
processes sharing the device); whatever still runs at the deadline is killed, so the run ends inside the budget.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CONFIG_LAYERS = ("config/config.yaml", "config/paper.yaml")  # the Snakefile's configfile, then --configfile
RELEASED_SCORES = "results/paper/scores/released"  # committed: the released outputs re-scored
BENCH_SIZE = 512  # px; the speed benchmark's image side (the projection scales from it by pixel count)
SIZE_MULTIPLE = 32  # what dip.restore crops every fit's output to

# --tiny: the same path on the CPU in about a minute (crops of the ground truth, a narrow net, a few steps).
TINY = {
    "width": 8,
    "iterations": 24,
    "log_every": 6,
    "early_stopping": {"window": 4, "patience": 4, "check_every": 2},
    # HR crops (height, width) by image position: four of one size (one pack) and a lone fit, per dataset
    "shapes": [(64, 64), (64, 64), (64, 64), (64, 64), (64, 96)],
}
# Seconds per (step x output pixel) when nothing has been measured yet: fp32, 128 channels (BENCHMARKS.md: ~5.7 s a
# step at 512 px on 2 CPU cores; a GPU guess of 40 ms, pessimistic for an H100).
FALLBACK_RATE = {"cuda": 0.040 / BENCH_SIZE**2, "cpu": 6.0 / BENCH_SIZE**2}
STARTUP_S = {"cuda": 20.0, "cpu": 8.0}  # a fit process: interpreter, torch, device, cuDNN autotuning
FIT_MARGIN_S = {False: 150.0, True: 30.0}  # the benchmark's cap leaves the fits this much (full, --tiny)


# --- small helpers -------------------------------------------------------------------------------------------------


class Log:
    """Lines with the elapsed time, to stdout and ``run.log``."""

    def __init__(self, t0: float, path: Path | None = None):
        self.t0, self.path = t0, path

    def __call__(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {msg}"
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")


def merge_config(base: dict, over: dict) -> dict:
    """Merge ``over`` into ``base`` as Snakemake layers config files (``snakemake.utils.update_config``): mappings
    recursively, anything else (lists included) replaced."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def paper_config() -> dict:
    """``config/config.yaml`` + ``config/paper.yaml``, as ``snakemake --configfile config/paper.yaml`` sees them;
    the manifest and paper numbers as absolute paths."""
    import yaml

    cfg: dict = {}
    for rel in CONFIG_LAYERS:
        merge_config(cfg, yaml.safe_load((REPO / rel).read_text()))
    for key in ("manifest", "paper_numbers"):
        cfg[key] = str(REPO / cfg[key])
    return cfg


def run_config(args, resources: Path) -> dict:
    """The paper config restricted to what this run fits: SR x4 of ``args.datasets`` with one seed, DIP (the
    config's presets and settings, + precision), the bicubic baseline, ES-WMV recorded as the paper config says;
    results under ``args.out``, benchmark files from ``resources``."""
    cfg = paper_config()
    experiments = []
    for name in args.datasets:
        found = [e for e in cfg["experiments"] if e["dataset"] == name and e["task"] == "sr"]
        if not found:
            raise SystemExit(f"config/paper.yaml has no SR experiment for dataset {name!r}")
        exp = copy.deepcopy(found[0])
        exp.update(levels=[4], seeds=[args.seed], baselines=[b for b in exp.get("baselines", []) if b == "bicubic"])
        dip = exp.setdefault("dip", {})
        settings = dip.setdefault("settings", {})
        if args.precision != "fp32":
            settings["precision"] = args.precision
        if args.tiny:
            dip["width"] = TINY["width"]
            settings.update(iterations=TINY["iterations"], log_every=TINY["log_every"])
        if args.width:
            dip["width"] = args.width
        if args.iterations:
            settings["iterations"] = args.iterations
        if args.device != "auto":
            settings["device"] = args.device
        experiments.append(exp)
    es = (cfg.get("paper_experiments") or {}).get("early_stopping")
    if es and args.tiny:
        es = TINY["early_stopping"]
    cfg.update(
        experiments=experiments, results_dir=str(args.out), resources_dir=str(resources), learning_curves=None,
        released={}, pack_fits=1, paper_experiments={"early_stopping": es} if es else {},
    )
    return cfg


def write_layer(config: dict, path: Path, datasets) -> None:
    """A config file to layer after config/paper.yaml (``--configfile config/paper.yaml <it>``) so that the workflow
    plans just the experiments of ``datasets`` (those whose fits this run completed): their tables and figures can
    then be rendered before the paper's other fits exist."""
    import yaml

    others = {name: None for name in (paper_config().get("paper_experiments") or {}) if name != "early_stopping"}
    experiments = [e for e in config["experiments"] if e["dataset"] in datasets]
    layer = {"experiments": experiments, "learning_curves": None, "paper_experiments": others}
    head = ("# Written by benchmarks/gpu_reproduce.py: layer it after config/paper.yaml to plan only the experiments\n"
            f"# whose fits this run completed ({', '.join(datasets)}); BENCHMARKS.md, 'GPU reproduction'.\n")
    path.write_text(head + yaml.safe_dump(layer, sort_keys=False))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_size(path) -> tuple[int, int]:
    """(width, height) of an image file, without decoding it."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def crop32(width: int, height: int) -> int:
    return (width // SIZE_MULTIPLE * SIZE_MULTIPLE) * (height // SIZE_MULTIPLE * SIZE_MULTIPLE)


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a process started with ``start_new_session=True`` and everything it started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_capped(cmd, log_path: Path, timeout: float, env=None, cwd=REPO) -> tuple[int | None, float]:
    """Run ``cmd`` with its output in ``log_path``; kill it (and its children) after ``timeout`` s. Returns
    ``(exit code or None if killed, seconds)``."""
    t = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            rc = None
            log.write(f"\n[gpu_reproduce] killed after {timeout:.0f} s (time cap)\n")
    return rc, time.monotonic() - t


def child_env(threads: int | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


# --- (a) facts -----------------------------------------------------------------------------------------------------

NVSMI_FIELDS = (
    "name,memory.total,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit,pstate,"
    "temperature.gpu,compute_mode"
)


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
    query = _run_text(["nvidia-smi", f"--query-gpu={NVSMI_FIELDS}", "--format=csv"])
    if query is not None and "," not in query:  # a driver that lacks one of the fields: the basic ones
        query = _run_text(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv"])
    if query is None:
        facts["nvidia_smi"] = "not found"
    else:
        lines = [ln for ln in query.splitlines() if ln.strip()]
        if len(lines) >= 2 and "," in lines[0]:
            keys = [k.strip() for k in lines[0].split(",")]
            facts["nvidia_smi"] = [dict(zip(keys, (v.strip() for v in ln.split(",")))) for ln in lines[1:]]
        else:
            facts["nvidia_smi"] = query
    full = _run_text(["nvidia-smi"]) or "nvidia-smi: not found"
    facts["git_commit"] = git_commit(REPO)
    for where in (inputs / "COMMIT", REPO / "COMMIT"):
        if where.is_file():
            facts["commit_file"] = {"path": str(where), "text": where.read_text().strip()}
            break
    facts["code_sha256"] = code_digest()
    return facts, full


def _cpu_model() -> str:
    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        return names[0] if names else platform.processor()
    except OSError:
        return platform.processor()


def code_digest() -> str:
    """sha256 over the code and config that make the results (dip/, workflow/, config/, benchmarks/, tests/): ties
    a result to the exact working tree, which on a GPU machine has no .git."""
    h = hashlib.sha256()
    for top in ("dip", "workflow", "config", "benchmarks", "tests"):
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


# --- inputs --------------------------------------------------------------------------------------------------------


def needed_files(datasets, level=4) -> list[str]:
    from dip.data.benchmarks import BENCHMARKS

    return [BENCHMARKS[d].gt_file(level, image) for d in datasets for image in BENCHMARKS[d].images]


def check_inputs(inputs: Path, rels: list[str]) -> list[str]:
    """Problems with the input files (missing, wrong sha256 against the manifest); empty when all is well."""
    from dip.data.benchmarks import read_manifest

    manifest = read_manifest(REPO / "config/manifest/benchmarks.tsv")
    problems = []
    for rel in rels:
        path = inputs / rel
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif sha256_file(path) != manifest[rel]:
            problems.append(f"sha256 differs from the manifest: {path}")
    return problems


def make_tiny_inputs(inputs: Path, dest: Path, rels: list[str]) -> None:
    """--tiny: centre crops of the ground-truth files (TINY["shapes"], by position in the dataset), same layout."""
    from PIL import Image

    by_folder: dict[str, list[str]] = {}
    for rel in rels:
        by_folder.setdefault(str(Path(rel).parent), []).append(rel)
    for files in by_folder.values():
        for i, rel in enumerate(files):
            h, w = TINY["shapes"][i % len(TINY["shapes"])]
            with Image.open(inputs / rel) as im:
                left, top = (im.width - w) // 2, (im.height - h) // 2
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                im.crop((left, top, left + w, top + h)).save(out)


# --- (d) speed benchmark -------------------------------------------------------------------------------------------


def run_bench(args, out: Path, device: str, timeout: float, log) -> dict | None:
    """benchmarks/bench_fit.py with the modes that need no deepinv, short; its JSON as a dict (None if none)."""
    folder = out / "bench"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "bench_fit.py"), "--device", device,
        "--sizes", *map(str, args.bench_sizes), "--modes", *args.bench_modes, "--warmup", str(args.bench_warmup),
        "--steps", str(args.bench_steps), "--batch", "--parity-iters", "0", "--out", str(folder),
        "--timeout", str(int(max(30, timeout))),
    ]  # fmt: skip
    if args.tiny:
        cmd += ["--threads", "1"]
    log("bench: " + " ".join(cmd[1:]))
    rc, secs = run_capped(cmd, out / "bench_fit.log", timeout, env=child_env())
    latest = folder / f"bench_fit_{device}_latest.json"
    if not latest.is_file():
        log(f"bench: no result (exit {rc}, {secs:.0f} s; see bench_fit.log)")
        return None
    data = json.loads(latest.read_text())
    data["exit_code"], data["wall_s"] = rc, round(secs, 1)
    (out / "bench_fit.json").write_text(json.dumps(data, indent=1))
    for stale in folder.glob("bench_fit_*.json"):  # the copy above is the one to keep
        stale.unlink()
    folder.rmdir()
    return data


def bench_speed(bench: dict | None) -> list[dict]:
    """The speed rows of a bench_fit record; from its per-round rows (fastest round) when it was cut short."""
    bench = bench or {}
    if bench.get("speed"):
        return bench["speed"]
    best: dict[tuple, dict] = {}
    for row in bench.get("speed_rounds", []):
        key = (row.get("size"), row.get("mode"))
        if key not in best or row.get("s_per_step", math.inf) < best[key].get("s_per_step", math.inf):
            best[key] = row
    return list(best.values())


def bench_rates(bench: dict | None) -> dict[str, float]:
    """{mode: seconds per step per output pixel} from a bench_fit record (the largest size measured per mode)."""
    rates: dict[str, tuple[int, float]] = {}
    for row in bench_speed(bench):
        if "s_per_step" in row and row.get("fits", 1) == 1:
            if row["mode"] not in rates or row["size"] > rates[row["mode"]][0]:
                rates[row["mode"]] = (row["size"], row["s_per_step"] / row["size"] ** 2)
    return {mode: rate for mode, (_, rate) in rates.items()}


# --- (c) fits: groups, budget, scheduler -----------------------------------------------------------------------------


def fit_groups(plan, pack_max: int) -> list[dict]:
    """The DIP fits of the plan as process-sized groups: packs of fits of one size (at most ``pack_max``) and lone
    fits. Each group: name, kind (pack/lone), dataset, the job's spec/inputs/outputs, iterations, pixels, work."""
    from dip.pipeline.packs import plan_packs
    from dip.presets import config_from_spec

    groups = []
    for d, t, lv in plan.experiment_keys():
        jobs = [j for j in plan.by_rule("fit_dip") if (j.wildcards["dataset"], j.wildcards["task"],
                                                       j.wildcards["level"]) == (d, t, lv)]  # fmt: skip
        by_fit = {(j.wildcards["image"], int(j.wildcards["seed"])): j for j in jobs}
        size = {key: image_size(j.input["target"]) for key, j in by_fit.items()}
        packs = plan_packs([(key, size[key]) for key in by_fit], pack_max) if pack_max > 1 else []
        packed = {key for pack in packs for key in pack}
        for n, pack in enumerate(packs):
            spec = plan.fit_spec(d, t, lv, seed=None) | {"members": [{"image": i, "seed": s} for i, s in pack]}
            inputs: dict[str, list[str]] = {}
            for key in pack:
                for role, path in by_fit[key].input.items():
                    inputs.setdefault(role, []).append(path)
            groups.append({
                "name": f"{d}_{t}_{lv}_pack{n}", "kind": "pack", "dataset": d, "key": [d, t, lv], "spec": spec,
                "inputs": inputs, "outputs": [dict(by_fit[key].output) for key in pack],
                "members": [f"{i}_seed{s}" for i, s in pack], "sizes": [list(size[key]) for key in pack],
            })  # fmt: skip
        for key, job in by_fit.items():
            if key not in packed:
                groups.append({
                    "name": f"{d}_{t}_{lv}_{key[0]}_seed{key[1]}", "kind": "lone", "dataset": d, "key": [d, t, lv],
                    "spec": job.params["spec"], "inputs": dict(job.input), "outputs": [dict(job.output)],
                    "members": [f"{key[0]}_seed{key[1]}"], "sizes": [list(size[key])],
                })  # fmt: skip
    for g in groups:
        g["iterations"] = config_from_spec(g["spec"]).iterations
        g["pixels"] = sum(w * h for w, h in g["sizes"])
        g["work"] = g["iterations"] * g["pixels"]  # step x output pixels
    order = {d: i for i, d in enumerate(dict.fromkeys(g["dataset"] for g in groups))}
    return sorted(groups, key=lambda g: (order[g["dataset"]], -g["work"]))


def estimate_seconds(work: float, rate: float, sharing: int, startup: float) -> float:
    """A group's time if started now: start-up + steps x pixels x s/(step px), stretched by the processes that
    would share the device (as if it were saturated: the conservative case)."""
    return startup + work * rate * max(1, sharing)


def pick_next(pending: list[dict], running: int, now: float, deadline: float, rate: float, startup: float):
    """The first pending group (in order) that is estimated to finish before ``deadline`` if started now with
    ``running`` others; None if none is."""
    for g in pending:
        if now + estimate_seconds(g["work"], rate, running + 1, startup) <= deadline:
            return g
    return None


def observed_rate(done: list[dict]) -> float | None:
    """Median solo-equivalent s/(step px) of the finished groups: (seconds - start-up) / (work x mean sharing)."""
    rates = [max(g["seconds"] - g["startup"], 0.1) / (g["work"] * max(g["sharing"], 1.0))
             for g in done if g.get("status") == "done" and g["work"] > 0]  # fmt: skip
    return statistics.median(rates) if rates else None


def run_worker(job_file: str) -> int:
    """One group in this process (a child of the scheduler): a lone fit (:func:`dip.pipeline.steps.fit`) or a pack
    (:func:`dip.pipeline.steps.fit_pack`, then each fit's files copied to where a lone fit writes them, as the
    workflow's unpack_fit does)."""
    from dip.pipeline import steps

    job = json.loads(Path(job_file).read_text())
    # as the workflow's shims run a job: progress lines in the log (the config's settings); no checkpoints here, a
    # fit of this run that is stopped is not resumed
    settings = getattr(steps, "workflow_settings", None)
    context = settings({"checkpoint_minutes": 0, "progress": job.get("progress")}) if settings else None
    with context or contextlib.nullcontext():
        return _run_group(steps, job)


def _run_group(steps, job: dict) -> int:
    if job["kind"] == "lone":
        steps.fit(job["spec"], job["inputs"], job["outputs"][0], job["threads"])
        return 0
    folder = Path(job["folder"])
    steps.fit_pack(job["spec"], job["inputs"], str(folder), job["threads"])
    for member, out in zip(job["spec"]["members"], job["outputs"]):
        stem = folder / f"{member['image']}_seed{member['seed']}"
        pairs = [(f"{stem}.png", out["png"]), (f"{stem}_raw.png", out["raw"]), (f"{stem}.json", out["json"])]
        if "es" in out:
            pairs.append((f"{stem}_es.png", out["es"]))
        for src, dst in pairs:
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            print(f"{src} -> {dst}")
    shutil.rmtree(folder)
    return 0


def schedule(groups: list[dict], args, out: Path, device: str, rate0: float, deadline: float, log,
             poll: float = 0.5, progress: dict | None = None) -> list[dict]:
    """Run the groups, ``args.jobs`` processes at a time, each only if it is estimated to finish by ``deadline``;
    kill what still runs at the deadline. Fills in each group's status, times and the estimate it was started on."""
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    startup = STARTUP_S["cuda" if device == "cuda" else "cpu"]
    pending, running, done = [], {}, []
    for g in groups:
        if args.resume and all(Path(p).is_file() for o in g["outputs"] for p in o.values()):
            g.update(status="exists", seconds=0.0)
            done.append(g)
        else:
            pending.append(g)
    t_start = time.monotonic()
    while pending or running:
        now = time.monotonic()
        for name, (proc, g, fh) in list(running.items()):
            g["sharing_sum"] += len(running)
            g["sharing_n"] += 1
            if proc.poll() is None:
                continue
            fh.close()
            g.update(seconds=round(now - g["t0"], 1), exit_code=proc.returncode,
                     sharing=g["sharing_sum"] / max(g["sharing_n"], 1))  # fmt: skip
            g["status"] = "done" if proc.returncode == 0 else "failed"
            del running[name]
            done.append(g)
            log(f"fit {g['status']}: {g['name']} ({len(g['members'])} fit(s)) in {g['seconds']:.0f} s"
                + ("" if g["status"] == "done" else f", exit {proc.returncode}; see {g['log']}"))
        if now >= deadline:
            for name, (proc, g, fh) in list(running.items()):
                kill_group(proc)
                fh.close()
                g.update(status="killed at the deadline", seconds=round(now - g["t0"], 1))
                done.append(g)
                log(f"fit killed at the deadline: {g['name']}")
            running.clear()
            break
        rate = max(rate0, observed_rate(done) or 0.0)
        while pending and len(running) < args.jobs:
            g = pick_next(pending, len(running), now, deadline, rate, startup)
            if g is None:
                break
            pending.remove(g)
            g["estimate_s"] = round(estimate_seconds(g["work"], rate, len(running) + 1, startup), 1)
            g["log"] = str(out / "logs" / "fit" / "/".join(g["key"]) / f"{g['name']}.log")
            Path(g["log"]).parent.mkdir(parents=True, exist_ok=True)
            job = {**{k: g[k] for k in ("kind", "spec", "inputs", "outputs")}, "threads": args.threads,
                   "folder": str(out / "packs" / g["name"]), "progress": progress}  # fmt: skip
            job_file = out / "jobs" / f"{g['name']}.json"
            job_file.write_text(json.dumps(job, indent=1))
            fh = open(g["log"], "w")
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(job_file)]
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                                    env=child_env(args.threads))  # fmt: skip
            g.update(t0=now, started_s=round(now - t_start, 1), startup=startup, sharing_sum=0, sharing_n=0)
            running[g["name"]] = (proc, g, fh)
            log(f"fit start: {g['name']} ({', '.join(g['members'])}; {g['iterations']} steps, "
                f"{g['pixels'] / 1e6:.2f} Mpx; estimate {g['estimate_s']:.0f} s, {len(running)} running)")
        if not running and pending:
            for g in pending:
                g.update(status="skipped: would not finish in the budget",
                         estimate_s=round(estimate_seconds(g["work"], rate, 1, startup), 1))  # fmt: skip
                done.append(g)
                log(f"fit skipped (estimate {g['estimate_s']:.0f} s > {max(deadline - now, 0):.0f} s left): "
                    f"{g['name']}")
            pending.clear()
        time.sleep(poll)
    for g in done:
        for key in ("t0", "sharing_sum", "sharing_n"):
            g.pop(key, None)
    shutil.rmtree(out / "packs", ignore_errors=True)
    return done


# --- scores --------------------------------------------------------------------------------------------------------


def write_scores(plan) -> dict[tuple, "object"]:
    """Score what exists, as the workflow's score and score_es rules do: ``scores/ours/<d>/<t>_<lv>.csv`` (DIP,
    bicubic) and ``scores/extra/<d>/<t>_<lv>_es.csv`` (dip_es). Returns {(d, t, lv): frame of all rows}."""
    import pandas as pd

    from dip.eval.scoring import COLUMNS, score_outputs

    frames = {}
    for d, t, lv in plan.experiment_keys():
        job = plan.get("score", {"dataset": d, "task": t, "level": lv})
        params, rows = job.params, []
        for image, gt, obs in zip(params["images"], job.input["gt"], job.input["observation"]):
            outputs = [p for p in params["plan"] if p["image"] == image and Path(p["png"]).is_file()]
            if Path(gt).is_file():
                rows += score_outputs(d, t, params["level"], image, gt, obs, outputs)
        frame = pd.DataFrame(rows, columns=COLUMNS)
        Path(job.output[0]).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(job.output[0], index=False)
        es_rows = []
        if (d, t, lv) in plan.es_levels():
            es = plan.es_score(d, t, lv)
            for image, gt in zip(es.params["images"], es.input["gt"]):
                outputs = [{"method": "dip_es", "seed": seed, "png": png, "json": js}
                           for (im, seed), png, js in zip(es.params["runs"], es.input["pngs"], es.input["jsons"])
                           if im == image and Path(png).is_file()]  # fmt: skip
                if outputs:
                    es_rows += [r for r in score_outputs(d, t, es.params["level"], image, gt, None, outputs)
                                if r["method"] != "input"]  # fmt: skip
            es_frame = pd.DataFrame(es_rows, columns=COLUMNS)
            Path(es.output[0]).parent.mkdir(parents=True, exist_ok=True)
            es_frame.to_csv(es.output[0], index=False)
        frames[(d, t, lv)] = pd.concat([frame, pd.DataFrame(es_rows, columns=COLUMNS)], ignore_index=True)
    return frames


# --- (d) projection of the paper's GPU time ------------------------------------------------------------------------


def paper_workload() -> list[dict]:
    """Every DIP fit of config/paper.yaml's tables and Fig. 2 curves, summed per (dataset, task, level): fits,
    steps (the preset's, from the config), output megapixels (the GT cropped to multiples of 32, from the manifest's
    size column) and step x Mpx. The paper's other experiments (JPEG, the figures) are not counted."""
    from dip.pipeline.plan import build_plan
    from dip.presets import config_from_spec
    from dip.tasks import level_label

    plan = build_plan(paper_config())
    sizes = plan.manifest.sizes
    rows = []
    for exp in plan.config["experiments"]:
        d, t = exp["dataset"], exp["task"]
        bench = plan.benchmark(d)
        for level in exp["levels"]:
            lv = level_label(t, level)
            fits, steps, work, mpx = 0, 0, 0.0, 0.0
            for image in plan.images(d):
                w, h, _ = sizes[bench.gt_file(level, image)]
                px = crop32(w, h)
                for seed in plan.seeds(exp):
                    it = config_from_spec(plan.fit_spec(d, t, lv, seed)).iterations
                    fits, steps, work, mpx = fits + 1, steps + it, work + it * px / 1e6, mpx + px / 1e6
            rows.append({"what": f"{d} {t} {lv}", "fits": fits, "steps": steps, "mpx": round(mpx, 3),
                         "step_mpx": round(work, 1)})  # fmt: skip
    if plan.learning:
        spec = plan.learning
        bench = plan.benchmark(spec["dataset"])
        w, h, _ = sizes[bench.gt_file(bench.levels[0], spec["image"])]
        kinds = spec.get("kinds") or ["image", "image_noise", "shuffled", "noise"]
        it = int(spec["dip"]["settings"]["iterations"])
        px = crop32(w, h) / 1e6
        rows.append({"what": f"learning curves ({spec['image']}, Fig. 2)", "fits": len(kinds), "steps": it * len(kinds),
                     "mpx": round(px * len(kinds), 3), "step_mpx": round(it * px * len(kinds), 1)})  # fmt: skip
    return rows


def projection(workload: list[dict], rates: dict[str, float]) -> list[dict]:
    """Hours of the workload, one fit at a time, at each rate (s per step per pixel): linear in pixels."""
    total = sum(r["step_mpx"] for r in workload) * 1e6
    return [{"basis": basis, "s_per_step_512": round(rate * BENCH_SIZE**2, 5), "hours": round(total * rate / 3600, 2)}
            for basis, rate in rates.items()]  # fmt: skip


# --- summary -------------------------------------------------------------------------------------------------------


def _fmt(value, spec=".2f", empty="-"):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return empty
    return format(value, spec)


def dataset_table(d: str, lv: str, frame, groups: list[dict], out: Path, paper_numbers: Path, seed: int = 0):
    """Markdown lines comparing our DIP per image with the released DIP and the paper; and the means."""
    import pandas as pd

    from dip.data.benchmarks import BENCHMARKS
    from dip.eval.tables import load_paper_numbers

    level = int(lv.lstrip("x"))
    pub_path = REPO / RELEASED_SCORES / d / f"sr_{lv}.csv"
    pub = pd.read_csv(pub_path) if pub_path.is_file() else pd.DataFrame(columns=["image", "method", "psnr"])
    reported, released, _ = load_paper_numbers(paper_numbers)

    def paper(table, method):
        sel = table[(table["dataset"] == d) & (table["task"] == "sr") & (table["level"].astype(float) == level)
                    & (table["method"] == method) & (table["image"] == "mean")]  # fmt: skip
        return float(sel["psnr"].iloc[0]) if len(sel) else None

    def ours(image, method):
        sel = frame[(frame["image"] == image) & (frame["method"] == method)]
        return sel.iloc[0] if len(sel) else None

    group_of = {m: g for g in groups if g["dataset"] == d for m in g["members"]}
    lines = [
        "| image | fit size | DIP ours | released DIP | ours - released | DIP+ES (step) | bicubic ours "
        "| released bicubic | fit s | fit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    diffs, ours_all, rel_all, bic_all = [], [], [], []
    for image in BENCHMARKS[d].images:
        member = f"{image}_seed{seed}"
        g = group_of.get(member)
        row = ours(image, "dip")
        es = ours(image, "dip_es")
        bic = ours(image, "bicubic")
        rel = pub[(pub["image"] == image) & (pub["method"] == "dip")]["psnr"]
        rel_bic = pub[(pub["image"] == image) & (pub["method"] == "bicubic")]["psnr"]
        rel = float(rel.iloc[0]) if len(rel) else None
        rel_bic = float(rel_bic.iloc[0]) if len(rel_bic) else None
        psnr = float(row["psnr"]) if row is not None else None
        step = None
        record = out / "restored" / d / "sr" / lv / "dip" / f"{member}.json"
        if record.is_file():
            step = (json.loads(record.read_text()).get("early_stopping") or {}).get("detected_step")
        es_txt = f"{_fmt(float(es['psnr']) if es is not None else None)} ({_fmt(step, 'd')})" if es is not None else "-"
        size = "x".join(map(str, g["sizes"][g["members"].index(member)])) if g else "-"
        diff = psnr - rel if psnr is not None and rel is not None else None
        if psnr is not None:
            ours_all.append(psnr)
            if rel is not None:
                diffs.append(diff)
                rel_all.append(rel)
        if bic is not None:
            bic_all.append(float(bic["psnr"]))
        state = (g or {}).get("status", "not planned")
        fit_s = _fmt(float(row["seconds"]), ".0f") if row is not None and pd.notna(row["seconds"]) else "-"
        lines.append(
            f"| {image} | {size} | {_fmt(psnr)} | {_fmt(rel)} | {_fmt(diff, '+.2f')} | {es_txt} "
            f"| {_fmt(float(bic['psnr']) if bic is not None else None)} | {_fmt(rel_bic)} | {fit_s} | {state} |"
        )
    n = len(BENCHMARKS[d].images)
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    stats = {
        "dataset": d, "level": lv, "images": n, "fitted": len(ours_all), "dip_mean": mean(ours_all),
        "released_dip_mean_same_images": mean(rel_all), "mean_diff_vs_released": mean(diffs),
        "bicubic_mean": mean(bic_all), "paper_reported_dip_mean": paper(reported, "dip"),
        "released_dip_mean": paper(released, "dip"), "paper_reported_bicubic_mean": paper(reported, "bicubic"),
    }
    lines.append(
        f"| **mean** ({len(ours_all)}/{n}) | | **{_fmt(stats['dip_mean'])}** "
        f"| {_fmt(stats['released_dip_mean_same_images'])} "
        f"| **{_fmt(stats['mean_diff_vs_released'], '+.2f')}** | | {_fmt(stats['bicubic_mean'])} | | | |"
    )
    note = (f"Paper (CVPR 2018) mean over all {n} images: DIP {_fmt(stats['paper_reported_dip_mean'])}, bicubic "
            f"{_fmt(stats['paper_reported_bicubic_mean'])}; released DIP outputs re-scored: "
            f"{_fmt(stats['released_dip_mean'])} (config/paper_numbers.yaml).")  # fmt: skip
    if len(ours_all) == n and stats["paper_reported_dip_mean"] is not None:
        note += f" Our mean - paper: {stats['dip_mean'] - stats['paper_reported_dip_mean']:+.2f} dB."
    return lines + ["", note], stats


def bench_lines(bench: dict | None, workload: list[dict], rates: dict[str, float], fit_rate, throughput) -> list:
    lines = []
    speed = [r for r in bench_speed(bench) if "s_per_step" in r]
    if speed:
        ref = {r["size"]: r["s_per_step"] for r in speed if r["mode"] == "reference"}
        lines += ["| size | mode | s/step | vs reference | peak MB |", "|---|---|---|---|---|"]
        for r in speed:
            base = ref.get(r["size"])
            ratio = f"{base / r['s_per_step']:.2f}x" if base else "-"
            peak = r.get("peak_mb", r.get("peak_rss_mb"))
            lines.append(f"| {r['size']} | {r['mode']} | {r['s_per_step']:.4f} | {ratio} | {_fmt(peak, '.0f')} |")
        lines += ["", f"({bench.get('warmup')} warm-up + {bench.get('steps')} timed steps per mode, each mode in a "
                      f"fresh process; denoising preset, 128-channel skip net; bench_fit.json)"]  # fmt: skip
    elif bench is None:
        lines.append("No benchmark (skipped or failed: bench_fit.log).")
    for r in bench_speed(bench):
        if "error" in r:
            lines.append(f"- {r.get('mode')}: {r['error'][:200]}")
    steps = sum(r["steps"] for r in workload)
    fits = sum(r["fits"] for r in workload)
    lines += ["", f"**Projected GPU time of the paper profile** (config/paper.yaml: {fits} fits, {steps:,} steps, "
                  f"{sum(r['step_mpx'] for r in workload):,.0f} step x Mpx; one fit at a time, time per step scaled "
                  "linearly by output pixels from the measured size):", "",
              "| fits | count | steps | step x Mpx |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {r['what']} | {r['fits']} | {r['steps']:,} | {r['step_mpx']:,.1f} |" for r in workload]
    basis = {f"bench {m}": rate for m, rate in rates.items()}
    if fit_rate:
        basis["this run's fits (solo-equivalent)"] = fit_rate
    if throughput:
        basis[f"this run's fit throughput ({throughput['jobs']} processes, packed)"] = throughput["rate"]
    if basis:
        lines += ["", "| basis | s/step at 512 px | paper profile, hours on this device |", "|---|---|---|"]
        lines += [f"| {p['basis']} | {p['s_per_step_512']:.4f} | {p['hours']:.2f} |"
                  for p in projection(workload, basis)]  # fmt: skip
    return lines


def write_summary(out: Path, facts: dict, phases: list[dict], tables: list[tuple[str, list, dict]],
                  groups: list[dict], bench_part: list[str], cuda: dict, args, elapsed: float) -> str:
    gpu = facts.get("gpu") or "no GPU"
    commit = facts.get("git_commit") or ((facts.get("commit_file") or {}).get("text") or "unknown").splitlines()[0]
    head = [
        "# GPU reproduction" + (" (--tiny: CPU smoke test on crops; the numbers mean nothing)" if args.tiny else ""),
        "",
        f"- machine: {gpu}, {facts.get('cpu')} x{facts.get('cpu_count')}; torch {facts.get('torch')} "
        f"(CUDA {facts.get('torch_cuda')}, cuDNN {facts.get('cudnn')}), Python {facts.get('python')}",
        f"- code: {commit}; code sha256 {facts.get('code_sha256', '')[:16]}",
        f"- settings: SR x4, preset sr4 ({'tiny: width 8, few steps' if args.tiny else 'as config/paper.yaml'}), "
        f"precision {args.precision}, seed {args.seed}, ES-WMV recorded, {args.jobs} fit process(es) at a time, "
        f"packs of up to {args.pack_max}; budget {args.budget_minutes:g} min, used {elapsed / 60:.1f} min",
        f"- CUDA tests: {cuda.get('result', 'not run')}",
        "",
        "| phase | status | seconds |",
        "|---|---|---|",
    ]
    head += [f"| {p['phase']} | {p['status']} | {p['seconds']:.0f} |" for p in phases]
    body = []
    for title, lines, _ in tables:
        body += ["", f"## {title}", "", *lines]
    body += ["", "## Fit processes", "", "| group | fits | steps | Mpx | status | estimate s | seconds |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for g in groups:
        body.append(f"| {g['name']} | {len(g['members'])} | {g['iterations']} | {g['pixels'] / 1e6:.2f} "
                    f"| {g['status']} | {_fmt(g.get('estimate_s'), '.0f')} | {_fmt(g.get('seconds'), '.0f')} |")
    body += ["", "## Speed (bench_fit.py) and the paper's GPU time", "", *bench_part]
    text = "\n".join(head + body) + "\n"
    (out / "summary.md").write_text(text)
    return text


# --- bundles: what a lent GPU machine can send back, and unpacking them here ------------------------------------------

RESULT_TREES = ("inputs", "restored", "scores")  # the workflow layout, in the order its files were made
KEEP_AT_TOP = ("summary.md", "facts.txt", "cuda-tests.log")
PART_BYTES = 15 * 2**20  # a returned file may hold 16 MiB
MAX_RESULT_BYTES = 4 * PART_BYTES  # at most 8 files come back: 3 at the top, the records, 4 parts


def _tree_files(out: Path, skip_bicubic: bool = False) -> list[Path]:
    files = []
    for top in RESULT_TREES:
        for path in sorted((out / top).rglob("*")):
            if path.suffix in (".ckpt", ".tmp") or not path.is_file():
                continue
            if not (skip_bicubic and "bicubic" in path.relative_to(out).parts):
                files.append(path)
    return files


def _tar_bytes(files: list[Path]) -> int:
    """The size of a tar of ``files``: a 512-byte header per file, contents padded to 512 bytes, the end blocks."""
    return sum(512 + -(-f.stat().st_size // 512) * 512 for f in files) + 10240


def bundle(out: Path, log) -> list[str]:
    """Pack ``out`` into at most 8 files of at most 16 MiB, none in a sub-folder (what a lent machine returns):
    summary.md, facts.txt, cuda-tests.log at the top; ``records.tar.gz`` (logs, JSON records, the benchmark, the
    config layer); ``results.tar.000``, ``.001``, ... the parts of one tar of inputs/, restored/, scores/ (the
    workflow layout; ``--unpack`` joins them). If the results outgrow 4 parts, the bicubic outputs (which the
    workflow remakes in seconds) stay behind. Everything else under ``out`` is removed. Returns notes."""
    import tarfile

    notes = []
    files = _tree_files(out)
    if _tar_bytes(files) > MAX_RESULT_BYTES:
        files = _tree_files(out, skip_bicubic=True)
        notes.append("bicubic outputs left out of the bundle (the workflow's baseline rule remakes them)")
    tar_path = out / "results.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(out)))
    with open(tar_path, "rb") as src:
        n = 0
        while chunk := src.read(PART_BYTES):
            (out / f"results.tar.{n:03d}").write_bytes(chunk)
            n += 1
    tar_path.unlink()
    keep = {*KEEP_AT_TOP, *(f"results.tar.{i:03d}" for i in range(n))}
    with tarfile.open(out / "records.tar.gz", "w:gz") as tar:
        for path in sorted(out.iterdir()):
            if path.name not in keep and path.name not in RESULT_TREES and path.name != "tiny-inputs":
                tar.add(path, arcname=path.name)
    for path in list(out.iterdir()):
        if path.name not in keep and path.name != "records.tar.gz":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    size = sum(p.stat().st_size for p in out.iterdir())
    log(f"bundled: {len(list(out.iterdir()))} files, {size / 2**20:.1f} MiB ({n} results part(s))")
    return notes


def unpack(src: Path, dest: Path) -> int:
    """Join ``src/results.tar.*`` and extract it into ``dest`` (e.g. results/paper), then give its files mtimes in
    the order the workflow makes them (inputs, restored, scores: each later than the one before, all later than the
    benchmark files), so that ``snakemake --rerun-triggers mtime`` takes them as up to date. ``records.tar.gz`` is
    extracted into ``src/records/``."""
    import tarfile

    parts = sorted(src.glob("results.tar.[0-9][0-9][0-9]"))
    if not parts:
        print(f"no results.tar.NNN in {src}", file=sys.stderr)
        return 2

    class Joined:  # the parts as one stream
        def __init__(self, paths):
            self.handles = [open(p, "rb") for p in paths]

        def read(self, size=-1):
            data = b""
            while self.handles and (size < 0 or len(data) < size):
                chunk = self.handles[0].read(-1 if size < 0 else size - len(data))
                if not chunk:
                    self.handles.pop(0).close()
                    continue
                data += chunk
            return data

    extract = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    with tarfile.open(fileobj=Joined(parts), mode="r|") as tar:
        for member in tar:
            tar.extract(member, dest, **extract)
            names.append(member.name)
    now = time.time()
    for name in names:
        order = RESULT_TREES.index(Path(name).parts[0]) if Path(name).parts[0] in RESULT_TREES else 0
        os.utime(dest / name, (now + order, now + order))
    if (src / "records.tar.gz").is_file():
        with tarfile.open(src / "records.tar.gz") as tar:
            tar.extractall(src / "records", **extract)
    counts = {top: sum(1 for n in names if n.startswith(top + "/")) for top in RESULT_TREES}
    print(f"unpacked {len(names)} files into {dest} ({', '.join(f'{n} {k}' for k, n in counts.items())})")
    return 0


# --- main ----------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: crops, width 8, few steps (~1 min)")
    ap.add_argument("--out", default=None, help="output folder (default: gpu-run/ in the checkout)")
    ap.add_argument("--inputs", default=None,
                    help="benchmark files laid out like the download base URL (default: .carry/inputs, made by "
                         "benchmarks/prepare_gpu_carry.sh)")  # fmt: skip
    ap.add_argument("--budget-minutes", type=float, default=None, help="wall-time budget (default 8; --tiny 2)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--datasets", nargs="+", choices=("set5", "set14"), default=None,
                    help="in this order, as time allows (default: set5 set14; --tiny: set5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu (fits; --tiny: cpu)")
    ap.add_argument("--jobs", type=int, default=None, help="fit processes at a time (default: GPU 4, CPU 1)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per fit process (default: GPU 2, CPU 1)")
    ap.add_argument("--pack-max", type=int, default=4, help="fits of one size per process (1: no packing)")
    ap.add_argument("--iterations", type=int, default=None, help="override the preset's steps (a quicker check)")
    ap.add_argument("--width", type=int, default=None, help="cap the network's channels (a quicker check)")
    ap.add_argument("--no-cuda-tests", action="store_true")
    ap.add_argument("--cuda-tests-timeout", type=float, default=240)
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--bench-modes", nargs="+", default=None,
                    help="default: reference ours-fp32 ours-cl ours-cl-bf16 (--tiny: ours-cl)")
    ap.add_argument("--bench-sizes", type=int, nargs="+", default=None, help="default 512 (--tiny: 64)")
    ap.add_argument("--bench-warmup", type=int, default=None, help="default 10 (--tiny: 1)")
    ap.add_argument("--bench-steps", type=int, default=None, help="default 40 (--tiny: 1)")
    ap.add_argument("--bench-timeout", type=float, default=150)
    ap.add_argument("--reserve", type=float, default=None, help="seconds kept for scoring and the summary "
                                                                   "(default: 30; --tiny 10)")  # fmt: skip
    ap.add_argument("--resume", action="store_true", help="reuse the fits already in --out (else --out must be empty)")
    ap.add_argument("--bundle", action="store_true",
                    help="end with --out packed into at most 8 files of at most 16 MiB at its top (what a lent GPU "
                         "machine sends back): summary.md, facts.txt, cuda-tests.log, records.tar.gz, results.tar.NNN")
    ap.add_argument("--unpack", metavar="DIR",
                    help="no run: join DIR/results.tar.NNN (a --bundle run) and extract it into --into, with mtimes "
                         "in the workflow's order")
    ap.add_argument("--into", default=None, help="where --unpack extracts to (default: results/paper)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    tiny = args.tiny
    args.out = Path(args.out or REPO / "gpu-run").resolve()
    args.inputs = Path(args.inputs or REPO / ".carry" / "inputs").resolve()
    args.budget_minutes = args.budget_minutes or (2.0 if tiny else 8.0)
    args.datasets = args.datasets or (["set5"] if tiny else ["set5", "set14"])
    if tiny and args.device == "auto":
        args.device = "cpu"
    args.bench_modes = args.bench_modes or (["ours-cl"] if tiny else ["reference", "ours-fp32", "ours-cl",
                                                                       "ours-cl-bf16"])  # fmt: skip
    args.bench_sizes = args.bench_sizes or ([64] if tiny else [BENCH_SIZE])
    args.bench_warmup = args.bench_warmup if args.bench_warmup is not None else (1 if tiny else 10)
    args.bench_steps = args.bench_steps if args.bench_steps is not None else (1 if tiny else 40)
    args.reserve = args.reserve if args.reserve is not None else (10.0 if tiny else 30.0)
    return args


def main(argv=None) -> int:
    t0 = time.monotonic()
    args = parse_args(argv)
    if args.worker:
        return run_worker(args.worker)
    if args.unpack:
        return unpack(Path(args.unpack).resolve(), Path(args.into or REPO / "results" / "paper").resolve())
    out = args.out
    if out.exists() and any(out.iterdir()) and not args.resume:
        print(f"{out} is not empty: choose another --out, or --resume to reuse its fits", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    log = Log(t0, out / "run.log")
    deadline = t0 + 60 * args.budget_minutes
    work_end = deadline - args.reserve  # fits, tests and the benchmark end by then
    phases: list[dict] = []

    def phase(name, status, since):
        phases.append({"phase": name, "status": status, "seconds": round(time.monotonic() - since, 1)})

    # (a) facts
    t = time.monotonic()
    import torch

    if args.device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        device = args.device.split(":")[0]
    args.jobs = args.jobs or (4 if device == "cuda" else 1)
    args.threads = args.threads or (2 if device == "cuda" else 1)
    facts, nvsmi = collect_facts(args, args.inputs)
    facts["fit_device"] = device
    (out / "facts.json").write_text(json.dumps(facts, indent=1, default=str))
    (out / "facts.txt").write_text(facts_text(facts, nvsmi))
    log(f"facts: {facts.get('gpu') or 'no GPU'}; torch {facts['torch']} (CUDA {facts['torch_cuda']}); "
        f"fits on {device}, {args.jobs} at a time; budget {args.budget_minutes:g} min")  # fmt: skip
    phase("facts", "ok", t)

    # inputs, checked against the manifest (and cropped for --tiny)
    t = time.monotonic()
    rels = needed_files(args.datasets)
    problems = check_inputs(args.inputs, rels)
    if problems:
        log(f"inputs: {len(problems)} problem(s), first: {problems[0]}")
        log("make the inputs with: benchmarks/prepare_gpu_carry.sh MIRROR_DIR (or pass --inputs)")
        phase("inputs", f"{len(problems)} missing or wrong", t)
        return 2
    resources = args.inputs
    if args.tiny:
        resources = out / "tiny-inputs"
        make_tiny_inputs(args.inputs, resources, rels)
    phase("inputs", f"{len(rels)} files, sha256 ok", t)

    # the plan; degraded inputs and the bicubic baseline (CPU, seconds)
    t = time.monotonic()
    from dip.pipeline import steps
    from dip.pipeline.plan import build_plan

    config = run_config(args, resources)
    plan = build_plan(config)
    for job in plan.jobs():
        if job.rule.startswith("degrade_") and not (args.resume and all(Path(p).is_file() for p in job.outputs)):
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                steps.degrade(job.params["spec"], job.input, job.output)
    for job in plan.by_rule("baseline"):
        if not (args.resume and all(Path(p).is_file() for p in job.outputs)):
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                steps.baseline(job.params["spec"], job.input, job.output, threads=args.threads)
    n_inputs = len(plan.by_rule("degrade_sr"))
    log(f"inputs: {n_inputs} degraded, {len(plan.by_rule('baseline'))} bicubic outputs")
    phase("degrade + bicubic", f"{n_inputs} images", t)

    # (d) the speed benchmark, alone on the device (its s/step also sizes the fits' estimates)
    t = time.monotonic()
    bench = None
    if args.no_bench:
        phase("benchmark", "skipped (--no-bench)", t)
    else:
        # leave the fits (Set5 first) at least FIT_MARGIN_S of the budget
        cap = min(args.bench_timeout, max(0.0, work_end - time.monotonic() - FIT_MARGIN_S[args.tiny]))
        bench = run_bench(args, out, device, cap, log) if cap >= 15 else None
        ok = bench and bench["exit_code"] == 0 and not any("error" in r for r in bench_speed(bench))
        phase("benchmark", ("ok" if ok else "incomplete (bench_fit.log)") if cap >= 15 else "skipped (budget)", t)
    rates = bench_rates(bench)
    fit_mode = "ours-cl-bf16" if args.precision == "bf16" else "ours-cl"
    same_net = not (args.tiny or args.width)  # the benchmark times the paper's 128-channel net
    rate0 = (rates.get(fit_mode) if same_net else None) or FALLBACK_RATE["cuda" if device == "cuda" else "cpu"]

    # (b) the CUDA tests, in the background while the fits run
    t_tests = time.monotonic()
    cuda: dict = {}
    tests_proc = tests_fh = None
    if args.tiny or args.no_cuda_tests:
        cuda["result"] = "not run (--tiny)" if args.tiny else "not run (--no-cuda-tests)"
        (out / "cuda-tests.log").write_text(cuda["result"] + "\n")
    else:
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "cuda", "-p", "no:cacheprovider",
               f"--junitxml={out / 'cuda-tests.xml'}", "tests/unit/test_cuda.py"]  # fmt: skip
        tests_fh = open(out / "cuda-tests.log", "w")
        tests_proc = subprocess.Popen(cmd, stdout=tests_fh, stderr=subprocess.STDOUT, cwd=REPO, env=child_env(),
                                      start_new_session=True)  # fmt: skip
        tests_end = min(t_tests + args.cuda_tests_timeout, work_end)
        log("CUDA tests started: " + " ".join(cmd[1:]))

    # (c) the fits
    t = time.monotonic()
    groups = fit_groups(plan, args.pack_max)
    log(f"fits: {sum(len(g['members']) for g in groups)} in {len(groups)} process(es); start rate "
        f"{rate0 * BENCH_SIZE**2:.4f} s/step at {BENCH_SIZE} px "
        f"({fit_mode if same_net and fit_mode in rates else 'a guess'})")
    done = schedule(groups, args, out, device, rate0, work_end, log, progress=config.get("progress"))
    fit_wall = time.monotonic() - t
    counts = {}
    for g in done:
        counts[g["status"].split(":")[0]] = counts.get(g["status"].split(":")[0], 0) + len(g["members"])
    phase("fits", ", ".join(f"{n} {s}" for s, n in counts.items()), t)

    if tests_proc is not None:
        try:
            tests_proc.wait(timeout=max(1.0, tests_end - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(tests_proc)
            tests_fh.write(f"\n[gpu_reproduce] killed at its time cap ({tests_end - t_tests:.0f} s)\n")
        tests_fh.close()
        tail = [ln for ln in (out / "cuda-tests.log").read_text().splitlines() if ln.strip()]
        cuda["exit_code"] = tests_proc.returncode
        cuda["result"] = (tail[-1] if tail else "no output") + f" (exit {tests_proc.returncode})"
        phases.append({"phase": "CUDA tests (beside the fits)", "status": cuda["result"],
                       "seconds": round(time.monotonic() - t_tests, 1)})  # fmt: skip
        log(f"CUDA tests: {cuda['result']}")

    # scores, the summary and the config layer for the workflow
    t = time.monotonic()
    complete = [d for d in args.datasets
                if all(g["status"] in ("done", "exists") for g in done if g["dataset"] == d)]  # fmt: skip
    write_layer(config, out / "workflow-layer.yaml", complete or args.datasets)
    frames = write_scores(plan)
    phase("scores", f"{sum(len(f) for f in frames.values())} rows", t)
    tables = []
    for (d, tk, lv), frame in frames.items():
        lines, stats = dataset_table(d, lv, frame, done, out, Path(plan.config["paper_numbers"]), args.seed)
        tables.append((f"{d} {tk} {lv}: PSNR (dB, the paper's metric)", lines, stats))
    fit_done = [g for g in done if g["status"] == "done"]
    fit_rate = observed_rate(done)
    throughput = None
    if fit_done and fit_wall > 0:
        throughput = {"jobs": args.jobs, "rate": fit_wall / sum(g["work"] for g in fit_done)}
    workload = paper_workload()
    bench_part = bench_lines(bench, workload, {m: r for m, r in rates.items()}, fit_rate, throughput)
    (out / "fits.json").write_text(json.dumps(done, indent=1, default=str))
    elapsed = time.monotonic() - t0
    text = write_summary(out, facts, phases, tables, done, bench_part, cuda, args, elapsed)
    record = {
        "facts": facts, "phases": phases, "datasets": [s for _, _, s in tables], "fits": done, "cuda_tests": cuda,
        "bench_rates_s_per_step_512": {m: r * BENCH_SIZE**2 for m, r in rates.items()},
        "paper_workload": workload, "elapsed_s": round(elapsed, 1), "budget_s": 60 * args.budget_minutes,
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(record, indent=1, default=str))
    shutil.rmtree(out / "jobs", ignore_errors=True)
    sections = text.split("\n## ")
    print("\n" + "\n## ".join(x for x in sections if not x.startswith("Fit processes")), flush=True)
    log(f"done in {elapsed:.0f} s; everything is under {out}")
    if args.bundle:
        log.path = None  # run.log goes into the records
        notes = bundle(out, log)
        if notes:
            with open(out / "summary.md", "a") as fh:
                fh.write("\n" + "\n".join(f"Note: {n}." for n in notes) + "\n")
    failed = any(g["status"] == "failed" for g in done) or cuda.get("exit_code") not in (None, 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
