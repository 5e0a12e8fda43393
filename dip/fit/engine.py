"""The one DIP fit loop.

``fit`` optimises the weights of a randomly initialised network ``f_theta`` so that ``A(f_theta(z))`` matches the
observation ``y`` (the network's structure is the prior; the number of steps is the regulariser). Every task uses this
loop: the task only changes the observation operator ``A`` (:mod:`dip.physics`) and the settings (:mod:`dip.presets`).

What the loop does beyond the authors' notebooks, and why:

* **No host sync on most steps.** Loss, PSNRs and the divergence check are read on the device and copied to the host
  only every ``log_every`` steps; the notebooks copy the output to numpy every step, which dominates GPU time.
* **Backtracking restores parameters and Adam's state.** The reference restores only the parameters (and still applies
  the bad step's gradient), so the moments that caused the divergence survive; we roll both back.
* **NaN guard.** A non-finite loss anywhere since the last check triggers the same roll-back.
* **Checkpoints and resume.** Every ``checkpoint_every`` steps, and when the process receives SIGTERM (SLURM
  preemption or time limit), the full state -- weights, Adam, EMA, RNG states, the roll-back snapshot, history -- goes
  to ``checkpoint_path`` atomically. A fit restarted from it ends bit-identical (CPU, same seed) to an uninterrupted one.
* **Hooks** (progress bars, early stopping, extra logging) see the state every step without forcing a sync.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np
import torch

from dip.nets import networks as models
from dip import physics
from dip.errors import DipInputError
from dip.data.imageio import to_numpy, to_tensor

CHECKPOINT_FORMAT = 2  # 2: reflection-padded convolutions are one module (models.ReflectConv2d)
PRECISIONS = ("fp32", "bf16", "auto")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class FitConfig:
    """Everything that defines a fit. Presets in :mod:`dip.presets` fill it with the authors' settings."""

    net: str = "skip"
    net_kwargs: dict = field(default_factory=dict)
    input_kind: str = "noise"  # noise | meshgrid | image
    input_depth: int = 32
    input_scale: float = 0.1  # z ~ U(0, input_scale), the paper's choice
    lr: float = 0.01
    iterations: int = 3000
    reg_noise_std: float = 1.0 / 30.0  # fresh N(0, std^2) added to z every step
    exp_weight: float | None = 0.99  # EMA of outputs; None disables it
    backtrack_db: float | None = 5.0  # roll back when PSNR(A(x), y) drops by more than this; None disables it
    log_every: int = 50
    checkpoint_every: int = 0  # 0 = only on SIGTERM (if a checkpoint path is given)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # fp32 | bf16 (autocast of the forward pass; the loss stays fp32) | auto (bf16 where the device has native bf16
    # arithmetic, see bf16_is_fast; else fp32). A fit's record holds what "auto" chose.
    precision: str = "fp32"
    channels_last: bool = True
    deterministic: bool = False  # on CUDA: deterministic algorithms instead of cuDNN autotuning
    # torch.compile the network's forward (DIP's shapes never change, so it compiles once). Off by default: on CPU it
    # costs 80-100 s to compile and gains only at 512 px (cpu-calibration.md); on CUDA "reduce-overhead" also replays
    # forward + backward as CUDA graphs. Adam, the loss and the bookkeeping stay eager.
    compile: bool = False
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs

    def replace(self, **changes: Any) -> "FitConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise DipInputError(f"unknown fit setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FitConfig":
        return cls(**data)

    def validate(self) -> None:
        if self.iterations < 1:
            raise DipInputError(f"iterations must be >= 1, got {self.iterations}")
        if self.lr <= 0:
            raise DipInputError(f"learning rate must be > 0, got {self.lr}")
        if self.log_every < 1:
            raise DipInputError(f"log_every must be >= 1, got {self.log_every}")
        if self.exp_weight is not None and not 0.0 <= self.exp_weight < 1.0:
            raise DipInputError(f"exp_weight must be in [0, 1) or None, got {self.exp_weight}")
        if self.precision not in PRECISIONS:
            raise DipInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.reg_noise_std < 0:
            raise DipInputError(f"reg_noise_std must be >= 0, got {self.reg_noise_std}")
        if self.compile_mode not in COMPILE_MODES:
            raise DipInputError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")


