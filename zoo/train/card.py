"""The model card of a `zoo build` (zoo.artifacts.ModelCard): made from the build's model, data
and TFLite file, and embedded in every TFLite file of the build as metadata, so that a file
describes itself with no file beside it."""
import dataclasses

import numpy as np

from zoo import artifacts
from zoo.models import registry
from zoo.data import render_settings


def model_card(name, builder_args, mode, seed, index, specs, tflite_path, model):
    """The card every TFLite of a build carries (inputs as the deployable file ``tflite_path`` takes
    them); ``index``: the data the model was trained on."""
    from zoo.models.facts import model_facts
    output = model_facts(model)["outputs"][0]
    return artifacts.ModelCard(
        model=name, builder_args=_jsonable(builder_args), mode=mode, seed=seed,
        inputs=_input_records(specs, tflite_path),
        output=artifacts.OutputRecord(name=output["name"], shape=list(output["shape"]),
                                      scale_cm=registry.GAZE_SCALE_CM,
                                      meaning="(XCam, YCam) / scale_cm, tanh range; cm = value * scale_cm"),
        data=artifacts.DataRecord(root=str(index.root), fingerprint=index.fingerprint(),
                                  rendered=render_settings(index.root),
                                  valid_frames=index.split_counts()))


def _jsonable(arguments):
    return {key: value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
            for key, value in arguments.items()}


def embed_card(path, specs, card):
    """Writes ``card`` into TFLite ``path`` as metadata, with that file's own input quantization."""
    from zoo.tflite import with_metadata
    own = dataclasses.replace(card, inputs=_input_records(specs, path))
    payload = artifacts.card_bytes(own)
    path.write_bytes(with_metadata(path.read_bytes(), artifacts.MODEL_CARD_METADATA, payload))


def _input_records(specs, tflite_path):
    """The model card's inputs: names, shapes, recipe, value range and layout of each input, with
    the dtype and quantization of the TFLite file itself."""
    from zoo.tflite import io_details, make_interpreter
    tflite_inputs, _ = io_details(make_interpreter(tflite_path))
    records = []
    for spec in specs:
        details = tflite_inputs[spec.name]
        scale, zero_point = details["quantization"]
        quantized = np.dtype(details["dtype"]) != np.float32
        records.append(artifacts.InputRecord(
            name=spec.name, shape=list(spec.shape), recipe=spec.recipe,
            value_range=list(registry.RECIPES[spec.recipe]), layout="HWC" if len(spec.shape) == 3 else "flat",
            dtype=np.dtype(details["dtype"]).name, scale=float(scale) if quantized else None,
            zero_point=int(zero_point) if quantized else None))
    return records
