"""Sony IMX500 adapter (Raspberry Pi AI Camera): turns the float model behind a zoo-built TFLite into
an IMX500 package with Sony's own toolchain, and says how well the quantized model does.

    python compilers/imx500.py model.tflite [-o DIR] [--method ptq|gptq|qat]
                               [--calibration-frames N] [--keras FILE] [--data ROOT]
                               [--face-grid COL,ROW,W,H] [--epochs N] [--json]

Stages (each said on stderr; 2 to 5 minutes for TinyTracker on 2 busy cores, imxconv-tf 1 to 3):
  1. Model Compression Toolkit (MCT) quantizes the float Keras model with the IMX500 target
     platform capabilities (edge-mdt-tpc), calibrated on frames of the model's own training split
     (--method ptq, the default; gptq and qat fine-tune on the same data for --epochs). This runs
     in a child process that never imports tensorflow_model_optimization (it turns tf.keras into
     tf_keras, which MCT cannot read).
  2. The quantized model is evaluated on the test split (it runs on the CPU with MCT's own
     quantizers), next to the float model, so its cm error stands beside the Edge TPU int8 one.
  3. The deployment graph (below) is exported as .keras (mct.exporter.keras_export_model) and
     converted by `imxconv-tf` (needs Java 17) into packerOut.zip, dnnParams.xml and the memory
     report, which is only written to NAME_MemoryReport.json, never printed.

On the sensor the input tensor is the camera image, cropped to the inference ROI and scaled by
the on-sensor ISP; the host cannot add channels. TinyTracker's face-grid channels (x and y ramps
across the face box, zoo.data.inputs.grid_ramps) therefore live inside the package: the network
is quantized with the image and the ramps as two inputs joined by pad + add, and for the package
the ramp input is replaced by the constant ramps of one face grid, computed through the same
quantizers (the package computes exactly what the quantized model computes for that grid; the
report checks it). The ROI set on the Pi must be that face grid mapped onto the sensor; report.json
gives both. The default face grid is the median one of the training split (--face-grid picks
another); a face elsewhere needs its own package. A package with several inputs cannot be fed by
the sensor, which gives one tensor: report.json says so. (iTracker does not get that far: imxconv-tf
refuses its grouped CONV2, "Non-integer depth multiplier ... not supported with group > 1", and with
CONV2 split in two it needs 8.93 MB of the 8 MB on chip.)

What remains is on the Raspberry Pi (it cannot run here): `sudo apt install imx500-all imx500-tools`,
then `imx500-package -i packerOut.zip -o DIR` writes DIR/network.rpk, which run_on_pi.py (written
next to the package, with the ROI filled in) loads with picamera2. The IMX500 gives no latency
figure here; the camera reports it per frame (IMX500.get_kpi_info).

Output, in DIR (default MODEL_DIR/NAME_imx500): packerOut.zip, dnnParams.xml,
NAME_imx500_MemoryReport.json, NAME_imx500.pbtxt, NAME_imx500.keras (what imxconv-tf converted),
imxconv.log, run_on_pi.py and report.json. Everything is made in a temporary folder beside DIR
and moved in only when complete.

Exit status: 0 packaged; 1 MCT or imxconv-tf failed, or the model does not fit in the chip's
memory; 2 bad input (one line on stderr, nothing written).

From Python: compilers.imx500.compile(model, ...) returns the report.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from zoo.errors import EXIT_USAGE, UsageError, one_line_errors, progress  # noqa: E402
from zoo.files import file_record  # noqa: E402

EXIT_PACKAGED = 0
METHODS = ("ptq", "gptq", "qat")
TPC_VERSION = "1.0"  # the IMX500 TPC edge-mdt-tpc tests with imx500-converter 3.14 to 3.17 (3.19.2 here)
SENSOR_PIXELS = (4056, 3040)  # full IMX500 resolution, the frame of picamera2's inference ROI
_JAVA_HINT = "apt-get install openjdk-17-jre-headless"
_CHILD_FLAG = "--_child"
_RESULT_FILE = "child_result.json"
_PUBLISHED = ("packerOut.zip", "dnnParams.xml", "imxconv.log", "run_on_pi.py", "report.json")


class CompileError(Exception):
    """The toolchain failed, or would: the model does not fit or has an operator imxconv-tf
    refuses. The message is one line."""


# --- The MCT child process -------------------------------------------------------------------
# Everything below until the parent's part runs in the child, which imports TensorFlow and MCT.

def _say(message):
    print(f"[imx500] {message}", flush=True)


def _load_float_model(path):
    import tensorflow as tf
    try:
        return tf.keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{path}: cannot load the Keras model ({detail}); give a .h5 or .keras "
                         "file saved by Keras 2.15") from None


def _model_name(job, model):
    """The registry name: the manifest's, else the Keras model's own name."""
    from zoo import registry
    name = job["model_name"] or model.name
    if name not in registry.list_models():
        raise UsageError(f"the Keras model is named {name!r}, which is not a registered model "
                         f"({', '.join(registry.list_models())}); its data recipe is unknown")
    return name


def _input_specs(name, model, tflite_shapes):
    from zoo import registry
    try:
        specs = registry.input_specs(name, model)
    except KeyError as error:
        raise UsageError(f"the Keras model's input {error} is not an input of {name}") from None
    keras_shapes = sorted(tuple(spec.shape) for spec in specs)
    if keras_shapes != sorted(tuple(shape) for shape in tflite_shapes):
        raise UsageError(f"the Keras model's inputs {keras_shapes} are not the TFLite's "
                         f"{sorted(tuple(s) for s in tflite_shapes)}: not the same model")
    return specs


def _grid_channels(spec):
    """How many coordinate channels ride along with the image of ``spec`` (0 for a plain input)."""
    from zoo.data import inputs
    if spec.recipe not in inputs.IMAGE_RECIPES:
        return 0
    return inputs.INPUT_CHANNELS[spec.recipe] - inputs.IMAGE_RECIPES[spec.recipe][1]


def _grid_name(spec):
    return f"{spec.name}_grid"


def _two_input_graph(model, specs):
    """The float model with each face-grid input split into image and ramps, joined by pad + add
    (the same function as the concatenation): pad + add with a constant is what imxconv-tf takes,
    so the ramp input can later become a constant on the chip."""
    import tensorflow as tf
    new_inputs, joined = [], []
    for spec in specs:
        extra = _grid_channels(spec)
        if not extra:
            tensor = tf.keras.Input(spec.shape, name=spec.name)
            new_inputs.append(tensor)
            joined.append(tensor)
            continue
        height, width, channels = spec.shape
        image = tf.keras.Input((height, width, channels - extra), name=spec.name)
        grid = tf.keras.Input((height, width, extra), name=_grid_name(spec))
        new_inputs += [image, grid]
        joined.append(tf.keras.layers.Add(name=f"{spec.name}_with_grid")([
            tf.pad(image, [[0, 0], [0, 0], [0, 0], [0, extra]]),
            tf.pad(grid, [[0, 0], [0, 0], [0, 0], [channels - extra, 0]])]))
    return tf.keras.Model(new_inputs, model(joined if len(joined) > 1 else joined[0]), name=model.name)


def _ordered(batch, specs):
    """A batch dict's arrays in spec order (a single-input batch may name its input differently)."""
    return [next(iter(batch.values()))] if len(specs) == 1 else [batch[spec.name] for spec in specs]


