"""The run's inputs: the benchmark files its blocks read, checked against the manifest (--tiny: centre crops of
them), then the workflow's degrade and baseline jobs (CPU, seconds: bicubic, biharmonic, nlm)."""

from __future__ import annotations

import time
from pathlib import Path

from reproduce_gpu.common import REPO, TINY, Run, quiet


def check(run: Run) -> Path | None:
    """The inputs phase: the files the blocks' degrade jobs read (:func:`needed`) in ``--inputs``, sha256 checked
    against the manifest. Returns the folder the plan reads them from (--tiny: the crops), None when a file is
    missing or wrong."""
    t, args = time.monotonic(), run.args
    files = needed(args.blocks)
    rels = list(files)
    problems = check_inputs(args.inputs, rels)
    if problems:
        run.log(f"inputs: {len(problems)} problem(s), first: {problems[0]}")
        run.log("make the inputs with: reproduce_gpu/prepare_carry.sh MIRROR_DIR (or pass --inputs)")
        run.phase("inputs", f"{len(problems)} missing or wrong", t)
        return None
    resources = args.inputs
    if args.tiny:
        resources = run.out / "tiny-inputs"
        make_tiny_inputs(args.inputs, resources, files)
    run.phase("inputs", f"{len(rels)} files, sha256 ok", t)
    return resources


def needed(blocks) -> dict[str, int]:
    """The benchmark files the blocks' degrade jobs read (:func:`dip.pipeline.planners.plan_inputs`): each image's
    ground truth and, where the benchmark has one, its released degraded input (color9's ``_noisy``, gray11's
    ``_masked``); {relative path: the image's position in its dataset} (what --tiny's crop shape goes by)."""
    from dip.data.benchmarks import BENCHMARKS
    from dip.tasks import parse_level

    files: dict[str, int] = {}
    for block in blocks:
        bench, level = BENCHMARKS[block.dataset], parse_level(block.task, block.level)
        for image in block.images:
            for rel in (bench.gt_file(level, image), bench.input_file(level, image)):
                if rel:
                    files[rel] = bench.images.index(image)
    return files


def needed_files(blocks) -> list[str]:
    return list(needed(blocks))


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


def make_tiny_inputs(inputs: Path, dest: Path, files: dict[str, int]) -> None:
    """--tiny: centre crops of the files (``{relative path: image position}``, :func:`needed`), same layout; the
    shape by the image's position in its dataset (TINY["shapes"]), so an image's ground truth and its released
    input (noisy, masked) get the same window."""
    from PIL import Image

    for rel, position in files.items():
        h, w = TINY["shapes"][position % len(TINY["shapes"])]
        with Image.open(inputs / rel) as im:
            left, top = (im.width - w) // 2, (im.height - h) // 2
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            im.crop((left, top, left + w, top + h)).save(out)


def degrade_and_baselines(run: Run, plan) -> None:
    """The plan's degrade jobs and baselines (the cheap ones: bicubic, biharmonic, nlm), through the workflow's job
    functions (with --resume, those whose files are all there are kept)."""
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
    n_inputs = sum(1 for job in plan.jobs() if job.rule.startswith("degrade_"))
    methods = sorted({job.wildcards.get("method", "?") for job in plan.by_rule("baseline")})
    run.log(f"inputs: {n_inputs} degraded, {len(plan.by_rule('baseline'))} baseline outputs ({', '.join(methods)})")
    run.phase("degrade + baselines", f"{n_inputs} images", t)
