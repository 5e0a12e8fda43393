"""``python -m dip.pipeline.jobs --job <json> [--threads N] [--log FILE]``: one workflow job, the planned job of
its rule (the rules' ``shell:`` line; see :mod:`dip.pipeline.jobs`)."""

from __future__ import annotations

import argparse
import json
import sys

from dip.pipeline import faults
from dip.pipeline.jobs.runner import run
from dip.pipeline.dag import Job


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dip.pipeline.jobs", description=__doc__)
    parser.add_argument("--job", required=True, help="the planned job as JSON (rule, input, output, params, wildcards)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads the job may use")
    parser.add_argument("--log", default=None, help="the job's log file")
    args = parser.parse_args(argv)
    job = Job.from_json(json.loads(args.job))
    faults.watch_parent()  # Snakemake killed (SIGKILL, out of memory): this job stops, a fit after its checkpoint
    if args.log is None:  # the traceback is all there is to see
        run(job, threads=args.threads)
        return 0
    try:
        run(job, threads=args.threads, log=args.log)
    except Exception:  # already in the log, its last line on stderr
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
