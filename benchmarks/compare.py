"""The comparison: every model and every build on every target, side by side.

  python -m benchmarks.compare          # tinytracker, tinytracker_s, itracker on the default data
  python -m benchmarks.compare --models=tinytracker --num_runs=500 --extra_models=mine.tflite
  python -m benchmarks.compare --targets=edgetpu,imx500 --device=usb   # the Edge TPU timed on a device
  python -m benchmarks.compare --report_only    # RESULTS.md and plots again from results.json

For each model: build it with `zoo build --qat` (float, tfmot int8, PTQ int8), or reuse the build
in --out when its manifest records the same data and training settings; compile its int8 model
for every target of compilers.targets (--targets, default all; a target marked ``reused`` there,
such as the IMX500's minutes-long conversion, keeps its output with the build, the others compile
again); measure the cm error of every artifact on the same test frames (benchmarks.accuracy) and
the latency on every CPU runtime and, with --device, on the Edge TPU (benchmarks.latency). Each
target's row carries its report's headline (fits, memory, operators on the accelerator) and its
latency with the basis (measured here, or the target's estimate or published figure). Writes into
--out: results.json (one row per model x artifact x target x runtime), RESULTS.md (the tables a
user reads) and three plots (error_vs_size.png, latency.png, error_vs_latency.png). Published
figures (TinyTracker, TinyTrackerS and iTracker papers) get their own rows, marked "published",
never mixed with measured ones.

Layout of --out: NAME/ (the build, with one folder per target: NAME/edgetpu/, NAME/imx500/, ...),
results.json, RESULTS.md and the plots. The report files appear only when complete
(benchmarks.report). Every flag, --data and --extra_models are checked before --out is made; each
`zoo build` runs in a child process with a time limit (--build_timeout), stopped on Ctrl-C.
"""
import contextlib
import datetime
import os
import pathlib
import platform
import subprocess
import sys
import time

from absl import flags

import benchmarks
from benchmarks import (FLOAT, IMX500, MEASURED, ON_SENSOR, PUBLISHED, TFMOT_INT8, accuracy, latency,
                        on_targets, report, results)
from compilers.targets import TARGETS
from zoo import artifacts
from zoo.train import defaults
from zoo.errors import UsageError

DEFAULT_MODELS = ("tinytracker", "tinytracker_s", "itracker")
# Training of each build when --epochs/--qat_epochs/--steps are not given: `zoo build`'s own
# defaults, so the table reports the builds a user makes, except for iTracker, whose training step
# costs ~45x TinyTracker's (16 vs 0.37 CPU-s per batch of 32): a few capped epochs keep the default
# comparison of the three models near 30 minutes on 2 cores, and its error is that of a briefly
# trained model (BUILD_NOTES.md).
TRAINING = {"itracker": {"epochs": 1, "qat_epochs": 1, "steps": 10}}
DEFAULT_TRAINING = {"epochs": defaults.EPOCHS, "qat_epochs": defaults.QAT_EPOCHS, "steps": None}
DEFAULT_OUT = "runs/compare"
TOOL = artifacts.Tool("benchmarks.compare", "compare")  # for zoo.artifacts' rule; it writes no marker
BUILD_TIMEOUT_S = 4 * 3600

# Published figures, each with its source; never mixed with measured rows.
PUBLISHED_ROWS = (
    {"model": "tinytracker", "artifact": "int8", "target": IMX500, "runtime": ON_SENSOR,
     "latency_ms_median": 0.86, "cm": 2.34, "bytes": 608_000, "params": 455_000, "macs": 11_800_000,
     "note": "112x112 input; 0.86 ms inference (+0.24 ms readout, ~19 ms end to end); "
             "2.34 cm on GazeCapture; 608 KB",
     "citation": "Bonazzi et al., TinyTracker, IEEE SENSORS 2023, arXiv 2307.07813"},
    {"model": "tinytracker_s", "artifact": None, "target": None, "runtime": None,
     "bytes": 169_000, "params": 85_800, "macs": 5_300_000, "note": "169 KB",
     "citation": "TinyTrackerS, arXiv 2308.12313"},
    {"model": "itracker", "artifact": FLOAT, "target": None, "runtime": None,
     "cm_phone": 1.71, "cm_tablet": 2.53, "bytes": 25_000_000, "params": 6_290_000,
     "note": "GazeCapture test set; ~25 MB float",
     "citation": "Krafka et al., Eye Tracking for Everyone, CVPR 2016"},
)

