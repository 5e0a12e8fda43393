"""Several DIP fits at once: K images of one shape (or K seeds of one image) in one process on one device.

A lone fit of the default network at 128-256 px leaves most of a GPU idle (batch 1, ~5 ms kernels). ``fit_many``
stacks the K networks' weights (``torch.func.stack_module_state``) and runs them as one vectorised network
(``torch.func.vmap`` over ``functional_call``: each convolution becomes one grouped convolution), so one kernel
launch serves all K fits. :class:`StackedStepper` is that vectorised step; everything around it -- logging,
backtracking, the EMA, hooks, results -- is the same driver as a lone fit's (:class:`dip.fit.engine.FitDriver`), with
the same data term per fit. Every fit stays its own fit:

* fit ``k`` with seed ``s`` starts from the same weights, input ``z`` and per-step input noise as ``fit(...,
  config.replace(seed=s))`` (built by the same code from the same seeds);
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
import time
from typing import Callable, Sequence

import numpy as np
import torch

from dip.errors import DipInputError
from dip.methods import get_method
from dip.fit.config import FitConfig, FitResult
from dip.fit.device import autocast_for, prepare_device, resolve_device, resolve_precision
from dip.fit.engine import FitDriver
from dip.fit.family import term_for
from dip.fit.hooks import BaseHook
from dip.fit.memory import check_batch_memory
from dip.fit.objectives import ObservationTerm, image_on_device
from dip.nets import build_net, make_input
from dip.nets.inputs import input_size

__all__ = ["fit_many", "StackedAdam", "StackedStepper"]


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


class StackedStepper:
    """K fits of one shape as one vectorised network: fit k is built from ``seeds[k]`` exactly as a lone fit is."""

    def __init__(self, config: FitConfig, device: torch.device, terms: Sequence[ObservationTerm], seeds: Sequence[int]):
        self.config, self.terms, self.seeds = config, list(terms), [int(s) for s in seeds]
        self.count = len(self.seeds)
        channels, out_hw = terms[0].channels, terms[0].output_hw
        # Each fit's network, input and noise stream are built in the order dip.fit.fit builds them for its seed.
        nets, zs, self.noise_gens = [], [], []
        for seed in self.seeds:
            torch.manual_seed(seed)
            input_gen = torch.Generator(device="cpu").manual_seed(seed)
            nets.append(build_net(config.net, config.input_depth, channels, **config.net_kwargs))
            zs.append(make_input(config.input_kind, config.input_depth, input_size(nets[-1], out_hw),
                                 generator=input_gen, scale=config.input_scale))  # fmt: skip
            self.noise_gens.append(torch.Generator(device=device).manual_seed(seed + 1))
        for net in nets:
            torch.func.replace_all_batch_norm_modules_(net)  # batch statistics only, as in training mode
        params, buffers = torch.func.stack_module_state(nets)
        self.params = {k: v.detach().to(device).requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.to(device) for k, v in buffers.items()}
        base = copy.deepcopy(nets[0]).to("meta")
        del nets

        def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(base, (p, b), (x,))

        self.batched_net = torch.func.vmap(one, in_dims=(0, 0, 0), randomness="error")
        self.inputs = torch.stack(zs).to(device)  # (K, 1, D, H, W)
        self.noise = torch.empty_like(self.inputs)
        self.plist = list(self.params.values())
        self.optimizer = StackedAdam(self.plist, self.count, config.lr)
        self.autocast = autocast_for(device, config.precision)
        self.snapshot: dict | None = None  # stacked copies; slice k is fit k's last good state

    def net_of(self, fit: int) -> None:
        return None

    def config_of(self, fit: int) -> FitConfig:
        return self.config.replace(seed=self.seeds[fit])

    def label(self, fit: int) -> str:
        return f"fit {fit} (seed {self.seeds[fit]})"

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.reg_noise_std > 0:
            for k in range(self.count):
                self.noise[k].normal_(generator=self.noise_gens[k])
            net_in = self.inputs + self.noise * self.config.reg_noise_std
        else:
            net_in = self.inputs
        with self.autocast:
            out = self.batched_net(self.params, self.buffers, net_in)
        out = out.float()
        losses = torch.stack([term.loss(out[k]) for k, term in enumerate(self.terms)])
        self.optimizer.zero_grad()
        losses.sum().backward()
        self.optimizer.step()
        return out.detach(), losses.detach()

    def _state_lists(self) -> list[torch.Tensor]:
        return self.plist + self.optimizer.exp_avg + self.optimizer.exp_avg_sq

    @torch.no_grad()
    def take_snapshot(self, fits: list[int]) -> None:
        if self.snapshot is None:
            self.snapshot = {"tensors": [t.detach().clone() for t in self._state_lists()],
                             "steps": list(self.optimizer.steps)}  # fmt: skip
            return
        whole = len(fits) == self.count
        for dst, src in zip(self.snapshot["tensors"], self._state_lists()):
            if whole:
                dst.copy_(src)
            else:
                for k in fits:
                    dst[k].copy_(src[k])
        for k in fits:
            self.snapshot["steps"][k] = self.optimizer.steps[k]

    @torch.no_grad()
    def roll_back(self, fit: int) -> None:
        for dst, src in zip(self._state_lists(), self.snapshot["tensors"]):
            dst[fit].copy_(src[fit])
        self.optimizer.steps[fit] = self.snapshot["steps"][fit]

    @torch.no_grad()
    def final_outputs(self) -> torch.Tensor:
        with self.autocast:
            return self.batched_net(self.params, self.buffers, self.inputs).float()

    def state_dict(self) -> dict:
        raise DipInputError("stacked fits are not checkpointed; use dip.fit.fit for a fit that must resume")

    def load_state_dict(self, state: dict) -> None:
        self.state_dict()


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
    method = get_method(config.method)
    if not method.packable:
        raise DipInputError(f"{method.title} fits are not packed (its stepper runs one fit at a time); fit them one "
                            "by one (dip.fit.fit, dip.restore.restore)")  # fmt: skip
    if config.input_kind == "image":
        raise DipInputError("fit_many does not take an image as the network input; use dip.fit.fit")
    if config.compile:
        raise DipInputError("fit_many does not compile; set compile=False (or use dip.fit.fit)")
    if config.memory_saving == "on":
        raise DipInputError(
            "fit_many cannot checkpoint activations (torch's checkpointing does not work under vmap); use "
            "memory_saving='auto' or 'off', or dip.fit.fit (--memory-saving on) for one fit at a time"
        )
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
    prepare_device(device, config)
    terms = _terms(observations, ops, gts, device, config)
    check_batch_memory(config, device, *terms[0].output_hw, terms[0].channels, count)
    stepper = StackedStepper(config, device, terms, seeds)
    driver = FitDriver(
        stepper, terms, config, device, hooks=fit_hooks, started=started, stop_on_request=False,
        after_step=None if on_step is None else (lambda step: on_step(step, stepper.params)),
    )  # fmt: skip
    results = driver.run()
    for result in results:
        result.notes.insert(0, f"fitted in a batch of {count} (dip.fit.stacked.fit_many); seconds and memory are "
                               "the batch's")  # fmt: skip
    return results


def _terms(observations, operators, ground_truths, device, config: FitConfig) -> list[ObservationTerm]:
    """One data term per fit; the fits of a batch must observe, and produce, images of one shape."""
    ys = [image_on_device(o, device) for o in observations]
    if len({tuple(y.shape) for y in ys}) != 1:
        raise DipInputError(f"fit_many needs observations of one shape, got {sorted({tuple(y.shape) for y in ys})}")
    terms = [term_for(config, ObservationTerm(op, y, device, gt)) for y, op, gt in zip(ys, operators, ground_truths)]
    if len({t.output_hw for t in terms}) != 1:
        raise DipInputError("the operators of a batch must all produce images of one size")
    return terms