def _split_inputs(batch, specs, grids=True):
    """A dataset batch as the two-input graph's input list (numpy arrays or tensors alike);
    ``grids=False`` leaves the ramps out: the package's inputs."""
    arrays = []
    for spec, value in zip(specs, _ordered(batch, specs)):
        extra = _grid_channels(spec)
        if not extra:
            arrays.append(value)
            continue
        arrays.append(value[..., :-extra])
        if grids:
            arrays.append(value[..., -extra:])
    return arrays


def _calibration_data(root, specs, frames):
    """MCT's representative dataset: ``frames`` training frames spread over the split, batches of 16."""
    from zoo.data import make_dataset
    dataset = make_dataset(root, specs, "train", 16, limit=frames, progress=False)

    def batches():
        for inputs, _ in dataset:
            yield [array.numpy() for array in _split_inputs(inputs, specs)]
    return batches


def _quantize(graph, specs, root, job):
    """The quantized Keras model (MCT's quantizers around the float layers) by the job's method,
    with the IMX500 TPC."""
    import model_compression_toolkit as mct
    from edgemdt_tpc import get_target_platform_capabilities
    tpc = get_target_platform_capabilities(tpc_version=TPC_VERSION, device_type="imx500")
    representative = _calibration_data(root, specs, job["calibration_frames"])
    method = job["method"]
    if method == "ptq":
        quantized, _ = mct.ptq.keras_post_training_quantization(
            graph, representative, target_platform_capabilities=tpc)
    elif method == "gptq":
        # Without the Hessian-based weighting: on a CPU it costs ~5 s per sample and layer pass.
        config = mct.gptq.get_keras_gptq_config(n_epochs=job["epochs"], use_hessian_based_weights=False,
                                                use_hessian_sample_attention=False)
        quantized, _ = mct.gptq.keras_gradient_post_training_quantization(
            graph, representative, gptq_config=config, target_platform_capabilities=tpc)
    else:
        quantized = _quantization_aware_training(graph, specs, root, representative, tpc, job)
    return quantized


def _quantization_aware_training(graph, specs, root, representative, tpc, job):
    """MCT QAT: a PTQ start, --epochs of fine-tuning on the training split (Adam 1e-4, the rate
    `zoo build --qat` fine-tunes at), then the trainable quantizers frozen into inferable ones."""
    import model_compression_toolkit as mct
    import tensorflow as tf
    from zoo import GAZE_SCALE_CM
    from zoo.data import make_dataset
    trainable, _, _ = mct.qat.keras_quantization_aware_training_init_experimental(
        graph, representative, target_platform_capabilities=tpc)
    train = make_dataset(root, specs, "train", 32, shuffle=True, seed=0, progress=False).map(
        lambda inputs, labels: (tuple(_split_inputs(inputs, specs)), labels / GAZE_SCALE_CM))
    trainable.compile(optimizer=tf.keras.optimizers.Adam(1e-4), loss="mse")
    trainable.fit(train, epochs=job["epochs"], verbose=2)
    return mct.qat.keras_quantization_aware_training_finalize_experimental(trainable)


