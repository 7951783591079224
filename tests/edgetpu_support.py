"""What the Edge TPU tests share: the reference material's paths, real int8 conversions of the
the adapter's command line run in this process, and its output as the tests read it (the int8
conversions of the rule cases are conftest's tflite_model fixture)."""
import contextlib
import dataclasses
import io
import os
import pathlib

import pytest

from compilers import edgetpu

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
README = SHARED / "edgetpu" / "README.md"
REFERENCE = SHARED / "edgetpu" / "reference-models"
FAKE_COMPILER = REPO / "tests" / "fake_edgetpu_compiler" / "edgetpu_compiler"
needs_shared = pytest.mark.skipif(not README.is_file(),
                                  reason=f"{SHARED} (the shared Edge TPU reference material) is absent")
MOBILENET = REFERENCE / "mobilenet_v1_0.25_128_quant.tflite"


@dataclasses.dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_adapter(*args, env=None):
    """compilers/edgetpu.py's command line run in this process (its main(argv)) with ``env`` added
    to the environment: a new Python for each case would prove nothing more. The script itself is
    run as a user runs it in test_edgetpu_compiler.py's Ctrl-C and --help tests."""
    out, err, saved = io.StringIO(), io.StringIO(), dict(os.environ)
    os.environ.update({key: str(value) for key, value in (env or {}).items()})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = edgetpu.main([str(arg) for arg in args])
            except SystemExit as exit:
                code = exit.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Ran(code, out.getvalue(), err.getvalue())


def saved_report(folder):
    """report.json as the adapter wrote it, read through the artifact contract (zoo.artifacts)."""
    return dataclasses.asdict(edgetpu.read_report(folder))


def listing(folder):
    """The files a user sees in ``folder`` (not the project's hidden output marker)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
