"""Faults around a workflow job, as the job runner meets them (:mod:`dip.pipeline.jobs.runner`); torch-free.

* **Damaged workflow outputs.** A file the workflow made (anything under the config's ``results_dir``: restored
  images, fit records, score files) that is truncated or corrupted since (a full disk elsewhere, an interrupted copy)
  fails the job that reads it with one line that names the file and the fix, :data:`WORKFLOW_REMEDY`, before the job
  does anything (:func:`check_workflow_files`). The library writes every file atomically (:mod:`dip.files`), so a
  job killed or out of disk space never leaves half a file behind itself.
* **One line for what the user acts on** (:func:`failure_line`): a bad or damaged input, an interrupted fit. No
  traceback: those are for bugs.
* **No orphans** (:func:`watch_parent`): a job whose Snakemake is gone (SIGKILL, the out-of-memory killer) gets
  SIGTERM, so a fit writes its checkpoint and stops instead of racing the re-run (which would otherwise start a second
  process writing the same outputs); the re-run resumes from that checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from dip.errors import USER_FILE_REMEDY, CannotWrite, DamagedFile, DipInputError

__all__ = ["WORKFLOW_REMEDY", "check_workflow_files", "check_file", "failure_line", "report", "watch_parent",
           "ParentWatch"]

# What to do about a damaged file that the workflow made.
WORKFLOW_REMEDY = "delete it and re-run: the workflow rebuilds it"

# The kinds of workflow output a job may read, by suffix, as its messages name them.
KINDS = {".png": "image", ".json": "record", ".csv": "score file"}
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every PNG ends with


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_file(path: str | os.PathLike) -> None:
    """Raise :class:`~dip.errors.DamagedFile` (with :data:`WORKFLOW_REMEDY`) if the image, record or score file at
    ``path`` cannot be read whole: a PNG that does not decode or lacks its end chunk, a JSON record that does not parse,
    a CSV whose rows do not all have the header's columns or that does not end with a line break (every writer ends
    it with one: a file cut short mid-row is caught, one cut exactly at a row's end cannot be told apart). Files of
    other kinds are not checked."""
    path = Path(path)
    what = KINDS.get(path.suffix.lower())
    if what is None or not path.is_file():
        return
    try:
        if what == "image":
            from PIL import Image

            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
            if img.format == "PNG" and not data.endswith(PNG_END):
                raise ValueError("it ends before the PNG's end chunk")
        elif what == "record":
            json.loads(path.read_text(encoding="utf-8"))
        else:
            _check_csv(path)
    except Exception as exc:  # noqa: BLE001 -- every decoder has its own errors; all mean the same here
        raise DamagedFile(path, what, f"{type(exc).__name__}: {exc}", WORKFLOW_REMEDY) from None


def _check_csv(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        raise ValueError("it ends in the middle of a row" if text else "it is empty")
    rows = list(csv.reader(io.StringIO(text)))
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise ValueError(f"row {number} has {len(row)} of the header's {width} columns")


def check_workflow_files(paths: Iterable[str | os.PathLike], results_dir: str | os.PathLike) -> list[Path]:
    """Check the files among ``paths`` (a job's inputs) that the workflow made -- those under ``results_dir`` -- with
    :func:`check_file`, and the files directly inside a folder among them (a pack's folder); returns those checked.
    The first damaged one raises :class:`~dip.errors.DamagedFile`, naming it and :data:`WORKFLOW_REMEDY`."""
    folder, checked = Path(results_dir), []
    for path in map(Path, paths):
        if not _is_under(path, folder):
            continue
        for file in sorted(path.iterdir()) if path.is_dir() else [path]:
            if file.suffix.lower() in KINDS and file.is_file():
                try:
                    check_file(file)
                except DamagedFile as exc:
                    if file != path:  # inside a folder the workflow made as one output: that folder is rebuilt
                        raise DamagedFile(file, exc.what, exc.reason,
                                          f"it is part of {path}: delete that folder and re-run: the workflow rebuilds "
                                          "it") from None  # fmt: skip
                    raise
                checked.append(file)
    return checked


def failure_line(exc: BaseException, results_dir: str | os.PathLike | None = None) -> tuple[str, int] | None:
    """``(line, exit code)`` for a job that failed with an error the user acts on, or None for any other (a bug: its
    traceback is wanted). A bad input (:class:`~dip.errors.DipInputError`; a damaged file under ``results_dir`` gets
    :data:`WORKFLOW_REMEDY`) exits 2; a fit stopped by SIGTERM after writing its checkpoint
    (:class:`~dip.fit.config.FitInterrupted`) exits 143. A write that failed for a reason the user fixes (a full disk, a
    folder not writable: :class:`~dip.errors.CannotWrite`) is a bad input too, naming the file and the cause."""
    from dip.fit.config import FitInterrupted  # torch-free

    if isinstance(exc, DamagedFile) and exc.remedy == USER_FILE_REMEDY and results_dir is not None:
        if _is_under(exc.path, Path(results_dir)):  # read by the job's body, not among its checked inputs
            exc = exc.with_remedy(WORKFLOW_REMEDY)
    failed = CannotWrite.of(exc)  # a full disk, a folder not writable: the file and the cause
    if failed is not None:
        exc = failed
    if isinstance(exc, FitInterrupted):
        return f"{type(exc).__name__}: {exc}; run the same command again to resume", exc.exit_code
    if isinstance(exc, DipInputError):
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}", exc.exit_code
    return None


def report(exc: BaseException, results_dir: str | os.PathLike | None = None, *, to_log: bool = True) -> int | None:
    """Write :func:`failure_line`'s line for ``exc`` -- to stdout (the job's log) and to the real stderr (Snakemake's
    output) when ``to_log``, else to stderr only -- and return its exit code; None (nothing written) for a bug. A log
    that cannot take the line (the disk filled up) leaves it on stderr alone."""
    failed = failure_line(exc, results_dir)
    if failed is None:
        return None
    line, code = failed
    if to_log:
        with contextlib.suppress(OSError):
            print(line, file=sys.stdout, flush=True)
    print(line, file=sys.__stderr__, flush=True)
    return code


class ParentWatch:
    """Polls, in a daemon thread, whether the process that started this one (Snakemake) is still there; when it is
    gone, writes one line and sends this process SIGTERM (a fit: checkpoint, then exit 143; any other job: exit).

    The watched process is the parent, or the first ancestor that is not a shell (a shell between Snakemake and the
    job outlives a killed Snakemake). Gone means: this process was re-parented (to init or a subreaper), or the
    watched ancestor no longer exists (Linux: its /proc entry, with its start time, so a reused pid is not it).
    """

    SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"})

    def __init__(self, interval: float = 1.0, signum: int = signal.SIGTERM, *, starter: str = "Snakemake",
                 rerun: str = "the same snakemake command"):
        self.interval, self.signum, self.starter, self.rerun = interval, signum, starter, rerun
        self.parent = os.getppid()
        self.watched, self.started = self._watched(self.parent)
        self.gone = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dip-parent-watch", daemon=True)

    @staticmethod
    def _stat(pid: int) -> tuple[str, int, str] | None:
        """(command name, parent pid, start time) of ``pid`` from /proc; None where there is no such entry."""
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        return name, int(rest[1]), rest[19]

    def _watched(self, pid: int) -> tuple[int, str | None]:
        stat = self._stat(pid)
        while stat is not None and stat[0] in self.SHELLS and stat[1] > 1:
            pid, stat = stat[1], self._stat(stat[1])
        return pid, (stat[2] if stat is not None else None)

    def alive(self) -> bool:
        if os.getppid() != self.parent:
            return False
        if self.started is None:  # no /proc: the parent's pid is all there is to go by
            return True
        stat = self._stat(self.watched)
        return stat is not None and stat[2] == self.started

    def start(self) -> "ParentWatch":
        if self.parent > 1:  # started by init (or already orphaned): nothing to watch
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.alive():
                self.gone.set()
                print(f"dip: the process that started this job (pid {self.watched}, {self.starter}) is gone: "
                      f"stopping (a fit writes its checkpoint first); run {self.rerun} again to resume",
                      file=sys.stderr, flush=True)  # fmt: skip
                os.kill(os.getpid(), self.signum)
                return


def watch_parent(interval: float = 1.0, **names) -> ParentWatch:
    """Start a :class:`ParentWatch` for this job (``python -m dip.pipeline.jobs`` calls it first thing; a benchmark's
    worker processes too, with ``starter`` and ``rerun`` naming their parent and its command)."""
    return ParentWatch(interval, **names).start()
