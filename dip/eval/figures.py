"""The paper's figures: learning curves (Fig. 2), PSNR along a denoising fit, image grids and PSNR per method.

Every plot function takes plain data (histories, images, a metrics frame) and writes a PNG and, optionally, a PDF of
the same figure (atomically). Matplotlib runs headless (Agg). How they read: iteration axes tick whole iterations only;
legends sit beside the axes, off the data; the image grids use matplotlib's constrained layout, so no title or label
runs into an image; PSNR per method is points and mean lines (no bars on a y axis cut above 0); the seaborn style is
set per figure, never for the process (tests/unit/test_figures.py checks each).
"""

from __future__ import annotations

import functools
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


# One colour and line style per target, whatever the order of the curves (the style tells them apart in grey too).
LEARNING_CURVE_STYLES = {"image": (0, "-"), "image_noise": (1, "--"), "shuffled": (2, "-."), "noise": (4, ":")}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _seaborn_style(plot):
    """Run ``plot`` in seaborn's whitegrid style and paper context without setting them for later figures (the image
    grids keep matplotlib's own look whatever was plotted before them in the process)."""

    @functools.wraps(plot)
    def styled(*args, **kwargs):
        import seaborn as sns

        with _pyplot().rc_context({**sns.axes_style("whitegrid"), **sns.plotting_context("paper")}):
            return plot(*args, **kwargs)

    return styled


