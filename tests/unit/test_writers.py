"""dip.eval.writers: a paper table as Markdown (its caption a paragraph above it), LaTeX (booktabs, escaped) and CSV
(numbers stay numbers, the seed counts a row of their own)."""

from __future__ import annotations

import pandas as pd

from dip.eval import tables, writers
from tests.helpers import PAPER_NUMBERS, gray11_scores


def test_writers(tmp_path):
    reported, _, _ = tables.load_paper_numbers(PAPER_NUMBERS)
    table = tables.results_table(gray11_scores(), reported, "gray11", "inpaint", 0.5)
    caption = tables.table_caption("gray11", "inpaint", 0.5, table)
    writers.write_table(table, md=tmp_path / "t.md", tex=tmp_path / "t.tex", csv=tmp_path / "t.csv",
                       caption=caption, label="tab:x")
    md = (tmp_path / "t.md").read_text()
    assert md.startswith(caption + "\n\n|")  # a plain paragraph, not one bold block
    assert "| method | source | Barbara | Boat | mean, 2 of 11 images | mean, all 11 images |" in md
    assert "| DIP | paper | 32.22 | 33.06 | 32.64 | 33.48 |" in md
    tex = (tmp_path / "t.tex").read_text()
    assert r"\begin{tabular}{llrrrr}" in tex and r"\label{tab:x}" in tex and "50\\% of the pixels" in tex
    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv.columns) == ["method", "source", "Barbara", "Boat", "mean, 2 of 11 images", "mean, all 11 images"]
    assert len(csv) == len(table) + 1  # and the seed counts of the DIP spread row


def test_latex_escapes():
    assert writers._tex("a_b & 50% #1") == r"a\_b \& 50\% \#1"
