"""`zoo build`: float training, optional quantization-aware fine-tuning or post-training
quantization, int8 TFLite export, evaluation of every artifact, and the model card.

Everything is written into ``<out>.partial`` next to ``--out`` and renamed into place only when
complete, so an interrupted build leaves no partial artifact; ``--resume`` picks the partial folder
up again from its last epoch checkpoint.

tfmot is imported only for ``--qat``, and before any model is built: it switches tf.keras to
tf_keras, and the QAT wrappers only accept tf_keras models.
"""
import itertools
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

from zoo import data as zoo_data
from zoo import defaults, registry
from zoo.eval import gaze_errors_of, load_predictor
from zoo.errors import UsageError
from zoo.files import file_record

MODES = ("float", "qat", "ptq")
STATE_FILE = "state.json"
REPRESENTATIVE_FRAMES = 200
CALIBRATION_FRAMES = 128  # QAT's starting activation ranges: one batch of training frames
EMA_DECAY, EMA_START = 0.999, 6.0  # tfmot 0.8.1's MovingAverageQuantizer: fixed decay, [-6, 6] start
_WEIGHT_RANGES = ("kernel_", "depthwise_kernel_")  # LastValueQuantizer's: set from the weights, no EMA
MIN_RANGE = 1e-3  # floor on a calibrated range's width: a dead activation must not get scale 0


def toolchain_versions():
    from importlib import metadata
    names = ("tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "ai-edge-litert",
             "tflite-runtime", "model-compression-toolkit", "edge-mdt-tpc", "imx500-converter", "numpy")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = sys.version.split()[0]
    return versions


def _check_output(out):
    """Fails early, before any work, when ``out`` cannot be written."""
    out = pathlib.Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; choose a folder path")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=out.parent, prefix=".zoo-write-test-"))
    except OSError as error:
        raise UsageError(f"output folder {out.parent} is not writable ({error.strerror}); "
                         f"choose another --out") from None
    return out


def _work_folder(out, resume):
    """``<out>.partial``: the interrupted build's with --resume (which must exist), else fresh."""
    work = out.with_name(out.name + ".partial")
    if resume:
        if not (work / STATE_FILE).exists():
            raise UsageError(f"nothing to resume: {work} holds no interrupted build; "
                             f"run without --resume")
    elif work.exists():
        shutil.rmtree(work)
    return work


class _State:
    """What an interrupted build has finished: read back by --resume."""

    def __init__(self, work, settings):
        self.path = work / STATE_FILE
        if self.path.exists():
            saved = json.loads(self.path.read_text())
            if saved["settings"] != settings:
                raise UsageError(f"--resume with different settings than the interrupted build "
                                 f"({self.path}); run without --resume to start again")
            self.values = saved
        else:
            self.values = {"settings": settings, "done": {}, "seconds": {}}
            self.save()

    def done(self, stage):
        return stage in self.values["done"]

    def finish(self, stage, seconds, **facts):
        self.values["done"][stage] = facts
        self.values["seconds"][stage] = round(self.values["seconds"].get(stage, 0) + seconds, 2)
        self.save()

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.values, indent=1))
        os.replace(tmp, self.path)


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


def _fit(model, train, val, epochs, steps_per_epoch, learning_rate, work, stage, state):
    """Trains with a per-epoch backup (for --resume) and keeps the best weights on val.

    The learning rate follows a cosine from ``learning_rate`` to zero over the whole run, so a
    high starting rate (zoo.defaults) still ends settled. The schedule is a function of the
    optimizer's step count, which the backup restores, so --resume continues it.
    """
    import tensorflow as tf

    best_path = work / f"{stage}_best.weights.h5"
    best = state.values.setdefault("best_val_loss", {}).get(stage, np.inf)

    class KeepBest(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            nonlocal best
            if logs["val_loss"] < best:
                best = float(logs["val_loss"])
                self.model.save_weights(best_path)
                state.values["best_val_loss"][stage] = best
                state.save()

    schedule = tf.keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch)
    model.compile(optimizer=tf.keras.optimizers.Adam(schedule), loss="mse")
    callbacks = [tf.keras.callbacks.BackupAndRestore(str(work / f"{stage}_backup")), KeepBest(),
                 tf.keras.callbacks.TensorBoard(str(work / "logs" / stage))]
    model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks,
              verbose=_keras_verbosity())
    model.load_weights(best_path)
    return best


