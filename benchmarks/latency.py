"""Per-frame latency of TFLite models: on this machine's CPU with LiteRT and tflite-runtime, and of
the compiled model on an attached Edge TPU.

  python -m benchmarks.latency runs/tinytracker            # every TFLite file of a build folder
  python -m benchmarks.latency my_model.tflite --runtimes=litert --threads=2 --num_runs=500

Arguments are build folders (made by `zoo build`, with manifest.json) or .tflite files; every one
is checked (manifest, listed files, flatbuffers) before any timing starts.
Each figure is the median and 90th percentile of --num_runs timed invoke() calls after --warmup
untimed ones, on random input of the model's own dtype and shape (latency does not depend on the
values). Right before each model the fixed reference model (--reference) is timed the same way in
the same process; each row carries the ratio, so figures from machines of different speed or load
can be compared. A build's tfmot int8 model is also run through the Edge TPU delegate when
libedgetpu and a device are present (compiled by compilers/edgetpu.py into BUILD/edgetpu/; --device
picks one); otherwise its row says "not measured: no device". A measured Edge TPU row carries a
performance section of kind "measured", which replaces the adapter's estimate in
benchmarks.compare's results. Exit status 1 when every CPU row failed (e.g. an
operator no runtime has), after the table.
"""
import dataclasses
import pathlib
import re
import time

import numpy as np
from absl import flags

import benchmarks
from benchmarks import CPU, EDGETPU, MEASURED, TFMOT_INT8
from zoo.errors import UsageError

REFERENCE_MODEL = (benchmarks.REPO.parent / "shared" / "edgetpu" / "reference-models" /
                   "mobilenet_v1_0.25_128_quant.tflite")
RUNTIMES = ("litert", "tflite_runtime")  # zoo.tflite.RUNTIMES, without importing TF at flag time
EDGETPU_RUNTIME = "libedgetpu"
NO_DEVICE = "not measured: no device"
MIN_RUNS = 10

flags.DEFINE_list("runtimes", list(RUNTIMES), f"CPU runtimes to time, any of {', '.join(RUNTIMES)}")
flags.DEFINE_integer("threads", 1, "interpreter threads", lower_bound=1)
flags.DEFINE_integer("warmup", 20, "untimed invocations before timing", lower_bound=0)
flags.DEFINE_integer("num_runs", 200, "timed invocations per model and runtime", lower_bound=1)
flags.DEFINE_float("max_seconds", 5.0, "time budget per model and runtime: timing stops after "
                   f"this many seconds (with at least {MIN_RUNS} runs) so that slow models do not "
                   "hold up the run; 0: always --num_runs", lower_bound=0)
flags.DEFINE_string("reference", str(REFERENCE_MODEL) if REFERENCE_MODEL.is_file() else "",
                    "fixed reference TFLite model timed beside every model (the ratio makes figures "
                    "of different machines comparable); empty: none")
flags.DEFINE_string("device", None, "Edge TPU to time compiled models on, as libedgetpu names it: usb, "
                    "usb:0, pci, pci:0, ... (default: the first one found)")
flags.register_validator("device", lambda name: name is None or re.fullmatch(r"(usb|pci)(:\d+)?|:\d+", name),
                         "--device must be usb, usb:N, pci, pci:N or :N (the Edge TPU to time on)")
flags.register_validator("runtimes", lambda names: bool(names) and set(names) <= set(RUNTIMES),
                         f"--runtimes must be a comma-separated subset of {', '.join(RUNTIMES)}")
flags.register_validator("reference", lambda path: not path or pathlib.Path(path).is_file(),
                         "--reference must be an existing .tflite file (or empty for none)")
flags.declare_key_flag("json")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Timing:
    """How each model is timed (the flags above)."""
    threads: int = 1
    warmup: int = 20
    num_runs: int = 200
    max_seconds: float = 5.0

    @classmethod
    def from_flags(cls):
        return cls(FLAGS.threads, FLAGS.warmup, FLAGS.num_runs, FLAGS.max_seconds)


