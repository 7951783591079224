"""`zoo build`: float training, optional quantization-aware fine-tuning or post-training
quantization, int8 TFLite export, evaluation of every artifact, and the model card.

Everything is written into ``<out>.partial`` next to ``--out`` and renamed into place only when
complete, so an interrupted build leaves no partial artifact; ``--resume`` picks the partial folder
up again from its last epoch checkpoint.

tfmot is imported only for ``--qat``, and before any model is built: it switches tf.keras to
tf_keras, and the QAT wrappers only accept tf_keras models.

``--strategy`` (zoo.train.distribute) trains the float and QAT stages under tf.distribute with
``--batch-size`` per replica. The default strategy enters no scope at all, so its figures are
those of a build without tf.distribute. On multi_worker every worker trains and only the chief
writes the build: the others keep their copies of what Keras saves (which each must save, since
reading the synchronized variables is a collective) in a folder of their own, removed at the end,
and read the chief's files after a barrier; the chief alone converts, evaluates and publishes.
"""
import dataclasses
import importlib
import itertools
import os
import pathlib
import shutil
import sys
import time
import typing

import numpy as np

from zoo import artifacts, tflite
from zoo import data as zoo_data
from zoo.artifacts.files import file_record, package_versions
from zoo.errors import Interrupted, UsageError
from zoo.inference import boxmap
from zoo.inference.evaluate import gaze_errors_of
from zoo.inference.loader import load_predictor
from zoo.models import registry, tracing
from zoo.train import defaults, distribute, qat, startup
from zoo.train.card import embed_card, model_card
from zoo.train.resume import STATE_FILE, State, resumable, work_folder

MODES = ("float", "qat", "ptq")
TOOL = artifacts.Tool("zoo build", "build")  # what it writes, for zoo.artifacts' output rule
RESUMABLE_LINE = "[zoo build] resumable after"  # said once each epoch's backup is written
REPRESENTATIVE_FRAMES = 200
# the packages whose versions a build records: what trains, converts and runs its files
BUILD_PACKAGES = ("tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "ai-edge-litert",
                  "tflite-runtime", "numpy")
CALIBRATION_FRAMES = 128  # QAT's starting activation ranges: one batch of training frames


def _keras_verbosity():
    return 1 if sys.stdout.isatty() else 2


def _to_unit_range(labels_cm):
    return labels_cm / registry.GAZE_SCALE_CM


def _training_datasets(root, specs, batch_size, seed, steps, cache_dir):
    """(train, val) yielding (inputs, targets in the tanh range); ``steps`` caps batches per epoch."""
    def scaled(dataset):
        dataset = dataset.map(lambda inputs, labels: (inputs, _to_unit_range(labels)))
        return dataset.take(steps) if steps else dataset

    train = zoo_data.make_dataset(root, specs, "train", batch_size, augment=True, shuffle=True,
                                  seed=seed, cache_dir=cache_dir)
    val = zoo_data.make_dataset(root, specs, "val", batch_size, cache_dir=cache_dir)
    return scaled(train), scaled(val)


