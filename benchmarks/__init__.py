"""Benchmarks: the same models on every target, side by side.

Apps (absl, ``python -m benchmarks.NAME --help``): ``latency`` (per-frame latency on the CPU and an
attached Edge TPU), ``accuracy`` (cm error of every artifact of a build), ``compare`` (builds,
compiles for both targets, runs both and writes results.json, RESULTS.md and plots),
``int8_speedup`` (float vs int8 per layer kind: what int8 can gain on this CPU), ``predict``
(`zoo predict` frames per second end to end, per stage), ``scale`` (index, crop cache and one
epoch at 10k-100k frames, extrapolated to GazeCapture) and ``imx500_on_pi`` (the sensor's own
runtimes, on a Raspberry Pi with the AI Camera).

Shared here, so that every app writes and reads one format: the result row (results.json holds
it as a record, benchmarks.results), the build-folder reader (through zoo.artifacts), the table
renderer, the flags more than one app takes and the entry point every app runs through (``run``),
which makes every way an app can end one line on stderr and an exit status of zoo.errors: a bad
flag value, a missing argument or a bad file 2, a tool that failed or a write that failed 1
(``Failure``, zoo.artifacts.WriteFailed), Ctrl-C 130.
Before an app runs, ``check_flags`` refuses what absl lets through: a flag the app does not read
(every app shares one set of flags), a number that is not finite, a list left empty.
"""
import math
import dataclasses
import json
import pathlib
import sys

from absl import app, flags

from zoo import artifacts, errors
from zoo.errors import UsageError, one_line_errors

REPO = pathlib.Path(__file__).resolve().parents[1]

# Artifact names, as the issue words them: the int8 TFLite a --qat build makes is tfmot's (the
# Edge TPU path); MCT's is the IMX500 path.
FLOAT, TFMOT_INT8, PTQ_INT8, MCT_INT8 = "float", "tfmot_int8", "ptq_int8", "mct_int8"
EXTRA = "extra"  # a third-party TFLite file (--extra_models)
ARTIFACTS = (FLOAT, TFMOT_INT8, PTQ_INT8, MCT_INT8, EXTRA)
CPU, EDGETPU, IMX500 = "cpu", "edgetpu", "imx500"
MEASURED, PUBLISHED = "measured", "published"
ON_SENSOR = "on-sensor"  # the IMX500's runtime: the network runs inside the image sensor

# Flags more than one app takes, defined once: absl keeps one set of flags per process (the tests
# run every app in one), so two apps cannot each define a --frames or an --out. Each app declares
# those it reads as key flags (its --help lists them) and takes its own default where None.
flags.DEFINE_bool("json", False, "print the result rows as JSON on stdout instead of a table")
flags.DEFINE_string("data", None, "GazeCapture root (default: the rendered default dataset; accuracy: "
                    "the data each build was trained on)")
flags.DEFINE_integer("frames", None, "frames: accuracy and compare evaluate this many test frames, spread "
                     "over the split (default: all); imx500_on_pi records this many (default 300)",
                     lower_bound=1)
flags.DEFINE_string("out", None, "output folder (compare: builds, results.json, RESULTS.md and plots, "
                    "default runs/compare; int8_speedup: keeps the one-layer .tflite files, default none)")
flags.DEFINE_bool("overwrite", False, "with --out: replace this app's earlier output made from other "
                  "inputs, or add to a folder this project did not write (its files are kept); never "
                  "a build, a package or another command's output")
flags.DEFINE_integer("steps", None, "training batches: compare caps each build's epochs at this many "
                     "(default: the whole split; itracker 10); learnability trains this many (default 1500)",
                     lower_bound=1)
FLAGS = flags.FLAGS
HELP_FLAGS = {"--help", "-?", "--helpshort", "--helpfull"}


class Failure(Exception):
    """A tool the benchmark drives failed (its own output says more); one line, exit status 1."""


def command(main):
    """``main(argv)`` of a benchmark app as a function of the whole command line (``argv[0]``: the
    program) that returns the exit status. The flags are parsed inside zoo.errors' guard, so a bad
    value is one line and exit status 2 (absl's app.run prints the module docstring and exits 1);
    each call starts from the flags' defaults, so that the tests run the apps in one process."""
    module = sys.modules[main.__module__]
    prog = module.__spec__.name if module.__spec__ else pathlib.Path(module.__file__).stem

    @one_line_errors(prog, failures=(Failure, artifacts.WriteFailed))
    def guarded(argv):
        if HELP_FLAGS & set(argv[1:]):
            flag_help = FLAGS.get_help() if "--helpfull" in argv else FLAGS.module_help(module)
            print(f"{(module.__doc__ or prog).strip()}\n\nflags:\n{flag_help}")
            return errors.EXIT_OK
        FLAGS.unparse_flags()
        try:
            rest = FLAGS(argv)
        except flags.Error as error:
            raise UsageError(f"{error} (see {prog} --help)") from None
        check_flags(module, prog)
        try:
            return main(rest) or errors.EXIT_OK
        except app.UsageError as error:  # absl's, as an app may raise for its arguments
            raise UsageError(str(error)) from None
    return guarded


