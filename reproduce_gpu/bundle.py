"""Bundles: what a lent GPU machine can send back (at most 8 files of at most 16 MiB, no sub-folder), and unpacking
them here into the workflow's results folder with its mtimes in the workflow's order."""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

from reproduce_gpu.common import Run

RESULT_TREES = ("inputs", "restored", "scores")  # the workflow layout, in the order its files were made
KEEP_AT_TOP = ("summary.md", "facts.txt", "cuda-tests.log")
PART_BYTES = 15 * 2**20  # a returned file may hold 16 MiB
MAX_RESULT_BYTES = 4 * PART_BYTES  # at most 8 files come back: 3 at the top, the records, 4 parts


def bundle_run(run: Run) -> None:
    """The bundle phase (``--bundle``): :func:`bundle`, its notes added to summary.md."""
    run.log.path = None  # run.log goes into the records
    notes = bundle(run.out, run.log)
    if notes:
        with open(run.out / "summary.md", "a") as fh:
            fh.write("\n" + "\n".join(f"Note: {n}." for n in notes) + "\n")


def _tree_files(out: Path, skip_bicubic: bool = False) -> list[Path]:
    files = []
    for top in RESULT_TREES:
        for path in sorted((out / top).rglob("*")):
            if path.suffix in (".ckpt", ".tmp") or not path.is_file():
                continue
            if not (skip_bicubic and "bicubic" in path.relative_to(out).parts):
                files.append(path)
    return files


def _tar_bytes(files: list[Path]) -> int:
    """The size of a tar of ``files``: a 512-byte header per file, contents padded to 512 bytes, the end blocks."""
    return sum(512 + -(-f.stat().st_size // 512) * 512 for f in files) + 10240


def bundle(out: Path, log) -> list[str]:
    """Pack ``out`` into at most 8 files of at most 16 MiB, none in a sub-folder (what a lent machine returns):
    summary.md, facts.txt, cuda-tests.log at the top; ``records.tar.gz`` (logs, JSON records, the benchmark, the
    config layer); ``results.tar.000``, ``.001``, ... the parts of one tar of inputs/, restored/, scores/ (the
    workflow layout; ``--unpack`` joins them). If the results outgrow 4 parts, the bicubic outputs (which the
    workflow remakes in seconds) stay behind. Everything else under ``out`` is removed. Returns notes."""
    notes = []
    files = _tree_files(out)
    if _tar_bytes(files) > MAX_RESULT_BYTES:
        files = _tree_files(out, skip_bicubic=True)
        notes.append("bicubic outputs left out of the bundle (the workflow's baseline rule remakes them)")
    tar_path = out / "results.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(out)))
    with open(tar_path, "rb") as src:
        n = 0
        while chunk := src.read(PART_BYTES):
            (out / f"results.tar.{n:03d}").write_bytes(chunk)
            n += 1
    tar_path.unlink()
    keep = {*KEEP_AT_TOP, *(f"results.tar.{i:03d}" for i in range(n))}
    with tarfile.open(out / "records.tar.gz", "w:gz") as tar:
        for path in sorted(out.iterdir()):
            if path.name not in keep and path.name not in RESULT_TREES and path.name != "tiny-inputs":
                tar.add(path, arcname=path.name)
    for path in list(out.iterdir()):
        if path.name not in keep and path.name != "records.tar.gz":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    size = sum(p.stat().st_size for p in out.iterdir())
    log(f"bundled: {len(list(out.iterdir()))} files, {size / 2**20:.1f} MiB ({n} results part(s))")
    return notes


class _Joined:
    """Files read one after another as one stream."""

    def __init__(self, paths):
        self.handles = [open(p, "rb") for p in paths]

    def read(self, size=-1):
        data = b""
        while self.handles and (size < 0 or len(data) < size):
            chunk = self.handles[0].read(-1 if size < 0 else size - len(data))
            if not chunk:
                self.handles.pop(0).close()
                continue
            data += chunk
        return data


def unpack(src: Path, dest: Path) -> int:
    """Join ``src/results.tar.*`` and extract it into ``dest`` (e.g. results/paper), then give its files mtimes in
    the order the workflow makes them (inputs, restored, scores: each later than the one before, all later than the
    benchmark files), so that ``snakemake --rerun-triggers mtime`` takes them as up to date. ``records.tar.gz`` is
    extracted into ``src/records/``."""
    parts = sorted(src.glob("results.tar.[0-9][0-9][0-9]"))
    if not parts:
        print(f"no results.tar.NNN in {src}", file=sys.stderr)
        return 2
    extract = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    with tarfile.open(fileobj=_Joined(parts), mode="r|") as tar:
        for member in tar:
            tar.extract(member, dest, **extract)
            names.append(member.name)
    now = time.time()
    for name in names:
        order = RESULT_TREES.index(Path(name).parts[0]) if Path(name).parts[0] in RESULT_TREES else 0
        os.utime(dest / name, (now + order, now + order))
    if (src / "records.tar.gz").is_file():
        with tarfile.open(src / "records.tar.gz") as tar:
            tar.extractall(src / "records", **extract)
    counts = {top: sum(1 for n in names if n.startswith(top + "/")) for top in RESULT_TREES}
    print(f"unpacked {len(names)} files into {dest} ({', '.join(f'{n} {k}' for k, n in counts.items())})")
    return 0
