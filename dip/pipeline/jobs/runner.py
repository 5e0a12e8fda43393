"""Running one workflow job: the rule's function, its log, the downloads it reads checked, the workflow settings.

The settings a job reads from the workflow config rather than from its params (``checkpoint_minutes``, ``progress``,
``resources_dir``, ``manifest``) come in the environment variable :data:`SETTINGS_ENV`, which ``common.smk`` sets:
changing them re-runs nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from dip.pipeline.dag import Job, runs_fits

SETTINGS_ENV = "DIP_WORKFLOW_SETTINGS"

# rule -> "module:function" under dip.pipeline.jobs; the generated rules are matched by prefix (see find)
RULES = {
    "degrade_denoise": "inputs:degrade",
    "degrade_sr": "inputs:degrade",
    "degrade_inpaint": "inputs:degrade",
    "fit_dip": "fits:fit_dip",
    "fit_dip_pack": "fits:fit_dip_pack",
    "unpack_fit": "fits:unpack_fit",
    "baseline": "fits:baseline",
    "learning_curve": "fits:learning_curve",
    "score": "scores:score",
    "score_released": "scores:score_released",
    "metrics": "scores:metrics",
    "released_check": "scores:released_check",
    "table": "reports:table",
    "figure_grid": "reports:figure_grid",
    "figure_psnr": "reports:figure_psnr",
    "figure_psnr_curves": "reports:figure_psnr_curves",
    "figure_learning_curves": "reports:figure_learning_curves",
    "early_stop_table": "reports:early_stop_table",
    "experiment_architecture": "experiments:architecture",
    "experiment_architectures": "experiments:architectures_summary",
}
# generated rules: score_es_<dataset>_<task>_<level>, experiment_<name>_report, experiment_<name>
PREFIXES = (
    ("score_es_", "", "scores:score_es"),
    ("experiment_", "_report", "experiments:report"),
    ("experiment_", "", "experiments:experiment"),
)


def find(rule: str) -> Callable[[Job, int | None], object]:
    """The function that runs a job of ``rule``: ``function(job, threads)``."""
    target = RULES.get(rule)
    if target is None:
        target = next((t for pre, post, t in PREFIXES if rule.startswith(pre) and rule.endswith(post)), None)
    if target is None:
        raise KeyError(f"no job function for rule {rule!r}")
    module, name = target.split(":")
    return getattr(importlib.import_module(f"dip.pipeline.jobs.{module}"), name)


def settings() -> dict:
    """The workflow settings of this job (see the module docstring); {} outside a workflow."""
    return json.loads(os.environ.get(SETTINGS_ENV) or "{}")


class _Log:
    """A job's log, line-buffered: a write that fails (the disk filled up) raises :class:`~dip.errors.CannotWrite`
    naming the log; closing it never fails (what could not be written is lost either way)."""

    def __init__(self, path: str):
        self.path, self._fh = path, open(path, "w", buffering=1)

    def _do(self, what, *args):
        from dip.errors import CannotWrite

        try:
            return what(*args)
        except OSError as exc:
            raise CannotWrite.of(exc, self.path) or exc from None

    def write(self, text: str) -> int:
        return self._do(self._fh.write, text)

    def flush(self) -> None:
        self._do(self._fh.flush)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()

    def __getattr__(self, name):
        return getattr(self._fh, name)


@contextlib.contextmanager
def logged(log: str | None, results_dir: str | None = None) -> Iterator[None]:
    """stdout/stderr into the job's log (line-buffered: `tail -f` follows it). A failure the user acts on (a bad or
    damaged file, an interrupted fit: :func:`dip.pipeline.faults.failure_line`) ends the job with that one line, in the
    log and on the job's stderr (what Snakemake shows); any other failure's traceback goes to the log and its last line,
    with the log's path, to stderr."""
    from dip.errors import CannotWrite
    from dip.pipeline import faults

    with contextlib.ExitStack() as stack:
        if log:
            try:  # a log that cannot be written (a full disk): its line on stderr, where Snakemake shows it
                Path(log).parent.mkdir(parents=True, exist_ok=True)
                fh = _Log(log)
            except OSError as exc:
                failed = CannotWrite.of(exc, log if Path(log).parent.is_dir() else Path(log).parent)
                if failed is None:
                    raise
                raise SystemExit(faults.report(failed, results_dir, to_log=False)) from None
            stack.callback(fh.close)
            stack.enter_context(contextlib.redirect_stdout(fh))
            stack.enter_context(contextlib.redirect_stderr(fh))
        try:
            yield
        except BaseException as exc:
            code = faults.report(exc, results_dir, to_log=bool(log))
            if code is not None:
                raise SystemExit(code) from None
            if log:
                with contextlib.suppress(OSError):
                    traceback.print_exc()
                print(f"{type(exc).__name__}: {exc}\n(full traceback in {log})", file=sys.__stderr__, flush=True)
            raise


def check_downloads(job: Job, config: Mapping) -> None:
    """Every downloaded file the job reads (under ``resources_dir``) against the manifest's sha256."""
    from dip.data.manifest import DEFAULT_MANIFEST, verify_downloads

    verify_downloads(
        job.inputs,
        resources_dir=config.get("resources_dir", "resources"),
        manifest=config.get("manifest", DEFAULT_MANIFEST),
    )


def run(job: Job, threads: int | None = None, log: str | None = None, config: Mapping | None = None):
    """Run one planned job: the downloads it reads checked against the manifest, the workflow outputs it reads
    checked for damage (:func:`dip.pipeline.faults.check_workflow_files`), the workflow settings on, its rule's
    function called."""
    from dip.pipeline import faults
    from dip.pipeline.steps import set_threads, workflow_settings

    config = settings() if config is None else config
    function = find(job.rule)
    results = config.get("results_dir") or "results"
    with logged(log, results):
        check_downloads(job, config)
        faults.check_workflow_files(job.inputs, results)
        with workflow_settings(config, fits=runs_fits(job.rule)):
            if runs_fits(job.rule):
                set_threads(threads)
            return function(job, threads)
