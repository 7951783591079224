"""The comparison: every model and every build on every target, side by side.

  python -m benchmarks.compare          # tinytracker, tinytracker_s, itracker on the default data
  python -m benchmarks.compare --models=tinytracker --num_runs=500 --extra_models=mine.tflite
  python -m benchmarks.compare --report_only    # RESULTS.md and plots again from results.json

For each model: build it with `zoo build --qat` (float, tfmot int8, PTQ int8), or reuse the build
in --out when its manifest records the same data and training settings; run the Edge TPU
pre-flight/compiler (compilers/edgetpu.py, seconds: always rerun) and the IMX500 conversion
(compilers/imx500.py, MCT int8, minutes: reused with the build); measure the cm error of every
artifact on the same test frames (benchmarks.accuracy) and the latency on every runtime
(benchmarks.latency). Writes into --out: results.json (one row per model x artifact x target x
runtime), RESULTS.md (the tables a user reads) and two plots (error_vs_size.png, latency.png).
Published figures (TinyTracker, TinyTrackerS and iTracker papers) get their own rows, marked
"published", never mixed with measured ones.

Layout of --out: NAME/ (the build, with NAME/edgetpu/ and NAME/imx500/), results.json, RESULTS.md,
error_vs_size.png, latency.png. The report files appear only when complete.
"""
import contextlib
import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

import benchmarks
from benchmarks import (CPU, EDGETPU, FLOAT, IMX500, MCT_INT8, MEASURED, ON_SENSOR, PTQ_INT8, PUBLISHED,
                        TFMOT_INT8, accuracy, latency)
from zoo import defaults
from zoo.errors import UsageError

DEFAULT_MODELS = ("tinytracker", "tinytracker_s", "itracker")
TARGETS = (EDGETPU, IMX500)
# Training of each build when --epochs/--qat_epochs/--steps are not given: `zoo build`'s own
# defaults, so the table reports the builds a user makes, except for iTracker, whose training step
# costs ~45x TinyTracker's (16 vs 0.37 CPU-s per batch of 32): a few capped epochs keep the default
# comparison of the three models near 30 minutes on 2 cores, and its error is that of a briefly
# trained model (BUILD_NOTES.md).
TRAINING = {"itracker": {"epochs": 1, "qat_epochs": 1, "steps": 10}}
DEFAULT_TRAINING = {"epochs": defaults.EPOCHS, "qat_epochs": defaults.QAT_EPOCHS, "steps": None}
RESULTS, REPORT = "results.json", "RESULTS.md"
PLOTS = {"error_vs_size": "error_vs_size.png", "latency": "latency.png"}
NOT_ON_PI = "not measured: needs the Raspberry Pi AI Camera (python -m benchmarks.imx500_on_pi)"

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
flags.DEFINE_string("out", "runs/compare", "folder for the builds, results.json, RESULTS.md and plots")
flags.DEFINE_integer("epochs", None, "float training epochs of each build (default: "
                     f"{DEFAULT_TRAINING['epochs']}; itracker {TRAINING['itracker']['epochs']})",
                     lower_bound=1)
flags.DEFINE_integer("qat_epochs", None, "QAT fine-tuning epochs of each build (default: "
                     f"{DEFAULT_TRAINING['qat_epochs']}; itracker {TRAINING['itracker']['qat_epochs']})",
                     lower_bound=1)
flags.DEFINE_integer("steps", None, "cap on training batches per epoch of each build (default: the "
                     f"whole split; itracker {TRAINING['itracker']['steps']})", lower_bound=1)
flags.DEFINE_integer("input_size", None, "input side in pixels for every model (default: each "
                     "model's own)", lower_bound=8)
flags.DEFINE_list("targets", list(TARGETS), f"accelerators to compile for, any of {', '.join(TARGETS)}")
flags.DEFINE_list("extra_models", [], "third-party .tflite files to add to the latency table")
flags.DEFINE_bool("rebuild", False, "build and compile again even where --out holds a matching build")
flags.DEFINE_bool("report_only", False, "only render RESULTS.md and the plots again from "
                  "--out/results.json (e.g. after benchmarks.imx500_on_pi added the sensor's figures)")
for _name in ("data", "frames", "runtimes", "threads", "warmup", "num_runs", "max_seconds", "reference",
              "json"):
    flags.declare_key_flag(_name)


def _registered(names):
    from zoo import registry
    return bool(names) and set(names) <= set(registry.list_models())


