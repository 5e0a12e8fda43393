"""Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018) as a library.

The data path: :mod:`dip.datasets` -> :mod:`dip.degrade` -> :mod:`dip.fit` (with :mod:`dip.models` and
:mod:`dip.physics`) -> :mod:`dip.metrics` -> :mod:`dip.tables` / :mod:`dip.figures`.
"""

__version__ = "0.1.0"
