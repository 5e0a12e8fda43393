"""The paper's other experiments (JPEG, text/hole inpainting, architectures, flash/no-flash, the prior's effect on
SR, the natural pre-image): :mod:`~dip.experiments.runners` and :mod:`~dip.experiments.preimage`."""

from dip.experiments.runners import *  # noqa: F401,F403 -- the runners are this package's public names
# The workflow's experiment scripts call dip.experiments._crop; the one implementation is dip.data.imageio.crop_to_box.
from dip.data.imageio import crop_to_box as _crop  # noqa: F401
