"""Activation checkpointing (dip.nets.recompute) changes no number: outputs, gradients and batch-norm statistics
are bit-identical to the plain network's for every family, state dicts are unchanged, and it keeps a fraction for
backward."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from dip import physics
from dip.errors import DipInputError
from dip.fit import fit
from dip.fit.memory import measure_kept_for_backward
from dip.nets import build_net, recompute
from dip.nets.recompute import disable_checkpointing, enable_checkpointing, is_checkpointed, set_checkpointing
from tests.helpers import NET_FAMILIES, build_family, tiny_fit_config


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


@pytest.mark.parametrize("family", list(NET_FAMILIES))
@pytest.mark.parametrize("channels_last", [True, False])
def test_checkpointing_gives_bit_identical_outputs_gradients_and_running_stats_fp32(family, channels_last):
    # Bit-identical, not merely close: the recomputation runs the same kernels on the same inputs, and recomputed
    # batch norms update scratch copies of their running statistics (which would otherwise move twice per step).
    net, z = build_family(family)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    plain = copy.deepcopy(net)
    assert enable_checkpointing(net) is net and is_checkpointed(net)
    for _ in range(2):  # two steps: running statistics after two updates, gradients accumulated
        _assert_same_step(_step(plain, z), _step(net, z))


@pytest.mark.parametrize("family", ["skip", "skip-library-variants", "unet-batchnorm-concat", "resnet"])
def test_checkpointing_is_bit_identical_under_bf16_autocast_too(family):
    net, z = build_family(family)
    net = net.to(memory_format=torch.channels_last)
    plain = copy.deepcopy(net)
    enable_checkpointing(net)
    _assert_same_step(_step(plain, z, "bf16"), _step(net, z, "bf16"))


def test_a_fit_with_a_checkpointed_network_is_the_same_fit(photo64):
    # A few Adam steps through dip.fit.fit (EMA, logging, roll-back snapshots): the same history, bit for bit.
    config = tiny_fit_config(iterations=6, log_every=2)
    torch.manual_seed(config.seed)
    net = build_net(config.net, config.input_depth, 3, **config.net_kwargs)
    plain = fit(photo64, physics.Identity(), config, net=copy.deepcopy(net), ground_truth=photo64)
    saved = fit(photo64, physics.Identity(), config, net=enable_checkpointing(net), ground_truth=photo64)
    assert [r["psnr_gt"] for r in saved.history] == [r["psnr_gt"] for r in plain.history]
    assert [r["loss"] for r in saved.history] == [r["loss"] for r in plain.history]
    np.testing.assert_array_equal(saved.output, plain.output)


def test_enable_is_idempotent_disable_restores_and_state_dicts_load_either_way():
    net, z = build_family("skip")
    plain = copy.deepcopy(net)
    classes = [type(m) for m in net.modules()]
    enable_checkpointing(net)
    once = [type(m) for m in net.modules()]
    enable_checkpointing(net)
    assert [type(m) for m in net.modules()] == once != classes
    assert all(isinstance(m, c) for m, c in zip(net.modules(), classes))  # subclasses of the plain classes
    assert list(net.state_dict()) == list(plain.state_dict())
    # A checkpoint written by either loads into the other (checkpoint/resume files stay valid).
    net.load_state_dict(plain.state_dict())
    plain.load_state_dict(net.state_dict())
    # Copies and pickles keep the mode; disabling restores the plain classes.
    assert is_checkpointed(copy.deepcopy(net))
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    assert is_checkpointed(torch.load(buffer, weights_only=False))
    assert is_checkpointed(pickle.loads(pickle.dumps(net)))
    assert set_checkpointing(net, "plain") is net and not is_checkpointed(net)
    assert [type(m) for m in net.modules()] == classes
    disable_checkpointing(net)  # a no-op on a plain network
    assert is_checkpointed(set_checkpointing(net, "checkpoint"))
    with pytest.raises(DipInputError, match="memory mode"):
        set_checkpointing(net, "sometimes")


def test_only_dip_networks_can_be_checkpointed():
    with pytest.raises(DipInputError, match="supports the DIP networks"):
        enable_checkpointing(nn.Sequential(nn.Conv2d(3, 3, 3)))


def test_without_autograd_the_network_runs_plainly():
    net, z = build_family("skip")
    plain = copy.deepcopy(net)
    enable_checkpointing(net)
    with torch.no_grad():
        assert torch.equal(net(z), plain(z))


def test_checkpointing_keeps_a_fraction_for_backward():
    net, z = build_family("skip")
    net = net.to(memory_format=torch.channels_last)
    plain = measure_kept_for_backward(net, z)
    saved = measure_kept_for_backward(enable_checkpointing(net), z)
    assert saved < 0.3 * plain, (saved, plain)


def test_stacked_fits_under_vmap_fall_back_to_the_plain_network_with_a_warning():
    # torch.func transforms do not support checkpointing's saved-tensor hooks: the regions run plainly (same values as
    # the plain network under vmap) and say so once.
    nets = [build_family("skip", seed)[0] for seed in (0, 1)]
    z = torch.stack([build_family("skip", seed)[1] for seed in (0, 1)])
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
    enable_checkpointing(base)
    recompute._warned_functorch = False
    with pytest.warns(RuntimeWarning, match="torch.func"):
        out_saved, grads_saved = run(base)
    assert torch.equal(out_plain, out_saved)
    assert all(torch.equal(a, b) for a, b in zip(grads_plain, grads_saved))