def _freeze_inputs(model, constants):
    """``model`` with the inputs named in ``constants`` replaced by those values (batch of 1).

    Layers fed only by constants are run once, here, through the quantized model's own layers
    (so the constant carries their quantization); the add that joins a constant to the image
    becomes ``image + constant``, which imxconv-tf maps onto the chip as a constant input."""
    import tensorflow as tf
    from keras.src.engine.keras_tensor import KerasTensor
    values, new_inputs = {}, []
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        if name in constants:
            values[id(tensor)] = tf.constant(constants[name])
        else:
            values[id(tensor)] = tf.keras.Input(tensor.shape[1:], name=name)
            new_inputs.append(values[id(tensor)])

    def mapped(structure):
        return tf.nest.map_structure(
            lambda item: values[id(item)] if isinstance(item, KerasTensor) else item, structure)

    for depth in sorted(model._nodes_by_depth, reverse=True):  # Keras 2.15's functional graph, inputs first
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            live = [isinstance(values[id(t)], KerasTensor) for t in node.keras_inputs]
            if all(live) or not any(live):
                outputs = node.layer(*mapped(node.call_args), **mapped(node.call_kwargs))
            elif isinstance(node.layer, tf.keras.layers.Add) and len(live) == 2:
                first, second = mapped(node.call_args)[0]
                outputs = first + second
            else:
                raise ValueError(f"cannot fold a constant into layer {node.layer.name} "
                                 f"({type(node.layer).__name__})")
            for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
                values[id(old)] = new
    outputs = [values[id(t)] for t in model.outputs]
    return tf.keras.Model(new_inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)


def _median_face_grid(root):
    """The training split's median face grid, 0-indexed (column, row, width, height) cells."""
    import numpy as np
    from zoo.data import load_index
    grids = load_index(root).select("train").grid
    return [int(v) for v in np.round(np.median(grids, axis=0))]


def _ramps(face_grid, spec):
    from zoo.data.inputs import grid_ramps
    height, width = spec.shape[:2]
    return grid_ramps(face_grid, height, width).numpy()[None]


def _evaluate(predict, root, specs):
    """(gaze errors, predictions in cm) of ``predict`` on the test split."""
    from zoo import metrics
    from zoo.eval import predict_cm
    predicted, true_cm, is_tablet = predict_cm({"mct": predict}, root, specs, "test")
    return metrics.gaze_errors(predicted["mct"], true_cm, is_tablet), predicted["mct"]


def _run_child(job_path):
    """The child's work: quantize, evaluate, build and export the deployment graph."""
    import numpy as np
    job = json.loads(pathlib.Path(job_path).read_text())
    work = pathlib.Path(job["work_dir"])
    seconds = {}
    started = time.monotonic()
    _say(f"loading {job['keras']}")
    import model_compression_toolkit as mct
    from zoo import GAZE_SCALE_CM
    from zoo.build import toolchain_versions
    from zoo.data import default_data_root
    model = _load_float_model(job["keras"])
    name = _model_name(job, model)
    specs = _input_specs(name, model, job["tflite_input_shapes"])
    grid_specs = [spec for spec in specs if _grid_channels(spec)]
    if job["face_grid"] and not grid_specs:
        raise UsageError(f"--face-grid applies to models with face-grid channels; {name} has none")
    root = pathlib.Path(job["data"]) if job["data"] else default_data_root()
    graph = _two_input_graph(model, specs)
    seconds["load"] = time.monotonic() - started

    started = time.monotonic()
    _say(f"MCT {job['method']} with the IMX500 TPC v{TPC_VERSION}, calibrating on "
         f"{job['calibration_frames']} training frames of {root}")
    quantized = _quantize(graph, specs, root, job)
    seconds["quantize"] = time.monotonic() - started

    started = time.monotonic()
    _say("evaluating the float and the MCT-quantized model on the test split")
    float_errors, float_cm = _evaluate(
        lambda batch: model(_ordered(batch, specs), training=False).numpy(), root, specs)
    quantized_errors, quantized_cm = _evaluate(
        lambda batch: quantized(_split_inputs(batch, specs), training=False).numpy(), root, specs)
    # Per frame, not only on average: a model that predicts a constant agrees on average trivially.
    quantized_errors["mean_cm_from_float"] = float(np.mean(np.linalg.norm(quantized_cm - float_cm, axis=1)))
    float_errors["prediction_std_cm"] = [float(v) for v in np.std(float_cm, axis=0)]
    seconds["evaluate"] = time.monotonic() - started

    started = time.monotonic()
    deployment = {"sensor_inputs": [spec.name for spec in specs], "face_grid": None,
                  "output": f"gaze (XCam, YCam) / {GAZE_SCALE_CM:g} cm (tanh range)",
                  "gaze_scale_cm": GAZE_SCALE_CM}
    package_model = quantized
    if grid_specs:
        face_grid = job["face_grid"] or _median_face_grid(root)
        ramps = {spec.name: _ramps(face_grid, spec) for spec in grid_specs}
        package_model = _freeze_inputs(quantized, {_grid_name(s): ramps[s.name] for s in grid_specs})
        _say(f"baking face grid {face_grid} into the package; checking it against the quantized model")

        def with_baked_grid(batch):
            """The quantized model fed the baked ramps instead of each frame's own."""
            arrays = []
            for spec, value in zip(specs, _ordered(batch, specs)):
                extra = _grid_channels(spec)
                arrays += [value[..., :-extra], np.repeat(ramps[spec.name], len(value), axis=0)] \
                    if extra else [value]
            return quantized(arrays, training=False).numpy()
        baked, baked_cm = _evaluate(
            lambda batch: package_model(_split_inputs(batch, specs, grids=False), training=False).numpy(),
            root, specs)
        _, reference_cm = _evaluate(with_baked_grid, root, specs)
        deployment["face_grid"] = {
            "cells": face_grid,
            "source": "--face-grid" if job["face_grid"] else "median face grid of the training split",
            "sensor_roi": _sensor_roi(face_grid),
            "check_max_abs_diff_cm": float(np.max(np.abs(baked_cm - reference_cm))),
            "cm_with_baked_face_grid": baked["cm"]}
    keras_path = work / f"{job['stem']}.keras"
    _say(f"exporting {keras_path.name} for imxconv-tf")
    mct.exporter.keras_export_model(model=package_model, save_model_path=str(keras_path))
    seconds["export"] = time.monotonic() - started
    result = {"model": name, "data": str(root), "deployment": deployment,
              "metrics": {**quantized_errors, "float": float_errors},
              "keras_package": keras_path.name, "toolchain": toolchain_versions(),
              "seconds": {stage: round(value, 2) for stage, value in seconds.items()}}
    (work / _RESULT_FILE).write_text(json.dumps(result, indent=2))


