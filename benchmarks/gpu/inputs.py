"""The run's inputs: the benchmark files checked against the manifest (--tiny: centre crops of them), then the
workflow's degrade and bicubic jobs (CPU, seconds)."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.gpu.common import REPO, TINY, Run, quiet


def check(run: Run) -> Path | None:
    """The inputs phase: the Set5 (Set14) x4 ground truth in ``--inputs``, sha256 checked against the manifest.
    Returns the folder the plan reads them from (--tiny: the crops), None when a file is missing or wrong."""
    t, args = time.monotonic(), run.args
    rels = needed_files(args.datasets)
    problems = check_inputs(args.inputs, rels)
    if problems:
        run.log(f"inputs: {len(problems)} problem(s), first: {problems[0]}")
        run.log("make the inputs with: benchmarks/prepare_gpu_carry.sh MIRROR_DIR (or pass --inputs)")
        run.phase("inputs", f"{len(problems)} missing or wrong", t)
        return None
    resources = args.inputs
    if args.tiny:
        resources = run.out / "tiny-inputs"
        make_tiny_inputs(args.inputs, resources, rels)
    run.phase("inputs", f"{len(rels)} files, sha256 ok", t)
    return resources


def needed_files(datasets, level=4) -> list[str]:
    from dip.data.benchmarks import BENCHMARKS

    return [BENCHMARKS[d].gt_file(level, image) for d in datasets for image in BENCHMARKS[d].images]


def check_inputs(inputs: Path, rels: list[str]) -> list[str]:
    """Problems with the input files (missing, wrong sha256 against the manifest); empty when all is well."""
    from dip.data.manifest import read_manifest, sha256sum

    manifest = read_manifest(REPO / "config/manifest/benchmarks.tsv")
    problems = []
    for rel in rels:
        path = inputs / rel
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif sha256sum(path) != manifest[rel]:
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


def degrade_and_bicubic(run: Run, plan) -> None:
    """The plan's degrade jobs and bicubic baselines, through the workflow's job functions (with --resume, those
    whose files are all there are kept)."""
    from dip.pipeline.jobs import fits as fit_jobs
    from dip.pipeline.jobs import inputs as input_jobs

    t, args = time.monotonic(), run.args

    def todo(job) -> bool:
        return not (args.resume and all(Path(p).is_file() for p in job.outputs))

    with quiet():
        for job in plan.jobs():
            if job.rule.startswith("degrade_") and todo(job):
                input_jobs.degrade(job)
        for job in plan.by_rule("baseline"):
            if todo(job):
                fit_jobs.baseline(job, threads=args.threads)
    n_inputs = len(plan.by_rule("degrade_sr"))
    run.log(f"inputs: {n_inputs} degraded, {len(plan.by_rule('baseline'))} bicubic outputs")
    run.phase("degrade + bicubic", f"{n_inputs} images", t)
