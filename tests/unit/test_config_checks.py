"""The config checks beyond the schema (dip.pipeline.config_checks), as the planner runs them: each mistake is refused in
one line."""

from __future__ import annotations

import pytest

from dip.data.manifest import Manifest
from dip.errors import DipInputError
from dip.pipeline.plan import build_plan
from tests.helpers import plan_of, workflow_config

pytestmark = pytest.mark.usefixtures("in_repo")  # the configs name the manifest relative to it


@pytest.mark.parametrize(
    "override, message",
    [
        ({"experiments": [{"dataset": "nowhere", "task": "sr", "levels": [4]}]}, "'nowhere' is not defined"),
        ({"experiments": [{"dataset": "photos", "task": "sr", "levels": [3.5]}]}, "SR level"),
        ({"experiments": [{"dataset": "photos", "task": "inpaint", "levels": [0.505]}]}, "whole percentages"),
        (
            {"experiments": [{"dataset": "photos", "task": "sr", "levels": [4], "baselines": ["cbm3d"]}]},
            "'cbm3d' does not apply to 'sr'",
        ),
        ({"experiments": [{"dataset": "photos", "task": "sr", "levels": [4]}] * 2}, "two experiments"),
        ({"datasets": {"photos": {"source": "embedded", "images": ["lena"]}}}, r"unknown image\(s\) \['lena'\]"),
        (
            {
                "datasets": {"set6": {"source": "benchmark"}},
                "experiments": [{"dataset": "set6", "task": "sr", "levels": [4]}],
            },
            "named after its benchmark",
        ),
        (
            {
                "datasets": {"set5": {"source": "benchmark"}},
                "experiments": [{"dataset": "set5", "task": "denoise", "levels": [25]}],
            },
            "is a sr benchmark, not denoise",
        ),
        (
            {
                "datasets": {"set5": {"source": "benchmark"}},
                "experiments": [{"dataset": "set5", "task": "sr", "levels": [3]}],
            },
            "has no level 3",
        ),
        ({"released": {"set5": [3]}}, "no level"),
        ({"released": {"set7": [4]}}, "unknown benchmark 'set7'"),
        ({"learning_curves": {"dataset": "photos", "image": "lena"}}, "learning_curves: dataset 'photos' has no image"),
        ({"paper_experiments": {"jpg": {}}}, "unknown experiment 'jpg'"),
    ],
)
def test_bad_config_is_refused(override, message):
    with pytest.raises(DipInputError, match=message):
        plan_of(**override)


def test_manifest_without_a_checksum_is_refused(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("path\tsha256\nsomething/else.png\t" + "0" * 64 + "\n")
    with pytest.raises(DipInputError, match="no checksum for"):
        build_plan(workflow_config("config/paper.yaml"), Manifest.read(manifest))
