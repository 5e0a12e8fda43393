"""Several DIP fits at once: K images of one shape (or K seeds of one image) in one process on one device.

A lone fit of the default network at 128-256 px leaves most of a GPU idle (batch 1, ~5 ms kernels). ``fit_many``
stacks the K networks' weights (``torch.func.stack_module_state``) and runs them as one vectorised network
(``torch.func.vmap`` over ``functional_call``: each convolution becomes one grouped convolution), so one kernel
launch serves all K fits. Every fit stays its own fit:

* fit ``k`` with seed ``s`` starts from the same weights, input ``z`` and per-step input noise as ``fit(...,
  config.replace(seed=s))`` (built in the same order from the same seeds);
* the loss is the sum of the K data terms, so each fit's gradient is exactly its own;
* Adam is elementwise; :class:`StackedAdam` keeps one step count per fit, so a fit that is rolled back (backtracking,
  NaN guard) resumes its own bias correction exactly as a lone fit does;
* batch normalisation is in training mode in DIP (statistics of the single image, never the running ones), which
  :func:`torch.func.replace_all_batch_norm_modules_` keeps while making it vmap-safe (each fit's statistics are
  computed over its own image only).

Results equal the lone fits' up to float rounding (grouped vs single convolutions sum in another order); DIP's
optimisation amplifies that noise a little over thousands of steps, as it does between two GPUs.
Hooks observe each fit as in a lone fit (e.g. ES-WMV recording its detected step); a fit cannot stop apart from the
others, so a hook's stop request is noted in the result and the batch runs on.
Not supported in a batch: checkpoints/resume, ``input_kind="image"``, ``compile`` (use :func:`dip.fit.fit`).
``channels_last`` is ignored (the grouped convolution picks its own layout).
"""

from __future__ import annotations

import copy
import math
import resource
import time
from typing import Callable, Hashable, Sequence

import numpy as np
import torch

from dip.nets import networks as models
from dip import physics
from dip.errors import DipInputError
from dip.fit.engine import (
    BaseHook,
    FitConfig,
    FitResult,
    FitState,
    _as_tensor,
    _psnr_t,
    ema_update,
    output_shape_for,
    resolve_device,
    resolve_precision,
)
from dip.data.imageio import to_numpy

__all__ = ["fit_many", "plan_packs", "StackedAdam"]


class StackedAdam:
    """Adam (torch's default: no weight decay, no AMSGrad) over parameters stacked along dim 0, one step count per fit.

    With equal step counts (the usual case) every element follows exactly the arithmetic of ``torch.optim.Adam``;
    after a per-fit roll-back the bias corrections are applied per fit.
    """

    def __init__(self, params: Sequence[torch.Tensor], count: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.count = count
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [0] * count

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.steps = [s + 1 for s in self.steps]
        uniform = len(set(self.steps)) == 1
        if uniform:
            step = self.steps[0]
            step_size = self.lr / (1 - beta1**step)
            bc2_sqrt = (1 - beta2**step) ** 0.5
        else:
            dev = self.params[0].device
            step_size_t = torch.tensor([self.lr / (1 - beta1**s) for s in self.steps], device=dev)
            bc2_sqrt_t = torch.tensor([(1 - beta2**s) ** 0.5 for s in self.steps], device=dev)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            g = p.grad
            if g is None:
                continue
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            if uniform:
                denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
                p.addcdiv_(m, denom, value=-step_size)
            else:
                shape = (self.count,) + (1,) * (p.dim() - 1)
                denom = (v.sqrt() / bc2_sqrt_t.view(shape)).add_(self.eps)
                p.sub_(m / denom * step_size_t.view(shape))

    def state(self) -> dict:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "steps": self.steps}


