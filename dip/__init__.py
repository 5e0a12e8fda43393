"""Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018) as a library.

The data path: :mod:`dip.data.benchmarks` -> :mod:`dip.data.degrade` -> :mod:`dip.fit` (with :mod:`dip.nets.networks` and
:mod:`dip.physics`) -> :mod:`dip.eval.metrics` -> :mod:`dip.eval.tables` / :mod:`dip.eval.figures`.
"""

__version__ = "0.1.0"
