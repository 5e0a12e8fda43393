"""The per-stage planners of the workflow's plan (torch-free): the jobs of each stage, added to a
:class:`~dip.pipeline.plan.Plan` with :meth:`~dip.pipeline.plan.Plan.add`.

:func:`plan_jobs` plans them in the data path's order: the downloads, per experiment level the degraded inputs
(``degrade_<task>``), the DIP fits (``fit_dip``; with ``pack_fits`` > 1 ``fit_dip_pack`` and ``unpack_fit``), the
baselines and the score; then the released outputs' scores and check, Fig. 2's learning curves, the paper's other
experiments, the DIP + early stop scores and table, the tables, figures and target rules. Each planner reads what the
config asks for from the plan (its experiments, the images and seeds the selection keeps, specs, resources, packs)
and names every file with its :class:`~dip.pipeline.layout.Layout` (``plan.paths``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dip.data.benchmarks import BENCHMARKS, embedded_channels
from dip.tasks import Level

if TYPE_CHECKING:
    from dip.pipeline.request import Request

__all__ = ["plan_jobs", "score_plan", "grid_plan"]


def plan_jobs(plan: Request) -> None:
    """Every job of the workflow, stage by stage, in the data path's order."""
    for key, files in plan.download_groups.items():
        plan.add(f"download_{key}", [plan.paths.resource(f) for f in files])
    if plan.experiment_data:
        plan.add("download_experiment_data", [plan.paths.resource(f) for f in plan.experiment_data])
    for exp in plan.exps:
        for level in plan.exp_levels(exp):
            plan_inputs(plan, exp, level)
            plan_fits(plan, exp, level)
            plan_baselines(plan, exp, level)
            plan_score(plan, exp, level)
    plan_released(plan)
    plan_learning_curves(plan)
    plan_experiments(plan)
    plan_early_stopping(plan)
    plan_reports(plan)


# --- stage 2: the degraded inputs ----------------------------------------------------------------------------------


def plan_inputs(plan: Request, exp: Mapping, level: Level):
    """degrade_<task>: one per image."""
    d, t, lv, value = exp["dataset"], exp["task"], level.label, level.value
    bench, spec = plan.benchmark(d), plan.dataset(d)
    for image in plan.level_images(d, t, lv):
        output = plan.paths.degraded(d, t, lv, image)
        files = {}
        if bench is not None:
            files["gt"] = plan.paths.resource(bench.gt_file(value, image))
            if bench.input_file(value, image):
                files["released"] = plan.paths.resource(bench.input_file(value, image))
        params = dict(source=spec["source"], dataset=d, benchmark=getattr(bench, "name", None), image=image)
        params |= dict(size=spec.get("size"), task=t, level=value, seed=plan.config.get("degrade_seed", 0))
        plan.add(f"degrade_{t}", output, files, {"spec": params}, {"dataset": d, "level": lv, "image": image})


# --- stage 3: the fits and the baselines ---------------------------------------------------------------------------


def plan_fits(plan: Request, exp: Mapping, level: Level):
    """fit_dip per image and seed; with pack_fits > 1, fit_dip_pack per pack and unpack_fit per packed fit."""
    d, t, lv = exp["dataset"], exp["task"], level.label
    for image in plan.level_images(d, t, lv):
        for method, seed in plan.methods(exp, lv, image):
            if method != "dip":
                continue
            wc = {"dataset": d, "task": t, "level": lv, "image": image, "seed": str(seed)}
            output = plan.fit_outputs(d, t, lv, image, seed)
            packed = (d, t, lv, image, seed) in plan.pack_of
            # A packed fit's files come from unpack_fit, yet fit_dip answers for it too: Snakemake evaluates every
            # rule that could make a file before its ruleorder picks one.
            spec = {"spec": plan.fit_spec(d, t, lv, seed)}
            inputs = plan.paths.task_inputs(d, t, lv, image)
            resources = plan.fit_job_resources(spec["spec"], plan.source_size(d, t, lv, image))
            made_from = plan.degradation(d, t, lv, [image])
            plan.add("fit_dip", output, inputs, spec, wc, resources, listed=not packed, made_from=made_from)
            if packed:
                plan.add("unpack_fit", output, {"pack": plan.pack_folder(wc)}, wildcards=wc)
    for (pd, pt, plv, pack), members in plan.packs.items():
        if (pd, pt, plv) != (d, t, lv):
            continue
        inputs = {}
        for image, _seed in members:
            for role, path in plan.paths.task_inputs(d, t, lv, image).items():
                inputs.setdefault(role, []).append(path)
        spec = plan.fit_spec(d, t, lv, seed=None) | {"members": [{"image": i, "seed": s} for i, s in members]}
        # a pack asks for what its fits would ask for one after another (time, memory): an upper bound
        keys = [{"dataset": d, "task": t, "level": lv, "image": i, "seed": str(s)} for i, s in members]
        mem = sum(plan.get("fit_dip", key).resources["mem_mb"] for key in keys)
        resources = plan.fit_resources | {"mem_mb": mem, "runtime": plan.fit_resources["runtime"] * len(members)}
        output = [plan.paths.pack(d, t, lv, pack)]
        wc = {"dataset": d, "task": t, "level": lv, "pack": pack}
        made_from = plan.degradation(d, t, lv, [i for i, _ in members])
        plan.add("fit_dip_pack", output, inputs, {"spec": spec}, wc, resources, made_from=made_from)


