"""The run's scores (the workflow's score and score_es jobs, on what the run made), the config layer for the
workflow, and the summary: summary.md (a table per block: per image ours vs the released DIP outputs vs the paper,
ES-WMV, the block's baseline; the speed benchmark, the paper's projected GPU time) and summary.json, fits.json."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from reproduce_gpu.bench import bench_rates, bench_speed, paper_workload, projection
from reproduce_gpu.common import BENCH_SIZE, REPO, Run, fmt, quiet
from reproduce_gpu.config import write_layer
from reproduce_gpu.schedule import observed_rate

RELEASED_SCORES = "results/paper/scores/released"  # committed: the released outputs re-scored


# --- scores --------------------------------------------------------------------------------------------------------


def scores(run: Run, plan, done: list[dict]) -> dict:
    """The scores phase: workflow-layer.yaml for the blocks whose fits all ran (none: all), then :func:`score`."""
    t, args = time.monotonic(), run.args
    complete = [b for b in args.blocks
                if all(g["status"] in ("done", "exists") for g in done if tuple(g["key"]) == b.key)]  # fmt: skip
    write_layer(plan.config, run.out / "workflow-layer.yaml", complete or args.blocks)
    frames = score(plan)
    run.phase("scores", f"{sum(len(f) for f in frames.values())} rows", t)
    return frames


def made(job):
    """A score or score_es job of the plan cut down to the outputs this run made: a fit skipped or killed at the
    deadline has none, and its rows are left out (the workflow, which makes every output first, never has to)."""
    p, inp = job.params, job.input
    if job.rule == "score":
        kept = [i for i, gt in enumerate(inp["gt"]) if Path(gt).is_file()]
        params = {**p, "plan": [o for o in p["plan"] if Path(o["png"]).is_file()],
                  "images": [p["images"][i] for i in kept]}  # fmt: skip
        files = {role: [inp[role][i] for i in kept] for role in ("gt", "observation")}
    else:
        kept = [i for i, png in enumerate(inp["pngs"]) if Path(png).is_file()]
        params = {**p, "runs": [p["runs"][i] for i in kept]}
        files = {role: [inp[role][i] for i in kept] for role in ("pngs", "jsons")}
    return dataclasses.replace(job, params=params, input={**inp, **files})


def score(plan) -> dict[tuple, object]:
    """Score what exists with the workflow's job functions (:func:`dip.pipeline.jobs.scores.score` and
    :func:`~dip.pipeline.jobs.scores.score_es`, on the plan's jobs: :func:`made`): ``scores/ours/<d>/<t>_<lv>.csv``
    (DIP, the baseline) and ``scores/extra/<d>/<t>_<lv>_es.csv`` (dip_es). Returns {(d, t, lv): frame of all rows}."""
    import pandas as pd

    from dip.pipeline.jobs import scores as score_jobs

    frames = {}
    for d, t, lv in plan.experiment_keys():
        with quiet():
            parts = [score_jobs.score(made(plan.get("score", {"dataset": d, "task": t, "level": lv})))]
            if (d, t, lv) in plan.es_levels():
                parts.append(score_jobs.score_es(made(plan.es_score(d, t, lv))))
        frames[(d, t, lv)] = pd.concat(parts, ignore_index=True)
    return frames


# --- summary -------------------------------------------------------------------------------------------------------


def summary(run: Run, facts: dict, plan, frames: dict, done: list[dict], fit_wall: float, bench, cuda: dict) -> None:
    """The summary phase: fits.json, summary.md (also printed, but for its fit processes) and summary.json."""
    args, out = run.args, run.out
    tables = [block_table(plan, block, frames[block.key], done, args.seed) for block in args.blocks
              if block.key in frames]  # fmt: skip
    blocks = []
    for block in args.blocks:
        info = block_info(plan, block, args.seed)
        blocks.append(f"{block} ({info['preset']}, {info['steps']} steps, {', '.join(info['baselines']) or 'no'} "
                      "baseline)")  # fmt: skip
    fit_done = [g for g in done if g["status"] == "done"]
    throughput = None
    if fit_done and fit_wall > 0:
        throughput = {"jobs": args.jobs, "rate": fit_wall / sum(g["work"] for g in fit_done)}
    rates = bench_rates(bench)
    workload = paper_workload()
    bench_part = bench_lines(bench, workload, rates, observed_rate(done), throughput)
    (out / "fits.json").write_text(json.dumps(done, indent=1, default=str))
    elapsed = time.monotonic() - run.t0
    text = write_summary(out, facts, run.phases, blocks, tables, done, bench_part, cuda, args, elapsed)
    record = {
        "facts": facts, "phases": run.phases, "blocks": [s for _, _, s in tables], "fits": done, "cuda_tests": cuda,
        "bench_rates_s_per_step_512": {m: r * BENCH_SIZE**2 for m, r in rates.items()},
        "paper_workload": workload, "elapsed_s": round(elapsed, 1), "budget_s": 60 * args.budget_minutes,
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(record, indent=1, default=str))
    shutil.rmtree(out / "jobs", ignore_errors=True)
    sections = text.split("\n## ")
    print("\n" + "\n## ".join(x for x in sections if not x.startswith("Fit processes")), flush=True)
    run.log(f"done in {elapsed:.0f} s; everything is under {out}")


def psnr_cells(frame, reported, d: str, t: str, lv: str, images: list[str]):
    """``psnr(method, source, image)``: our PSNR (``source`` "ours"), that of the authors' released output
    (``"released"``, from results/paper/scores/released/) and the paper's printed per-image number (``"paper"``,
    where config/paper_numbers.yaml has one: gray11) of each of ``images``, as the paper table has them
    (:func:`dip.eval.tables.results_table`); None where there is none. And each row's mean over all the dataset's
    images ({(method, source): dB}: the released outputs', where the released scores have every image)."""
    import pandas as pd

    from dip.eval.tables import METHOD_LABELS, results_table
    from dip.tasks import parse_level

    released = REPO / RELEASED_SCORES / d / f"{t}_{lv}.csv"
    rows = [frame, pd.read_csv(released)] if released.is_file() else [frame]
    table = results_table(pd.concat(rows, ignore_index=True), reported, d, t, parse_level(t, lv), images=images)
    cells = table.iloc[:, : len(images)].set_axis(images, axis=1)

    def psnr(method: str | None, source: str, image: str) -> float | None:
        key = (METHOD_LABELS.get(method, method), source)
        if key not in cells.index or image not in cells.columns or pd.isna(cells.at[key, image]):
            return None
        return float(cells.at[key, image])

    return psnr, table.attrs["full_means"]


def level_text(task: str, level: float) -> str:
    if task == "inpaint":
        return f"{round(100 * level)}% of the pixels missing"
    return f"x{level:g}" if task == "sr" else f"sigma {level:g}"


def block_info(plan, block, seed: int = 0) -> dict:
    """What the plan fits for a block: preset, steps, its baselines (the cheap ones), whether ES-WMV is recorded."""
    from dip.presets import config_from_spec

    d, t, lv = block.key
    spec = plan.fit_spec(d, t, lv, seed)
    return {"preset": spec["preset"], "steps": config_from_spec(spec).iterations,
            "baselines": list(plan.experiments[(d, t)].get("baselines") or []), "es": block.key in plan.es_levels()}


def paper_mean(table, d: str, t: str, level: float, method: str, all_images: list[str]) -> float | None:
    """A dataset mean of config/paper_numbers.yaml: the printed one, else the mean of per-image numbers for all the
    dataset's images (gray11's Table 1), else None."""
    from dip.eval.scoring import select

    sel = select(table, d, t, level)
    sel = sel[sel["method"] == method]
    printed = sel[sel["image"] == "mean"]
    if len(printed):
        return float(printed["psnr"].iloc[0])
    per = sel[sel["image"].isin(all_images)]
    return float(per["psnr"].mean()) if len(per) == len(all_images) else None


def block_table(plan, block, frame, groups: list[dict], seed: int = 0):
    """A block's section of summary.md: its title; markdown lines comparing our DIP per image with the released DIP
    output and the paper (a per-image column where the paper prints them), ES-WMV's PSNR and step (where the plan
    records it), the block's own baseline (bicubic, biharmonic, nlm: ours and, where released, the authors'); the
    means; and the stats for summary.json. (One table's rows, read top to bottom; split, its columns would be
    passed around as a dozen arguments.)"""
    import pandas as pd

    from dip.eval.tables import DATASET_NAMES, METHOD_LABELS, load_paper_numbers, metric_label
    from dip.tasks import parse_level

    d, t, lv = key = block.key
    level, info, images = parse_level(t, lv), block_info(plan, block, seed), list(block.images)
    all_images = list(plan.images(d))
    base = info["baselines"][0] if info["baselines"] else None
    name = METHOD_LABELS.get(base, base)
    reported, released, _ = load_paper_numbers(plan.config["paper_numbers"])
    psnr, full_means = psnr_cells(frame, reported, d, t, lv, images)
    cols = ["image", "fit size", "DIP ours", "released DIP", "ours - released"]
    cols += ["paper DIP"] * any(psnr("dip", "paper", i) is not None for i in images)
    cols += ["DIP+ES (step)"] * info["es"]
    cols += [f"{name} ours"] * bool(base)
    cols += [f"released {name}"] * any(psnr(base, "released", i) is not None for i in images)
    cols += ["fit s", "fit"]

    group_of = {m: g for g in groups if tuple(g["key"]) == key for m in g["members"]}
    acc: dict[str, list] = {k: [] for k in ("ours", "rel", "diff", "paper", "paper_diff", "base")}
    rows = []
    for image in images:
        member = f"{image}_seed{seed}"
        g = group_of.get(member)
        ours, rel, pap = psnr("dip", "ours", image), psnr("dip", "released", image), psnr("dip", "paper", image)
        bas = psnr(base, "ours", image)
        diff = ours - rel if ours is not None and rel is not None else None
        for k, v, need in (("ours", ours, ours), ("rel", rel, diff), ("diff", diff, diff), ("paper", pap, ours),
                           ("paper_diff", None if None in (ours, pap) else ours - pap, ours), ("base", bas, bas)):
            if v is not None and need is not None:
                acc[k].append(v)
        step = None
        record = Path(plan.paths.restored(d, t, lv, "dip", image, seed, ".json"))
        if record.is_file():
            step = (json.loads(record.read_text()).get("early_stopping") or {}).get("detected_step")
        es = psnr("dip_es", "ours", image)
        seconds = frame[(frame["image"] == image) & (frame["method"] == "dip")]["seconds"]
        rows.append({
            "image": image, "fit size": "x".join(map(str, g["sizes"][g["members"].index(member)])) if g else "-",
            "DIP ours": fmt(ours), "released DIP": fmt(rel), "ours - released": fmt(diff, "+.2f"),
            "paper DIP": fmt(pap), "DIP+ES (step)": f"{fmt(es)} ({fmt(step, 'd')})" if es is not None else "-",
            f"{name} ours": fmt(bas), f"released {name}": fmt(psnr(base, "released", image)),
            "fit s": fmt(float(seconds.iloc[0]), ".0f") if len(seconds) and pd.notna(seconds.iloc[0]) else "-",
            "fit": (g or {}).get("status", "not planned"),
        })  # fmt: skip
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    rows.append({"image": f"**mean** ({len(acc['ours'])}/{len(images)})", "DIP ours": f"**{fmt(mean(acc['ours']))}**",
                 "released DIP": fmt(mean(acc["rel"])), "ours - released": f"**{fmt(mean(acc['diff']), '+.2f')}**",
                 "paper DIP": fmt(mean(acc["paper"])), f"{name} ours": fmt(mean(acc["base"]))})  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row.get(c, "") for c in cols) + " |" for row in rows]

    stats = {
        "block": "/".join(key), "dataset": d, "task": t, "level": lv, "images": len(images),
        "image_ids": images, "preset": info["preset"], "steps": info["steps"], "fitted": len(acc["ours"]),
        "dip_mean": mean(acc["ours"]), "released_dip_mean_same_images": mean(acc["rel"]),
        "mean_diff_vs_released": mean(acc["diff"]), "mean_diff_vs_paper_same_images": mean(acc["paper_diff"]),
        "baseline": base, "baseline_mean": mean(acc["base"]),
        "paper_reported_dip_mean": paper_mean(reported, d, t, level, "dip", all_images),
        "paper_reported_baseline_mean": paper_mean(reported, d, t, level, base, all_images) if base else None,
        "released_dip_mean": full_means.get(("dip", "released"), paper_mean(released, d, t, level, "dip", all_images)),
    }  # fmt: skip
    n = len(all_images)
    printed = [f"{label} {fmt(stats[k])}" for label, k in (("DIP", "paper_reported_dip_mean"),
                                                          (name, "paper_reported_baseline_mean")) if stats[k]]
    note = (f"Paper (CVPR 2018) mean over all {n} images: {', '.join(printed) or 'none'} (config/paper_numbers.yaml); "
            f"the released DIP outputs re-scored, all {n}: {fmt(stats['released_dip_mean'])}.")  # fmt: skip
    if len(acc["ours"]) == n and stats["paper_reported_dip_mean"] is not None:
        note += f" Our mean - paper: {stats['dip_mean'] - stats['paper_reported_dip_mean']:+.2f} dB."
    elif acc["paper_diff"]:
        note += f" Ours - paper on the {len(acc['paper_diff'])} image(s) fitted: {mean(acc['paper_diff']):+.2f} dB."
    part = "" if block.whole else f", {len(images)} of {n} images"
    title = (f"{'/'.join(key)}: {DATASET_NAMES.get(d, d)}, {level_text(t, level)}{part}; preset {info['preset']} "
             f"({info['steps']} steps); {metric_label(t)}")  # fmt: skip
    return title, lines + ["", note], stats


