"""benchmarks/bench_family.py: every method's comparison case runs (``--tiny``) and prints ours, the authors' number
where one was checked, and the gap."""

from __future__ import annotations

import math

import pytest

from benchmarks import bench_family


def test_each_case_names_its_source_and_the_dd_number_is_the_notebooks():
    assert set(bench_family.CASES) == {"dd", "dip-tv", "sgld", "drp", "sure"}
    dd = bench_family.CASES["dd"]
    assert dd.authors_psnr == pytest.approx(10 * math.log10(1 / 0.001325)) and "0.001325" in dd.source
    for case in bench_family.CASES.values():
        assert case.source and (case.authors_psnr is not None or "ours only" in case.source)


@pytest.mark.slow(seconds=12)
def test_tiny_runs_every_case_and_prints_the_gap(capsys):
    assert bench_family.main(["--tiny", "--device", "cpu", "--methods", "dd", "sgld", "sure"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:4]]
    assert [row[0] for row in rows] == ["dd", "sgld", "sure"]
    ours, authors, gap = (float(v) for v in rows[0][-4:-1])
    assert authors == pytest.approx(28.78, abs=0.01) and gap == pytest.approx(ours - authors, abs=0.011)
    assert rows[1][-3:-1] == ["n/a", "n/a"] and 0 < float(rows[2][-4]) < 60
