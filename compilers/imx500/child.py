"""The MCT stage of the IMX500 adapter, run by compilers/imx500.py in a child process
(``python -m compilers.imx500.child JOB.json``) that never imports tensorflow_model_optimization:
tfmot turns tf.keras into tf_keras for the whole process, and MCT needs plain Keras 2.15.

It imports the part of the TFLite the sensor runs (compilers.imx500.partition) as a float Keras
model (compilers.imx500.importer), checks the import against LiteRT operator by operator
(compilers.imx500.exact_check), writes the host tail (compilers.imx500.host_tail), quantizes the
deployment graph (compilers.imx500.graph) with MCT and the IMX500 target platform capabilities
(16-bit output where asked and the TPC allows it, the 8-bit twin beside it), evaluates it where
the data has gaze labels, bakes the face grid and exports the .keras file(s) imxconv-tf converts.
Exit: 0 done, 1 the import check failed, 2 bad input (the last stderr line says why).
"""
import dataclasses
import json
import pathlib
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from compilers.imx500 import data  # noqa: E402
from compilers.imx500.graph import (GREY_PHOTO, Spec, deployment_graph, freeze_inputs,  # noqa: E402
                                    grid_channels, grid_name, ordered, sensor_spec, split_inputs)
from zoo.errors import EXIT_FAILED, EXIT_USAGE, UsageError  # noqa: E402

RESULT_FILE = "child_result.json"
IMX500_PACKAGES = ("model-compression-toolkit", "edge-mdt-tpc", "imx500-converter")


class ImportMismatch(Exception):
    """The imported Keras model does not compute what the TFLite computes."""


def say(message):
    print(f"[imx500] {message}", flush=True)


def _float_model(job, graph, part):
    """The float Keras model MCT quantizes: the sensor's part of the TFLite imported, or --keras."""
    if job["keras"]:
        if part.host:
            raise UsageError(f"--keras replaces the whole network, but {len(part.host)} operators of the "
                             "TFLite run on the Pi after the sensor; leave --keras out")
        from zoo.inference.loader import load_keras
        say(f"loading the float Keras model {job['keras']}")
        return load_keras(job["keras"])
    from compilers.imx500.importer import tflite_to_keras
    say(f"importing {len(part.sensor)} of {len(graph.operators)} operators of "
        f"{pathlib.Path(job['tflite']).name} as a float Keras model")
    return tflite_to_keras(job["tflite"], part.operators(graph, "sensor"), part.sensor_outputs)


def _photo_recipe(job, shape):
    """GREY_PHOTO for a one-channel image input calibrated on photos (the package then takes the
    sensor's RGB and converts it inside the network), else None."""
    return GREY_PHOTO if job["data"]["kind"] == "images" and len(shape) == 3 and shape[2] == 1 else None


def _specs(job, model):
    """The model's inputs with their recipes (from the model card or --recipe; None for images)."""
    shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
    recipes = job["recipes"] or {}
    if recipes and set(recipes) != set(shapes):
        if len(recipes) == 1 and len(shapes) == 1:  # one input: names may differ (--keras)
            recipes = {next(iter(shapes)): next(iter(recipes.values()))}
        else:
            raise UsageError(f"the model's inputs {sorted(shapes)} are not the recipe's {sorted(recipes)}")
    specs = [Spec(name, recipes.get(name) or _photo_recipe(job, shape), shape)
             for name, shape in shapes.items()]
    if recipes:
        from zoo.data.recipes import check_specs
        try:
            check_specs(specs)
        except ValueError as error:
            raise UsageError(f"{error}: the recipe does not fit this model; pick another --recipe") from None
    return specs


