"""The workflow config outside Snakemake (torch-free): :func:`load` layers and validates it as a workflow run does;
the files it names are looked up in the workflow's own source too.

``manifest`` and ``paper_numbers`` are the workflow's own files (``config/manifest/benchmarks.tsv``,
``config/paper_numbers.yaml``). A relative path is looked up in the working directory first (a user's own copy),
then in the workflow's source folder, so that ``--directory .test`` and a deployed module find them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

import dip
from dip.errors import DipInputError

SHIPPED_FILES = ("manifest", "paper_numbers")
REPOSITORY = Path(dip.__file__).resolve().parents[1]  # the source checkout: config/, workflow/
DEFAULT_CONFIG = "config/config.yaml"  # the Snakefile's configfile
SCHEMA = REPOSITORY / "workflow" / "schemas" / "config.schema.yaml"


def load(*layers: str | os.PathLike | Mapping, base: str | os.PathLike | None = DEFAULT_CONFIG, **overrides) -> dict:
    """The config a workflow run sees: ``base`` (the Snakefile's configfile; None: none), then each layer (a config
    file, as ``--configfile``, or a mapping), then ``overrides`` (as ``--config key=value``), merged as Snakemake
    merges them (``snakemake.utils.update_config``: mappings key by key, anything else replaced, so that ``null``
    turns an entry of a layer beneath off), then validated against the workflow's schema, which fills in its defaults.

    A relative path is relative to the repository (:data:`REPOSITORY`). Where Snakemake is not installed (a lent GPU
    machine has none) the layers are merged by the same rule (:func:`merge`) and the schema check, with the defaults
    it fills in, is skipped."""
    import yaml

    try:
        from snakemake.utils import update_config, validate
    except ImportError:
        update_config, validate = merge, None
    config: dict = {}
    for layer in ([base] if base is not None else []) + list(layers):
        if not isinstance(layer, Mapping):
            layer = yaml.safe_load((REPOSITORY / layer).read_text()) or {}
        update_config(config, layer)
    update_config(config, overrides)
    if validate is not None:
        from snakemake.exceptions import WorkflowError

        try:
            validate(config, str(SCHEMA))
        except WorkflowError as exc:
            raise DipInputError(schema_error(exc)) from None
    return config


def schema_error(exc: BaseException) -> str:
    """The one line of a schema violation (what ``snakemake.utils.validate`` raises, with the jsonschema error as its
    context): the key, the bad value and what the schema allows, instead of jsonschema's dump of schema and config."""
    from difflib import get_close_matches

    from jsonschema.exceptions import ValidationError

    error = exc if isinstance(exc, ValidationError) else exc.__cause__ or exc.__context__
    if not isinstance(error, ValidationError):
        return f"config: {exc}"
    if error.context:  # oneOf / anyOf: the branch that came closest, not the type mismatch of another one
        error = next((e for e in error.context if e.validator != "type"), error.context[0])
    where = "".join(f"{key}: " for key in error.absolute_path)
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        lines = []
        for key in sorted(set(error.instance) - set(known)):
            close = get_close_matches(key, known, n=1)
            lines.append(f"config: {where}unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return f"{'; '.join(lines)} (known keys: {', '.join(known)})"
    message = error.message if len(error.message) < 200 else f"{error.message[:200]}..."
    return f"config: {where}{message}"


def merge(config: MutableMapping, layer: Mapping) -> MutableMapping:
    """Merge ``layer`` into ``config`` in place by ``snakemake.utils.update_config``'s rule, for a machine without
    Snakemake: a mapping goes key by key into the mapping below it (into anything else: a new one; an empty one
    changes nothing), any other value replaces what was there."""
    for key, value in layer.items():
        if isinstance(value, Mapping):
            below = config.get(key, {})
            if value:
                below = merge(below if isinstance(below, MutableMapping) else {}, value)
            config[key] = below
        else:
            config[key] = value
    return config


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


MISSING_METADATA = "Missing metadata for file"  # Snakemake's warning, once per file it did not make in this copy


def quiet_missing_metadata(logger) -> None:
    """Drop Snakemake's "Missing metadata for file ..." warnings (one per output of a fresh clone or of another
    working copy: 563 lines for the committed reproduction's report) and say it once instead: the files' provenance
    is in their JSON records (``results/paper/PROVENANCE.md``), which the pins read (:mod:`dip.pipeline.pins`)."""
    import logging
    import sys

    said = []

    def keep(record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(MISSING_METADATA):
            return True
        if not said:
            said.append(True)
            print("report: some files were made outside this working copy and have no Snakemake metadata (no run "
                  "times in the report); their JSON records say how they were made", file=sys.stderr)  # fmt: skip
        return False

    logger.addFilter(keep)
