"""Memory saving (dip.nets.memory): activation checkpointing changes no number of a fit, and the memory estimates
match what a step really keeps."""

from __future__ import annotations

import copy
import ctypes
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from dip import physics
from dip.errors import DipInputError
from dip.fit import fit
from dip.nets import memory
from dip.nets import networks as models
from tests.helpers import tiny_fit_config

NARROW_SKIP = dict(channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3)

# (network, settings, input depth, size): every family, and the skip net's variants that change its structure
# (no 1x1 up-convolutions, no skips, pooled / Lanczos downsampling, zero padding, 5x5 kernels, other activations).
FAMILIES = {
    "skip": ("skip", NARROW_SKIP, 8, 64),
    "skip-library-variants": (
        "skip",
        dict(NARROW_SKIP, need1x1_up=False, upsample="nearest", downsample="lanczos2", kernel_down=5, act="ELU"),
        8,
        96,
    ),
    "skip-zero-pad-maxpool": ("skip", dict(NARROW_SKIP, pad="zero", downsample="max", act="Swish"), 8, 64),
    "encoder_decoder": ("encoder_decoder", dict(depth=3, channels=16), 8, 64),
    "skip_depth2": ("skip_depth2", {}, 4, 64),
    "unet": ("unet", dict(feature_scale=8), 8, 64),
    "unet-batchnorm-concat": (
        "unet",
        dict(feature_scale=4, norm="batch", upsample="bilinear", pad="reflection", concat_x=True, more_layers=1),
        2,
        64,
    ),
    "resnet": ("resnet", dict(num_blocks=3, num_channels=16), 8, 32),
}


def _build(family: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    name, kwargs, depth, size = FAMILIES[family]
    torch.manual_seed(seed)
    net = models.build_net(name, depth, 3, **kwargs)
    z = torch.rand(1, depth, size, size, generator=torch.Generator().manual_seed(seed)) * 0.1
    return net, z


def _step(net: nn.Module, z: torch.Tensor, precision: str = "fp32"):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = net(z)
    out.float().square().mean().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    return out.detach(), grads, {k: v.clone() for k, v in net.state_dict().items()}


def _assert_same_step(a, b) -> None:
    out_a, grads_a, state_a = a
    out_b, grads_b, state_b = b
    assert torch.equal(out_a, out_b)
    assert len(grads_a) == len(grads_b) and all(torch.equal(x, y) for x, y in zip(grads_a, grads_b))
    assert list(state_a) == list(state_b)  # the same keys in the same order
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)  # incl. batch-norm running statistics


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("channels_last", [True, False])
def test_checkpointing_gives_bit_identical_outputs_gradients_and_running_stats_fp32(family, channels_last):
    # Bit-identical, not merely close: the recomputation runs the same kernels on the same inputs, and recomputed
    # batch norms update scratch copies of their running statistics (which would otherwise move twice per step).
    net, z = _build(family)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    plain = copy.deepcopy(net)
    assert memory.enable_checkpointing(net) is net and memory.is_checkpointed(net)
    for _ in range(2):  # two steps: running statistics after two updates, gradients accumulated
        _assert_same_step(_step(plain, z), _step(net, z))


@pytest.mark.parametrize("family", ["skip", "skip-library-variants", "unet-batchnorm-concat", "resnet"])
def test_checkpointing_is_bit_identical_under_bf16_autocast_too(family):
    net, z = _build(family)
    net = net.to(memory_format=torch.channels_last)
    plain = copy.deepcopy(net)
    memory.enable_checkpointing(net)
    _assert_same_step(_step(plain, z, "bf16"), _step(net, z, "bf16"))


def test_a_fit_with_a_checkpointed_network_is_the_same_fit(photo64):
    # A few Adam steps through dip.fit.fit (EMA, logging, roll-back snapshots): the same history, bit for bit.
    config = tiny_fit_config(iterations=6, log_every=2)
    torch.manual_seed(config.seed)
    net = models.build_net(config.net, config.input_depth, 3, **config.net_kwargs)
    plain = fit(photo64, physics.Identity(), config, net=copy.deepcopy(net), ground_truth=photo64)
    saved = fit(photo64, physics.Identity(), config, net=memory.enable_checkpointing(net), ground_truth=photo64)
    assert [r["psnr_gt"] for r in saved.history] == [r["psnr_gt"] for r in plain.history]
    assert [r["loss"] for r in saved.history] == [r["loss"] for r in plain.history]
    np.testing.assert_array_equal(saved.output, plain.output)


