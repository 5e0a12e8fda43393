"""Natural pre-image (Fig. 9): invert a network's activations with the deep image prior, or with TV regularisation.

Given a target image ``x0`` and a feature network ``phi`` cut at a layer (e.g. AlexNet's ``fc6``), find an image
``x`` with ``phi(x) ~ phi(x0)``. Many images share the features; the prior picks one:

* **DIP** -- ``x = f_theta(z)``, optimise ``theta`` (the authors' ``feature_inversion.ipynb``: a 6-level skip net
  with 7/7/5/5/3/3 kernels, average-pooling downsampling, nearest upsampling, zero padding, Adam LR 0.001, 3100
  steps, no input perturbation);
* **TV** -- optimise the pixels of ``x`` directly, loss plus ``tv_weight * TV(x)`` (Mahendran & Vedaldi's
  regulariser, the paper's comparison [21]).

Both minimise the feature error normalised by the target's energy, ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2``.

The feature network is :class:`AlexNet`: torchvision's layer layout in plain torch (torchvision is not a
dependency), so a torchvision ``alexnet`` state dict (``features.N.weight`` / ``classifier.N.weight``) loads with
:func:`load_alexnet`. Nothing is downloaded: the user supplies the weights file (:data:`ALEXNET_HOWTO`). Tests and
quick runs use :func:`small_cnn`, a random network with the same named-layer interface.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dip.data.imageio import to_numpy, to_tensor
from dip.errors import DipInputError
from dip.eval import metrics
from dip.fit import FitConfig, resolve_device
from dip.fit.engine import FitDriver
from dip.fit.lone import LoneStepper
from dip.fit.pixels import optimise_pixels
from dip import nets

__all__ = [
    "ALEXNET_HOWTO",
    "ALEXNET_LAYERS",
    "FeatureNet",
    "AlexNet",
    "small_cnn",
    "load_alexnet",
    "FEATURE_INVERSION_NET",
    "PreimageConfig",
    "PreimageResult",
    "invert_dip",
    "invert_tv",
    "FeatureTerm",
    "prepare_target",
]

ALEXNET_HOWTO = (
    "The natural pre-image experiment inverts torchvision's ImageNet AlexNet; its weights are not shipped or "
    "downloaded by this project. Get them once on a machine with internet access, either\n"
    "  * directly: https://download.pytorch.org/models/alexnet-owt-7be5be79.pth (torchvision's IMAGENET1K_V1 "
    "weights, 233 MB, BSD-3-Clause), or\n"
    "  * with torchvision installed: python -c \"import torch, torchvision; torch.save(torchvision.models."
    "alexnet(weights='IMAGENET1K_V1').state_dict(), 'alexnet.pth')\"\n"
    "then name the file in the config (preimage: {weights: path/to/alexnet.pth}) or pass it to load_alexnet()."
)

# ImageNet statistics torchvision's models expect (inputs in [0, 1] are normalised inside the feature network).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureNet(nn.Module):
    """A feed-forward network whose layers have names; ``forward(x, layer)`` returns the activation of ``layer``.

    ``features`` (convolutional part), ``avgpool`` and ``classifier`` are attributes, so state-dict keys are those of
    torchvision's classification models. ``names`` lists the layer names in order; each maps to (part, index).
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, names: dict[str, tuple[str, int]],
                 pool_size: tuple[int, int] | None, normalise: bool = True):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size) if pool_size is not None else nn.Identity()
        self.classifier = classifier
        self.names = OrderedDict(names)
        self.normalise = normalise
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def layers(self) -> list[str]:
        return list(self.names)

    def forward(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        if layer not in self.names:
            raise DipInputError(f"unknown layer {layer!r}; this network has {', '.join(self.names)}")
        part, index = self.names[layer]
        if self.normalise and x.shape[1] == 3:
            x = (x - self.mean) / self.std
        for i, module in enumerate(self.features):
            x = module(x)
            if part == "features" and i == index:
                return x
        x = torch.flatten(self.avgpool(x), 1)
        for i, module in enumerate(self.classifier):
            x = module(x)
            if i == index:
                return x
        raise AssertionError("unreachable")  # pragma: no cover


# torchvision's alexnet: features 0 conv1, 1 relu, 2 pool, 3 conv2, 4 relu, 5 pool, 6 conv3, 7 relu, 8 conv4,
# 9 relu, 10 conv5, 11 relu, 12 pool; classifier 0 dropout, 1 fc6, 2 relu, 3 dropout, 4 fc7, 5 relu, 6 fc8.
ALEXNET_LAYERS: dict[str, tuple[str, int]] = {
    "conv1": ("features", 0), "relu1": ("features", 1), "pool1": ("features", 2),
    "conv2": ("features", 3), "relu2": ("features", 4), "pool2": ("features", 5),
    "conv3": ("features", 6), "relu3": ("features", 7),
    "conv4": ("features", 8), "relu4": ("features", 9),
    "conv5": ("features", 10), "relu5": ("features", 11), "pool5": ("features", 12),
    "fc6": ("classifier", 1), "relu6": ("classifier", 2),
    "fc7": ("classifier", 4), "relu7": ("classifier", 5),
    "fc8": ("classifier", 6),
}


def AlexNet(num_classes: int = 1000) -> FeatureNet:  # noqa: N802 - named like the network it builds
    """torchvision's ``alexnet`` layer for layer (same state-dict keys and shapes), randomly initialised.

    Inputs are RGB in [0, 1] (normalised with the ImageNet statistics inside); any size >= 63 px works (the
    adaptive average pool makes the classifier's input 256 x 6 x 6). Dropout layers are there for the keys' sake;
    the inversion runs the network in ``eval()`` mode, where they do nothing.
    """
    features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    classifier = nn.Sequential(
        nn.Dropout(p=0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(p=0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )
    return FeatureNet(features, classifier, ALEXNET_LAYERS, pool_size=(6, 6))


def small_cnn(seed: int = 0, width: int = 8) -> FeatureNet:
    """A small random CNN with AlexNet's layer names (conv1..conv3, pool, fc6, fc7) for tests and quick runs."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        features = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),  # 0 conv1, 1 relu1
            nn.MaxPool2d(2),  # 2 pool1
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),  # 3 conv2, 4 relu2
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),  # 5 conv3, 6 relu3
            nn.MaxPool2d(2),  # 7 pool3
        )
        classifier = nn.Sequential(nn.Linear(2 * width * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 32))
    finally:
        torch.random.set_rng_state(gen_state)
    names = {"conv1": ("features", 0), "relu1": ("features", 1), "pool1": ("features", 2),
             "conv2": ("features", 3), "relu2": ("features", 4), "conv3": ("features", 5),
             "relu3": ("features", 6), "pool3": ("features", 7), "fc6": ("classifier", 0),
             "relu6": ("classifier", 1), "fc7": ("classifier", 2)}
    return FeatureNet(features, classifier, names, pool_size=(4, 4))


def load_alexnet(path: str | os.PathLike | None) -> FeatureNet:
    """:func:`AlexNet` with the weights of a torchvision ``alexnet`` state-dict file (DipInputError if absent/wrong)."""
    if path is None or str(path) == "":
        raise DipInputError("no AlexNet weights file was named.\n" + ALEXNET_HOWTO)
    path = Path(path)
    if not path.is_file():
        raise DipInputError(f"the AlexNet weights file {path} does not exist.\n" + ALEXNET_HOWTO)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
        raise DipInputError(f"cannot read {path} as a torch state dict ({err}).\n" + ALEXNET_HOWTO) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DipInputError(f"{path} does not hold a state dict.\n" + ALEXNET_HOWTO)
    net = AlexNet()
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        raise DipInputError(
            f"{path} is not a torchvision AlexNet state dict (missing: {missing[:4]}, unexpected: {unexpected[:4]}, "
            f"wrong shapes: {wrong[:4]}).\n" + ALEXNET_HOWTO
        )
    net.load_state_dict(state)
    return net


# --- inversion -------------------------------------------------------------------------------------------------------

# feature_inversion.ipynb: skip(32, 3, [16, 32, 64, 128, 128, 128], skip [4] * 6, k [7, 7, 5, 5, 3, 3], nearest,
# downsample 'avg', pad 'zero').
FEATURE_INVERSION_NET = dict(
    channels_down=[16, 32, 64, 128, 128, 128], channels_up=[16, 32, 64, 128, 128, 128], channels_skip=[4] * 6,
    kernel_down=[7, 7, 5, 5, 3, 3], kernel_up=[7, 7, 5, 5, 3, 3], upsample="nearest", downsample="avg", pad="zero",
)


@dataclass
class PreimageConfig:
    """Settings of an inversion. The defaults are the authors' (DIP) and Mahendran & Vedaldi-style TV."""

    layer: str = "fc6"
    iterations: int = 3100
    lr: float = 0.001  # DIP (the notebook's LR)
    input_depth: int = 32
    input_scale: float = 0.1
    reg_noise_std: float = 0.0
    net_kwargs: dict = field(default_factory=lambda: dict(FEATURE_INVERSION_NET))
    tv_weight: float = 1e-5  # TV: weight of sum |grad x| (the feature error is normalised to ~1)
    tv_beta: float = 0.5  # TV^(2 beta): 0.5 = ordinary isotropic TV
    tv_lr: float = 0.01  # TV: Adam on the pixels
    log_every: int = 100
    seed: int = 0
    device: str = "auto"

    def replace(self, **changes: Any) -> "PreimageConfig":
        import dataclasses

        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise DipInputError(f"unknown pre-image setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)


@dataclass
class PreimageResult:
    output: np.ndarray  # (H, W, 3) in [0, 1]
    history: list[dict]  # step, feature error (normalised), PSNR to the target image
    seconds: float
    method: str  # "dip" | "tv"
    config: PreimageConfig

    def summary(self) -> dict:
        return {"method": self.method, "seconds": round(self.seconds, 3), "final": self.history[-1],
                "layer": self.config.layer, "iterations": self.config.iterations}


def _target_features(feature_net: FeatureNet, target: np.ndarray, layer: str, device) -> torch.Tensor:
    if target.ndim != 3 or target.shape[2] != 3:
        raise DipInputError(f"the target must be an RGB (H, W, 3) image, got shape {target.shape}")
    with torch.no_grad():
        return feature_net(to_tensor(target).to(device), layer).detach()


def _prepare(feature_net: FeatureNet, config: PreimageConfig):
    if config.iterations < 1:
        raise DipInputError(f"iterations must be >= 1, got {config.iterations}")
    if config.layer not in feature_net.names:
        raise DipInputError(f"unknown layer {config.layer!r}; choose one of {', '.join(feature_net.names)}")
    device = resolve_device(config.device)
    feature_net = feature_net.to(device).eval()
    for p in feature_net.parameters():
        p.requires_grad_(False)
    return feature_net, device


class FeatureTerm:
    """The pre-image's data term for the fit engine: ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2`` at one layer.

    Logged: the normalised feature error and the PSNR of ``x`` to the target image ``x0`` (on the host, as a reader
    of the figure would measure it).
    """

    quality_key = None  # no PSNR to the data to backtrack on; the engine's NaN guard still rolls back

    def __init__(self, feature_net: FeatureNet, target: np.ndarray, layer: str, device: torch.device):
        self.feature_net, self.target, self.layer = feature_net, target, layer
        self.features = _target_features(feature_net, target, layer, device)
        self.energy = torch.sum(self.features**2).clamp_min(1e-12)

    def loss(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sum((self.feature_net(output, self.layer) - self.features) ** 2) / self.energy

    def log_values(self, output: torch.Tensor, average: torch.Tensor | None) -> list[torch.Tensor]:
        return []

    def record(self, loss: float, values: list[float], output: torch.Tensor, average: torch.Tensor | None) -> dict:
        return {"feature_error": loss, "psnr_target": metrics.psnr(self.target, to_numpy(output))}


def _engine_config(config: PreimageConfig) -> FitConfig:
    """The fit-engine settings of a DIP inversion: the notebook's plain loop (no EMA, no PSNR backtracking, fp32)."""
    return FitConfig(
        net="skip", net_kwargs=dict(config.net_kwargs), input_depth=config.input_depth,
        input_scale=config.input_scale, lr=config.lr, iterations=config.iterations,
        reg_noise_std=config.reg_noise_std, exp_weight=None, backtrack_db=None, log_every=config.log_every,
        seed=config.seed, device=config.device, precision="fp32", channels_last=False,
    )  # fmt: skip


def invert_dip(
    feature_net: FeatureNet, target: np.ndarray, config: PreimageConfig = PreimageConfig()
) -> PreimageResult:
    """The DIP pre-image of ``target``'s activations at ``config.layer``: fit a skip net's output to them.

    The fit engine of every DIP fit (:class:`dip.fit.engine.FitDriver`) with :class:`FeatureTerm` as the data term.
    """
    feature_net, device = _prepare(feature_net, config)
    started = time.perf_counter()
    target = np.asarray(target, dtype=np.float32)
    term = FeatureTerm(feature_net, target, config.layer, device)
    h, w = target.shape[:2]
    torch.manual_seed(config.seed)
    net = nets.skip(config.input_depth, 3, **config.net_kwargs).to(device)
    multiple = nets.size_multiple(net)
    if h % multiple or w % multiple:
        raise DipInputError(f"the target is {w}x{h}; this network needs multiples of {multiple} (crop or resize it)")
    # One CPU generator draws z and then, step after step, the input perturbation (the notebook's single stream).
    gen = torch.Generator().manual_seed(config.seed)
    z = nets.make_input("noise", config.input_depth, (h, w), generator=gen, scale=config.input_scale).to(device)
    engine_config = _engine_config(config)
    stepper = LoneStepper(net, z, gen, term, engine_config, device)
    result = FitDriver(stepper, [term], engine_config, device, hooks=[[]], started=started).run()[0]
    return PreimageResult(result.output_raw, result.history, time.perf_counter() - started, "dip", config)


def invert_tv(feature_net: FeatureNet, target: np.ndarray, config: PreimageConfig = PreimageConfig()) -> PreimageResult:
    """The TV-regularised pre-image: optimise the pixels (start U(0, 0.1) noise; kept in [0, 1] by projection)."""
    feature_net, device = _prepare(feature_net, config)
    if config.tv_weight < 0:
        raise DipInputError(f"the TV weight must be >= 0, got {config.tv_weight}")
    started = time.perf_counter()
    target = np.asarray(target, dtype=np.float32)
    term = FeatureTerm(feature_net, target, config.layer, device)
    h, w = target.shape[:2]
    gen = torch.Generator().manual_seed(config.seed)
    start = (torch.rand((1, 3, h, w), generator=gen) * 0.1).to(device)
    history: list[dict] = []

    def log(step: int, error: torch.Tensor, x: torch.Tensor) -> None:
        entries = term.record(error.item(), [], x, None)
        history.append({"step": step, **entries, "seconds": time.perf_counter() - started})

    x = optimise_pixels(start, term.loss, iterations=config.iterations, lr=config.tv_lr, tv_weight=config.tv_weight,
                        tv_beta=config.tv_beta, clamp=True, log_every=config.log_every, on_log=log)  # fmt: skip
    return PreimageResult(to_numpy(x), history, time.perf_counter() - started, "tv", config)


def prepare_target(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop of ``img`` resized to ``size`` x ``size`` (PIL Lanczos), RGB float32 in [0, 1]."""
    from PIL import Image

    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DipInputError(f"the pre-image target must be RGB (H, W, 3), got shape {arr.shape}")
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = (np.clip(arr[top : top + s, left : left + s], 0, 1) * 255).round().astype(np.uint8)
    if s != size:
        sq = np.asarray(Image.fromarray(sq).resize((size, size), Image.LANCZOS))
    return sq.astype(np.float32) / 255.0
