# Shared helpers: config validation, the experiment plan (which jobs exist), input functions and targets.
# Only this file defines functions (snakemake --lint); the stage files hold rules only.

import math
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

try:  # the installed package (pip install -e .) or, in a plain checkout, the one next to the Snakefile
    import dip
except ImportError:
    sys.path.insert(0, workflow.basedir)

from dip.fit.stacked import plan_packs
from dip.data.benchmarks import (
    BENCHMARKS,
    level_label,
    parse_level,
    read_manifest,
    embedded_channels,
    read_manifest_sizes,
)

validate(config, schema="../schemas/config.schema.yaml")

R = config.get("results_dir", "results").rstrip("/")
RES = config.get("resources_dir", "resources").rstrip("/")
TASKS = ("denoise", "sr", "inpaint")
BASELINE_NAMES = ("bicubic", "no_prior", "tv_prior", "cbm3d", "nlm", "biharmonic")
BASELINE_TASKS = {
    "bicubic": ("sr",),
    "no_prior": ("sr", "inpaint", "denoise"),
    "tv_prior": ("sr", "inpaint", "denoise"),
    "cbm3d": ("denoise",),
    "nlm": ("denoise",),
    "biharmonic": ("inpaint",),
}


def res(path):
    """A path under the configured results folder."""
    return f"{R}/{path}"


def res_resource(rel):
    """A downloaded benchmark file, laid out under resources_dir as under the download base URL."""
    return f"{RES}/{rel}"


# --- datasets and experiments ---------------------------------------------------------------------------------------


def _dataset_spec(name):
    if name not in config["datasets"]:
        raise ValueError(
            f"config: dataset {name!r} is not defined under `datasets:` (defined: {', '.join(config['datasets'])})"
        )
    return config["datasets"][name]


def benchmark_of(dataset):
    """The dip.data.benchmarks.Benchmark of a benchmark dataset, None for embedded photos."""
    spec = _dataset_spec(dataset)
    if spec["source"] != "benchmark":
        return None
    if dataset not in BENCHMARKS:
        raise ValueError(
            f"config: a benchmark dataset is named after its benchmark; {dataset!r} is none of {', '.join(BENCHMARKS)}"
        )
    return BENCHMARKS[dataset]


def images_of(dataset):
    spec = _dataset_spec(dataset)
    bench = benchmark_of(dataset)
    if bench is None:
        if not spec.get("images"):
            raise ValueError(
                f"config: embedded dataset {dataset!r} needs a list of `images`"
            )
        return list(spec["images"])
    images = list(spec.get("images") or bench.images)
    unknown = [i for i in images if i not in bench.images]
    if unknown:
        raise ValueError(
            f"config: dataset {dataset!r}: unknown image(s) {unknown} (known: {', '.join(bench.images)})"
        )
    return images


def _check_experiments():
    seen = set()
    for exp in config["experiments"]:
        key = (exp["dataset"], exp["task"])
        if key in seen:
            raise ValueError(
                f"config: two experiments for dataset {key[0]!r} and task {key[1]!r}; merge them"
            )
        seen.add(key)
        bench = benchmark_of(exp["dataset"])
        images_of(exp["dataset"])
        if bench is not None and bench.task != exp["task"]:
            raise ValueError(
                f"config: benchmark {bench.name!r} is a {bench.task} benchmark, not {exp['task']}"
            )
        for level in exp["levels"]:
            level_label(exp["task"], level)  # raises on a bad level
            if bench is not None:
                bench.folder(level)
        for name in exp.get("baselines", []):
            if exp["task"] not in BASELINE_TASKS[name]:
                raise ValueError(
                    f"config: baseline {name!r} does not apply to {exp['task']!r}"
                )


_check_experiments()
EXPERIMENTS = {(e["dataset"], e["task"]): e for e in config["experiments"]}
PUBLISHED = {
    name: list(levels) for name, levels in (config.get("published") or {}).items()
}
for _name, _levels in PUBLISHED.items():
    if _name not in BENCHMARKS:
        raise ValueError(
            f"config: published: unknown benchmark {_name!r} (known: {', '.join(BENCHMARKS)})"
        )
    for _level in _levels:
        BENCHMARKS[_name].folder(_level)