def _fit(model, train, val, epochs, steps_per_epoch, learning_rate, plan, stage, state, runtime, first=()):
    """Trains with a per-epoch backup (for --resume) and keeps the best weights on val; call it in
    the runtime's scope. ``first``: callbacks to run before the others at each epoch's end.

    The learning rate follows a cosine from ``learning_rate`` to zero over the whole run, so a
    high starting rate (zoo.train.defaults) still ends settled. The schedule is a function of the
    optimizer's step count, which the backup restores, so --resume continues it. Every worker
    restores from the chief's backup (Keras' BackupAndRestore writes the others' to a temporary
    folder inside it and removes it) and, after a barrier, loads the chief's best weights.
    """
    import tensorflow as tf

    # Under a strategy the legacy h5 format: TF 2.15 cannot load a Keras v3 .weights.h5 file into
    # distributed variables (it divides an h5py dataset by the replica count for the loss metric).
    best_path = plan.work / f"{stage}_best{'.h5' if runtime.strategy else '.weights.h5'}"
    best = state.values.setdefault("best_val_loss", {}).get(stage, np.inf)

    class KeepBest(tf.keras.callbacks.Callback):
        """Keeps the best weights on val and says when an epoch is safe: it runs after
        BackupAndRestore, so from that line on an interrupted build resumes after this epoch."""
        def on_epoch_end(self, epoch, logs=None):
            nonlocal best
            if logs["val_loss"] < best:
                best = float(logs["val_loss"])
                self.model.save_weights(best_path)
                state.values["best_val_loss"][stage] = best
                state.save()
            print(f"{RESUMABLE_LINE} {stage} epoch {epoch + 1}/{epochs}", flush=True)

    schedule = tf.keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch)
    model.compile(optimizer=tf.keras.optimizers.Adam(schedule), loss="mse")
    # The optimizer's slots made here, not in the first step: a tf.function that creates variables
    # is traced twice, and tracing a training step costs more than a tiny build's training.
    model.optimizer.build(model.trainable_variables)
    callbacks = [*first, tf.keras.callbacks.BackupAndRestore(str(plan.shared / f"{stage}_backup")),
                 KeepBest(), tf.keras.callbacks.TensorBoard(str(plan.work / "logs" / stage))]
    model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks,
              verbose=_keras_verbosity())
    runtime.barrier()  # the chief's best weights are written before anyone reads them
    model.load_weights(plan.shared / best_path.name)
    return best


@dataclasses.dataclass
class _Plan:
    """A build's checked settings, made before anything is written or TensorFlow is imported."""
    name: str
    entry: object
    mode: str
    out: pathlib.Path
    work: pathlib.Path  # where this process writes: <out>.partial, or a non-chief task's own folder
    shared: pathlib.Path  # the chief's <out>.partial: the backups and files every worker reads
    distribution: distribute.Request
    inputs: list  # the paths the command line gave (--data, --weights), in the output's marker
    overwrite: bool
    index: object
    builder_kwargs: dict
    builder_args: dict
    settings: dict
    learning_rate: float
    qat_learning_rate: float


