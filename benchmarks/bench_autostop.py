"""Does the auto stop land near the best step? Side by side with the fixed budget and the other stopping rules.

One fit per case (image x task x level x size), run to the preset's fixed budget with a fine ``--log-every``, with every
candidate rule *recorded, not obeyed*: the auto stop (:mod:`dip.fit.stopping`, the discrepancy principle with
sigma-hat from the image), ES-WMV with the paper's settings (window 100, patience 1000), ES-EMV. Because the auto
rule decides on logged records only, it is also replayed on the logged curve (at the fit's ``--log-every`` and at the
command's default of 50, and with other factors tau); ES-WMV/EMV need every step's output, so they run as hooks.

For each case and candidate the table prints the **gap**: the best PSNR the returned output reached along the fit
(the oracle: the averaged output for presets that average, else the raw one; logged every ``--log-every`` steps)
minus the PSNR of the image the candidate returns. The fixed budget's image is the fit's final output.

Every finished case is appended to the results file (JSON lines, with its whole logged curve, so that any rule can be
replayed later without a fit) the moment it ends; running the same command again skips the cases already there, and
a case cut short resumes from its checkpoint (``--checkpoint-dir``, every 10 minutes of fitting and on SIGTERM), bit
for bit. ``--report`` prints the table of the results file without fitting (``--rescore``: the replayable candidates
derived again from the rows' curves with this version's rules). ``--extra sure sv`` adds the candidates that need fits
of their own (Monte-Carlo SURE from a twin fit, self-validation with 5% of the pixels held back).

    python benchmarks/bench_autostop.py --images-dir resources --threads 1          # the full run (many hours)
    python benchmarks/bench_autostop.py --list                                      # the cases and their cost
    python benchmarks/bench_autostop.py --cases chelsea-128-sigma25 --width 16 --iters 200 --results /tmp/x.jsonl

``--images-dir``: a folder holding the manifest's relative paths (the workflow's ``resources/``, or a mirror of the
download base URL): the paper's 9 colour images are read from ``<dir>/DmitryUlyanov/dmitryulyanov.github.io/master/
assets/deep-image-prior/Denoising/Color/25/<name>_GT.png`` (sha256-checked against config/manifest/benchmarks.tsv).
Without it (or where a file is missing) a case falls back to a scikit-image photo of the same size, which ship
offline; the table says which image ran. ``--width``, ``--iters``, ``--size`` make quick checks; the numbers that
count use the presets' 128-channel networks (``--width`` unset). The results file and the table:
``benchmarks/autostop_results.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import io
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.autostop_results import append_result, read_results, report  # noqa: E402  (after the path)

COLOR9 = "DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior/Denoising/Color/25"
MANIFEST = ROOT / "config" / "manifest" / "benchmarks.tsv"
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "bench_autostop.jsonl"
DEFAULT_CKPT = ROOT / "benchmarks" / "out" / "autostop-ckpt"
SEED = 0
TAUS = (0.9, 1.0, 1.1)  # discrepancy factors replayed beside the default (1.0)
# CPU seconds per step on one thread of the project's 2-vCPU machine (Zen 4), fp32, channels_last, at 256 px, by
# preset family, as the benchmark's own fits ran (1.3 s/step at 128 px x 4 for the 128-channel skip net, 1.5-1.9 at
# 256 px in results/paper; the JPEG preset's small net 0.08 at 256 px); cost scales with the pixels. A shared machine
# is slower, and so is the project's Intel Xeon: 1.5-1.9x (F16 at 128 px 0.57 s/step, House at
# 256 px 2.4-2.7, two at once).
SECONDS_PER_STEP_256 = {"skip128": 1.7, "jpeg": 0.09}


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark case. ``source``: a colour-9 name (``color9:hill``) or a scikit-image photo (``skimage:chelsea``);
    ``fallback``: the scikit-image photo used when the colour-9 file is not found."""

    image: str
    size: int
    task: str  # denoise | jpeg | inpaint
    level: float  # sigma (0-255) | JPEG quality | missing fraction
    source: str
    fallback: str | None = None

    @property
    def key(self) -> str:
        label = {"denoise": f"sigma{self.level:g}", "jpeg": f"q{self.level:g}",
                 "inpaint": f"missing{round(100 * self.level)}"}[self.task]  # fmt: skip
        return f"{self.image}-{self.size}-{label}"