flags.register_validator("models", _registered, "--models must be registered models (see `zoo list`)")
flags.register_validator("targets", lambda names: set(names) <= set(TARGETS),
                         f"--targets must be a comma-separated subset of {', '.join(TARGETS)}")
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
    try:
        manifest = benchmarks.read_manifest(folder)
    except UsageError:
        return "no build yet"
    recorded = {"mode": manifest["mode"], "data": manifest["data"]["root"],
                "epochs": manifest["training"]["epochs"], "qat_epochs": manifest["training"]["qat_epochs"],
                "steps": manifest["training"]["steps_per_epoch_cap"],
                "learning_rate": manifest["training"]["learning_rate"]}
    wanted = {"mode": "qat", "data": str(root), **settings, "learning_rate": defaults.learning_rate(name)}
    if input_size is not None:
        recorded["input_size"] = manifest["builder_args"].get("input_size")
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
    # for the whole process (MCT and evaluation here need the plain keras package).
    # Unbuffered, so that its epoch lines show as they happen when stderr is a file or a pipe.
    result = subprocess.run(command, stdout=sys.stderr, cwd=benchmarks.REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        raise benchmarks.Failure(f"zoo build {name} exited with status {result.returncode} "
                                 "(its output is above)")


def compile_edgetpu(folder, int8):
    """The Edge TPU adapter's report for the tfmot int8 model (pre-flight; compiled where a compiler is)."""
    from compilers import edgetpu
    say(f"{int8.model}: Edge TPU pre-flight and compile")
    return edgetpu.compile(int8.path, folder / EDGETPU, progress=lambda m: say(f"{int8.model}: {m}"))


def compile_imx500(folder, int8, rebuild):
    """The IMX500 adapter's report (reused when present), or the one-line reason it has none."""
    from compilers import imx500
    report_path, failure_path = folder / IMX500 / "report.json", folder / f"{IMX500}.failed"
    if not rebuild and report_path.is_file():
        say(f"{int8.model}: reusing the IMX500 package in {report_path.parent}")
        return json.loads(report_path.read_text()), None
    if not rebuild and failure_path.is_file():
        return None, failure_path.read_text().strip()
    say(f"{int8.model}: IMX500 conversion (MCT + imxconv-tf, minutes)")
    try:
        report = imx500.compile(int8.path, folder / IMX500, progress=lambda m: say(f"{int8.model}: {m}"))
        failure_path.unlink(missing_ok=True)
        return report, None
    except (imx500.CompileError, UsageError) as error:
        say(f"{int8.model}: IMX500 conversion failed: {error}")
        benchmarks.write_atomically(failure_path, f"{error}\n")  # not retried until --rebuild
        return None, str(error)


# ---- rows -----------------------------------------------------------------------------------

def _errors(accuracy_rows, artifact):
    found = next((row for row in accuracy_rows if row["artifact"] == artifact), {})
    return {key: found.get(key) for key in accuracy.ERRORS}


def edgetpu_fields(report):
    """The Edge TPU pre-flight and compiler figures of a row."""
    preflight, compiler = report["preflight"], report["compiler"]
    return {"edgetpu_status": report["status_detail"],
            "preflight": {key: preflight[key] for key in (
                "ops_total", "ops_on_tpu", "ops_on_cpu", "subgraphs", "cpu_ops", "param_bytes",
                "param_bytes_on_chip", "param_bytes_streamed", "problems")},
            "compiler": compiler and {key: compiler.get(key) for key in (
                "version", "ops_total", "ops_on_tpu", "ops_on_cpu", "subgraphs", "on_chip_bytes",
                "off_chip_bytes", "compile_ms", "error")}}


def imx500_row(int8, report, failure, accuracy_rows):
    """The IMX500 row: memory figures and the MCT int8 error; its latency comes from the Pi."""
    row = benchmarks.result_row(model=int8.model, artifact=MCT_INT8, target=IMX500, runtime=ON_SENSOR,
                                source=MEASURED, params=int8.params, macs=int8.macs,
                                **_errors(accuracy_rows, MCT_INT8))
    if report is None:
        return {**row, "status": f"not compiled: {failure}"}
    package = report["files"]["packer_zip"]
    row.update(file=package["path"], bytes=package["bytes"], memory=report["memory"], status=NOT_ON_PI)
    if not report["deployment"]["sensor_feeds_all_inputs"]:
        row["note"] = report["deployment"]["note"]
    return row


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
    """All measured rows of one model (its build exists)."""
    artifacts = benchmarks.build_artifacts(folder)
    int8 = next(a for a in artifacts if a.artifact == TFMOT_INT8)
    edgetpu_report, (imx500_report, imx500_failure) = None, (None, None)
    if EDGETPU in FLAGS.targets:
        with clock(EDGETPU):
            edgetpu_report = compile_edgetpu(folder, int8)
    if IMX500 in FLAGS.targets:
        with clock(IMX500):
            imx500_report, imx500_failure = compile_imx500(folder, int8, FLAGS.rebuild)
    with clock("accuracy"):
        say(f"{name}: cm error of every artifact on the test split of {root}")
        accuracy_rows = accuracy.accuracy_rows(folder, root, FLAGS.frames, app_name="compare",
                                               reuse_build_figures=True)
    with clock("latency"):
        say(f"{name}: latency")
        rows = [{**row, **_errors(accuracy_rows, row["artifact"])}
                for row in latency.cpu_rows(artifacts, FLAGS.runtimes, timing, FLAGS.reference or None,
                                            app_name="compare")]
        if edgetpu_report is not None:
            row = latency.edgetpu_row(int8, latency.compiled_model(folder), timing, app_name="compare")
            rows.append({**row, **_errors(accuracy_rows, TFMOT_INT8), **edgetpu_fields(edgetpu_report)})
    if IMX500 in FLAGS.targets:
        rows.append(imx500_row(int8, imx500_report, imx500_failure, accuracy_rows))
    baseline = next(row for row in accuracy_rows if row["artifact"] == accuracy.MEAN_BASELINE)
    return rows + [benchmarks.result_row(**baseline, status=MEASURED)]


def published_rows(models):
    return [benchmarks.result_row(**row, source=PUBLISHED, status=PUBLISHED)
            for row in PUBLISHED_ROWS if row["model"] in models]


def _machine():
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in
             (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []) if line.startswith("model name")]
    return {"cpu": names[0] if names else platform.processor(), "cores": os.cpu_count(),
            "machine": platform.machine(), "system": platform.platform(),
            "load_average": list(os.getloadavg())}


