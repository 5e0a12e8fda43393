"""Errors the user can act on.

Everything that is wrong with the *input* (a file, a size, a mask, a flag) raises :class:`DipInputError`, whose message
says what was wrong and what to do. The command line maps it to exit code 2 and leaves no output behind.
"""


class DipInputError(ValueError):
    """Bad input that the user can fix (unreadable image, mismatched mask, factor that does not divide, ...)."""

    exit_code = 2
