"""Shared fixtures: tiny crops of scikit-image's bundled photos (offline) and the benchmark mirror on loopback."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import MIRROR, REPO, crop_photo, serve

# Two threads is what CI has; fixing it keeps timings and CPU results stable between runs. DIP_TEST_THREADS=1 when
# the other core is busy (two multi-threaded processes on two cores slow small fits down many times over).
TEST_THREADS = int(os.environ.get("DIP_TEST_THREADS", "2"))
torch.set_num_threads(TEST_THREADS)
TORCH_SEED = torch.initial_seed()  # what a fresh process starts with

# A time budget for the whole run (`.ci/run` sets DIP_TEST_BUDGET_S; unset or 0: no budget, every test runs). Under a
# budget the slow tests run after all the others, the SLURM ones first (nothing but CI can run them), then the rest
# cheapest first; each starts only if its expected seconds (`@pytest.mark.slow(seconds=N)`, measured on CI's 2 cores)
# still fit, else it is skipped and the skip says so.
TEST_BUDGET_S = float(os.environ.get("DIP_TEST_BUDGET_S") or 0)
SLOW_DEFAULT_S = 60.0
_SESSION_START = time.monotonic()


def _expected_seconds(item) -> float | None:
    """A slow test's expected seconds (its closest `slow` marker's), None for a test not marked slow."""
    marker = item.get_closest_marker("slow")
    if marker is None:
        return None
    return float(marker.kwargs.get("seconds", SLOW_DEFAULT_S))


def pytest_sessionstart(session):
    global _SESSION_START
    _SESSION_START = time.monotonic()


@pytest.hookimpl(trylast=True)  # after pytest-randomly has shuffled: the fast tests keep its random order
def pytest_collection_modifyitems(config, items):
    if not TEST_BUDGET_S:
        return
    fast = [item for item in items if _expected_seconds(item) is None]
    slow = [item for item in items if _expected_seconds(item) is not None]
    slow.sort(key=lambda item: (item.get_closest_marker("slurm") is None, _expected_seconds(item)))
    items[:] = fast + slow


def pytest_runtest_setup(item):
    seconds = _expected_seconds(item)
    if not TEST_BUDGET_S or seconds is None:
        return
    spent = time.monotonic() - _SESSION_START
    if spent + seconds > TEST_BUDGET_S:
        pytest.skip(f"{item.nodeid}: time budget: {spent:.0f} s of DIP_TEST_BUDGET_S={TEST_BUDGET_S:.0f} spent, this test takes "
                    f"~{seconds:.0f} s (make test runs it: no budget)")


@pytest.fixture(autouse=True)
def _isolated_process_state():
    """Every test starts from the same process state and leaves none behind, whatever ran before it (the suite runs
    in random order: pytest-randomly). What the library or a test may change process-wide: torch's thread count (a
    workflow job's ``threads``), the global RNGs of torch, numpy and Python (seeded afresh for each test;
    pytest-randomly reseeds numpy's and Python's from its ``--randomly-seed``), torch's default dtype, grad mode and
    deterministic-algorithm flag, the working directory, the environment and the SIGTERM handler."""
    cwd, environ = os.getcwd(), dict(os.environ)
    dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    deterministic = torch.are_deterministic_algorithms_enabled()
    sigterm = signal.getsignal(signal.SIGTERM)
    rng_torch, rng_numpy, rng_python = torch.get_rng_state(), np.random.get_state(), random.getstate()
    torch.set_num_threads(TEST_THREADS)
    torch.manual_seed(TORCH_SEED)
    np.random.seed(0)
    random.seed(0)
    try:
        yield
    finally:
        torch.set_num_threads(TEST_THREADS)
        torch.set_rng_state(rng_torch)
        np.random.set_state(rng_numpy)
        random.setstate(rng_python)
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        torch.use_deterministic_algorithms(deterministic)
        signal.signal(signal.SIGTERM, sigterm)
        os.chdir(cwd)
        if dict(os.environ) != environ:
            os.environ.clear()
            os.environ.update(environ)


@pytest.fixture
def in_repo(monkeypatch):
    """The repository as the working directory: the configs name the manifest relative to it, as Snakemake runs."""
    monkeypatch.chdir(REPO)


@pytest.fixture
def photo64() -> np.ndarray:
    # The astronaut's face and helmet: textured enough that a prior matters.
    return crop_photo("astronaut", 64, top=60, left=180)


@pytest.fixture
def grey64() -> np.ndarray:
    return crop_photo("camera", 64, top=100, left=200)


@pytest.fixture
def noisy64(photo64) -> np.ndarray:
    """``photo64`` with Gaussian noise of sigma 25 (float, not rounded to 8 bits), seed 0."""
    from dip.data.degrade import add_gaussian_noise

    return add_gaussian_noise(photo64, 25, seed=0)


@pytest.fixture(scope="module")
def clean32() -> np.ndarray:
    """The astronaut's face at 32 px (the centre of ``photo64``'s crop): a tiny net fits it in a few dozen steps."""
    return crop_photo("astronaut", 32, top=60, left=180)


@pytest.fixture(scope="module")
def noisy32(clean32) -> np.ndarray:
    """``clean32`` with strong Gaussian noise, sigma 50 (float, as the authors' notebooks make it), seed 0."""
    from dip.data.degrade import add_gaussian_noise

    return add_gaussian_noise(clean32, 50, seed=0)


@pytest.fixture(scope="module")
def noisy32_8bit(clean32) -> np.ndarray:
    """``noisy32`` rounded to 8 bits, as the released ``*_noisy.png`` files are (what a noise estimate reads)."""
    from dip.data.degrade import add_gaussian_noise

    return add_gaussian_noise(clean32, 50, seed=0, quantize=True)


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not MIRROR.is_dir():
        pytest.skip(f"benchmark mirror not found at {MIRROR}")
    return MIRROR


@pytest.fixture(scope="module")
def mirror_url(mirror):
    """The benchmark mirror served over HTTP on 127.0.0.1: the real download code runs against it."""
    with serve(mirror) as url:
        yield url



@pytest.fixture
def full_disk(tmp_path):
    """A folder on a small tmpfs that is full (:func:`tests.helpers.fill_disk`): every write there fails with ENOSPC,
    while creating an empty file still works, as on a real full disk. Needs root to mount; skipped otherwise (the
    stand-in tests, which make the write fail with ENOSPC, run everywhere)."""
    from tests.helpers import fill_disk, tmpfs

    with tmpfs(tmp_path / "full", "128k") as folder:
        fill_disk(folder)
        yield folder
