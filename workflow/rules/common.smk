# The plan (dip.pipeline.plan: every job of the DAG, from the config) and the functions that wire the rules to it.
# Only this file defines functions (snakemake --lint); the stage files hold rules only and wire files.
# Every job runs `python -m dip.pipeline.jobs --job <its planned job>` (JOB below): its rule's function there.

import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger as snakemake_logger
from snakemake.utils import validate

# A plain checkout (or a module deployed from a local folder) works without installing the package: the workflow's
# own source comes first, for this process and (dip.pipeline.workflow_config.use_source) for every job.
BASEDIR = (
    workflow.current_basedir
)  # rules/: a local folder, or a file of a hosted repository (a deployed module)
SOURCE = Path(str(BASEDIR.get_path_or_uri(secret_free=True))).parents[1]
if (SOURCE / "dip" / "__init__.py").is_file():
    sys.path.insert(0, str(SOURCE))

from dip.errors import DipInputError
from dip.pipeline import pins
from dip.pipeline.workflow_config import (
    quiet_missing_metadata,
    resolve_shipped_files,
    schema_error,
    use_source,
)
from dip.pipeline.jobs.runner import SETTINGS_ENV
from dip.pipeline.plan import build_plan
from dip.pipeline.steps import download
from dip.tasks import BASELINES, LEARNING_CURVE_KINDS, LEVELLED_TASKS, TASKS

use_source(SOURCE, BASEDIR)
# the report: one line instead of a warning per file made outside this working copy
quiet_missing_metadata(snakemake_logger)
try:  # a schema violation ends in one line, not jsonschema's dump of the schema and the config
    validate(config, schema="../schemas/config.schema.yaml")
except WorkflowError as exc:
    raise SystemExit(f"error: {schema_error(exc)}")
resolve_shipped_files(config, SOURCE)
try:  # the plan checks what the schema cannot; a mistake ends in its one line
    PLAN = build_plan(config)
except DipInputError as exc:
    raise SystemExit(f"error: {exc}")
if PLAN.manifest is not None:
    import pandas as pd

    validate(
        pd.DataFrame(list(PLAN.manifest.rows)),
        schema="../schemas/manifest.schema.yaml",
    )
for _name, _why in PLAN.section.skipped.items():
    print(f"paper_experiments: skipping {_name}: {_why}", file=sys.stderr)

PATHS = PLAN.paths  # every path of the results tree (dip.pipeline.layout)
FIT_RES = PLAN.fit_resources
BASE_RES = PLAN.baseline_resources

# What jobs read from the config rather than from their params (changing it re-runs nothing): dip.pipeline.jobs.runner
os.environ[SETTINGS_ENV] = json.dumps(
    {
        k: config.get(k)
        for k in (
            "results_dir",
            "resources_dir",
            "manifest",
            "checkpoint_minutes",
            "progress",
        )
    }
)
# The interpreter of the jobs: Snakemake's own, or the rule's conda env's (--sdm conda).
_CONDA = (
    "conda"
    in str(getattr(workflow.deployment_settings, "deployment_method", "")).lower()
)
PYTHON = "python" if _CONDA else shlex.quote(sys.executable)
JOB = (
    PYTHON
    + " -m dip.pipeline.jobs --threads {threads} --log {log:q} --job {params.job:q}"
)
FORCED = set(getattr(workflow.dag_settings, "forcerun", None) or ())
FORCE_ALL = bool(getattr(workflow.dag_settings, "forceall", False))


def pinned(files):
    """Downloaded files (under resources_dir) and degraded inputs as ancient(): the downloads are pinned by their
    manifest sha256 (every job that reads one checks it first), the inputs are made from them by a seeded function,
    so their modification times say nothing (dip.pipeline.pins)."""
    prefixes = PATHS.deterministic

    def one(path):
        return ancient(path) if str(path).startswith(prefixes) else path

    if isinstance(files, dict):
        return {
            k: [one(p) for p in v] if isinstance(v, list) else one(v)
            for k, v in files.items()
        }
    return [one(p) for p in files]


def job_input(rule):
    """Input function: the inputs of the planned `rule` job with these wildcards, pinned; a finished fit or baseline
    declares only those that exist, a stale one also its spec marker (dip.pipeline.pins).
    """

    def get(wildcards):
        job = PLAN.get(rule, wildcards)
        forced = FORCE_ALL or rule in FORCED
        made = PATHS.deterministic  # pinned below
        try:
            return pinned(pins.declared_inputs(job, PLAN.results, made, forced=forced))
        except (
            DipInputError
        ) as exc:  # a marker that cannot be written (a full disk): Snakemake would drop the job
            raise SystemExit(f"error: {exc}")

    return get


def job_params(rule):
    """Params function: the planned job as JSON, for its body (dip.pipeline.jobs). "{}" for a job the plan does not
    have (unpack_fit of a lone fit: Snakemake looks at it before its ruleorder gives the file to fit_dip).
    """

    def get(wildcards):
        job = PLAN.find(rule, wildcards)
        return json.dumps(job.to_json() if job else {}, sort_keys=True)

    return get


def job_resource(rule, name):
    """Resource function: resource `name` of the planned `rule` job (a pack asks for its fits' sum), times the
    attempt for memory and time (a retried job that ran out of either asks for more). A plain function of the
    wildcards, so a dry run shows the value that will be submitted (the SLURM profile's `input.size_mb` expressions
    stayed <TBD> until the inputs existed)."""

    def get(wildcards, attempt):
        value = PLAN.get(rule, wildcards).resources[name]
        return value * attempt if name in ("mem_mb", "runtime") else value

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
    kind="|".join(LEARNING_CURVE_KINDS),
    method="|".join(BASELINES),