@dataclass
class FitResult:
    """What a fit produced. Images are numpy (H, W, C) in [0, 1]."""

    output: np.ndarray  # the image to keep: the EMA output when exp_weight is set, else the raw output
    output_raw: np.ndarray  # f(z) with the final weights and the clean input
    output_avg: np.ndarray | None
    history: list[dict]
    seconds: float
    iterations_done: int
    resumed_from: int  # step the fit resumed from (0 = fresh start)
    stopped_early: bool
    backtracks: int
    device: str
    peak_memory_mb: float
    config: FitConfig
    crop_box: tuple[int, int, int, int] | None = None  # set by dip.restore when the input was cropped
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {
            "iterations_done": self.iterations_done,
            "resumed_from": self.resumed_from,
            "stopped_early": self.stopped_early,
            "backtracks": self.backtracks,
            "seconds": round(self.seconds, 3),
            "device": self.device,
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "final": last,
        }


class FitInterrupted(RuntimeError):
    """Raised when a fit stopped on SIGTERM after writing its checkpoint; re-run with the same checkpoint to resume."""

    exit_code = 143

    def __init__(self, step: int, checkpoint_path: Path | None):
        self.step = step
        self.checkpoint_path = checkpoint_path
        where = f"checkpoint written to {checkpoint_path}" if checkpoint_path else "no checkpoint path was given"
        super().__init__(f"fit interrupted by SIGTERM after step {step}; {where}")


@dataclass
class FitState:
    """What hooks see. Tensors live on the fit's device; reading them (``.item()``) forces a sync, so hooks that
    run every step should keep their own statistics on the device."""

    step: int
    iterations: int
    net: torch.nn.Module
    output: torch.Tensor  # this step's output (from the perturbed input), detached
    output_avg: torch.Tensor | None
    loss: torch.Tensor  # detached, on device
    history: list[dict]
    stop: bool = False  # a hook sets this to end the fit after this step
    extra: dict = field(default_factory=dict)  # hooks may record results here (e.g. the early-stopping step)


class Hook(Protocol):
    def on_start(self, state: FitState) -> None: ...
    def on_step(self, state: FitState) -> None: ...
    def on_log(self, state: FitState, record: dict) -> None: ...
    def on_end(self, state: FitState) -> None: ...


class BaseHook:
    """Convenience base class with no-op methods."""

    def on_start(self, state: FitState) -> None:
        pass

    def on_step(self, state: FitState) -> None:
        pass

    def on_log(self, state: FitState, record: dict) -> None:
        pass

    def on_end(self, state: FitState) -> None:
        pass


class ProgressBar(BaseHook):
    """A tqdm bar that advances at logged steps only (no per-step sync) and shows the latest loss / PSNR."""

    def __init__(self, desc: str = "DIP fit", **tqdm_kwargs: Any):
        self.desc = desc
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None

    def on_start(self, state: FitState) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.iterations, initial=state.step, desc=self.desc, unit="it", **self.tqdm_kwargs)

    def on_log(self, state: FitState, record: dict) -> None:
        if self.bar is None:
            return
        self.bar.update(record["step"] + 1 - self.bar.n)
        shown = {"loss": f"{record['loss']:.2e}"}
        for key in ("psnr_gt", "psnr_gt_avg", "psnr_obs"):
            if record.get(key) is not None:
                shown[key] = f"{record[key]:.2f}"
        self.bar.set_postfix(shown, refresh=False)

    def on_end(self, state: FitState) -> None:
        if self.bar is not None:
            self.bar.close()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DipInputError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
    return device