def test_enable_is_idempotent_disable_restores_and_state_dicts_load_either_way():
    net, z = _build("skip")
    plain = copy.deepcopy(net)
    classes = [type(m) for m in net.modules()]
    memory.enable_checkpointing(net)
    once = [type(m) for m in net.modules()]
    memory.enable_checkpointing(net)
    assert [type(m) for m in net.modules()] == once != classes
    assert all(isinstance(m, c) for m, c in zip(net.modules(), classes))  # subclasses of the plain classes
    assert list(net.state_dict()) == list(plain.state_dict())
    # A checkpoint written by either loads into the other (checkpoint/resume files stay valid).
    net.load_state_dict(plain.state_dict())
    plain.load_state_dict(net.state_dict())
    # Copies and pickles keep the mode; disabling restores the plain classes.
    assert memory.is_checkpointed(copy.deepcopy(net))
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    assert memory.is_checkpointed(torch.load(buffer, weights_only=False))
    assert memory.is_checkpointed(pickle.loads(pickle.dumps(net)))
    assert memory.set_checkpointing(net, "plain") is net and not memory.is_checkpointed(net)
    assert [type(m) for m in net.modules()] == classes
    memory.disable_checkpointing(net)  # a no-op on a plain network
    assert memory.is_checkpointed(memory.set_checkpointing(net, "checkpoint"))
    with pytest.raises(DipInputError, match="memory mode"):
        memory.set_checkpointing(net, "sometimes")


def test_only_dip_networks_can_be_checkpointed():
    with pytest.raises(DipInputError, match="supports the DIP networks"):
        memory.enable_checkpointing(nn.Sequential(nn.Conv2d(3, 3, 3)))


def test_without_autograd_the_network_runs_plainly():
    net, z = _build("skip")
    plain = copy.deepcopy(net)
    memory.enable_checkpointing(net)
    with torch.no_grad():
        assert torch.equal(net(z), plain(z))


def test_checkpointing_keeps_a_fraction_for_backward():
    net, z = _build("skip")
    net = net.to(memory_format=torch.channels_last)
    plain = memory.measure_kept_for_backward(net, z)
    saved = memory.measure_kept_for_backward(memory.enable_checkpointing(net), z)
    assert saved < 0.3 * plain, (saved, plain)


