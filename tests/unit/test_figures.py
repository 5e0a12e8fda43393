"""dip.eval.figures as a reader sees them: whole iterations on iteration axes, grid titles and labels clear of the
images, legends clear of the data, no bars on a y axis that does not start at 0, no style leaking between figures;
and that each plot writes a PNG and a PDF."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from dip.eval import figures, tables
from dip.tasks import LEARNING_CURVE_KINDS
from tests.helpers import gray11_scores


def test_plots_write_png_and_pdf(tmp_path, photo64):
    hist = [{"step": s, "loss": 0.1 / (s + 1), "psnr_gt": 20 + s / 10, "psnr_gt_avg": 19 + s / 9} for s in range(30)]
    figures.plot_learning_curves({"image": hist, "noise": hist}, tmp_path / "a.png", tmp_path / "a.pdf")
    figures.plot_psnr_curves({"x": hist}, tmp_path / "b.png", tmp_path / "b.pdf", reference={"x": 20.5})
    rows = [{"image": "x", "panels": [("gt", photo64), ("lr", photo64[::4, ::4]), ("grey", photo64[..., :1])]}]
    figures.plot_grid(rows, tmp_path / "c.png", tmp_path / "c.pdf")
    frame = gray11_scores()
    figures.plot_psnr_per_method(frame, tmp_path / "d.png", tmp_path / "d.pdf", method_labels=tables.METHOD_LABELS)
    for stem in "abcd":
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
        assert (tmp_path / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob(".*tmp*"))


def _history(n: int, every: int = 1) -> list[dict]:
    return [{"step": s, "loss": 0.1 / (s + 1), "psnr_gt": 20 + s / 10, "psnr_gt_avg": 19 + s / 9}
            for s in range(0, n, every)]


def _drawn(fig):
    """Draw ``fig`` (closed by save_figure: give it an Agg canvas again) and return the renderer, for the extents."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _tick_labels(ax) -> list[str]:
    lo, hi = sorted(ax.get_xlim())
    return [t.get_text() for t, v in zip(ax.get_xticklabels(), ax.get_xticks()) if lo <= v <= hi]


# Short runs as a quick test or a smoke config logs them: 2 to 10 iterations, every step or every 3rd.
SHORT = [(2, 1), (3, 1), (4, 1), (5, 2), (10, 3), (1, 1)]


@pytest.mark.parametrize("n, every", SHORT)
def test_iteration_axes_show_whole_iterations(tmp_path, n, every):
    """An iteration axis never shows 2.5 or 7.5."""
    hist = _history(n, every)
    lc = figures.plot_learning_curves({"image": hist, "noise": hist}, tmp_path / "lc.png")
    pc = figures.plot_psnr_curves({"x": hist}, tmp_path / "pc.png", reference={"x": 20.5})
    for fig in (lc, pc):
        _drawn(fig)
        (ax,) = [a for a in fig.axes if a.get_xlabel() == "iteration"]
        labels = _tick_labels(ax)
        assert labels, "no tick on the iteration axis"
        for text in labels:
            assert text.replace("\N{MINUS SIGN}", "-").lstrip("-").isdigit(), labels


def _texts(fig):
    """Every non-empty title and axis label of the figure's axes, with the axes it belongs to."""
    for ax in fig.axes:
        for artist in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
            if artist.get_visible() and artist.get_text():
                yield ax, artist


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _rows(same_methods: bool, photo) -> list[dict]:
    if same_methods:  # a benchmark grid: every row GT / input / methods, PSNR under the method names
        return [{"image": name, "panels": [("ground truth", photo), ("Degraded input\n20.83 dB", photo),
                                           ("DIP\n23.82 dB", photo), ("CBM3D\n27.92 dB", photo)]}
                for name in ("astronaut", "chelsea", "coffee")]
    # an experiment: 9 panels wrapped 6 a row, each with its own name
    panels = [("ground truth", photo), ("masked input", photo)] + [(f"net {n}\n{20 + n:.2f} dB", photo)
                                                                    for n in range(7)]
    return [{"image": "" if i else "architectures", "panels": panels[i : i + 6]} for i in range(0, len(panels), 6)]


@pytest.mark.parametrize("same_methods", [True, False], ids=["benchmark-grid", "experiment-grid"])
def test_grid_titles_and_labels_stay_clear_of_the_images(tmp_path, photo64, same_methods):
    """No title or label (a column title, a PSNR, a row name) overlaps an image of its own row or of the row above,
    nor another title or label."""
    fig = figures.plot_grid(_rows(same_methods, photo64), tmp_path / "g.png", title="photos: denoise sigma25")
    renderer = _drawn(fig)
    images = [(ax, ax.get_window_extent(renderer)) for ax in fig.axes if ax.images]
    texts = [(ax, t, t.get_window_extent(renderer)) for ax, t in _texts(fig)]
    assert texts
    for owner, text, box in texts:
        for ax, image in images:
            assert not _overlap(box, image), (text.get_text(), "overlaps an image")
    for i, (_, a, box_a) in enumerate(texts):
        for _, b, box_b in texts[i + 1 :]:
            assert not _overlap(box_a, box_b), (a.get_text(), b.get_text())
    title = fig._suptitle.get_window_extent(renderer)
    assert all(not _overlap(title, box) for _, _, box in texts) and all(not _overlap(title, b) for _, b in images)


