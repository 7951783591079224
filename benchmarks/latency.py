"""Per-frame latency of TFLite models: on this machine's CPU with LiteRT and tflite-runtime, and of
the compiled model on an attached Edge TPU.

  python -m benchmarks.latency runs/tinytracker            # every TFLite file of a build folder
  python -m benchmarks.latency my_model.tflite --runtimes=litert --threads=2 --num_runs=500

Arguments are build folders (made by `zoo build`, with manifest.json) or .tflite files.
Each figure is the median and 90th percentile of --num_runs timed invoke() calls after --warmup
untimed ones, on random input of the model's own dtype and shape (latency does not depend on the
values). Right before each model the fixed reference model (--reference) is timed the same way in
the same process; each row carries the ratio, so figures from machines of different speed or load
can be compared. A build's tfmot int8 model is also run through the Edge TPU delegate when
libedgetpu and a device are present (compiled by compilers/edgetpu.py into BUILD/edgetpu/);
otherwise its row says "not measured: no device".
"""
import pathlib
import time

import numpy as np
from absl import app, flags

import benchmarks
from benchmarks import CPU, EDGETPU, MEASURED, TFMOT_INT8
from zoo.errors import UsageError

REFERENCE_MODEL = (benchmarks.REPO.parent / "shared" / "edgetpu" / "reference-models" /
                   "mobilenet_v1_0.25_128_quant.tflite")
RUNTIMES = ("litert", "tflite_runtime")  # zoo.tflite.RUNTIMES, without importing TF at flag time
EDGETPU_RUNTIME = "libedgetpu"
NO_DEVICE = "not measured: no device"

flags.DEFINE_list("runtimes", list(RUNTIMES), f"CPU runtimes to time, any of {', '.join(RUNTIMES)}")
flags.DEFINE_integer("threads", 1, "interpreter threads", lower_bound=1)
flags.DEFINE_integer("warmup", 20, "untimed invocations before timing", lower_bound=0)
flags.DEFINE_integer("num_runs", 200, "timed invocations per model and runtime", lower_bound=1)
flags.DEFINE_string("reference", str(REFERENCE_MODEL) if REFERENCE_MODEL.is_file() else "",
                    "fixed reference TFLite model timed beside every model (the ratio makes figures "
                    "of different machines comparable); empty: none")
flags.register_validator("runtimes", lambda names: bool(names) and set(names) <= set(RUNTIMES),
                         f"--runtimes must be a comma-separated subset of {', '.join(RUNTIMES)}")
flags.register_validator("reference", lambda path: not path or pathlib.Path(path).is_file(),
                         "--reference must be an existing .tflite file (or empty for none)")
FLAGS = flags.FLAGS


