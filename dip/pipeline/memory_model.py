"""The planner's import path of the torch-free memory model of a fit, :mod:`dip.fit.memory_model`."""

from dip.fit.memory_model import fit_mem_mb, net_of  # noqa: F401

__all__ = ["fit_mem_mb", "net_of"]
