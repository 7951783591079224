"""Training at scale: how `zoo build`'s index, crop cache and one training epoch grow with the
number of frames, and what full GazeCapture (2.4M frames, the paper's 20 epochs) would take here
and per replica.

  python -m benchmarks.scale                              # 10k and 50k rendered frames, tinytracker
  python -m benchmarks.scale --sizes=10000,50000,100000 --json

For each size a dataset of --recording_frames frames per recording is rendered (zoo.data, seed 0)
into --datasets and kept there, so that a second run skips the rendering (its first time is kept
beside it). Each stage then runs in a fresh child process (this module with --stage), so that its
memory is its own: the child reports the wall time of the stage alone, its resident memory when
the stage began (the interpreter, TensorFlow, the model) and its peak during the stage (VmHWM,
reset at the start through /proc/self/clear_refs); this process records the child's whole-life
peak from wait4 apart, and its own. Stages: render (the rendered data only), index
(zoo.data.open_gazecapture), cache (the train and val crop caches a build writes, from a cold
start) and epoch (one epoch of the build's pipeline, model and optimizer: train and val).
--mirrored_replicas also times the smallest size's epoch under --strategy mirrored on that many
CPU replicas of the same cores: the cost of the strategy itself.

Growth: each stage's exponent k in time ~ frames^k (and memory) between consecutive sizes.
Extrapolation: the largest size's time scaled linearly to --full_frames (each stage does the
same work per frame; the exponents show how far that holds), the epoch's without its first step
(tracing, once per run) and times --full_epochs; its memory by the last exponent, held between 0
and 1 (the index is a table of every frame, the cache is written as a stream, the shuffle buffer
is capped). With R replicas the training time is divided by R (ideal data parallelism), while the
index and the crop cache are not: every worker indexes and caches the whole split (BUILD_NOTES,
"Training at scale").
"""
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import time

from absl import flags

import benchmarks
from zoo import artifacts
from zoo.train import defaults
from zoo.errors import UsageError

STAGES = ("render", "index", "cache", "epoch")
RESULT_TAG = "[scale result] "
MIN_SUBJECTS = 20  # the renderer holds out 15% of the subjects for val and 15% for test
MAX_TRAIN_BATCH = 4096  # as zoo build's --batch-size
TOOL = artifacts.Tool("benchmarks.scale", "scale")  # --datasets, for zoo.artifacts' rule (no marker)

flags.DEFINE_list("sizes", ["10000", "50000"],
                  "dataset sizes in frames, each a multiple of --recording_frames")
flags.DEFINE_integer("recording_frames", 100, "frames per rendered recording (subjects = size / this)",
                     lower_bound=1)
flags.DEFINE_string("network", "tinytracker", "registered model trained in the epoch stage (zoo list)")
flags.DEFINE_integer("train_batch", defaults.BATCH_SIZE, "batch size per replica", lower_bound=1,
                     upper_bound=MAX_TRAIN_BATCH)
flags.DEFINE_string("datasets", None, "folder for the rendered datasets and their crop caches, kept "
                    "for the next run (default: the zoo cache folder's scale/)")
flags.DEFINE_integer("mirrored_replicas", 2, "also time the smallest size's epoch under MirroredStrategy "
                     "on this many CPU replicas (0: do not)", lower_bound=0, upper_bound=64)
flags.DEFINE_list("replica_counts", ["1", "2", "8"], "replica counts of the extrapolation")
flags.DEFINE_integer("full_frames", 2_400_000, "frames of the extrapolation (GazeCapture: about 2.4M)",
                     lower_bound=1)
flags.DEFINE_integer("full_epochs", 20, "training epochs of the extrapolation (the paper's: 20)",
                     lower_bound=1)
flags.DEFINE_enum("stage", None, STAGES, "internal: run this one stage here and print its figures")
flags.DEFINE_string("stage_root", None, "internal: the dataset of --stage")
flags.DEFINE_integer("stage_replicas", 0, "internal: CPU replicas of --stage=epoch (0: the default strategy)")
flags.declare_key_flag("json")
FLAGS = flags.FLAGS


# ---- one stage, in a child process ------------------------------------------------------------