def set_threads(n: int | None) -> int:
    """Use ``n`` CPU threads for this process's tensor maths (a workflow job's ``threads``); returns the number in use.

    torch otherwise takes every core of the machine, so two jobs sharing a node oversubscribe it (a 1-thread fit runs
    at about half the speed of a 2-thread one on 2 cores; two at once gain nothing). Inter-op threads are set to 1
    only if torch has not started its pool yet (it refuses afterwards; DIP's graph is a chain, so they never help).
    ``None`` or ``n < 1`` leaves torch's choice.
    """
    if n is not None and n >= 1:
        torch.set_num_threads(int(n))
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already running; harmless
    return torch.get_num_threads()


def bf16_is_fast(device: str | torch.device = "auto") -> bool:
    """Whether ``precision="bf16"`` speeds a fit up on ``device`` (a hint for choosing; results differ from fp32).

    CUDA: GPUs with bf16 (Ampere and newer). CPU: only processors with native bf16 dot products (AVX512-BF16 or AMX:
    AMD Zen 4, Intel Sapphire Rapids and newer), where bf16 + channels_last ran 1.7-2.1x faster than fp32 at
    256-512 px. Without them (e.g. Intel Ice Lake) oneDNN emulates bf16 and a step ran over 2x *slower*
    (BENCHMARKS.md).
    """
    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if dev.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(config: FitConfig, device: torch.device) -> FitConfig:
    """``config`` with ``precision="auto"`` replaced by what it means on ``device``: bf16 where fast, else fp32."""
    if config.precision != "auto":
        return config
    return config.replace(precision="bf16" if bf16_is_fast(device) else "fp32")


def _compiled(net: torch.nn.Module, config: FitConfig) -> torch.nn.Module:
    """The module the training steps call: ``net`` itself, or a compiled wrapper sharing its parameters.

    ``net`` stays the owner of the weights (state dicts, checkpoints and roll-backs keep their plain keys).
    """
    if not config.compile:
        return net
    return torch.compile(net, mode=None if config.compile_mode == "default" else config.compile_mode, dynamic=False)


def ema_update(average: torch.Tensor | None, output: torch.Tensor, weight: float) -> torch.Tensor:
    """The exponential moving average of outputs, updated in place on the device (the first output starts it)."""
    if average is None:
        return output.clone()
    return average.mul_(weight).add_(output, alpha=1 - weight)