LEARNING = config.get("learning_curves") or None
FIT_RES = {
    "threads": 1,
    "mem_mb": 2000,
    "runtime": 60,
    "gpu": 0,
    **config.get("fit_resources", {}),
}
BASE_RES = {
    "threads": 1,
    "mem_mb": 2000,
    "runtime": 30,
    "gpu": 0,
    **config.get("baseline_resources", {}),
}


def experiment(wildcards):
    return EXPERIMENTS[(wildcards.dataset, wildcards.task)]


def task_of(wildcards):
    """The task of a job: its `task` wildcard, or what its level label says (x4: sr, sigma25: denoise, ...)."""
    if "task" in wildcards.keys():
        return wildcards.task
    label = wildcards.level
    return (
        "sr"
        if label.startswith("x")
        else "denoise" if label.startswith("sigma") else "inpaint"
    )


def level_value(wildcards):
    """The numeric level (factor, sigma or missing fraction) of the `level` wildcard (x4, sigma25, missing50)."""
    return parse_level(task_of(wildcards), wildcards.level)


def seeds_of(exp):
    return list(exp.get("seeds") or [0])


def methods_of(exp):
    """(method, seed) pairs of an experiment: DIP for every seed, baselines with the first seed."""
    seeds = seeds_of(exp)
    pairs = [("dip", s) for s in seeds] if exp.get("run_dip", True) else []
    pairs += [(b, seeds[0]) for b in exp.get("baselines", [])]
    return pairs


def experiment_keys():
    """(dataset, task, level label) of every experiment level."""
    return [
        (e["dataset"], e["task"], level_label(e["task"], lv))
        for e in config["experiments"]
        for lv in e["levels"]
    ]


# --- downloads ------------------------------------------------------------------------------------------------------


def _download_groups():
    """One download job per benchmark folder the config needs: {key: [relative paths]}."""
    needed = {}
    for exp in config["experiments"]:
        bench = benchmark_of(exp["dataset"])
        if bench is not None:
            for lv in exp["levels"]:
                needed[(bench.name, level_label(bench.task, lv))] = (bench, lv)
    if LEARNING:
        bench = benchmark_of(LEARNING["dataset"])
        if bench is not None:
            lv = bench.levels[0]
            needed[(bench.name, level_label(bench.task, lv))] = (bench, lv)
    for name, levels in PUBLISHED.items():
        bench = BENCHMARKS[name]
        for lv in levels:
            needed[(name, level_label(bench.task, lv))] = (bench, lv)
    return {
        f"{name}_{label}": bench.all_files(lv)
        for (name, label), (bench, lv) in sorted(needed.items())
    }


DOWNLOAD_GROUPS = _download_groups()
MANIFEST = {}
if DOWNLOAD_GROUPS:
    import pandas as pd

    _manifest_path = config.get("manifest", "config/manifest/benchmarks.tsv")
    validate(
        pd.read_csv(_manifest_path, sep="\t", comment="#", dtype=str),
        schema="../schemas/manifest.schema.yaml",
    )
    MANIFEST = read_manifest(_manifest_path)
for _files in DOWNLOAD_GROUPS.values():
    _missing = [f for f in _files if f not in MANIFEST]
    if _missing:
        raise ValueError(
            f"manifest {config.get('manifest')}: no checksum for {_missing[:3]} ..."
        )


def checksums(files):
    return {f: MANIFEST[f] for f in files}


# --- packing fits (pack_fits > 1) -----------------------------------------------------------------------------------
# Fits of one (dataset, task, level) whose images have one size run together in one job and one process
# (dip.restore.restore_many -> dip.fit.stacked.fit_many), written to restored/.../dip_packs/packN/; `unpack_fit` then
# copies each fit's files to the place a lone fit writes them, so nothing downstream knows the difference. Sizes
# come from the config (embedded photos) or the manifest's size column (benchmarks): the DAG is known before any
# download.

MANIFEST_SIZES = (
    read_manifest_sizes(config.get("manifest", "config/manifest/benchmarks.tsv"))
    if DOWNLOAD_GROUPS
    else {}
)


def _source_size(dataset, task, level, image):
    """(width, height[, channels]) of the image a fit restores, None if not known before downloading it."""
    bench = benchmark_of(dataset)
    if bench is None:  # scikit-image photos, resized to squares: colour or grey by name
        size = _dataset_spec(dataset).get("size")
        return (size, size, embedded_channels(image)) if size else None
    size = MANIFEST_SIZES.get(bench.gt_file(parse_level(task, level), image))
    # SR benchmarks are read as RGB whatever the file holds (a grey GT becomes 3 channels)
    if size is not None and bench.read_mode == "rgb":
        size = (*size[:2], 3)
    return size


