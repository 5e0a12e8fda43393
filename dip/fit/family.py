"""The DIP family on the one engine: what each method of :mod:`dip.methods` changes in a fit, as the engine's parts.

* **DIP-TV** and the **Deep Random Projector**'s loss: :class:`TVTerm`, a data term plus a weighted total variation.
* **SGLD**: :class:`LangevinStepper`, Langevin noise on the weights after each Adam step; its output is the mean of the
  samples after burn-in.
* **Deep Random Projector**: :class:`ProjectorStepper`, frozen random convolutions; only the input and the batch-norm
  parameters are fitted.
* **DIP-SURE**: :class:`SureStepper`, the SURE loss with a Monte-Carlo divergence (:func:`mc_divergence`).
* **Deep Decoder**: a network only (:mod:`dip.nets.deep_decoder`); the plain stepper fits it.

:func:`term_for` and :func:`stepper_for` pick them from a config's ``method``; :func:`dip.fit.fit` calls both, and the
driver (:class:`dip.fit.engine.FitDriver`) runs every method alike (logging, roll-backs, hooks, checkpoints).
"""

from __future__ import annotations

import bisect
import math

import torch
from torch import nn

from dip.fit.config import FitConfig
from dip.fit.lone import LoneStepper
from dip.methods import settings_of

__all__ = ["TVTerm", "LangevinStepper", "ProjectorStepper", "SureStepper", "mc_divergence", "stepper_for",
           "term_for", "total_variation"]  # fmt: skip


def total_variation(x: torch.Tensor, kind: str = "isotropic") -> torch.Tensor:
    """The total variation of images ``x`` (..., C, H, W), per value.

    anisotropic: ``(sum |dh| + sum |dw|) / x.numel()`` -- the Deep Random Projector's ``tv1_loss``
        (sun-umn/Deep-Random-Projector, 1_Denoising/util.py, lines 256-266).
    isotropic: the mean over pixels and channels of ``sqrt(dh**2 + dw**2)`` on the (H-1) x (W-1) grid where both
        differences exist (DIP-TV's TV, Liu et al. ICASSP 2019, eq. 5), with 1e-8 under the root (a finite gradient
        on flat regions).
    """
    dh = x[..., 1:, :] - x[..., :-1, :]
    dw = x[..., :, 1:] - x[..., :, :-1]
    if kind == "anisotropic":
        return (dh.abs().sum() + dw.abs().sum()) / x.numel()
    return torch.sqrt(dh[..., :, :-1] ** 2 + dw[..., :-1, :] ** 2 + 1e-8).mean()


class TVTerm:
    """``data + weight * TV(x)``, or with ``root`` ``sqrt(data) + weight * TV(x)`` (the Projector's RMSE loss,
    1_Denoising/train_denoising.py, lines 202-204), around a data term ``base``.

    Records what ``base`` records, with ``loss`` the base's data term of the step's output (the residual the auto
    stop reads, as for DIP), plus ``objective`` (what was minimised) and ``tv``. With weight 0 and no root the loss
    is ``base``'s exactly (x + 0 * y == x), and so is the fit.
    """

    def __init__(self, base, weight: float, *, kind: str = "isotropic", root: bool = False):
        self.base, self.weight, self.kind, self.root = base, float(weight), kind, root
        self.quality_key = base.quality_key

    def __getattr__(self, name: str):  # output_hw, channels, observation, ground_truth, operator: the base's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def loss(self, output: torch.Tensor) -> torch.Tensor:
        data = self.base.loss(output)
        if self.root:
            data = torch.sqrt(data)
        return data + self.weight * total_variation(output, self.kind)

    def log_values(self, output: torch.Tensor, average: torch.Tensor | None) -> list[torch.Tensor]:
        return [*self.base.log_values(output, average), self.base.loss(output), total_variation(output, self.kind)]

    def record(self, loss: float, values: list[float], output: torch.Tensor, average: torch.Tensor | None) -> dict:
        *base_values, residual, tv = values
        return {**self.base.record(residual, base_values, output, average), "objective": loss, "tv": tv}


