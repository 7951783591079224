"""Shared fixtures: a tiny rendered GazeCapture-format dataset and tiny `zoo build` outputs,
made once per test run and reused by the data, build, compiler and benchmark tests. Under
pytest-xdist (`make test` runs two workers) each is made by the first worker that asks for it
while the others wait for it, so no build is made twice."""
import fcntl
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# What the tests read from ../shared (real photos, public models no one here wrote). Locally a test
# without them skips; in CI (CI=true) their absence fails the run before any test starts.
SHARED_FILES = ("images/grace_hopper.bmp", "images/face.jpg", "edgetpu/README.md",
                "edgetpu/reference-models/mobilenet_v1_0.25_128_quant.tflite")


def pytest_sessionstart(session):
    missing = [name for name in SHARED_FILES if not (SHARED / name).is_file()]
    if missing and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI needs {SHARED} beside the clone (missing: {', '.join(missing)}); "
                                "the tests that read it would otherwise be skipped")


TINY_RENDER = {"subjects": 6, "frames": 12, "seed": 7}
# Small inputs keep conversions quick; the operators are the same as at full size.
TINY_BUILD_ARGS = {"tinytracker": ["--input-size", "32"], "tinytracker_s": ["--input-size", "32"],
                   "itracker": ["--input-size", "64"]}


def run_zoo(*args, check=True, timeout=900, env=None):
    """Runs the real `zoo` command line in a child process (as a user would)."""
    result = subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True,
                            text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"zoo {' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def made_once(tmp_path_factory, name, make):
    """``folder`` of this test run made by ``make(folder)`` once, whichever xdist worker asks first
    (the others wait on a lock, then reuse it); a make that failed is tried again by the next.
    Each folder has a parent of its own, so no test sees another make's work in progress beside it."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "made_once"
    shared.mkdir(exist_ok=True)
    folder, done = shared / name / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder.parent, ignore_errors=True)
            folder.parent.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    from zoo import data

    def render(folder):
        data.render_dataset(folder / "gazecapture", progress=False, **TINY_RENDER)
    return made_once(tmp_path_factory, "data", render) / "gazecapture"


@pytest.fixture(scope="session")
def tiny_build(tiny_data, tmp_path_factory):
    """``tiny_build(name, mode)`` -> output folder of a 1-step `zoo build`, made once per session."""
    def build(name, mode="qat"):
        def make(out):
            run_zoo("build", name, f"--{mode}", "--data", tiny_data, "--out", out, "--epochs", 1,
                    "--qat-epochs", 1, "--steps", 1, "--batch-size", 4, *TINY_BUILD_ARGS[name])
        return made_once(tmp_path_factory, f"build_{name}_{mode}", make)
    return build


def read_manifest(folder):
    """The build's manifest as the typed record (zoo.artifacts.BuildManifest)."""
    from zoo.artifacts import read_build
    return read_build(folder)


@pytest.fixture(scope="session")
def tiny_imx500(tiny_build, tmp_path_factory):
    """``tiny_imx500(name)`` -> folder of a real IMX500 conversion (compilers/imx500.py: MCT +
    imxconv-tf, about 2 minutes) of the tiny QAT build's int8 model, made once per session."""
    def convert(name):
        build = tiny_build(name, "qat")
        int8 = build / read_manifest(build).files["int8_tflite"].path

        def make(out):
            result = subprocess.run([sys.executable, str(REPO / "compilers" / "imx500.py"), str(int8),
                                     "-o", str(out)], capture_output=True, text=True, timeout=900, cwd=REPO)
            if result.returncode != 0:
                raise AssertionError(f"compilers/imx500.py exited {result.returncode}:\n"
                                     f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return made_once(tmp_path_factory, f"imx500_{name}", make)
    return convert


@pytest.fixture(scope="session")
def tflite_model(tmp_path_factory):
    """``tflite_model(name, quantize=True, io_type="int8")`` -> path of a real int8 conversion of
    Edge TPU rule case or zoo model ``name`` (tests/fake_edgetpu_compiler/edgetpu_cases.py; an
    edited case: of its base case, then edited), each made once per session."""
    from fake_edgetpu_compiler import edgetpu_cases as cases
    folder = tmp_path_factory.mktemp("edgetpu_models")
    made = {}

    def convert(name, quantize=True, io_type="int8"):
        key = (name, quantize, io_type)
        if key not in made:
            path = folder / f"{name}_{'int8' if quantize else 'float'}_{io_type}.tflite"
            edited = cases.edited(name)
            if edited:
                data = cases.edit(convert(edited[0]).read_bytes(), edited[1])
            else:
                data = cases.convert(cases.keras_model(name), quantize, cases.case_io_type(name, io_type))
            path.write_bytes(data)
            made[key] = path
        return made[key]
    return convert