# ---- the report -----------------------------------------------------------------------------

MEASURED_TABLE = ("model", "artifact", "target", "runtime", "threads", "latency_ms_median",
                  "latency_ms_p90", "fps", "vs_reference", "cm", "cm_phone", "cm_tablet", "bytes",
                  "params", "macs", "status")
PUBLISHED_TABLE = ("model", "artifact", "target", "runtime", "latency_ms_median", "cm", "cm_phone",
                   "cm_tablet", "bytes", "params", "macs")


def _measured(rows):
    return [row for row in rows if row["source"] == MEASURED and row["artifact"] != accuracy.MEAN_BASELINE]


def _latency_cell(row):
    if row.get("latency_ms_median") is None:
        return row["status"]
    return f"{row['latency_ms_median']:.3f} ms median, {row['latency_ms_p90']:.3f} ms p90"


def _edgetpu_table(rows):
    lines = ["| model | operators on the TPU | CPU operators (why) | subgraphs | parameter bytes | "
             "compiler | latency |", "|" + " --- |" * 7]
    for row in rows:
        if row["target"] != EDGETPU or "preflight" not in row:
            continue
        pre, compiler = row["preflight"], row["compiler"]
        cpu = "; ".join(f"{op['op']} x{op['count']} ({op['status']})" for op in pre["cpu_ops"]) or "none"
        compiled = (f"{compiler['version']}: {compiler['ops_on_tpu']}/{compiler['ops_total']} on the TPU"
                    if compiler and not compiler["error"] else
                    f"failed: {compiler['error']}" if compiler else "not installed (pre-flight only)")
        lines.append(f"| {row['model']} | {pre['ops_on_tpu']}/{pre['ops_total']} | {cpu} | "
                     f"{pre['subgraphs']} | {pre['param_bytes']:,} | {compiled} | {_latency_cell(row)} |")
    return "\n".join(lines)


def _imx500_table(rows):
    lines = ["| model | memory used (bytes) | available (bytes) | utilization | fits | MCT int8 cm | "
             "latency | note |", "|" + " --- |" * 8]
    for row in rows:
        if row["target"] != IMX500 or row["source"] != MEASURED:
            continue
        memory = row.get("memory")
        figures = (f"{memory['usage_bytes']:,} | {memory['available_bytes']:,} | "
                   f"{memory['utilization']:.1%} | {'yes' if memory['fit_in_chip'] else 'no'}"
                   if memory else "- | - | - | -")
        lines.append(f"| {row['model']} | {figures} | {benchmarks.cell(row, 'cm')} | {_latency_cell(row)} | "
                     f"{row.get('note', '')} |")
    return "\n".join(lines)