class LangevinStepper(LoneStepper):
    """SGLD (Cheng et al., CVPR 2019), as ZezhouCheng/GP-DIP, Image_Denoising.ipynb, cell "SGLD": Adam with weight
    decay (``weight_decay = 5e-8``), then ``add_noise``: every 4-D weight (the convolutions) gets
    N(0, (param_noise_sigma * lr)**2) (``param_noise_sigma = 2``, ``LR = 0.01``); from step ``burn_in`` (7000) on, the
    step's output is a sample every ``sample_every`` (``MCMC_iter = 50``) steps, ``i > burnin_iter and i % MCMC_iter
    == 0``, and the output is their mean.

    Note: textbook Langevin dynamics injects variance 2 * lr; the authors' code injects (2 * lr)**2, which is what
    this follows.
    """

    def __init__(self, net, z, noise_gen, term, config: FitConfig, device: torch.device):
        super().__init__(net, z, noise_gen, term, config, device)
        settings = settings_of(config)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=settings["weight_decay"])
        self.noise_std = float(settings["param_noise_sigma"]) * config.lr
        self.burn_in, self.every = int(settings["burn_in"]), int(settings["sample_every"])
        self.weights = [p for p in net.parameters() if p.dim() == 4]
        self.langevin_gen = torch.Generator(device=device).manual_seed(config.seed + 2)
        self.steps_taken = 0
        self.sample_sum: torch.Tensor | None = None
        self.samples = 0

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        outputs, losses = super().step()
        self.inject_noise()
        i = self.steps_taken
        if i > self.burn_in and i % self.every == 0:
            self.sample_sum = outputs[0].clone() if self.sample_sum is None else self.sample_sum.add_(outputs[0])
            self.samples += 1
        self.steps_taken += 1
        return outputs, losses

    @torch.no_grad()
    def inject_noise(self) -> None:
        """Add N(0, noise_std**2) to every convolution weight."""
        for p in self.weights:
            noise = torch.randn(p.shape, generator=self.langevin_gen, device=p.device, dtype=p.dtype)
            p.add_(noise, alpha=self.noise_std)

    @torch.no_grad()
    def final_outputs(self) -> torch.Tensor:
        """The posterior mean of the samples (before burn-in ends: ``f(z)``, as a DIP fit's)."""
        if self.samples == 0:
            return super().final_outputs()
        return (self.sample_sum / self.samples).unsqueeze(0)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "langevin_gen": self.langevin_gen.get_state(), "steps_taken": self.steps_taken,
                "sample_sum": self.sample_sum, "samples": self.samples}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.langevin_gen.set_state(state["langevin_gen"].cpu())
        self.steps_taken, self.samples = int(state["steps_taken"]), int(state["samples"])
        self.sample_sum = state["sample_sum"]

    @staticmethod
    def samples_in(config: FitConfig) -> int:
        """How many samples a full fit of ``config`` averages."""
        settings = settings_of(config)
        burn_in, every = int(settings["burn_in"]), int(settings["sample_every"])
        return sum(1 for i in range(burn_in + 1, config.iterations) if i % every == 0)


