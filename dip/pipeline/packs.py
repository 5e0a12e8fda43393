"""Packing DIP fits into shared jobs (``pack_fits`` in the workflow config), torch-free.

Fits whose inputs have one shape can run together in one process (:func:`dip.restore.restore_many`, one kernel for
all of them); which fits share a job is planned here, before anything is downloaded or fitted.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from dip.errors import DipInputError

__all__ = ["plan_packs"]


def plan_packs(fits: Sequence[tuple[Hashable, Hashable | None]], max_fits: int) -> list[list[Hashable]]:
    """Group fits into packs: fits of one size together, at most ``max_fits`` per pack.

    fits: ``(fit, size)`` pairs in a stable order; ``size`` is anything that is equal for fits whose inputs have one
        shape (e.g. the source image's (width, height)), or None when unknown (such a fit is never packed).
    Returns the packs of two or more fits, in order of their first fit; a fit left alone is not returned (it runs as a
    lone fit). Packs are balanced: 5 fits of one size with ``max_fits=4`` give packs of 3 and 2, not 4 and 1.
    """
    if max_fits < 1:
        raise DipInputError(f"max_fits must be >= 1, got {max_fits}")
    by_size: dict[Hashable, list[Hashable]] = {}
    for fit, size in fits:
        if size is not None:
            by_size.setdefault(size, []).append(fit)
    packs = []
    for members in by_size.values():
        n_packs = math.ceil(len(members) / max_fits)
        base, extra = divmod(len(members), n_packs)
        start = 0
        for i in range(n_packs):
            end = start + base + (1 if i < extra else 0)
            if end - start >= 2:
                packs.append(members[start:end])
            start = end
    return packs