def plan_packs(fits: Sequence[tuple[Hashable, Hashable | None]], max_fits: int) -> list[list[Hashable]]:
    """Group fits into packs for :func:`fit_many`: fits of one size together, at most ``max_fits`` per pack.

    fits: ``(fit, size)`` pairs in a stable order; ``size`` is anything that is equal for fits whose inputs have one
        shape (e.g. the source image's (width, height)), or None when unknown (such a fit is never packed).
    Returns the packs of two or more fits, in order of their first fit; a fit left alone is not returned (it runs as a
    lone fit). Packs are balanced: 5 fits of one size with ``max_fits=4`` give packs of 3 and 2, not 4 and 1.
    """
    if max_fits < 1:
        raise DipInputError(f"max_fits must be >= 1, got {max_fits}")
    by_size: dict[Hashable, list[Hashable]] = {}
    for fit, size in fits:
        if size is not None:
            by_size.setdefault(size, []).append(fit)
    packs = []
    for members in by_size.values():
        n_packs = math.ceil(len(members) / max_fits)
        base, extra = divmod(len(members), n_packs)
        start = 0
        for i in range(n_packs):
            end = start + base + (1 if i < extra else 0)
            if end - start >= 2:
                packs.append(members[start:end])
            start = end
    return packs


def _broadcast(name: str, values: Sequence, count: int) -> list:
    values = list(values)
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise DipInputError(f"{name} has {len(values)} entries; give 1 or {count} (one per fit)")
    return values


