"""Plumbing shared by the workflow's script shims: find the `dip` package, send output to the job's log, check the
downloaded files a job reads, give the job the settings it reads from the config rather than from its params.

Those settings (progress lines, checkpoint interval) are handed over here and not in the shims of the jobs that
fit: Snakemake re-runs every job whose script is newer than its outputs, so a shim that changes re-runs its fits.

Not restoration logic: every shim hands its files to one `dip` library function (mostly dip.pipeline.steps).
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

try:  # an installed (pip install -e .) package wins; a plain checkout works too
    import dip  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(REPO))


@contextlib.contextmanager
def logged(snakemake):
    """Run the job's body with stdout/stderr in the job's log file (line-buffered: `tail -f` follows it live).

    Before the body, the job's inputs that were downloaded (under `resources_dir`) are checked against the manifest's
    sha256 (dip.data.benchmarks.verify_downloads): a file truncated or altered since its download fails the job with a
    message that names it and says how to fetch it again. The body runs inside dip.pipeline.steps.workflow_settings:
    the config's `checkpoint_minutes` and, in a job that fits (dip.pipeline.plan.runs_fits), progress lines for
    every fit with the config's `progress` settings.
    Before the body, dip.pipeline.faults starts watching Snakemake (a job whose Snakemake was killed stops, a fit
    after writing its checkpoint) and checks the inputs the workflow made (under `results_dir`): a damaged one fails
    the job with one line naming it and the fix. A failure the user acts on (dip.pipeline.faults.failure_line: a bad
    or damaged file, an interrupted fit) is that one line, in the log and in Snakemake's output; any other failure's
    traceback goes to the log and its last line also to Snakemake's own output.
    """
    log = snakemake.log[0] if len(snakemake.log) else None
    with contextlib.ExitStack() as stack:
        if log is not None:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(open(log, "w", buffering=1))
            stack.enter_context(contextlib.redirect_stdout(fh))
            stack.enter_context(contextlib.redirect_stderr(fh))
        from dip.pipeline import faults

        results = snakemake.config.get("results_dir", "results")
        try:
            faults.watch_parent()  # Snakemake killed: SIGTERM to this job (a fit checkpoints first), no orphan
            _check_downloads(snakemake)
            faults.check_workflow_files(snakemake.input, results)  # a damaged output read here: one line, no run
            from dip.pipeline.plan import runs_fits
            from dip.pipeline.steps import workflow_settings

            stack.enter_context(workflow_settings(snakemake.config, fits=runs_fits(snakemake.rule)))
            yield
        except BaseException as exc:
            code = faults.report(exc, results, to_log=log is not None)  # one line for what the user acts on
            if code is not None:
                raise SystemExit(code) from None
            if log is not None:
                traceback.print_exc()
                print(f"{type(exc).__name__}: {exc}\n(full traceback in {log})", file=sys.__stderr__, flush=True)
            raise


def _check_downloads(snakemake) -> None:
    from dip.data.benchmarks import DEFAULT_MANIFEST, verify_downloads

    config = snakemake.config
    verify_downloads(
        [str(f) for f in snakemake.input],
        resources_dir=config.get("resources_dir", "resources"),
        manifest=config.get("manifest", DEFAULT_MANIFEST),
    )


def files(namedlist) -> dict:
    """A job's named inputs or outputs (a Snakemake Namedlist) as a plain dict."""
    return dict(namedlist.items())