def _exact_check(model, job, graph, part, source):
    """The import's twin against LiteRT's reference kernels on the first calibration inputs,
    operator by operator; ImportMismatch naming the first operator where they part."""
    from compilers.imx500.exact_check import MAX_STEPS, exact_check
    from compilers.imx500.partition import submodel
    say(f"checking the import against LiteRT, operator by operator, on {source.check_count} inputs")
    content = submodel(job["tflite"], part.sensor, graph.inputs, part.sensor_outputs) if part.host else None
    check = exact_check(job["tflite"], source.check_inputs(), part.operators(graph, "sensor"),
                        part.sensor_outputs, content, float_model=model)
    if not check.passed:
        raise ImportMismatch(f"the import of {pathlib.Path(job['tflite']).name} does not compute what the "
                             f"file computes: {check.first_failure} from LiteRT's reference kernels on "
                             f"{check.frames} inputs, where a correct import stays within {MAX_STEPS:g}; "
                             "the importer's translation of that operator is wrong")
    return dataclasses.asdict(check)


def _host_tail(job, graph, part, source, work):
    """The host tail written into ``work`` and checked; None when the sensor runs everything."""
    if not part.host:
        return None
    from compilers.imx500.exact_check import input_batch
    from compilers.imx500.host_tail import write_tail
    from compilers.imx500.importer import file_context
    say(f"writing the host tail: {len(part.host)} operators after the sensor's outputs run on the Pi")
    names = file_context(job["tflite"], graph).names
    batch = input_batch(job["tflite"], graph, names, source.check_inputs())
    return write_tail(job["tflite"], graph, part, batch, work)


def _evaluate(model, quantized, job, source):
    """Gaze errors of the MCT model (the highest of ``quantized``'s {bits: model}) beside the
    float model and the TFLite on the test split, and per frame each variant's distance from the
    float prediction."""
    import numpy as np
    from zoo.inference import metrics
    from zoo.tflite import make_interpreter, run_tflite
    specs, sensor = source.specs, source.sensor_specs
    interpreter = make_interpreter(job["tflite"])
    predicted, true_cm, is_tablet = source.predict_cm({
        "float": lambda batch: model(ordered(batch, specs), training=False).numpy(),
        "tflite": lambda batch: run_tflite(interpreter, batch)}, specs)
    predicted.update(source.predict_cm({
        bits: (lambda batch, q=q: q(split_inputs(batch, sensor), training=False).numpy())
        for bits, q in quantized.items()}, sensor)[0])
    from compilers.imx500.report import QuantizedErrors
    chosen = max(quantized)
    errors = {key: metrics.gaze_errors(predicted[key], true_cm, is_tablet)
              for key in ("float", "tflite", chosen)}
    distance = {str(bits): float(np.mean(np.linalg.norm(predicted[bits] - predicted["float"], axis=1)))
                for bits in quantized}
    # Per frame, not only on average: a model that predicts a constant agrees on average trivially.
    return dataclasses.asdict(QuantizedErrors(
        mct=errors[chosen], float_model=errors["float"], tflite=errors["tflite"],
        float_prediction_std_cm=[float(v) for v in np.std(predicted["float"], axis=0)],
        mean_cm_from_float=distance[str(chosen)], mean_cm_from_float_by_output_bits=distance))


def _listed(outputs):
    import numpy as np
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def _agreement(model, quantized, source):
    """Without labels: how far each MCT model ({bits: model}) is from the float model on the
    check inputs (every output), and for one output of scores (a last axis of more than 2: a
    classifier's classes, a segmentation's per-pixel classes) how often both pick the same top
    entry at each position."""
    import numpy as np
    reference = _listed(model(ordered(source.check_inputs(), source.specs), training=False))
    sensor = source.sensor_specs
    feed = split_inputs(source.check_inputs(sensor), sensor)
    record = {"frames": int(len(reference[0])), "by_output_bits": {}}
    for bits, variant in sorted(quantized.items()):
        got = _listed(variant(feed, training=False))
        difference = np.concatenate([np.abs(g - r).ravel() for g, r in zip(got, reference)])
        record["by_output_bits"][str(bits)] = {"mean_abs_diff": float(difference.mean()),
                                               "max_abs_diff": float(difference.max())}
        record.update(record["by_output_bits"][str(bits)])  # the last, highest bits: the package's
        if len(reference) == 1 and reference[0].shape[-1] > 2:
            record["top1_agreement"] = float(np.mean(np.argmax(got[0], -1) == np.argmax(reference[0], -1)))
    return record


