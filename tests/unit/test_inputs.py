"""The network input ``z`` (dip.nets.inputs): uniform noise U(0, 0.1) (the paper's), a meshgrid, an image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dip import nets
from dip.errors import DipInputError


def test_noise_input_is_uniform_0_to_0_1():
    z = nets.make_input("noise", 32, (64, 48), generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, 32, 64, 48) and z.dtype == torch.float32 and z.is_contiguous()
    assert float(z.min()) >= 0.0 and float(z.max()) <= 0.1
    # Uniform on [0, 0.1]: mean 0.05, std 0.1 / sqrt(12) = 0.0289; close to both ends (a Gaussian would go below 0).
    assert float(z.mean()) == pytest.approx(0.05, abs=1e-3)
    assert float(z.std()) == pytest.approx(0.1 / math.sqrt(12), rel=0.02)
    assert float(z.min()) < 1e-4 and float(z.max()) > 0.1 - 1e-4
    counts = torch.histc(z, bins=10, min=0.0, max=0.1)
    assert float(counts.min()) / float(counts.max()) > 0.9  # flat histogram


def test_noise_input_is_reproducible_with_a_seeded_generator():
    def draw(seed):
        return nets.make_input("noise", 4, (8, 8), generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(draw(3), draw(3), rtol=0, atol=0)
    assert not torch.equal(draw(3), draw(4))
    z = nets.make_input("noise", 2, (8, 8), generator=torch.Generator().manual_seed(0), scale=1.0)
    assert float(z.max()) > 0.5  # scale sets the upper end


def test_meshgrid_input():
    z = nets.make_input("meshgrid", 2, (5, 9))
    assert z.shape == (1, 2, 5, 9) and z.dtype == torch.float32 and z.is_contiguous()
    x, y = z[0, 0], z[0, 1]
    # Channel 0 is x (along the width), channel 1 is y (along the height), both from 0 to 1.
    assert float(x[0, 0]) == 0.0 and float(x[0, -1]) == 1.0 and float(x[-1, -1]) == 1.0
    assert float(y[0, 0]) == 0.0 and float(y[-1, 0]) == 1.0 and float(y[0, -1]) == 0.0
    torch.testing.assert_close(x[2], torch.arange(9, dtype=torch.float32) / 8)
    torch.testing.assert_close(y[:, 4], torch.arange(5, dtype=torch.float32) / 4)
    assert torch.equal(x, x[:1].expand(5, 9)) and torch.equal(y, y[:, :1].expand(5, 9))


def test_image_input():
    img = np.random.default_rng(0).random((6, 10, 3), dtype=np.float32)
    z = nets.make_input("image", 3, (6, 10), image=img)
    assert z.shape == (1, 3, 6, 10) and z.dtype == torch.float32 and z.is_contiguous()
    np.testing.assert_array_equal(z[0].permute(1, 2, 0).numpy(), img)
    z64 = nets.make_input("image", 3, (6, 10), image=img.astype(np.float64))
    assert z64.dtype == torch.float32


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        (("gaussian", 32, (8, 8)), {}, "input kind"),
        (("meshgrid", 3, (8, 8)), {}, "2 channels"),
        (("noise", 0, (8, 8)), {}, "depth"),
        (("noise", 4, (8,)), {}, "size"),
        (("noise", 4, (8, 0)), {}, "size"),
        (("noise", 4, (8, 8)), {"scale": -0.1}, "scale"),
        (("image", 3, (8, 8)), {}, "needs the image"),
        (("image", 1, (8, 8)), {"image": np.zeros((8, 8, 3), np.float32)}, "3 channels"),
        (("image", 3, (8, 8)), {"image": np.zeros((8, 9, 3), np.float32)}, "8x9"),
        (("image", 3, (8, 8)), {"image": np.zeros((8, 8), np.float32)}, r"\(H, W, C\)"),
    ],
)
def test_bad_inputs_raise(args, kwargs, match):
    with pytest.raises(DipInputError, match=match):
        nets.make_input(*args, **kwargs)
