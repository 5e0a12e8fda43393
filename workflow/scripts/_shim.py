"""Plumbing shared by the workflow's script shims: find the `dip` package, send output to the job's log.

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
    """Redirect stdout/stderr to the job's log file and write the traceback there if the job fails."""
    log = snakemake.log[0] if len(snakemake.log) else None
    if log is None:
        yield
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        try:
            yield
        except BaseException:
            traceback.print_exc()
            raise


def files(namedlist) -> dict:
    """A job's named inputs or outputs (a Snakemake Namedlist) as a plain dict."""
    return dict(namedlist.items())