# 21 cases: 13 denoising (128, 256 and 512 px, sigma 10-50, 8 of the paper's 9 colour images and 3 scikit-image
# photos), 5 JPEG (three on colour images) and 3 inpainting (50% of the pixels), 12 at 256 px or more. The
# first 12 (~5 h on one thread) already cover every requirement (>= 12 cases, >= 4 at >= 256 px, sigma 10-50, both
# image sources, JPEG, inpainting), so that they finish within a few sessions of two cores; the rest, the 512 px
# fits (~9 h each) among them, widen the table where there is more time.
CASES = [
    Case("chelsea", 128, "denoise", 25, "skimage:chelsea"),  # the example: 22.52 dB returned vs 28.94 best
    Case("astronaut", 128, "denoise", 50, "skimage:astronaut"),
    Case("coffee", 128, "denoise", 10, "skimage:coffee"),
    Case("astronaut", 128, "jpeg", 10, "skimage:astronaut"),
    Case("coffee", 256, "jpeg", 20, "skimage:coffee"),
    Case("kodim12", 256, "jpeg", 10, "color9:kodim12", "skimage:chelsea"),
    Case("kodim02", 128, "denoise", 50, "color9:kodim02", "skimage:rocket"),
    Case("F16", 128, "denoise", 10, "color9:F16", "skimage:astronaut"),
    Case("lena", 128, "denoise", 25, "color9:lena", "skimage:coffee"),
    Case("hill", 256, "denoise", 25, "color9:hill", "skimage:astronaut"),  # House, the paper's size
    Case("chelsea", 128, "inpaint", 0.5, "skimage:chelsea"),
    Case("kodim03", 256, "jpeg", 20, "color9:kodim03", "skimage:chelsea"),
    Case("peppers", 256, "denoise", 50, "color9:peppers", "skimage:coffee"),
    Case("kodim03", 256, "denoise", 10, "color9:kodim03", "skimage:chelsea"),
    Case("baboon", 256, "denoise", 25, "color9:baboon", "skimage:rocket"),  # fur: the hardest noise estimate
    Case("kodim01", 256, "denoise", 50, "color9:kodim01", "skimage:coffee"),
    Case("coffee", 128, "inpaint", 0.5, "skimage:coffee"),
    Case("F16", 512, "denoise", 25, "color9:F16", "skimage:astronaut"),
    Case("lena", 512, "denoise", 50, "color9:lena", "skimage:astronaut"),
    Case("hill", 256, "inpaint", 0.5, "color9:hill", "skimage:astronaut"),
    Case("kodim03", 512, "jpeg", 20, "color9:kodim03", "skimage:astronaut"),  # fitted beside the first 12
]


def _manifest() -> dict[str, str]:
    rows = {}
    for line in MANIFEST.read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 2:
            rows[parts[0]] = parts[1]
    return rows