def _plan_fit_packs():
    """{(dataset, task, level label, pack name): [(image, seed), ...]} for every pack of two or more fits."""
    max_fits = int(config.get("pack_fits", 1))
    packs = {}
    if max_fits < 2:
        return packs
    for exp in config["experiments"]:
        if not exp.get("run_dip", True):
            continue
        d, t = exp["dataset"], exp["task"]
        for lv in exp["levels"]:
            label = level_label(t, lv)
            fits = [
                ((image, seed), _source_size(d, t, label, image))
                for image in images_of(d)
                for seed in seeds_of(exp)
            ]
            for n, members in enumerate(plan_packs(fits, max_fits)):
                packs[(d, t, label, f"pack{n}")] = members
    return packs


FIT_PACKS = _plan_fit_packs()
PACK_OF = {
    (d, t, lv, image, seed): name
    for (d, t, lv, name), members in FIT_PACKS.items()
    for image, seed in members
}


def _pack_members(wildcards):
    key = (wildcards.dataset, wildcards.task, wildcards.level, wildcards.pack)
    if key not in FIT_PACKS:
        raise WorkflowError(f"no fit pack {'/'.join(key)} in this configuration")
    return FIT_PACKS[key]


def pack_inputs(wildcards):
    """The task inputs of every fit of a pack, role by role: {observation: [...], target: [...], mask: [...]}."""
    files = {}
    for image, _seed in _pack_members(wildcards):
        one = _task_inputs(wildcards.dataset, wildcards.task, wildcards.level, image)
        for role, path in one.items():
            files.setdefault(role, []).append(path)
    return files


def pack_spec(wildcards):
    """fit_spec of the pack's fits (seed aside) and its members, in order."""
    members = _pack_members(wildcards)
    spec = _fit_spec(wildcards.dataset, wildcards.task, wildcards.level, seed=None)
    spec["members"] = [{"image": i, "seed": s} for i, s in members]
    return spec


def pack_resource(name):
    """A pack asks for what its fits would ask for one after another (time, memory): an upper bound."""

    def scaled(wildcards):
        return FIT_RES[name] * len(_pack_members(wildcards))

    return scaled


def packed_fit(wildcards):
    """The pack folder a fit was fitted in. A lone fit gets dip_packs/none, which nothing makes (pack is packN), so
    its unpack_fit job is discarded and fit_dip, next in the ruleorder, makes the fit: no error is raised or shown.
    """
    key = (
        wildcards.dataset,
        wildcards.task,
        wildcards.level,
        wildcards.image,
        int(wildcards.seed),
    )
    d, t, lv = key[:3]
    return res(f"restored/{d}/{t}/{lv}/dip_packs/{PACK_OF.get(key, 'none')}")


# --- input functions ------------------------------------------------------------------------------------------------


def degrade_inputs(wildcards):
    """The benchmark files a degrade job reads: the ground truth and, if released, the degraded input."""
    bench = benchmark_of(wildcards.dataset)
    if bench is None:
        return {}
    level = level_value(wildcards)
    files = {"gt": res_resource(bench.gt_file(level, wildcards.image))}
    released = bench.input_file(level, wildcards.image)
    if released:
        files["released"] = res_resource(released)
    return files


def degrade_params(wildcards):
    """What the degrade script needs besides files (source of the image, level, seed)."""
    spec = _dataset_spec(wildcards.dataset)
    return {
        "source": spec["source"],
        "dataset": wildcards.dataset,
        "benchmark": getattr(benchmark_of(wildcards.dataset), "name", None),
        "image": wildcards.image,
        "size": spec.get("size"),
        "task": task_of(wildcards),
        "level": level_value(wildcards),
        "seed": config.get("degrade_seed", 0),
    }


def _task_inputs(dataset, task, level, image):
    d = res(f"inputs/{dataset}/{task}/{level}/{image}")
    files = {"observation": f"{d}/observation.png", "target": f"{d}/gt.png"}
    if task == "sr":
        files["target"] = f"{d}/hr.png"
    if task == "inpaint":
        files["mask"] = f"{d}/mask.png"
    return files


def task_inputs(wildcards):
    """What a fit or a baseline reads: observation, the target to log PSNR against, the mask (inpainting)."""
    return _task_inputs(
        wildcards.dataset, wildcards.task, wildcards.level, wildcards.image
    )