def _sensor_roi(face_grid):
    """The face grid (cells of the 25x25 grid over the frame) as picamera2's inference ROI in
    full-sensor pixels (left, top, width, height)."""
    from zoo.data.gazecapture import GRID_CELLS
    column, row, width, height = face_grid
    scale_x, scale_y = SENSOR_PIXELS[0] / GRID_CELLS, SENSOR_PIXELS[1] / GRID_CELLS
    return [round(column * scale_x), round(row * scale_y), round(width * scale_x), round(height * scale_y)]


def _child_main(job_path):
    try:
        _run_child(job_path)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_PACKAGED


# --- The parent: checks, the child, imxconv-tf, the report ------------------------------------

def _find_sources(model, keras, data):
    """(manifest or None, float Keras path, data root or None) for zoo TFLite ``model``."""
    manifest_path = model.parent / "manifest.json"
    manifest = None
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"{manifest_path}: not readable as JSON ({error}); "
                             "rebuild with `zoo build`") from None
        if not isinstance(manifest, dict) or "files" not in manifest:
            raise UsageError(f"{manifest_path} is not a `zoo build` manifest (no 'files')")
    if keras is None:
        if manifest is None:
            raise UsageError(f"{model} has no manifest.json beside it (not written by `zoo build`), so its "
                             "float model is unknown; name the float Keras model with --keras FILE")
        if "float_h5" not in manifest["files"]:
            raise UsageError(f"{manifest_path} lists no float_h5 model; name the float Keras model "
                             "with --keras FILE")
        keras = model.parent / manifest["files"]["float_h5"]["path"]
    keras = pathlib.Path(keras)
    if not keras.is_file():
        raise UsageError(f"{keras}: no such Keras model file")
    if data is None and manifest is not None:
        data = manifest.get("data", {}).get("root")
    if data is not None and not pathlib.Path(data).is_dir():
        raise UsageError(f"data root {data} is not a folder; point --data at the GazeCapture folder")
    return manifest, keras.absolute(), data and str(pathlib.Path(data).absolute())


