"""(d) The speed benchmark (benchmarks/bench_fit.py, alone on the device: its s/step also sizes the fits'
estimates) and the workload of the paper profile that its rates project."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from reproduce_gpu.common import BENCH_SIZE, REPO, Run, child_env, run_capped

SIZE_MULTIPLE = 32  # what dip.restore crops every fit's output to
FIT_MARGIN_S = {False: 150.0, True: 30.0}  # the benchmark's cap leaves the fits this much (full, --tiny)


def speed(run: Run) -> dict | None:
    """The benchmark phase: bench_fit.py capped so that the fits keep at least FIT_MARGIN_S of the budget; its
    record (bench_fit.json), None if it was skipped or gave none."""
    t, args = time.monotonic(), run.args
    if args.no_bench:
        run.phase("benchmark", "skipped (--no-bench)", t)
        return None
    cap = min(args.bench_timeout, max(0.0, run.work_end - time.monotonic() - FIT_MARGIN_S[args.tiny]))
    if cap < 15:
        run.phase("benchmark", "skipped (budget)", t)
        return None
    bench = run_bench(args, run.out, run.device, cap, run.log)
    ok = bench and bench["exit_code"] == 0 and not any("error" in r for r in bench_speed(bench))
    run.phase("benchmark", "ok" if ok else "incomplete (bench_fit.log)", t)
    return bench


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


def crop32(width: int, height: int) -> int:
    return (width // SIZE_MULTIPLE * SIZE_MULTIPLE) * (height // SIZE_MULTIPLE * SIZE_MULTIPLE)


def paper_workload() -> list[dict]:
    """Every DIP fit of config/paper.yaml's tables and Fig. 2 curves, summed per (dataset, task, level): fits,
    steps (the preset's, from the config), output megapixels (the GT cropped to multiples of 32, from the manifest's
    size column) and step x Mpx. The paper's other experiments (JPEG, the figures) are not counted."""
    from reproduce_gpu.config import paper_config
    from dip.pipeline.plan import build_plan
    from dip.presets import config_from_spec
    from dip.tasks import LEARNING_CURVE_KINDS, level_label

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
        kinds = spec.get("kinds") or tuple(LEARNING_CURVE_KINDS)
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
