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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import re
import shlex
import sys
from pathlib import Path

from dip import tasks
from dip.errors import DipInputError

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


# What --device takes; torch.device() would take more ("mps", "meta", "xla", ...) but fits run on the CPU or CUDA.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
MAX_SEED = 2**63 - 1  # torch.manual_seed takes up to 2**64 - 1 and a fit also seeds with seed + 1; numpy needs >= 0


class Parser(argparse.ArgumentParser):
    """argparse with its own errors (a missing argument, a value of the wrong type) in one line on stderr, exit 2, like
    the errors the command finds itself."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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


def _add_fit_arguments(p: argparse.ArgumentParser, task: str) -> None:
    p.add_argument("input", type=Path, help="the degraded image (PNG, JPEG, TIFF, ...); no output may overwrite it")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="restored image (PNG); refused if it is an input file (also through a link)")
    p.add_argument("--sidecar", type=Path,
                   help="JSON record: settings, inputs, command line, history (default: OUTPUT with .json); "
                        "`dip replay SIDECAR -o NEW.png` repeats the run")
    p.add_argument("--gt", type=Path,
                   help="ground truth (the size of the result): PSNR against it is logged during the fit and "
                        "printed for the image written")
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
    p.add_argument("--width", type=int, help="cap the channels of the skip network (e.g. 32 for quick CPU runs)")
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
    p.add_argument("--checkpoint", type=Path, help="checkpoint file: saved periodically and on SIGTERM, resumed from")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (needs --checkpoint)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dip", description="Deep Image Prior: restore one image without training data.")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    sub = parser.add_subparsers(dest="command")
    for task in tasks.TASKS:
        text = TASK_HELP[task]
        _add_fit_arguments(sub.add_parser(task, help=text, description=text), task)

    # The degradations default to the task table's default levels: what `dip <task>` assumes without one.
    deg = sub.add_parser("degrade", help="make degraded inputs as the paper did",
                         description="Make degraded inputs as the paper did: Gaussian noise, a low-resolution "
                                     "version, or a mask of missing pixels.")
    deg_sub = deg.add_subparsers(dest="kind", required=True)
    sigma = float(tasks.get_task("denoise").default_level)
    noise = deg_sub.add_parser("noise", help=f"add Gaussian noise (sigma on the 0-255 scale, default {sigma:g}), "
                                             "quantised to 8 bits like the released noisy inputs")
    noise.add_argument("input", type=Path, help="the clean image")
    noise.add_argument("-o", "--output", type=Path, required=True, help="the noisy image (PNG; not the input)")
    noise.add_argument("--sigma", type=float, default=sigma,
                       help=f"noise standard deviation on the 0-255 scale (default {sigma:g})")
    noise.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    factor = tasks.get_task("sr").default_level
    lr = deg_sub.add_parser("lr", help="crop HR to a multiple of 32 and downsample with PIL Lanczos "
                                       f"(default x{factor})")
    lr.add_argument("input", type=Path, help="the high-resolution image")
    lr.add_argument("-o", "--output", type=Path, required=True, help="the low-resolution image (PNG; not the input)")
    lr.add_argument("--factor", type=int, default=factor, help=f"downsampling factor (default {factor})")
    lr.add_argument("--hr-output", type=Path, help="also write the cropped HR image (the ground truth)")
    missing = tasks.get_task("inpaint").default_level
    mask = deg_sub.add_parser("mask", help=f"write a Bernoulli pixel mask (default {missing:g} missing) or a text mask")
    mask.add_argument("input", type=Path, help="image whose size the mask takes")
    mask.add_argument("-o", "--output", type=Path, required=True,
                      help="the mask (PNG; white = known, black = missing; not the input)")
    what = mask.add_mutually_exclusive_group()
    what.add_argument("--missing", type=float, default=missing,
                      help=f"fraction of missing pixels, drawn at random (Bernoulli; default {missing:g})")
    what.add_argument("--text", help="draw this text as the missing region instead")
    mask.add_argument("--seed", type=int, default=0, help="seed of the Bernoulli mask (default 0)")

    rep = sub.add_parser("replay", help="run a fit again from its JSON record (the sidecar)",
                         description="Run the fit a sidecar records again: the same task, inputs (checked by sha256), "
                                     "parameters, seed and options, writing a new output. A fit on the same machine "
                                     "and device gives the same image.")
    rep.add_argument("record", type=Path, help="the JSON record of a `dip <task>` run (its sidecar)")
    rep.add_argument("-o", "--output", type=Path, required=True,
                     help="the new restored image (PNG); refused if it is one of the run's inputs or the record")
    rep.add_argument("--sidecar", type=Path, help="its JSON record (default: OUTPUT with .json)")
    rep.add_argument("--checkpoint", type=Path, help="checkpoint file for the new run (none by default)")
    rep.add_argument("--device", help="run on this device instead of the recorded one (auto | cpu | cuda | cuda:N)")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("presets", help="list the presets (the authors' per-task settings) and each task's default")
    return parser


# --- checks of the values argparse cannot check itself (each a DipInputError: exit 2, one line, nothing written) ------


def _check_number(option: str, value: float | None, *, low: float, low_ok: bool = True,
                  high: float | None = None, note: str = "") -> None:
    """``value`` (when given) is finite and in [low, high) (or (low, high) without ``low_ok``)."""
    if value is None:
        return
    above = value >= low if low_ok else value > low
    if not (math.isfinite(value) and above and (high is None or value < high)):
        if high is None:
            wanted = f"a finite number {'>=' if low_ok else '>'} {low:g}"
        else:
            wanted = f"a number in {'[' if low_ok else '('}{low:g}, {high:g})"
        raise DipInputError(f"{option} must be {wanted}{note}, got {value}")


def _check_int(option: str, value: int | None, low: int, high: int | None = None, high_text: str = "") -> None:
    if value is not None and (value < low or (high is not None and value > high)):
        wanted = f">= {low}" if high is None else f"from {low} to {high_text or high}"
        raise DipInputError(f"{option} must be an integer {wanted}, got {value}")


def _check_png(option: str, path: Path | None) -> None:
    """An image to write: a .png path that is not a folder."""
    if path is None:
        return
    if path.suffix.lower() != ".png":
        raise DipInputError(f"{option} must be a .png file, got {path}")
    if path.is_dir():
        raise DipInputError(f"{option} must be a file, but {path} is a folder")


def _check_distinct(paths: dict[str, Path | None]) -> None:
    """No two outputs are the same file (the second would overwrite the first)."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise DipInputError(f"{option} and {seen[key]} are the same file ({path}); give two different paths")
        seen[key] = option


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path once links are resolved, or (both existing) the same
    inode (a hard link)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_not_inputs(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """No output is one of the inputs (writing it would destroy the input, and the run could not be repeated)."""
    for out_name, out in outputs.items():
        for in_name, src in inputs.items():
            if out is not None and src is not None and _same_file(out, src):
                raise DipInputError(
                    f"{out_name} ({out}) is {in_name} ({src}): writing it would overwrite an input; give another path"
                )


def _check_device(name: str) -> None:
    """``--device``: auto, cpu, cuda or cuda:N, and CUDA (with device N) present for a cuda device."""
    if not DEVICE_PATTERN.fullmatch(name):
        raise DipInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DipInputError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
        index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            raise DipInputError(f"device {name!r} does not exist: this machine has {count} CUDA device(s), "
                                f"cuda:0 to cuda:{count - 1}")


def _check_fit_args(task: str, args: argparse.Namespace) -> None:
    """Every option of ``dip <task>`` that argparse cannot check: before any image is read or any fit starts."""
    _check_png("the output (-o)", args.output)
    _check_png("--early-output", args.early_output)
    if args.early_output is not None and not args.early_stop_record:
        raise DipInputError("--early-output needs --early-stop-record")
    early_png = None
    if args.early_stop_record:
        early_png = args.early_output or args.output.with_suffix(".early.png")
    sidecar = args.sidecar or args.output.with_suffix(".json")
    _check_distinct({"the output (-o)": args.output, "the sidecar (--sidecar)": sidecar,
                     "the early output (--early-output)": early_png,
                     "--checkpoint": args.checkpoint})
    _check_int("--iters", args.iters, 1)
    _check_number("--lr", args.lr, low=0.0, low_ok=False)
    _check_number("--reg-noise-std", args.reg_noise_std, low=0.0)
    _check_number("--exp-weight", args.exp_weight, low=0.0, high=1.0, note=" (0 disables averaging)")
    _check_int("--width", args.width, 1)
    _check_int("--seed", args.seed, 0, MAX_SEED, "2**63 - 1")
    _check_device(args.device)
    _check_number("--memory-budget", args.memory_budget, low=0.0, low_ok=False, note=" (gigabytes)")
    _check_int("--log-every", args.log_every, 1)
    _check_int("--checkpoint-every", args.checkpoint_every, 0)
    if args.checkpoint_every and not args.checkpoint:
        raise DipInputError("--checkpoint-every needs --checkpoint PATH")
    for option, path in (("--checkpoint", args.checkpoint), ("--sidecar", args.sidecar)):
        if path is not None and path.is_dir():
            raise DipInputError(f"{option} must be a file, but {path} is a folder")
    _check_int("--es-window", args.es_window, 2)
    _check_int("--es-patience", args.es_patience, 1)
    if task == "denoise":
        _check_number("--sigma", args.sigma, low=0.0, low_ok=False, note=" (on the 0-255 scale)")
    if task == "inpaint":
        _check_number("--missing", args.missing, low=0.0, high=1.0)
    if args.stop == "auto" and args.early_stop:
        raise DipInputError("--stop auto and --early-stop are two rules to stop by; choose one")
    _check_not_inputs(_output_paths(args), _input_paths(task, args))


def _input_paths(task: str, args: argparse.Namespace) -> dict[str, Path | None]:
    """The files a fit reads, by the option that names them."""
    return {"the input": args.input, "--gt": args.gt, "--mask": getattr(args, "mask", None),
            "--flash": getattr(args, "flash", None), "the replayed record": getattr(args, "replay_of", None)}


def _output_paths(args: argparse.Namespace) -> dict[str, Path | None]:
    """The files a fit writes (the checkpoint is also read, but only as a checkpoint)."""
    early_png = (args.early_output or args.output.with_suffix(".early.png")) if args.early_stop_record else None
    return {"the output (-o)": args.output, "the sidecar": args.sidecar or args.output.with_suffix(".json"),
            "the early output": early_png, "--checkpoint": args.checkpoint}  # fmt: skip


def _stop_mode(args: argparse.Namespace) -> str:
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


def _check_preset_task(task: str, preset: str) -> None:
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
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
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


def _fit_command(args: argparse.Namespace, argv: list[str] | None = None, replay_record: dict | None = None) -> int:
    task = args.command
    _check_fit_args(task, args)

    from dip import presets
    from dip.data import degrade
    from dip.data.imageio import read_image
    from dip.restore import restore, save_result

    chosen = tasks.default_preset(task, _task_level(task, args))  # also checks the level (--factor, --sigma)
    preset = args.preset or chosen
    presets.get_preset(preset)  # an unknown preset fails here, with the choices
    _check_preset_task(task, preset)
    mode = _stop_mode(args)
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
    config.validate()  # the settings the preset brings, before any image is read
    if replay_record is not None:
        _compare_with_record(config, replay_record)

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
    _say_auto_stop(task, args, result, mode)
    argv = command_line(args) if argv is None else list(argv)
    extra = {
        "task": task, "input": str(args.input), "preset": preset,
        "preset_from": "--preset" if args.preset else f"the task table ({preset_rule(task)})",
        "parameters": _task_parameters(task, args), "inputs": inputs,
        "command": {"argv": argv, "line": shlex.join(["dip", *argv]), "cwd": os.getcwd(),
                    "canonical": command_line(args)},
        "stop": {"mode": mode},
    }  # fmt: skip
    if replay_record is not None:
        extra["replayed_from"] = {"record": str(args.replay_of), "created": replay_record.get("created"),
                                  "line": (replay_record.get("command") or {}).get("line")}  # fmt: skip
    if early_stopping is not None:
        _keep_early_output(args, result, extra)
    output = _written(result, args, mode, extra, ground_truth)
    extra["output"] = output
    save_result(result, args.output, args.sidecar, extra=extra)
    log.info("%s", _last_line(args.output, output, result))
    return 0


def _say_auto_stop(task: str, args: argparse.Namespace, result, mode: str) -> None:
    """A warning when the user's --sigma and the image's noise disagree (the preset was chosen by the former)."""
    auto = result.auto_stop or {}
    sigma_hat = auto.get("sigma_255")
    if task == "denoise" and args.sigma is not None and sigma_hat is not None and math.isfinite(sigma_hat):
        if abs(sigma_hat - args.sigma) > 0.3 * args.sigma:
            log.warning("the image's noise looks like sigma %.1f (estimated), not --sigma %g; the preset was chosen "
                        "by --sigma", sigma_hat, args.sigma)  # fmt: skip


def _steps(n: int) -> str:
    return f"{n} step{'' if n == 1 else 's'}"


def _written(result, args: argparse.Namespace, mode: str, extra: dict, ground_truth) -> dict:
    """What the output file holds: which image (averaged or raw), of which step, and (with --gt) its PSNR."""
    averaged = result.config.exp_weight is not None
    kind = "averaged output (EMA)" if averaged else "raw output"
    last = result.iterations_done - 1
    step, why = last, f"the last of {_steps(result.iterations_done)} (fixed budget)"
    auto = result.auto_stop or {}
    if mode == "auto":
        if auto.get("fired"):
            why = f"auto stop ({auto['rule']}): {auto['reason']}"
        elif auto.get("rule") == "budget":
            why = f"the last of {_steps(result.iterations_done)}: the auto stop runs the budget here, {auto['reason']}"
        else:
            why = f"the last step: the auto stop ({auto.get('rule')}) did not fire, {auto.get('reason')}"
    elif mode == "es-wmv" and "output_step" in extra:
        step = extra["output_step"]
        kind = "raw output"  # ES-WMV keeps the step's own output
        why = "ES-WMV's detected step"
    elif mode == "es-wmv":
        why = "ES-WMV did not detect a step; the last step"
    info = {"path": str(args.output), "kind": kind, "step": step, "steps_done": result.iterations_done,
            "max_steps": result.config.iterations, "why": why}  # fmt: skip
    if mode != "auto" and auto:
        info["auto_stop_would_stop_at"] = auto.get("stop_step")
    if ground_truth is not None:
        from dip.data.imageio import crop_to_box
        from dip.eval import metrics

        scale = getattr(args, "factor", None) or 1
        gt = crop_to_box(ground_truth, result.crop_box, scale) if result.crop_box is not None else ground_truth
        info["psnr_gt"] = metrics.psnr(gt, result.output)
    return info


def _last_line(path: Path, output: dict, result) -> str:
    psnr = "" if output.get("psnr_gt") is None else f"; PSNR vs --gt {output['psnr_gt']:.2f} dB"
    return (f"wrote {path}: the {output['kind']} of step {output['step']} ({output['why']}); "
            f"{_steps(result.iterations_done)} in {result.seconds:.1f} s on {result.device}{psnr}")


def _keep_early_output(args: argparse.Namespace, result, extra: dict) -> None:
    """With early stopping: make the detected step's output the result (--early-stop) or write it beside it
    (--early-stop-record), and say what was detected."""
    es = result.early_stopping
    if result.output_early is None:
        log.warning("early stopping: the fit ended before the variance window (%s) filled", _steps(args.es_window))
    elif args.early_stop:
        result.output = result.output_early  # the image to keep is the one at the detected step
        extra["output_step"] = es["detected_step"]
    else:
        early_png = args.early_output or args.output.with_suffix(".early.png")
        from dip.data.imageio import write_image

        write_image(early_png, result.output_early)
        es["output"] = str(early_png)
    log.info("early stopping: detected step %s%s", es["detected_step"],
             "" if es.get("psnr_detected") is None else
             f" (PSNR {es['psnr_detected']:.2f} dB there, {es['psnr_final']:.2f} dB after "
             f"{_steps(es['iterations_done'])})")


# Settings a replay may differ in without being another fit (where it runs, how often it logs and saves).
_RUN_SETTINGS = ("device", "precision", "checkpoint_every", "checkpoint_seconds", "memory_saving", "memory_budget_mb",
                 "compile", "compile_mode", "deterministic")  # fmt: skip


def _compare_with_record(config, record: dict) -> None:
    """Warn when this version of dip builds other settings from the recorded command than the record holds."""
    recorded = record.get("config") or {}
    now = config.to_dict()
    differ = sorted(k for k in now if k not in _RUN_SETTINGS and k in recorded and recorded[k] != now[k])
    if differ:
        log.warning("replay: this version of dip builds other settings than the record's: %s",
                    ", ".join(f"{k} {recorded[k]!r} -> {now[k]!r}" for k in differ))  # fmt: skip


def _replay_command(args: argparse.Namespace) -> int:
    """`dip replay RECORD -o OUT`: parse the recorded command line, point it at the new outputs, check that the
    inputs are the recorded files (sha256), and run it."""
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
        fit_args = build_parser().parse_args(command["argv"])
    except SystemExit:
        raise DipInputError(f"the command recorded in {args.record} does not parse: {command.get('line')}") from None
    if fit_args.command not in tasks.TASKS:
        raise DipInputError(f"{args.record} records `dip {fit_args.command}`, not a fit")
    for dest in ("input", "gt", "mask", "flash"):
        path = getattr(fit_args, dest, None)
        if path is not None and not path.is_absolute():
            setattr(fit_args, dest, cwd / path)
    roles = {"input": "input", "gt": "gt", "mask": "mask", "flash": "flash"}
    for dest, role in roles.items():
        path, facts = getattr(fit_args, dest, None), (record.get("inputs") or {}).get(role)
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
    log.info("replaying %s", shlex.join(["dip", *command_line(fit_args)]))
    return _fit_command(fit_args, replay_record=record)


def _degrade_command(args: argparse.Namespace) -> int:
    _check_png("the output (-o)", args.output)
    _check_int("--seed", getattr(args, "seed", None), 0, MAX_SEED, "2**63 - 1")
    if args.kind == "noise":
        _check_number("--sigma", args.sigma, low=0.0, note=" (on the 0-255 scale)")
    elif args.kind == "lr":
        _check_int("--factor", args.factor, 1)
        _check_png("--hr-output", args.hr_output)
        _check_distinct({"the output (-o)": args.output, "--hr-output": args.hr_output})
    elif args.text is None:
        _check_number("--missing", args.missing, low=0.0, high=1.0)
    _check_not_inputs({"the output (-o)": args.output, "--hr-output": getattr(args, "hr_output", None)},
                      {"the input": args.input})  # fmt: skip

    from dip.data import degrade
    from dip.data.imageio import read_image, write_image

    img = read_image(args.input)
    if args.kind == "noise":
        write_image(args.output, degrade.add_gaussian_noise(img, args.sigma, args.seed, quantize=True))
    elif args.kind == "lr":
        hr, lr = degrade.make_lr(img, args.factor)
        if args.hr_output:
            write_image(args.hr_output, hr)
        write_image(args.output, lr)
    else:
        if args.text is not None:
            mask = degrade.text_mask(img.shape[:2], text=args.text)
        else:
            mask = degrade.bernoulli_mask(img.shape[:2], args.missing, args.seed)
        write_image(args.output, mask[..., :1])
    log.info("wrote %s", args.output)
    return 0


def _print_presets() -> int:
    from dip import presets

    for name, text in presets.describe():
        print(f"{name:16s} {text}")
    print("\nThe preset each command runs without --preset:")
    for task in tasks.TASKS:
        print(f"  dip {task:9s} {preset_rule(task)}")
    return 0


def _print_versions() -> int:
    from dip.restore import environment_info

    for key, value in environment_info().items():
        print(f"{key}: {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="dip: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        return _print_versions()
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "presets":
            return _print_presets()
        if args.command == "degrade":
            return _degrade_command(args)
        if args.command == "replay":
            return _replay_command(args)
        return _fit_command(args, argv=list(sys.argv[1:] if argv is None else argv))
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


if __name__ == "__main__":
    sys.exit(main())
