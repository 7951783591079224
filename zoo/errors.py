"""How every command line of the project (`zoo`, the target adapters compilers/TARGET.py and the
benchmark apps) ends: one line on stderr and an exit status, never a traceback.

Exit status, the same for every command:

  ===  ==========================================================================================
  0    done
  1    failed: a tool the command drives failed, or an unexpected error (``prog: failed: ...``;
       with ``--debug`` or ``ZOO_DEBUG=1`` the traceback is printed before that line)
  2    bad input: a wrong name, flag value, path or file (``prog: error: ...``); checked before
       anything is written, so nothing was
  3    a target adapter wrote its pre-flight report, but the target's own compiler is not
       installed (compilers/targets.py says which targets have one)
  130  interrupted (Ctrl-C): ``prog: interrupted``, with how to continue where that is possible
  ===  ==========================================================================================

Commands write their output in a temporary place and publish it complete (zoo.artifacts), so
statuses 1, 2 and 130 leave nothing half-written.
"""
import argparse
import functools
import os
import sys
import traceback

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PREFLIGHT_ONLY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEBUG_FLAG, DEBUG_ENV = "--debug", "ZOO_DEBUG"
MAX_LINE = 400  # characters of an error message shown (a tool's message can be pages long)


class UsageError(Exception):
    """Bad input from the user: a wrong name, a missing file, a bad path. The message says what to do."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, carrying how to continue (e.g. `zoo build ... --resume`)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse for every command line: a bad argument is a UsageError, so one_line_errors makes
    it one line and exit status 2 (argparse's own prints the usage block first); --help still
    prints the usage and exits 0. Subcommands' parsers are of the same class."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def progress(message):
    """One progress line on stderr (stdout carries the results)."""
    print(message, file=sys.stderr, flush=True)


def one_line(error):
    """``error``'s message as one line: its lines joined, cut at MAX_LINE characters."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text if len(text) <= MAX_LINE else text[:MAX_LINE - 3] + "..."


def one_line_errors(prog, failures=()):
    """Decorator for a command's ``main(argv)``, the top-level guard of every entry point.

    ``argv`` defaults to ``sys.argv[1:]``; a ``--debug`` in it is taken out (so that every
    command accepts it) and, like ``ZOO_DEBUG=1``, prints the traceback of an error. Then: a
    UsageError becomes ``prog: error: ...`` and exit status 2; an exception of a type in
    ``failures`` (a tool the command drives failed) ``prog: failed: ...`` and 1; any other
    exception ``prog: failed: TYPE: ...`` and 1; Ctrl-C ``prog: interrupted`` and 130."""
    def wrap(main):
        @functools.wraps(main)
        def guarded(argv=None):
            argv = list(sys.argv[1:] if argv is None else argv)
            debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV) == "1"
            try:
                return main([arg for arg in argv if arg != DEBUG_FLAG])
            except UsageError as error:
                return _report(prog, f"error: {one_line(error)}", EXIT_USAGE, debug)
            except tuple(failures) as error:
                return _report(prog, f"failed: {one_line(error)}", EXIT_FAILED, debug)
            except KeyboardInterrupt as error:
                hint = one_line(error)
                return _report(prog, "interrupted" + (f"; {hint}" if hint else ""), EXIT_INTERRUPTED, debug)
            except Exception as error:  # noqa: BLE001 - the guard: no traceback reaches the user
                hint = "" if debug else f" (run again with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)"
                return _report(prog, f"failed: {type(error).__name__}: {one_line(error)}{hint}",
                               EXIT_FAILED, debug)
        return guarded
    return wrap


def _report(prog, line, status, debug):
    try:
        if debug:
            traceback.print_exc()
        print(f"{prog}: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr is gone: the exit status still tells
        pass
    return status
