"""Benchmarks: the same models on every target, side by side.

Apps (absl, ``python -m benchmarks.NAME --help``): ``latency`` (per-frame latency on the CPU and an
attached Edge TPU), ``accuracy`` (cm error of every artifact of a build), ``compare`` (builds,
compiles for both targets, runs both and writes results.json, RESULTS.md and plots),
``int8_speedup`` (float vs int8 per layer kind: what int8 can gain on this CPU) and
``imx500_on_pi`` (the sensor's own runtimes, on a Raspberry Pi with the AI Camera).

Shared here, so that every app writes and reads one format: the result row, the build-folder
reader, the table renderer, atomic writes and the runner that turns a ``zoo.UsageError`` into one
line on stderr (exit 2).
"""
import dataclasses
import json
import os
import pathlib
import sys

from absl import app, flags

from zoo import errors
from zoo.errors import UsageError, one_line_errors

REPO = pathlib.Path(__file__).resolve().parents[1]
SCHEMA_VERSION = 1

# Artifact names, as the issue words them: the int8 TFLite a --qat build makes is tfmot's (the
# Edge TPU path); MCT's is the IMX500 path.
FLOAT, TFMOT_INT8, PTQ_INT8, MCT_INT8 = "float", "tfmot_int8", "ptq_int8", "mct_int8"
EXTRA = "extra"  # a third-party TFLite file (--extra_models)
ARTIFACTS = (FLOAT, TFMOT_INT8, PTQ_INT8, MCT_INT8, EXTRA)
CPU, EDGETPU, IMX500 = "cpu", "edgetpu", "imx500"
MEASURED, PUBLISHED = "measured", "published"
ON_SENSOR = "on-sensor"  # the IMX500's runtime: the network runs inside the image sensor

flags.DEFINE_bool("json", False, "print the result rows as JSON on stdout instead of a table")


class Failure(Exception):
    """A tool the benchmark drives failed (its own output says more); one line, exit status 1."""


def run(main):
    """``app.run(main)``; a ``UsageError`` becomes one line on stderr and exit status 2, a
    ``Failure`` one line and exit status 1."""
    app.run(one_line_errors(pathlib.Path(sys.argv[0]).stem, failures=(Failure,))(main))


def progress(app_name, message):
    """One progress line on stderr (stdout carries the tables)."""
    errors.progress(f"[{app_name}] {message}")


def write_atomically(path, text):
    """Writes ``text`` to ``path`` through a temp file next to it, so a reader never sees half a file."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, value):
    write_atomically(path, json.dumps(value, indent=1) + "\n")


ROW_KEY = ("source", "model", "artifact", "target", "runtime", "threads")
# Every result row has these fields; None where unknown or not measured.
ROW_FIELDS = (*ROW_KEY, "status", "latency_ms_median", "latency_ms_p90", "fps", "cm", "cm_phone",
              "cm_tablet", "frames", "bytes", "params", "macs", "file")


def result_row(**fields):
    return {**dict.fromkeys(ROW_FIELDS), **fields}


def merge_rows(results, rows):
    """``results`` (a results.json document) with ``rows`` merged in: a row updates the earlier
    row of the same source, model, artifact, target, runtime and threads with the fields it knows
    (not None), keeping the others (e.g. the IMX500 memory figures), or is added."""
    def key(row):
        return tuple(row.get(field) for field in ROW_KEY)

    merged = {key(row): row for row in results.get("rows", [])}
    for row in rows:
        known = {field: value for field, value in row.items() if value is not None}
        merged[key(row)] = {**merged[key(row)], **known} if key(row) in merged else row
    return {**results, "schema": SCHEMA_VERSION, "rows": list(merged.values())}


def read_results(path):
    """A results.json document; an empty one when ``path`` does not exist yet."""
    path = pathlib.Path(path)
    if not path.exists():
        return {"schema": SCHEMA_VERSION, "rows": []}
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: not a readable results.json ({error})") from None
    if not isinstance(results, dict) or not isinstance(results.get("rows"), list):
        raise UsageError(f"{path}: not a results.json of benchmarks.compare (no list of rows)")
    return results


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


def read_manifest(folder):
    path = pathlib.Path(folder) / "manifest.json"
    if not path.is_file():
        raise UsageError(f"{folder}: not a build folder (no manifest.json); make one with `zoo build`")
    return json.loads(path.read_text())


def int8_artifact_name(manifest):
    """The name of a build's ``int8_tflite``: tfmot's QAT int8 in --qat builds, else PTQ int8."""
    return TFMOT_INT8 if manifest["mode"] == "qat" else PTQ_INT8


def build_artifacts(folder):
    """The TFLite files of a build folder: float, and the int8 files it made."""
    folder = pathlib.Path(folder)
    manifest = read_manifest(folder)
    names = {"float_tflite": FLOAT, "int8_tflite": int8_artifact_name(manifest),
             "ptq_int8_tflite": PTQ_INT8}
    artifacts = [Artifact(manifest["model"], names[kind], folder / record["path"], manifest["params"],
                          manifest["macs"])
                 for kind, record in manifest["files"].items() if kind in names]
    return sorted(artifacts, key=lambda artifact: ARTIFACTS.index(artifact.artifact))


def extra_artifact(path):
    """A third-party TFLite file: timed like the others, nothing else known about it."""
    path = pathlib.Path(path)
    if path.suffix != ".tflite" or not path.is_file():
        raise UsageError(f"{path}: no such .tflite file")
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
