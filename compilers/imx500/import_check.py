"""How far a model imported by compilers.imx500.importer is from the TFLite file it came from, in the
file's own output quantization steps: the check the IMX500 adapter runs before it trusts an import."""
from zoo.errors import UsageError
from zoo.tflite import io_details, make_interpreter, read_graph, run_tflite

# Above this many output steps from the TFLite the IMX500 adapter refuses an import. Each operator
# is exact to the TFLite's own rounding (half a step), which accumulates: up to 7.7 steps on a trained
# TinyTracker (512 frames of its data), 14 on mobilenet_v1_0.25_128's softmax (noise), 1.5 on the
# tests' models; a 5% bias error in one mobilenet layer gives 25, a flipped kernel 119. Inputs far
# outside the calibrated ranges saturate int8 tensors (the float import does not): use real data.
MAX_IMPORT_STEPS = 16
MIN_CHECK_FRAMES = 32


def _quantization(graph, index, neighbour):
    """(scale, zero point, integer range) that the TFLite computes tensor ``index`` at: its own, or
    for a float tensor that of the tensor across the ``neighbour`` operator (the QUANTIZE a float
    input goes into, the DEQUANTIZE a float output comes from); None when float throughout."""
    import numpy as np
    tensor = graph.tensors[index]
    for op in graph.operators:
        ends = (op.inputs, op.outputs) if neighbour == "QUANTIZE" else (op.outputs, op.inputs)
        if not tensor.quantized and op.name == neighbour and index in ends[0]:
            tensor = graph.tensors[ends[1][0]]
    if not tensor.quantized:
        return None
    return tensor.scale[0], (tensor.zero_point or (0,))[0], np.iinfo(tensor.dtype)


def _fake_quantize(value, quantization):
    """``value`` as the TFLite sees it: quantized with ``quantization`` and back."""
    import numpy as np
    scale, zero_point, info = quantization
    return ((np.clip(np.round(value / scale) + zero_point, info.min, info.max) - zero_point) * scale
            ).astype(np.float32)


def _check_inputs(path, graph, input_details, inputs):
    """{input tensor index: the float batch the TFLite really computes on} (quantized and back)."""
    import numpy as np
    if not isinstance(inputs, dict):
        if len(input_details) != 1:
            raise UsageError(f"{path} has {len(input_details)} inputs; give a dict of arrays by input name "
                             f"({', '.join(input_details)})")
        inputs = {next(iter(input_details)): inputs}
    missing = sorted(set(input_details) - set(inputs))
    if missing:
        raise UsageError(f"{path}: no values for input(s) {', '.join(missing)}")
    batch = {}
    for name, details in input_details.items():
        value = np.asarray(inputs[name], np.float32)
        quantization = _quantization(graph, details["index"], "QUANTIZE")
        batch[details["index"]] = _fake_quantize(value, quantization) if quantization else value
    frames = {len(value) for value in batch.values()}
    if len(frames) != 1 or min(frames) < MIN_CHECK_FRAMES:
        raise UsageError(f"{path}: import_check needs one batch of at least {MIN_CHECK_FRAMES} frames per "
                         f"input, got {sorted(frames)}")
    return batch


def import_check(keras_model, tflite_path, inputs):
    """How far ``keras_model`` (from tflite_to_keras: its inputs in the file's order) is from the
    TFLite on the same inputs.

    ``inputs``: a batch of at least MIN_CHECK_FRAMES float frames (a dict by input name for several
    inputs). Both models see the values the TFLite computes on (each input quantized and back), so
    the difference is the importer's alone. For a quantized output (or a float one made by a final
    DEQUANTIZE) the difference is in output steps, the Keras output clipped to the range the integer
    output can hold; for a genuinely float output it is relative to the largest |TFLite output|.
    """
    import numpy as np
    graph = read_graph(tflite_path)
    interpreter = make_interpreter(tflite_path)
    input_details, output_details = io_details(interpreter)
    if len(output_details) != 1:
        raise UsageError(f"{tflite_path} has {len(output_details)} outputs; import_check compares one")
    batch = _check_inputs(tflite_path, graph, input_details, inputs)
    names = {details["index"]: name for name, details in input_details.items()}
    frames = len(next(iter(batch.values())))
    expected = np.concatenate([run_tflite(interpreter, {names[i]: v[f:f + 1] for i, v in batch.items()})
                               for f in range(frames)])  # one frame at a time: files fix batch 1
    feed = [batch[index] for index in graph.inputs]
    got = np.asarray(keras_model(feed[0] if len(feed) == 1 else feed, training=False), np.float32)
    (output_name,) = output_details
    report = {"frames": frames, "output": output_name}
    quantization = _quantization(graph, graph.outputs[0], "DEQUANTIZE")
    if quantization is None:
        error = np.abs(got - expected) / max(float(np.max(np.abs(expected))), 1e-12)
        return {**report, "max_rel_error": float(error.max()), "mean_rel_error": float(error.mean())}
    scale, zero_point, info = quantization
    got = np.clip(got, (info.min - zero_point) * scale, (info.max - zero_point) * scale)
    steps = np.abs(got - expected) / scale
    return {**report, "max_abs_steps": float(steps.max()), "mean_abs_steps": float(steps.mean()),
            "output_step": float(scale)}
