"""The workflow config's checks beyond the schema (torch-free): each mistake ends in one
:class:`~dip.errors.DipInputError` line that says what the config does define.

Datasets and images exist, a benchmark dataset is named after its benchmark and runs its task, levels and baselines
fit the task (:mod:`dip.tasks`), released outputs name benchmarks and their levels, the learning curves' image is in
its dataset, and the manifest has a checksum for every file to download. The planner (:mod:`dip.pipeline.plan`) runs
them before it plans a job. The ``only:``/``select:`` names are checked by :mod:`dip.pipeline.selection`, the
``paper_experiments:`` section by :mod:`dip.pipeline.paper_experiments`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dip.data.benchmarks import BENCHMARKS, EMBEDDED, Benchmark
from dip.data.manifest import Manifest
from dip.errors import DipInputError
from dip.tasks import baselines_for, level_label

__all__ = ["dataset", "benchmark", "images", "check_config", "check_manifest"]


def dataset(datasets: Mapping[str, dict], name: str) -> dict:
    """The entry of dataset ``name`` under ``datasets:``."""
    if name not in datasets:
        raise DipInputError(
            f"config: dataset {name!r} is not defined under `datasets:` (defined: {', '.join(datasets)})"
        )
    return datasets[name]


def benchmark(datasets: Mapping[str, dict], name: str) -> Benchmark | None:
    """The :class:`~dip.data.benchmarks.Benchmark` of a benchmark dataset, None for embedded photos."""
    if dataset(datasets, name)["source"] != "benchmark":
        return None
    if name not in BENCHMARKS:
        raise DipInputError(
            f"config: a benchmark dataset is named after its benchmark; {name!r} is none of {', '.join(BENCHMARKS)}"
        )
    return BENCHMARKS[name]


def images(datasets: Mapping[str, dict], name: str) -> list[str]:
    """The images of a dataset: its `images`, or every image of its benchmark."""
    spec, bench = dataset(datasets, name), benchmark(datasets, name)
    if bench is None:
        if not spec.get("images"):
            raise DipInputError(f"config: embedded dataset {name!r} needs a list of `images`")
        chosen, known = list(spec["images"]), EMBEDDED
    else:
        chosen, known = list(spec.get("images") or bench.images), bench.images
    unknown = [i for i in chosen if i not in known]
    if unknown:
        raise DipInputError(f"config: dataset {name!r}: unknown image(s) {unknown} (known: {', '.join(known)})")
    return chosen


def check_config(
    datasets: Mapping[str, dict], experiments: Sequence[Mapping], released: Mapping[str, list], learning: Mapping | None
) -> None:
    """The experiments (one per dataset and task, levels and baselines that fit it), the released outputs and the
    learning curves of a config."""
    _check_experiments(datasets, experiments)
    _check_released(released)
    if learning:
        _check_learning_curves(datasets, learning)


def _check_experiments(datasets: Mapping[str, dict], experiments: Sequence[Mapping]) -> None:
    seen = set()
    for exp in experiments:
        key = (exp["dataset"], exp["task"])
        if key in seen:
            raise DipInputError(f"config: two experiments for dataset {key[0]!r} and task {key[1]!r}; merge them")
        seen.add(key)
        bench = benchmark(datasets, exp["dataset"])
        images(datasets, exp["dataset"])
        if bench is not None and bench.task != exp["task"]:
            raise DipInputError(f"config: benchmark {bench.name!r} is a {bench.task} benchmark, not {exp['task']}")
        for level in exp["levels"]:
            level_label(exp["task"], level)  # raises on a bad level
            if bench is not None:
                bench.folder(level)
        for name in exp.get("baselines", []):
            if name not in baselines_for(exp["task"]):
                raise DipInputError(
                    f"config: baseline {name!r} does not apply to {exp['task']!r} "
                    f"(it offers {', '.join(baselines_for(exp['task']))})"
                )


def _check_released(released: Mapping[str, list]) -> None:
    for name, levels in released.items():
        if name not in BENCHMARKS:
            raise DipInputError(f"config: released: unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
        for level in levels:
            BENCHMARKS[name].folder(level)


def _check_learning_curves(datasets: Mapping[str, dict], learning: Mapping) -> None:
    name, image = learning["dataset"], learning["image"]
    bench = benchmark(datasets, name)
    known = EMBEDDED if bench is None else bench.images
    if image not in known:
        raise DipInputError(
            f"config: learning_curves: dataset {name!r} has no image {image!r} (known: {', '.join(known)})"
        )


def check_manifest(manifest: Manifest | None, downloads: Iterable[Sequence[str]]) -> None:
    """Every file of ``downloads`` (lists of paths relative to the download base URL) has a checksum."""
    for files in downloads:
        missing = [f for f in files if f not in manifest.checksums]
        if missing:
            raise DipInputError(f"manifest {manifest.path}: no checksum for {missing[:3]} ...")
