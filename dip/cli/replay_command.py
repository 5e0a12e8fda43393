"""``dip replay RECORD -o NEW.png``: run a recorded fit again, from the command line its sidecar holds (relative paths
against the folder it ran in), refusing inputs whose sha256 changed and warning when this version of dip builds other
settings from it."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
from pathlib import Path

from dip import tasks
from dip.cli import restore_command
from dip.errors import DipInputError

log = logging.getLogger("dip")


def add_parser(sub) -> None:
    """``dip replay`` and its options, on the subcommands ``sub``."""
    rep = sub.add_parser("replay", help="run a fit again from its JSON record (the sidecar)",
                         description="Run the fit a sidecar records again: the same task, inputs (checked by sha256), "
                                     "parameters, seed and options, writing a new output. A fit on the same machine "
                                     "and device gives the same image.")
    rep.add_argument("record", type=Path, help="the JSON record of a `dip <task>` run (its sidecar)")
    rep.add_argument("-o", "--output", type=Path, required=True,
                     help="the new restored image (PNG); refused if it is one of the run's inputs or the record")
    rep.add_argument("--sidecar", type=Path, help="its JSON record (default: OUTPUT with .json)")
    rep.add_argument("--checkpoint", type=Path, help="checkpoint file for the new run (none by default)")
    rep.add_argument("--device", help="run on this device instead of the recorded one (auto | cpu | cuda | cuda:N; "
                                      "default: the recorded one)")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`dip replay RECORD -o OUT`: parse the recorded command line (with ``parser``, the command's), point it at the
    new outputs, check that the inputs are the recorded files (sha256), and run it."""
    try:
        record = json.loads(args.record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DipInputError(f"cannot read the record {args.record}: {err}") from None
    command = record.get("command") if isinstance(record, dict) else None
    if not isinstance(command, dict) or not command.get("argv"):
        raise DipInputError(f"{args.record} holds no command line (not written by `dip <task>`, or by a dip older than "
                            "`dip replay`); run the command again by hand")  # fmt: skip
    cwd = Path(command.get("cwd") or ".")
    try:
        fit_args = parser.parse_args(command["argv"])
    except SystemExit:
        raise DipInputError(f"the command recorded in {args.record} does not parse: {command.get('line')}") from None
    if fit_args.command not in tasks.TASKS:
        raise DipInputError(f"{args.record} records `dip {fit_args.command}`, not a fit")
    for role in ("input", "gt", "mask", "flash"):  # the options that name the inputs, and their roles in the record
        path = getattr(fit_args, role, None)
        if path is not None and not path.is_absolute():
            path = cwd / path
            setattr(fit_args, role, path)
        facts = (record.get("inputs") or {}).get(role)
        if path is None or facts is None:
            continue
        if not path.is_file():
            raise DipInputError(f"the recorded {role} {path} is not there any more")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != facts.get("sha256"):
            raise DipInputError(f"the recorded {role} {path} changed since the record (sha256 {digest[:12]}... vs "
                                f"{str(facts.get('sha256'))[:12]}...); a replay needs the same inputs")  # fmt: skip
    fit_args.output, fit_args.sidecar, fit_args.checkpoint = args.output, args.sidecar, args.checkpoint
    fit_args.early_output = None
    fit_args.checkpoint_every = None if args.checkpoint is None else fit_args.checkpoint_every
    if args.device is not None:
        fit_args.device = args.device
    fit_args.quiet = fit_args.quiet or args.quiet
    fit_args.replay_of = args.record
    log.info("replaying %s", shlex.join(["dip", *restore_command.command_line(fit_args)]))
    return restore_command.run(fit_args, replay_record=record)