def _calibrate_qat_ranges(qat_model, batch, passes=2):
    """Sets every moving-average range of a freshly quantized tfmot model to the activation range
    of ``batch`` (a dict of inputs), before fine-tuning; returns how many ranges it set.

    tfmot starts those ranges at [-6, 6] and moves them by an EMA with decay 0.999 per training
    step, so they need ~1,000 steps to forget the start (tfmot issue #368); the QAT stage takes a
    few hundred, and its int8 model inherited ranges that clipped or coarsened the activations
    of a converged float model. A training-mode call moves each such variable v to
    0.999 v + 0.001 r, r being the batch's range (which holds 0): reading v before and after
    gives r, which is assigned. The second pass repeats it with the upstream ranges already
    right, and from small values, so r is read precisely. The other quantizers' ranges keep what
    the calls set (the weights' ranges and the input's); the BatchNormalization statistics and
    step counters the calls moved are restored.
    """
    import tensorflow as tf
    variables = qat_model.non_trainable_variables
    saved = [v.numpy() for v in variables]
    by_name = {v.name: i for i, v in enumerate(variables)}
    pairs = [(i, by_name[v.name[:-len("_min:0")] + "_max:0"]) for i, v in enumerate(variables)
             if v.name.endswith("_min:0")]
    ema_pairs = [(low, high) for low, high in pairs
                 if not variables[low].name.split("/")[-1].startswith(_WEIGHT_RANGES)
                 and np.all(saved[low] == -EMA_START) and np.all(saved[high] == EMA_START)]
    batch = {name: tf.constant(value) for name, value in batch.items()}
    for _ in range(passes):
        before = {i: variables[i].numpy().astype(np.float64) for pair in ema_pairs for i in pair}
        qat_model(batch, training=True)
        for low, high in ema_pairs:
            read = {i: (variables[i].numpy() - EMA_DECAY * before[i]) / (1 - EMA_DECAY) for i in (low, high)}
            lowest = np.minimum(read[low], 0.0)
            variables[low].assign(lowest.astype(np.float32))
            variables[high].assign(np.maximum(read[high], lowest + MIN_RANGE).astype(np.float32))
    ranges = {i for pair in pairs for i in pair}
    for i, (variable, value) in enumerate(zip(variables, saved)):
        if i not in ranges:
            variable.assign(value)
    return len(ema_pairs)


def _representative_dataset(root, specs, limit, seed):
    """Frames of the training split, one at a time, as dicts keyed by input name."""
    dataset = zoo_data.make_dataset(root, specs, "train", 1, shuffle=True, seed=seed, limit=limit)

    def frames():
        for inputs, _ in dataset:
            yield {name: value.numpy() for name, value in inputs.items()}
    return frames


def _convert(model, specs, representative=None, int8_output=False):
    """TFLite bytes: float when ``representative`` is None, else fully int8 (int8 input).

    Converts a concrete function with one named input per spec (so the TFLite signature keeps the
    Keras input names); this skips the SavedModel export of from_keras_model, which is far slower.
    """
    import tensorflow as tf
    from zoo.tflite import strip_internal_names

    signature = {s.name: tf.TensorSpec((None, *s.shape), tf.float32, name=s.name) for s in specs}
    function = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    if representative is None:
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8 if int8_output else tf.float32
    return strip_internal_names(converter.convert())


def _input_record(specs, tflite_path):
    """Names, shapes, dtype, quantization and recipe of each input of the deployable TFLite."""
    from zoo.tflite import io_details, make_interpreter
    tflite_inputs, _ = io_details(make_interpreter(tflite_path))
    records = []
    for spec in specs:
        details = tflite_inputs[spec.name]
        scale, zero_point = details["quantization"]
        records.append({"name": spec.name, "shape": list(spec.shape), "recipe": spec.recipe,
                        "value_range": list(registry.RECIPES[spec.recipe]),
                        "dtype": np.dtype(details["dtype"]).name, "scale": float(scale),
                        "zero_point": int(zero_point)})
    return records


