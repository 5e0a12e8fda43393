"""The workflow config beyond its schema: the files it names looked up in the workflow's own source too (torch-free).

``manifest`` and ``paper_numbers`` are the workflow's own files (``config/manifest/benchmarks.tsv``,
``config/paper_numbers.yaml``). A relative path is looked up in the working directory first (a user's own copy),
then in the workflow's source folder, so that ``--directory .test`` and a deployed module find them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

SHIPPED_FILES = ("manifest", "paper_numbers")


def resolve_shipped_files(config: MutableMapping, source: str | Path, workdir: str | Path = ".") -> MutableMapping:
    """``config`` with each of :data:`SHIPPED_FILES` that is not in ``workdir`` but is in ``source`` made absolute."""
    for key in SHIPPED_FILES:
        value = config.get(key)
        if not value or Path(value).is_absolute() or (Path(workdir) / value).exists():
            continue
        shipped = Path(source) / value
        if shipped.exists():
            config[key] = str(shipped.resolve())
    return config


PACKAGE_ENV = "DIP_PACKAGE"  # what workflow/envs/dip.yaml's pip section installs (pip expands ${DIP_PACKAGE})


def use_source(source: str | Path, basedir=None) -> None:
    """The ``dip`` package of the workflow's own source for the jobs.

    A local source folder (a plain checkout, a module deployed from a folder) is prepended to ``PYTHONPATH``, which
    the jobs inherit, and is what the rules' conda env installs (editable). A module deployed from a hosted
    repository (``snakedeploy``: ``github("owner/name", path="workflow/Snakefile", tag=...)``) has its env install the
    package from that repository at that ref."""
    source = Path(source)
    if (source / "dip" / "__init__.py").is_file():
        paths = [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        os.environ[PACKAGE_ENV] = f"--editable={source.resolve()}"
        return
    repo, host = getattr(basedir, "repo", None), getattr(basedir, "host", None) or "github.com"
    ref = next((r for r in (getattr(basedir, k, None) for k in ("tag", "commit", "branch")) if r), None)
    if repo:
        os.environ[PACKAGE_ENV] = f"dip @ git+https://{host}/{repo}" + (f"@{ref}" if ref else "")
