"""A part of a config to run (dip.pipeline.selection): ``only:`` paths and ``select:`` names, checked against what
the config defines."""

from __future__ import annotations

import pytest

from dip.errors import DipInputError
from dip.pipeline.selection import Selection

DEFINED = {("set5", "sr"): {"levels": ["x4", "x8"], "images": ["bird", "head"], "seeds": [0, 1]}}


def test_only_keeps_the_fits_under_its_paths():
    only = Selection.from_config({"only": ["set5/sr/4/bird", "set5/sr/x8/head/seed1"]})
    only.check(DEFINED)
    assert only.active and only.keeps("set5", "sr", "x4") and only.keeps("set5", "sr", "x4", "bird", 0)
    assert not only.keeps("set5", "sr", "x4", "head") and only.keeps("set5", "sr", "x8", "head", 1)
    assert not only.keeps("set5", "sr", "x8", "head", 0)


def test_select_keeps_what_every_list_names():
    select = Selection.from_config({"select": {"levels": [4], "seeds": [1], "experiments": ["jpeg"]}})
    select.check(DEFINED)
    assert select.keeps("set5", "sr", "x4", "bird", 1) and not select.keeps("set5", "sr", "x4", "bird", 0)
    assert not select.keeps("set5", "sr", "x8")
    assert select.keeps_extra("jpeg") and not select.keeps_extra("learning_curves")
    everything = Selection.all()
    assert not everything.active and everything.keeps_extra("learning_curves") and everything.keeps("a", "b", "c")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"only": "set5/sr/x4/bird/seed0/more"}, "is not dataset"),
        ({"select": {"colours": ["red"]}}, "unknown key"),
        ({"only": "set14"}, "no experiment of the config runs dataset 'set14'"),
        ({"only": "set5/denoise"}, "runs no task 'denoise'"),
        ({"only": "set5/sr/x2"}, "runs no level 'x2'"),
        ({"only": "set5/sr/x4/lena"}, "has no image 'lena'"),
        ({"only": "set5/sr/x4/bird/seed7"}, "runs no 'seed7'"),
        ({"select": {"datasets": ["set14"]}}, "is not run by the config"),
        ({"select": {"images": ["lena"]}}, "is in no dataset"),
        ({"select": {"levels": [2]}}, "is run by no experiment"),
    ],
)
def test_a_name_the_config_does_not_define_is_refused_in_one_line(config, message):
    with pytest.raises(DipInputError, match=message):
        Selection.from_config(config).check(DEFINED)
