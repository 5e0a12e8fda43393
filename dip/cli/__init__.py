"""The ``dip`` command: restore one image.

    dip denoise noisy.png -o out.png [--sigma 25] [--gt clean.png] [--preset P] [--iters N] [--seed S] [--device auto]
    dip sr lr.png --factor 4 -o out.png                  (--factor 8 runs the x8 preset)
    dip inpaint image.png --mask mask.png -o out.png      (or --missing 0.5 for a seeded Bernoulli mask)
    dip jpeg photo.jpg -o out.png
    dip flash noflash.png --flash flash.png -o out.png
    dip denoise noisy.png -o out.png --early-stop        (ES-WMV: stop at the detected step; --early-stop-record)
    dip replay out.json -o again.png                     (repeat a run from its record)
    dip degrade noise|lr|mask ...                        (make test inputs as the paper did)
    dip presets                                          (list the authors' settings and which task uses which)

Without ``--preset`` the task and its level choose the preset, from the task table (:mod:`dip.tasks`): ``sr
--factor 8`` runs ``sr8``, ``denoise --sigma 50`` runs ``denoise-sigma50``. Without ``--iters`` a fit stops by the
task's auto rule (:mod:`dip.fit.stopping`: denoising stops where its residual reaches the noise variance estimated
from the image), within the preset's step count; ``--iters N`` runs exactly N steps. The record always says where the
auto rule stopped, or would have.

No output (the image, its sidecar, the early output, the checkpoint) may be one of the inputs: paths are compared
after resolving links, and hard links by inode. The sidecar holds the task's parameters, the inputs (paths and
sha256) and the command line, so that ``dip replay`` runs the same fit again.

Exit codes: 0 done; 2 bad input, a file or an option value (said in one line on stderr; nothing written, and every
option is checked before any image is read or any fit starts); 143 interrupted by SIGTERM (checkpoint written, re-run
to resume); 1 anything else. The output PNG and its JSON sidecar are written atomically.

The command, one concern a module: this module parses the command line and dispatches; :mod:`dip.cli.restore_command` is
``dip <task>`` (its options, their checks, the fit and its record), :mod:`dip.cli.output` what it says about the image
it wrote, :mod:`dip.cli.arguments` the value checks every subcommand shares, :mod:`dip.cli.degrade_command`,
:mod:`dip.cli.replay_command` and :mod:`dip.cli.presets_command` the other subcommands.
"""

from __future__ import annotations

import argparse
import logging
import sys

from dip import tasks
from dip.cli import degrade_command, presets_command, replay_command, restore_command
from dip.errors import DipInputError

log = logging.getLogger("dip")


class Parser(argparse.ArgumentParser):
    """argparse with its own errors (a missing argument, a value of the wrong type) in one line on stderr, exit 2, like
    the errors the command finds itself."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command: one subcommand a task (:data:`dip.tasks.TASKS`), then degrade, replay and presets."""
    parser = Parser(prog="dip", description="Deep Image Prior: restore one image without training data.")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    sub = parser.add_subparsers(dest="command")
    for task in tasks.TASKS:
        restore_command.add_parser(sub, task)
    degrade_command.add_parser(sub)
    replay_command.add_parser(sub)
    presets_command.add_parser(sub)
    return parser


def print_versions() -> int:
    from dip.restore import environment_info

    for key, value in environment_info().items():
        print(f"{key}: {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``dip ...``: the exit code (0 done, 2 bad input, 130 interrupted, 143 SIGTERM; an unexpected error raises)."""
    logging.basicConfig(level=logging.INFO, format="dip: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        return print_versions()
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "presets":
            return presets_command.run()
        if args.command == "degrade":
            return degrade_command.run(args)
        if args.command == "replay":
            return replay_command.run(args, parser)
        return restore_command.run(args, argv=list(sys.argv[1:] if argv is None else argv))
    except DipInputError as err:
        log.error("%s", err)
        return err.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as err:  # noqa: BLE001 - FitInterrupted and unexpected errors get their own exit codes
        from dip.fit import FitInterrupted

        if isinstance(err, FitInterrupted):
            log.error("%s", err)
            return FitInterrupted.exit_code
        raise