def square(img, size: int):
    """The centre square of ``img`` (uint8 or float) resized to ``size`` (Lanczos): float32 (H, W, 3) in [0, 1]."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    pil = Image.fromarray(arr[top : top + side, left : left + side])
    if side != size:
        pil = pil.resize((size, size), Image.LANCZOS)
    return np.asarray(pil, dtype=np.float32) / 255.0


def load_clean(case: Case, images_dir: Path | None, size: int):
    """The clean image of ``case`` at ``size`` and the name of what was read."""
    import skimage.data

    from dip.data.imageio import read_image

    kind, name = case.source.split(":")
    if kind == "color9":
        if images_dir is not None:
            rel = f"{COLOR9}/{name}_GT.png"
            path = images_dir / rel
            if path.is_file():
                want = _manifest().get(rel)
                got = hashlib.sha256(path.read_bytes()).hexdigest()
                if want is not None and got != want:
                    raise SystemExit(f"{path}: sha256 {got[:12]}... is not the manifest's {want[:12]}...")
                return square(read_image(path, mode="rgb"), size), f"color9 {name}_GT.png"
        kind, name = case.fallback.split(":")
    return square(getattr(skimage.data, name)(), size), f"scikit-image {name}"


def degrade_case(case: Case, clean):
    """(observation, mask) of ``case``: Gaussian noise (seeded, uint8-quantised as the released inputs), a JPEG at
    quality ``level`` (Pillow, 4:2:0), or a seeded Bernoulli mask with ``level`` of the pixels missing."""
    import numpy as np
    from PIL import Image

    from dip.data import degrade

    if case.task == "denoise":
        return degrade.add_gaussian_noise(clean, float(case.level), SEED, quantize=True), None
    if case.task == "jpeg":
        buf = io.BytesIO()
        Image.fromarray((clean * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=int(case.level))
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255.0, None
    mask = degrade.bernoulli_mask(clean.shape[:2], float(case.level), SEED)
    return clean, mask


def preset_of(case: Case) -> str:
    from dip import tasks

    return tasks.default_preset(case.task, case.level if case.task != "jpeg" else None)


def estimated_seconds(case: Case, iters: int | None = None, size: int | None = None) -> float:
    from dip.presets import get_preset

    preset = preset_of(case)
    steps = iters or get_preset(preset).iterations
    family = "jpeg" if preset == "jpeg" else "skip128"
    return steps * SECONDS_PER_STEP_256[family] * ((size or case.size) / 256) ** 2


def _stop(rep: dict, fallback_step: int, fallback_psnr: float) -> dict:
    """A replayed rule's row: its stop step and the returned curve's PSNR there (the last step if it never fired)."""
    if rep["fired"]:
        return {"step": rep["stop_step"], "psnr": rep["psnr_stop"], "fired": True}
    return {"step": fallback_step, "psnr": fallback_psnr, "fired": False}


def replayed_candidates(case: Case, history, observation, clean, mask, exp_weight, sigma, fixed_psnr) -> dict:
    """The discrepancy principle's variants, replayed on a fit's logged curve: without averaging the loss, with the
    wavelet noise estimate, other factors tau, and the true noise level (denoising)."""
    import numpy as np

    from dip.fit.stopping import Discrepancy, replay

    last = history[-1]["step"]
    beta = exp_weight or 0.0
    fraction = float(np.mean(mask > 0)) if mask is not None else 1.0
    variants = {"dp_raw_loss": Discrepancy(sigma["pca"], average=0.0, observed_fraction=fraction),
                "dp_wavelet": Discrepancy(sigma["wavelet"], average=beta, observed_fraction=fraction)}
    for tau in TAUS:
        variants[f"dp_tau{tau:g}"] = Discrepancy(sigma["pca"], tau=tau, average=beta, observed_fraction=fraction)
    if case.task == "denoise":  # with the true noise level: what the estimate costs
        variants["dp_true_sigma"] = Discrepancy(float(np.std(observation - clean)), average=beta)
    return {name: {**_stop(replay(history, rule), last, fixed_psnr), "sigma_255": 255 * rule.sigma}
            for name, rule in variants.items()}  # fmt: skip


def rescore(row: dict, args) -> dict:
    """A results row with its replayable candidates (the auto rule at the fit's and at 50-step logging, and the
    discrepancy variants) derived again from its logged curve by this version's rules; no fit. The candidates that
    watched every step (ES-WMV, ES-EMV) and the extra fits stay as recorded."""
    from dip.fit.stopping import estimate_noise_sigma, replay, rule_for
    from dip.presets import get_preset

    case = next(c for c in CASES if c.key == row["case"])
    clean, _ = load_clean(case, args.images_dir, row["size"])
    observation, mask = degrade_case(case, clean)
    exp_weight = get_preset(row["preset"]).exp_weight
    sigma = {m: estimate_noise_sigma(observation, mask, method=m) for m in ("pca", "wavelet")}
    history, last = row["history"], row["history"][-1]["step"]
    fixed = row["candidates"]["fixed"]["psnr"]
    rule = rule_for(case.task, observation, mask=mask, average=exp_weight)
    cands = dict(row["candidates"])
    cands["auto"] = {**_stop(replay(history, rule), last, fixed), "rule": rule.settings(), "rescored": True}
    cands["auto_log50"] = _stop(replay(history, rule, every=50), last, fixed)
    cands.update(replayed_candidates(case, history, observation, clean, mask, exp_weight, sigma, fixed))
    oracle = row["oracle"]["psnr"]
    for cand in cands.values():
        cand["gap"] = None if cand.get("psnr") is None else oracle - cand["psnr"]
    return {**row, "candidates": cands, "sigma_hat_255": 255 * sigma["pca"]}


def run_case(case: Case, args) -> dict:
    """One fit of ``case`` to its fixed budget with every candidate recorded; the results row."""
    import numpy as np

    from dip.data.imageio import to_numpy
    from dip.eval import metrics
    from dip.fit import log_progress
    from dip.fit.stopping import EarlyStopping, EarlyStoppingEMV
    from dip.fit.stopping import AutoStop, estimate_noise_sigma, replay, returned_curve_key, rule_for
    from dip.presets import get_preset
    from dip.restore import restore

    size = args.size or case.size
    clean, read = load_clean(case, args.images_dir, size)
    observation, mask = degrade_case(case, clean)
    preset = preset_of(case)
    config = get_preset(preset, width=args.width, iterations=args.iters, log_every=args.log_every, device=args.device,
                        seed=SEED, checkpoint_seconds=600.0)  # fmt: skip
    # The auto stop as a hook (what `dip` runs); the discrepancy principle's variants are replayed on the curve.
    auto_rule = rule_for(case.task, observation, mask=mask, average=config.exp_weight)
    sigma = {m: estimate_noise_sigma(observation, mask, method=m) for m in ("pca", "wavelet")}
    auto = AutoStop(auto_rule, stop=False, task=case.task)
    wmv = EarlyStopping(window=100, patience=1000, stop=False)
    emv = EarlyStoppingEMV(alpha=0.1, patience=1000, stop=False, keep="average")
    args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    ckpt = args.checkpoint_dir / f"{case.key}{_variant(args)}.ckpt"
    started = time.time()
    with log_progress(every_steps=0, every_seconds=300):
        result = restore(case.task, observation, config=config, mask=mask, ground_truth=clean,
                         hooks=[auto, wmv, emv], checkpoint_path=ckpt)  # fmt: skip
    history = result.history
    key = returned_curve_key(history)
    curve = {h["step"]: h[key] for h in history if h.get(key) is not None}
    best_step = max(curve, key=curve.get)
    oracle = curve[best_step]
    last = result.iterations_done - 1

    def at_or_before(step):
        steps = [s for s in curve if s <= step]
        return curve[max(steps)] if steps else None

    fixed_psnr = metrics.psnr(clean, result.output)
    auto_out = auto.output()
    rows = {
        "fixed": {"step": last, "psnr": fixed_psnr},
        "auto": {"step": auto.stop_step if auto.stop_step is not None else last,
                 "psnr": metrics.psnr(clean, to_numpy(auto_out)) if auto_out is not None else fixed_psnr,
                 "fired": auto.stop_step is not None, "rule": auto_rule.settings()},
        "auto_log50": _stop(replay(history, auto_rule, every=50), last, fixed_psnr),
    }  # fmt: skip
    rows.update(replayed_candidates(case, history, observation, clean, mask, config.exp_weight, sigma, fixed_psnr))
    for name, hook in (("es_wmv", wmv), ("es_emv", emv)):
        step = hook.detected_step
        best = hook.best_output()
        rows[name] = {"step": step, "psnr": metrics.psnr(clean, to_numpy(best)) if best is not None else None,
                      "triggered": hook.summary(last)["triggered"]}  # fmt: skip
        if step is not None and name == "es_wmv":  # ES-WMV's step, the averaged output there (nearest logged step)
            rows["es_wmv_avg"] = {"step": step, "psnr": at_or_before(step)}
    for extra in args.extra or ():
        rows[extra] = EXTRAS[extra](case, observation, clean, mask, config)
    for row in rows.values():
        row["gap"] = None if row.get("psnr") is None else oracle - row["psnr"]
    ckpt.unlink(missing_ok=True)
    return {
        "case": case.key, "variant": _variant(args), "image": read, "task": case.task, "level": case.level,
        "size": size, "preset": preset, "width": args.width, "iterations": result.iterations_done,
        "log_every": config.log_every, "sigma_hat_255": 255 * sigma["pca"] if math.isfinite(sigma["pca"]) else None,
        "sigma_wavelet_255": 255 * sigma["wavelet"] if math.isfinite(sigma["wavelet"]) else None,
        "sigma_true_255": 255 * float(np.std(observation - clean)) if case.task == "denoise" else None,
        "oracle": {"step": best_step, "psnr": oracle, "curve": key}, "candidates": rows,
        "seconds": round(time.time() - started, 1), "resumed_from": result.resumed_from,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.node(), "device": args.device, "threads": args.threads, "history": history,
    }  # fmt: skip


# --- candidates that need a fit of their own (``--extra``; not in the default run: they double its cost) ----------


def extra_sure(case: Case, observation, clean, mask, config, epsilon: float = 1e-3) -> dict:
    """Monte-Carlo SURE (Ramani, Blu, Unser 2008; for DIP: Metzler et al. 2018, Jo et al. ICCV 2021): a twin fit of
    ``y + eps b`` (same seed, packed with the fit of ``y``) gives the divergence ``b . (f(y + eps b) - f(y)) / eps``
    of the returned image at every logged step, and ``SURE = ||y - f(y)||^2 / N - s^2 + 2 s^2 div / N``, ``s`` the
    noise estimate; the candidate returns the image at the logged step of minimal SURE. Gaussian noise only."""
    import numpy as np
    import torch

    from dip import physics
    from dip.data.imageio import to_tensor
    from dip.fit import BaseHook
    from dip.fit.stacked import fit_many
    from dip.fit.stopping import estimate_noise_sigma

    if case.task != "denoise":
        return {"step": None, "psnr": None, "note": "SURE needs Gaussian noise"}
    sigma = estimate_noise_sigma(observation)
    b = np.random.default_rng(SEED + 7).standard_normal(observation.shape).astype(np.float32)
    y = to_tensor(observation).unsqueeze(0)
    probe = to_tensor(b).unsqueeze(0)

    class Twin(BaseHook):
        def __init__(self):
            self.kept, self.values, self.steps = {}, [], []

        def on_log(self, state, record):
            out = state.output_avg if state.output_avg is not None else state.output
            if state.fit == 0:
                self.kept[record["step"]] = out.detach().clone()
                return
            base = self.kept.pop(record["step"])
            div = (probe * (out - base)).sum() / epsilon
            sure = ((y - base) ** 2).mean() - sigma**2 + 2 * sigma**2 * div / y.numel()
            self.values.append(sure)  # on the device: read once at the end (no sync during the fit)
            self.steps.append(record["step"])

    twin = Twin()
    results = fit_many([observation, observation + epsilon * b], physics.Identity(), config, seeds=[SEED, SEED],
                       ground_truths=[clean, None], hooks=[[twin], [twin]])  # fmt: skip
    values = torch.stack(twin.values).tolist()
    step = twin.steps[int(np.argmin(values))]
    key = "psnr_gt_avg" if config.exp_weight is not None else "psnr_gt"
    psnr = {h["step"]: h[key] for h in results[0].history}[step]
    return {"step": step, "psnr": psnr, "epsilon": epsilon, "sure": dict(zip(twin.steps, values))}


def extra_sv(case: Case, observation, clean, mask, config, held_out: float = 0.05) -> dict:
    """Self-validation: hold back a random ``held_out`` share of the observed pixels (the fit never sees them), and
    return the image at the logged step where their residual ``||f(z) - y||^2`` over the held-out pixels is least
    (it estimates the error there plus the noise variance). The fit is another fit (fewer pixels) than the fixed
    budget's: its gap is measured against the fixed fit's oracle, so what the held-out pixels cost counts too."""
    import numpy as np
    import torch

    from dip import physics
    from dip.data import degrade
    from dip.data.imageio import to_tensor
    from dip.fit import BaseHook, fit

    keep = degrade.bernoulli_mask(observation.shape[:2], held_out, SEED + 11)
    if mask is not None:
        keep = keep * mask
    held = (1 - keep) * (mask if mask is not None else 1)
    y = to_tensor(observation).unsqueeze(0)
    weight = to_tensor(np.broadcast_to(held, observation.shape[:2] + (1,)).astype(np.float32)).unsqueeze(0)

    class Validate(BaseHook):
        def __init__(self):
            self.values, self.steps = [], []

        def on_log(self, state, record):
            out = state.output_avg if state.output_avg is not None else state.output
            self.values.append(((out - y) ** 2 * weight).sum() / weight.sum().clamp_min(1) / y.shape[1])
            self.steps.append(record["step"])

    hook = Validate()
    result = fit(observation * keep, physics.Mask(keep), config, ground_truth=clean, hooks=[hook])
    values = torch.stack(hook.values).tolist()
    step = hook.steps[int(np.argmin(values))]
    key = "psnr_gt_avg" if config.exp_weight is not None else "psnr_gt"
    return {"step": step, "psnr": {h["step"]: h[key] for h in result.history}[step], "held_out": held_out}


EXTRAS = {"sure": extra_sure, "sv": extra_sv}


def _variant(args) -> str:
    """Suffix of a run that is not the benchmark's own settings (quick checks), so its rows never pass for them."""
    parts = [f"w{args.width}" if args.width else "", f"i{args.iters}" if args.iters else "",
             f"s{args.size}" if args.size else "", f"l{args.log_every}" if args.log_every != 10 else "",
             "x" + "+".join(args.extra) if args.extra else ""]  # fmt: skip
    return "".join(f"-{p}" for p in parts if p)


