"""Running a TFLite file: the interpreters (LiteRT by default, tflite-runtime as the
alternative), their delegates, and feeding and reading tensors by name."""
import os

from zoo.errors import UsageError

RUNTIMES = ("litert", "tflite_runtime")


class NoKernel(UsageError, RuntimeError):
    """The runtime has no kernel for an operator of the model (a custom operator, or a newer
    version of a builtin one): bad input for a command (exit 2), a row that failed for a benchmark."""


def _interpreter_module(runtime):
    if runtime == "litert":
        from ai_edge_litert import interpreter
        return interpreter
    if runtime == "tflite_runtime":
        from tflite_runtime import interpreter
        return interpreter
    raise UsageError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


def make_interpreter(path, runtime="litert", num_threads=1, delegates=None):
    """An allocated interpreter for ``path``; ``delegates`` are library paths/objects for load_delegate."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such TFLite file")
    module = _interpreter_module(runtime)
    try:
        interpreter = module.Interpreter(model_path=str(path), num_threads=num_threads,
                                         experimental_delegates=delegates)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        detail = " ".join(str(error).split())
        if "custom op" not in detail and "find op for builtin" not in detail:
            raise
        raise NoKernel(f"{path}: the {runtime} runtime has no kernel for one of its operators "
                       f"({detail[:160]}); convert the model with TFLite builtin operators only (as zoo "
                       "build does), or register that operator's kernel in the runtime") from None
    return interpreter


def load_delegate(library, options=None, runtime="litert"):
    """The runtime's own load_delegate, so a delegate and its interpreter come from one runtime."""
    return _interpreter_module(runtime).load_delegate(library, options or {})


def io_details(interpreter):
    """({input name: details}, {output name: details}), named by the signature when the file has one
    (the Keras input names), else by tensor name."""
    if interpreter.get_signature_list():
        runner = interpreter.get_signature_runner()
        return runner.get_input_details(), runner.get_output_details()
    return ({d["name"]: d for d in interpreter.get_input_details()},
            {d["name"]: d for d in interpreter.get_output_details()})


def run_tflite(interpreter, inputs):
    """Runs one batch; float in, float out.

    ``inputs`` maps input names to float arrays; int8 inputs are quantized with the tensor's own
    scale and zero point, an int8 output is dequantized the same way. A single-input model takes
    its one array whatever its name.
    """
    import numpy as np

    input_details, output_details = io_details(interpreter)
    if len(input_details) == 1 and len(inputs) == 1:
        inputs = {next(iter(input_details)): next(iter(inputs.values()))}
    feeds = {}
    for name, details in input_details.items():
        value = np.asarray(inputs[name], dtype=np.float32)
        scale, zero_point = details["quantization"]
        if details["dtype"] != np.float32:
            info = np.iinfo(details["dtype"])
            value = np.clip(np.round(value / scale) + zero_point, info.min, info.max)
        feeds[details["index"]] = value.astype(details["dtype"])
    current = {d["index"]: tuple(d["shape"]) for d in interpreter.get_input_details()}
    if any(current[index] != value.shape for index, value in feeds.items()):
        for index, value in feeds.items():
            interpreter.resize_tensor_input(index, value.shape)
        interpreter.allocate_tensors()
    for index, value in feeds.items():
        interpreter.set_tensor(index, value)
    interpreter.invoke()
    (details,) = output_details.values()
    output = interpreter.get_tensor(details["index"])
    scale, zero_point = details["quantization"]
    if output.dtype != np.float32:
        output = (output.astype(np.float32) - zero_point) * scale
    return output
