"""The paper's figures: learning curves (Fig. 2), PSNR along a denoising fit, image grids and PSNR per method.

Every plot function takes plain data (histories, images, a metrics frame) and writes a PNG and, optionally, a PDF of
the same figure (atomically). Matplotlib runs headless (Agg).
"""

from __future__ import annotations

import math
import os

import numpy as np

from dip.errors import DipInputError
from dip.files import atomic_write

__all__ = [
    "LEARNING_CURVE_KINDS",
    "learning_curve_target",
    "run_learning_curve",
    "plot_learning_curves",
    "plot_psnr_curves",
    "plot_grid",
    "plot_psnr_per_method",
    "save_figure",
]

# Fig. 2: the network fits a natural image fast, the same image + noise and a pixel-shuffled image slowly, and pure
# noise slowest ("high impedance to noise").
LEARNING_CURVE_KINDS = {
    "image": "Image",
    "image_noise": "Image + noise",
    "shuffled": "Image, pixels shuffled",
    "noise": "U(0, 1) noise",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, png: str | os.PathLike, pdf: str | os.PathLike | None = None, dpi: int = 150) -> None:
    """Save ``fig`` to ``png`` (and ``pdf``), each atomically (:func:`dip.files.atomic_write`); close the figure."""
    plt = _pyplot()
    try:
        for path, fmt in ((png, "png"), (pdf, "pdf")):
            if path is not None:
                with atomic_write(path) as fh:
                    fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)


# --- Fig. 2: learning curves ---------------------------------------------------------------------------------------


def learning_curve_target(img: np.ndarray, kind: str, seed: int = 0, noise_sigma: float = 25.0) -> np.ndarray:
    """The four targets of Fig. 2 made from ``img`` (H, W, C) in [0, 1].

    ``image``: the image; ``image_noise``: plus N(0, (sigma/255)^2), clipped; ``shuffled``: its pixels (all channels
    together) randomly permuted; ``noise``: U(0, 1) i.i.d. values of the same shape.
    """
    arr = np.asarray(img, dtype=np.float32)
    rng = np.random.default_rng(int(seed))
    if kind == "image":
        return arr.copy()
    if kind == "image_noise":
        return np.clip(arr + rng.normal(0.0, noise_sigma / 255.0, arr.shape), 0, 1).astype(np.float32)
    if kind == "shuffled":
        h, w, c = arr.shape
        flat = arr.reshape(h * w, c)
        return flat[rng.permutation(h * w)].reshape(h, w, c).copy()
    if kind == "noise":
        return rng.random(arr.shape).astype(np.float32)
    raise DipInputError(f"unknown learning-curve target {kind!r}; choose one of: {', '.join(LEARNING_CURVE_KINDS)}")


def run_learning_curve(img: np.ndarray, kind: str, config, *, seed: int = 0) -> tuple[list[dict], object]:
    """Fit DIP to the ``kind`` target of ``img`` with no corruption (plain reconstruction); returns (history, result).

    Use ``config.log_every = 1`` for a full curve. The loss in the history is the MSE the figure plots.
    """
    from dip.restore import restore

    target = learning_curve_target(img, kind, seed)
    result = restore("denoise", target, config=config)
    return result.history, result