def _run_case_in_worker(case: Case, args) -> dict:
    import torch

    from dip.fit.config import FitInterrupted

    torch.set_num_threads(args.threads)
    try:
        return run_case(case, args)
    except FitInterrupted:
        if _PARENT_WATCH is not None and _PARENT_WATCH.gone.is_set():
            os._exit(FitInterrupted.exit_code)  # no parent to report to: a pool's worker would wait for work forever
        raise


_PARENT_WATCH = None  # a worker process's watch on its parent (set by its initializer)


def _stop_with_parent() -> None:
    """Worker initializer: SIGTERM this worker when its parent is gone, so that a killed run leaves no fit behind (it
    checkpoints and stops, then the worker exits); a pool's workers otherwise fit on to their case's end, unwatched."""
    global _PARENT_WATCH
    from dip.pipeline.faults import watch_parent

    _PARENT_WATCH = watch_parent(starter="bench_autostop.py", rerun="the same bench_autostop.py command")


def _fitted(cases: list[Case], args):
    """The results rows of ``cases``, each as its fit ends: in this process (``--jobs 1``) or in ``--jobs`` worker
    processes (spawned: a CUDA context does not survive a fork)."""
    if args.jobs <= 1:
        for case in cases:
            yield _run_case_in_worker(case, args)
        return
    import concurrent.futures as cf
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(args.jobs, mp_context=spawn, initializer=_stop_with_parent) as pool:
        futures = [pool.submit(_run_case_in_worker, case, args) for case in cases]
        for future in cf.as_completed(futures):
            yield future.result()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images-dir", type=Path, help="folder holding the manifest's relative paths (resources/ or a "
                                                    "mirror); default: resources/ when it exists, else the fallbacks")
    p.add_argument("--cases", nargs="+", help="run only these case keys (see --list); default: all")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                   help=f"JSON-lines results (default {DEFAULT_RESULTS.relative_to(ROOT)})")
    p.add_argument("--checkpoint-dir", type=Path, default=DEFAULT_CKPT, help="where a running case checkpoints")
    p.add_argument("--log-every", type=int, default=10, help="steps between logged values (default 10)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per case (default 1)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--jobs", type=int, default=1,
                   help="cases fitted at once, each in its own process (default 1; on a CPU at most one per core, "
                        "on a GPU several small cases share it)")
    p.add_argument("--width", type=int, help="cap the channels (quick checks only; not the benchmark's numbers)")
    p.add_argument("--iters", type=int, help="override the presets' budgets (quick checks only)")
    p.add_argument("--size", type=int, help="override the cases' sizes (quick checks only)")
    p.add_argument("--extra", nargs="+", choices=sorted(EXTRAS),
                   help="also run the candidates that need fits of their own: sure (a twin fit, 2x the cost), sv "
                        "(self-validation, 5%% of the pixels held back)")
    p.add_argument("--list", action="store_true", help="list the cases, their state and estimated cost, and exit")
    p.add_argument("--report", action="store_true", help="print the table of the results file and exit")
    p.add_argument("--rescore", action="store_true",
                   help="with --report: derive the replayable candidates again from each row's logged curve with "
                        "this version's rules (no fit)")
    args = p.parse_args(argv)
    if args.images_dir is None and (ROOT / "resources").is_dir():
        args.images_dir = ROOT / "resources"
    cases = [c for c in CASES if not args.cases or c.key in args.cases]
    unknown = set(args.cases or ()) - {c.key for c in CASES}
    if unknown:
        p.error(f"unknown case(s) {', '.join(sorted(unknown))}; see --list")
    done = {(r["case"], r.get("variant", "")) for r in read_results(args.results)}
    if args.list or args.report:
        if args.list:
            total = 0.0
            for c in cases:
                state = "done" if (c.key, _variant(args)) in done else "to run"
                sec = estimated_seconds(c, args.iters, args.size)
                total += 0 if state == "done" else sec
                print(f"{c.key:24s} {c.task:8s} {preset_of(c):16s} {state:7s} ~{sec / 3600:.1f} h (1 thread)")
            print(f"left: ~{total / 3600:.1f} h on one thread of a 2-vCPU Zen 4 (the fits' own estimate)")
        else:
            rows = [r for r in read_results(args.results) if r["case"] in {c.key for c in cases}]
            print(report([rescore(r, args) for r in rows] if args.rescore else rows))
        return 0
    todo = [c for c in cases if (c.key, _variant(args)) not in done]
    print(f"bench_autostop: {len(cases)} cases ({len(cases) - len(todo)} done in {args.results.name}), "
          f"{args.jobs} at a time on {args.device}, results -> {args.results}", flush=True)  # fmt: skip
    for case in cases:
        if case in todo:
            hours = estimated_seconds(case, args.iters, args.size) / 3600
            print(f"{case.key}: queued ({preset_of(case)}, ~{hours:.1f} h on one CPU thread)", flush=True)
        else:
            print(f"{case.key}: done (in {args.results.name}), skipped", flush=True)
    for row in _fitted(todo, args):
        append_result(args.results, row)  # the one writer of the results file, as each case ends
        c = row["candidates"]
        print(f"{row['case']}: oracle {row['oracle']['psnr']:.2f} dB at step {row['oracle']['step']}; fixed gap "
              f"{c['fixed']['gap']:.2f}, auto gap {c['auto']['gap']:.2f} (step {c['auto']['step']}), "
              f"{row['seconds']:.0f} s", flush=True)  # fmt: skip
    print(report([r for r in read_results(args.results) if r["case"] in {c.key for c in cases}
                  and r.get("variant", "") == _variant(args)]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
