"""Errors the user can act on.

Everything that is wrong with the *input* (a file, a size, a mask, a flag) raises :class:`DipInputError`, whose message
says what was wrong and what to do. The command line maps it to exit code 2 and leaves no output behind.
"""

from __future__ import annotations

import errno
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


# The causes of a failed write that the user fixes (a full disk or quota; a folder they may not write), and how.
WRITE_REMEDIES = {
    errno.ENOSPC: "free space on that disk (or choose another place) and run again",
    errno.EDQUOT: "free space within your quota (or choose another place) and run again",
    errno.EACCES: "make that folder writable (or choose another place) and run again",
    errno.EPERM: "make that folder writable (or choose another place) and run again",
    errno.EROFS: "that file system is read-only: choose another place and run again",
}


class CannotWrite(DipInputError, OSError):
    """A file that could not be written for a reason the user fixes (:data:`WRITE_REMEDIES`: a full disk, a folder
    not writable): one line naming the file, the cause and the fix. Also an :class:`OSError` with the cause's errno,
    so code that handles a failed write as such still does."""

    def __init__(self, path: str | os.PathLike, cause: OSError):
        self.path, self.cause = Path(path), cause
        OSError.__init__(self, cause.errno, cause.strerror)
        self.args = (f"cannot write {path}: {cause.strerror or cause}; {WRITE_REMEDIES.get(cause.errno, 'run again')}",)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.path, OSError(self.cause.errno, self.cause.strerror))

    @staticmethod
    def of(exc: BaseException, path: str | os.PathLike | None = None) -> "CannotWrite | None":
        """``exc`` as a :class:`CannotWrite` of ``path`` (default: the file the error names), or None when it is not
        a failed write the user fixes."""
        if isinstance(exc, CannotWrite):
            return exc
        if isinstance(exc, OSError) and exc.errno in WRITE_REMEDIES:
            where = path if path is not None else (exc.filename or "a file")
            return CannotWrite(where, exc)
        return None