def _check_grouped_convolutions(graph):
    """imxconv-tf takes a grouped convolution only when each group's filters are a whole multiple
    of its input channels; it says so only at its last step, minutes into a conversion, so the
    rule is checked here on the TFLite graph before MCT runs."""
    for op in graph.operators:
        if op.name != "CONV_2D":
            continue
        channels = graph.tensors[op.inputs[0]].shape[-1]
        filters, *_, group_channels = graph.tensors[op.inputs[1]].shape
        groups = channels // group_channels
        if groups > 1 and (filters // groups) % group_channels:
            raise CompileError(
                f"{graph.path}: operator {op.index} is a convolution in {groups} groups of "
                f"{group_channels} input channels and {filters // groups} filters, which imxconv-tf "
                f"refuses (\"Non-integer depth multiplier ({filters // groups}/{group_channels}) is not "
                "supported with group > 1\"); the IMX500 cannot take this model")


def _java_version():
    """Java's version line; UsageError when Java 17 or newer is missing (imxconv-tf needs it)."""
    java = shutil.which("java")
    if java is None:
        raise UsageError(f"imxconv-tf needs Java 17 and no `java` is on PATH; install it: {_JAVA_HINT}")
    result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    line = ((result.stderr or result.stdout).strip().splitlines() or [""])[0]
    match = re.search(r'version "(\d+)', line)
    if not match or int(match.group(1)) < 17:
        raise UsageError(f"imxconv-tf needs Java 17, found {line or 'an unknown java'}; "
                         f"install it: {_JAVA_HINT}")
    return line


def _imxconv():
    beside_python = pathlib.Path(sys.executable).parent / "imxconv-tf"
    found = str(beside_python) if beside_python.is_file() else shutil.which("imxconv-tf")
    if found is None:
        raise UsageError("imxconv-tf not found; install it: pip install 'imx500-converter[tf]==3.19.2'")
    return found


def _work_dir(out_dir):
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir} is a file; give a folder for the IMX500 package")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        return pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as error:
        raise UsageError(f"cannot write the output folder {out_dir}: {error.strerror}; "
                         "choose another -o") from None


def _error_line(text, exception_first=False):
    """The one line that says why a tool failed: its first ERROR (with the first detail line when
    it announces details, as imxconv-tf's "...restrictions. Errors are:") or its last Python
    exception message, whichever ``exception_first`` prefers; else its last line."""
    lines = [re.sub(r"\s*\[[^\]]*\.py:\d+\]$", "", line.strip()) for line in text.splitlines()]
    lines = [line for line in lines if line]

    def first_error():
        for number, line in enumerate(lines):
            if re.search(r"\b(ERROR|CRITICAL)\b", line):
                message = re.sub(r"^.*?\b(ERROR|CRITICAL)\b\s*:?\s*", "", line)
                details = [d for d in lines[number + 1:] if "reason:" in d] or \
                    [d for d in lines[number + 1:] if re.search(r"error", d, re.IGNORECASE)]
                return f"{message} {details[0]}" if message.endswith(":") and details else message
        return None

    def last_exception():
        return next((line for line in reversed(lines) if re.match(r"^[\w.]*(Error|Exception)\b.*: ", line)),
                    None)

    found = (last_exception() or first_error()) if exception_first else (first_error() or last_exception())
    return (found or (lines[-1] if lines else "no output"))[:500]


def _child_environment():
    """The child's environment: plain Keras 2.15 (no tf_keras switch), this repository importable."""
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    repo = str(pathlib.Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _run_mct_child(job, work_dir, say):
    """Runs stage 1-3 in a child process, relaying its progress lines; returns its result."""
    job_path = work_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=2))
    log_path = work_dir / "mct.log"
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable, "-m", "compilers.imx500", _CHILD_FLAG, str(job_path)],
                                 stdout=subprocess.PIPE, stderr=log, text=True, env=_child_environment())
        for line in child.stdout:
            say(line.rstrip())
        returncode = child.wait()
    log_text = log_path.read_text(errors="replace")
    if returncode == EXIT_USAGE:
        said = [line for line in log_text.splitlines() if line.startswith("error: ")]
        raise UsageError(said[-1].removeprefix("error: ") if said else _error_line(log_text, True))
    if returncode < 0:
        raise CompileError(f"MCT stage stopped by signal {-returncode}")
    if returncode != 0:
        raise CompileError(f"MCT stage failed (exit {returncode}): "
                           f"{_error_line(log_text, exception_first=True)}")
    return json.loads((work_dir / _RESULT_FILE).read_text())


_IMXCONV_MILESTONE = re.compile(r"Starting SDSPconv|conversion finished|Backend successfully")
_IMXCONV_PREFIX = re.compile(r"^.*INFO\s*:\s*(CODE: \[\w+\]\s*)?")


def _run_imxconv(imxconv, keras_path, convert_dir, say):
    """Runs imxconv-tf into ``convert_dir``, its log beside it, and relays its stage lines."""
    say(f"imxconv-tf: converting {keras_path.name} (about a minute)")
    scratch = convert_dir.parent / "imxconv-tmp"  # it leaves its intermediate files there on failure
    scratch.mkdir(exist_ok=True)
    command = [imxconv, "-i", str(keras_path), "-o", str(convert_dir), "--report-size-unit", "B"]
    with open(convert_dir.parent / "imxconv.log", "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "TMPDIR": str(scratch)})
        for line in process.stdout:
            log.write(line)
            if _IMXCONV_MILESTONE.search(line):
                say("imxconv-tf: " + _IMXCONV_PREFIX.sub("", line.strip()))
        returncode = process.wait()
    shutil.rmtree(scratch, ignore_errors=True)
    if returncode != 0 or not (convert_dir / "packerOut.zip").is_file():
        text = (convert_dir.parent / "imxconv.log").read_text(errors="replace")
        raise CompileError(f"imxconv-tf failed (exit {returncode}): {_error_line(text)}")


_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}


