"""The contenders of ``benchmarks/bench_fit.py``, one function each, run in its child process: the authors' notebook
loop (``run_reference``), deepinv's ``DeepImagePrior`` (``run_deepinv``), :func:`dip.fit.fit` (``run_ours``) and
:func:`dip.fit.stacked.fit_many` (``run_batched``). Each fits the same noisy photo from the same initial weights and
returns the time stamps of its timed steps, the returned image, the raw last output and the clean image."""

from __future__ import annotations

import resource
import time

SIGMA = 25  # denoising, the paper's sigma = 25 on the 0-255 scale
SEED = 0


def noisy_photo(size: int):
    """The astronaut photo (bundled with scikit-image), centre 384 px crop resized to ``size``; and its noisy copy."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from dip.data import degrade

    img = skimage.data.astronaut()[64:448, 64:448]
    img = np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS), dtype=np.float32) / 255.0
    return img, degrade.add_gaussian_noise(img, SIGMA, seed=SEED)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stamper(device, first: int, last: int):
    """Records the time after steps first..last. On CUDA only the two ends (with a sync): a sync every step would
    take away the asynchrony the fast loops live on; on CPU every step (the median resists a shared CPU's bursts)."""
    stamps: list[tuple[float, float]] = []  # (wall, process CPU time of all threads)

    def stamp(step: int) -> None:
        if step < first or (device.type == "cuda" and first < step < last):
            return
        _sync(device)
        stamps.append((time.perf_counter(), time.process_time()))

    return stamps, stamp


def peak_mb(device) -> float:
    """The peak memory so far in MB: CUDA's allocated peak, or this process's peak RSS on the CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _net_and_input(device, size: int, cfg):
    """The generator and its input exactly as dip.fit.fit builds them for ``cfg`` (same seed -> same weights)."""
    import torch

    from dip import nets

    torch.manual_seed(cfg.seed)
    input_gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    net = nets.build_net(cfg.net, cfg.input_depth, 3, **cfg.net_kwargs).to(device)
    z = nets.make_input(cfg.input_kind, cfg.input_depth, (size, size), generator=input_gen, scale=cfg.input_scale)
    return net, z.to(device)


def run_reference(device, size, iterations, warmup, cfg):
    """The authors' denoising.ipynb closure + optimize('adam'), line for line (minus the printing and plotting)."""
    import torch
    from skimage.metrics import peak_signal_noise_ratio as compare_psnr

    gt, noisy = noisy_photo(size)
    img_np, img_noisy_np = gt.transpose(2, 0, 1).copy(), noisy.transpose(2, 0, 1).copy()  # C x H x W, as theirs
    img_noisy_torch = torch.from_numpy(img_noisy_np)[None].to(device)
    net, net_input_saved = _net_and_input(device, size, cfg)
    noise = net_input_saved.detach().clone()
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)  # seeded here (theirs is not) for parity
    mse = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    reg_noise_std, exp_weight, show_every = cfg.reg_noise_std, cfg.exp_weight, 100
    state = {"out_avg": None, "last_net": None, "psrn_noisy_last": 0.0, "i": 0, "out": None}

    def closure():
        net_input = net_input_saved + (noise.normal_(generator=noise_gen) * reg_noise_std)
        out = net(net_input)
        if state["out_avg"] is None:
            state["out_avg"] = out.detach()
        else:
            state["out_avg"] = state["out_avg"] * exp_weight + out.detach() * (1 - exp_weight)
        total_loss = mse(out, img_noisy_torch)
        total_loss.backward()
        psrn_noisy = compare_psnr(img_noisy_np, out.detach().cpu().numpy()[0])
        psrn_gt = compare_psnr(img_np, out.detach().cpu().numpy()[0])  # noqa: F841 (printed by the notebook)
        psrn_gt_sm = compare_psnr(img_np, state["out_avg"].detach().cpu().numpy()[0])  # noqa: F841
        if state["i"] % show_every:
            if psrn_noisy - state["psrn_noisy_last"] < -5:
                for new_param, net_param in zip(state["last_net"], net.parameters()):
                    net_param.data.copy_(new_param.to(device))
                state["i"] += 1
                return total_loss * 0
            state["last_net"] = [x.detach().cpu() for x in net.parameters()]
            state["psrn_noisy_last"] = psrn_noisy
        state["i"] += 1
        state["out"] = out.detach()
        return total_loss

    stamps, stamp = _stamper(device, warmup - 1, iterations - 1)
    for j in range(iterations):
        optimizer.zero_grad()
        closure()
        optimizer.step()
        stamp(j)
    last = state["out"][0].cpu().numpy().transpose(1, 2, 0)
    avg = state["out_avg"][0].cpu().numpy().transpose(1, 2, 0)
    return dict(stamps=stamps, output=avg, output_raw=last, gt=gt)


def run_deepinv(device, size, iterations, warmup, cfg):
    """deepinv's DeepImagePrior on the same generator (same initial weights), timed around its forward call."""
    import torch
    from deepinv.models import DeepImagePrior
    from deepinv.physics import Denoising, GaussianNoise

    gt, noisy = noisy_photo(size)
    y = torch.from_numpy(noisy.transpose(2, 0, 1).copy())[None].to(device)
    physics = Denoising(GaussianNoise(sigma=SIGMA / 255.0)).to(device)
    net, _ = _net_and_input(device, size, cfg)
    torch.manual_seed(cfg.seed)  # deepinv draws z ~ randn from the global generator
    if warmup:
        DeepImagePrior(net, (cfg.input_depth, size, size), iterations=warmup, learning_rate=cfg.lr)(y, physics)
        # warm-up trained the net; restore the seeded initial weights so quality runs start alike (timing only)
    # Each generator call starts a step: the gaps between consecutive calls are whole steps (the last call is the
    # extra forward pass that returns the image).
    stamps, stamp = _stamper(device, 0, iterations - warmup)
    calls = [0]

    def pre_forward(module, inputs):
        stamp(calls[0])
        calls[0] += 1

    handle = net.register_forward_pre_hook(pre_forward)
    x = DeepImagePrior(net, (cfg.input_depth, size, size), iterations=iterations - warmup, learning_rate=cfg.lr)(
        y, physics
    )
    handle.remove()
    out = x.detach()[0].float().cpu().numpy().transpose(1, 2, 0)
    return dict(stamps=stamps, output=out, output_raw=out, gt=gt)


def run_ours(device, size, iterations, warmup, cfg):
    import torch  # noqa: F401

    from dip import physics
    from dip.fit import BaseHook, fit

    gt, noisy = noisy_photo(size)
    stamps, stamp = _stamper(device, warmup - 1, iterations - 1)

    class Timer(BaseHook):
        def on_step(self, state):
            stamp(state.step)

    result = fit(noisy, physics.Identity(), cfg, ground_truth=gt, hooks=[Timer()])
    return dict(stamps=stamps, output=result.output, output_raw=result.history[-1], gt=gt,
                backtracks=result.backtracks)  # fmt: skip


def run_batched(device, size, iterations, warmup, cfg, count):
    from dip import physics
    from dip.fit.stacked import fit_many

    gt, noisy = noisy_photo(size)
    stamps, stamp = _stamper(device, warmup - 1, iterations - 1)

    def on_step(step, params):
        stamp(step)

    results = fit_many([noisy], physics.Identity(), cfg, seeds=[cfg.seed + k for k in range(count)],
                       ground_truths=[gt], on_step=on_step)  # fmt: skip
    return dict(stamps=stamps, output=results[0].output, output_raw=results[0].history[-1], gt=gt, fits=count)
