"""The paper's other experiments as the planner sees them (dip.pipeline.paper_experiments): the section's checks, the
paper's settings, the files each experiment reads."""

from __future__ import annotations

import pytest

from dip.errors import DipInputError
from dip.pipeline.paper_experiments import DATA_FILES, read_section


def test_empty_section_plans_nothing():
    section = read_section(None)
    assert section.names == [] and section.early_stopping is None and section.es_settings() is None


def test_experiment_defaults_are_the_papers_and_preimage_needs_weights():
    section = read_section({"jpeg": {}, "preimage": {}, "architectures": {}})
    assert section.specs["jpeg"]["steps"] == [2399, 49999] and section.specs["jpeg"]["crop"] is None
    assert section.specs["architectures"]["names"][:5] == ["depth2", "depth3", "depth4", "depth5", "depth6"]
    assert "preimage" not in section.names and "AlexNet" in section.skipped["preimage"]
    assert "preimage" in read_section({"preimage": {"weights": "alexnet.pth"}}).names


@pytest.mark.parametrize(
    "section, message",
    [
        ({"jpg": {}}, "unknown experiment"),
        ({"architectures": {"names": ["vgg"]}}, "unknown"),
        ({"jpeg": {"steps": []}}, "at least one step"),
        ({"preimage": {"weights": "x", "images": ["lena"]}}, "unknown image"),
    ],
)
def test_bad_sections_are_refused(section, message):
    with pytest.raises(DipInputError, match=message):
        read_section(section)


def test_every_experiment_reads_known_files_and_the_default_preimage_image():
    from dip.experiments.catalog import EXPERIMENTS

    for name, (_, _, inputs, _) in EXPERIMENTS.items():
        if name != "preimage":  # planned only with AlexNet weights (its own test)
            assert read_section({name: {}}).data_keys(name) == inputs
        assert all(key in DATA_FILES for key in inputs)