def _bytes(text):
    """A memory report size ("658464B", "787.69KB", "8.00MB") in bytes."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?B)\s*", str(text))
    if not match:
        raise CompileError(f"unexpected size {text!r} in the imxconv-tf memory report")
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def _memory(report_path):
    """The memory section of report.json from imxconv-tf's NAME_MemoryReport.json."""
    figures = json.loads(report_path.read_text())["Memory Report"]
    usage, available = _bytes(figures["Memory Usage"]), _bytes(figures["Total Memory Available On Chip"])
    return {"usage_bytes": usage, "available_bytes": available,
            "utilization": round(usage / available, 4), "fit_in_chip": bool(figures["Fit In Chip"]),
            "runtime_bytes": _bytes(figures["Runtime Memory Physical Size"]),
            "model_bytes": _bytes(figures["Model Memory Physical Size"]),
            "reserved_bytes": _bytes(figures["Reserved Memory"]),
            "input_persistent": figures.get("Input Persistent")}


def _check_fit(memory, name):
    if not memory["fit_in_chip"]:
        raise CompileError(
            f"{name} does not fit in the IMX500: it needs {memory['usage_bytes']:,} bytes "
            f"({memory['model_bytes']:,} model + {memory['runtime_bytes']:,} runtime + "
            f"{memory['reserved_bytes']:,} reserved) of {memory['available_bytes']:,} on chip")


def _tensors(params_path, kind):
    """Inputs or outputs of the network as dnnParams.xml states them (shape in ordinal order)."""
    tensors = []
    for tensor in ElementTree.parse(params_path).getroot().iter(f"{kind}Tensor"):
        dimensions = sorted(tensor.iter("dimension"), key=lambda d: int(d.get("ordinal")))
        tensors.append({"name": tensor.get("name"), "shape": [int(d.get("size")) for d in dimensions],
                        "bits": int(tensor.get("bitsPerElement")), "format": tensor.get("format"),
                        "scale": float(tensor.get("scale")), "shift": int(tensor.get("shift"))})
    return tensors


_PI_SCRIPT = '''"""Gaze from the IMX500 package on a Raspberry Pi AI Camera (written by compilers/imx500.py;
not run where it was written: it needs the camera). First, on the Pi:
    sudo apt install imx500-all imx500-tools
    imx500-package -i packerOut.zip -o .        # writes ./network.rpk
"""
from picamera2 import Picamera2
from picamera2.devices import IMX500

ROI = {roi}  # full-sensor pixels (left, top, width, height): face grid {cells} baked in the package
GAZE_SCALE_CM = {scale}  # the network ends in tanh; cm = output * GAZE_SCALE_CM

imx500 = IMX500("network.rpk")  # before Picamera2, as picamera2 requires
picam2 = Picamera2(imx500.camera_num)
imx500.show_network_fw_progress_bar()
picam2.start(picam2.create_preview_configuration(), show_preview=False)
imx500.set_inference_roi_abs(ROI)  # the face must fill this ROI, as it filled the baked face grid
while True:
    metadata = picam2.capture_metadata()
    outputs = imx500.get_outputs(metadata)  # dequantized float32, one array per output tensor
    if outputs:
        x_cm, y_cm = (outputs[0].reshape(-1)[:2] * GAZE_SCALE_CM).tolist()
        print(f"gaze {{x_cm:+.1f}} cm right, {{y_cm:+.1f}} cm up of the camera; "
              f"inference ms (dnn, dsp): {{imx500.get_kpi_info(metadata)}}")
'''


def _pi_script(deployment):
    grid = deployment["face_grid"]
    roi = tuple(grid["sensor_roi"]) if grid else (0, 0, *SENSOR_PIXELS)
    return _PI_SCRIPT.format(roi=roi, cells=grid["cells"] if grid else "(none)",
                             scale=deployment["gaze_scale_cm"])