flags.DEFINE_list("models", list(DEFAULT_MODELS), "registered models to compare (see `zoo list`)")
flags.DEFINE_integer("epochs", None, "float training epochs of each build (default: "
                     f"{DEFAULT_TRAINING['epochs']}; itracker {TRAINING['itracker']['epochs']})",
                     lower_bound=1)
flags.DEFINE_integer("qat_epochs", None, "QAT fine-tuning epochs of each build (default: "
                     f"{DEFAULT_TRAINING['qat_epochs']}; itracker {TRAINING['itracker']['qat_epochs']})",
                     lower_bound=1)
flags.DEFINE_integer("input_size", None, "input side in pixels for every model, 32 to 1024 (default: each "
                     "model's own)", lower_bound=32, upper_bound=1024)
flags.DEFINE_list("targets", list(TARGETS), "targets to compile each model's int8 model for "
                  f"(compilers/targets.py), any of {', '.join(TARGETS)} (default: all)")
flags.DEFINE_list("extra_models", [], "third-party .tflite files to add to the latency table")
flags.DEFINE_bool("rebuild", False, "build and compile again even where --out holds a matching build")
flags.DEFINE_bool("report_only", False, "only render RESULTS.md and the plots again from "
                  "--out/results.json (e.g. after benchmarks.imx500_on_pi added the sensor's figures)")
flags.DEFINE_integer("build_timeout", BUILD_TIMEOUT_S, "seconds each `zoo build` may take before it is "
                     "stopped", lower_bound=1)
for _name in ("out", "steps", "data", "frames", "runtimes", "threads", "warmup", "num_runs", "max_seconds",
              "reference", "device", "json"):
    flags.declare_key_flag(_name)
flags.register_validator("targets", lambda names: sorted(set(names) & set(TARGETS)) == sorted(names),
                         f"--targets must be a comma-separated subset of {', '.join(TARGETS)}, each once")
flags.register_validator("extra_models", lambda paths: all(
    p.endswith(".tflite") and pathlib.Path(p).is_file() for p in paths),
    "--extra_models must be existing .tflite files")
FLAGS = flags.FLAGS


def say(message):
    benchmarks.progress("compare", message)


# ---- build and compile ----------------------------------------------------------------------

def training_settings(name, epochs=None, qat_epochs=None, steps=None):
    """{epochs, qat_epochs, steps} of the build of ``name``: the flags where given, else its defaults."""
    given = {"epochs": epochs, "qat_epochs": qat_epochs, "steps": steps}
    chosen = {**DEFAULT_TRAINING, **TRAINING.get(name, {})}
    return {key: given[key] or chosen[key] for key in chosen}


def _reusable(name, folder, root, settings, input_size):
    """Why the build in ``folder`` cannot be reused (None when it can)."""
    if not (folder / artifacts.MANIFEST).is_file():
        return "no build yet"
    try:
        manifest = artifacts.read_build(folder)
    except UsageError as error:
        return f"its manifest is not usable: {error}"
    training = manifest.training
    recorded = {"mode": manifest.mode, "data": manifest.card.data.root, "epochs": training.epochs,
                "qat_epochs": training.qat_epochs, "steps": training.steps_per_epoch_cap,
                "learning_rate": training.learning_rate}
    wanted = {"mode": "qat", "data": str(root), **settings, "learning_rate": defaults.learning_rate(name)}
    if input_size is not None:
        recorded["input_size"] = manifest.card.builder_args.get("input_size")
        wanted["input_size"] = input_size
    changed = [key for key in wanted if recorded[key] != wanted[key]]
    return f"settings changed ({', '.join(changed)})" if changed else None