def _plan(request):
    """The checked plan of ``request``: every argument, TF_CONFIG and the data, before anything is written."""
    name, mode, seed = request.name, request.mode, request.seed
    distribution = distribute.check(request.strategy, request.cpu_replicas, request.cluster_timeout)
    entry = registry.get_entry(name)
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    for flag, value in (("--epochs", request.epochs), ("--qat-epochs", request.qat_epochs),
                        ("--batch-size", request.batch_size)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if request.learning_rate is not None and not (0 < request.learning_rate < float("inf")):
        raise UsageError(f"--learning-rate must be a positive number, got {request.learning_rate}")
    if seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {seed}")
    learning_rate = request.learning_rate or defaults.learning_rate(name)
    builder_kwargs = dict(request.builder_kwargs or {})
    builder_args = entry.builder_arguments(**builder_kwargs)  # raises on unknown arguments
    inputs = [path for path in (request.data, builder_kwargs.get("weights")) if path]
    default = pathlib.Path("runs") / name
    out = artifacts.check_output(request.out or default, TOOL, inputs, request.overwrite, default)
    root = pathlib.Path(request.data).absolute() if request.data else zoo_data.default_data_root()
    index = zoo_data.open_gazecapture(root)
    empty = [split for split, count in index.split_counts().items() if count == 0]
    if empty:
        raise UsageError(f"{root} has no valid frames in the {' and '.join(empty)} split; a build "
                         "trains on train, keeps the best weights on val and evaluates on test: see "
                         f"`zoo data stats {root}`")
    work = work_folder(out, request.resume, distribution)
    settings = {"model": name, "mode": mode, "data": str(root), "epochs": request.epochs,
                "qat_epochs": request.qat_epochs, "batch_size": request.batch_size, "seed": seed,
                "steps": request.steps, "int8_output": request.int8_output, "learning_rate": learning_rate,
                "builder_kwargs": {k: str(v) for k, v in builder_kwargs.items()}}
    if distribution.strategy != "default":  # absent on the default: its interrupted builds still resume
        settings["distribution"] = distribution.settings()
    return _Plan(name, entry, mode, out, work, out.with_name(out.name + ".partial"), distribution, inputs,
                 request.overwrite, index, builder_kwargs, builder_args, settings, learning_rate,
                 learning_rate * defaults.QAT_LEARNING_RATE_FRACTION)


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    """What `zoo build` is asked to make: its flags, as one settings record. ``learning_rate``
    None: the model's default (zoo.train.defaults.learning_rate); ``strategy``, ``cpu_replicas``,
    ``cluster_timeout``: zoo.train.distribute; ``batch_size`` is per replica; ``command``: the
    command line recorded in the manifest."""
    name: str
    mode: str = "float"
    data: typing.Optional[str] = None
    epochs: int = defaults.EPOCHS
    qat_epochs: int = defaults.QAT_EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    out: typing.Optional[str] = None
    seed: int = 0
    resume: bool = False
    int8_output: bool = False
    steps: typing.Optional[int] = None
    learning_rate: typing.Optional[float] = None
    builder_kwargs: typing.Optional[dict] = None
    command: typing.Optional[typing.List[str]] = None
    overwrite: bool = False
    strategy: str = "default"
    cpu_replicas: typing.Optional[int] = None
    cluster_timeout: typing.Optional[float] = None


def build(request: BuildRequest) -> pathlib.Path:
    """Builds the registered model ``request.name``; returns the path of the finished output folder
    (on each worker of a multi_worker build, once the chief has published it). Every argument,
    TF_CONFIG and the data are checked before anything is written; a multi_worker task then meets
    the others (zoo.train.startup) before it writes anything."""
    plan = _plan(request)
    phase = startup.Startup(plan.distribution)
    try:
        phase.meet()
        _build(plan, request.command, phase)
    finally:
        phase.close()
    return plan.out


def _build(plan, command, phase):
    """Runs the build in its work folder; a build that fails leaves that folder only when there is
    something to resume in it."""
    fresh = not plan.work.exists()
    remove = "always" if not plan.distribution.is_chief else "unstarted" if fresh else "never"
    try:
        plan.work.mkdir(parents=True, exist_ok=True)
        _run(plan, command, phase, remove)
    except BaseException as error:
        if remove == "unstarted" and not resumable(plan.work):
            shutil.rmtree(plan.work, ignore_errors=True)
        raise _failure(plan, error) from None
    finally:
        if remove == "always":  # a worker's own folder: nothing in it outlives the build
            shutil.rmtree(plan.work, ignore_errors=True)


def _failure(plan, error):
    """What ``error`` ends the build with: a lost peer is an interruption to resume from, a full
    disk says how much was written (zoo.artifacts.disk_full), anything else stays as it is."""
    reason = plan.distribution.strategy == "multi_worker" and isinstance(error, Exception) and \
        distribute.lost_peer(error)
    if reason:
        print(f"[zoo build] lost a task of the cluster ({reason})", file=sys.stderr, flush=True)
        return Interrupted()
    return artifacts.disk_full(error, plan.out, plan.work, "--out", kept=plan.work.exists()) or error


def _run(plan, command, phase, remove):
    """Trains and converts (every worker), evaluates and publishes (the chief). ``phase``
    (zoo.train.startup.Startup) hands the port over to TensorFlow and tells a supervisor when its
    start-up begins and ends, and what to ``remove`` of the work folder if it is ended meanwhile."""
    state = State(plan.work, plan.settings)
    import tensorflow as tf  # before TF_USE_LEGACY_KERAS is set, which tfmot needs (BUILD_NOTES)
    tracing.leave_keras_code_unconverted()
    if plan.mode == "qat":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        importlib.import_module("tensorflow_model_optimization")  # before any model: tf.keras -> tf_keras
    if plan.distribution.strategy == "multi_worker":
        print(f"[zoo build] every task answered; starting the cluster (at most "
              f"{plan.distribution.timeout_s:g} s)", flush=True)
    phase.begin(plan.work, remove)
    runtime = distribute.start(plan.distribution)
    tf.keras.utils.set_random_seed(plan.settings["seed"])
    if runtime.strategy:
        batch = plan.settings["batch_size"]
        print(f"[zoo build] {runtime.describe()}; global batch {runtime.global_batch(batch)} = {batch} per "
              f"replica x {runtime.replicas}", flush=True)
        runtime.join(plan.settings, plan.shared, state.values, ("train", "qat"))
        state.save()
    phase.started()
    model, specs, files = _train_and_convert(plan, state, runtime)
    if runtime.is_chief:
        started = time.monotonic()
        print(f"[zoo build] evaluating every artifact on the test split{runtime.where(one_process=True)}",
              flush=True)
        evaluated = gaze_errors_of({kind: load_predictor(path)[0] for kind, path in files.items()},
                                   plan.index, specs)
        state.finish("evaluate", time.monotonic() - started)
        box_maps, seconds = boxmap.fit_maps(plan.index)  # zoo predict's framing of detector boxes
        state.finish("box_maps", seconds)
        card = model_card(plan.name, plan.builder_args, plan.mode, plan.settings["seed"], plan.index, specs,
                          files.get("int8_tflite", files["float_tflite"]), model)
        card = dataclasses.replace(card, box_maps=box_maps)
        for kind, path in files.items():
            if path.suffix == ".tflite":
                embed_card(path, specs, card)
        _finish(plan, _manifest(plan, state, card, model, files, evaluated, command, runtime))
    runtime.barrier()  # the other workers return once the chief has published


def _train_and_convert(plan, state, runtime):
    """The float model (trained, or read back on --resume), its input specs and the artifact
    files of the build's mode: float .h5 and TFLite, PTQ int8, QAT int8. On multi_worker only
    the chief converts; every worker trains."""
    import tensorflow as tf
    name, work, mode = plan.name, plan.work, plan.mode
    with runtime.scope():
        model = plan.entry.build(**plan.builder_kwargs)
    specs = registry.input_specs(name, model)
    train, val = (runtime.shard(dataset) for dataset in _training_datasets(
        plan.index, specs, runtime.global_batch(plan.settings["batch_size"]), plan.settings["seed"],
        plan.settings["steps"], work / "cache"))  # a cache per worker: none reads another's
    batches = _steps_per_epoch(plan, runtime.replicas)
    if not state.done("train"):
        started = _stage(f"training {name} (float) for {plan.settings['epochs']} epochs{runtime.where()}")
        with runtime.scope():
            best = _fit(model, train, val, plan.settings["epochs"], batches, plan.learning_rate, plan,
                        "train", state, runtime)
            model.save(work / f"{name}_float.h5", include_optimizer=False)
        runtime.barrier()
        state.finish("train", time.monotonic() - started, best_val_loss=best)
    model = tf.keras.models.load_model(plan.shared / f"{name}_float.h5", compile=False)
    files = {"float_h5": work / f"{name}_float.h5", "float_tflite": work / f"{name}_float.tflite"}
    representative = qat.representative_dataset(plan.index, specs, REPRESENTATIVE_FRAMES,
                                                plan.settings["seed"])
    int8_output = plan.settings["int8_output"]
    if runtime.is_chief and not state.done("convert_float"):
        started = _stage(f"converting to float TFLite{runtime.where(one_process=True)}")
        files["float_tflite"].write_bytes(tflite.convert(model, specs))
        state.finish("convert_float", time.monotonic() - started)
    if mode in ("qat", "ptq"):
        kind = "int8_tflite" if mode == "ptq" else "ptq_int8_tflite"
        files[kind] = work / f"{name}_{'int8' if mode == 'ptq' else 'ptq_int8'}.tflite"
        if runtime.is_chief and not state.done("ptq"):
            started = _stage(f"post-training int8 quantization{runtime.where(one_process=True)}")
            files[kind].write_bytes(tflite.convert(model, specs, representative, int8_output))
            state.finish("ptq", time.monotonic() - started)
    if mode == "qat":
        files["int8_tflite"] = work / f"{name}_int8.tflite"
        if not state.done("qat"):
            started = _stage(f"quantization-aware fine-tuning for {plan.settings['qat_epochs']} epochs"
                             f"{runtime.where()}")
            qat_model = _quantization_aware(model, plan, state, runtime, train, val, representative, batches)
            if runtime.is_chief:
                files["int8_tflite"].write_bytes(
                    tflite.convert(qat_model, specs, representative, int8_output))
            state.finish("qat", time.monotonic() - started)
    return model, specs, files


def _stage(label):
    print(f"[zoo build] {label}", flush=True)
    return time.monotonic()


def _steps_per_epoch(plan, replicas):
    batches = -(-plan.index.split_counts()["train"] // (plan.settings["batch_size"] * replicas))
    return min(plan.settings["steps"], batches) if plan.settings["steps"] else batches


def _quantization_aware(model, plan, state, runtime, train, val, representative, batches):
    """The tfmot QAT model of ``model``, its ranges calibrated, fine-tuned for the QAT epochs; under
    a strategy, with one range per quantizer across replicas, copied out of the strategy."""
    import tensorflow_model_optimization as tfmot
    with runtime.scope():
        qat_model = tfmot.quantization.keras.quantize_model(model)
        frames = list(itertools.islice(representative(), CALIBRATION_FRAMES))
        batch = {key: np.concatenate([frame[key] for frame in frames]) for key in frames[0]}
        print(f"[zoo build] set {qat.calibrate_ranges(qat_model, batch)} activation ranges from "
              f"{len(frames)} training frames", flush=True)
        first = [qat.range_union_callback(runtime.strategy)] if runtime.strategy else []
        _fit(qat_model, train, val, plan.settings["qat_epochs"], batches, plan.qat_learning_rate, plan,
             "qat", state, runtime, first)
        if runtime.strategy is None:
            return qat_model
        weights = qat_model.get_weights()
    return qat.plain_model(model, weights)


def _manifest(plan, state, card, model, files, evaluated, command, runtime):
    from zoo.models.facts import model_facts
    facts = model_facts(model)
    settings = plan.settings
    return artifacts.BuildManifest(
        card=card, params=facts["params"], macs=facts["macs"],
        files={kind: artifacts.FileRecord(**file_record(path, plan.work)) for kind, path in files.items()},
        metrics=evaluated,
        training=artifacts.TrainingRecord(
            epochs=settings["epochs"], qat_epochs=settings["qat_epochs"] if plan.mode == "qat" else 0,
            batch_size=settings["batch_size"], steps_per_epoch_cap=settings["steps"],
            steps_per_epoch=_steps_per_epoch(plan, runtime.replicas), learning_rate=plan.learning_rate,
            qat_learning_rate=plan.qat_learning_rate, lr_schedule="cosine to 0, per stage",
            loss="mse on (XCam, YCam) / scale_cm",
            best_val_loss=dict(state.values.get("best_val_loss", {})), strategy=plan.distribution.strategy,
            replicas=runtime.replicas, global_batch_size=runtime.global_batch(settings["batch_size"])),
        toolchain=package_versions(BUILD_PACKAGES), command=list(command or sys.argv),
        seconds=dict(state.values["seconds"]))


def _finish(plan, manifest):
    """Drops the resume scaffolding and publishes the finished folder in one rename."""
    work = plan.work
    for scratch in ("cache", "train_backup", "qat_backup", STATE_FILE):
        target = work / scratch
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for weights in [*work.glob("*_best.weights.h5"), *work.glob("*_best.h5")]:
        weights.unlink()
    manifest.seconds["total"] = round(sum(manifest.seconds.values()), 2)
    artifacts.write_record(manifest, work / artifacts.MANIFEST)
    artifacts.publish(work, plan.out, TOOL, plan.inputs, plan.overwrite)
