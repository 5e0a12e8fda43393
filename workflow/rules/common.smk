# The plan (dip.pipeline.plan: every job of the DAG, from the config) and the input functions that read it.
# Only this file defines functions (snakemake --lint); the stage files hold rules only and wire files.

import sys

from snakemake.utils import validate

try:  # the installed package (pip install -e .) or, in a plain checkout, the one next to the Snakefile
    import dip
except ImportError:
    sys.path.insert(0, workflow.basedir)

from dip.pipeline.plan import LEARNING_KINDS, build_plan
from dip.pipeline.steps import download
from dip.tasks import BASELINES, LEVELLED_TASKS, TASKS

validate(config, schema="../schemas/config.schema.yaml")
# The plan checks what the schema cannot and reads the manifest once (when something is to be downloaded).
PLAN = build_plan(config)
if PLAN.manifest is not None:
    import pandas as pd

    validate(
        pd.DataFrame(list(PLAN.manifest.rows)),
        schema="../schemas/manifest.schema.yaml",
    )
for _name, _why in PLAN.section.skipped.items():
    print(f"paper_experiments: skipping {_name}: {_why}", file=sys.stderr)

res = PLAN.res  # a path under results_dir
FIT_RES = PLAN.fit_resources
BASE_RES = PLAN.baseline_resources


def pinned(files):
    """Downloaded files (under resources_dir) as ancient(): their manifest sha256 pins them (every job that reads one
    checks it first), so their modification time says nothing. Re-downloading a deleted (corrupted) file then re-runs
    only the jobs that read that file, not every job of its download folder."""
    prefix = f"{PLAN.resources}/"

    def one(path):
        return ancient(path) if str(path).startswith(prefix) else path

    if isinstance(files, dict):
        return {
            k: [one(p) for p in v] if isinstance(v, list) else one(v)
            for k, v in files.items()
        }
    return [one(p) for p in files]


def job_input(rule):
    """Input function: the inputs of the planned `rule` job with these wildcards (downloaded files pinned)."""

    def get(wildcards):
        return pinned(PLAN.get(rule, wildcards).input)

    return get


def job_param(rule, name):
    """Params function: param `name` of the planned `rule` job with these wildcards."""

    def get(wildcards):
        return PLAN.get(rule, wildcards).params[name]

    return get


def job_resource(rule, name):
    """Resource function: resource `name` of the planned `rule` job (a pack asks for its fits' sum)."""

    def get(wildcards):
        return PLAN.get(rule, wildcards).resources[name]

    return get


def packed_fit(wildcards):
    """The pack folder a fit was fitted in; dip_packs/none (made by nothing) for a lone fit, which fit_dip makes."""
    return PLAN.pack_folder(wildcards)


wildcard_constraints:
    dataset="|".join(sorted(PLAN.dataset_names, key=len, reverse=True)),
    task="|".join(LEVELLED_TASKS),
    level="|".join(TASKS[t].level_prefix + r"\d+" for t in LEVELLED_TASKS),
    seed=r"\d+",
    image=r"[^/]+",
    pack=r"pack\d+",
    kind="|".join(LEARNING_KINDS),
    method="|".join(BASELINES),