def _random_input(details, rng):
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return rng.uniform(-1, 1, details["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, details["shape"], endpoint=True).astype(dtype)


def time_interpreter(interpreter, warmup, num_runs):
    """Median and p90 of ``num_runs`` timed ``invoke()`` calls, in ms, and the frames per second."""
    rng = np.random.default_rng(0)
    for details in interpreter.get_input_details():
        interpreter.set_tensor(details["index"], _random_input(details, rng))
    for _ in range(warmup):
        interpreter.invoke()
    seconds = np.empty(num_runs)
    for run in range(num_runs):
        started = time.perf_counter()
        interpreter.invoke()
        seconds[run] = time.perf_counter() - started
    median = float(np.median(seconds)) * 1e3
    return {"latency_ms_median": median, "latency_ms_p90": float(np.percentile(seconds, 90)) * 1e3,
            "fps": 1e3 / median, "runs": num_runs, "warmup": warmup}


def time_file(path, runtime, threads, warmup, num_runs):
    from zoo.tflite import make_interpreter
    return time_interpreter(make_interpreter(path, runtime, threads), warmup, num_runs)


def _failure(error):
    return f"failed: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"


def cpu_rows(artifacts, runtimes=RUNTIMES, threads=1, warmup=20, num_runs=200, reference=None,
             app_name="latency"):
    """One row per artifact and CPU runtime; ``reference`` is timed right before each artifact."""
    rows = []
    total = len(artifacts) * len(runtimes)
    for runtime in runtimes:
        for artifact in artifacts:
            row = {**artifact.facts(), "target": CPU, "runtime": runtime, "threads": threads,
                   "source": MEASURED}
            try:
                if reference:
                    reference_timing = time_file(reference, runtime, threads, warmup, num_runs)
                    row["reference_model"] = pathlib.Path(reference).name
                    row["reference_ms_median"] = reference_timing["latency_ms_median"]
                row.update(time_file(artifact.path, runtime, threads, warmup, num_runs))
                row["status"] = MEASURED
                if reference:
                    row["vs_reference"] = row["latency_ms_median"] / row["reference_ms_median"]
            except (ValueError, RuntimeError) as error:  # e.g. an op this runtime lacks
                row["status"] = _failure(error)
            rows.append(row)
            benchmarks.progress(app_name, f"{len(rows)}/{total} {artifact.model} {artifact.artifact} "
                                f"{runtime}: {_summary(row)}")
    return rows


def _summary(row):
    if row["status"] != MEASURED:
        return row["status"]
    text = f"{row['latency_ms_median']:.3f} ms median"
    if row.get("vs_reference") is not None:
        text += f", {row['vs_reference']:.2f}x the reference ({row['reference_ms_median']:.3f} ms)"
    return text


def edgetpu_row(artifact, compiled, threads=1, warmup=20, num_runs=200, app_name="latency"):
    """The Edge TPU row of a tfmot int8 artifact: timed through libedgetpu when the library and a
    device are present and ``compiled`` (the *_edgetpu.tflite) exists, else why it was not."""
    from compilers import edgetpu
    row = {**artifact.facts(), "target": EDGETPU, "runtime": EDGETPU_RUNTIME, "threads": threads,
           "source": MEASURED}
    if compiled is not None:
        row.update(file=str(compiled), bytes=pathlib.Path(compiled).stat().st_size)
    try:
        interpreter = edgetpu.make_interpreter(str(compiled or artifact.path))
    except UsageError:
        row["status"] = NO_DEVICE
    else:
        if compiled is None:
            row["status"] = "not measured: no compiled model (edgetpu_compiler absent)"
        else:
            row.update(time_interpreter(interpreter, warmup, num_runs), status=MEASURED)
    benchmarks.progress(app_name, f"{artifact.model} {artifact.artifact} {EDGETPU}: {_summary(row)}")
    return row


TABLE = ("model", "artifact", "target", "runtime", "threads", "latency_ms_median", "latency_ms_p90",
         "fps", "reference_ms_median", "vs_reference", "bytes", "status")


def _collect(paths):
    """(artifacts to time on the CPU, [(tfmot int8 artifact, its build folder)]) from arguments."""
    artifacts, edgetpu_candidates = [], []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            build = benchmarks.build_artifacts(path)
            artifacts += build
            edgetpu_candidates += [(a, path) for a in build if a.artifact == TFMOT_INT8]
        else:
            artifacts.append(benchmarks.extra_artifact(path))
    return artifacts, edgetpu_candidates


def compiled_model(build_folder):
    """The Edge TPU compiler's output for a build (BUILD/edgetpu/), or None."""
    from compilers import edgetpu
    return edgetpu.compiled_model(pathlib.Path(build_folder) / "edgetpu")


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("give one or more build folders (with manifest.json) or .tflite files")
    artifacts, edgetpu_candidates = _collect(argv[1:])
    rows = cpu_rows(artifacts, FLAGS.runtimes, FLAGS.threads, FLAGS.warmup, FLAGS.num_runs,
                    FLAGS.reference or None)
    rows += [edgetpu_row(artifact, compiled_model(folder), FLAGS.threads, FLAGS.warmup, FLAGS.num_runs)
             for artifact, folder in edgetpu_candidates]
    benchmarks.print_rows(rows, TABLE, FLAGS.json)


if __name__ == "__main__":
    benchmarks.run(main)