@pytest.mark.parametrize("family", ["skip", "unet", "resnet"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_estimate_of_what_is_kept_for_backward_matches_the_measurement(family, precision):
    # The dry run (fake tensors, no data) against a real forward pass at 32-64 px: within 25% (in practice within a
    # few percent). The measurement also counts the network input z, which the dry run does not (the fit's own).
    net, z = _build(family)
    net = net.to(memory_format=torch.channels_last)
    estimate = memory.fit_memory(net, z.shape[2], z.shape[3], precision=precision)
    measured_plain = memory.measure_kept_for_backward(net, z, precision) - z.nbytes
    measured_saved = memory.measure_kept_for_backward(memory.enable_checkpointing(copy.deepcopy(net)), z, precision) - z.nbytes
    assert estimate.kept_plain == pytest.approx(measured_plain, rel=0.25)
    assert estimate.kept_checkpoint == pytest.approx(measured_saved, rel=0.25)
    assert estimate.kept_checkpoint < estimate.kept_plain


@pytest.mark.parametrize(
    "name, kwargs, depth",
    [("unet", dict(feature_scale=4), 32), ("resnet", {}, 32), ("encoder_decoder", {}, 32), ("skip_depth6", {}, 1)],
)
def test_every_family_needs_less_at_512_px(name, kwargs, depth):
    # (At 32-64 px a U-Net's weights outweigh its activations and checkpointing gains nothing.)
    with torch.device("meta"):
        net = models.build_net(name, depth, 3, **kwargs)
    estimate = memory.fit_memory(net, 512, 512)
    assert estimate.kept_checkpoint < 0.3 * estimate.kept_plain
    assert estimate.activations_checkpoint < 0.6 * estimate.activations_plain


def _glibc_in_use():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip

    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = Mallinfo2
    return lambda: libc.mallinfo2().hblkhd + libc.mallinfo2().uordblks


@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_estimated_peak_of_a_step_matches_the_allocated_peak(checkpointing):
    # The allocator's bytes in use (glibc), sampled after every operation of a forward + backward at 128 px of the
    # default 128-channel net, against the dry run's peak: within 25%.
    in_use = _glibc_in_use()
    if in_use is None:
        pytest.skip("needs glibc's mallinfo2")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Peak(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.peak = max(getattr(self, "peak", 0), in_use())
            return out

    torch.manual_seed(0)
    net = models.build_net("skip", 32, 3).to(memory_format=torch.channels_last)
    memory.set_checkpointing(net, checkpointing)
    z = torch.rand(1, 32, 128, 128)
    net(z).square().mean().backward()  # warm up (first-use buffers), then measure a step as the fit runs it
    net.zero_grad(set_to_none=True)
    base = in_use()
    with Peak() as peak:
        net(z).square().mean().backward()
    estimate = memory.fit_memory(net, 128, 128)
    predicted = estimate.activations_checkpoint if checkpointing else estimate.activations_plain
    assert peak.peak - base == pytest.approx(predicted, rel=0.25)


def test_a_checkpointed_fit_needs_much_less_at_1024_px():
    # The paper's default network (the case): the dry run costs no real memory.
    estimate = memory.fit_memory(tiny_fit_config().replace(net_kwargs={}, input_depth=32), 1024, 1024)
    assert estimate.kept_checkpoint < 0.25 * estimate.kept_plain
    assert estimate.activations_checkpoint < 0.5 * estimate.activations_plain
    assert 5 * 2**30 < estimate.plain < 9 * 2**30 and estimate.checkpoint < 4 * 2**30  # measured 6.4 / 3.5 GiB


def _estimate(plain_gb: float, checkpoint_gb: float) -> memory.FitMemory:
    return memory.FitMemory(
        height=2048, width=3072, precision="fp32", device="cpu", net="skip", plain=int(plain_gb * 2**30),
        checkpoint=int(checkpoint_gb * 2**30), kept_plain=0, kept_checkpoint=0, activations_plain=0,
        activations_checkpoint=0,
    )  # fmt: skip


def test_the_chooser_prefers_plain_then_checkpointing_then_says_what_to_do():
    gb = 2**30
    assert memory.choose_memory_mode(_estimate(3, 1), 4 * gb) == "plain"
    assert memory.choose_memory_mode(_estimate(3, 1), 4 * gb, memory_saving="on") == "checkpoint"
    assert memory.choose_memory_mode(_estimate(6, 2), 4 * gb) == "checkpoint"
    assert memory.choose_memory_mode(_estimate(6, 2), 4 * gb, "cpu", memory_saving="auto") == "checkpoint"
    # Off, and plain does not fit: the message names the size, the estimates and the flag that makes it fit.
    with pytest.raises(DipInputError) as err:
        memory.choose_memory_mode(_estimate(6, 2), 4 * gb, memory_saving="off")
    message = str(err.value)
    assert "3072x2048" in message and "6.0 GB" in message and "2.0 GB" in message and "4.0 GB" in message
    assert "--memory-saving on" in message
    # Nothing fits: what to do instead, never an out-of-memory crash mid-fit.
    for saving in ("auto", "on", "off"):
        with pytest.raises(DipInputError, match=r"3072x2048.*20\.0 GB.*8\.0 GB with --memory-saving on.*bf16"):
            memory.choose_memory_mode(_estimate(20, 8), 4 * gb, memory_saving=saving)
    with pytest.raises(DipInputError, match="memory saving"):
        memory.choose_memory_mode(_estimate(3, 1), 4 * gb, memory_saving="maybe")
    with pytest.raises(DipInputError, match="positive"):
        memory.choose_memory_mode(_estimate(3, 1), 0)


def test_the_cpu_budget_is_a_share_of_the_available_memory(monkeypatch):
    assert memory.memory_budget("cpu", 123) == 123
    budget = memory.memory_budget("cpu")
    assert 0 < budget <= memory._available_ram()
    monkeypatch.setattr(memory, "_available_ram", lambda: 10 * 2**30)
    assert memory.memory_budget("cpu") == int(10 * 2**30 * memory.CPU_BUDGET_FRACTION)
    assert memory.choose_memory_mode(_estimate(9, 2)) == "checkpoint"  # 8 GB budget


def test_mem_mb_for_a_workflow_job():
    config = tiny_fit_config()
    small = memory.mem_mb_for(config, 64, 64)
    assert isinstance(small, int) and small > memory._PROCESS_BASE / 2**20
    big_plain = memory.mem_mb_for(config, 512, 512)
    big_saved = memory.mem_mb_for(config, 512, 512, memory_saving="on")
    assert small < big_saved < big_plain
    # On a GPU the host holds the process with CUDA's libraries and the images, whatever the network.
    assert memory.mem_mb_for(config, 512, 512, device="cuda") == pytest.approx(3 * 1024, rel=0.1)
    with pytest.raises(DipInputError, match="memory saving"):
        memory.mem_mb_for(config, 64, 64, memory_saving="yes")


def test_estimates_refuse_unresolved_precision_and_empty_sizes():
    with pytest.raises(DipInputError, match="auto"):
        memory.fit_memory(tiny_fit_config(), 64, 64, precision="auto")
    with pytest.raises(DipInputError, match="positive"):
        memory.estimate_fit_memory(tiny_fit_config(), 0, 64)


def test_stacked_fits_under_vmap_fall_back_to_the_plain_network_with_a_warning():
    # torch.func transforms do not support checkpointing's saved-tensor hooks: the regions run plainly (same values as
    # the plain network under vmap) and say so once.
    nets = [_build("skip", seed)[0] for seed in (0, 1)]
    z = torch.stack([_build("skip", seed)[1] for seed in (0, 1)])
    for net in nets:
        torch.func.replace_all_batch_norm_modules_(net)
    params, buffers = torch.func.stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")

    def run(module: nn.Module):
        p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        out = torch.func.vmap(lambda p_, b_, x: torch.func.functional_call(module, (p_, b_), (x,)))(p, buffers, z)
        out.square().mean().backward()
        return out.detach(), [p[k].grad for k in params]

    out_plain, grads_plain = run(base)
    memory.enable_checkpointing(base)
    memory._warned_functorch = False
    with pytest.warns(RuntimeWarning, match="torch.func"):
        out_saved, grads_saved = run(base)
    assert torch.equal(out_plain, out_saved)
    assert all(torch.equal(a, b) for a, b in zip(grads_plain, grads_saved))