def test_a_benchmark_grid_names_each_method_once(tmp_path, photo64):
    """Rows with the same panels: the method names title the first row only, each PSNR sits under its image."""
    fig = figures.plot_grid(_rows(True, photo64), tmp_path / "g.png")
    axes = np.array(fig.axes).reshape(3, 4)
    assert [ax.get_title() for ax in axes[0]] == ["ground truth", "Degraded input", "DIP", "CBM3D"]
    assert all(ax.get_title() == "" for ax in axes[1:].ravel())
    assert [ax.get_xlabel() for ax in axes[2]] == ["", "20.83 dB", "23.82 dB", "27.92 dB"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["astronaut", "chelsea", "coffee"]


def _metrics(sources=("ours",)) -> pd.DataFrame:
    rows = []
    for source in sources:
        for method, base in (("input", 20.5), ("dip", 28.0), ("cbm3d", 29.0)):
            for k, image in enumerate(("astronaut", "chelsea", "coffee")):
                rows.append({"method": method, "source": source, "image": image, "psnr": base + k})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("sources", [("ours",), ("ours", "released")])
def test_psnr_per_method_has_no_bars_and_a_legend_off_the_data(tmp_path, sources):
    fig = figures.plot_psnr_per_method(_metrics(sources), tmp_path / "p.png", method_labels=tables.METHOD_LABELS)
    renderer = _drawn(fig)
    (ax,) = fig.axes
    assert not ax.patches, "bars: their length would start at the cut-off y axis, not at 0"
    means = {t.get_text() for t in ax.texts}
    assert {"21.50", "29.00", "30.00"} <= means  # each method's mean is written beside its line
    legend = ax.get_legend()
    assert not _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
    labels = [t.get_text() for t in legend.get_texts()]
    assert {"astronaut", "chelsea", "coffee"} <= set(labels)
    assert ("released" in labels) == (len(sources) > 1)  # a source legend only when there are sources to tell apart


def _drawn_values(ax):
    """What a per-method figure draws: the y of every point, of every solid (same-images) mean line and of every
    dashed (full-set) mean line."""
    from matplotlib.collections import LineCollection, PathCollection

    points = [float(y) for c in ax.collections if isinstance(c, PathCollection) for _, y in c.get_offsets()]
    solid, dashed = [], []
    for c in ax.collections:
        if isinstance(c, LineCollection):
            ys = [float(seg[0][1]) for seg in c.get_segments()]
            (dashed if c.get_linestyles()[0][1] else solid).extend(ys)
    return sorted(points), sorted(solid), sorted(dashed)


def test_psnr_per_method_compares_every_row_on_the_images_ours_covers(tmp_path):
    # ours covers 2 of the 3 images; the released rows have all 3, the third far off (a mean over it would show)
    rows = [{"method": "dip", "source": "ours", "image": i, "psnr": p} for i, p in (("a", 30.0), ("b", 32.0))]
    rows += [{"method": "dip", "source": "released", "image": i, "psnr": p} for i, p in (("a", 29.0), ("b", 31.0),
                                                                                          ("c", 45.0))]
    rows += [{"method": "nlm", "source": "released", "image": i, "psnr": p} for i, p in (("a", 27.0), ("b", 28.0),
                                                                                          ("c", 40.0))]
    frame = pd.DataFrame(rows)
    points, means = figures.psnr_per_method_data(frame)
    assert set(points["image"]) == {"a", "b"}
    assert means == {("dip", "ours"): 31.0, ("dip", "released"): 30.0, ("nlm", "released"): 27.5}
    full = {("dip", "released"): 35.0, ("nlm", "released"): 95 / 3}  # the full-set means, drawn apart
    fig = figures.plot_psnr_per_method(frame, tmp_path / "p.png", full_means=full, n_all=3)
    (ax,) = fig.axes
    drawn, solid, dashed = _drawn_values(ax)
    assert drawn == [27.0, 28.0, 29.0, 30.0, 31.0, 32.0]  # no point of the third image
    assert solid == [27.5, 30.0, 31.0]  # every row's mean over the same 2 images
    assert dashed == pytest.approx(sorted(full.values()))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mean, 2 of 3 images" in labels and "mean, all 3 images" in labels  # labelled apart
    assert {"30.00", "31.00", "35.00"} <= {t.get_text() for t in ax.texts}


def test_psnr_per_method_names_each_slot_and_averages_seeds(tmp_path):
    frame = pd.DataFrame([{"method": "dip", "source": "ours", "image": i, "psnr": p}
                          for i, p in (("a", 30.0), ("a", 31.0), ("b", 32.0))]  # a: two seeds
                         + [{"method": "dip", "source": "released", "image": i, "psnr": 30.0} for i in "ab"])
    fig = figures.plot_psnr_per_method(frame, tmp_path / "p.png", given_means={("dip", "paper"): 29.9})
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels(minor=True)] == ["ours", "released", "paper"]
    drawn, solid, _ = _drawn_values(ax)
    assert drawn == [30.0, 30.0, 30.5, 32.0] and solid == [29.9, 30.0, 31.25]


