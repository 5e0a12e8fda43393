"""Stage 1 of the data path: benchmark sets and embedded photos (:mod:`~dip.data.benchmarks`), the download manifest
and the downloads (:mod:`~dip.data.manifest`), image files (:mod:`~dip.data.imageio`) and the synthetic degradations
that make a task's input (:mod:`~dip.data.degrade`)."""
