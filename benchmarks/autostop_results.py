"""The results file of ``benchmarks/bench_autostop.py`` and its table: one JSON line per finished case (with its whole
logged curve, so that any rule can be replayed later without a fit), appended the moment the case ends, and the
side-by-side table of the gaps to the oracle."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash mid-write: that case runs again
                continue
    return rows


def append_result(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


SHOWN = ("fixed", "auto", "auto_log50", "dp_raw_loss", "dp_wavelet", "dp_tau0.9", "dp_tau1.1", "dp_true_sigma",
         "es_wmv", "es_wmv_avg", "es_emv", "sure", "sv")


def report(rows: list[dict]) -> str:
    """The side-by-side table (gap to the oracle in dB, and the step each candidate returns) and its summary."""
    if not rows:
        return "no finished case yet"
    head = ["case", "image", "preset", "steps", "sigma_hat", "oracle dB (step)"] + [f"{c} gap (step)" for c in SHOWN]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    gaps: dict[str, list[float]] = {c: [] for c in SHOWN}
    for row in rows:
        cand = row["candidates"]
        cells = [row["case"] + row.get("variant", ""), row["image"], row["preset"], str(row["iterations"]),
                 "" if row.get("sigma_hat_255") is None else f"{row['sigma_hat_255']:.1f}",
                 f"{row['oracle']['psnr']:.2f} ({row['oracle']['step']})"]  # fmt: skip
        for c in SHOWN:
            r = cand.get(c)
            if r is None or r.get("gap") is None:
                cells.append("–")
                continue
            gaps[c].append(r["gap"])
            cells.append(f"{r['gap']:.2f} ({r['step']})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| candidate | cases | median gap dB | worst gap dB | mean gap dB |")
    lines.append("|---|---|---|---|---|")
    for c in SHOWN:
        g = gaps[c]
        if g:
            lines.append(f"| {c} | {len(g)} | {statistics.median(g):.2f} | {max(g):.2f} | {statistics.mean(g):.2f} |")
    auto = gaps["auto"]
    if auto:
        big = sum(1 for r in rows if r["size"] >= 256)
        ok = statistics.median(auto) <= 0.5 and max(auto) <= 1.5 and len(auto) >= 12 and big >= 4
        lines.append("")
        lines.append(f"target (>= 12 cases, >= 4 at >= 256 px, auto median <= 0.5 dB, worst <= 1.5 dB): "
                     f"{'met' if ok else 'not met'} ({len(auto)} cases, {big} at >= 256 px)")  # fmt: skip
    return "\n".join(lines)
