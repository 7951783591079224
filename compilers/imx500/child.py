"""The MCT stage of the IMX500 adapter, run by compilers/imx500.py in a child process
(``python -m compilers.imx500.child JOB.json``) that never imports tensorflow_model_optimization:
tfmot turns tf.keras into tf_keras for the whole process, and MCT needs plain Keras 2.15.

It imports the TFLite as a float Keras model (compilers.imx500.importer) and checks the import against
the TFLite itself, quantizes the deployment graph (compilers.imx500.graph) with MCT and the IMX500
target platform capabilities, evaluates it where the data has gaze labels, bakes the face grid
and exports the .keras file imxconv-tf converts. Exit: 0 done, 1 the import check failed, 2 bad
input (the last stderr line says why).
"""
import json
import pathlib
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from compilers.imx500 import data  # noqa: E402
from compilers.imx500.graph import (Spec, deployment_graph, freeze_inputs, grid_channels, grid_name,  # noqa: E402
                                    ordered, sensor_spec, split_inputs)
from zoo.errors import EXIT_FAILED, EXIT_USAGE, UsageError  # noqa: E402

RESULT_FILE = "child_result.json"
IMX500_PACKAGES = ("model-compression-toolkit", "edge-mdt-tpc", "imx500-converter")


class ImportMismatch(Exception):
    """The imported Keras model does not compute what the TFLite computes."""


def say(message):
    print(f"[imx500] {message}", flush=True)


def _float_model(job):
    """The float Keras model MCT quantizes: the TFLite imported, or the --keras file."""
    if job["keras"]:
        from zoo.inference.loader import load_keras
        say(f"loading the float Keras model {job['keras']}")
        return load_keras(job["keras"])
    from compilers.imx500.importer import tflite_to_keras
    say(f"importing {pathlib.Path(job['tflite']).name} as a float Keras model")
    return tflite_to_keras(job["tflite"])


def _specs(job, model):
    """The model's inputs with their recipes (from the model card or --recipe; None for images)."""
    shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
    recipes = job["recipes"] or {}
    if recipes and set(recipes) != set(shapes):
        if len(recipes) == 1 and len(shapes) == 1:  # one input: names may differ (--keras)
            recipes = {next(iter(shapes)): next(iter(recipes.values()))}
        else:
            raise UsageError(f"the model's inputs {sorted(shapes)} are not the recipe's {sorted(recipes)}")
    specs = [Spec(name, recipes.get(name), shape) for name, shape in shapes.items()]
    if recipes:
        from zoo.data.recipes import check_specs
        try:
            check_specs(specs)
        except ValueError as error:
            raise UsageError(f"{error}: the recipe does not fit this model; pick another --recipe") from None
    return specs


def _import_check(model, job, source):
    """The imported (or --keras) model against the TFLite on the first calibration inputs."""
    from compilers.imx500.import_check import MAX_IMPORT_STEPS, import_check
    inputs = source.check_inputs()
    say(f"checking the Keras model against the TFLite on {source.check_count} inputs")
    check = import_check(model, job["tflite"], inputs)
    check["threshold_steps"] = MAX_IMPORT_STEPS
    worst = check.get("max_abs_steps")
    if worst is not None and worst > MAX_IMPORT_STEPS:
        raise ImportMismatch(f"the Keras model differs from {pathlib.Path(job['tflite']).name} by up to "
                             f"{worst:.1f} output steps (mean {check['mean_abs_steps']:.2f}) on "
                             f"{check['frames']} inputs, more than the {MAX_IMPORT_STEPS} allowed")
    return check


def _quantize(graph, source, job):
    """The MCT-quantized deployment graph by the job's method, with the IMX500 TPC."""
    import model_compression_toolkit as mct
    from edgemdt_tpc import get_target_platform_capabilities
    tpc = get_target_platform_capabilities(tpc_version=job["tpc_version"], device_type="imx500")
    representative = source.calibration_batches
    say(f"MCT {job['method']} with the IMX500 TPC v{job['tpc_version']}, calibrating on "
        f"{source.calibration_count} inputs ({source.describe()})")
    if job["method"] == "ptq":
        quantized, _ = mct.ptq.keras_post_training_quantization(
            graph, representative, target_platform_capabilities=tpc)
    elif job["method"] == "gptq":
        # Without the Hessian-based weighting: on a CPU it costs ~5 s per sample and layer pass.
        config = mct.gptq.get_keras_gptq_config(n_epochs=job["epochs"], use_hessian_based_weights=False,
                                                use_hessian_sample_attention=False)
        quantized, _ = mct.gptq.keras_gradient_post_training_quantization(
            graph, representative, gptq_config=config, target_platform_capabilities=tpc)
    else:
        quantized = _quantization_aware_training(graph, source, representative, tpc, job)
    return quantized


def _quantization_aware_training(graph, source, representative, tpc, job):
    """MCT QAT: a PTQ start, --epochs of fine-tuning on the training split (Adam 1e-4, the rate
    `zoo build --qat` fine-tunes at), then the trainable quantizers frozen into inferable ones."""
    import model_compression_toolkit as mct
    import tensorflow as tf
    trainable, _, _ = mct.qat.keras_quantization_aware_training_init_experimental(
        graph, representative, target_platform_capabilities=tpc)
    trainable.compile(optimizer=tf.keras.optimizers.Adam(1e-4), loss="mse")
    trainable.fit(source.training_batches(), epochs=job["epochs"], verbose=2)
    return mct.qat.keras_quantization_aware_training_finalize_experimental(trainable)


