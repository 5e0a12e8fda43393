"""Helpers shared by the test modules (tests import from here, never from each other), one module per concern:
paths.py (the checkout, the mirror, the manifest), images.py (photo crops, tiny fit settings), nets.py (networks),
mirror.py (the benchmark mirror on 127.0.0.1), fits.py (hooks that kill, SIGTERM or poison a fit), scores.py,
processes.py (/proc), disks.py (full disks), workflow.py (Snakemake runs, dry runs, configs, plans). ``from tests.helpers import X`` keeps
working for every public name (the test modules of other branches import them so)."""

from tests.helpers.paths import REPO, SNAKEFILE, BIN, MIRROR, MANIFEST  # noqa: F401
from tests.helpers.images import crop_photo, save_png, tiny_fit_config  # noqa: F401
from tests.helpers.nets import NARROW_SKIP, NET_FAMILIES, build_family, skip_levels, convs, forward_once  # noqa: F401
from tests.helpers.mirror import serve, closed_port_url  # noqa: F401
from tests.helpers.fits import CrashAt, SigtermAt, PoisonAt  # noqa: F401
from tests.helpers.scores import PAPER_NUMBERS, gray11_scores  # noqa: F401
from tests.helpers.processes import running, wait_for  # noqa: F401
from tests.helpers.disks import tmpfs, fill_disk  # noqa: F401
from tests.helpers.workflow import (  # noqa: F401
    exe,
    scratch,
    snakemake,
    job_counts,
    TEST_CONFIG,
    TINY_EXPERIMENTS,
    tiny_experiments_config,
    workflow_config,
    plan_of,
    dry_run_jobs,
    start_snakemake,
    paper_cpu_fits,
)