def bench_lines(bench: dict | None, workload: list[dict], rates: dict[str, float], fit_rate, throughput) -> list:
    """summary.md's speed section: bench_fit's s/step per mode, the paper profile's workload and its projected
    hours at each measured rate."""
    lines = []
    speed = [r for r in bench_speed(bench) if "s_per_step" in r]
    if speed:
        ref = {r["size"]: r["s_per_step"] for r in speed if r["mode"] == "reference"}
        lines += ["| size | mode | s/step | vs reference | peak MB |", "|---|---|---|---|---|"]
        for r in speed:
            base = ref.get(r["size"])
            ratio = f"{base / r['s_per_step']:.2f}x" if base else "-"
            peak = r.get("peak_mb", r.get("peak_rss_mb"))
            lines.append(f"| {r['size']} | {r['mode']} | {r['s_per_step']:.4f} | {ratio} | {fmt(peak, '.0f')} |")
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


def write_summary(out: Path, facts: dict, phases: list[dict], blocks: list[str], tables: list[tuple[str, list, dict]],
                  groups: list[dict], bench_part: list[str], cuda: dict, args, elapsed: float) -> str:
    gpu = facts.get("gpu") or "no GPU"
    commit = facts.get("git_commit") or ((facts.get("commit_file") or {}).get("text") or "unknown").splitlines()[0]
    head = [
        "# GPU reproduction" + (" (--tiny: CPU smoke test on crops; the numbers mean nothing)" if args.tiny else ""),
        "",
        f"- machine: {gpu}, {facts.get('cpu')} x{facts.get('cpu_count')}; torch {facts.get('torch')} "
        f"(CUDA {facts.get('torch_cuda')}, cuDNN {facts.get('cudnn')}), Python {facts.get('python')}",
        f"- code: {commit}; code sha256 {facts.get('code_sha256', '')[:16]}",
        f"- blocks, in priority order (as time allows): {'; '.join(blocks)}",
        f"- settings: {'tiny: width 8, few steps' if args.tiny else 'each block as config/paper.yaml'}, "
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
                    f"| {g['status']} | {fmt(g.get('estimate_s'), '.0f')} | {fmt(g.get('seconds'), '.0f')} |")
    body += ["", "## Speed (bench_fit.py) and the paper's GPU time", "", *bench_part]
    text = "\n".join(head + body) + "\n"
    (out / "summary.md").write_text(text)
    return text
