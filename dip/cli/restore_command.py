"""``dip denoise | sr | inpaint | jpeg | flash``: restore one image. The options every task shares and its own (the
level that chooses the preset, the mask, the flash image), the checks of their values before any image is read, the
fit (:func:`dip.restore.restore`) and the record written beside the image: the task's parameters, the inputs' sha256
and the command line that ``dip replay`` runs again."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shlex
from pathlib import Path

from dip import tasks
from dip.cli import output
from dip.cli.arguments import (
    MAX_SEED, check_device, check_distinct, check_int, check_not_inputs, check_number, check_png,
)
from dip.errors import DipInputError
from dip.methods import METHODS

log = logging.getLogger("dip")

# One line of help per task (the task list itself is dip.tasks.TASKS).
TASK_HELP = {
    "denoise": "remove noise (observation model: identity)",
    "sr": "super-resolve by --factor (observation model: Lanczos downsampler)",
    "inpaint": "fill missing pixels (observation model: mask)",
    "jpeg": "blind restoration of a JPEG (identity model, early stopping matters)",
    "flash": "flash / no-flash reconstruction (network input: the flash image)",
}
# The option that gives a task's level, for the tasks whose preset depends on it. The inpainting level (--missing)
# does not: its table has one preset, and a --mask file has no level at all.
LEVEL_OPTIONS = {"sr": "--factor", "denoise": "--sigma"}


def preset_rule(task: str) -> str:
    """How ``dip <task>`` chooses its preset, in words (from the task table): ``--factor < 8: sr4; >= 8: sr8``."""
    spec = tasks.get_task(task)
    option = LEVEL_OPTIONS.get(task)
    if option is None or len(spec.presets) == 1:
        return spec.presets[0][1]
    parts = []
    for i, (lowest, name) in enumerate(spec.presets):
        above = spec.presets[i + 1][0] if i + 1 < len(spec.presets) else None
        if i == 0:
            parts.append(f"{option} < {above:g}: {name}")
        elif above is None:
            parts.append(f"{option} >= {lowest:g}: {name}")
        else:
            parts.append(f"{lowest:g} <= {option} < {above:g}: {name}")
    return "; ".join(parts)


def _task_level(task: str, args: argparse.Namespace) -> float | None:
    """The level that chooses the preset (the SR factor, the noise sigma); None for the other tasks."""
    option = LEVEL_OPTIONS.get(task)
    return None if option is None else getattr(args, option.lstrip("-"))


def add_parser(sub, task: str) -> None:
    """``dip <task>`` and its options, on the subcommands ``sub``."""
    text = TASK_HELP[task]
    add_arguments(sub.add_parser(task, help=text, description=text), task)


def add_arguments(p: argparse.ArgumentParser, task: str) -> None:
    p.add_argument("input", type=Path, help="the degraded image (PNG, JPEG, TIFF, ...); no output may overwrite it")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="restored image (PNG); refused if it is an input file (also through a link)")
    p.add_argument("--sidecar", type=Path,
                   help="JSON record: settings, inputs, command line, history (default: OUTPUT with .json); "
                        "`dip replay SIDECAR -o NEW.png` repeats the run")
    p.add_argument("--gt", type=Path,
                   help="ground truth (the size of the result): PSNR against it is logged during the fit and "
                        "printed for the image written (default: none)")
    p.add_argument("--method", choices=list(METHODS), default="dip",
                   help="the member of the DIP family to fit (see `dip presets`): dip (default), dd (Deep Decoder), "
                        "dip-tv, sgld (Bayesian DIP), drp (Deep Random Projector), sure (DIP-SURE); each runs its "
                        "authors' preset and refuses a task its paper does not do")
    p.add_argument("--preset", help=f"settings to start from (see `dip presets`); default: {preset_rule(task)}. A "
                                    "preset of another task is refused (denoise and jpeg: a warning)")
    p.add_argument("--stop", choices=["auto", "fixed"],
                   help="auto: end the fit near its best step without ground truth (the task's rule: denoising "
                        "stops where the residual reaches the noise variance estimated from the image; other tasks "
                        "run the preset's steps), at most the preset's steps or --iters; fixed: run every step. "
                        "Default: auto, or fixed with --iters, --early-stop or --early-stop-record. The record says "
                        "where the auto rule stopped or would have")
    p.add_argument("--iters", type=int, help="a fixed budget of N optimisation steps (default: the preset's); "
                                             "overrides the auto stop unless --stop auto, which then stops within N")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the preset's)")
    p.add_argument("--reg-noise-std", type=float,
                   help="std of the fresh input perturbation per step (default: the preset's)")
    p.add_argument("--exp-weight", type=float,
                   help="EMA weight of outputs (0 disables averaging; default: the preset's)")
    p.add_argument("--width", type=int, help="cap the channels of the skip network (e.g. 32 for quick CPU runs; "
                                             "default: the preset's network, uncapped)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the network's initial weights, its input z and the per-step input noise"
                        f"{' (and of the --missing mask)' if task == 'inpaint' else ''} (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto: CUDA when present)")
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"],
                   help="bf16 autocasts the forward pass; auto = bf16 where the CPU/GPU has native bf16, else fp32 "
                        "(default: the preset's, fp32)")
    p.add_argument("--memory-saving", choices=["auto", "on", "off"], default="auto",
                   help="activation checkpointing (same result, ~1.1-1.35x the time per step, a fifth of the "
                        "activations kept): auto = only when the plain fit would not fit the memory budget (default)")
    p.add_argument("--memory-budget", type=float, metavar="GB",
                   help="memory the fit may use (default: 80%% of the available RAM on CPU, the free memory on CUDA)")
    p.add_argument("--log-every", type=int, help="steps between logged loss/PSNR values (default: the preset's, 50); "
                                                 "the auto stop decides on logged steps")
    p.add_argument("--checkpoint", type=Path,
                   help="checkpoint file: written every --checkpoint-every steps and on SIGTERM, resumed from when "
                        "the command runs again with the same images and settings (one made for other images is "
                        "refused), removed once the fit ends and OUTPUT is written (default: none)")
    p.add_argument("--checkpoint-every", type=int,
                   help="steps between checkpoints (needs --checkpoint; default 0: only on SIGTERM)")
    p.add_argument("--no-crop", action="store_true", help="refuse sizes the network cannot take instead of cropping")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    es = p.add_mutually_exclusive_group()
    es.add_argument("--early-stop", action="store_true",
                    help="ES-WMV early stopping: stop once the output variance has not improved for --es-patience "
                         "steps; OUTPUT is the output at the detected step")
    es.add_argument("--early-stop-record", action="store_true",
                    help="run all steps (OUTPUT as without early stopping) but detect the ES-WMV step and write its "
                         "output to --early-output")
    p.add_argument("--es-window", type=int, default=100, help="ES-WMV variance window (default 100)")
    p.add_argument("--es-patience", type=int, default=1000, help="ES-WMV patience in steps (default 1000)")
    p.add_argument("--early-output", type=Path, help="with --early-stop-record: the detected step's output "
                                                     "(default: OUTPUT with .early.png)")
    if task == "sr":
        p.add_argument("--factor", type=int, required=True,
                       help=f"upsampling factor (4 or 8 in the paper); chooses the preset: {preset_rule(task)}")
    if task == "denoise":
        default = tasks.get_task(task).default_level
        p.add_argument("--sigma", type=float,
                       help=f"the noise level you expect, on the 0-255 scale (default {default:g}); chooses the "
                            f"preset: {preset_rule(task)}. The auto stop estimates the noise from the image itself "
                            "(a warning says when the two disagree)")
    if task == "inpaint":
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--mask", type=Path, help="mask image: white (1) = known pixel, black (0) = missing")
        group.add_argument("--missing", type=float, help="drop this fraction of pixels at random (seeded by --seed)")
    if task == "flash":
        p.add_argument("--flash", type=Path, required=True, help="the flash image (the network's input)")



def check_args(task: str, args: argparse.Namespace) -> None:
    """Every option of ``dip <task>`` that argparse cannot check: before any image is read or any fit starts."""
    check_png("the output (-o)", args.output)
    check_png("--early-output", args.early_output)
    if args.early_output is not None and not args.early_stop_record:
        raise DipInputError("--early-output needs --early-stop-record")
    sidecar = args.sidecar or args.output.with_suffix(".json")
    check_distinct({"the output (-o)": args.output, "the sidecar (--sidecar)": sidecar,
                    "the early output (--early-output)": output.early_png(args),
                    "--checkpoint": args.checkpoint})
    check_int("--iters", args.iters, 1)
    check_number("--lr", args.lr, low=0.0, low_ok=False)
    check_number("--reg-noise-std", args.reg_noise_std, low=0.0)
    check_number("--exp-weight", args.exp_weight, low=0.0, high=1.0, note=" (0 disables averaging)")
    check_int("--width", args.width, 1)
    check_int("--seed", args.seed, 0, MAX_SEED, "2**63 - 1")
    check_device(args.device)
    check_number("--memory-budget", args.memory_budget, low=0.0, low_ok=False, note=" (gigabytes)")
    check_int("--log-every", args.log_every, 1)
    check_int("--checkpoint-every", args.checkpoint_every, 0)
    if args.checkpoint_every and not args.checkpoint:
        raise DipInputError("--checkpoint-every needs --checkpoint PATH")
    for option, path in (("--checkpoint", args.checkpoint), ("--sidecar", args.sidecar)):
        if path is not None and path.is_dir():
            raise DipInputError(f"{option} must be a file, but {path} is a folder")
    check_int("--es-window", args.es_window, 2)
    check_int("--es-patience", args.es_patience, 1)
    if task == "denoise":
        check_number("--sigma", args.sigma, low=0.0, low_ok=False, note=" (on the 0-255 scale)")
    if task == "inpaint":
        check_number("--missing", args.missing, low=0.0, high=1.0)
    if args.stop == "auto" and args.early_stop:
        raise DipInputError("--stop auto and --early-stop are two rules to stop by; choose one")
    check_not_inputs(_output_paths(args), _input_paths(task, args))


def _input_paths(task: str, args: argparse.Namespace) -> dict[str, Path | None]:
    """The files a fit reads, by the option that names them."""
    return {"the input": args.input, "--gt": args.gt, "--mask": getattr(args, "mask", None),
            "--flash": getattr(args, "flash", None), "the replayed record": getattr(args, "replay_of", None)}


def _output_paths(args: argparse.Namespace) -> dict[str, Path | None]:
    """The files a fit writes (the checkpoint is also read, but only as a checkpoint)."""
    return {"the output (-o)": args.output, "the sidecar": args.sidecar or args.output.with_suffix(".json"),
            "the early output": output.early_png(args), "--checkpoint": args.checkpoint}  # fmt: skip


def stop_mode(args: argparse.Namespace) -> str:
    """auto (the auto rule ends the fit), fixed (every step), es-wmv (--early-stop ends it)."""
    if args.early_stop:
        return "es-wmv"
    if args.stop is not None:
        return args.stop
    return "fixed" if args.iters is not None or args.early_stop_record else "auto"


def _preset_task(name: str) -> str | None:
    """The task a preset was made for (by its name: ``sr4`` -> sr, ``inpaint-text`` -> inpaint), None if unknown."""
    for task in tasks.TASKS:
        if name == task or name.startswith(task):
            return task
    return None


def check_preset_task(task: str, preset: str) -> None:
    """Refuse a preset of another task; denoising and JPEG restoration (one observation model, no special input)
    may run each other's with a warning."""
    made_for = _preset_task(preset)
    if made_for is None or made_for == task:
        return
    if {made_for, task} == {"denoise", "jpeg"}:
        log.warning("--preset %s is made for `dip %s`; running it for `dip %s` (the same observation model)",
                    preset, made_for, task)
        return
    own = sorted({name for _, name in tasks.get_task(task).presets})
    raise DipInputError(f"--preset {preset} is made for `dip {made_for}`, not `dip {task}`; use one of "
                        f"{task}'s presets (default {', '.join(own)}; see `dip presets`)")  # fmt: skip


