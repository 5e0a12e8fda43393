"""The speed, memory and quality benchmarks (scripts, run by path) and :mod:`reproduce_gpu`, the phases of the GPU
reproduction script ``reproduce_gpu/run.py``."""
