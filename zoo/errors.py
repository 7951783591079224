"""The one exception type a user sees as a single line (exit 2), never as a traceback."""


class UsageError(Exception):
    """Bad input from the user: a wrong name, a missing file, a bad path. The message says what to do."""