def _psnr_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR on [0, 1] computed on the device (no sync)."""
    mse = torch.mean((a.float() - b.float()) ** 2)
    return -10.0 * torch.log10(mse.clamp_min(1e-20))


def _as_tensor(img: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = img if isinstance(img, torch.Tensor) else to_tensor(np.asarray(img, dtype=np.float32))
    if t.dim() == 3:
        t = t.unsqueeze(0)
    return t.to(device=device, dtype=torch.float32).contiguous()


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class _SigtermFlag:
    """Turns SIGTERM into a flag the loop checks between steps (only possible from the main thread)."""

    def __init__(self, enabled: bool):
        self.raised = False
        self._previous = None
        self._enabled = enabled and threading.current_thread() is threading.main_thread()

    def __enter__(self) -> "_SigtermFlag":
        if self._enabled:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        if self._enabled:
            signal.signal(signal.SIGTERM, self._previous)


def output_shape_for(operator: torch.nn.Module, observation_hw: tuple[int, int]) -> tuple[int, int]:
    """The spatial size of the image the network must produce for this operator."""
    factor = getattr(operator, "factor", 1)
    return observation_hw[0] * factor, observation_hw[1] * factor


def fit(
    observation: np.ndarray | torch.Tensor,
    operator: torch.nn.Module,
    config: FitConfig,
    *,
    ground_truth: np.ndarray | None = None,
    guide: np.ndarray | None = None,
    net: torch.nn.Module | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    hooks: Iterable[Hook] = (),
    progress: bool = False,
) -> FitResult:
    """Fit a DIP network so that ``operator(net(z))`` matches ``observation``.

    observation: (H, W, C) image (for inpainting already multiplied by the mask).
    operator: an observation model from :mod:`dip.physics` (its ``factor`` attribute, if any, sets the output size).
    ground_truth: if given, PSNR against it is logged (raw and averaged output).
    guide: the input image when ``config.input_kind == "image"`` (flash/no-flash).
    net: a ready network instead of ``build_net(config.net, ...)``.
    checkpoint_path: where to save/resume the state. An existing file is resumed from.
    """
    config.validate()
    device = resolve_device(config.device)
    config = resolve_precision(config, device)
    hooks = list(hooks)
    if progress:
        hooks.append(ProgressBar())
    started = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic

    y = _as_tensor(observation, device)
    channels = y.shape[1]
    out_hw = output_shape_for(operator, (y.shape[2], y.shape[3]))
    gt = _as_tensor(ground_truth, device) if ground_truth is not None else None
    if gt is not None and tuple(gt.shape[2:]) != out_hw:
        raise DipInputError(f"ground truth is {tuple(gt.shape[2:])} but the fit produces {out_hw}")

    # Seed before building the network so that its initial weights are part of the seeded state.
    torch.manual_seed(config.seed)
    input_gen = torch.Generator(device="cpu").manual_seed(config.seed)
    if net is None:
        net = models.build_net(config.net, config.input_depth, channels, **config.net_kwargs)
    net = net.to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    z = models.make_input(
        config.input_kind, config.input_depth, out_hw, generator=input_gen, scale=config.input_scale, image=guide
    ).to(device)
    # The perturbation noise stays in the default layout: randn on channels_last tensors is ~7x slower on CPU.
    noise = torch.empty_like(z, memory_format=torch.contiguous_format)
    noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    operator = operator.to(device)

    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    step_net = _compiled(net, config)
    # CUDA graphs reuse their output memory on the next replay: copy the output out of the graph's pool.
    cudagraphs = config.compile and config.compile_mode == "reduce-overhead" and device.type == "cuda"
    out_avg: torch.Tensor | None = None
    history: list[dict] = []
    start_step = 0
    backtracks = 0
    # The roll-back snapshot: weights + Adam state at the last good check, and the PSNR then.
    snapshot: dict | None = None
    last_good_psnr: float | None = None

    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise DipInputError(f"{ckpt} is not a checkpoint of this version of dip (format {state.get('format')})")
        if state["config"] != config.to_dict():
            raise DipInputError(
                f"checkpoint {ckpt} was written by a fit with other settings; delete it to start afresh"
            )
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        out_avg = state["out_avg"]
        history = state["history"]
        start_step = state["step"] + 1
        backtracks = state["backtracks"]
        snapshot = state["snapshot"]
        last_good_psnr = state["last_good_psnr"]
        noise_gen.set_state(state["noise_gen"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        resumed_extra = state.get("extra", {})
        resumed_hooks = state.get("hooks", [])
    else:
        resumed_extra, resumed_hooks = {}, []

    def save_checkpoint(step: int) -> None:
        if ckpt is None:
            return
        _atomic_torch_save(
            {
                "format": CHECKPOINT_FORMAT,
                "config": config.to_dict(),
                "step": step,
                "net": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "out_avg": out_avg,
                "history": history,
                "backtracks": backtracks,
                "snapshot": snapshot,
                "last_good_psnr": last_good_psnr,
                "noise_gen": noise_gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "extra": fit_state.extra,
                "hooks": [h.state_dict() if hasattr(h, "state_dict") else None for h in hooks],
            },
            ckpt,
        )

    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if config.precision == "bf16"
        else torch.autocast(device.type, enabled=False)
    )
    # Non-finite losses are accumulated on the device and inspected at the next check (no per-step sync).
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    fit_state = FitState(
        step=start_step, iterations=config.iterations, net=net, output=z, output_avg=out_avg,
        loss=torch.zeros((), device=device), history=history, extra=dict(resumed_extra),
    )
    # Hooks with state of their own (e.g. early stopping) resume with the fit.
    for hook, hook_state in zip(hooks, resumed_hooks):
        if hook_state is not None and hasattr(hook, "load_state_dict"):
            hook.load_state_dict(hook_state)
    for hook in hooks:
        hook.on_start(fit_state)

    step = start_step - 1
    stopped_early = False
    with _SigtermFlag(enabled=ckpt is not None) as sigterm:
        for step in range(start_step, config.iterations):
            if config.reg_noise_std > 0:
                noise.normal_(generator=noise_gen)
                net_in = z + noise * config.reg_noise_std
            else:
                net_in = z
            if cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()
            with autocast:
                out = step_net(net_in)
            out = out.float()
            if cudagraphs:
                out = out.clone()
            loss = physics.data_term(operator, out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            out_d = out.detach()
            loss_d = loss.detach()
            nonfinite |= ~torch.isfinite(loss_d)
            if config.exp_weight is not None:
                out_avg = ema_update(out_avg, out_d, config.exp_weight)

            is_last = step == config.iterations - 1
            if step % config.log_every == 0 or is_last:
                with torch.no_grad():
                    psnr_obs = _psnr_t(operator(out_d), y)
                    values = [loss_d, psnr_obs, nonfinite]
                    if gt is not None:
                        values.append(_psnr_t(out_d, gt))
                        if out_avg is not None:
                            values.append(_psnr_t(out_avg, gt))
                    host = torch.stack([v.float() for v in values]).cpu().tolist()  # the one sync
                record = {
                    "step": step,
                    "loss": host[0],
                    "psnr_obs": host[1],
                    "psnr_gt": host[3] if gt is not None else None,
                    "psnr_gt_avg": host[4] if gt is not None and out_avg is not None else None,
                    "seconds": time.perf_counter() - started,
                }
                # Checked at logged steps only (the notebooks check every step, at the price of a sync per step):
                # a divergence rolls back at most log_every steps further than theirs.
                diverged = bool(host[2]) or not math.isfinite(record["loss"])
                if config.backtrack_db is not None and last_good_psnr is not None:
                    diverged = diverged or record["psnr_obs"] < last_good_psnr - config.backtrack_db
                if diverged and snapshot is not None:
                    # Roll back weights AND Adam moments; the EMA keeps its (pre-divergence) content.
                    net.load_state_dict(snapshot["net"])
                    optimizer.load_state_dict(snapshot["optimizer"])
                    if snapshot["out_avg"] is not None:
                        out_avg = snapshot["out_avg"].clone()
                    backtracks += 1
                    record["backtracked"] = True
                    nonfinite.zero_()
                elif diverged:
                    raise FloatingPointError(
                        f"the fit diverged at step {step} (loss {record['loss']}) before any good state was saved; "
                        "lower the learning rate"
                    )
                else:
                    # Kept even with backtracking off: the NaN guard rolls back to it too.
                    snapshot = {
                        "net": copy.deepcopy(net.state_dict()),
                        "optimizer": copy.deepcopy(optimizer.state_dict()),
                        "out_avg": out_avg.clone() if out_avg is not None else None,
                    }
                    last_good_psnr = record["psnr_obs"]
                history.append(record)
                fit_state.step, fit_state.output, fit_state.output_avg, fit_state.loss = step, out_d, out_avg, loss_d
                for hook in hooks:
                    hook.on_log(fit_state, record)

            fit_state.step, fit_state.output, fit_state.output_avg, fit_state.loss = step, out_d, out_avg, loss_d
            for hook in hooks:
                hook.on_step(fit_state)

            if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and not is_last:
                save_checkpoint(step)
            if sigterm.raised:
                save_checkpoint(step)
                for hook in hooks:
                    hook.on_end(fit_state)
                raise FitInterrupted(step, ckpt)
            if fit_state.stop:
                stopped_early = True
                break

    with torch.no_grad(), autocast:
        final_raw = net(z).float()
    output_raw = to_numpy(final_raw)
    output_avg_np = to_numpy(out_avg) if out_avg is not None else None
    for hook in hooks:
        hook.on_end(fit_state)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return FitResult(
        output=output_avg_np if output_avg_np is not None else output_raw,
        output_raw=output_raw,
        output_avg=output_avg_np,
        history=history,
        seconds=time.perf_counter() - started,
        iterations_done=step + 1,
        resumed_from=start_step,
        stopped_early=stopped_early,
        backtracks=backtracks,
        device=str(device),
        peak_memory_mb=peak_mb,
        config=config,
    )