def plan_baselines(plan: Request, exp: Mapping, level: Level):
    """baseline per image and baseline (with the first seed)."""
    d, t, lv = exp["dataset"], exp["task"], level.label
    for image in plan.level_images(d, t, lv):
        for method, seed in plan.methods(exp, lv, image):
            if method == "dip":
                continue
            options = dict((plan.config.get("baseline_settings") or {}).get(method) or {})
            spec = {"name": method, "task": t, "level": level.value, "seed": int(seed), "options": options}
            output = {"png": plan.paths.restored(d, t, lv, method, image, seed)}
            output["json"] = plan.paths.restored(d, t, lv, method, image, seed, ".json")
            wc = {"dataset": d, "task": t, "level": lv, "method": method, "image": image, "seed": str(seed)}
            inputs = plan.paths.task_inputs(d, t, lv, image)
            if t == "sr" and method == "bicubic":  # the SR literature's bicubic is made from the full-frame GT
                inputs["gt"] = plan.paths.degraded(d, t, lv, image)["gt"]
            made_from = plan.degradation(d, t, lv, [image])
            plan.add("baseline", output, inputs, {"spec": spec}, wc, plan.baseline_resources, made_from=made_from)


# --- stage 4: the scores, ours and the released outputs' -----------------------------------------------------------


def score_plan(plan: Request, exp: Mapping, lv: str) -> list[dict]:
    """Every output of one (dataset, task, level) to score: image, method, seed, png, json (and the raw DIP output,
    scored when the fit averaged)."""
    d, t = exp["dataset"], exp["task"]
    rows = []
    for image in plan.level_images(d, t, lv):
        for method, seed in plan.methods(exp, lv, image):
            record = plan.paths.restored(d, t, lv, method, image, seed, ".json")
            png = plan.paths.restored(d, t, lv, method, image, seed)
            rows.append({"image": image, "method": method, "seed": seed, "png": png, "json": record})
            if method == "dip":
                raw = plan.fit_outputs(d, t, lv, image, seed)["raw"]
                raw = {"image": image, "method": "dip_raw", "seed": seed, "png": raw, "json": record}
                rows.append(raw | {"only_if_averaged": True})
    return rows


def plan_score(plan: Request, exp: Mapping, level: Level):
    """score: every output of one level (:func:`score_plan`) against its ground truth."""
    d, t, lv = exp["dataset"], exp["task"], level.label
    images, rows = plan.level_images(d, t, lv), score_plan(plan, exp, lv)
    inputs = {
        "gt": [plan.paths.degraded(d, t, lv, i)["gt"] for i in images],
        "observation": [plan.paths.degraded(d, t, lv, i)["observation"] for i in images],
        "outputs": sorted({p["png"] for p in rows} | {p["json"] for p in rows}),
    }
    params = {"plan": rows, "level": level.value, "images": images}
    output = [plan.paths.scores(d, t, lv)]
    plan.add("score", output, inputs, params, {"dataset": d, "task": t, "level": lv})