def _integer_ticks(axis) -> None:
    """Whole numbers only on an iteration axis (no 2.5, 7.5 on a short run), at round steps (0, 50, 100 or 0, 200,
    400), and one tick where the axis holds a single step."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True, min_n_ticks=1))


def _legend_outside(ax, handles=None, **kwargs):
    """The legend to the right of the axes, where it cannot cover a curve or a point."""
    extra = {} if handles is None else {"handles": handles}
    return ax.legend(**extra, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False,
                     **kwargs)


def save_figure(fig, png: str | os.PathLike, pdf: str | os.PathLike | None = None, dpi: int = 150) -> None:
    """Save ``fig`` to ``png`` (and ``pdf``), each atomically (:func:`dip.files.atomic_write`); close the figure."""
    plt = _pyplot()
    try:
        for path, fmt in ((png, "png"), (pdf, "pdf")):
            if path is not None:
                # No creation date in a PDF: the same figure re-rendered is the same file (no spurious diffs).
                metadata = {"CreationDate": None} if fmt == "pdf" else None
                with atomic_write(path) as fh:
                    fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
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


@_seaborn_style
def plot_learning_curves(curves: dict, png, pdf=None, *, title: str | None = None):
    """MSE vs iteration (log y) for each target of Fig. 2. ``curves``: kind -> history (dicts with step, loss)."""
    import seaborn as sns

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    palette = sns.color_palette("colorblind", n_colors=10)
    for i, (kind, history) in enumerate(curves.items()):
        colour, style = LEARNING_CURVE_STYLES.get(kind, (5 + i % 5, "-"))
        steps = [r["step"] + 1 for r in history if r.get("loss") is not None]
        loss = [r["loss"] for r in history if r.get("loss") is not None]
        ax.plot(steps, loss, label=LEARNING_CURVE_KINDS.get(kind, kind), color=palette[colour], ls=style, lw=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("MSE")
    ax.set_title(title or "Learning curves of the reconstruction task (cf. paper Fig. 2)")
    _legend_outside(ax, title="target")
    save_figure(fig, png, pdf)
    return fig


# --- PSNR along a fit ----------------------------------------------------------------------------------------------


@_seaborn_style
def plot_psnr_curves(curves: dict, png, pdf=None, *, reference: dict | None = None, title: str | None = None):
    """PSNR vs iteration of the raw output (solid) and the averaged output (dashed), one colour per image.

    ``curves``: image -> history (dicts with step, psnr_gt, psnr_gt_avg). ``reference``: image -> PSNR of the
    degraded input (dotted horizontal line). A dot marks each image's best raw output. Shows why stopping matters:
    the raw output peaks and then fits the noise. The legend names the images by colour and the lines by style.
    """
    import seaborn as sns
    from matplotlib.lines import Line2D

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    palette = sns.color_palette("colorblind", n_colors=max(3, len(curves)))
    images, averaged, noisy = [], False, False
    for i, (image, history) in enumerate(curves.items()):
        colour = palette[i % len(palette)]
        images.append(Line2D([], [], color=colour, lw=3, label=image))
        steps = [r["step"] + 1 for r in history]
        raw = [np.nan if r.get("psnr_gt") is None else r["psnr_gt"] for r in history]
        avg = [np.nan if r.get("psnr_gt_avg") is None else r["psnr_gt_avg"] for r in history]
        ax.plot(steps, raw, color=colour, lw=1.3)
        if not all(math.isnan(v) for v in avg):
            ax.plot(steps, avg, color=colour, lw=1.3, ls="--")
            averaged = True
        if reference and image in reference:
            ax.axhline(reference[image], color=colour, lw=0.9, ls=":")
            noisy = True
        finite = [(s, v) for s, v in zip(steps, raw) if not math.isnan(v)]
        if finite:
            best = max(finite, key=lambda sv: sv[1])
            ax.plot([best[0]], [best[1]], marker="o", color=colour, ms=4)
    grey = "0.35"
    lines = [Line2D([], [], color=grey, lw=1.3, label="output")]
    if averaged:
        lines.append(Line2D([], [], color=grey, lw=1.3, ls="--", label="averaged output"))
    lines.append(Line2D([], [], color=grey, lw=0, marker="o", ms=4, label="best output"))
    if noisy:
        lines.append(Line2D([], [], color=grey, lw=0.9, ls=":", label="noisy input"))
    ax.set_xlabel("iteration")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("PSNR vs ground truth (dB)")
    ax.set_title(title or "Denoising: PSNR along the fit")
    ax.add_artist(_legend_outside(ax, images, fontsize=7, title="image", title_fontsize=7))
    ax.legend(handles=lines, loc="lower left", bbox_to_anchor=(1.02, 0.0), borderaxespad=0.0, frameon=False,
              fontsize=7, title="line", title_fontsize=7)
    save_figure(fig, png, pdf)
    return fig


# --- image grids ---------------------------------------------------------------------------------------------------


def _column_headers(rows: list[dict], ncols: int) -> list[str] | None:
    """The column titles when every row names its panels alike (the first line of each label: the method), else None.

    Then each method is named once above its column and only the rest of a label (its PSNR) is shown under each
    image; rows that name their panels differently (an experiment's panels wrapped over rows) keep a title each.
    """
    if len(rows) < 2:
        return None
    headers: list[str | None] = [None] * ncols
    for row in rows:
        for j, (label, _) in enumerate(row["panels"]):
            head = str(label).split("\n", 1)[0]
            if headers[j] is None:
                headers[j] = head
            elif headers[j] != head:
                return None
    return [h or "" for h in headers]


def plot_grid(rows: list[dict], png, pdf=None, *, title: str | None = None, panel_size: float = 1.9):
    """A grid of images: one row per image, one column per panel.

    ``rows``: dicts with ``image`` (row label) and ``panels``: a list of ``(label, array (H, W, C) in [0, 1])``.
    Labels usually carry the PSNR, e.g. ``"DIP\n29.1 dB"``. When every row has the same panels (by the first line of
    the label), each column is titled once, above the first row, and the rest of each label (the PSNR) is written
    under its image; otherwise each panel has its own title. The layout (constrained) keeps every title and label
    clear of the images around it. Images keep their own size (the LR input of SR is shown blocky, with nearest
    interpolation).
    """
    plt = _pyplot()
    if not rows:
        raise DipInputError("an image grid needs at least one row")
    ncols = max(len(r["panels"]) for r in rows)
    headers = _column_headers(rows, ncols)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(panel_size * ncols, panel_size * len(rows) + 0.5), squeeze=False,
        layout="constrained",
    )
    fig.get_layout_engine().set(h_pad=0.04, w_pad=0.04, hspace=0.02, wspace=0.02)
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
            if headers is None:
                ax.set_title(label, fontsize=7)
            else:
                if i == 0:
                    ax.set_title(headers[j], fontsize=8)
                rest = str(label).split("\n", 1)[1] if "\n" in str(label) else ""
                if rest:
                    ax.set_xlabel(rest, fontsize=7, labelpad=2)
            if j == 0:
                ax.set_ylabel(row["image"], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    # Photos compress poorly: past 8 panels the resolution drops so that a grid's files stay about the size of an
    # 8-panel one (~0.7 MB PNG) however many images it shows; committed results stay small.
    n_panels = sum(len(r["panels"]) for r in rows)
    save_figure(fig, png, pdf, dpi=min(150, int(150 * (8 / n_panels) ** 0.5)))
    return fig


# --- PSNR per method -----------------------------------------------------------------------------------------------


@_seaborn_style
def plot_psnr_per_method(frame, png, pdf=None, *, title: str | None = None, method_labels: dict | None = None):
    """PSNR per method: each image's value as a point (one colour per image), the mean over images as a bar-free
    horizontal line with its value; methods ordered by mean. Several sources (ours, the paper's) sit side by side in
    a method's column with their own marker. No bars: a bar on a y axis that does not start at 0 misreads.

    ``frame``: tidy rows with method, source, image, psnr (one dataset/task/level).
    """
    import seaborn as sns
    from matplotlib.lines import Line2D

    plt = _pyplot()
    if frame.empty:
        raise DipInputError("no scores to plot")
    data = frame.copy()
    data = data[np.isfinite(data["psnr"].astype(float))]
    if data.empty:
        raise DipInputError("no finite scores to plot")
    labels = method_labels or {}
    data["method"] = [labels.get(m, m) for m in data["method"]]
    order = list(data.groupby("method")["psnr"].mean().sort_values().index)
    sources = sorted(dict.fromkeys(data["source"]), key=lambda src: (src != "ours", src))  # ours first
    images = sorted(dict.fromkeys(data["image"].astype(str)))
    # One colour per image while they can be told apart; past 10, grey points (the mean still reads).
    palette = dict(zip(images, sns.color_palette("colorblind", n_colors=len(images)))) if len(images) <= 10 else {}
    markers = dict(zip(sources, ["o", "^", "s", "D", "v"] * 2))
    slot = 0.8 / len(sources)  # the width of one source's place in a method's column
    fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * len(order) * len(sources) + 2.5), 3.6))
    for i, method in enumerate(order):
        for k, source in enumerate(sources):
            sel = data[(data["method"] == method) & (data["source"] == source)]
            if sel.empty:
                continue
            centre = i + (k - (len(sources) - 1) / 2) * slot
            # Spread the points a little by image, the same way in every column, so equal values do not hide.
            spread = {im: (n - (len(images) - 1) / 2) * min(0.04, 0.5 * slot / max(1, len(images))) for n, im in
                      enumerate(images)}
            xs = [centre + spread[str(im)] for im in sel["image"]]
            colours = [palette.get(str(im), "0.45") for im in sel["image"]]
            ax.scatter(xs, sel["psnr"].astype(float), c=colours, marker=markers[source], s=22, zorder=3,
                       edgecolors="white", linewidths=0.4)
            mean = float(sel["psnr"].astype(float).mean())
            half = 0.3 * slot
            ax.hlines(mean, centre - half, centre + half, color="black", lw=1.6, zorder=4)
            # The value at the line's right end, clear of the points (they sit near the middle).
            ax.annotate(f"{mean:.2f}", (centre + half, mean), xytext=(2, 0), textcoords="offset points", ha="left",
                        va="center", fontsize=6.5, zorder=5)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=35, ha="right")
    ax.set_xlim(-0.6, len(order) - 0.4)
    lo, hi = float(data["psnr"].min()), float(data["psnr"].max())
    pad = max(0.5, 0.08 * (hi - lo))
    ax.set_ylim(lo - pad, hi + 2 * pad)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title or "PSNR per method")
    handles = [Line2D([], [], color="black", lw=1.6, label="mean over images")]
    if len(sources) > 1:
        handles += [Line2D([], [], color="0.3", lw=0, marker=markers[src], ms=5, label=src) for src in sources]
    if palette:
        handles += [Line2D([], [], color=palette[im], lw=0, marker="o", ms=5, label=im) for im in images]
    _legend_outside(ax, handles, fontsize=7)
    save_figure(fig, png, pdf)
    return fig
