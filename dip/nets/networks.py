"""The networks' old import path (``from dip.nets import networks``): the same names as :mod:`dip.nets`."""

from dip.nets import *  # noqa: F401,F403
from dip.nets import __all__  # noqa: F401