def ensure_build(name, folder, root, settings, input_size, rebuild):
    """The build folder of ``name``: reused when it matches, else made by `zoo build --qat`."""
    why = "--rebuild" if rebuild else _reusable(name, folder, root, settings, input_size)
    if why is None:
        say(f"{name}: reusing the build in {folder}")
        return
    command = [sys.executable, "-m", "zoo", "build", name, "--qat", "--data", str(root), "--out", str(folder),
               "--epochs", str(settings["epochs"]), "--qat-epochs", str(settings["qat_epochs"])]
    command += ["--steps", str(settings["steps"])] if settings["steps"] else []
    command += ["--input-size", str(input_size)] if input_size else []
    say(f"{name}: building ({why}): zoo {' '.join(command[3:])}")
    # The build runs in its own process: --qat imports tfmot, which turns tf.keras into tf_keras
    # for the whole process (MCT and evaluation here need the plain keras package). Unbuffered, so
    # that its epoch lines show as they happen when stderr is a file or a pipe. subprocess.run kills
    # it on the time limit and on Ctrl-C (then its resumable partial build is all that is left).
    try:
        result = subprocess.run(command, stdout=sys.stderr, cwd=benchmarks.REPO, timeout=FLAGS.build_timeout,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        raise benchmarks.Failure(f"zoo build {name} did not finish within {FLAGS.build_timeout} s and was "
                                 "stopped; give it longer with --build_timeout") from None
    if result.returncode != 0:
        raise benchmarks.Failure(f"zoo build {name} exited with status {result.returncode} "
                                 "(its output is above)")


class Stopwatch:
    """Seconds per stage: ``with clock("build"): ...``."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, stage):
        started = time.monotonic()
        yield
        self.seconds[stage] = round(time.monotonic() - started, 1)


def model_rows(name, folder, root, timing, clock):
    """All measured rows of one model (its build exists): its artifacts on the CPU, its int8 model
    on every target of --targets, the mean predictor's."""
    artifact_list = benchmarks.build_artifacts(folder)
    int8 = next((a for a in artifact_list if a.artifact == TFMOT_INT8), None)
    if int8 is None:
        raise benchmarks.Failure(f"{folder} holds no tfmot int8 model; rebuild it with --rebuild")
    outcomes = []
    for target in FLAGS.targets:
        with clock(target):
            outcomes.append(on_targets.compile_target(TARGETS[target], folder, int8, FLAGS.rebuild, say))
    with clock("accuracy"):
        say(f"{name}: cm error of every artifact on the test split of {root}")
        accuracy_rows = accuracy.accuracy_rows(folder, root, FLAGS.frames, app_name="compare",
                                               reuse_build_figures=True)
    with clock("latency"):
        say(f"{name}: latency")
        rows = [{**row, **on_targets.errors_of(accuracy_rows, row["artifact"])}
                for row in latency.cpu_rows(artifact_list, FLAGS.runtimes, timing, FLAGS.reference or None,
                                            app_name="compare")]
        context = on_targets.Context(folder, int8, accuracy_rows, timing, FLAGS.device)
        rows += [on_targets.target_row(outcome, context) for outcome in outcomes]
    baseline = next(row for row in accuracy_rows if row["artifact"] == accuracy.MEAN_BASELINE)
    return rows + [benchmarks.result_row(**baseline, status=MEASURED)]


def published_rows(models):
    return [benchmarks.result_row(**row, source=PUBLISHED, status=PUBLISHED)
            for row in PUBLISHED_ROWS if row["model"] in models]


def _machine():
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in
             (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []) if line.startswith("model name")]
    return results.Machine(cpu=names[0] if names else platform.processor(), cores=os.cpu_count(),
                           machine=platform.machine(), system=platform.platform(),
                           load_average=list(os.getloadavg()))