def _resolve_preset(spec, task, level):
    from dip.data.benchmarks import default_preset

    preset = (spec or {}).get("preset")
    if isinstance(preset, dict):
        for key, name in preset.items():
            if math.isclose(float(key), float(level)):
                return name
        return default_preset(task, level)
    return preset or default_preset(task, level)


def _fit_spec(dataset, task, level, seed):
    exp = EXPERIMENTS[(dataset, task)]
    spec = exp.get("dip") or {}
    value = parse_level(task, level)
    out = {
        "task": task,
        "level": value,
        "preset": _resolve_preset(spec, task, value),
        "width": spec.get("width"),
        "settings": dict(spec.get("settings") or {}),
    }
    # ES_SETTINGS (experiments.smk): every fit records ES-WMV; the "DIP + early stop" rows come from it
    if ES_SETTINGS:
        out["early_stopping"] = dict(ES_SETTINGS)
    if seed is not None:
        out["seed"] = int(seed)
    return out


def fit_spec(wildcards):
    """The DIP settings of a fit job (preset, width, FitConfig overrides); a change re-runs the fit (params)."""
    return _fit_spec(wildcards.dataset, wildcards.task, wildcards.level, wildcards.seed)


def baseline_spec(wildcards):
    return {
        "name": wildcards.method,
        "task": wildcards.task,
        "level": level_value(wildcards),
        "seed": int(wildcards.seed),
        "options": dict(
            (config.get("baseline_settings") or {}).get(wildcards.method) or {}
        ),
    }


def fit_outputs(early_stopping):
    """The files of one DIP fit: restored PNG, raw PNG, JSON record and, when early stopping is recorded, the output
    at the detected step (<image>_seed<N>_es.png)."""
    stem = res("restored/{dataset}/{task}/{level}/dip/{image}_seed{seed}")
    files = dict(png=f"{stem}.png", raw=f"{stem}_raw.png", json=f"{stem}.json")
    if early_stopping:
        files["es"] = f"{stem}_es.png"
    return files


def restored(dataset, task, level, method, image, seed, suffix=".png"):
    return res(f"restored/{dataset}/{task}/{level}/{method}/{image}_seed{seed}{suffix}")


def score_plan(wildcards):
    """Every output of one (dataset, task, level) to score: a list of dicts (image, method, seed, png, json)."""
    exp = experiment(wildcards)
    d, t, lv = wildcards.dataset, wildcards.task, wildcards.level
    plan = []
    for image in images_of(d):
        for method, seed in methods_of(exp):
            plan.append(
                {
                    "image": image,
                    "method": method,
                    "seed": seed,
                    "png": restored(d, t, lv, method, image, seed),
                    "json": restored(d, t, lv, method, image, seed, ".json"),
                }
            )
            if method == "dip":
                plan.append(
                    {
                        "image": image,
                        "method": "dip_raw",
                        "seed": seed,
                        "png": restored(d, t, lv, method, image, seed, "_raw.png"),
                        "json": restored(d, t, lv, method, image, seed, ".json"),
                        "only_if_averaged": True,
                    }
                )
    return plan


def score_images(wildcards):
    return images_of(wildcards.dataset)


def score_inputs(wildcards):
    d, t, lv = wildcards.dataset, wildcards.task, wildcards.level
    gts = [res(f"inputs/{d}/{t}/{lv}/{i}/gt.png") for i in images_of(d)]
    obs = [res(f"inputs/{d}/{t}/{lv}/{i}/observation.png") for i in images_of(d)]
    plan = score_plan(wildcards)
    outputs = sorted({p["png"] for p in plan} | {p["json"] for p in plan})
    return {"gt": gts, "observation": obs, "outputs": outputs}


def published_inputs(wildcards):
    bench = BENCHMARKS[wildcards.dataset]
    return [res_resource(f) for f in bench.all_files(level_value(wildcards))]


def published_keys():
    return [
        (name, BENCHMARKS[name].task, level_label(BENCHMARKS[name].task, lv))
        for name, levels in PUBLISHED.items()
        for lv in levels
    ]


def published_scores():
    return [res(f"scores/published/{d}/{t}_{lv}.csv") for d, t, lv in published_keys()]


def our_scores():
    ours = [res(f"scores/ours/{d}/{t}_{lv}.csv") for d, t, lv in experiment_keys()]
    return ours + XP.es_score_files(config["experiments"], images_of)