def _file_facts(path: Path | None) -> dict | None:
    """A file's path as given, resolved, its size and sha256: enough to find it again and know it is the same."""
    if path is None:
        return None
    data = Path(path).read_bytes()
    return {"path": str(path), "resolved": str(Path(path).resolve()), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip


def _task_parameters(task: str, args: argparse.Namespace) -> dict:
    """The task's own parameters, as given on the command line (None where not given)."""
    params = {}
    if task == "sr":
        params["factor"] = args.factor
    if task == "denoise":
        params["sigma"] = args.sigma
        params["sigma_for_preset"] = args.sigma if args.sigma is not None else tasks.get_task(task).default_level
    if task == "inpaint":
        params["missing"] = args.missing
        params["mask"] = None if args.mask is None else str(args.mask)
        params["mask_seed"] = args.seed if args.missing is not None else None
    if task == "flash":
        params["flash"] = str(args.flash)
    params["gt"] = None if args.gt is None else str(args.gt)
    return params


def command_line(args: argparse.Namespace) -> list[str]:
    """The arguments of ``dip`` that run the fit ``args`` describes (canonical: every option that differs from its
    default, in the parser's order); ``dip replay`` and the record's ``command.line`` use it."""
    sub = argparse.ArgumentParser()  # the options of `dip <task>`, as its subcommand has them
    add_arguments(sub, args.command)
    argv = [args.command]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            argv.append(str(value))
        elif isinstance(action, argparse._StoreTrueAction):
            if value:
                argv.append(action.option_strings[-1])
        elif value is not None and value != action.default:
            argv += [action.option_strings[-1], str(value)]
    return argv


_RUN_SETTINGS = ("device", "precision", "checkpoint_every", "checkpoint_seconds", "memory_saving", "memory_budget_mb",
                 "compile", "compile_mode", "deterministic")  # fmt: skip


def compare_with_record(config, record: dict) -> None:
    """Warn when this version of dip builds other settings from the recorded command than the record holds."""
    recorded = record.get("config") or {}
    now = config.to_dict()
    differ = sorted(k for k in now if k not in _RUN_SETTINGS and k in recorded and recorded[k] != now[k])
    if differ:
        log.warning("replay: this version of dip builds other settings than the record's: %s",
                    ", ".join(f"{k} {recorded[k]!r} -> {now[k]!r}" for k in differ))  # fmt: skip


def run(args: argparse.Namespace, argv: list[str] | None = None, replay_record: dict | None = None) -> int:
    """``dip <task>``: check every option, choose the settings, read the inputs, fit, write the image and its record.

    argv: the command line as given (recorded beside the canonical one; default: the canonical one).
    replay_record: the record ``dip replay`` runs again (its settings are compared, its path recorded).
    """
    task = args.command
    check_args(task, args)

    from dip.restore import restore, save_result

    preset, config = _settings(task, args)
    mode = stop_mode(args)
    if replay_record is not None:
        compare_with_record(config, replay_record)

    observation, ground_truth, mask, guide = _read_inputs(task, args)
    inputs = {role: _file_facts(path) for role, path in
              (("input", args.input), ("gt", args.gt), ("mask", getattr(args, "mask", None)),
               ("flash", getattr(args, "flash", None))) if path is not None}  # fmt: skip

    early_stopping = None
    if args.early_stop or args.early_stop_record:
        early_stopping = {"window": args.es_window, "patience": args.es_patience, "stop": args.early_stop}
    result = restore(
        task, observation, config=config, factor=getattr(args, "factor", None), mask=mask,
        ground_truth=ground_truth, guide=guide, checkpoint_path=args.checkpoint, progress=not args.quiet,
        crop=not args.no_crop, early_stopping=early_stopping, auto_stop={"stop": mode == "auto"},
    )
    for note in result.notes:
        log.warning(note)
    output.say_auto_stop(task, args, result, mode)
    extra = _record(task, args, preset, inputs, mode, argv, replay_record)
    if early_stopping is not None:
        output.keep_early_output(args, result, extra)
    written = output.written(result, args, mode, extra, ground_truth)
    extra["output"] = written
    save_result(result, args.output, args.sidecar, extra=extra)
    if args.checkpoint is not None:  # the fit ended and its outputs are written: nothing left to resume
        args.checkpoint.unlink(missing_ok=True)
    log.info("%s", output.last_line(args.output, written, result))
    return 0


def _settings(task: str, args: argparse.Namespace):
    """The preset's name (``--preset``, or the task table's for the level) and the FitConfig the options make of it,
    validated before any image is read."""
    from dip import presets

    chosen = tasks.default_preset(task, _task_level(task, args))  # also checks the level (--factor, --sigma)
    chosen = _method_preset(task, args.method, args.preset) or chosen
    preset = args.preset or chosen
    presets.get_preset(preset)  # an unknown preset fails here, with the choices
    check_preset_task(task, preset)
    config = presets.get_preset(
        preset,
        width=args.width,
        iterations=args.iters,
        lr=args.lr,
        reg_noise_std=args.reg_noise_std,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        memory_saving=args.memory_saving,
        memory_budget_mb=None if args.memory_budget is None else max(1, round(args.memory_budget * 1024)),
    )
    if args.exp_weight is not None:
        config = config.replace(exp_weight=args.exp_weight if args.exp_weight > 0 else None)
    if args.method == "sure" and getattr(args, "sigma", None) is not None:  # DIP-SURE's known sigma
        config = config.replace(method_settings={**config.method_settings, "sigma": args.sigma})
    config.validate()  # the settings the preset brings, before any image is read
    return preset, config


def _method_preset(task: str, method: str, preset: str | None) -> str | None:
    """The preset ``--method`` runs for ``task`` (None for DIP: the task table's); refuses a task the method does not
    do and a --preset of another method."""
    from dip.methods import get_method, preset_for
    from dip.presets import PRESETS

    chosen = preset_for(method, task)
    if preset is not None and preset in PRESETS and PRESETS[preset][1].method != method:
        made_for = PRESETS[preset][1].method
        raise DipInputError(f"--preset {preset} is a {get_method(made_for).title} preset (--method {made_for}), not "
                            f"--method {method}'s; use {chosen or 'a DIP preset'} or --method {made_for}")  # fmt: skip
    return chosen


def _read_inputs(task: str, args: argparse.Namespace):
    """The observation, the ground truth, the mask (a file's or a seeded Bernoulli one) and the flash image."""
    from dip.data import degrade
    from dip.data.imageio import read_image

    observation = read_image(args.input)
    ground_truth = read_image(args.gt) if args.gt else None
    if ground_truth is not None and ground_truth.shape[2] != observation.shape[2]:
        raise DipInputError(
            f"the ground truth has {ground_truth.shape[2]} channel(s) but the input has {observation.shape[2]}"
        )
    mask = guide = None
    if task == "inpaint":
        if args.mask is not None:
            mask = degrade.mask_from_file(args.mask, observation.shape[:2])
        else:
            mask = degrade.bernoulli_mask(observation.shape[:2], args.missing, args.seed)
    if task == "flash":
        guide = read_image(args.flash, mode="rgb")
        observation = read_image(args.input, mode="rgb")
    return observation, ground_truth, mask, guide


def _record(task: str, args: argparse.Namespace, preset: str, inputs: dict, mode: str, argv: list[str] | None,
            replay_record: dict | None) -> dict:
    """What the command adds to the fit's record: the task, its parameters, the preset and why, the inputs' facts,
    the command line (as given and canonical), the stop mode and, for a replay, the record replayed."""
    argv = command_line(args) if argv is None else list(argv)
    extra = {
        "task": task, "method": args.method, "input": str(args.input), "preset": preset,
        "preset_from": "--preset" if args.preset else f"the task table ({preset_rule(task)})",
        "parameters": _task_parameters(task, args), "inputs": inputs,
        "command": {"argv": argv, "line": shlex.join(["dip", *argv]), "cwd": os.getcwd(),
                    "canonical": command_line(args)},
        "stop": {"mode": mode},
    }  # fmt: skip
    if replay_record is not None:
        extra["replayed_from"] = {"record": str(args.replay_of), "created": replay_record.get("created"),
                                  "line": (replay_record.get("command") or {}).get("line")}  # fmt: skip
    return extra
