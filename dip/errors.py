"""Errors the user can act on.

Everything that is wrong with the *input* (a file, a size, a mask, a flag) raises :class:`DipInputError`, whose message
says what was wrong and what to do. The command line maps it to exit code 2 and leaves no output behind.
"""

from __future__ import annotations

import os
from pathlib import Path

# What to do about a damaged file that someone handed in (an image to restore, a mask, a benchmark file).
USER_FILE_REMEDY = "re-export or re-download it"


class DipInputError(ValueError):
    """Bad input that the user can fix (unreadable image, mismatched mask, factor that does not divide, ...)."""

    exit_code = 2


class DamagedFile(DipInputError):
    """A file that is there but cannot be read whole: truncated or corrupted (a full disk, an interrupted copy).

    ``what`` names the kind of file (``image``, ``record``, ``score file``); ``remedy`` is what to do about it, which
    depends on where the file came from: :data:`USER_FILE_REMEDY` for a file someone handed in, and for a file the
    workflow made, :data:`dip.pipeline.faults.WORKFLOW_REMEDY` (see :meth:`with_remedy`).
    """

    def __init__(self, path: str | os.PathLike, what: str, reason: str, remedy: str = USER_FILE_REMEDY):
        self.path, self.what, self.reason, self.remedy = Path(path), what, " ".join(str(reason).split()), remedy
        super().__init__(f"cannot read {what} {path}: the file is damaged or truncated ({self.reason}); {remedy}")

    def __reduce__(self):  # whole across processes (a worker's error reaches its parent as itself)
        return type(self), (self.path, self.what, self.reason, self.remedy)

    def with_remedy(self, remedy: str) -> "DamagedFile":
        return DamagedFile(self.path, self.what, self.reason, remedy)
