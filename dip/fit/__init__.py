"""Fitting a DIP network to one degraded image: the settings (``FitConfig``), the engine (``fit``), fits stacked into
one batched run (:mod:`~dip.fit.stacked`) and early stopping (:mod:`~dip.fit.early_stopping`)."""

from dip.fit.engine import (  # noqa: F401 -- the package's public names
    CHECKPOINT_FORMAT,
    COMPILE_MODES,
    PRECISIONS,
    BaseHook,
    FitConfig,
    FitInterrupted,
    FitResult,
    FitState,
    Hook,
    ProgressBar,
    bf16_is_fast,
    ema_update,
    fit,
    output_shape_for,
    resolve_device,
    resolve_precision,
    set_threads,
)