def plan_released(plan: Request):
    """score_released per released level, released_check, the `released` target."""
    for (d, t, lv), output in zip(plan.released_keys(), plan.released_scores()):
        value = plan.level(t, lv).value
        files = [plan.paths.resource(f) for f in BENCHMARKS[d].all_files(value)]
        params = {"dataset": d, "level": value}
        plan.add("score_released", [output], files, params, {"dataset": d, "task": t, "level": lv})
    check = plan.paths.released_check()
    inputs = {"scores": plan.released_scores(), "paper": plan.config["paper_numbers"]}
    # only what this run re-scores is checked (a layered config may turn benchmarks or levels off)
    checked = {name: [float(v) for v in levels] for name, levels in plan.released.items() if levels}
    plan.add("released_check", check, inputs, {"datasets": checked})
    plan.add("released", [], plan.released_scores() + [check["md"]])


# --- Fig. 2's learning curves and the paper's other experiments ----------------------------------------------------


def plan_learning_curves(plan: Request):
    """learning_curve per kind of Fig. 2, figure_learning_curves."""
    if not plan.learning:
        return
    d, image = plan.learning["dataset"], plan.learning["image"]
    bench, ds, spec = plan.benchmark(d), plan.dataset(d), dict(plan.learning.get("dip") or {})
    inputs = {} if bench is None else {"image": plan.paths.resource(bench.gt_file(bench.levels[0], image))}
    if bench is None:
        size = (ds["size"], ds["size"], embedded_channels(image)) if ds.get("size") else None
    else:  # counted as colour (3 channels): the larger request if the image is grey
        size = plan.manifest.sizes.get(bench.gt_file(bench.levels[0], image)) if plan.manifest else None
        size = (*size[:2], 3) if size else None
    for kind, curve in zip(plan.learning_kinds, plan.learning_curve_files()):
        params = dict(source=ds["source"], benchmark=getattr(bench, "name", None), image=image, size=ds.get("size"))
        params |= dict(kind=kind, seed=int(plan.learning.get("seed", 0)), preset=plan.preset(spec, "denoise", 25))
        params |= dict(width=spec.get("width"), settings=dict(spec.get("settings") or {}))
        wc = {"dataset": d, "image": image, "kind": kind}
        plan.add("learning_curve", [curve], inputs, {"spec": params}, wc, plan.fit_job_resources(params, size))
    plan.add("figure_learning_curves", plan.paths.figure("learning_curves"), plan.learning_curve_files())


def plan_experiments(plan: Request):
    """experiment_<name> (architectures: experiment_architecture per network, then experiment_architectures) and
    experiment_<name>_report per experiment of ``paper_experiments:``."""
    for name in plan.experiment_names:
        record, spec, inputs = (
            plan.experiment_record(name),
            plan.experiment_spec(name),
            plan.experiment_inputs(name),
        )
        if name == "architectures":
            for arch in plan.architectures:
                output = plan.paths.architecture(arch)
                wc, resources = {"arch": arch}, plan.fit_resources
                plan.add("experiment_architecture", output, inputs, {"spec": spec}, wc, resources)
            output = dict(zip(("gt", "input"), plan.experiment_outputs(name))) | {"record": record}
            plan.add("experiment_architectures", output, inputs | plan.architecture_outputs(), {"spec": spec})
        else:
            output = plan.experiment_outputs(name) + [record]
            plan.add(f"experiment_{name}", output, inputs, {"name": name, "spec": spec}, {}, plan.fit_resources)
        inputs = plan.experiment_outputs(name) + [record]
        plan.add(f"experiment_{name}_report", plan.experiment_report(name), inputs)


