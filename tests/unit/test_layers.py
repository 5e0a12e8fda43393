"""The building blocks of the networks (dip.nets.layers): the Lanczos downsampler, the centre-cropping concatenation,
and the two layers that keep less for backward with the same values (in-place activations, ReflectConv2d)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dip import nets
from dip.nets.layers import concat_centre_cropped


def test_concat_centre_crop_takes_the_middle():
    small = torch.zeros(1, 1, 2, 2)
    big = torch.arange(16.0).view(1, 1, 4, 4)
    out = concat_centre_cropped([small, big])
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 1].tolist() == [[5.0, 6.0], [9.0, 10.0]]


def _lanczos_taps_by_loop(support: int, factor: int) -> list[float]:
    """The authors' half-phase taps, written out term by term (independent of the vectorised code)."""
    width = 2 * support * factor + 1
    centre = (width + 1) / 2
    taps = []
    for i in range(1, width):
        d = abs(i + 0.5 - centre) / factor
        taps.append(support * math.sin(math.pi * d) * math.sin(math.pi * d / support) / (math.pi * d) ** 2)
    return [t / sum(taps) for t in taps]


@pytest.mark.parametrize("kind,support,n_taps", [("lanczos2", 2, 8), ("lanczos3", 3, 12)])
def test_lanczos_downsample_is_the_authors_2d_kernel(kind, support, n_taps):
    down = nets.LanczosDownsample(3, kind)
    taps = _lanczos_taps_by_loop(support, 2)
    assert len(down.taps) == n_taps
    np.testing.assert_allclose(down.taps.numpy(), taps, rtol=1e-6)
    # Separable application == the authors' 2-D outer-product kernel after replication padding (ks - 2) / 2.
    x = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    kernel2d = torch.tensor(np.outer(taps, taps), dtype=torch.float32)
    weight = kernel2d.expand(3, 1, n_taps, n_taps)
    pad = (n_taps - 2) // 2
    expected = F.conv2d(F.pad(x, (pad,) * 4, mode="replicate"), weight, stride=2, groups=3)
    got = down(x)
    assert got.shape == (1, 3, 8, 10)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # Normalised to sum 1: a constant image stays constant; and nothing in it is trainable.
    torch.testing.assert_close(down(torch.full((1, 3, 8, 8), 0.7)), torch.full((1, 3, 4, 4), 0.7))
    assert list(down.parameters()) == [] and "taps" not in down.state_dict()


def test_inplace_activations_change_values_not_memory_kept_for_backward():
    # The skip net's activations run in place after each batch norm: same outputs and gradients as out-of-place ones,
    # fewer tensors kept for backward.

    torch.manual_seed(0)
    net = nets.build_net("skip", 8, 3, channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3)
    plain = copy.deepcopy(net)
    for m in plain.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    assert sum(getattr(m, "inplace", False) for m in net.modules()) > 0
    z = torch.rand(1, 8, 64, 64) * 0.1

    def run(n):
        kept = {}

        def pack(t):
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = n(z)
        out.square().mean().backward()
        return out.detach(), [p.grad for p in n.parameters()], sum(kept.values())

    out_a, grads_a, kept_a = run(net)
    out_b, grads_b, kept_b = run(plain)
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    assert kept_a < 0.9 * kept_b


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_reflect_conv_keeps_the_unpadded_input_with_the_same_values_and_gradients(precision, monkeypatch):
    # ReflectConv2d pads its input again in backward instead of keeping the padded copy: outputs and gradients equal
    # those of the plain reflection-padded convolution (nn.Conv2d's own path), in fp32 and under bf16 autocast.

    torch.manual_seed(0)
    net = nets.build_net("skip", 8, 3, channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3)
    net = net.to(memory_format=torch.channels_last)
    z = torch.rand(1, 8, 64, 64) * 0.1

    def run(n):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = n(z)
        out.float().square().mean().backward()
        return out.detach(), [p.grad for p in n.parameters()]

    reference = copy.deepcopy(net)
    out_a, grads_a = run(net)
    monkeypatch.setattr(nets.ReflectConv2d, "_conv_forward", nn.Conv2d._conv_forward)
    out_b, grads_b = run(reference)
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_reflect_conv_refuses_an_input_changed_before_backward():
    conv = nets.ReflectConv2d(2, 2, 3, padding=1)
    x = torch.rand(1, 2, 8, 8)
    y = conv(x)
    x.add_(1.0)  # what autograd's version check catches for tensors it keeps itself
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()
