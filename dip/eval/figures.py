"""The paper's figures: learning curves (Fig. 2), PSNR along a denoising fit, image grids and PSNR per method.

Every plot function takes plain data (histories, images, a metrics frame) and writes a PNG and, optionally, a PDF of
the same figure (atomically). Matplotlib runs headless (Agg). How they read: iteration axes tick whole iterations only;
legends sit beside the axes, off the data; the image grids use matplotlib's constrained layout, so no title or label
runs into an image; PSNR per method is points and mean lines (no bars on a y axis cut above 0), every mean over the
same images (the tables' rule) and full-set means drawn apart; the seaborn style is set per figure, never for the
process (tests/unit/test_figures.py checks each).
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from dip.errors import DipInputError
from dip.files import atomic_write
from dip.tasks import LEARNING_CURVE_KINDS

__all__ = [
    "plot_learning_curves",
    "plot_psnr_curves",
    "plot_grid",
    "plot_psnr_per_method",
    "psnr_per_method_data",
    "save_figure",
]

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
    degraded input (dotted horizontal line). A dot marks the best of each image's *returned* output: the averaged
    one where the fit averaged (the curve the fit's result follows), else the raw one. Shows why stopping matters:
    the raw output peaks and then fits the noise. The legend names the images by colour and the lines by style.
    ``title``: say which setting it is (dataset, level); the default names none.
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
        returned = avg if not all(math.isnan(v) for v in avg) else raw
        finite = [(s, v) for s, v in zip(steps, returned) if not math.isnan(v)]
        if finite:
            best = max(finite, key=lambda sv: sv[1])
            ax.plot([best[0]], [best[1]], marker="o", color=colour, ms=4)
    grey = "0.35"
    lines = [Line2D([], [], color=grey, lw=1.3, label="raw output")]
    if averaged:
        lines.append(Line2D([], [], color=grey, lw=1.3, ls="--", label="averaged output"))
    lines.append(Line2D([], [], color=grey, lw=0, marker="o", ms=4, label="best returned output"))
    if noisy:
        lines.append(Line2D([], [], color=grey, lw=0.9, ls=":", label="noisy input"))
    ax.set_xlabel("iteration")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("PSNR vs ground truth (dB)")
    ax.set_title(title or "PSNR along the fit")
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


SOURCE_MARKERS = {"ours": "o", "released": "^", "paper": "s"}


def _source_rank(source: str) -> tuple[int, str]:
    order = list(SOURCE_MARKERS)
    return (order.index(source) if source in order else len(order), source)


def psnr_per_method_data(frame, images=None):
    """What :func:`plot_psnr_per_method` draws, as data: ``(points, means)``.

    ``points``: one row per (method, source, image) of ``images`` -- by default the images of the ``ours`` rows (all
    the images when there are none), the same rule as the tables' (:func:`dip.eval.tables.results_table`) -- with its
    PSNR averaged over seeds. ``means``: ``{(method, source): mean over those images}``, only for the rows that have
    every one of them (never a mean over fewer images, so that every mean drawn is over the same images).
    """
    import pandas as pd

    data = frame[np.isfinite(frame["psnr"].astype(float))].copy()
    data["image"] = data["image"].astype(str)
    if images is None:
        ours = data.loc[data["source"] == "ours", "image"]
        images = list(dict.fromkeys(ours if len(ours) else data["image"]))
    images = [str(i) for i in images]
    data = data[data["image"].isin(images)]
    points = data.groupby(["method", "source", "image"], as_index=False, sort=False)["psnr"].mean()
    means = {}
    for (method, source), rows in points.groupby(["method", "source"], sort=False):
        if set(rows["image"]) >= set(images):
            means[(method, source)] = float(rows["psnr"].mean())
    return pd.DataFrame(points, columns=["method", "source", "image", "psnr"]), means


@_seaborn_style
def plot_psnr_per_method(frame, png, pdf=None, *, title: str | None = None, method_labels: dict | None = None,
                         images=None, full_means: dict | None = None, given_means: dict | None = None,
                         n_all: int | None = None,
                         image_labels: dict | None = None, ylabel: str = "PSNR (dB)"):
    """PSNR per method on the same images for every row: each image's value as a point (one colour per image), each
    row's mean over those images as a solid line with its value; a row's mean over *all* the dataset's images
    (``full_means``: {(method, source): value}, e.g. the released outputs' and the paper's full-set means when ours
    covers only some images) as a dashed grey line with its value, labelled apart. Each source of a method (ours,
    released, paper) has its own slot in the method's column, named under it; methods are ordered by mean. No bars:
    a bar on a y axis that does not start at 0 misreads.

    ``frame``: tidy rows with method, source, image, psnr (one dataset/task/level; several seeds are averaged).
    ``images``: the images to show (default: those ours covers, :func:`psnr_per_method_data`, which gives what is
    drawn); ``given_means``: means over those same images known without their points (the paper's printed means
    when the images are the whole set), drawn like the others; ``n_all``: how many images the dataset has (for the
    legend); ``image_labels``: image id -> legend name.
    """
    import seaborn as sns

    plt = _pyplot()
    if frame.empty:
        raise DipInputError("no scores to plot")
    points, means = psnr_per_method_data(frame, images)
    for key, value in (given_means or {}).items():
        if key not in means and value is not None and math.isfinite(value):
            means[key] = float(value)
    full = {k: float(v) for k, v in (full_means or {}).items() if v is not None and math.isfinite(v)}
    if points.empty and not full and not means:
        raise DipInputError("no finite scores to plot")
    labels, names = method_labels or {}, image_labels or {}
    shown = list(dict.fromkeys(points["image"])) if images is None else [str(i) for i in images]
    shown = [i for i in shown if i in set(points["image"])]
    n_shown = len(shown)
    subset = n_all is not None and n_shown < n_all
    slots, order = _method_slots(points, means, full)
    palette = dict(zip(shown, sns.color_palette("colorblind", n_colors=len(shown)))) if 0 < n_shown <= 10 else {}
    gap, half = 0.5, 0.24  # between methods; half the width of a mean line (one slot is 1 wide)
    centres, x = {}, 0.0
    for method in order:
        for source in slots[method]:
            centres[(method, source)] = x
            x += 1.0
        x += gap
    width = x - gap
    fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * width + 2.6), 3.8))
    values = list(points["psnr"].astype(float)) + list(means.values()) + list(full.values())
    lo, hi = min(values), max(values)
    pad = max(0.5, 0.08 * (hi - lo))
    ax.set_ylim(lo - pad, hi + 2 * pad)
    db_per_pt = (hi + 3 * pad - lo) / (3.8 * 0.72 * 72)  # roughly: the axes are ~0.72 of the figure's height
    spread = {im: (n - (n_shown - 1) / 2) * min(0.06, 0.45 / max(1, n_shown)) for n, im in enumerate(shown)}
    for (method, source), centre in centres.items():
        sel = points[(points["method"] == method) & (points["source"] == source)]
        if len(sel):
            ax.scatter([centre + spread.get(im, 0.0) for im in sel["image"]], sel["psnr"].astype(float),
                       c=[palette.get(im, "0.45") for im in sel["image"]], marker=SOURCE_MARKERS.get(source, "D"),
                       s=22, zorder=3, edgecolors="white", linewidths=0.4)
        _draw_means(ax, centre, half, means.get((method, source)), full.get((method, source)), n_shown > 1,
                    db_per_pt)
    ax.set_xticks([sum(centres[(m, s)] for s in slots[m]) / len(slots[m]) for m in order])
    ax.set_xticklabels([labels.get(m, m) for m in order], rotation=30, ha="right", fontsize=8)
    ax.tick_params(axis="x", which="major", pad=11)
    ax.set_xticks(list(centres.values()), minor=True)
    ax.set_xticklabels([s for _, s in centres], minor=True)
    ax.tick_params(axis="x", which="minor", length=0, pad=1, labelsize=6, labelcolor="0.3")
    ax.xaxis.remove_overlapping_locs = False  # a slot's name where its method's name is too
    ax.set_xlim(-0.7, width - 0.3)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "PSNR per method")
    _legend_outside(ax, _per_method_legend(points, shown, palette, names, bool(means), bool(full), subset, n_all),
                    fontsize=7)
    save_figure(fig, png, pdf)
    return fig


def _method_slots(points, means: dict, full: dict) -> tuple[dict[str, list[str]], list[str]]:
    """The per-method figure's slots: per method its sources (ours first), each with points, a mean or a full-set
    mean; and the methods in the order drawn (by their first mean)."""
    slots: dict[str, list[str]] = {}
    for method, source in [*zip(points["method"], points["source"]), *means, *full]:
        slots.setdefault(method, [])
        if source not in slots[method]:
            slots[method].append(source)
    for method in slots:
        slots[method].sort(key=_source_rank)

    def rank(method):
        values = [means[(method, s)] for s in slots[method] if (method, s) in means]
        values += [full[(method, s)] for s in slots[method] if (method, s) in full]
        return values[0] if values else float(points.loc[points["method"] == method, "psnr"].mean())

    return slots, sorted(slots, key=rank)


def _draw_means(ax, centre: float, half: float, mean, full_mean, draw_mean_line: bool, db_per_pt: float):
    """One slot's mean (solid, black; no line for one image: its point is the value) and full-set mean (dashed,
    grey), each with its value at the line's right end, clear of the points; two close values are moved apart."""
    texts = []
    if mean is not None:
        if draw_mean_line:
            ax.hlines(mean, centre - half, centre + half, color="black", lw=1.6, zorder=4)
        texts.append((mean, "black"))
    if full_mean is not None:
        ax.hlines(full_mean, centre - half, centre + half, color="0.45", lw=1.3, ls=(0, (3, 1.5)), zorder=4)
        texts.append((full_mean, "0.35"))
    texts.sort()
    offsets = [0.0] * len(texts)
    if len(texts) == 2 and (texts[1][0] - texts[0][0]) / db_per_pt < 8:
        offsets = [-4.0, 4.0]
    for (value, colour), dy in zip(texts, offsets):
        ax.annotate(f"{value:.2f}", (centre + half, value), xytext=(2, dy), textcoords="offset points",
                    ha="left", va="center", fontsize=6.5, color=colour, zorder=5)


def _per_method_legend(points, shown, palette, names, has_means, has_full, subset, n_all) -> list:
    """The per-method figure's legend: what the solid and dashed lines average over, the sources' markers, the
    images' colours."""
    from matplotlib.lines import Line2D

    n_shown = len(shown)
    if subset:
        shown_label = f"mean, {n_shown} of {n_all} images" if n_shown > 1 else None
    else:
        shown_label = f"mean, all {n_shown} images"
    handles = [Line2D([], [], color="black", lw=1.6, label=shown_label)] if shown_label and has_means else []
    if has_full:
        handles.append(Line2D([], [], color="0.45", lw=1.3, ls=(0, (3, 1.5)),
                              label=f"mean, all {n_all} images" if n_all else "mean, all images"))
    sources = sorted({s for s in points["source"]}, key=_source_rank)
    if len(sources) > 1:
        handles += [Line2D([], [], color="0.3", lw=0, marker=SOURCE_MARKERS.get(s, "D"), ms=5, label=s)
                    for s in sources]
    if palette:
        handles += [Line2D([], [], color=palette[im], lw=0, marker="o", ms=5, label=names.get(im, im)) for im in shown]
    return handles
