"""BUILD_NOTES ("16-bit output"): the per-frame cm distance from the float model when MCT gives
16-bit activations to the output only, or to more of the network's last layers (MCT's manual
bit-width selection); MCT's refusals are printed as they come.

    python experiments/imx500/output_bits.py BUILD
"""
import sys

import numpy as np

from compilers.imx500 import child, data, quantize
from compilers.imx500.graph import deployment_graph, ordered, sensor_spec, split_inputs
from compilers.imx500.importer import tflite_to_keras
from zoo import artifacts

VARIANTS = (("8-bit", 0), ("16-bit output", 1), ("16-bit last 3", 3), ("16-bit last 6", 6),
            ("16-bit last 12", 12))


def _quantized_variants(graph, source, job, names):
    variants = {}
    for label, count in VARIANTS:
        try:
            variants[label] = quantize.quantize(graph, source, job, names[-count:] if count else (),
                                                16 if count else 8)
        except Exception as error:  # MCT's refusal of a bit width is the finding
            print(label, "refused:", str(error)[:300], flush=True)
    return variants


def main(folder):
    manifest = artifacts.read_build(folder)
    path = f"{folder}/{manifest.files['int8_tflite'].path}"
    model = tflite_to_keras(path)
    job = {"recipes": {i.name: i.recipe for i in manifest.card.inputs},
           "data": {"kind": "gazecapture", "path": manifest.card.data.root}, "calibration_frames": 200,
           "tpc_version": "5.0", "method": "ptq", "input_ranges": None}
    specs = child._specs(job, model)
    source = data.open_source(job, specs, [sensor_spec(s) for s in specs])
    names = [layer.name for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    print("last 12 layers:", names[-12:], flush=True)
    variants = _quantized_variants(deployment_graph(model, specs), source, job, names)
    floats, true_cm, _ = source.predict_cm(
        {"float": lambda batch: model(ordered(batch, specs), training=False).numpy()}, specs)
    sensor = source.sensor_specs
    predictors = {label: (lambda batch, q=q: q(split_inputs(batch, sensor), training=False).numpy())
                  for label, q in variants.items()}
    for label, predicted in source.predict_cm(predictors, sensor)[0].items():
        from_float = np.mean(np.linalg.norm(predicted - floats["float"], axis=1))
        error = np.mean(np.linalg.norm(predicted - true_cm, axis=1))
        print(label, f"per frame from float: {from_float:.4f} cm | mean error: {error:.4f} cm", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
