"""The speed, memory and quality benchmarks (scripts, run by path) and :mod:`benchmarks.gpu`, the phases of the GPU
reproduction script ``benchmarks/gpu_reproduce.py``."""
