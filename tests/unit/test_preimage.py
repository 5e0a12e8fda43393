"""Natural pre-image: the AlexNet layout loads torchvision weights; DIP and TV inversions lower the feature error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dip.errors import DipInputError
from dip.experiments import preimage
from tests.helpers import crop_photo

# torchvision.models.alexnet().state_dict(): keys and shapes (torchvision cannot be imported here).
TORCHVISION_ALEXNET = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}

# A 4-level version of the feature-inversion net with 3x3 kernels: fast on a 64 px CPU test.
SMALL_NET = dict(channels_down=[8, 16, 16, 16], channels_up=[8, 16, 16, 16], channels_skip=[4] * 4,
                 kernel_down=3, kernel_up=3, upsample="nearest", downsample="avg", pad="zero")


@pytest.fixture(scope="module")
def alexnet():
    torch.manual_seed(0)
    return preimage.AlexNet()


def test_alexnet_has_torchvisions_state_dict_layout(alexnet):
    state = alexnet.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == TORCHVISION_ALEXNET


def test_alexnet_weights_file_round_trip_and_layers(alexnet, tmp_path):
    path = tmp_path / "alexnet.pth"
    torch.save(alexnet.state_dict(), path)
    loaded = preimage.load_alexnet(path)
    x = torch.rand(1, 3, 64, 64)
    for layer, shape in (("conv5", (1, 256, 3, 3)), ("pool5", (1, 256, 1, 1)), ("fc6", (1, 4096)), ("fc8", (1, 1000))):
        a, b = alexnet.eval()(x, layer), loaded.eval()(x, layer)
        assert a.shape == shape
        torch.testing.assert_close(a, b)
    with pytest.raises(DipInputError, match="unknown layer"):
        loaded(x, "conv9")


def test_missing_or_wrong_weights_explain_how_to_get_them(tmp_path):
    with pytest.raises(DipInputError, match="download.pytorch.org"):
        preimage.load_alexnet(tmp_path / "nope.pth")
    with pytest.raises(DipInputError, match="no AlexNet weights file"):
        preimage.load_alexnet(None)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(DipInputError, match="not a torchvision AlexNet"):
        preimage.load_alexnet(bad)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(DipInputError, match="cannot read"):
        preimage.load_alexnet(garbage)


def test_dip_and_tv_inversions_of_a_small_cnn_lower_the_feature_error():
    target = crop_photo("astronaut", 64, top=60, left=180)
    net = preimage.small_cnn(seed=0)
    config = preimage.PreimageConfig(layer="conv2", iterations=25, log_every=12, lr=0.01, net_kwargs=SMALL_NET,
                                     device="cpu", tv_weight=1e-4)
    dip_result = preimage.invert_dip(net, target, config)
    tv_result = preimage.invert_tv(net, target, config)
    for result in (dip_result, tv_result):
        assert result.output.shape == target.shape
        assert 0.0 <= result.output.min() and result.output.max() <= 1.0
        errors = [h["feature_error"] for h in result.history]
        assert [h["step"] for h in result.history] == [0, 12, 24]
        assert set(result.history[0]) == {"step", "feature_error", "psnr_target", "seconds"}
        assert errors[-1] < errors[0] / 2, (result.method, errors)
    # Seeded: the same run twice gives the same image.
    again = preimage.invert_dip(net, target, config)
    np.testing.assert_array_equal(again.output, dip_result.output)
    with pytest.raises(DipInputError, match="unknown layer"):
        preimage.invert_tv(net, target, config.replace(layer="fc9"))
    with pytest.raises(DipInputError, match="multiples"):
        preimage.invert_dip(net, target[:60, :60], config)


def test_inverting_a_random_alexnet_at_tiny_size(alexnet):
    target = crop_photo("chelsea", 64, top=80, left=150)
    config = preimage.PreimageConfig(layer="fc6", iterations=3, log_every=1, lr=0.01, net_kwargs=SMALL_NET,
                                     device="cpu")
    result = preimage.invert_dip(alexnet, target, config)
    assert result.output.shape == (64, 64, 3) and len(result.history) == 3
    assert np.isfinite(result.history[-1]["feature_error"])


def test_prepare_target_makes_a_square_of_the_asked_size():
    img = crop_photo("astronaut", 100)[:, :80]
    out = preimage.prepare_target(img, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    with pytest.raises(DipInputError):
        preimage.prepare_target(img[..., :1], 64)
