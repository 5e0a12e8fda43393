"""dip.pipeline.workflow_config: the one loader of the workflow config outside Snakemake (layers merged as Snakemake merges
them, validated against the schema), and the shipped files looked up in the workflow's source."""

from __future__ import annotations

import builtins
import copy

import pytest
import yaml

from dip.pipeline import workflow_config as cfg
from tests.helpers import REPO

LAYERS = [(), ("config/paper.yaml",), ("config/paper.yaml", "config/paper-cpu.yaml")]


def _without_snakemake(monkeypatch):
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name == "snakemake" or name.startswith("snakemake."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)


@pytest.mark.parametrize("layers", LAYERS, ids=lambda layers: "+".join(layers) or "config.yaml")
def test_load_is_what_snakemake_makes_of_the_configfiles(layers):
    """config/config.yaml, each --configfile, the --config overrides; validated, the schema's defaults filled in."""
    from snakemake.utils import update_config, validate

    merged: dict = {}
    for path in ("config/config.yaml", *layers):
        update_config(merged, yaml.safe_load((REPO / path).read_text()))
    update_config(merged, {"pack_fits": 4})
    validate(merged, str(REPO / "workflow/schemas/config.schema.yaml"))
    loaded = cfg.load(*layers, pack_fits=4)
    assert loaded == merged and loaded["pack_fits"] == 4
    assert loaded["download_retries"] == 3  # a default of the schema (no layer sets it)


def test_a_layer_may_be_a_mapping_null_turns_an_entry_off_and_base_none_starts_empty():
    loaded = cfg.load("config/paper.yaml", {"released": {"set14": None}, "learning_curves": None})
    assert loaded["released"]["set14"] is None and loaded["released"]["set5"] == [4, 8]
    assert loaded["learning_curves"] is None
    only = cfg.load(base=None, datasets={"photos": {"source": "embedded", "images": ["astronaut"]}},
                    experiments=[{"dataset": "photos", "task": "denoise", "levels": [25]}])  # fmt: skip
    assert set(only["datasets"]) == {"photos"}


def test_an_invalid_config_fails_the_schema():
    with pytest.raises(Exception, match="pack_fits|minimum"):
        cfg.load(pack_fits=0)


@pytest.mark.parametrize(
    "below, layer",
    [
        ({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2], "d": None}}),
        ({"a": {"b": 1}}, {"a": {}}),  # an empty mapping changes nothing
        ({"a": None}, {"a": {}}),
        ({}, {"a": {}}),
        ({"a": 3}, {"a": {"b": {"c": 1}}}),  # a mapping over a value: a new mapping
        ({"a": {"b": 1}}, {"a": None}),  # null replaces a mapping
        ({"a": [1, 2]}, {"a": [3]}),  # lists are replaced, not extended
    ],
)
def test_merge_is_snakemakes_update_config(below, layer):
    from snakemake.utils import update_config

    theirs = copy.deepcopy(below)
    update_config(theirs, copy.deepcopy(layer))
    assert cfg.merge(copy.deepcopy(below), copy.deepcopy(layer)) == theirs


def test_without_snakemake_the_layers_are_merged_alike_and_the_schema_check_is_skipped(monkeypatch):
    from snakemake.utils import update_config

    merged: dict = {}
    for path in ("config/config.yaml", "config/paper.yaml"):
        update_config(merged, yaml.safe_load((REPO / path).read_text()))
    update_config(merged, {"pack_fits": 0})
    _without_snakemake(monkeypatch)
    assert cfg.load("config/paper.yaml", pack_fits=0) == merged  # not validated: no error, no defaults


def test_shipped_files_are_found_in_the_source_when_the_working_directory_lacks_them(tmp_path):
    config = {"manifest": "config/manifest/benchmarks.tsv", "paper_numbers": "config/paper_numbers.yaml"}
    cfg.resolve_shipped_files(config, REPO, workdir=tmp_path)
    assert config["manifest"] == str((REPO / "config/manifest/benchmarks.tsv").resolve())
    kept = {"manifest": "config/manifest/benchmarks.tsv"}
    assert cfg.resolve_shipped_files(kept, REPO, workdir=REPO)["manifest"] == "config/manifest/benchmarks.tsv"