def _speedup_table(rows):
    """int8 over float on the CPU, per model and runtime (from the rows above)."""
    lines = ["| model | runtime | float ms | tfmot int8 ms | PTQ int8 ms | float / tfmot int8 |",
             "|" + " --- |" * 6]
    cpu = {(r["model"], r["runtime"], r["artifact"]): r.get("latency_ms_median")
           for r in rows if r["target"] == CPU and r["source"] == MEASURED}
    for model, runtime in dict.fromkeys((m, rt) for m, rt, a in cpu if a == FLOAT):
        float_ms, int8_ms, ptq_ms = (cpu.get((model, runtime, a)) for a in (FLOAT, TFMOT_INT8, PTQ_INT8))
        ratio = f"{float_ms / int8_ms:.2f}x" if float_ms and int8_ms else "-"
        cells = [f"{v:.3f}" if v else "-" for v in (float_ms, int8_ms, ptq_ms)]
        lines.append(f"| {model} | {runtime} | {' | '.join(cells)} | {ratio} |")
    return "\n".join(lines)


def render_markdown(results):
    rows = results["rows"]
    measured = _measured(rows)
    machine = results["machine"]
    baselines = [row for row in rows if row["artifact"] == accuracy.MEAN_BASELINE]
    published = [row for row in rows if row["source"] == PUBLISHED]
    parts = [
        "# Results",
        f"Command: `{results['command']}` ({results['created']}, "
        f"{results['seconds']['total'] / 60:.1f} min).",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['system']}; 1-minute load "
        f"average {machine['load_average'][0]:.2f} at the start"
        + (f", {machine['load_average_end'][0]:.2f} at the end" if "load_average_end" in machine else "")
        + f". Data: `{results['data']['root']}` "
        f"(test split). Latency: {results['timing']['threads']} thread(s), median of up to "
        f"{results['timing']['num_runs']} runs after {results['timing']['warmup']} warm-up runs; "
        f"'x reference' is the ratio to `{results['timing']['reference'] or 'none'}` timed right before "
        "each row in the same process.",
        "## Measured here",
        benchmarks.markdown_table(measured, MEASURED_TABLE),
        "Mean predictor (always the training mean; the floor to beat): " +
        ", ".join(f"{row['model']} {row['cm']:.3f} cm" for row in baselines) + ".",
        "## int8 speed-up over float on the CPU",
        _speedup_table(rows),
    ]
    if any(row["target"] == EDGETPU for row in measured):
        parts += ["## Edge TPU", _edgetpu_table(measured)]
    if any(row["target"] == IMX500 for row in measured):
        parts += ["## IMX500", _imx500_table(measured)]
    if published:
        parts += ["## Published (not measured here)", benchmarks.markdown_table(published, PUBLISHED_TABLE),
                  "\n".join(f"- {row['model']}: {row['note']}. {row['citation']}." for row in published)]
    parts += ["## Plots"] + [f"![{name}]({file})" for name, file in PLOTS.items()]
    return "\n\n".join(parts) + "\n"


