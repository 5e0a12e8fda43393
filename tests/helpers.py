"""Helpers shared by the test modules (tests import from here, never from each other): tiny photo crops and fit
settings, the benchmark mirror served over HTTP on 127.0.0.1, and a Snakemake runner for the workflow tests."""

from __future__ import annotations

import contextlib
import errno
import functools
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
BIN = Path(sys.executable).parent
# The byte-exact copy of the public benchmark files beside the checkout (tests and CI serve it on loopback).
MIRROR = REPO.parent / "shared" / "benchmark-mirror"
MANIFEST = REPO / "config" / "manifest" / "benchmarks.tsv"  # the committed download manifest


def crop_photo(name: str = "astronaut", size: int = 64, top: int = 0, left: int = 0) -> np.ndarray:
    """A (size, size, C) float32 crop of a scikit-image photo, in [0, 1]."""
    import skimage.data

    img = getattr(skimage.data, name)()
    img = img[top : top + size, left : left + size]
    img = img.astype(np.float32) / 255.0
    return img[..., None] if img.ndim == 2 else img



def save_png(path, img):
    """Write a float [0, 1] (or uint8/uint16) image as an 8-bit PNG with PIL; return the path."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 and arr.dtype != np.uint16:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    Image.fromarray(arr).save(path)
    return path


def tiny_fit_config(**overrides):
    """A 3-level, 16-channel skip net: fits a 64 px image in a few seconds on 2 cores."""
    from dip.fit import FitConfig

    base = dict(
        net="skip",
        net_kwargs=dict(channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3, upsample="bilinear"),
        input_depth=8,
        iterations=30,
        log_every=5,
        device="cpu",
    )
    base.update(overrides)
    return FitConfig(**base)


# --- networks: what the tests of dip.nets, activation checkpointing and the memory estimates share ------------------

NARROW_SKIP = dict(channels_down=[16] * 3, channels_up=[16] * 3, channels_skip=[4] * 3)
# (network, settings, input depth, size): every family, and the skip net's variants that change its structure
# (no 1x1 up-convolutions, no skips, pooled / Lanczos downsampling, zero padding, 5x5 kernels, other activations).
NET_FAMILIES = {
    "skip": ("skip", NARROW_SKIP, 8, 64),
    "skip-library-variants": (
        "skip",
        dict(NARROW_SKIP, need1x1_up=False, upsample="nearest", downsample="lanczos2", kernel_down=5, act="ELU"),
        8,
        96,
    ),
    "skip-zero-pad-maxpool": ("skip", dict(NARROW_SKIP, pad="zero", downsample="max", act="Swish"), 8, 64),
    "encoder_decoder": ("encoder_decoder", dict(depth=3, channels=16), 8, 64),
    "skip_depth2": ("skip_depth2", {}, 4, 64),
    "unet": ("unet", dict(feature_scale=8), 8, 64),
    "unet-batchnorm-concat": (
        "unet",
        dict(feature_scale=4, norm="batch", upsample="bilinear", pad="reflection", concat_x=True, more_layers=1),
        2,
        64,
    ),
    "resnet": ("resnet", dict(num_blocks=3, num_channels=16), 8, 32),
}


def build_family(family: str, seed: int = 0):
    """The network of ``NET_FAMILIES[family]``, built after seeding, and an input ``z`` (1, depth, size, size)."""
    import torch

    from dip.nets import build_net

    name, kwargs, depth, size = NET_FAMILIES[family]
    torch.manual_seed(seed)
    net = build_net(name, depth, 3, **kwargs)
    z = torch.rand(1, depth, size, size, generator=torch.Generator().manual_seed(seed)) * 0.1
    return net, z


def skip_levels(net) -> list:
    """A skip net's levels, outer to inner."""
    out, level = [], net.body
    while level is not None:
        out.append(level)
        level = level.inner
    return out