# ---- the app --------------------------------------------------------------------------------

def run_comparison(out, root, timing):
    """The results (benchmarks.results.Results) of every model (built, compiled, measured) and the
    extra models."""
    document = results.Results(
        command=" ".join(["python -m benchmarks.compare", *sys.argv[1:]]),
        created=datetime.datetime.now().isoformat(timespec="seconds"), machine=_machine(),
        data={"root": str(root)},
        timing=results.TimingRecord(**vars(timing), runtimes=FLAGS.runtimes,
                                    reference=FLAGS.reference or None))
    rows = []
    started = time.monotonic()
    for number, name in enumerate(FLAGS.models, 1):
        say(f"({number}/{len(FLAGS.models)}) {name} [{(time.monotonic() - started) / 60:.1f} min so far]")
        folder, clock = out / name, Stopwatch()
        settings = training_settings(name, FLAGS.epochs, FLAGS.qat_epochs, FLAGS.steps)
        with clock("build"):
            ensure_build(name, folder, root, settings, FLAGS.input_size, FLAGS.rebuild)
        rows += model_rows(name, folder, root, timing, clock)
        document.seconds[name] = clock.seconds
    if FLAGS.extra_models:
        say(f"latency of {len(FLAGS.extra_models)} extra model(s)")
        extras = [benchmarks.extra_artifact(path) for path in FLAGS.extra_models]
        rows += latency.cpu_rows(extras, FLAGS.runtimes, timing, FLAGS.reference or None, app_name="compare")
    rows += published_rows(FLAGS.models)
    document.seconds["total"] = round(time.monotonic() - started, 1)
    document.machine.load_average_end = list(os.getloadavg())
    document.rows = [results.row_record(row) for row in rows]
    return document


def _checked_inputs():
    """The data root, once every input of a comparison is known good: the extra and reference
    models, --data, the models (that check imports TensorFlow), then the data indexed (the
    default data is rendered on first use)."""
    for path in FLAGS.extra_models:
        benchmarks.check_tflite(path, "--extra_models")
    if FLAGS.reference:
        benchmarks.check_tflite(FLAGS.reference, "--reference")
    from zoo import data as zoo_data
    from zoo.data.gazecapture import check_root
    if FLAGS.data:
        check_root(pathlib.Path(FLAGS.data).absolute())
    from zoo.models import registry
    unknown = [name for name in FLAGS.models if name not in registry.list_models()]
    if unknown or not FLAGS.models:
        raise UsageError("--models must be registered models (see `zoo list`), not "
                         f"{', '.join(unknown) or 'none'}")
    root = pathlib.Path(FLAGS.data).absolute() if FLAGS.data else zoo_data.default_data_root()
    zoo_data.open_gazecapture(root)
    return root


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}; choose models with --models=A,B")
    inputs = [*FLAGS.extra_models, *filter(None, [FLAGS.data])]
    out = artifacts.check_output(FLAGS.out or DEFAULT_OUT, TOOL, inputs, overwrite=True)  # it adds to it
    if FLAGS.report_only:
        document = report.rewrite_report(out)
    else:
        root = _checked_inputs()
        out.mkdir(parents=True, exist_ok=True)
        document = run_comparison(out, root, latency.Timing.from_flags())
        report.write_report(document, out)
    shown = document.rows if FLAGS.json else report.measured_rows(document.rows)
    benchmarks.print_rows([results.row_fields(row) for row in shown], report.MEASURED_TABLE, FLAGS.json)
    say(f"wrote {out / report.RESULTS}, {out / report.REPORT} and {', '.join(report.PLOTS.values())}"
        + (f" in {document.seconds['total'] / 60:.1f} min" if not FLAGS.report_only else ""))


if __name__ == "__main__":
    benchmarks.run(main)