def render_plots(results, folder):
    """error_vs_size.png and latency.png in ``folder``."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = results["rows"]
    models = sorted({row["model"] for row in rows})
    colours = {model: f"C{index}" for index, model in enumerate(models)}
    markers = {FLOAT: "o", TFMOT_INT8: "s", PTQ_INT8: "^", MCT_INT8: "D"}

    figure, axes = pyplot.subplots(figsize=(8, 5.5))
    seen = set()
    for row in rows:
        cm, phone_only = row.get("cm"), row.get("cm") is None and row.get("cm_phone") is not None
        cm = row["cm_phone"] if phone_only else cm  # a paper that gives phone and tablet only
        key = (row["source"], row["model"], row["artifact"])
        if cm is None or not row.get("bytes") or key in seen or row["artifact"] == accuracy.MEAN_BASELINE:
            continue
        seen.add(key)
        published = row["source"] == PUBLISHED
        axes.scatter(row["bytes"], cm, s=60, marker=markers.get(row["artifact"], "*"),
                     facecolors="none" if published else colours[row["model"]],
                     edgecolors=colours[row["model"]])
        axes.annotate(f"{row['model']} {row['artifact'] or ''}{' (published)' if published else ''}"
                      f"{' phone' if phone_only else ''}",
                      (row["bytes"], cm), fontsize=7, xytext=(4, 3), textcoords="offset points")
    for row in rows:
        if row["artifact"] == accuracy.MEAN_BASELINE:
            axes.axhline(row["cm"], color=colours[row["model"]], linestyle="--", linewidth=0.8)
            axes.annotate(f"{row['model']} mean predictor", (0.01, row["cm"]), fontsize=7,
                          xycoords=("axes fraction", "data"), xytext=(0, 3), textcoords="offset points")
    axes.set_xscale("log")
    axes.set_xlabel("model file size (bytes; IMX500: packerOut.zip)")
    axes.set_ylabel("test error (cm)")
    axes.set_title("Error vs size (filled: measured here; hollow: published; dashed: mean predictor)")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(folder / PLOTS["error_vs_size"], dpi=110)
    pyplot.close(figure)

    timed = [row for row in rows if row.get("latency_ms_median") is not None]
    figure, axes = pyplot.subplots(figsize=(8, 0.8 + 0.28 * max(len(timed), 1)))
    labels = []
    for index, row in enumerate(timed):
        published = row["source"] == PUBLISHED
        axes.barh(index, row["latency_ms_median"], color=colours[row["model"]], edgecolor="black",
                  linewidth=0.3, hatch="//" if published else None, alpha=0.5 if published else 1.0)
        labels.append(f"{row['model']} {row['artifact'] or ''} {row['target'] or ''}/{row['runtime'] or ''}"
                      + (" (published)" if published else ""))
    axes.set_yticks(range(len(timed)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel(f"median latency per frame (ms, log scale; {results['timing']['threads']} "
                    "thread(s) on the CPU)")
    axes.set_title("Latency per model and runtime (hatched: published)")
    axes.grid(True, axis="x", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(folder / PLOTS["latency"], dpi=110)
    pyplot.close(figure)


def write_report(results, out):
    """results.json, RESULTS.md and the plots, made in a temporary folder and moved in complete."""
    work = pathlib.Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        benchmarks.write_json(work / RESULTS, results)
        (work / REPORT).write_text(render_markdown(results))
        render_plots(results, work)
        for path in sorted(work.iterdir(), key=lambda p: p.name == RESULTS):  # results.json last
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- the app --------------------------------------------------------------------------------

def run_comparison(out):
    from zoo import data as zoo_data
    root = pathlib.Path(FLAGS.data).absolute() if FLAGS.data else zoo_data.default_data_root()
    zoo_data.open_gazecapture(root)  # a wrong --data fails here, before any build
    timing = latency.Timing.from_flags()
    results = {"schema": benchmarks.SCHEMA_VERSION,
               "command": " ".join(["python -m benchmarks.compare", *sys.argv[1:]]),
               "created": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": _machine(), "data": {"root": str(root)},
               "timing": {**vars(timing), "runtimes": FLAGS.runtimes, "reference": FLAGS.reference or None},
               "seconds": {}, "rows": []}
    started = time.monotonic()
    for number, name in enumerate(FLAGS.models, 1):
        say(f"({number}/{len(FLAGS.models)}) {name} [{(time.monotonic() - started) / 60:.1f} min so far]")
        folder, clock = out / name, Stopwatch()
        settings = training_settings(name, FLAGS.epochs, FLAGS.qat_epochs, FLAGS.steps)
        with clock("build"):
            ensure_build(name, folder, root, settings, FLAGS.input_size, FLAGS.rebuild)
        results["rows"] += model_rows(name, folder, root, timing, clock)
        results["seconds"][name] = clock.seconds
    if FLAGS.extra_models:
        say(f"latency of {len(FLAGS.extra_models)} extra model(s)")
        extras = [benchmarks.extra_artifact(path) for path in FLAGS.extra_models]
        results["rows"] += latency.cpu_rows(extras, FLAGS.runtimes, timing, FLAGS.reference or None,
                                            app_name="compare")
    results["rows"] += published_rows(FLAGS.models)
    results["seconds"]["total"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_end"] = list(os.getloadavg())
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; choose models with --models=A,B")
    out = pathlib.Path(FLAGS.out).absolute()
    if FLAGS.report_only:
        if not (out / RESULTS).is_file():
            raise UsageError(f"--report_only: {out / RESULTS} does not exist; run the comparison first")
        results = benchmarks.read_results(out / RESULTS)
        if "machine" not in results:
            raise UsageError(f"--report_only: {out / RESULTS} was not written by benchmarks.compare")
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"cannot create --out {out}: {error.strerror}; choose another folder") from None
        results = run_comparison(out)
    write_report(results, out)
    benchmarks.print_rows(results["rows"] if FLAGS.json else _measured(results["rows"]), MEASURED_TABLE,
                          FLAGS.json)
    say(f"wrote {out / RESULTS}, {out / REPORT} and {', '.join(PLOTS.values())}"
        + (f" in {results['seconds']['total'] / 60:.1f} min" if not FLAGS.report_only else ""))


if __name__ == "__main__":
    benchmarks.run(main)
