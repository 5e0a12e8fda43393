"""``dip presets``: the authors' settings, and the preset each ``dip <task>`` runs without ``--preset``."""

from __future__ import annotations

from dip import tasks
from dip.cli.restore_command import preset_rule


def add_parser(sub) -> None:
    """``dip presets`` on the subcommands ``sub``."""
    sub.add_parser("presets", help="list the presets (the authors' per-task settings) and each task's default",
                   description="List the presets (the authors' per-task settings) and the preset each task runs "
                               "without --preset.")


def run() -> int:
    from dip import presets

    for name, text in presets.describe():
        print(f"{name:16s} {text}")
    from dip import methods

    print("\nThe DIP family (dip <task> --method M runs M's preset for the task; other tasks are refused):")
    for name, text in methods.describe():
        print(f"  {name:7s} {text}")
    print("\nThe preset each command runs without --preset:")
    for task in tasks.TASKS:
        print(f"  dip {task:9s} {preset_rule(task)}")
    return 0
