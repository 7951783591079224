"""Running Vela on one model, into a private work folder.

Vela runs as `python -I -m ethosu.vela` in a child process rather than through its Python
functions: its C++ core (regor) can abort the whole process, and its own statistics code can raise
on a model it compiled (BUILD_NOTES "Ethos-U target"), so a child, with a timeout, keeps both
from taking this command down without its one line. -I keeps the child's sys.path to the
interpreter's own (no current folder, no PYTHONPATH), so nothing can shadow Vela's `ethosu`.
The child runs in its own process group, killed on a timeout, Ctrl-C or any other exit.
"""
import dataclasses
import pathlib
import re
import signal
import sys
import time
import typing

from compilers.ethosu.config import Configuration, vela_version
from compilers.ethosu.vela_output import VelaFailed
from compilers.common import run_tool
from zoo.errors import UsageError

SUPPORTED_OPS = "`vela --supported-ops-report` lists the operators and constraints the NPU takes"
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(?P<name>\w+(?:Error|Exception)): (?P<message>.*)$")


@dataclasses.dataclass(frozen=True)
class VelaRun:
    """What one Vela run left: its command (as a user would type it), combined output, wall time
    and the files it wrote in the work folder."""
    command: typing.List[str]
    output: str
    seconds: float
    vela_model: pathlib.Path
    summary_csv: pathlib.Path
    per_layer_csv: pathlib.Path


def _vela_errors() -> typing.Set[str]:
    """The names of Vela's own error classes: what Vela raises about the model or the configuration."""
    from ethosu.vela import errors
    return {name for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, errors.VelaError)}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _failure(model: pathlib.Path, configuration: Configuration, output: str, returncode: int) -> Exception:
    """The error for a Vela run that exited with ``returncode``: a UsageError (exit 2) when Vela
    says, in one of its own error classes, what in the model or configuration stops it; VelaFailed
    (exit 1) for a crash or any other exception."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    vela = f"Vela {vela_version()}"
    if returncode < 0:
        return VelaFailed(f"{vela} crashed ({_signal_name(-returncode)}) on {model.name}; its last line: "
                          f"{last[:160]}")
    found = _EXCEPTION.match(last)
    if found and found["name"] in _vela_errors():  # e.g. "...errors.InputFileError: 'Error: ...'"
        said = found["message"].strip("'\"").removeprefix("Error: ")
        return UsageError(f"{vela} cannot compile {model.name} for {configuration.accelerator}: {said}; "
                          f"change the model ({SUPPORTED_OPS}) or the configuration (--accelerator, "
                          f"--memory-mode)")
    return VelaFailed(f"{vela} failed on {model.name} (exit status {returncode}): {last[:200]}; a fault "
                      f"inside Vela: another --accelerator may avoid it")


def compile_model(model: pathlib.Path, configuration: Configuration, work_dir: pathlib.Path,
                  timeout_s: float) -> VelaRun:
    """Runs Vela on ``model`` into ``work_dir`` with ``configuration`` and its per-layer
    performance output; UsageError or VelaFailed (see _failure) when it does not compile."""
    arguments = [str(model), "--output-dir", str(work_dir), *configuration.vela_arguments(),
                 "--verbose-performance"]
    start = time.monotonic()
    command = [sys.executable, "-I", "-m", "ethosu.vela", *arguments]
    output, returncode = run_tool(command, timeout_s, cwd=work_dir)
    seconds = time.monotonic() - start
    if output is None:
        raise VelaFailed(f"Vela {vela_version()} did not finish on {model.name} within {timeout_s:g} s "
                         "(--timeout)")
    if returncode != 0:
        raise _failure(model, configuration, output, returncode)
    stem = model.stem
    run = VelaRun(command=["vela", *arguments], output=output, seconds=round(seconds, 3),
                  vela_model=work_dir / f"{stem}_vela.tflite",
                  summary_csv=work_dir / f"{stem}_summary_{configuration.system_config}.csv",
                  per_layer_csv=work_dir / f"{stem}_per-layer.csv")
    wrote = (run.vela_model, run.summary_csv, run.per_layer_csv)
    missing = [path.name for path in wrote if not path.is_file()]
    if missing:
        raise VelaFailed(f"Vela {vela_version()} reported success on {model.name} but wrote no "
                         f"{', '.join(missing)}")
    return run