def convs(module) -> list:
    """The convolutions in ``module``, in order."""
    from torch import nn

    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def forward_once(net, channels: int, height: int, width: int | None = None, seed: int = 0):
    """``net`` on a seeded U(0, 0.1) input of ``channels x height x width`` (square by default), without autograd."""
    import torch

    torch.manual_seed(seed)
    x = torch.rand(1, channels, height, width or height) * 0.1
    with torch.no_grad():
        return net(x)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 -- silence the per-request log lines
        pass


@contextlib.contextmanager
def serve(directory: str | Path):
    """Yield the base URL (``http://127.0.0.1:<port>/``) of ``directory`` served in a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def exe(name):
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def scratch(tmp_path: Path) -> Path:
    """A working directory with config/ linked from the repository."""
    (tmp_path / "config").symlink_to(REPO / "config", target_is_directory=True)
    return tmp_path


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--workflow-profile", "none", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    block = output.split("Job stats:")[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


class CrashAt:
    """A fit hook that simulates a job killed without warning (SIGKILL, node failure) right after step ``step``.

    It has the four hook methods itself (no dip import here, so helpers stay importable without torch)."""

    def __init__(self, step: int):
        self.step = step

    def on_start(self, state):
        pass

    def on_step(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt("simulated kill")

    def on_log(self, state, record):
        pass

    def on_end(self, state):
        pass


# --- scores and the paper's numbers (the eval tests) ----------------------------------------------------------------

PAPER_NUMBERS = REPO / "config" / "paper_numbers.yaml"


def gray11_scores():
    """A score frame (the columns of dip.eval.scoring.COLUMNS) of inpainting on 2 of the 11 grey images, Barbara and
    Boat: ours (DIP with seeds 0 and 1, biharmonic, the input) and released (DIP, Papyan et al.)."""
    import pandas as pd

    from dip.eval.scoring import COLUMNS

    rows = []
    for image, base in (("barbara", 30.0), ("boat", 32.0)):
        for method, source, delta in (("dip", "ours", 0.0), ("biharmonic", "ours", -2.0), ("dip", "released", 1.0),
                                      ("papyan", "released", -1.0), ("input", "ours", -20.0)):
            for seed in ((0, 1) if (method, source) == ("dip", "ours") else (0,)):
                rows.append({"dataset": "gray11", "image": image, "task": "inpaint", "level": 0.5, "method": method,
                             "source": source, "psnr": base + delta + 0.2 * seed, "ssim": 0.9, "seed": seed,
                             "iterations": 10, "seconds": 1.0})
    return pd.DataFrame(rows, columns=COLUMNS)


# --- the workflow's configs -----------------------------------------------------------------------------------------

TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"

# The paper's other experiments on tiny crops with a handful of steps (layered on TEST_CONFIG: the e2e budget).
_SMALL_NET = dict(channels_down=[8, 8, 8, 8], channels_up=[8, 8, 8, 8], channels_skip=[4] * 4, kernel_down=3,
                  kernel_up=3, upsample="nearest", downsample="avg", pad="zero")
TINY_EXPERIMENTS = {
    "device": "cpu",
    "jpeg": {"crop": 64, "steps": [4, 9], "dip": {"width": 8, "settings": {"log_every": 5}}},
    "inpaint_text": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 6, "log_every": 3}}},
    "inpaint_hole": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 6, "log_every": 3}}},
    "architectures": {"crop": 128, "names": ["depth2", "depth6", "unet", "resnet"], "width": 8, "pad": "zero",
                      "settings": {"iterations": 3, "log_every": 1}},
    "flash": {"crop": 64, "dip": {"width": 8, "settings": {"iterations": 4, "log_every": 2}},
              "bilateral": {"radius": 2}},
    "sr_prior": {"crop": 64, "iterations": 10, "dip": {"width": 8, "settings": {"iterations": 4, "log_every": 2}}},
    "preimage": {"small_cnn": True, "size": 64, "layer": "conv2",
                 "settings": {"iterations": 6, "log_every": 3, "lr": 0.01, "net_kwargs": _SMALL_NET}},
    "early_stopping": {"window": 4, "patience": 4, "check_every": 2,
                       "experiments": [{"dataset": "photos", "task": "denoise"}]},
}


def tiny_experiments_config(workdir: Path, base_url: str = "https://raw.githubusercontent.com/") -> Path:
    """A config file to layer on TEST_CONFIG (``--configfile TEST_CONFIG <it>``): TINY_EXPERIMENTS and a base URL."""
    import yaml

    path = workdir / "tiny_experiments.yaml"
    path.write_text(yaml.safe_dump({"download_base_url": base_url, "paper_experiments": TINY_EXPERIMENTS}))
    return path


def workflow_config(*configfiles: str | Path, **overrides) -> dict:
    """The config a workflow run sees: config/config.yaml (the Snakefile's configfile), then each ``--configfile``
    and the ``--config`` overrides merged as Snakemake merges them, validated against the schema (defaults filled):
    :func:`dip.pipeline.config.load`, the loader the GPU reproduction script uses too."""
    from dip.pipeline.config import load

    return load(*configfiles, **overrides)


def plan_of(*configfiles: str | Path, **overrides):
    """The plan (:func:`dip.pipeline.plan.build_plan`) of :func:`workflow_config`'s config."""
    from dip.pipeline.plan import build_plan

    return build_plan(workflow_config(*configfiles, **overrides))


def dry_run_jobs(output: str) -> dict[tuple[str, tuple[str, ...]], int]:
    """The jobs a dry run lists, as {(rule, sorted outputs): count} (target rules have no outputs). The root
    Snakefile's `default` rule is the plan's `all` (an included file cannot set the default target)."""
    jobs: dict[tuple[str, tuple[str, ...]], int] = {}
    for m in re.finditer(r"^(?:local)?rule (\S+):\n((?:    .*\n?)*)", output, re.M):
        out = re.search(r"^    output: (.*)$", m.group(2), re.M)
        rule = "all" if m.group(1) == "default" else m.group(1)
        key = (rule, tuple(sorted(out.group(1).split(", ") if out else ())))
        jobs[key] = jobs.get(key, 0) + 1
    return jobs


class SigtermAt(CrashAt):
    """A fit hook that sends this process SIGTERM (as SLURM does before preempting a job) right after step ``step``."""

    def on_step(self, state):
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


class PoisonAt(CrashAt):
    """A fit hook that makes the network's weights NaN after step ``step``, as a divergence would."""

    def on_step(self, state):
        if state.step == self.step:
            import torch

            with torch.no_grad():
                for p in state.net.parameters():
                    p.fill_(float("nan"))


def start_snakemake(workdir: Path, *args: str, log: Path) -> subprocess.Popen:
    """Start snakemake as :func:`snakemake` runs it, in the background, in a session of its own (so that a test can
    kill it and its jobs at once, as a node failure would), with stdout and stderr going to ``log``."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--workflow-profile", "none", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def paper_cpu_fits() -> list[tuple[str, str, str, int]]:
    """(dataset, level label, image, seed) of every fit `config/paper-cpu.yaml`'s `only:` names (the committed slice:
    it grows as fits are added, so tests read it rather than a count)."""
    import yaml

    from dip.tasks import level_label

    config = yaml.safe_load((REPO / "config/paper-cpu.yaml").read_text())
    seeds = {e["dataset"]: e.get("seeds") or [0] for e in config["experiments"]}
    fits = []
    for entry in config["only"]:
        d, t, lv, image, *seed = entry.split("/")
        lv = lv if not lv[0].isdigit() else level_label(t, float(lv))
        fits += [(d, lv, image, int(s)) for s in ([seed[0].removeprefix("seed")] if seed else seeds[d])]
    return sorted(fits)


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (Linux /proc; a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, limit: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds or ``limit`` seconds pass; its last value."""
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` (mount's ``size=``) mounted at ``folder`` (made) for the block; the test is skipped where
    none can be mounted (not root, or no mount in this container)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: Path) -> Path:
    """Fill the file system of ``folder`` with a file of zeros until a write fails with ENOSPC; the file's path."""
    filler = folder / "filler"
    with open(filler, "ab", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 512)
    return filler