def _random_input(details, rng):
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return rng.uniform(-1, 1, details["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, details["shape"], endpoint=True).astype(dtype)


def time_interpreter(interpreter, timing):
    """Median and p90 of the timed ``invoke()`` calls in ms, and the frames per second.

    ``timing.max_seconds`` (0: none) ends the timing early, after at least MIN_RUNS runs, and the
    warm-up after a quarter of it."""
    rng = np.random.default_rng(0)
    for details in interpreter.get_input_details():
        interpreter.set_tensor(details["index"], _random_input(details, rng))

    def deadline(share):
        return time.perf_counter() + share * timing.max_seconds if timing.max_seconds else np.inf

    warmup_end, warmed = deadline(0.25), 0
    while warmed < timing.warmup and time.perf_counter() < warmup_end:
        interpreter.invoke()
        warmed += 1
    timing_end, seconds = deadline(1.0), []
    while len(seconds) < timing.num_runs and (len(seconds) < MIN_RUNS or time.perf_counter() < timing_end):
        started = time.perf_counter()
        interpreter.invoke()
        seconds.append(time.perf_counter() - started)
    median = float(np.median(seconds)) * 1e3
    return {"latency_ms_median": median, "latency_ms_p90": float(np.percentile(seconds, 90)) * 1e3,
            "fps": 1e3 / median, "runs": len(seconds), "warmup": warmed}


def time_file(path, runtime, timing):
    from zoo.tflite import make_interpreter
    return time_interpreter(make_interpreter(path, runtime, timing.threads), timing)


def _failure(error):
    lines = str(error).strip().splitlines()
    return f"failed: {type(error).__name__}" + (f": {lines[0]}" if lines else "")


def cpu_rows(artifacts, runtimes=RUNTIMES, timing=Timing(), reference=None, app_name="latency"):
    """One row per artifact and CPU runtime; ``reference`` is timed right before each artifact."""
    rows = []
    total = len(artifacts) * len(runtimes)
    for runtime in runtimes:
        for artifact in artifacts:
            row = benchmarks.result_row(**artifact.facts(), target=CPU, runtime=runtime,
                                        threads=timing.threads, source=MEASURED)
            try:
                if reference:
                    row["reference_model"] = pathlib.Path(reference).name
                    row["reference_ms_median"] = time_file(reference, runtime, timing)["latency_ms_median"]
                row.update(time_file(artifact.path, runtime, timing), status=MEASURED)
                if reference:
                    row["vs_reference"] = row["latency_ms_median"] / row["reference_ms_median"]
            except (ValueError, RuntimeError) as error:  # e.g. an operator this runtime lacks
                row["status"] = _failure(error)
            rows.append(row)
            benchmarks.progress(app_name, f"{len(rows)}/{total} {artifact.model} {artifact.artifact} "
                                f"{runtime}: {_summary(row)}")
    return rows


def _summary(row):
    if row["status"] != MEASURED:
        return row["status"]
    text = f"{row['latency_ms_median']:.3f} ms median of {row['runs']} runs"
    if row.get("vs_reference") is not None:
        text += f", {row['vs_reference']:.3g}x the reference ({row['reference_ms_median']:.3f} ms)"
    return text


def compiled_model(build_folder):
    """The Edge TPU compiler's output for a build (BUILD/edgetpu/), or None; UsageError when its
    report names a compiled model that is not there."""
    from compilers import edgetpu
    compiled = edgetpu.compiled_model(pathlib.Path(build_folder) / EDGETPU)
    if compiled is not None and not compiled.is_file():
        raise UsageError(f"{pathlib.Path(build_folder) / EDGETPU / 'report.json'} names {compiled.name}, "
                         "which is missing; compile again with compilers/edgetpu.py")
    return compiled


def edgetpu_row(artifact, compiled, timing=Timing(), app_name="latency", device=None):
    """The Edge TPU row of a tfmot int8 artifact: timed through libedgetpu when the library and
    ``device`` (None: the first found) are present and ``compiled`` (its *_edgetpu.tflite) exists,
    else why it was not. A timed row's performance section is kind "measured"."""
    from compilers.edgetpu.runtime import make_interpreter_on_tpu
    from compilers.report import from_latency
    row = benchmarks.result_row(**artifact.facts(), target=EDGETPU, runtime=EDGETPU_RUNTIME,
                                threads=timing.threads, source=MEASURED)
    if compiled is not None:
        row.update(file=str(compiled), bytes=pathlib.Path(compiled).stat().st_size)
    try:
        interpreter = make_interpreter_on_tpu(str(compiled or artifact.path), device)
    except UsageError:  # libedgetpu or the device is absent
        row["status"] = NO_DEVICE + (f" at {device}" if device else "")
    else:
        if compiled is None:
            row["status"] = "not measured: not compiled (no edgetpu_compiler)"
        else:
            row.update(time_interpreter(interpreter, timing), status=MEASURED)
            basis = (f"benchmarks.latency on the Edge TPU ({device or 'the first one found'}): median of "
                     f"{row['runs']} runs of {pathlib.Path(compiled).name}")
            row["performance"] = dataclasses.asdict(from_latency(MEASURED, row["latency_ms_median"], basis))
    benchmarks.progress(app_name, f"{artifact.model} {artifact.artifact} {EDGETPU}: {_summary(row)}")
    return row


TABLE = ("model", "artifact", "target", "runtime", "threads", "latency_ms_median", "latency_ms_p90",
         "fps", "reference_ms_median", "vs_reference", "bytes", "status")


def _artifacts(paths):
    """(artifacts, [(tfmot int8 artifact, its compiled model or None)]) of the arguments, each
    checked: a build folder's manifest and files, a file's flatbuffer."""
    artifacts, on_edgetpu = [], []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            build = benchmarks.build_artifacts(path)
            artifacts += build
            on_edgetpu += [(a, compiled_model(path)) for a in build if a.artifact == TFMOT_INT8]
        else:
            artifacts.append(benchmarks.extra_artifact(path))
    return artifacts, on_edgetpu


def main(argv):
    if len(argv) < 2:
        raise UsageError("give one or more build folders (with manifest.json) or .tflite files")
    artifacts, on_edgetpu = _artifacts(argv[1:])
    reference = FLAGS.reference and benchmarks.check_tflite(FLAGS.reference, "--reference")
    timing = Timing.from_flags()
    rows = cpu_rows(artifacts, FLAGS.runtimes, timing, reference or None)
    rows += [edgetpu_row(artifact, compiled, timing, device=FLAGS.device)
             for artifact, compiled in on_edgetpu]
    benchmarks.print_rows(rows, TABLE, FLAGS.json)
    failed = [row for row in rows if row["target"] == CPU and row["status"] != MEASURED]
    if failed and len(failed) == sum(row["target"] == CPU for row in rows):
        raise benchmarks.Failure(f"every row failed, e.g. {failed[0]['model']} on {failed[0]['runtime']}: "
                                 f"{failed[0]['status']}")


if __name__ == "__main__":
    benchmarks.run(main)