def build(name, mode="float", data=None, epochs=defaults.EPOCHS, qat_epochs=defaults.QAT_EPOCHS,
          batch_size=defaults.BATCH_SIZE, out=None, seed=0, resume=False, int8_output=False, steps=None,
          learning_rate=None, builder_kwargs=None, command=None):
    """Builds registered model ``name``; returns the path of the finished output folder.
    ``learning_rate`` None: the model's default (zoo.defaults.learning_rate)."""
    entry = registry.get_entry(name)
    learning_rate = learning_rate or defaults.learning_rate(name)
    qat_learning_rate = learning_rate * defaults.QAT_LEARNING_RATE_FRACTION
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    for flag, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    builder_kwargs = dict(builder_kwargs or {})
    builder_args = entry.builder_arguments(**builder_kwargs)  # raises on unknown arguments
    out = _check_output(out or pathlib.Path("runs") / name)
    work = _work_folder(out, resume)
    root = pathlib.Path(data).absolute() if data else zoo_data.default_data_root()
    index = zoo_data.open_gazecapture(root)
    work.mkdir(exist_ok=True)
    settings = {"model": name, "mode": mode, "data": str(root), "epochs": epochs,
                "qat_epochs": qat_epochs, "batch_size": batch_size, "seed": seed, "steps": steps,
                "int8_output": int8_output, "learning_rate": learning_rate,
                "builder_kwargs": {k: str(v) for k, v in builder_kwargs.items()}}
    state = _State(work, settings)

    if mode == "qat":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow_model_optimization as tfmot
    import tensorflow as tf
    tf.keras.utils.set_random_seed(seed)

    model = entry.build(**builder_kwargs)
    specs = registry.input_specs(name, model)
    cache_dir = work / "cache"
    train, val = _training_datasets(root, specs, batch_size, seed, steps, cache_dir)
    steps_per_epoch = -(-index.split_counts()["train"] // batch_size)
    if steps:
        steps_per_epoch = min(steps, steps_per_epoch)
    files = {}

    def stage(label):
        print(f"[zoo build] {label}", flush=True)
        return time.monotonic()

    if not state.done("train"):
        started = stage(f"training {name} (float) for {epochs} epochs")
        best = _fit(model, train, val, epochs, steps_per_epoch, learning_rate, work, "train", state)
        model.save(work / f"{name}_float.h5", include_optimizer=False)
        state.finish("train", time.monotonic() - started, best_val_loss=best)
    model = tf.keras.models.load_model(work / f"{name}_float.h5", compile=False)
    files["float_h5"] = work / f"{name}_float.h5"

    representative = _representative_dataset(root, specs, REPRESENTATIVE_FRAMES, seed)
    if not state.done("convert_float"):
        started = stage("converting to float TFLite")
        (work / f"{name}_float.tflite").write_bytes(_convert(model, specs))
        state.finish("convert_float", time.monotonic() - started)
    files["float_tflite"] = work / f"{name}_float.tflite"

    if mode in ("qat", "ptq") and not state.done("ptq"):
        started = stage("post-training int8 quantization")
        target = "int8" if mode == "ptq" else "ptq_int8"
        (work / f"{name}_{target}.tflite").write_bytes(_convert(model, specs, representative, int8_output))
        state.finish("ptq", time.monotonic() - started)
    if mode == "ptq":
        files["int8_tflite"] = work / f"{name}_int8.tflite"
    elif mode == "qat":
        files["ptq_int8_tflite"] = work / f"{name}_ptq_int8.tflite"

    if mode == "qat":
        if not state.done("qat"):
            started = stage(f"quantization-aware fine-tuning for {qat_epochs} epochs")
            qat_model = tfmot.quantization.keras.quantize_model(model)
            frames = list(itertools.islice(representative(), CALIBRATION_FRAMES))
            batch = {key: np.concatenate([frame[key] for frame in frames]) for key in frames[0]}
            print(f"[zoo build] set {_calibrate_qat_ranges(qat_model, batch)} activation ranges from "
                  f"{len(frames)} training frames", flush=True)
            _fit(qat_model, train, val, qat_epochs, steps_per_epoch, qat_learning_rate, work, "qat", state)
            (work / f"{name}_int8.tflite").write_bytes(
                _convert(qat_model, specs, representative, int8_output))
            state.finish("qat", time.monotonic() - started)
        files["int8_tflite"] = work / f"{name}_int8.tflite"

    started = stage("evaluating every artifact on the test split")
    evaluated = gaze_errors_of({kind: load_predictor(path)[0] for kind, path in files.items()}, root, specs)
    state.finish("evaluate", time.monotonic() - started)

    from zoo.stats import model_facts
    facts = model_facts(model)
    deployable = files.get("int8_tflite", files["float_tflite"])
    manifest = {
        "model": name,
        "builder_args": builder_args,
        "mode": mode,
        "seed": seed,
        "input": _input_record(specs, deployable),
        "output": {"name": facts["outputs"][0]["name"], "shape": facts["outputs"][0]["shape"],
                   "scale_cm": registry.GAZE_SCALE_CM,
                   "meaning": "(XCam, YCam) / scale_cm, tanh range; cm = value * scale_cm"},
        "params": facts["params"],
        "macs": facts["macs"],
        "files": {kind: file_record(path, work) for kind, path in files.items()},
        "metrics": evaluated,
        "data": {"root": str(root), "rendered": zoo_data.render_settings(root),
                 "valid_frames": index.split_counts()},
        "training": {"epochs": epochs, "qat_epochs": qat_epochs if mode == "qat" else 0,
                     "batch_size": batch_size, "steps_per_epoch_cap": steps,
                     "learning_rate": learning_rate, "lr_schedule": "cosine to 0, per stage",
                     "qat_learning_rate": qat_learning_rate,
                     "steps_per_epoch": steps_per_epoch, "loss": "mse on (XCam, YCam) / scale_cm",
                     "best_val_loss": dict(state.values.get("best_val_loss", {}))},
        "toolchain": toolchain_versions(),
        "command": list(command or sys.argv),
        "seconds": state.values["seconds"],
    }
    _finish(work, out, manifest)
    return out


def _finish(work, out, manifest):
    """Drops the resume scaffolding and renames the finished folder into place."""
    for scratch in ("cache", "train_backup", "qat_backup", STATE_FILE):
        target = work / scratch
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for weights in work.glob("*_best.weights.h5"):
        weights.unlink()
    manifest["seconds"]["total"] = round(sum(manifest["seconds"].values()), 2)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if out.exists():
        old = out.with_name(out.name + ".old")
        os.replace(out, old)
        os.replace(work, out)
        shutil.rmtree(old)
    else:
        os.replace(work, out)