def check_flags(module, prog):
    """UsageError for a flag given on the command line that ``module`` does not read (not one of
    its key flags: it would be ignored), a float flag that is not finite, or a list flag left empty
    where its default is not."""
    mine = {flag.name for flag in FLAGS.get_key_flags_for_module(module)}
    for name in FLAGS:
        flag = FLAGS[name]
        if not flag.present or name != flag.name or FLAGS.find_module_defining_flag(name).startswith("absl"):
            continue
        if name not in mine:
            raise UsageError(f"--{name} does not apply to {prog}, which would ignore it; drop it "
                             f"(see {prog} --help for its flags)")
        if isinstance(flag.value, float) and not math.isfinite(flag.value):
            raise UsageError(f"--{name}={flag.value} is not a finite number; give a number such as "
                             f"{flag.default}")
        if isinstance(flag.value, list) and not flag.value and flag.default:
            raise UsageError(f"--{name} is empty; give at least one value (default {','.join(flag.default)})")
    if FLAGS.overwrite and not FLAGS.out:
        raise UsageError("--overwrite is about the --out folder, and there is none; add --out or drop it")


def run(main):
    """The entry point of every app: ``sys.exit(command(main)(sys.argv))``."""
    sys.exit(command(main)(sys.argv))


def progress(app_name, message):
    """One progress line on stderr (stdout carries the tables)."""
    errors.progress(f"[{app_name}] {message}")


# Every result row an app makes has these fields, None where unknown or not measured; results.json
# holds them as benchmarks.results.ResultRow records.
ROW_FIELDS = ("source", "model", "artifact", "target", "runtime", "threads", "status", "latency_ms_median",
              "latency_ms_p90", "fps", "cm", "cm_phone", "cm_tablet", "frames", "bytes", "params", "macs",
              "file")


def result_row(**fields):
    return {**dict.fromkeys(ROW_FIELDS), **fields}


# ---- builds ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Artifact:
    """One model file to benchmark, with the facts its build recorded (None when unknown)."""
    model: str
    artifact: str
    path: pathlib.Path
    params: int = None
    macs: int = None

    @property
    def bytes(self):
        return self.path.stat().st_size

    def facts(self):
        """The row fields that describe the file."""
        return {"model": self.model, "artifact": self.artifact, "file": str(self.path),
                "bytes": self.bytes, "params": self.params, "macs": self.macs}


def int8_artifact_name(manifest):
    """The name of a build's ``int8_tflite``: tfmot's QAT int8 in --qat builds, else PTQ int8."""
    return TFMOT_INT8 if manifest.mode == "qat" else PTQ_INT8


def build_artifacts(folder):
    """The TFLite files of a build folder: float, and the int8 files it made. UsageError for a
    folder that is not a complete build of this version (zoo.artifacts.read_build)."""
    folder = pathlib.Path(folder)
    manifest = artifacts.read_build(folder)
    names = {"float_tflite": FLOAT, "int8_tflite": int8_artifact_name(manifest), "ptq_int8_tflite": PTQ_INT8}
    found = [Artifact(manifest.model, names[kind], check_tflite(artifacts.build_file(folder, manifest, kind)),
                      manifest.params, manifest.macs)
             for kind in manifest.files if kind in names]
    return sorted(found, key=lambda artifact: ARTIFACTS.index(artifact.artifact))


def check_tflite(path, flag=None):
    """``path`` when it is a readable TFLite flatbuffer (zoo.inference.loader), before any
    runtime is asked to load it; ``flag`` names where it was given."""
    from zoo.inference.loader import check_model_file
    path = pathlib.Path(path)
    if path.suffix != ".tflite" or not path.is_file():
        raise UsageError(f"{flag + ' ' if flag else ''}{path}: no such .tflite file")
    return check_model_file(path)


def extra_artifact(path):
    """A third-party TFLite file: timed like the others, nothing else known about it."""
    path = check_tflite(path)
    return Artifact(path.stem, EXTRA, path)


# ---- tables ---------------------------------------------------------------------------------

def _number(digits):
    return lambda value: f"{value:.{digits}f}"


def _thousands(value):
    return f"{value:,}"


def _millions(value):
    return f"{value / 1e6:.2f}M"


# column key -> (header, formatter of a non-None value)
COLUMNS = {
    "model": ("model", str),
    "artifact": ("artifact", str),
    "target": ("target", str),
    "runtime": ("runtime", str),
    "threads": ("threads", str),
    "latency_ms_median": ("median ms", _number(3)),
    "latency_ms_p90": ("p90 ms", _number(3)),
    "fps": ("fps", _number(0)),
    "dsp_ms_median": ("DSP median ms", _number(3)),
    "reference_ms_median": ("reference ms", _number(3)),
    "vs_reference": ("x reference", lambda value: f"{value:.3g}"),
    "cm": ("cm", _number(3)),
    "cm_phone": ("phone cm", _number(3)),
    "cm_tablet": ("tablet cm", _number(3)),
    "frames": ("frames", str),
    "bytes": ("bytes", _thousands),
    "params": ("params", _thousands),
    "macs": ("MACs", _millions),
    "status": ("status", str),
    "source": ("source", str),
}


def cell(row, key):
    value = row.get(key)
    return "-" if value is None else COLUMNS[key][1](value)


def markdown_table(rows, keys):
    """A Markdown table of ``rows`` with the columns ``keys`` (see COLUMNS); '-' where unknown."""
    lines = ["| " + " | ".join(COLUMNS[key][0] for key in keys) + " |",
             "|" + "|".join(" --- " for _ in keys) + "|"]
    lines += ["| " + " | ".join(cell(row, key) for key in keys) + " |" for row in rows]
    return "\n".join(lines)


def print_rows(rows, keys, as_json):
    print(json.dumps(rows, indent=1) if as_json else markdown_table(rows, keys), flush=True)