def _publish(work_dir, out_dir, files):
    """Moves the finished files into ``out_dir`` (report.json last), dropping files of an earlier
    run that this run did not make (they would contradict report.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {path.name for path in files}
    for stale in out_dir.iterdir():
        if stale.name not in made and (stale.name in _PUBLISHED or stale.name.endswith(
                ("_imx500.keras", "_imx500.pbtxt", "_imx500_MemoryReport.json"))):
            stale.unlink()
    for path in sorted(files, key=lambda p: p.name == "report.json"):
        os.replace(path, out_dir / path.name)


def compile(model, out_dir=None, method="ptq", calibration_frames=200, keras=None, data=None,
            face_grid=None, epochs=2, progress=None):
    """Quantizes the float model behind zoo TFLite ``model`` with MCT for the IMX500, evaluates
    it, converts it with imxconv-tf and writes the package and report.json into ``out_dir``
    (default MODEL_DIR/NAME_imx500); returns the report.

    ``keras`` names the float Keras model when ``model`` has no `zoo build` manifest beside it;
    ``data`` overrides the manifest's GazeCapture root; ``face_grid`` is the 0-indexed (column,
    row, width, height) face grid baked into a face-grid model's package. Bad input raises
    UsageError before anything is written; a toolchain failure or a model too big for the chip
    raises CompileError and leaves nothing in ``out_dir``; so does a model with a convolution
    imxconv-tf is known to refuse, before any toolchain work.
    """
    from zoo import tflite
    say = progress or (lambda message: None)
    model = pathlib.Path(model)
    graph = tflite.read_graph(model)
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if calibration_frames < 1 or epochs < 1:
        raise UsageError("--calibration-frames and --epochs must be at least 1")
    if face_grid is not None:
        face_grid = _check_face_grid(face_grid)
    manifest, keras_path, data = _find_sources(model, keras, data)
    _check_grouped_convolutions(graph)
    java_line = _java_version()
    imxconv = _imxconv()
    out_dir = pathlib.Path(out_dir) if out_dir is not None else model.with_name(f"{model.stem}_imx500")
    work_dir = _work_dir(out_dir)
    started = time.monotonic()
    try:
        stem = f"{(manifest or {}).get('model') or model.stem.removesuffix('_int8')}_imx500"
        job = {"work_dir": str(work_dir), "keras": str(keras_path), "data": data,
               "model_name": (manifest or {}).get("model"), "method": method,
               "calibration_frames": calibration_frames, "epochs": epochs, "face_grid": face_grid,
               "tflite_input_shapes": [list(graph.tensors[i].shape[1:]) for i in graph.inputs],
               "stem": stem}
        result = _run_mct_child(job, work_dir, say)
        convert_dir = work_dir / "imxconv"
        imxconv_started = time.monotonic()
        keras_package = work_dir / result["keras_package"]
        _run_imxconv(imxconv, keras_package, convert_dir, say)
        imxconv_seconds = round(time.monotonic() - imxconv_started, 2)
        memory = _memory(convert_dir / f"{stem}_MemoryReport.json")
        _check_fit(memory, stem)
        files = [convert_dir / "packerOut.zip", convert_dir / "dnnParams.xml",
                 convert_dir / f"{stem}_MemoryReport.json", convert_dir / f"{stem}.pbtxt",
                 keras_package, work_dir / "imxconv.log"]
        if len(_tensors(convert_dir / "dnnParams.xml", "input")) == 1:  # else the sensor cannot feed it
            (work_dir / "run_on_pi.py").write_text(_pi_script(result["deployment"]))
            files.append(work_dir / "run_on_pi.py")
        report = _report(model, keras_path, manifest, method, calibration_frames, epochs, result,
                         memory, convert_dir, files, out_dir, java_line)
        report["seconds"] = {**result["seconds"], "imxconv": imxconv_seconds,
                             "total": round(time.monotonic() - started, 2)}
        (work_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        _publish(work_dir, out_dir, files + [work_dir / "report.json"])
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return report


def _check_face_grid(face_grid):
    from zoo.data.gazecapture import GRID_CELLS
    try:
        cells = [int(v) for v in face_grid]
    except (TypeError, ValueError):
        cells = []
    if len(cells) != 4 or min(cells[:2]) < 0 or min(cells[2:]) < 1 or \
            cells[0] + cells[2] > GRID_CELLS or cells[1] + cells[3] > GRID_CELLS:
        raise UsageError(f"--face-grid {face_grid}: give COL,ROW,W,H, 0-indexed cells inside the "
                         f"{GRID_CELLS}x{GRID_CELLS} grid, e.g. 8,6,9,9")
    return cells


def _report(model, keras_path, manifest, method, calibration_frames, epochs, result, memory,
            convert_dir, files, out_dir, java_line):
    params = convert_dir / "dnnParams.xml"
    inputs, outputs = _tensors(params, "input"), _tensors(params, "output")
    deployment = result["deployment"]
    deployment["sensor_feeds_all_inputs"] = len(inputs) == 1
    if len(inputs) > 1:
        deployment["note"] = (f"the package has {len(inputs)} input tensors, but the IMX500 sensor feeds "
                              "exactly one (its ISP-cropped image): the other inputs cannot be supplied "
                              "on the camera")
    deployment["raspberry_pi"] = {
        "install": "sudo apt install imx500-all imx500-tools",
        "package": "imx500-package -i packerOut.zip -o DIR",
        "writes": "DIR/network.rpk (runs only on a Raspberry Pi; not done here)",
        "run": "python3 run_on_pi.py (picamera2; loads network.rpk, sets the inference ROI, reads the gaze)",
        "input": "the ISP's image tensor, int8 = pixel - 128 with the input scale 1/128 "
                 "(the [-1, 1] range the model was trained on); check the packager's input format"}
    metrics = result["metrics"]
    if manifest is not None:
        int8 = manifest.get("metrics", {}).get("int8_tflite")
        if int8:
            metrics["manifest_int8_tflite"] = int8
    published = {path.name: out_dir / path.name for path in files}
    stem = result["keras_package"].removesuffix(".keras")
    return {
        "model": result["model"],
        "source": {"tflite": str(model.absolute()), "keras": str(keras_path),
                   "manifest": str(model.parent.absolute() / "manifest.json") if manifest else None,
                   "data": result["data"]},
        "method": method,
        "calibration": {"split": "train", "frames": calibration_frames,
                        "epochs": epochs if method != "ptq" else None},
        "memory": memory,
        "inputs": inputs,
        "outputs": outputs,
        "metrics": metrics,
        "deployment": deployment,
        "files": {kind: file_record(path) | {"path": str(published[path.name])} for kind, path in (
            ("packer_zip", convert_dir / "packerOut.zip"), ("dnn_params", convert_dir / "dnnParams.xml"),
            ("memory_report", convert_dir / f"{stem}_MemoryReport.json"),
            ("quantized_keras", convert_dir.parent / result["keras_package"]))},
        "toolchain": {**result["toolchain"], "tpc": f"edge-mdt-tpc imx500 v{TPC_VERSION}",
                      "java": java_line},
    }


def _summary(report):
    memory, metrics = report["memory"], report["metrics"]
    lines = [f"IMX500 package of {report['model']} ({report['method']}): "
             f"{memory['usage_bytes']:,} of {memory['available_bytes']:,} bytes on chip "
             f"({memory['utilization']:.1%}), fits: {memory['fit_in_chip']}",
             f"  test error: {metrics['cm']:.3f} cm quantized (MCT, IMX500 TPC) vs "
             f"{metrics['float']['cm']:.3f} cm float ({metrics['frames']} frames); per frame "
             f"{metrics['mean_cm_from_float']:.3f} cm from the float prediction"]
    if max(metrics["float"]["prediction_std_cm"]) < 0.01:
        lines.append("  warning: the float model predicts a near-constant gaze (spread under 0.01 cm), so "
                     "its agreement with the quantized model says little")
    if "manifest_int8_tflite" in metrics:
        lines.append(f"  int8 TFLite of the same build (the Edge TPU's input): "
                     f"{metrics['manifest_int8_tflite']['cm']:.3f} cm")
    grid = report["deployment"]["face_grid"]
    if grid:
        lines.append(f"  face grid {grid['cells']} baked in ({grid['source']}); Pi ROI {grid['sensor_roi']}; "
                     f"package vs quantized model: max {grid['check_max_abs_diff_cm']:.2g} cm apart")
    if not report["deployment"]["sensor_feeds_all_inputs"]:
        lines.append(f"  warning: {report['deployment']['note']}")
    lines.append(f"wrote {report['files']['packer_zip']['path']} and report.json; on the Pi: "
                 f"{report['deployment']['raspberry_pi']['package']}, then run_on_pi.py")
    return "\n".join(lines)


def _face_grid_argument(text):
    return [part.strip() for part in text.split(",")]


@one_line_errors("compilers/imx500.py", failures=(CompileError,))
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [_CHILD_FLAG]:
        return _child_main(argv[1])
    parser = argparse.ArgumentParser(
        prog="compilers/imx500.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Package the float model behind a zoo-built TFLite for the Sony IMX500 "
                    "(Raspberry Pi AI Camera): MCT quantization with the IMX500 target platform "
                    "capabilities, evaluation on the test split, then imxconv-tf (needs Java 17).",
        epilog="The last step, `imx500-package -i packerOut.zip -o DIR` (network.rpk), runs only on a "
               "Raspberry Pi (apt package imx500-tools); run_on_pi.py in DIR shows the picamera2 side.\n"
               "exit status: 0 packaged; 1 MCT or imxconv-tf failed, or the model does not fit in the "
               "chip or has a convolution imxconv-tf refuses; 2 bad input (nothing written)")
    parser.add_argument("model", help="TFLite written by `zoo build` (its manifest.json names the float "
                                      "model)")
    parser.add_argument("-o", "--out", help="output folder (default: MODEL_DIR/NAME_imx500)")
    parser.add_argument("--method", choices=METHODS, default="ptq",
                        help="MCT quantization: post-training (default), gradient-based PTQ, or QAT")
    parser.add_argument("--calibration-frames", type=int, default=200, metavar="N",
                        help="training frames MCT calibrates on (default 200)")
    parser.add_argument("--keras", metavar="FILE", help="the float Keras model (.h5/.keras) to package, "
                                                        "for a TFLite without a zoo manifest")
    parser.add_argument("--data", metavar="ROOT", help="GazeCapture root (default: the manifest's, "
                                                       "else the rendered default dataset)")
    parser.add_argument("--face-grid", type=_face_grid_argument, metavar="COL,ROW,W,H",
                        help="face grid baked into a face-grid model's package, 0-indexed cells of the "
                             "25x25 grid (default: the training split's median)")
    parser.add_argument("--epochs", type=int, default=2, metavar="N",
                        help="fine-tuning epochs for --method gptq or qat (default 2)")
    parser.add_argument("--json", action="store_true", help="print report.json instead of the summary")
    args = parser.parse_args(argv)
    report = compile(args.model, out_dir=args.out, method=args.method,
                     calibration_frames=args.calibration_frames, keras=args.keras, data=args.data,
                     face_grid=args.face_grid, epochs=args.epochs, progress=progress)
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    return EXIT_PACKAGED


if __name__ == "__main__":
    sys.exit(main())