def plan_early_stopping(plan: Request):
    """score_es_<dataset>_<task>_<level>: the DIP + early stop rows of one level; early_stop_table."""
    if not plan.es_keys:
        return
    for (d, t, lv), output in zip(plan.es_levels(), plan.es_scores()):
        runs = [(k[3], k[4]) for k in plan.es_keys if k[:3] == (d, t, lv)]
        inputs = {
            "gt": [plan.paths.degraded(d, t, lv, i)["gt"] for i in plan.level_images(d, t, lv)],
            "pngs": [plan.fit_outputs(d, t, lv, i, s)["es"] for i, s in runs],
            "jsons": [plan.paths.restored(d, t, lv, "dip", i, s, ".json") for i, s in runs],
        }
        params = {"dataset": d, "task": t, "images": plan.level_images(d, t, lv), "runs": runs}
        params["level"] = plan.level(t, lv).value
        plan.add(f"score_es_{d}_{t}_{lv}", [output], inputs, params)
    table = plan.paths.early_stopping_table()
    # the PSNRs of the tables (their DIP and DIP + early stop rows), the records for the rest
    scores = [plan.paths.scores(d, t, lv) for d, t, lv in plan.es_levels()] + plan.es_scores()
    records = [plan.paths.restored(d, t, lv, "dip", i, s, ".json") for d, t, lv, i, s in plan.es_keys]
    plan.add("early_stop_table", table, {"records": records, "scores": scores})


# --- stage 5: tables, figures, the targets -------------------------------------------------------------------------


def grid_plan(plan: Request, d: str, t: str, lv: str) -> list[dict]:
    """Panels of an image grid: per image the GT, the degraded input, each method's output (its first seed):
    ``(method, path, seed)``, seed None for the GT and the input."""
    n = (plan.config.get("figures") or {}).get("grid_max_images", 4)
    rows = []
    for image in plan.level_images(d, t, lv)[:n]:
        made = plan.paths.degraded(d, t, lv, image)
        panels = [("gt", made["gt"], None), ("input", made["observation"], None)]
        seen = set()
        for method, seed in plan.methods(plan.experiments[(d, t)], lv, image):
            if method not in seen:
                seen.add(method)
                panels.append((method, plan.paths.restored(d, t, lv, method, image, seed), seed))
        rows.append({"image": image, "panels": panels})
    return rows




def plan_reports(plan: Request):
    """metrics, a table per level (ours and released), the figures, the target rules."""
    ours = [plan.paths.scores(d, t, lv) for d, t, lv in plan.experiment_keys()] + plan.es_scores()
    plan.add("metrics", [plan.paths.metrics], {"ours": ours, "released": plan.released_scores()})
    for d, t, lv in sorted(set(plan.experiment_keys()) | set(plan.released_keys())):
        output = plan.paths.table(plan.paths.level_key(d, t, lv))
        inputs = {"scores": plan.table_scores(d, t, lv), "paper": plan.config["paper_numbers"]}
        plan.add("table", output, inputs, {"level": plan.level(t, lv).value}, {"dataset": d, "task": t, "level": lv})
    figures = plan.experiment_keys() + [k for k in plan.released_keys() if k[:2] not in plan.experiments]
    for d, t, lv in dict.fromkeys(figures):
        wc = {"dataset": d, "task": t, "level": lv}
        inputs = {"scores": plan.table_scores(d, t, lv), "paper": plan.config["paper_numbers"]}
        output = plan.paths.figure(plan.paths.figure_key("psnr", d, t, lv))
        plan.add("figure_psnr", output, inputs, {"level": plan.level(t, lv).value}, wc)
    for d, t, lv in dict.fromkeys(plan.experiment_keys()):
        wc, grid = {"dataset": d, "task": t, "level": lv}, grid_plan(plan, d, t, lv)
        inputs = {"scores": plan.table_scores(d, t, lv), "images": [p for row in grid for _, p, _ in row["panels"]]}
        params = {"plan": grid, "level": plan.level(t, lv).value}
        plan.add("figure_grid", plan.paths.figure(plan.paths.figure_key("grid", d, t, lv)), inputs, params, wc)
        exp = plan.experiments[(d, t)]
        if t == "denoise" and exp.get("run_dip", True):
            seed = plan.seeds(exp)[0]
            images = [i for i in plan.level_images(d, t, lv) if ("dip", seed) in plan.methods(exp, lv, i)]
            inputs = {
                "traces": [plan.paths.restored(d, t, lv, "dip", i, seed, ".json") for i in images],
                "scores": plan.paths.scores(d, t, lv),
            }
            output, params = plan.paths.figure(plan.paths.figure_key("psnr_curves", d, t, lv)), {"images": images}
            plan.add("figure_psnr_curves", output, inputs, params, {"dataset": d, "level": lv})
    plan.add("experiments", [], plan.experiment_targets())
    plan.add("all", [], plan.final_targets())
