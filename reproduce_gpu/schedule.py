"""(c) The DIP fits: the plan's fit jobs as process-sized groups (packs of one size, lone fits), block by block in
the run's priority order (``--blocks``), the budget rule that decides which start (the first in order that ends
inside the budget: a block that no longer fits lets a cheaper later one start), the scheduler that runs them
``--jobs`` at a time, and the worker that runs one group's jobs through the workflow's job functions
(:func:`dip.pipeline.jobs.run`)."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from reproduce_gpu.bench import bench_rates
from reproduce_gpu.common import BENCH_SIZE, ENTRY, REPO, Run, child_env, kill_group

# Seconds per (step x output pixel) when nothing has been measured yet: fp32, 128 channels (BENCHMARKS.md: ~5.7 s a
# step at 512 px on 2 CPU cores; a GPU guess of 40 ms, pessimistic for an H100).
FALLBACK_RATE = {"cuda": 0.040 / BENCH_SIZE**2, "cpu": 6.0 / BENCH_SIZE**2}
STARTUP_S = {"cuda": 20.0, "cpu": 8.0}  # a fit process: interpreter, torch, device, cuDNN autotuning


def run_fits(run: Run, plan, bench: dict | None) -> tuple[list[dict], float]:
    """The fits phase: every DIP fit of the plan that fits in the budget, starting at the benchmark's rate (the
    paper's net only) or a guess. Returns the groups (with their status and times) and the phase's seconds."""
    t, args = time.monotonic(), run.args
    rates = bench_rates(bench)
    fit_mode = "ours-cl-bf16" if args.precision == "bf16" else "ours-cl"
    same_net = not (args.tiny or args.width)  # the benchmark times the paper's 128-channel net
    rate0 = (rates.get(fit_mode) if same_net else None) or FALLBACK_RATE["cuda" if run.device == "cuda" else "cpu"]
    groups = fit_groups(plan, args.pack_max, order=[block.key for block in args.blocks])
    run.log(f"fits: {sum(len(g['members']) for g in groups)} in {len(groups)} process(es); start rate "
            f"{rate0 * BENCH_SIZE**2:.4f} s/step at {BENCH_SIZE} px "
            f"({fit_mode if same_net and fit_mode in rates else 'a guess'})")  # fmt: skip
    progress = plan.config.get("progress")
    done = schedule(groups, args, run.out, run.device, rate0, run.work_end, run.log, progress=progress)
    wall = time.monotonic() - t
    counts: dict[str, int] = {}
    for g in done:
        counts[g["status"].split(":")[0]] = counts.get(g["status"].split(":")[0], 0) + len(g["members"])
    run.phase("fits", ", ".join(f"{n} {s}" for s, n in counts.items()), t)
    return done, wall


def image_size(path) -> tuple[int, int]:
    """(width, height) of an image file, without decoding it."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def fit_groups(plan, pack_max: int, order=None) -> list[dict]:
    """The DIP fits of the plan as process-sized groups: packs of fits of one size (the degraded inputs' size; at
    most ``pack_max``) and lone fits, block by block in ``order`` (the blocks' (dataset, task, level) keys in
    priority order; default: the plan's), the costliest first within a block. Each group: name, kind (pack/lone),
    dataset, key (dataset, task, level), spec/inputs/outputs, members, sizes, iterations, pixels, work, and the jobs
    its process runs (``jobs``: a lone fit's fit_dip job of the plan; a pack's fit_dip_pack job, then an unpack_fit
    job per fit, as the workflow plans them with pack_fits)."""
    from dip.pipeline.packs import plan_packs
    from dip.pipeline.plan import Job
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
            name = f"{d}_{t}_{lv}_pack{n}"
            spec = plan.fit_spec(d, t, lv, seed=None) | {"members": [{"image": i, "seed": s} for i, s in pack]}
            inputs: dict[str, list[str]] = {}
            for key in pack:
                for role, path in by_fit[key].input.items():
                    inputs.setdefault(role, []).append(path)
            folder = plan.paths.gpu_pack(name)
            wc = {"dataset": d, "task": t, "level": lv, "pack": f"pack{n}"}
            fit = Job("fit_dip_pack", [folder], inputs, {"spec": spec}, wc)
            unpack = [Job("unpack_fit", by_fit[key].output, {"pack": folder}, wildcards=by_fit[key].wildcards)
                      for key in pack]  # fmt: skip
            groups.append({
                "name": name, "kind": "pack", "dataset": d, "key": [d, t, lv], "spec": spec,
                "inputs": inputs, "outputs": [dict(by_fit[key].output) for key in pack],
                "members": [f"{i}_seed{s}" for i, s in pack], "sizes": [list(size[key]) for key in pack],
                "jobs": [job.to_json() for job in (fit, *unpack)],
            })  # fmt: skip
        for key, job in by_fit.items():
            if key not in packed:
                groups.append({
                    "name": f"{d}_{t}_{lv}_{key[0]}_seed{key[1]}", "kind": "lone", "dataset": d, "key": [d, t, lv],
                    "spec": job.params["spec"], "inputs": dict(job.input), "outputs": [dict(job.output)],
                    "members": [f"{key[0]}_seed{key[1]}"], "sizes": [list(size[key])], "jobs": [job.to_json()],
                })  # fmt: skip
    for g in groups:
        g["iterations"] = config_from_spec(g["spec"]).iterations
        g["pixels"] = sum(w * h for w, h in g["sizes"])
        g["work"] = g["iterations"] * g["pixels"]  # step x output pixels
    rank = {tuple(key): i for i, key in enumerate(order or plan.experiment_keys())}
    return sorted(groups, key=lambda g: (rank.get(tuple(g["key"]), len(rank)), -g["work"]))


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
    """One group in this process (a child of the scheduler): its jobs in order, each as the workflow runs a job
    (:func:`dip.pipeline.jobs.run`: progress lines in the log, the config's; no checkpoints here, a fit of this run
    that is stopped is not resumed); a pack's folder is removed once its fits are copied out."""
    from dip.pipeline.jobs import run
    from dip.pipeline.plan import Job

    task = json.loads(Path(job_file).read_text())
    settings = {"checkpoint_minutes": 0, "progress": task.get("progress")}
    jobs = [Job.from_json(data) for data in task["jobs"]]
    for job in jobs:
        for path in job.outputs:  # as Snakemake makes an output's folder
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        run(job, threads=task["threads"], config=settings)
    for job in jobs:
        if job.rule == "fit_dip_pack":
            shutil.rmtree(job.outputs[0])
    return 0


def _finished(running: dict, done: list[dict], now: float, log) -> None:
    """Move the groups whose process has ended from ``running`` to ``done`` (status, seconds, mean sharing)."""
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


def _launch(g: dict, args, out: Path, progress: dict | None):
    """Start ``g``'s process (``reproduce_gpu/run.py --worker``, its own session, output in its log)."""
    g["log"] = str(out / "logs" / "fit" / "/".join(g["key"]) / f"{g['name']}.log")
    Path(g["log"]).parent.mkdir(parents=True, exist_ok=True)
    job_file = out / "jobs" / f"{g['name']}.json"
    job_file.write_text(json.dumps({"jobs": g["jobs"], "threads": args.threads, "progress": progress}, indent=1))
    fh = open(g["log"], "w")
    cmd = [sys.executable, str(ENTRY), "--worker", str(job_file)]
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                            env=child_env(args.threads))  # fmt: skip
    return proc, fh


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
        _finished(running, done, now, log)
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
            proc, fh = _launch(g, args, out, progress)
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
        for key in ("t0", "sharing_sum", "sharing_n", "jobs"):
            g.pop(key, None)
    shutil.rmtree(out / "packs", ignore_errors=True)
    return done
