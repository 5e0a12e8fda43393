"""One fit, one network: the stepper of :func:`dip.fit.fit` and of the DIP pre-image.

A stepper runs the optimisation steps; the driver (:class:`dip.fit.engine.FitDriver`) does everything around them.
The lone stepper keeps the weights in a plain module, so it is the one that can be compiled, run channels_last and
checkpointed.
"""

from __future__ import annotations

import copy

import torch

from dip.fit.config import FitConfig
from dip.fit.device import autocast_for
from dip.fit.memory import memory_mode_for_fit
from dip.fit.objectives import DataTerm
from dip.nets import build_net, make_input
from dip.nets.inputs import input_size
from dip.nets.recompute import set_checkpointing


def compiled(net: torch.nn.Module, config: FitConfig) -> torch.nn.Module:
    """The module the training steps call: ``net`` itself, or a compiled wrapper sharing its parameters.

    ``net`` stays the owner of the weights (state dicts, checkpoints and roll-backs keep their plain keys).
    """
    if not config.compile:
        return net
    return torch.compile(net, mode=None if config.compile_mode == "default" else config.compile_mode, dynamic=False)


class LoneStepper:
    """Adam on one network ``net`` with input ``z`` (1, D, H, W), perturbed every step by noise from ``noise_gen``.

    Its tensors carry a leading fit axis of length 1 (``outputs[0]`` is this fit's output), the driver's layout for
    any number of fits.
    """

    count = 1

    def __init__(self, net: torch.nn.Module, z: torch.Tensor, noise_gen: torch.Generator, term: DataTerm,
                 config: FitConfig, device: torch.device):  # fmt: skip
        self.net, self.z, self.term, self.config = net, z, term, config
        self.inputs = z.unsqueeze(0)
        # The perturbation noise stays in the default layout: randn on channels_last tensors is ~7x slower on CPU.
        # It is drawn where its generator lives (the pre-image draws it on the CPU whatever the device).
        self.noise_gen = noise_gen
        self.noise = torch.empty_like(z, memory_format=torch.contiguous_format, device=noise_gen.device)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        self.step_net = compiled(net, config)
        # CUDA graphs reuse their output memory on the next replay: the output is copied out of the graph's pool.
        self.cudagraphs = config.compile and config.compile_mode == "reduce-overhead" and device.type == "cuda"
        self.autocast = autocast_for(device, config.precision)
        self.snapshot: dict | None = None  # weights + Adam state at the last good logged step
        self.notes: list[str] = []  # what the result records about how the fit ran (for_fit: the memory mode)

    @classmethod
    def for_fit(cls, config: FitConfig, device: torch.device, term, *, net: torch.nn.Module | None = None,
                guide=None) -> "LoneStepper":  # fmt: skip
        """The stepper of :func:`dip.fit.fit`: ``config``'s network (or ``net``), input and noise, seeded."""
        height, width = term.output_hw
        mode, notes = memory_mode_for_fit(config, device, net, height, width, term.channels)
        # Seed before building the network so that its initial weights are part of the seeded state.
        torch.manual_seed(config.seed)
        input_gen = torch.Generator(device="cpu").manual_seed(config.seed)
        if net is None:
            net = build_net(config.net, config.input_depth, term.channels, **config.net_kwargs)
        set_checkpointing(net, mode)
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        net = net.to(device).to(memory_format=memory_format)
        z = make_input(
            config.input_kind, config.input_depth, input_size(net, term.output_hw), generator=input_gen,
            scale=config.input_scale,
            image=guide,
        ).to(device)
        noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
        stepper = cls(net, z, noise_gen, term, config, device)
        stepper.notes = notes
        return stepper

    def net_of(self, fit: int) -> torch.nn.Module:
        return self.net

    def config_of(self, fit: int) -> FitConfig:
        return self.config

    def label(self, fit: int) -> str:
        return "the fit"

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step; returns this step's output (1, 1, C, H, W) and loss (1,), detached."""
        net_in = self.perturbed_input()
        out = self.forward(net_in)
        loss = self.objective(net_in, out)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return out.detach().unsqueeze(0), loss.detach().unsqueeze(0)

    def objective(self, net_in: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """What the step minimises: the data term of the output (a method's stepper may add to it, dip.fit.family)."""
        return self.term.loss(out)

    def perturbed_input(self) -> torch.Tensor:
        """``z`` plus this step's fresh N(0, reg_noise_std**2) perturbation (``z`` itself without one)."""
        if self.config.reg_noise_std > 0:
            self.noise.normal_(generator=self.noise_gen)
            return self.z + self.noise.to(self.z.device) * self.config.reg_noise_std
        return self.z

    def forward(self, net_in: torch.Tensor) -> torch.Tensor:
        """The network's fp32 output for ``net_in``, differentiable."""
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        with self.autocast:
            out = self.step_net(net_in)
        out = out.float()
        return out.clone() if self.cudagraphs else out

    def take_snapshot(self, fits: list[int]) -> None:
        if fits:
            self.snapshot = {
                "net": copy.deepcopy(self.net.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            }

    def roll_back(self, fit: int) -> None:
        self.net.load_state_dict(self.snapshot["net"])
        self.optimizer.load_state_dict(self.snapshot["optimizer"])

    @torch.no_grad()
    def final_outputs(self) -> torch.Tensor:
        """``f(z)`` with the final weights and the clean input, (1, 1, C, H, W)."""
        with self.autocast:
            return self.net(self.z).float().unsqueeze(0)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "noise_gen": self.noise_gen.get_state(), "snapshot": self.snapshot}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.noise_gen.set_state(state["noise_gen"].cpu())
        snapshot = state["snapshot"]  # a checkpoint's snapshot also holds the driver's EMA ("out_avg")
        self.snapshot = None if snapshot is None else {"net": snapshot["net"], "optimizer": snapshot["optimizer"]}