def plot_learning_curves(curves: dict, png, pdf=None, *, title: str | None = None):
    """MSE vs iteration (log y) for each target of Fig. 2. ``curves``: kind -> history (dicts with step, loss)."""
    import seaborn as sns

    plt = _pyplot()
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    palette = sns.color_palette("colorblind", n_colors=max(4, len(curves)))
    for i, (kind, history) in enumerate(curves.items()):
        steps = [r["step"] + 1 for r in history if r.get("loss") is not None]
        loss = [r["loss"] for r in history if r.get("loss") is not None]
        ax.plot(steps, loss, label=LEARNING_CURVE_KINDS.get(kind, kind), color=palette[i], lw=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("MSE")
    ax.set_title(title or "Learning curves of the reconstruction task (cf. paper Fig. 2)")
    ax.legend(frameon=True)
    save_figure(fig, png, pdf)
    return fig


# --- PSNR along a fit ----------------------------------------------------------------------------------------------


def plot_psnr_curves(curves: dict, png, pdf=None, *, reference: dict | None = None, title: str | None = None):
    """PSNR vs iteration of the raw output (solid) and the averaged output (dashed), one colour per image.

    ``curves``: image -> history (dicts with step, psnr_gt, psnr_gt_avg). ``reference``: image -> PSNR of the
    degraded input (dotted horizontal line). Shows why stopping matters: the raw output peaks and then fits the noise.
    """
    import seaborn as sns

    plt = _pyplot()
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    palette = sns.color_palette("colorblind", n_colors=max(3, len(curves)))
    for i, (image, history) in enumerate(curves.items()):
        colour = palette[i % len(palette)]
        steps = [r["step"] + 1 for r in history]
        raw = [np.nan if r.get("psnr_gt") is None else r["psnr_gt"] for r in history]
        avg = [np.nan if r.get("psnr_gt_avg") is None else r["psnr_gt_avg"] for r in history]
        ax.plot(steps, raw, color=colour, lw=1.3, label=f"{image}: output")
        if not all(math.isnan(v) for v in avg):
            ax.plot(steps, avg, color=colour, lw=1.3, ls="--", label=f"{image}: averaged output")
        if reference and image in reference:
            ax.axhline(reference[image], color=colour, lw=0.8, ls=":")
        finite = [(s, v) for s, v in zip(steps, raw) if not math.isnan(v)]
        if finite:
            best = max(finite, key=lambda sv: sv[1])
            ax.plot([best[0]], [best[1]], marker="o", color=colour, ms=4)
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR vs ground truth (dB)")
    ax.set_title(title or "Denoising: PSNR along the fit (dots: best raw output; dotted: noisy input)")
    ax.legend(fontsize=7, ncol=2, frameon=True)
    save_figure(fig, png, pdf)
    return fig


# --- image grids ---------------------------------------------------------------------------------------------------


def plot_grid(rows: list[dict], png, pdf=None, *, title: str | None = None, panel_size: float = 1.9):
    """A grid of images: one row per image, one column per panel.

    ``rows``: dicts with ``image`` (row label) and ``panels``: a list of ``(label, array (H, W, C) in [0, 1])``.
    Labels usually carry the PSNR, e.g. ``"DIP 29.1 dB"``. Images keep their own size (the LR input of SR is shown
    blocky, with nearest interpolation).
    """
    plt = _pyplot()
    if not rows:
        raise DipInputError("an image grid needs at least one row")
    ncols = max(len(r["panels"]) for r in rows)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(panel_size * ncols, panel_size * len(rows) + 0.4), squeeze=False
    )
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(row["panels"]):
                ax.axis("off")
                continue
            label, img = row["panels"][j]
            arr = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
            if arr.ndim == 3 and arr.shape[2] == 1:
                ax.imshow(arr[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(arr, interpolation="nearest")
            ax.set_title(label, fontsize=7)
            if j == 0:
                ax.set_ylabel(row["image"], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, png, pdf)
    return fig


# --- PSNR per method -----------------------------------------------------------------------------------------------


def plot_psnr_per_method(frame, png, pdf=None, *, title: str | None = None, method_labels: dict | None = None):
    """Mean PSNR per method (bars, by source) with the per-image values as points.

    ``frame``: tidy rows with method, source, image, psnr (one dataset/task/level).
    """
    import seaborn as sns

    plt = _pyplot()
    if frame.empty:
        raise DipInputError("no scores to plot")
    sns.set_theme(style="whitegrid", context="paper")
    data = frame.copy()
    data = data[np.isfinite(data["psnr"].astype(float))]
    labels = method_labels or {}
    data["method"] = [labels.get(m, m) for m in data["method"]]
    order = list(data.groupby("method")["psnr"].mean().sort_values().index)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.55 * len(order) + 2), 3.6))
    sns.barplot(data=data, x="method", y="psnr", hue="source", order=order, errorbar=None, ax=ax, alpha=0.8,
                palette="colorblind")
    sns.stripplot(data=data, x="method", y="psnr", hue="source", order=order, dodge=True, ax=ax, size=3,
                  palette="dark:black", legend=False)
    lo = float(data["psnr"].min())
    ax.set_ylim(max(0.0, lo - 3), float(data["psnr"].max()) + 1.5)
    ax.set_xlabel("")
    ax.set_ylabel("PSNR (dB)")
    ax.tick_params(axis="x", rotation=35)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
    ax.set_title(title or "PSNR per method")
    save_figure(fig, png, pdf)
    return fig