class ProjectorStepper(LoneStepper):
    """The Deep Random Projector (Li et al., CVPR 2023), as sun-umn/Deep-Random-Projector,
    1_Denoising/train_denoising.py: the convolutions' weights and biases stay at their random initialisation (lines
    60-102), the input ``g_noise`` ~ N(0, 0.1**2) is a parameter (lines 114-117), and Adam at lr 0.1 fits it and the
    batch norms (lines 143-145, one Adam here: Adam is elementwise)."""

    def __init__(self, net, z, noise_gen, term, config: FitConfig, device: torch.device):
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                for p in module.parameters(recurse=False):
                    p.requires_grad_(False)
        super().__init__(net, z.clone().requires_grad_(True), noise_gen, term, config, device)
        self.inputs = self.z.detach().unsqueeze(0)  # follows the fitted input
        fitted = [self.z] + [p for p in net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(fitted, lr=config.lr)

    def take_snapshot(self, fits: list[int]) -> None:
        super().take_snapshot(fits)
        if fits:
            self.snapshot["z"] = self.z.detach().clone()

    @torch.no_grad()
    def roll_back(self, fit: int) -> None:
        super().roll_back(fit)
        self.z.copy_(self.snapshot["z"])

    def state_dict(self) -> dict:
        return {**super().state_dict(), "z": self.z.detach()}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.z.copy_(state["z"])
        if state["snapshot"] is not None:
            self.snapshot["z"] = state["snapshot"]["z"]


def mc_divergence(fn, x: torch.Tensor, out: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """The Monte-Carlo estimate of ``div f(x) = sum_i df_i/dx_i`` with one probe ``b ~ N(0, I)``:
    ``b . (f(x + eps b) - f(x)) / eps`` (Ramani et al. 2008; gistvision/DIP-denosing, loss.py, lines 59-65,
    ``divergence_ty``). ``out`` is ``f(x)``; differentiable through both evaluations."""
    probe = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.sum(probe * (fn(x + eps * probe) - out)) / eps


class SureStepper(LoneStepper):
    """DIP-SURE (Jo, Chun, Choi, ICCV 2021), as gistvision/DIP-denosing ``--dip_type dip_sure`` (exp_denoising.sh,
    "ablation"): the network's input is the noisy image y (main.py, lines 23-29), the loss is
    ``mean((f(y) - y)**2) + 2 sigma**2 div f(y) / N - sigma**2`` (loss.py, lines 36-57) with the divergence of
    :func:`mc_divergence` at ``eps = epsilon * sigma`` (loss.py line 25; ``--epsilon 0.5``, config_parser.py line
    45), RAdam at lr 0.1 (main.py lines 45-46; config_parser.py line 15) halved at each of ``lr_milestones`` (main.py
    line 76, ``MultiStepLR(milestones=[2000, 3000], gamma=0.5)`` over 3000 epochs). Sigma in [0, 1] units: the
    setting's (0-255 scale) or estimated from the image."""

    def __init__(self, net, z, noise_gen, term, config: FitConfig, device: torch.device):
        super().__init__(net, z, noise_gen, term, config, device)
        settings = settings_of(config)
        given = settings["sigma"]
        if given is None:
            from dip.fit.stopping import estimate_noise_sigma

            self.sigma = float(estimate_noise_sigma(term.observation[0].permute(1, 2, 0).cpu().numpy()))
        else:
            self.sigma = float(given) / 255
        self.sigma_from = "given" if given is not None else "estimated from the image"
        self.eps = float(settings["epsilon"]) * self.sigma
        self.milestones, self.gamma = sorted(int(m) for m in settings["lr_milestones"] or []), settings["lr_gamma"]
        self.optimizer = torch.optim.RAdam(net.parameters(), lr=config.lr)
        self.probe_gen = torch.Generator(device=device).manual_seed(config.seed + 3)
        self.steps_taken = 0

    @classmethod
    def for_fit(cls, config: FitConfig, device: torch.device, term, *, net=None, guide=None) -> "SureStepper":
        noisy = term.observation[0].permute(1, 2, 0).cpu().numpy()  # the network's input: the noisy image
        if net is None and config.input_depth != noisy.shape[2]:  # a grey image: the network takes one channel
            config = config.replace(input_depth=noisy.shape[2])
        stepper = super().for_fit(config, device, term, net=net, guide=noisy)
        stepper.notes.append(f"sure: sigma {255 * stepper.sigma:.2f}/255 ({stepper.sigma_from})")
        return stepper

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        lr = self.config.lr * self.gamma ** bisect.bisect_right(self.milestones, self.steps_taken)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.steps_taken += 1
        return super().step()

    def objective(self, net_in: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.sigma == 0 or not math.isfinite(self.sigma):
            return self.term.loss(out)
        divergence = mc_divergence(self.forward, net_in, out, self.eps, self.probe_gen)
        return self.term.loss(out) + 2 * self.sigma**2 * divergence / out.numel() - self.sigma**2

    def state_dict(self) -> dict:
        return {**super().state_dict(), "probe_gen": self.probe_gen.get_state(), "steps_taken": self.steps_taken}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.probe_gen.set_state(state["probe_gen"].cpu())
        self.steps_taken = int(state["steps_taken"])


_STEPPERS = {"sgld": LangevinStepper, "drp": ProjectorStepper, "sure": SureStepper}


def term_for(config: FitConfig, term):
    """The data term a fit of ``config``'s method minimises, around the task's ``term``."""
    settings = settings_of(config)
    if config.method == "dip-tv":
        return TVTerm(term, settings["tv_weight"], kind="isotropic")
    if config.method == "drp":
        return TVTerm(term, settings["tv_weight"], kind="anisotropic", root=True)
    return term


def stepper_for(config: FitConfig, device: torch.device, term, *, net=None, guide=None) -> LoneStepper:
    """The lone stepper of ``config``'s method (the plain one for DIP and the Deep Decoder)."""
    stepper = _STEPPERS.get(config.method, LoneStepper).for_fit(config, device, term, net=net, guide=guide)
    if config.method == "sgld":
        settings = settings_of(config)
        stepper.notes.append(f"sgld: the output is the mean of {LangevinStepper.samples_in(config)} samples (every "
                             f"{settings['sample_every']} steps after step {settings['burn_in']})")  # fmt: skip
    return stepper