def table_keys():
    """Tables for every experiment level, and for published-only levels too."""
    return sorted(set(experiment_keys()) | set(published_keys()))


def learning_curve_inputs(wildcards):
    bench = benchmark_of(wildcards.dataset)
    if bench is None:
        return {}
    return {"image": res_resource(bench.gt_file(bench.levels[0], wildcards.image))}


def learning_curve_params(wildcards):
    spec = dict((LEARNING or {}).get("dip") or {})
    ds = _dataset_spec(wildcards.dataset)
    return {
        "source": ds["source"],
        "benchmark": getattr(benchmark_of(wildcards.dataset), "name", None),
        "image": wildcards.image,
        "size": ds.get("size"),
        "kind": wildcards.kind,
        "seed": int((LEARNING or {}).get("seed", 0)),
        "preset": _resolve_preset(spec, "denoise", 25),
        "width": spec.get("width"),
        "settings": dict(spec.get("settings") or {}),
    }


def learning_curve_files():
    if not LEARNING:
        return []
    kinds = LEARNING.get("kinds") or ["image", "image_noise", "shuffled", "noise"]
    return [
        res(f"curves/{LEARNING['dataset']}/{LEARNING['image']}/{k}.json") for k in kinds
    ]


def psnr_curve_inputs(wildcards):
    exp = EXPERIMENTS[(wildcards.dataset, "denoise")]
    seed = seeds_of(exp)[0]
    return {
        "traces": [
            restored(
                wildcards.dataset, "denoise", wildcards.level, "dip", i, seed, ".json"
            )
            for i in images_of(wildcards.dataset)
        ],
        "scores": res(f"scores/ours/{wildcards.dataset}/denoise_{wildcards.level}.csv"),
    }


def grid_images(dataset):
    n = (config.get("figures") or {}).get("grid_max_images", 4)
    return images_of(dataset)[:n]


def grid_plan(wildcards):
    """Panels of an image grid: per image the GT, the degraded input, each method's output (first seed)."""
    d, t, lv = wildcards.dataset, wildcards.task, wildcards.level
    exp = experiment(wildcards)
    rows = []
    for image in grid_images(d):
        base = res(f"inputs/{d}/{t}/{lv}/{image}")
        panels = [("gt", f"{base}/gt.png"), ("input", f"{base}/observation.png")]
        seen = set()
        for method, seed in methods_of(exp):
            if method not in seen:
                seen.add(method)
                panels.append((method, restored(d, t, lv, method, image, seed)))
        rows.append({"image": image, "panels": panels})
    return rows


def grid_inputs(wildcards):
    files = [p for row in grid_plan(wildcards) for _, p in row["panels"]]
    return {"metrics": res("metrics.csv"), "images": files}


def figure_targets():
    out = []
    for d, t, lv in experiment_keys():
        out += [
            res(f"figures/{d}/{t}_{lv}_grid.png"),
            res(f"figures/{d}/{t}_{lv}_psnr.png"),
        ]
        if t == "denoise" and EXPERIMENTS[(d, t)].get("run_dip", True):
            out.append(res(f"figures/{d}/{t}_{lv}_psnr_curves.png"))
    for d, t, lv in published_keys():
        if (d, t) not in EXPERIMENTS:
            out.append(res(f"figures/{d}/{t}_{lv}_psnr.png"))
    if LEARNING:
        out.append(res("figures/learning_curves.png"))
    return sorted(set(out))


def table_targets():
    return [
        res(f"tables/{d}/{t}_{lv}.{ext}")
        for d, t, lv in table_keys()
        for ext in ("md", "tex", "csv")
    ]


def final_targets():
    targets = [res("metrics.csv")] + table_targets() + figure_targets()
    if PUBLISHED:
        targets += [res("tables/published_check.md"), res("tables/published_check.csv")]
    targets += XP.targets(config["experiments"], images_of)
    return targets


def _alternatives(values):
    return "|".join(sorted(set(values), key=len, reverse=True))


wildcard_constraints:
    dataset=_alternatives(list(config["datasets"]) + list(PUBLISHED)),
    task="denoise|sr|inpaint",
    level=r"x\d+|sigma\d+|missing\d+",
    seed=r"\d+",
    image=r"[^/]+",
    pack=r"pack\d+",
    kind="image|image_noise|shuffled|noise",
