"""Stage 3 jobs: DIP fits (lone, packed), the baselines and the learning curves of Fig. 2
(``workflow/rules/fit.smk``, ``baselines.smk``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from dip.pipeline import steps
from dip.pipeline.dag import Job
from dip.pipeline.layout import Layout, auto_stop_image


def fit_dip(job: Job, threads=None):
    """One DIP fit -> restored PNG, raw PNG, JSON record (and the output at the ES-WMV step); resumes a checkpoint."""
    return steps.fit(job.params["spec"], dict(job.input), dict(job.output), threads)


def fit_dip_pack(job: Job, threads=None):
    """Several same-size fits in one process -> a folder with each fit's files (copied out by :func:`unpack_fit`)."""
    return steps.fit_pack(job.params["spec"], dict(job.input), job.outputs[0], threads)


def unpack_fit(job: Job, threads=None) -> list[tuple[str, str]]:
    """Copy one fit's files out of its pack folder to where a lone fit writes them."""
    wc, out = job.wildcards, dict(job.output)
    packed = Layout.in_pack(job.input["pack"], wc["image"], wc["seed"])
    pairs = [(packed[role], path) for role, path in out.items()]
    auto_src, auto_dst = Path(auto_stop_image(packed["png"])), Path(auto_stop_image(out["png"]))
    if auto_src.is_file():  # the auto stop's image, where it fired before the budget (the record names it)
        pairs.append((str(auto_src), str(auto_dst)))
    else:
        auto_dst.unlink(missing_ok=True)
    for src, dst in pairs:
        shutil.copyfile(src, dst)
        print(f"{src} -> {dst}")
    return pairs


def baseline(job: Job, threads=None):
    """One baseline (bicubic, no prior, TV prior, CBM3D, NLM, biharmonic) -> PNG + JSON record."""
    return steps.baseline(job.params["spec"], dict(job.input), dict(job.output), threads)


def learning_curve(job: Job, threads=None):
    """One learning curve of Fig. 2 (the network fitting an image, image + noise, shuffled pixels or noise)."""
    return steps.learning_curve(job.params["spec"], job.input.get("image"), job.outputs[0], threads)
