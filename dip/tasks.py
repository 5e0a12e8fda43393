"""The one table of restoration tasks (torch-free): each task's level and its label, the authors' preset per level,
and the baselines it offers. The library (:mod:`dip.restore`, :mod:`dip.baselines`), the ``dip`` command and the
workflow's planner all read it, so they cannot disagree about which preset ``sr`` at x8 runs.

Levels: the SR factor (``x4``), the noise sigma on the 0-255 scale (``sigma25``) and the missing fraction of
pixels (``missing50`` for 0.5). JPEG restoration and flash/no-flash have no level.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from dip.errors import DipInputError

__all__ = [
    "Task",
    "Level",
    "TASKS",
    "LEVELLED_TASKS",
    "BASELINES",
    "LEARNING_CURVE_KINDS",
    "get_task",
    "level_label",
    "parse_level",
    "default_preset",
    "baselines_for",
]


@dataclass(frozen=True)
class Task:
    """One task: its name, what its level means, the preset per level and its baselines.

    ``presets`` lists ``(lowest level, preset name)`` in ascending order: a level runs the preset of the highest
    threshold at or below it (SR x4 -> ``sr4``, x8 and above -> ``sr8``). A task without levels has one entry.
    ``default_level`` is the level a user gets without naming one (the ``dip`` command's default).
    """

    name: str
    level_prefix: str | None
    level_meaning: str
    presets: tuple[tuple[float, str], ...]
    baselines: tuple[str, ...] = ()
    default_level: float | None = None

    @property
    def has_levels(self) -> bool:
        return self.level_prefix is not None


TASKS: dict[str, Task] = {
    "denoise": Task(
        "denoise",
        "sigma",
        "Gaussian noise sigma on the 0-255 scale (an integer)",
        presets=((0, "denoise"), (50, "denoise-sigma50")),
        baselines=("cbm3d", "nlm", "no_prior", "tv_prior"),
        default_level=25,
    ),
    "sr": Task(
        "sr",
        "x",
        "super-resolution factor (an integer >= 2)",
        presets=((0, "sr4"), (8, "sr8")),
        baselines=("bicubic", "no_prior", "tv_prior"),
        default_level=4,
    ),
    "inpaint": Task(
        "inpaint",
        "missing",
        "fraction of missing pixels in (0, 1), in whole percent",
        presets=((0, "inpaint-pixels"),),
        baselines=("biharmonic", "no_prior", "tv_prior"),
        default_level=0.5,
    ),
    "jpeg": Task("jpeg", None, "no level", presets=((0, "jpeg"),)),
    "flash": Task("flash", None, "no level", presets=((0, "flash"),)),
}

# The tasks with degradation levels: the benchmark tables, the workflow's fit/score stages.
LEVELLED_TASKS: tuple[str, ...] = tuple(name for name, task in TASKS.items() if task.has_levels)

# Baseline -> the tasks that offer it (the inverse of Task.baselines, kept in the table's order).
BASELINES: dict[str, tuple[str, ...]] = {}
for _task in TASKS.values():
    for _baseline in _task.baselines:
        BASELINES.setdefault(_baseline, ())
        BASELINES[_baseline] += (_task.name,)

# The targets of the learning curves of Fig. 2 (kind -> the figure's name for it), in the figure's order: the network
# fits a natural image fast, the same image + noise and a pixel-shuffled image slowly, and pure noise slowest ("high
# impedance to noise"). dip.data.degrade.learning_curve_target makes them; the planner and the figure read this list.
LEARNING_CURVE_KINDS: dict[str, str] = {
    "image": "Image",
    "image_noise": "Image + noise",
    "shuffled": "Image, pixels shuffled",
    "noise": "U(0, 1) noise",
}


def get_task(name: str, *, levelled: bool = False) -> Task:
    """The :class:`Task` named ``name``; a clear error for an unknown one (or, with ``levelled``, one without levels)."""
    choices = LEVELLED_TASKS if levelled else tuple(TASKS)
    if name not in choices:
        raise DipInputError(f"unknown task {name!r}; choose one of: {', '.join(choices)}")
    return TASKS[name]


def _check_level(task: Task, level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not math.isfinite(level):
        raise DipInputError(f"a {task.name} level must be a finite number, got {level!r}")
    if task.name == "sr":
        if int(level) != level or level < 1:
            raise DipInputError(f"an SR level is an integer factor >= 1, got {level!r}")
    elif task.name == "denoise":
        if level <= 0 or int(level) != level:
            raise DipInputError(f"a denoising level is an integer sigma on the 0-255 scale (e.g. 25), got {level!r}")
    elif task.name == "inpaint":
        if not 0 < level < 1:
            raise DipInputError(f"an inpainting level is the missing fraction in (0, 1), e.g. 0.5, got {level!r}")
        if not math.isclose(round(100 * level) / 100, level):
            raise DipInputError(f"inpainting levels are whole percentages (e.g. 0.5), got {level!r}")
    return level


def level_label(task: str, level: float) -> str:
    """The path-safe label of a degradation level: ``x4`` (SR factor), ``sigma25`` (noise), ``missing50`` (%)."""
    spec = get_task(task, levelled=True)
    level = _check_level(spec, level)
    number = round(100 * level) if task == "inpaint" else int(level)
    return f"{spec.level_prefix}{number}"


def parse_level(task: str, label: str) -> float:
    """Inverse of :func:`level_label`: ``"x4"`` -> 4, ``"sigma25"`` -> 25, ``"missing50"`` -> 0.5."""
    prefix = get_task(task, levelled=True).level_prefix
    if not label.startswith(prefix) or not label[len(prefix) :].isdigit():
        raise DipInputError(f"bad {task} level label {label!r}; expected {prefix}<integer>")
    value = int(label[len(prefix) :])
    return value / 100 if task == "inpaint" else value


@dataclass(frozen=True)
class Level:
    """One degradation level of a task, made once from the config and carried from the plan to the score: its
    path-safe ``label`` (``x4``, ``sigma25``, ``missing50``: what paths and wildcards hold) and its ``value`` (4, 25,
    0.5: what the library takes) together, so that nothing parses a label back."""

    task: str
    label: str
    value: float

    @classmethod
    def of(cls, task: str, value: float) -> Level:
        """The level ``value`` of ``task`` (checked); its value as its label says it (``25.0`` -> 25)."""
        label = level_label(task, value)
        return cls(task, label, parse_level(task, label))


def default_preset(task: str, level: float | None = None) -> str:
    """The preset the authors used for ``task`` at ``level`` (its default level when None)."""
    spec = get_task(task)
    if level is None or not spec.has_levels:
        level = spec.default_level if spec.has_levels else 0
    else:
        level = _check_level(spec, level)
    chosen = spec.presets[0][1]
    for lowest, name in spec.presets:
        if level >= lowest:
            chosen = name
    return chosen


def baselines_for(task: str) -> tuple[str, ...]:
    """The baselines ``task`` offers (the workflow's ``baselines:`` choices for it)."""
    return get_task(task).baselines