def fit_many(
    observations: Sequence[np.ndarray],
    operators: torch.nn.Module | Sequence[torch.nn.Module],
    config: FitConfig,
    *,
    seeds: Sequence[int] | None = None,
    ground_truths: Sequence[np.ndarray | None] | None = None,
    on_step: Callable[[int, dict], object] | None = None,
    hooks: Sequence[Sequence[BaseHook]] | None = None,
) -> list[FitResult]:
    """Fit K DIP networks together, fit ``k`` to ``observations[k]`` through ``operators[k]`` with ``seeds[k]``.

    observations: K (H, W, C) images of one shape, or one image fitted K times (then give K ``seeds``).
    operators: one operator for all fits or one per fit (e.g. one mask per image); all map to the same shape.
    seeds: one per fit (default ``config.seed`` for every fit); fit ``k`` equals ``fit(..., config.replace(seed=
        seeds[k]))`` up to float rounding.
    ground_truths: optional, one per fit (or one for all): PSNRs against them are logged as in :func:`fit`.
    on_step: called as ``on_step(step, params)`` after every step (no sync; ``params`` maps names to the stacked
        weights, fit k in slice k); for timing and tests.
    hooks: optional, one sequence of hooks per fit, called as :func:`dip.fit.fit` calls them with that fit's
        :class:`~dip.fit.FitState` (``net`` is None: the weights are stacked). They observe: a stop request (e.g.
        early stopping with ``stop=True``) cannot end one fit of a batch; it is noted in that fit's result.
    Returns one :class:`FitResult` per fit; ``seconds`` and ``peak_memory_mb`` are those of the whole batch.
    """
    config.validate()
    if config.input_kind == "image":
        raise DipInputError("fit_many does not take an image as the network input; use dip.fit.fit")
    if config.compile:
        raise DipInputError("fit_many does not compile; set compile=False (or use dip.fit.fit)")
    observations = list(observations)
    if not observations:
        raise DipInputError("fit_many needs at least one observation")
    count = max(len(observations), len(seeds) if seeds is not None else 1)
    observations = _broadcast("observations", observations, count)
    seeds = _broadcast("seeds", seeds if seeds is not None else [config.seed], count)
    ops = _broadcast("operators", operators if isinstance(operators, (list, tuple)) else [operators], count)
    gts = _broadcast("ground_truths", ground_truths, count) if ground_truths is not None else [None] * count
    fit_hooks = [list(h) for h in hooks] if hooks is not None else [[] for _ in range(count)]
    if len(fit_hooks) != count:
        raise DipInputError(f"fit_many: {count} fits but {len(fit_hooks)} hook lists; give one (maybe empty) per fit")
    device = resolve_device(config.device)
    config = resolve_precision(config, device)
    started = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic

    ys = [_as_tensor(o, device) for o in observations]
    if len({tuple(y.shape) for y in ys}) != 1:
        raise DipInputError(f"fit_many needs observations of one shape, got {sorted({tuple(y.shape) for y in ys})}")
    y = torch.stack(ys)  # (K, 1, C, h, w)
    channels = y.shape[2]
    out_hws = {output_shape_for(op, (y.shape[3], y.shape[4])) for op in ops}
    if len(out_hws) != 1:
        raise DipInputError("the operators of a batch must all produce images of one size")
    out_hw = out_hws.pop()
    gt = [_as_tensor(g, device) if g is not None else None for g in gts]
    for g in gt:
        if g is not None and tuple(g.shape[2:]) != out_hw:
            raise DipInputError(f"a ground truth is {tuple(g.shape[2:])} but the fits produce {out_hw}")
    ops = [op.to(device) for op in ops]

    # Build each fit's network, input and noise stream exactly as dip.fit.fit does for its seed.
    nets, zs, noise_gens = [], [], []
    for seed in seeds:
        torch.manual_seed(seed)
        input_gen = torch.Generator(device="cpu").manual_seed(seed)
        nets.append(models.build_net(config.net, config.input_depth, channels, **config.net_kwargs))
        zs.append(models.make_input(config.input_kind, config.input_depth, out_hw, generator=input_gen,
                                    scale=config.input_scale))  # fmt: skip
        noise_gens.append(torch.Generator(device=device).manual_seed(seed + 1))
    for net in nets:
        torch.func.replace_all_batch_norm_modules_(net)  # batch statistics only, as in training mode
    params, buffers = torch.func.stack_module_state(nets)
    params = {k: v.detach().to(device).requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.to(device) for k, v in buffers.items()}
    base = copy.deepcopy(nets[0]).to("meta")
    del nets
    z = torch.stack(zs).to(device)  # (K, 1, D, H, W)
    noise = torch.empty_like(z)

    def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(base, (p, b), (x,))

    batched_net = torch.func.vmap(one, in_dims=(0, 0, 0), randomness="error")
    names = list(params)
    plist = [params[n] for n in names]
    optimizer = StackedAdam(plist, count, config.lr)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if config.precision == "bf16"
        else torch.autocast(device.type, enabled=False)
    )

    out_avg: torch.Tensor | None = None
    histories: list[list[dict]] = [[] for _ in range(count)]
    backtracks = [0] * count
    last_good: list[float | None] = [None] * count
    snapshot: dict | None = None  # stacked copies; slice k is fit k's last good state
    nonfinite = torch.zeros(count, dtype=torch.bool, device=device)
    states = [
        FitState(step=0, iterations=config.iterations, net=None, output=z[k], output_avg=None,
                 loss=torch.zeros((), device=device), history=histories[k])
        for k in range(count)
    ]  # fmt: skip
    stop_requests: list[int | None] = [None] * count
    for k in range(count):
        for hook in fit_hooks[k]:
            hook.on_start(states[k])

    def observe(k: int, step: int, out_d: torch.Tensor, losses_d: torch.Tensor) -> None:
        state = states[k]
        state.step, state.output, state.loss = step, out_d[k], losses_d[k]
        state.output_avg = out_avg[k] if out_avg is not None else None

    def take_snapshot(k: int | None) -> None:
        nonlocal snapshot
        if snapshot is None:
            snapshot = {
                "p": [p.detach().clone() for p in plist],
                "m": [t.clone() for t in optimizer.exp_avg],
                "v": [t.clone() for t in optimizer.exp_avg_sq],
                "steps": list(optimizer.steps),
                "out_avg": out_avg.clone() if out_avg is not None else None,
            }
            return
        sl = slice(None) if k is None else slice(k, k + 1)
        with torch.no_grad():
            for dst, src in zip(snapshot["p"] + snapshot["m"] + snapshot["v"],
                                plist + optimizer.exp_avg + optimizer.exp_avg_sq):  # fmt: skip
                dst[sl].copy_(src[sl])
            if out_avg is not None:
                snapshot["out_avg"][sl].copy_(out_avg[sl])
        for i in range(count) if k is None else [k]:
            snapshot["steps"][i] = optimizer.steps[i]

    def roll_back(k: int) -> None:
        with torch.no_grad():
            for dst, src in zip(plist + optimizer.exp_avg + optimizer.exp_avg_sq,
                                snapshot["p"] + snapshot["m"] + snapshot["v"]):  # fmt: skip
                dst[k].copy_(src[k])
            if out_avg is not None and snapshot["out_avg"] is not None:
                out_avg[k].copy_(snapshot["out_avg"][k])
        optimizer.steps[k] = snapshot["steps"][k]

    step = -1
    for step in range(config.iterations):
        if config.reg_noise_std > 0:
            for k in range(count):
                noise[k].normal_(generator=noise_gens[k])
            net_in = z + noise * config.reg_noise_std
        else:
            net_in = z
        with autocast:
            out = batched_net(params, buffers, net_in)
        out = out.float()
        losses = torch.stack([physics.data_term(ops[k], out[k], y[k]) for k in range(count)])
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()

        out_d = out.detach()
        losses_d = losses.detach()
        nonfinite |= ~torch.isfinite(losses_d)
        if config.exp_weight is not None:
            out_avg = ema_update(out_avg, out_d, config.exp_weight)

        is_last = step == config.iterations - 1
        if step % config.log_every == 0 or is_last:
            with torch.no_grad():
                rows = []
                for k in range(count):
                    row = [losses_d[k], _psnr_t(ops[k](out_d[k]), y[k]), nonfinite[k].float()]
                    nan = torch.full((), float("nan"), device=device)
                    row.append(_psnr_t(out_d[k], gt[k]) if gt[k] is not None else nan)
                    row.append(_psnr_t(out_avg[k], gt[k]) if gt[k] is not None and out_avg is not None else nan)
                    rows.append(torch.stack([v.float() for v in row]))
                host = torch.stack(rows).cpu().tolist()  # the one sync for all K fits
            elapsed = time.perf_counter() - started
            all_good = True
            for k in range(count):
                h = host[k]
                record = {
                    "step": step,
                    "loss": h[0],
                    "psnr_obs": h[1],
                    "psnr_gt": h[3] if gt[k] is not None else None,
                    "psnr_gt_avg": h[4] if gt[k] is not None and out_avg is not None else None,
                    "seconds": elapsed,
                }
                diverged = bool(h[2]) or not math.isfinite(record["loss"])
                if config.backtrack_db is not None and last_good[k] is not None:
                    diverged = diverged or record["psnr_obs"] < last_good[k] - config.backtrack_db
                if diverged and snapshot is not None:
                    roll_back(k)
                    backtracks[k] += 1
                    record["backtracked"] = True
                    nonfinite[k] = False
                    all_good = False
                elif diverged:
                    raise FloatingPointError(
                        f"fit {k} (seed {seeds[k]}) diverged at step {step} (loss {record['loss']}) before any good "
                        "state was saved; lower the learning rate"
                    )
                else:
                    last_good[k] = record["psnr_obs"]
                histories[k].append(record)
                if fit_hooks[k]:
                    observe(k, step, out_d, losses_d)
                    for hook in fit_hooks[k]:
                        hook.on_log(states[k], record)
            if all_good or snapshot is None:
                take_snapshot(None)
            else:
                for k in range(count):
                    if not histories[k][-1].get("backtracked"):
                        take_snapshot(k)
        for k in range(count):
            if fit_hooks[k]:
                observe(k, step, out_d, losses_d)
                for hook in fit_hooks[k]:
                    hook.on_step(states[k])
                if states[k].stop and stop_requests[k] is None:
                    stop_requests[k] = step
        if on_step is not None:
            on_step(step, params)

    with torch.no_grad(), autocast:
        final_raw = batched_net(params, buffers, z).float()
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for k in range(count):
        for hook in fit_hooks[k]:
            hook.on_end(states[k])
    seconds = time.perf_counter() - started
    results = []
    for k in range(count):
        notes = [f"fitted in a batch of {count} (dip.fit.stacked.fit_many); seconds and memory are the batch's"]
        if stop_requests[k] is not None:
            notes.append(f"a hook asked to stop at step {stop_requests[k]}; a fit in a batch runs its full step count")
        raw = to_numpy(final_raw[k])
        avg = to_numpy(out_avg[k]) if out_avg is not None else None
        results.append(
            FitResult(
                output=avg if avg is not None else raw,
                output_raw=raw,
                output_avg=avg,
                history=histories[k],
                seconds=seconds,
                iterations_done=step + 1,
                resumed_from=0,
                stopped_early=False,
                backtracks=backtracks[k],
                device=str(device),
                peak_memory_mb=peak_mb,
                config=config.replace(seed=int(seeds[k])),
                notes=notes,
            )
        )
    return results
