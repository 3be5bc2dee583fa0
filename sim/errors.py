"""Errors that the CLI turns into one line and exit status 2 (no traceback)."""


class FragsimError(Exception):
    """Bad input: a file, a key or a value the user can fix.

    The message is complete on its own, in the house form
    ``FILE: KEY-OR-LINE: expected ..., got ...``.
    """

    exit_code = 2
