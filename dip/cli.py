"""The ``dip`` command: restore one image.

    dip denoise noisy.png -o out.png [--sigma 25] [--gt clean.png] [--preset P] [--iters N] [--seed S] [--device auto]
    dip sr lr.png --factor 4 -o out.png                  (--factor 8 runs the x8 preset)
    dip inpaint image.png --mask mask.png -o out.png      (or --missing 0.5 for a seeded Bernoulli mask)
    dip jpeg photo.jpg -o out.png
    dip flash noflash.png --flash flash.png -o out.png
    dip denoise noisy.png -o out.png --early-stop        (ES-WMV: stop at the detected step; --early-stop-record)
    dip degrade noise|lr|mask ...                        (make test inputs as the paper did)
    dip presets                                          (list the authors' settings and which task uses which)

Without ``--preset`` the task and its level choose the preset, from the task table (:mod:`dip.tasks`): ``sr
--factor 8`` runs ``sr8``, ``denoise --sigma 50`` runs ``denoise-sigma50``.

Exit codes: 0 done; 2 bad input, a file or an option value (said in one line on stderr; nothing written, and every
option is checked before any image is read or any fit starts); 143 interrupted by SIGTERM (checkpoint written, re-run
to resume); 1 anything else. The output PNG and its JSON sidecar are written atomically.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
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
    p.add_argument("input", type=Path, help="the degraded image (PNG, JPEG, TIFF, ...)")
    p.add_argument("-o", "--output", type=Path, required=True, help="restored image (PNG)")
    p.add_argument("--sidecar", type=Path, help="JSON record (default: OUTPUT with .json)")
    p.add_argument("--gt", type=Path, help="ground truth, to log PSNR during the fit")
    p.add_argument("--preset", help=f"settings to start from (see `dip presets`); default: {preset_rule(task)}")
    p.add_argument("--iters", type=int, help="number of optimisation steps")
    p.add_argument("--lr", type=float, help="Adam learning rate")
    p.add_argument("--reg-noise-std", type=float, help="std of the fresh input perturbation per step")
    p.add_argument("--exp-weight", type=float, help="EMA weight of outputs (0 disables averaging)")
    p.add_argument("--width", type=int, help="cap the channels of the skip network (e.g. 32 for quick CPU runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"],
                   help="bf16 autocasts the forward pass; auto = bf16 where the CPU/GPU has native bf16, else fp32")
    p.add_argument("--memory-saving", choices=["auto", "on", "off"], default="auto",
                   help="activation checkpointing (same result, ~1.1-1.35x the time per step, a fifth of the "
                        "activations kept): auto = only when the plain fit would not fit the memory budget (default)")
    p.add_argument("--memory-budget", type=float, metavar="GB",
                   help="memory the fit may use (default: 80%% of the available RAM on CPU, the free memory on CUDA)")
    p.add_argument("--log-every", type=int, help="steps between logged loss/PSNR values")
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
        p.add_argument("--sigma", type=float, default=default,
                       help=f"noise level of the input on the 0-255 scale (default {default:g}); chooses the preset: "
                            f"{preset_rule(task)}")
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
    deg = sub.add_parser("degrade", help="make degraded inputs as the paper did")
    deg_sub = deg.add_subparsers(dest="kind", required=True)
    noise = deg_sub.add_parser("noise", help="add Gaussian noise (sigma on the 0-255 scale)")
    noise.add_argument("input", type=Path)
    noise.add_argument("-o", "--output", type=Path, required=True)
    noise.add_argument("--sigma", type=float, default=float(tasks.get_task("denoise").default_level))
    noise.add_argument("--seed", type=int, default=0)
    lr = deg_sub.add_parser("lr", help="crop HR to a multiple of 32 and downsample with PIL Lanczos")
    lr.add_argument("input", type=Path)
    lr.add_argument("-o", "--output", type=Path, required=True)
    lr.add_argument("--factor", type=int, default=tasks.get_task("sr").default_level)
    lr.add_argument("--hr-output", type=Path, help="also write the cropped HR image (the ground truth)")
    mask = deg_sub.add_parser("mask", help="write a Bernoulli pixel mask or a text mask")
    mask.add_argument("input", type=Path, help="image whose size the mask takes")
    mask.add_argument("-o", "--output", type=Path, required=True)
    what = mask.add_mutually_exclusive_group()
    what.add_argument("--missing", type=float, default=tasks.get_task("inpaint").default_level,
                      help="fraction of missing pixels (Bernoulli)")
    what.add_argument("--text", help="draw this text as the missing region instead")
    mask.add_argument("--seed", type=int, default=0)

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


def _fit_command(args: argparse.Namespace) -> int:
    task = args.command
    _check_fit_args(task, args)

    from dip import presets
    from dip.data import degrade
    from dip.data.imageio import read_image
    from dip.restore import restore, save_result

    chosen = tasks.default_preset(task, _task_level(task, args))  # also checks the level (--factor, --sigma)
    preset = args.preset or chosen
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

    early_stopping = None
    if args.early_stop or args.early_stop_record:
        early_stopping = {"window": args.es_window, "patience": args.es_patience, "stop": args.early_stop}
    result = restore(
        task, observation, config=config, factor=getattr(args, "factor", None), mask=mask,
        ground_truth=ground_truth, guide=guide, checkpoint_path=args.checkpoint, progress=not args.quiet,
        crop=not args.no_crop, early_stopping=early_stopping,
    )
    for note in result.notes:
        log.warning(note)
    extra = {"task": task, "input": str(args.input), "preset": preset}
    if early_stopping is not None:
        _keep_early_output(args, result, extra)
    record = save_result(result, args.output, args.sidecar, extra=extra)
    final = record["summary"]["final"]
    shown = ", ".join(f"{k} {final[k]:.2f}" for k in ("psnr_obs", "psnr_gt", "psnr_gt_avg") if final.get(k) is not None)
    log.info("wrote %s (%d steps in %.1f s on %s%s)", args.output, result.iterations_done, result.seconds,
             result.device, f"; {shown} dB" if shown else "")
    return 0


def _keep_early_output(args: argparse.Namespace, result, extra: dict) -> None:
    """With early stopping: make the detected step's output the result (--early-stop) or write it beside it
    (--early-stop-record), and say what was detected."""
    es = result.early_stopping
    if result.output_early is None:
        log.warning("early stopping: the fit ended before the variance window (%d steps) filled", args.es_window)
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
             f" (PSNR {es['psnr_detected']:.2f} dB there, {es['psnr_final']:.2f} dB at step "
             f"{es['iterations_done']})")


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
        return _fit_command(args)
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
