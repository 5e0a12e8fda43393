"""Observation operators: the authors' Lanczos downsampler (kernel and convolution), masks, the data term."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dip import physics
from dip.errors import DipInputError


def _authors_kernel(factor: int, support: int, phase: float) -> np.ndarray:
    """A loop-by-loop transcription of models/downsampler.py: get_kernel(..., 'lanczos', ...) (independent of ours)."""
    kernel_width = 2 * support * factor + 1
    size = kernel_width - 1 if phase == 0.5 else kernel_width
    kernel = np.zeros([size, size])
    center = (kernel_width + 1) / 2.0
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            di = abs(i + 0.5 - center) / factor if phase == 0.5 else abs(i - center) / factor
            dj = abs(j + 0.5 - center) / factor if phase == 0.5 else abs(j - center) / factor
            val = 1.0
            if di != 0:
                val = val * support * math.sin(math.pi * di) * math.sin(math.pi * di / support) / (math.pi**2 * di**2)
            if dj != 0:
                val = val * support * math.sin(math.pi * dj) * math.sin(math.pi * dj / support) / (math.pi**2 * dj**2)
            kernel[i - 1][j - 1] = val
    return kernel / kernel.sum()


@pytest.mark.parametrize("factor,support,phase,size", [(4, 2, 0.5, 16), (8, 2, 0.5, 32), (4, 3, 0.5, 24), (2, 2, 0, 9)])
def test_lanczos_kernel_matches_the_authors_formula(factor, support, phase, size):
    k = physics.lanczos_kernel(factor, support, phase)
    assert k.shape == (size, size)
    np.testing.assert_allclose(k, _authors_kernel(factor, support, phase), rtol=1e-12, atol=1e-15)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(k, k.T)  # separable and the same along both axes
    np.testing.assert_allclose(k, k[::-1, ::-1])  # symmetric about the centre


def test_the_networks_lanczos_layer_has_the_operators_weights():
    """One Lanczos formula: the networks' downsampling layer normalises the operator's 1-D weights (x2)."""
    from dip.nets import LanczosDownsample

    for kind, support in physics.KERNEL_SUPPORT.items():
        w = physics.lanczos_weights(2, support)
        taps = w / w.sum()
        np.testing.assert_array_equal(LanczosDownsample(3, kind).taps.numpy(), taps.astype(np.float32))
        np.testing.assert_allclose(physics.lanczos_kernel(2, support), np.outer(taps, taps), rtol=1e-12, atol=1e-15)


def test_lanczos2_x4_weights_by_hand():
    # x4, phase 0.5: taps at d = (|i + 0.5 - 9|) / 4 for i = 1..16, i.e. 1.875, 1.625, ..., 0.125, 0.125, ..., 1.875.
    def lanczos2(d):
        return 2 * math.sin(math.pi * d) * math.sin(math.pi * d / 2) / (math.pi * d) ** 2

    w = np.array([lanczos2(abs(i + 0.5 - 9) / 4) for i in range(1, 17)])
    k = physics.lanczos_kernel(4)
    assert k[7, 7] == pytest.approx(lanczos2(0.125) ** 2 / w.sum() ** 2, rel=1e-12)
    assert k[0, 7] == pytest.approx(lanczos2(1.875) * lanczos2(0.125) / w.sum() ** 2, rel=1e-12)
    assert k[7, 7] == k.max()
    # Lanczos2 has negative lobes for 1 < d < 2: the outer taps (d = 1.125 .. 1.875) are negative.
    assert (k[7, :4] < 0).all() and (k[7, 4:12] > 0).all()


def _authors_downsampler(factor: int, channels: int) -> nn.Module:
    """models/downsampler.py Downsampler(n_planes, factor, 'lanczos2', phase=0.5, preserve_size=True), rebuilt."""
    k = _authors_kernel(factor, 2, 0.5)
    conv = nn.Conv2d(channels, channels, kernel_size=k.shape, stride=factor, padding=0)
    conv.weight.data[:] = 0
    conv.bias.data[:] = 0
    for i in range(channels):
        conv.weight.data[i, i] = torch.from_numpy(k)
    return nn.Sequential(nn.ReplicationPad2d(int((k.shape[0] - factor) / 2.0)), conv)


@pytest.mark.parametrize("factor", [4, 8])
def test_downsampler_equals_the_authors_module(factor, photo64):
    x = torch.from_numpy(photo64.transpose(2, 0, 1).copy())[None]
    ours = physics.LanczosDownsampler(factor, 3)(x)
    with torch.no_grad():
        theirs = _authors_downsampler(factor, 3)(x)
    assert ours.shape == theirs.shape == (1, 3, 64 // factor, 64 // factor)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factor,h,w", [(4, 64, 96), (8, 64, 32), (2, 10, 6), (3, 30, 33)])
def test_output_is_exactly_h_over_f(factor, h, w):
    op = physics.LanczosDownsampler(factor, channels=2)
    assert op(torch.rand(1, 2, h, w)).shape == (1, 2, h // factor, w // factor)


def test_constant_image_stays_constant():
    op = physics.LanczosDownsampler(4, channels=3)
    x = torch.full((1, 3, 32, 64), 0.37)
    torch.testing.assert_close(op(x), torch.full((1, 3, 8, 16), 0.37), rtol=0, atol=1e-6)


def test_downsampler_refuses_sizes_the_factor_does_not_divide():
    op = physics.LanczosDownsampler(4, channels=3)
    with pytest.raises(DipInputError, match=r"multiples of 4.*66x64"):
        op(torch.rand(1, 3, 64, 66))
    with pytest.raises(DipInputError, match="channel"):
        op(torch.rand(1, 1, 64, 64))
    with pytest.raises(DipInputError, match="kernel"):
        physics.LanczosDownsampler(4, 3, kernel="bicubic")


def test_operators_have_no_trainable_parameters_and_move_with_to():
    for op in (physics.Identity(), physics.LanczosDownsampler(4, 3), physics.Mask(np.ones((8, 8, 1), np.float32))):
        assert list(op.parameters()) == []
        op.to(torch.float64)  # buffers follow .to(), as fit() moves the operator to its device
    assert physics.LanczosDownsampler(4, 3).factor == 4 and physics.Identity().factor == 1


def test_mask_broadcasts_a_single_channel_mask(photo64):
    m = np.zeros((64, 64, 1), np.float32)
    m[:, :32] = 1
    x = torch.from_numpy(photo64.transpose(2, 0, 1).copy())[None]
    out = physics.Mask(m)(x)
    torch.testing.assert_close(out[..., :32], x[..., :32])
    assert not out[..., 32:].any()


def test_mask_per_channel_and_tensor_input():
    m = torch.ones(4, 4, 3)
    m[..., 1] = 0
    out = physics.Mask(m)(torch.ones(1, 3, 4, 4))
    assert out[0, 1].sum() == 0 and out[0, 0].sum() == 16


def test_mask_validation():
    with pytest.raises(DipInputError, match="empty"):
        physics.Mask(np.zeros((4, 4, 1)))
    op = physics.Mask(np.ones((4, 4, 1)))
    with pytest.raises(DipInputError, match="5x4"):
        op(torch.ones(1, 3, 4, 5))


def test_data_term_is_the_mean_squared_error_and_differentiable():
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    y = torch.rand(1, 3, 4, 4)
    op = physics.LanczosDownsampler(4, 3)
    loss = physics.data_term(op, x, y)
    assert loss.item() == pytest.approx(torch.mean((op(x) - y) ** 2).item(), rel=1e-6)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(DipInputError, match="shape"):
        physics.data_term(op, x, torch.rand(1, 3, 8, 8))


def test_build_operator():
    assert isinstance(physics.build_operator("denoise", channels=3), physics.Identity)
    assert isinstance(physics.build_operator("jpeg", channels=3), physics.Identity)
    assert isinstance(physics.build_operator("flash", channels=3), physics.Identity)
    sr = physics.build_operator("sr", channels=1, factor=8)
    assert isinstance(sr, physics.LanczosDownsampler) and sr.factor == 8 and sr.kernel_size == 32
    inp = physics.build_operator("inpaint", channels=3, mask=np.ones((8, 8, 1)))
    assert isinstance(inp, physics.Mask)
    assert isinstance(physics.build_operator("denoise", channels=3, factor=1), physics.Identity)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(task="sr", channels=3), "factor"),
        (dict(task="sr", channels=3, factor=0), "factor"),
        (dict(task="inpaint", channels=3), "mask"),
        (dict(task="inpaint", channels=3, mask=np.ones((4, 4, 2))), "channels"),
        (dict(task="denoise", channels=3, factor=4), "only applies"),
        (dict(task="sr", channels=3, factor=4, mask=np.ones((4, 4, 1))), "only applies"),
        (dict(task="deblur", channels=3), "unknown task"),
    ],
)
def test_build_operator_refuses_bad_combinations(kwargs, message):
    with pytest.raises(DipInputError, match=message):
        physics.build_operator(kwargs.pop("task"), **kwargs)