def _bake_face_grid(quantized, job, source):
    """(package model with the face grid as constants, its deployment record), or (quantized, None)."""
    import numpy as np
    from compilers.imx500.deployment import sensor_roi
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
            ramp = np.repeat(ramps[spec.name], len(value), axis=0) if extra else None
            arrays += [value[..., :-extra], ramp] if extra else [value]
        return quantized(arrays, training=False).numpy()
    predicted, _, _ = source.predict_cm({
        "package": lambda batch: package(split_inputs(batch, sensor, grids=False), training=False).numpy(),
        "reference": with_baked_grid}, sensor)
    record = {"cells": face_grid, "source": "--face-grid" if job["face_grid"] else
              "median face grid of the training split", "sensor_roi": sensor_roi(face_grid),
              "check_max_abs_diff_cm": float(np.max(np.abs(predicted["package"] - predicted["reference"])))}
    return package, record


def _export(packages, job, work):
    """Each package model ({bits: model}) exported as .keras for imxconv-tf (which names its files
    after the .keras file's); {bits: path under ``work``}: the highest bits as the job's stem (the
    package), the others in a BITSbit/ folder (fallbacks)."""
    import model_compression_toolkit as mct
    names = {}
    for bits, package in sorted(packages.items(), reverse=True):
        names[str(bits)] = f"{job['stem']}.keras" if not names else f"{bits}bit/{job['stem']}.keras"
        (work / names[str(bits)]).parent.mkdir(exist_ok=True)
        say(f"exporting {names[str(bits)]} for imxconv-tf")
        mct.exporter.keras_export_model(model=package, save_model_path=str(work / names[str(bits)]))
    return names


def _checked_source(job, work, seconds):
    """(graph, partition, float model, specs, data source, exact check, host tail record)."""
    from compilers.imx500.partition import partition
    from zoo.tflite import read_graph
    started = time.monotonic()
    graph = read_graph(job["tflite"])
    part = partition(graph)
    model = _float_model(job, graph, part)
    specs = _specs(job, model)
    source = data.open_source(job, specs, [sensor_spec(spec) for spec in specs])
    check = _exact_check(model, job, graph, part, source)
    tail = _host_tail(job, graph, part, source, work)
    seconds["import"] = round(time.monotonic() - started, 2)
    return model, specs, source, check, tail


def run(job):
    """The child's work; writes RESULT_FILE into the job's work folder."""
    from compilers.imx500.quantize import variants
    from zoo.artifacts.files import package_versions
    from zoo.train.build import BUILD_PACKAGES
    work, seconds = pathlib.Path(job["work_dir"]), {}
    model, specs, source, check, tail = _checked_source(job, work, seconds)
    started = time.monotonic()
    quantized, precision_note = variants(deployment_graph(model, specs), model, source, job)
    seconds["quantize"], started = round(time.monotonic() - started, 2), time.monotonic()
    evaluated = None
    if source.labelled:
        say("evaluating the float model, the TFLite and the MCT-quantized model(s) on the test split")
        evaluated = _evaluate(model, quantized, job, source)
    agreement = _agreement(model, quantized, source)
    baked = {bits: _bake_face_grid(q, job, source) for bits, q in quantized.items()}
    seconds["evaluate"], started = round(time.monotonic() - started, 2), time.monotonic()
    packages = _export({bits: package for bits, (package, _) in baked.items()}, job, work)
    seconds["export"] = round(time.monotonic() - started, 2)
    result = {"specs": [{"name": s.name, "recipe": s.recipe, "shape": list(s.shape)} for s in specs],
              "data": source.describe(), "import_check": check, "metrics": evaluated, "agreement": agreement,
              "face_grid": baked[max(baked)][1], "host_tail": tail, "keras_packages": packages,
              "output_bits_note": precision_note, "seconds": seconds,
              "toolchain": package_versions(BUILD_PACKAGES + IMX500_PACKAGES)}
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
