"""What the target adapters share: checking a --timeout, running a tool in its own process group
with a deadline, and reading a target's typed report back."""
import argparse
import dataclasses
import json
import math
import os
import pathlib
import signal
import subprocess
import typing

from zoo import artifacts
from zoo.errors import ArgumentParser, UsageError

MAX_TIMEOUT_S = 86400  # longer waits overflow the subprocess timer
Record = typing.TypeVar("Record")


def timeout_seconds(value: object) -> float:
    """``value`` as seconds in (0, MAX_TIMEOUT_S]; UsageError for nan, inf, <= 0 or not a number."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not 0 < seconds <= MAX_TIMEOUT_S:
        raise UsageError(f"--timeout {value}: give a number of seconds above 0 and at most {MAX_TIMEOUT_S}")
    return seconds


def run_tool(command: typing.List[str], timeout_s: float, cwd: "pathlib.Path | None" = None
             ) -> "tuple[str | None, int | None]":
    """The combined output and exit status of ``command``; (None, None) when it timed out. The tool
    runs in its own process group, which is killed on a timeout or Ctrl-C, so nothing outlives it."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
        return output, process.returncode
    except subprocess.TimeoutExpired:
        return None, None
    finally:  # also on Ctrl-C
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def read_report(record: typing.Type[Record], folder: "str | pathlib.Path") -> Record:
    """The ``record`` report a compile left in ``folder``; one UsageError line when it is missing or
    damaged."""
    return artifacts.read_record(record, pathlib.Path(folder) / artifacts.REPORT)


def check_fixed_inputs(graph, tool: str) -> None:
    """UsageError for an input whose size is only known at run time (a batch of -1 is fine): a
    compiler for an accelerator (``tool``) needs fixed sizes."""
    for index in graph.inputs:
        tensor = graph.tensors[index]
        if any(size < 0 for size in tensor.shape_signature[1:]) or any(size < 0 for size in tensor.shape):
            raise UsageError(f"{graph.path}: input {tensor.name!r} has a dynamic shape "
                             f"{list(tensor.shape_signature)}; {tool} needs fixed sizes: export with a fixed "
                             f"input shape (only the batch may be -1)")


def options_record(record: typing.Type[Record], options: dict, target: str) -> Record:
    """compile()'s keyword ``options`` as the target's Options ``record``; TypeError naming any
    option the target does not take (a caller's mistake, as for any keyword argument)."""
    unknown = set(options) - {field.name for field in dataclasses.fields(record)}  # type: ignore[arg-type]
    if unknown:
        raise TypeError(f"compile() got unknown {target} options {sorted(unknown)}")
    return record(**options)


def read_checked_graph(model: pathlib.Path, check: typing.Callable) -> "object":
    """The graph of TFLite ``model`` after the target's own ``check`` of it; UsageError for a file
    that cannot be read (read_graph itself reports missing and corrupt files)."""
    from zoo import tflite
    try:
        graph = tflite.read_graph(model)
    except OSError as error:  # e.g. permission denied
        raise UsageError(f"{model}: cannot read it ({error.strerror or error})") from None
    check(graph)
    return graph


def adapter_parser(target: str, description: str, epilog: str,
                   model_help: str = "int8 (full-integer) TFLite model") -> ArgumentParser:
    """The command line every compilers/<target>.py shares (MODEL, -o, --overwrite, --json), to
    which the target adds its own options."""
    parser = ArgumentParser(prog=f"compilers/{target}.py", description=description, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help=model_help)
    parser.add_argument("-o", "--out", help=f"output folder (default: BUILD/{target} for a build's int8 "
                                            f"model, else MODEL_DIR/NAME_{target})")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an existing -o folder not made by this tool (its files are kept)")
    parser.add_argument("--json", action="store_true", help="print report.json instead of the summary")
    return parser


def print_report(report: typing.Any, as_json: bool, summary: typing.Callable[[typing.Any], str]) -> None:
    """What every adapter's command line prints on success: report.json (--json) or its summary."""
    print(json.dumps(artifacts.to_json(report), indent=2) if as_json else summary(report))


def compiled_file(folder: "str | pathlib.Path", read: typing.Callable[[typing.Any], typing.Any],
                  name_of: typing.Callable[[typing.Any], typing.Optional[str]]
                  ) -> typing.Optional[pathlib.Path]:
    """The file compile() left in ``folder``, as its report (``read(folder)``) names it
    (``name_of(report)``); None when there is no readable report or it names none."""
    try:
        name = name_of(read(folder))
    except UsageError:
        return None
    return pathlib.Path(folder) / name if name else None
