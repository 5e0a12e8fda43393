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

Exit codes: 0 done; 2 bad input (nothing written); 143 interrupted by SIGTERM (checkpoint written, re-run to resume);
1 anything else. The output PNG and its JSON sidecar are written atomically.
"""

from __future__ import annotations

import argparse
import logging
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
    parser = argparse.ArgumentParser(prog="dip", description="Deep Image Prior: restore one image without training data.")
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
    mask.add_argument("--missing", type=float, default=tasks.get_task("inpaint").default_level,
                      help="fraction of missing pixels (Bernoulli)")
    mask.add_argument("--text", help="draw this text as the missing region instead")
    mask.add_argument("--seed", type=int, default=0)

    sub.add_parser("presets", help="list the presets (the authors' per-task settings) and each task's default")
    return parser


def _fit_command(args: argparse.Namespace) -> int:
    from dip.data import degrade
    from dip import presets
    from dip.data.imageio import read_image
    from dip.restore import restore, save_result

    task = args.command
    preset = args.preset or tasks.default_preset(task, _task_level(task, args))
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
    )
    if args.exp_weight is not None:
        config = config.replace(exp_weight=args.exp_weight if args.exp_weight > 0 else None)
    if args.checkpoint_every and not args.checkpoint:
        raise DipInputError("--checkpoint-every needs --checkpoint PATH")
    if args.output.suffix.lower() != ".png":
        raise DipInputError(f"the output must be a .png file, got {args.output}")

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
            if not 0.0 <= args.missing < 1.0:
                raise DipInputError(f"--missing must be in [0, 1), got {args.missing}")
            mask = degrade.bernoulli_mask(observation.shape[:2], args.missing, args.seed)
    if task == "flash":
        guide = read_image(args.flash, mode="rgb")
        observation = read_image(args.input, mode="rgb")

    early_stopping = None
    if args.early_stop or args.early_stop_record:
        early_stopping = {"window": args.es_window, "patience": args.es_patience, "stop": args.early_stop}
    elif args.early_output is not None:
        raise DipInputError("--early-output needs --early-stop-record")
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
        if args.text:
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
