"""The paper's other experiments (JPEG, text/hole inpainting, architectures, flash/no-flash, the prior's effect on
SR, the natural pre-image): the catalogue (:mod:`~dip.experiments.catalog`, torch-free), the runners
(:mod:`~dip.experiments.runners`) and the natural pre-image (:mod:`~dip.experiments.preimage`).

The runners' names are available from the package itself (``dip.experiments.jpeg_restoration``), imported on first
use so that the torch-free catalogue can be read without importing torch.
"""

import importlib


def __getattr__(name):
    runners = importlib.import_module("dip.experiments.runners")
    if name in runners.__all__:
        return getattr(runners, name)
    raise AttributeError(f"module 'dip.experiments' has no attribute {name!r}")
