"""Fitting DIP networks: the settings and results (:mod:`~dip.fit.config`), the one engine (:mod:`~dip.fit.engine`:
``fit``), the lone and stacked steppers it drives (:mod:`~dip.fit.lone`, :mod:`~dip.fit.stacked`), data terms
(:mod:`~dip.fit.objectives`), checkpoints (:mod:`~dip.fit.checkpoint`), hooks and progress lines
(:mod:`~dip.fit.hooks`), early stopping (:mod:`~dip.fit.early_stopping`) and pixel optimisation without a network
(:mod:`~dip.fit.pixels`)."""

from dip.fit.checkpoint import CHECKPOINT_FORMAT  # noqa: F401 -- the package's public names
from dip.fit.config import COMPILE_MODES, PRECISIONS, FitConfig, FitInterrupted, FitResult  # noqa: F401
from dip.fit.device import bf16_is_fast, resolve_device, resolve_precision, set_threads  # noqa: F401
from dip.fit.engine import ema_update, fit  # noqa: F401
from dip.fit.hooks import BaseHook, FitState, Hook, ProgressBar, ProgressLog, log_progress  # noqa: F401
from dip.fit.objectives import output_shape_for  # noqa: F401