def _status_kib(field):
    """A figure of /proc/self/status in KiB (VmRSS, VmHWM), None where there is none."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    """Resets VmHWM to the current RSS (Linux 4.0+); False where that is not allowed."""
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _cache_dir(root):
    return pathlib.Path(f"{root}.cache")


def _model_and_specs(replicas):
    from zoo.train import distribute
    from zoo.models import registry
    runtime = distribute.start(distribute.check("mirrored" if replicas else "default", replicas or None))
    with runtime.scope():
        model = registry.create_model(FLAGS.network)
    return runtime, model, registry.input_specs(FLAGS.network, model)


def _prepare(stage, root):
    """``stage`` as a function returning its figures ({frames, ...}), with what it needs imported
    and built first (TensorFlow, the model, the pipeline), so that what is measured is its own."""
    from zoo import data
    if stage == "render":
        subjects = int(root.name.rpartition("-")[2].split("x")[0])  # _root's name

        def render():
            data.render_dataset(root, subjects, FLAGS.recording_frames, seed=0, progress=False)
            return {"frames": subjects * FLAGS.recording_frames}
        return render
    if stage == "index":
        return lambda: {"frames": sum(data.open_gazecapture(root, progress=False).split_counts().values())}
    runtime, model, specs = _model_and_specs(FLAGS.stage_replicas)
    counts = data.open_gazecapture(root, progress=False).split_counts()
    if stage == "epoch":
        return _prepare_epoch(root, runtime, model, specs, counts)

    def cache():
        for split in ("train", "val"):
            data.make_dataset(root, specs, split, 1, cache_dir=_cache_dir(root), progress=False)
        return {"frames": counts["train"] + counts["val"]}
    return cache


def _prepare_epoch(root, runtime, model, specs, counts):
    """One epoch of train (and val) through zoo.train.build's own pipeline and optimizer setup."""
    import tensorflow as tf

    from zoo.train.build import _training_datasets
    batch = runtime.global_batch(FLAGS.train_batch)
    train, val = (runtime.shard(d) for d in _training_datasets(root, specs, batch, 0, None, _cache_dir(root)))
    with runtime.scope():
        schedule = tf.keras.optimizers.schedules.CosineDecay(1e-3, -(-counts["train"] // batch))
        model.compile(optimizer=tf.keras.optimizers.Adam(schedule), loss="mse")
    first = {}

    class FirstStep(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            first.setdefault("seconds", time.monotonic())

    def epoch():
        started = time.monotonic()
        model.fit(train, validation_data=val, epochs=1, verbose=0, callbacks=[FirstStep()])
        ended = time.monotonic()
        return {"frames": counts["train"], "val_frames": counts["val"], "replicas": runtime.replicas,
                "first_step_seconds": round(first["seconds"] - started, 2),
                "seconds": round(ended - started, 2), "steady_seconds": round(ended - first["seconds"], 2)}
    return epoch


def stage_main(stage, root):
    """The child: runs ``stage`` and prints its figures as one tagged JSON line."""
    work = _prepare(stage, root)
    start_kib = _status_kib("VmRSS")
    reset = _reset_peak()
    started = time.monotonic()
    figures = work()
    figures.setdefault("seconds", round(time.monotonic() - started, 2))
    figures.update(start_mib=_mib(start_kib), peak_mib=_mib(_status_kib("VmHWM")) if reset else None)
    print(RESULT_TAG + json.dumps(figures), flush=True)


def _mib(kib):
    return None if kib is None else round(kib / 1024, 1)


# ---- the runs, the growth and the extrapolation -----------------------------------------------

def _subjects(size):
    return size // FLAGS.recording_frames


def _root(datasets, size):
    return datasets / f"gazecapture-{_subjects(size)}x{FLAGS.recording_frames}"


def _check_flags():
    """(sizes, replica counts, datasets folder), checked before anything runs or is written."""
    try:
        sizes = sorted({int(size) for size in FLAGS.sizes})
        replica_counts = [int(count) for count in FLAGS.replica_counts]
    except ValueError:
        raise UsageError("--sizes and --replica_counts must be comma-separated whole numbers") from None
    from zoo.data import render
    for size in sizes:
        if size % FLAGS.recording_frames or not MIN_SUBJECTS <= _subjects(size) <= render.MAX_SUBJECTS:
            raise UsageError(f"--sizes: {size:,} frames is not {MIN_SUBJECTS} to {render.MAX_SUBJECTS:,} "
                             f"recordings of --recording_frames={FLAGS.recording_frames}; give a multiple "
                             "of it in that range")
    if FLAGS.recording_frames > render.MAX_FRAMES:
        raise UsageError(f"--recording_frames must be at most {render.MAX_FRAMES:,}, "
                         f"got {FLAGS.recording_frames:,}")
    if not replica_counts or min(replica_counts) < 1:
        raise UsageError("--replica_counts must be whole numbers of at least 1")
    from zoo.models import registry
    registry.get_entry(FLAGS.network)  # UsageError for an unknown name
    datasets = pathlib.Path(FLAGS.datasets).absolute() if FLAGS.datasets else render.cache_root() / "scale"
    datasets = artifacts.check_output(datasets, TOOL, overwrite=True)  # a folder it adds to, not replaces
    _check_space(datasets, [size for size in sizes if not _root(datasets, size).is_dir()], render)
    datasets.mkdir(parents=True, exist_ok=True)
    return sizes, replica_counts, datasets


def _check_space(datasets, sizes, render):
    """UsageError when the datasets still to render cannot fit (the renderer's own floor per frame)."""
    existing = next(folder for folder in (datasets, *datasets.parents) if folder.exists())
    needed, free = sum(sizes) * render.BYTES_PER_FRAME, shutil.disk_usage(existing).free
    if needed > free:
        raise UsageError(f"rendering {', '.join(f'{size:,}' for size in sizes)} frames needs at least "
                         f"{needed // 1_000_000:,} MB and {existing} has {free // 1_000_000:,} MB free; free "
                         "some space, choose other --sizes or another --datasets")


def _child(stage, root, replicas=0):
    """The figures of ``stage`` run in a fresh child process, with the child's whole-life peak RSS
    (wait4) as ``process_peak_mib``; its output is kept in ROOT.STAGE.log."""
    log = pathlib.Path(f"{root}.{stage}{replicas or ''}.log")
    command = [sys.executable, "-m", "benchmarks.scale", f"--stage={stage}", f"--stage_root={root}",
               f"--stage_replicas={replicas}", f"--network={FLAGS.network}",
               f"--train_batch={FLAGS.train_batch}",
               f"--recording_frames={FLAGS.recording_frames}"]
    on = f" on {replicas} CPU replicas" if replicas else ""
    benchmarks.progress("scale", f"{stage} {root.name}{on}")
    with log.open("w") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=benchmarks.REPO)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in log.read_text().splitlines() if line.startswith(RESULT_TAG)]
    if child.returncode or not lines:
        raise benchmarks.Failure(f"the {stage} stage on {root} exited {child.returncode}; see {log}")
    return {**json.loads(lines[-1][len(RESULT_TAG):]), "process_peak_mib": round(usage.ru_maxrss / 1024, 1)}


def measure(sizes, datasets):
    """One row per size and stage (the render row from the first rendering of that dataset)."""
    rows = []
    for size in sizes:
        root = _root(datasets, size)
        rendered = pathlib.Path(f"{root}.render.json")
        if not (root.is_dir() and rendered.is_file()):
            if root.exists():
                raise UsageError(f"{root} exists without {rendered.name}: remove it (an interrupted "
                                 "rendering)")
            rendered.write_text(json.dumps(_child("render", root)))
        rows.append({"size": size, "stage": "render", **json.loads(rendered.read_text())})
        rows.append({"size": size, "stage": "index", **_child("index", root)})
        _remove_cache(root)
        rows.append({"size": size, "stage": "cache", **_child("cache", root)})
        rows.append({"size": size, "stage": "epoch", **_child("epoch", root)})
        if FLAGS.mirrored_replicas and size == sizes[0]:
            rows.append({"size": size, "stage": f"epoch, mirrored x{FLAGS.mirrored_replicas}",
                         **_child("epoch", root, FLAGS.mirrored_replicas)})
    return rows


def _remove_cache(root):
    shutil.rmtree(_cache_dir(root), ignore_errors=True)


def _exponent(small, large, key):
    """k in value ~ size^k between two rows of one stage (None when a value is not positive)."""
    if not (small.get(key) and large.get(key)) or small[key] <= 0 or large[key] <= 0:
        return None
    return round(math.log(large[key] / small[key]) / math.log(large["size"] / small["size"]), 2)


def growth(rows):
    """Per stage and pair of consecutive sizes: the exponents of time and of the stage's memory."""
    result = []
    for stage in STAGES:
        mine = [dict(row, stage_mib=_stage_mib(row)) for row in rows if row["stage"] == stage]
        for small, large in zip(mine, mine[1:]):
            result.append({"stage": stage, "sizes": f"{small['size']} -> {large['size']}",
                           "time_k": _exponent(small, large, _time_key(stage)),
                           "memory_k": _exponent(small, large, "stage_mib")})
    return result


def _time_key(stage):
    """The epoch's time without its first step (tracing: once per run, whatever the size)."""
    return "steady_seconds" if stage == "epoch" else "seconds"


def _stage_mib(row):
    """What the stage itself added to its process's resident memory at its peak."""
    if row.get("peak_mib") is None or row.get("start_mib") is None:
        return None
    return round(row["peak_mib"] - row["start_mib"], 1)


def extrapolate(rows, exponents, replica_counts, full_frames, full_epochs):
    """Hours and peak MiB per worker of each stage at ``full_frames`` (the epoch stage times
    ``full_epochs``, its time divided by each replica count), from the largest size."""
    largest = max(row["size"] for row in rows)
    last = {entry["stage"]: entry for entry in exponents}
    factor = full_frames / largest
    result = []
    for stage in ("index", "cache", "epoch"):
        row = next(r for r in rows if r["stage"] == stage and r["size"] == largest)
        seconds = row[_time_key(stage)] * factor * (full_epochs if stage == "epoch" else 1)
        memory_k = min(max(last.get(stage, {}).get("memory_k") or 0.0, 0.0), 1.0)
        peak = (row.get("start_mib") or 0) + (_stage_mib(row) or 0) * factor ** memory_k
        for replicas in replica_counts:
            result.append({"stage": stage if stage != "epoch" else f"train {full_epochs} epochs",
                           "replicas": replicas, "memory_k": memory_k,
                           "hours": round(seconds / (replicas if stage == "epoch" else 1) / 3600, 2),
                           "peak_mib_per_worker": round(peak)})
    return result


# ---- the report -------------------------------------------------------------------------------

def _markdown(rows, columns):
    """A Markdown table of ``rows`` with ``columns`` [(key, header)]; '-' where a value is None."""
    def cell(value):
        return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
    lines = ["| " + " | ".join(header for _, header in columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


MEASURED_COLUMNS = [("size", "frames"), ("stage", "stage"), ("frames", "stage frames"), ("seconds", "s"),
                    ("steady_seconds", "s after 1st step"), ("rate", "frames/s"),
                    ("start_mib", "RSS at start MiB"), ("peak_mib", "peak MiB"),
                    ("stage_mib", "stage adds MiB"), ("process_peak_mib", "child peak MiB (wait4)")]
GROWTH_COLUMNS = [("stage", "stage"), ("sizes", "frames"), ("time_k", "time ~ frames^k"),
                  ("memory_k", "stage memory ~ frames^k")]
FULL_COLUMNS = [("stage", "stage"), ("replicas", "replicas"), ("hours", "hours"),
                ("peak_mib_per_worker", "peak MiB per worker")]


def report(rows, exponents, full, own_peak_mib):
    """Prints the three tables (or, with --json, one JSON document)."""
    for row in rows:
        row["stage_mib"] = _stage_mib(row)
        row["rate"] = round(row["frames"] / row[_time_key(row["stage"].split(",")[0])], 1) \
            if row.get("frames") and row.get("seconds") else None
    if FLAGS.json:
        print(json.dumps({"rows": rows, "growth": exponents, "full": full, "parent_peak_mib": own_peak_mib},
                         indent=1))
        return
    print(_markdown(rows, MEASURED_COLUMNS), end="\n\n")
    print(_markdown(exponents, GROWTH_COLUMNS), end="\n\n")
    print(f"At {FLAGS.full_frames:,} frames, {FLAGS.full_epochs} epochs, on this machine:")
    print(_markdown(full, FULL_COLUMNS))
    print(f"\nthis process's own peak: {own_peak_mib} MiB")


def main(argv):
    if not FLAGS.stage and (FLAGS["stage_root"].present or FLAGS["stage_replicas"].present):
        raise UsageError("--stage_root and --stage_replicas are for --stage, this app's own child processes; "
                         "drop them")
    if FLAGS.stage:
        if not FLAGS.stage_root:
            raise UsageError("--stage needs --stage_root")
        stage_main(FLAGS.stage, pathlib.Path(FLAGS.stage_root))
        return
    if len(argv) > 1:
        raise UsageError(f"benchmarks.scale takes no arguments, got {' '.join(argv[1:])}")
    sizes, replica_counts, datasets = _check_flags()
    rows = measure(sizes, datasets)
    exponents = growth(rows)
    full = extrapolate(rows, exponents, replica_counts, FLAGS.full_frames, FLAGS.full_epochs)
    import resource
    report(rows, exponents, full, round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))


if __name__ == "__main__":
    benchmarks.run(main)
