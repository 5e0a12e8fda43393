"""``dip degrade noise | lr | mask``: make test inputs as the paper did (Gaussian noise quantised to 8 bits, a
low-resolution image, a mask of missing pixels). The defaults are the task table's default levels: what ``dip <task>``
assumes without one."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dip import tasks
from dip.cli.arguments import MAX_SEED, check_distinct, check_int, check_not_inputs, check_number, check_png

log = logging.getLogger("dip")


def add_parser(sub) -> None:
    """``dip degrade`` and its three subcommands, on the subcommands ``sub``."""
    deg = sub.add_parser("degrade", help="make degraded inputs as the paper did",
                         description="Make degraded inputs as the paper did: Gaussian noise, a low-resolution "
                                     "version, or a mask of missing pixels.")
    deg_sub = deg.add_subparsers(dest="kind", required=True)
    sigma = float(tasks.get_task("denoise").default_level)
    text = (f"add Gaussian noise (sigma on the 0-255 scale, default {sigma:g}), quantised to 8 bits like the released "
            "noisy inputs")
    noise = _subcommand(deg_sub, "noise", text)
    noise.add_argument("input", type=Path, help="the clean image")
    noise.add_argument("-o", "--output", type=Path, required=True, help="the noisy image (PNG; not the input)")
    noise.add_argument("--sigma", type=float, default=sigma,
                       help=f"noise standard deviation on the 0-255 scale (default {sigma:g})")
    noise.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    factor = tasks.get_task("sr").default_level
    text = f"crop HR to a multiple of 32 and downsample with PIL Lanczos (default x{factor})"
    lr = _subcommand(deg_sub, "lr", text)
    lr.add_argument("input", type=Path, help="the high-resolution image")
    lr.add_argument("-o", "--output", type=Path, required=True, help="the low-resolution image (PNG; not the input)")
    lr.add_argument("--factor", type=int, default=factor, help=f"downsampling factor (default {factor})")
    lr.add_argument("--hr-output", type=Path,
                    help="also write the cropped HR image (the ground truth; PNG; default: not written)")
    missing = tasks.get_task("inpaint").default_level
    text = f"write a Bernoulli pixel mask (default {missing:g} missing) or a text mask"
    mask = _subcommand(deg_sub, "mask", text)
    mask.add_argument("input", type=Path, help="image whose size the mask takes")
    mask.add_argument("-o", "--output", type=Path, required=True,
                      help="the mask (PNG; white = known, black = missing; not the input)")
    what = mask.add_mutually_exclusive_group()
    what.add_argument("--missing", type=float, default=missing,
                      help=f"fraction of missing pixels, drawn at random (Bernoulli; default {missing:g})")
    what.add_argument("--text", help="draw this text as the missing region instead (default: none, a Bernoulli mask)")
    mask.add_argument("--seed", type=int, default=0, help="seed of the Bernoulli mask (default 0)")


def _subcommand(sub, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose one line in the list is also, as a sentence, the description its --help starts with."""
    return sub.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}.")


def run(args: argparse.Namespace) -> int:
    """``dip degrade KIND INPUT -o OUTPUT``: check the options, read the image, write the degraded one."""
    check_png("the output (-o)", args.output)
    check_int("--seed", getattr(args, "seed", None), 0, MAX_SEED, "2**63 - 1")
    if args.kind == "noise":
        check_number("--sigma", args.sigma, low=0.0, note=" (on the 0-255 scale)")
    elif args.kind == "lr":
        check_int("--factor", args.factor, 1)
        check_png("--hr-output", args.hr_output)
        check_distinct({"the output (-o)": args.output, "--hr-output": args.hr_output})
    elif args.text is None:
        check_number("--missing", args.missing, low=0.0, high=1.0)
    check_not_inputs({"the output (-o)": args.output, "--hr-output": getattr(args, "hr_output", None)},
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
    hr_output = getattr(args, "hr_output", None)
    log.info("wrote %s%s", args.output, f" and the HR image {hr_output}" if hr_output else "")
    return 0