def _evaluate(model, quantized, job, source):
    """Gaze errors of the MCT model beside the float model and the TFLite, on the test split."""
    import numpy as np
    from zoo.inference import metrics
    from zoo.tflite import make_interpreter, run_tflite
    specs, sensor = source.specs, source.sensor_specs
    interpreter = make_interpreter(job["tflite"])
    predicted, true_cm, is_tablet = source.predict_cm({
        "float": lambda batch: model(ordered(batch, specs), training=False).numpy(),
        "tflite": lambda batch: run_tflite(interpreter, batch)}, specs)
    predicted.update(source.predict_cm(
        {"mct": lambda batch: quantized(split_inputs(batch, sensor), training=False).numpy()}, sensor)[0])
    errors = {key: metrics.gaze_errors(values, true_cm, is_tablet) for key, values in predicted.items()}
    # Per frame, not only on average: a model that predicts a constant agrees on average trivially.
    errors["float"]["prediction_std_cm"] = [float(v) for v in np.std(predicted["float"], axis=0)]
    return {**errors["mct"], "float": errors["float"], "tflite": errors["tflite"],
            "mean_cm_from_float": float(np.mean(np.linalg.norm(predicted["mct"] - predicted["float"], axis=1)))}


def _agreement(model, quantized, source):
    """Without labels: how far the MCT model's outputs are from the float model's on the check
    inputs, and (for a vector output) how often both pick the same top entry."""
    import numpy as np
    reference = model(ordered(source.check_inputs(), source.specs), training=False).numpy()
    sensor = source.sensor_specs
    got = quantized(split_inputs(source.check_inputs(sensor), sensor), training=False).numpy()
    record = {"frames": int(len(got)), "mean_abs_diff": float(np.mean(np.abs(got - reference))),
              "max_abs_diff": float(np.max(np.abs(got - reference)))}
    if reference.ndim == 2 and reference.shape[1] > 2:
        record["top1_agreement"] = float(np.mean(np.argmax(got, 1) == np.argmax(reference, 1)))
    return record


def _bake_face_grid(quantized, job, source):
    """(package model with the face grid as constants, its deployment record), or (quantized, None)."""
    import numpy as np
    from compilers.imx500.tools import sensor_roi
    from zoo.data.recipes import grid_ramps
    sensor = source.sensor_specs
    grid_specs = [spec for spec in sensor if grid_channels(spec)]
    if not grid_specs:
        return quantized, None
    face_grid = job["face_grid"] or source.median_face_grid()
    ramps = {s.name: grid_ramps(face_grid, *s.shape[:2]).numpy()[None] for s in grid_specs}
    package = freeze_inputs(quantized, {grid_name(s): ramps[s.name] for s in grid_specs})
    say(f"baking face grid {face_grid} into the package; checking it against the quantized model")

    def with_baked_grid(batch):
        """The quantized model fed the baked ramps instead of each frame's own."""
        arrays = []
        for spec, value in zip(sensor, ordered(batch, sensor)):
            extra = grid_channels(spec)
            arrays += [value[..., :-extra], np.repeat(ramps[spec.name], len(value), axis=0)] if extra else [value]
        return quantized(arrays, training=False).numpy()
    predicted, _, _ = source.predict_cm({
        "package": lambda batch: package(split_inputs(batch, sensor, grids=False), training=False).numpy(),
        "reference": with_baked_grid}, sensor)
    record = {"cells": face_grid, "source": "--face-grid" if job["face_grid"] else
              "median face grid of the training split", "sensor_roi": sensor_roi(face_grid),
              "check_max_abs_diff_cm": float(np.max(np.abs(predicted["package"] - predicted["reference"])))}
    return package, record


def run(job):
    """The child's work; writes RESULT_FILE into the job's work folder."""
    import model_compression_toolkit as mct
    from zoo.artifacts.files import package_versions
    from zoo.train.build import BUILD_PACKAGES
    work, seconds, started = pathlib.Path(job["work_dir"]), {}, time.monotonic()
    model = _float_model(job)
    specs = _specs(job, model)
    source = data.open_source(job, specs, [sensor_spec(spec) for spec in specs])
    check = _import_check(model, job, source)
    seconds["import"], started = round(time.monotonic() - started, 2), time.monotonic()
    quantized = _quantize(deployment_graph(model, specs), source, job)
    seconds["quantize"], started = round(time.monotonic() - started, 2), time.monotonic()
    evaluated = None
    if source.labelled:
        say("evaluating the float model, the TFLite and the MCT-quantized model on the test split")
        evaluated = _evaluate(model, quantized, job, source)
    agreement = _agreement(model, quantized, source)
    package, face_grid = _bake_face_grid(quantized, job, source)
    seconds["evaluate"], started = round(time.monotonic() - started, 2), time.monotonic()
    keras_path = work / f"{job['stem']}.keras"
    say(f"exporting {keras_path.name} for imxconv-tf")
    mct.exporter.keras_export_model(model=package, save_model_path=str(keras_path))
    seconds["export"] = round(time.monotonic() - started, 2)
    result = {"specs": [{"name": s.name, "recipe": s.recipe, "shape": list(s.shape)} for s in specs],
              "data": source.describe(), "import_check": check, "metrics": evaluated, "agreement": agreement,
              "face_grid": face_grid,
              "keras_package": keras_path.name, "toolchain": package_versions(BUILD_PACKAGES + IMX500_PACKAGES), "seconds": seconds}
    (work / RESULT_FILE).write_text(json.dumps(result, indent=2))


def main(argv):
    try:
        run(json.loads(pathlib.Path(argv[0]).read_text()))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ImportMismatch as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
