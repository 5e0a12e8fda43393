"""dip.tasks, the one task table: level labels, the authors' preset per task and level, baselines, clear errors."""

from __future__ import annotations

import pytest

from dip import tasks
from dip.errors import DipInputError


@pytest.mark.parametrize(
    "task,level,label",
    [("sr", 4, "x4"), ("sr", 8, "x8"), ("denoise", 25, "sigma25"), ("denoise", 50, "sigma50"),
     ("inpaint", 0.5, "missing50"), ("inpaint", 0.1, "missing10")],
)
def test_level_labels_round_trip(task, level, label):
    assert tasks.level_label(task, level) == label
    assert tasks.parse_level(task, label) == level


@pytest.mark.parametrize(
    "task,level,message",
    [("sr", 2.5, "integer factor"), ("sr", 0, "integer factor"), ("denoise", 0, "integer sigma"),
     ("denoise", 37.5, "integer sigma"), ("inpaint", 1.0, "in \\(0, 1\\)"), ("inpaint", 0.505, "whole percent"),
     ("jpeg", 1, "unknown task 'jpeg'; choose one of: denoise, sr, inpaint")],
)
def test_bad_levels_are_refused_with_the_reason(task, level, message):
    with pytest.raises(DipInputError, match=message):
        tasks.level_label(task, level)


@pytest.mark.parametrize("task,label", [("denoise", "x4"), ("sr", "x"), ("inpaint", "missing-5"), ("sr", "X4")])
def test_parse_level_refuses_a_label_of_another_form(task, label):
    prefix = tasks.TASKS[task].level_prefix
    with pytest.raises(DipInputError, match=f"bad {task} level label .*expected {prefix}<integer>"):
        tasks.parse_level(task, label)


@pytest.mark.parametrize(
    "task,level,preset",
    [("sr", 4, "sr4"), ("sr", 2, "sr4"), ("sr", 8, "sr8"), ("sr", 16, "sr8"), ("sr", None, "sr4"),
     ("denoise", 25, "denoise"), ("denoise", 15, "denoise"), ("denoise", 50, "denoise-sigma50"),
     ("denoise", 75, "denoise-sigma50"), ("denoise", None, "denoise"), ("inpaint", 0.5, "inpaint-pixels"),
     ("inpaint", None, "inpaint-pixels"), ("jpeg", None, "jpeg"), ("flash", None, "flash")],
)
def test_default_preset_by_task_and_level(task, level, preset):
    from dip.presets import PRESETS

    assert tasks.default_preset(task, level) == preset
    assert preset in PRESETS


def test_every_preset_in_the_table_exists_and_thresholds_ascend():
    from dip.presets import PRESETS

    for task in tasks.TASKS.values():
        lows = [low for low, _ in task.presets]
        assert lows == sorted(lows) and lows[0] == 0, task.name
        assert all(name in PRESETS for _, name in task.presets), task.name
        if task.has_levels:
            tasks.level_label(task.name, task.default_level)  # the default level is a valid level


def test_unknown_tasks_and_levels_say_what_to_do():
    with pytest.raises(DipInputError, match="unknown task 'deblur'; choose one of: denoise, sr, inpaint, jpeg, flash"):
        tasks.default_preset("deblur")
    with pytest.raises(DipInputError, match="unknown task 'flash'; choose one of: denoise, sr, inpaint"):
        tasks.get_task("flash", levelled=True)
    with pytest.raises(DipInputError, match="integer factor"):
        tasks.default_preset("sr", 3.5)
    assert isinstance(tasks.get_task("sr"), tasks.Task)


def test_baselines_are_the_inverse_of_the_table():
    assert tasks.LEVELLED_TASKS == ("denoise", "sr", "inpaint")
    assert tasks.baselines_for("sr") == ("bicubic", "no_prior", "tv_prior")
    assert tasks.baselines_for("jpeg") == ()
    assert tasks.BASELINES["no_prior"] == ("denoise", "sr", "inpaint")
    assert tasks.BASELINES["biharmonic"] == ("inpaint",)
    for name, offered_by in tasks.BASELINES.items():
        assert all(name in tasks.baselines_for(t) for t in offered_by)


def test_the_table_is_what_every_reader_uses():
    """No module keeps its own copy of the task list: the operator, the inputs check and the command follow the table."""
    from dip import cli, physics, restore
    from dip.data import benchmarks

    for module in (physics, restore, benchmarks):
        assert not hasattr(module, "TASKS") and not hasattr(module, "TASK_NAMES"), module.__name__
    assert not hasattr(benchmarks, "default_preset") and not hasattr(benchmarks, "level_label")
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    assert set(tasks.TASKS) <= set(commands)
    for task in tasks.TASKS:
        physics.build_operator(task, channels=3, factor=4 if task == "sr" else None,
                               mask=[[1.0]] if task == "inpaint" else None)
    with pytest.raises(DipInputError, match="choose one of: denoise, sr, inpaint, jpeg, flash"):
        physics.build_operator("deblur", channels=3)


@pytest.mark.parametrize("level", [float("nan"), float("inf"), "4", True])
def test_a_level_must_be_a_finite_number(level):
    with pytest.raises(DipInputError, match="finite number"):
        tasks.level_label("sr", level)

