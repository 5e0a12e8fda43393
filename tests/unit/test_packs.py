"""Packing DIP fits into shared jobs (dip.pipeline.packs): fits of one size together, balanced."""

from __future__ import annotations

import pytest

from dip.errors import DipInputError
from dip.pipeline.packs import plan_packs


def test_plan_packs_groups_one_size_and_balances():
    fits = [
        (("a", 0), (64, 64, 3)),
        (("b", 0), (64, 64, 3)),
        (("c", 0), (32, 32, 3)),
        (("d", 0), (64, 64, 3)),
        (("e", 0), None),
        (("f", 0), (64, 64, 3)),
        (("g", 0), (64, 64, 3)),
        (("h", 0), (64, 64, 1)),
    ]
    packs = plan_packs(fits, 4)
    # five 64x64x3 fits -> 3 + 2 (not 4 + 1); the lone 32 px, grey and unknown-size fits stay lone fits
    assert packs == [[("a", 0), ("b", 0), ("d", 0)], [("f", 0), ("g", 0)]]
    assert plan_packs(fits, 1) == []
    assert [len(p) for p in plan_packs([(i, "s") for i in range(9)], 4)] == [3, 3, 3]
    with pytest.raises(DipInputError, match="max_fits"):
        plan_packs(fits, 0)
