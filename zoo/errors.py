"""The one exception type a user sees as a single line (exit 2), never as a traceback, and the
wrapper every command line of the project (`zoo`, the compiler adapters, the benchmark apps) uses
to report it."""
import functools
import sys

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """Bad input from the user: a wrong name, a missing file, a bad path. The message says what to do."""


def progress(message):
    """One progress line on stderr (stdout carries the results)."""
    print(message, file=sys.stderr, flush=True)


def one_line_errors(prog, failures=()):
    """Decorator for a command's ``main``: a UsageError becomes ``prog: error: ...`` on stderr and
    exit status 2; an exception of a type in ``failures`` (a tool the command drives failed)
    ``prog: failed: ...`` and exit status 1; Ctrl-C ``prog: interrupted`` and 130."""
    def wrap(main):
        @functools.wraps(main)
        def guarded(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except UsageError as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                return EXIT_USAGE
            except tuple(failures) as error:
                print(f"{prog}: failed: {error}", file=sys.stderr)
                return EXIT_FAILED
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
        return guarded
    return wrap