def test_curve_legends_stay_off_the_curves(tmp_path):
    hist = _history(200, 5)
    for fig in (figures.plot_learning_curves({k: hist for k in LEARNING_CURVE_KINDS}, tmp_path / "a.png"),
                figures.plot_psnr_curves({"a": hist, "b": hist}, tmp_path / "b.png", reference={"a": 20.0})):
        renderer = _drawn(fig)
        (ax,) = fig.axes
        legends = [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
        assert legends
        for legend in legends:
            assert not _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer))


def test_the_psnr_curves_legend_says_what_each_line_is(tmp_path):
    fig = figures.plot_psnr_curves({"a": _history(20), "b": _history(20)}, tmp_path / "b.png", reference={"a": 20.0})
    (ax,) = fig.axes
    legends = [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
    texts = {t.get_text() for legend in legends for t in legend.get_texts()}
    assert {"a", "b", "raw output", "averaged output", "best returned output", "noisy input"} <= texts


def test_the_best_marker_sits_on_the_returned_output(tmp_path):
    # an averaged fit returns its averaged output: the dot marks that curve's best, not the raw curve's
    hist = [{"step": s, "psnr_gt": 30.0 - abs(s - 5) / 10, "psnr_gt_avg": 32.0 - abs(s - 15) / 10} for s in range(20)]
    raw = [{**h, "psnr_gt_avg": None} for h in hist]
    for history, best in ((hist, (16, 32.0)), (raw, (6, 30.0))):
        fig = figures.plot_psnr_curves({"a": history}, tmp_path / "c.png", title="Denoising on the photos, sigma = 25")
        (ax,) = fig.axes
        dots = [(float(x), float(y)) for line in ax.lines if line.get_marker() == "o"
                for x, y in zip(line.get_xdata(), line.get_ydata())]
        assert dots == [best]
        assert ax.get_title() == "Denoising on the photos, sigma = 25"


def test_a_plot_leaves_the_global_style_alone(tmp_path, photo64):
    """Seaborn's theme applies to its figure only: an image grid drawn afterwards in the same process looks the same
    as one drawn first."""
    with matplotlib.rc_context():  # matplotlib's defaults for this test (earlier tests may have left others)
        matplotlib.rcdefaults()
        before = dict(matplotlib.rcParams)
        figures.plot_learning_curves({"image": _history(10)}, tmp_path / "a.png")
        figures.plot_psnr_per_method(_metrics(), tmp_path / "b.png")
        after = dict(matplotlib.rcParams)
    changed = {k for k in before if str(before[k]) != str(after[k])} - {"backend", "backend_fallback"}  # Agg: ours
    assert not changed, sorted(changed)


def test_a_figure_rendered_twice_is_the_same_file(tmp_path):
    # Re-rendering the report's figures from the same results must not change committed files (a PDF's creation date
    # would, every time).
    import time

    import matplotlib.pyplot as plt

    paths = []
    for run in range(2):
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [20.0, 25.0, 27.5])
        png, pdf = tmp_path / f"{run}.png", tmp_path / f"{run}.pdf"
        figures.save_figure(fig, png, pdf)
        paths.append((png, pdf))
        time.sleep(1.1)  # the creation date has a resolution of one second
    (png0, pdf0), (png1, pdf1) = paths
    assert pdf0.read_bytes() == pdf1.read_bytes()
    assert png0.read_bytes() == png1.read_bytes()


def test_a_grid_of_many_photos_stays_under_a_megabyte(tmp_path):
    from tests.helpers import crop_photo

    photos = [crop_photo(name, 256) for name in ("astronaut", "chelsea", "coffee", "rocket", "astronaut")]
    rows = [{"image": f"img{i}", "panels": [(f"m{j}\\n{20 + j:.1f} dB", np.roll(p, 7 * j, axis=1)) for j in range(4)]}
            for i, p in enumerate(photos)]
    png, pdf = tmp_path / "grid.png", tmp_path / "grid.pdf"
    figures.plot_grid(rows, png, pdf, title="five rows")
    assert png.stat().st_size < 2**20 and pdf.stat().st_size < 2**20
