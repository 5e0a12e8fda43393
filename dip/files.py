"""Writing files so that a reader (or a re-run after a crash) never sees half of one (torch-free).

Every file the library writes (images, JSON records, tables, figures, checkpoints) goes through
:func:`atomic_write`: the content is written to a hidden temporary file in the destination folder, flushed to disk
and moved into place with :func:`os.replace`, so the path holds either the old file or the complete new one; on any
error the temporary file is removed and nothing new is left at the path.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dip.errors import CannotWrite

__all__ = ["atomic_write", "write_json", "json_default"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path`` for writing (``"wb"`` or ``"w"``); move it to ``path`` on success.

    Missing parent folders are created. The file gets the permissions a normally created file would (the umask
    decides; ``mkstemp`` would leave it readable by its owner only). A write that fails for a reason the user fixes
    (a full disk, a folder not writable) raises :class:`~dip.errors.CannotWrite`, one line naming ``path``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write opens files for writing ('wb' or 'w'), not {mode!r}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        failed = CannotWrite.of(exc, path)
        if failed is not None and failed is not exc:
            raise failed from None
        raise


def json_default(obj: Any) -> Any:
    """JSON for the values records hold besides plain ones: numpy scalars and arrays, paths; anything else is an error."""
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (NaN and infinities are written as JSON allows: ``NaN``)."""
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=1, default=json_default, allow_nan=True)
    return Path(path)
