"""Scores and the paper's numbers (the eval tests)."""

from __future__ import annotations

from tests.helpers.paths import REPO


# --- scores and the paper's numbers (the eval tests) ----------------------------------------------------------------

PAPER_NUMBERS = REPO / "config" / "paper_numbers.yaml"


def gray11_scores():
    """A score frame (the columns of dip.eval.scoring.COLUMNS) of inpainting on 2 of the 11 grey images, Barbara and
    Boat: ours (DIP with seeds 0 and 1, biharmonic, the input) and released (DIP, Papyan et al.)."""
    import pandas as pd

    from dip.eval.scoring import COLUMNS

    rows = []
    for image, base in (("barbara", 30.0), ("boat", 32.0)):
        for method, source, delta in (("dip", "ours", 0.0), ("biharmonic", "ours", -2.0), ("dip", "released", 1.0),
                                      ("papyan", "released", -1.0), ("input", "ours", -20.0)):
            for seed in ((0, 1) if (method, source) == ("dip", "ours") else (0,)):
                rows.append({"dataset": "gray11", "image": image, "task": "inpaint", "level": 0.5, "method": method,
                             "source": source, "psnr": base + delta + 0.2 * seed, "ssim": 0.9, "seed": seed,
                             "iterations": 10, "seconds": 1.0})
    return pd.DataFrame(rows, columns=COLUMNS)
