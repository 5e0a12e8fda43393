"""Writing a table frame (:mod:`dip.eval.tables`) as Markdown, LaTeX (booktabs) and CSV, each atomically: the index
levels become the first columns, numbers are written with ``digits`` decimals, a missing value as "–", and a seed
spread's cells with their seed counts ("0.10 (n=3)"; in the CSV a row of their own). No optional pandas extras are
needed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dip.files import atomic_write

__all__ = ["SEED_COUNT", "to_markdown", "to_latex", "write_table"]

SEED_COUNT = "ours, seeds"  # the source of a row of seed counts: a row of the CSV only (write_table)


def _fmt(value, digits: int = 2) -> str:
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _cells(table: pd.DataFrame, digits: int) -> list[list[str]]:
    """Each row of ``table`` as text: index levels, then its values; a seed-spread cell with its seed count,
    "0.05 (n=3)" (``table.attrs["seed_counts"]``)."""
    counts = table.attrs.get("seed_counts") or {}
    out = []
    for key, row in table.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        n = counts.get(key, {})
        cells = [_fmt(v, digits) + (f" (n={n[c]})" if c in n and _fmt(v, digits) != "–" else "")
                 for c, v in zip(table.columns, row.to_numpy())]
        out.append([str(k) for k in key] + cells)
    return out


def to_markdown(table: pd.DataFrame, caption: str | None = None, digits: int = 2, notes: list[str] = ()) -> str:
    """A GitHub-flavoured Markdown table (index levels become the first columns), its caption above it and its notes
    (what a row is, where it comes from) below."""
    names = [n or "" for n in table.index.names]
    header = names + [str(c) for c in table.columns]
    lines = []
    if caption:
        lines += [caption, ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([" --- "] * len(names) + [" ---: "] * len(table.columns)) + "|")
    for cells in _cells(table, digits):
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex(text) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text)).replace("–", "--")


def to_latex(table: pd.DataFrame, caption: str | None = None, label: str | None = None, digits: int = 2,
             notes: list[str] = ()) -> str:  # fmt: skip
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``); ``notes`` in small type under the
    tabular."""
    names = [n or "" for n in table.index.names]
    spec = "l" * len(names) + "r" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_tex(h) for h in names + [str(c) for c in table.columns]) + r" \\")
    lines.append(r"\midrule")
    for cells in _cells(table, digits):
        lines.append(" & ".join(_tex(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(r"\par\footnotesize " + " ".join(_tex(note) for note in notes))
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _write_text(path, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def _with_seed_counts(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a row ``(method, "ours, seeds")`` of seed counts after each seed-spread row (the CSV's numeric
    form of the "(n=3)" the Markdown and LaTeX cells carry)."""
    counts = table.attrs.get("seed_counts") or {}
    if not counts:
        return table
    rows = []
    for key, row in table.iterrows():
        rows.append((key, row))
        if key in counts:
            rows.append(((key[0], SEED_COUNT), pd.Series(counts[key], dtype=float).reindex(table.columns)))
    frame = pd.DataFrame([r for _, r in rows], columns=table.columns)
    frame.index = pd.MultiIndex.from_tuples([k for k, _ in rows], names=table.index.names)
    return frame


def write_table(table: pd.DataFrame, *, md=None, tex=None, csv=None, caption=None, label=None, digits=2,
                notes: list[str] = ()) -> None:  # fmt: skip
    """Write ``table`` to any of Markdown / LaTeX / CSV (each atomically). The CSV keeps every column numeric: a seed
    spread's counts go to a row of their own (``"ours, seeds"``); the notes go to Markdown and LaTeX only."""
    if md is not None:
        _write_text(md, to_markdown(table, caption, digits, notes))
    if tex is not None:
        _write_text(tex, to_latex(table, caption, label, digits, notes))
    if csv is not None:
        _write_text(csv, _with_seed_counts(table).reset_index().to_csv(index=False, float_format="%.4f"))
