"""TFLite files in one place: the interpreters (LiteRT by default, tflite-runtime as the
alternative, the Edge TPU through libedgetpu) and, below, reading the flatbuffer with the schema
that ships with LiteRT."""
import collections
import dataclasses
import functools
import os
import platform
import struct

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


EDGETPU_LIBRARY = {"Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(platform.system(),
                                                                                 "libedgetpu.so.1")


def make_edgetpu_interpreter(path, device=None, runtime="litert"):
    """An allocated interpreter running compiled ``path`` on the Edge TPU through libedgetpu.

    ``device``: "usb", "usb:0", "pci:0", ... (None: the first Edge TPU found). Raises UsageError
    when the runtime library or the device is absent."""
    import ctypes
    try:  # loading it here first spares the user the runtime's own half-built-delegate noise
        ctypes.CDLL(EDGETPU_LIBRARY)
    except OSError as error:
        raise UsageError(f"Edge TPU runtime not found ({error}); install libedgetpu1-std from Coral's "
                         f"apt repository (coral-edgetpu-stable)") from None
    try:
        delegate = load_delegate(EDGETPU_LIBRARY, {"device": device} if device else {}, runtime)
    except ValueError as error:
        raise UsageError(f"no Edge TPU found{f' at {device}' if device else ''} ({error}); plug in the "
                         f"Coral accelerator and check that lsusb or lspci lists it") from None
    return make_interpreter(path, runtime=runtime, delegates=[delegate])


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


def strip_internal_names(tflite_bytes):
    """Drops the names of internal tensors (the converter writes long fused-op names that cost
    ~2% of an int8 file); input/output names and the signature stay, so name-based feeding works."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite_bytes))
    for subgraph in model.subgraphs:
        kept = set(subgraph.inputs) | set(subgraph.outputs)
        for index, tensor in enumerate(subgraph.tensors):
            if index not in kept:
                tensor.name = b""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def with_metadata(tflite_bytes, name, payload):
    """``tflite_bytes`` with a metadata entry ``name`` (the flatbuffer's own named buffers, which
    every runtime ignores) holding ``payload``; an earlier entry of that name is replaced."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite_bytes))
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() != name]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name.encode(), len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def signature_names(path):
    """{tensor index: name} of the inputs and outputs of the file's first signature (the Keras
    names a zoo file keeps, as io_details names them), read without an interpreter; {} without one."""
    model, _ = _unpack_model(path)
    if not model.signatureDefs:
        return {}
    signature = model.signatureDefs[0]
    return {int(entry.tensorIndex): (entry.name or b"").decode("utf-8", "replace")
            for entry in (signature.inputs or []) + (signature.outputs or [])}


def read_metadata(path, name):
    """The bytes of metadata entry ``name`` of TFLite file ``path``, or None when it has none."""
    model, _ = _unpack_model(path)
    for entry in model.metadata or []:
        if (entry.name or b"").decode("utf-8", "replace") == name and entry.buffer < len(model.buffers):
            data = model.buffers[entry.buffer].data
            return b"" if data is None else bytes(bytearray(data))
    return None


# --- Reading the flatbuffer ------------------------------------------------------------------
# One reader for `zoo info` and the Edge TPU pre-flight. It unpacks the whole file with the
# schema's generated object API (ai_edge_litert/schema_py_generated.py, no TensorFlow), so a
# truncated or corrupt file fails here, once, as a UsageError, never later in a caller.


@functools.lru_cache(maxsize=None)
def _schema():
    from ai_edge_litert import schema_py_generated
    return schema_py_generated


def _enum_names(enum):
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One tensor of the main subgraph, as stored in the file."""
    index: int
    name: str
    shape: tuple            # the static shape
    shape_signature: tuple  # -1 where the size is only known at run time; () when not stored
    dtype: str              # "int8", "float32", ... (the schema's TensorType, lower case)
    scale: tuple            # () when not quantized; one entry per channel when per-channel
    zero_point: tuple
    buffer: object          # a constant's bytes (uint8 array); None for activations
    is_variable: bool       # state kept between invocations (e.g. an LSTM's cell state)

    @property
    def is_constant(self):
        return self.buffer is not None

    @property
    def quantized(self):
        return bool(self.scale)

    def values(self):
        """A constant's values as a typed array of its shape."""
        import numpy as np
        return self.buffer.view(np.dtype(self.dtype)).reshape(self.shape)


@dataclasses.dataclass(frozen=True)
class Operator:
    index: int
    name: str        # builtin name ("CONV_2D") or, for a custom operator, its custom code
    custom: bool
    version: int
    inputs: tuple    # tensor indices; -1 marks an omitted optional input
    outputs: tuple
    options: object  # the schema's options object (e.g. Conv2DOptionsT); None when absent


@dataclasses.dataclass(frozen=True)
class Graph:
    """The main subgraph of a TFLite file (what runs when the model is invoked) and file facts."""
    path: str
    file_bytes: int
    subgraph_count: int
    tensors: tuple
    operators: tuple
    inputs: tuple    # tensor indices
    outputs: tuple


# What a cut-short or corrupt flatbuffer raises while it is unpacked (offsets past the end,
# vectors running out of data, indices out of range).
_CORRUPT_FILE_ERRORS = (struct.error, IndexError, KeyError, ValueError, TypeError, AttributeError,
                        UnicodeDecodeError)


def read_graph(path):
    """The main subgraph of TFLite file ``path``; UsageError when it is missing, a directory, not
    a TFLite file, or truncated/corrupt."""
    model, data = _unpack_model(path)
    try:
        return _unpack_main_graph(model, data, os.fspath(path))
    except _CORRUPT_FILE_ERRORS:
        raise UsageError(f"{path} is truncated or corrupt ({len(data):,} bytes that do not unpack as a "
                         f"TFLite flatbuffer); export it again") from None


def _unpack_model(path):
    """(the schema's ModelT, the file's bytes); UsageError for anything but a readable TFLite file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory; give a .tflite file")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    with open(path, "rb") as file:
        data = file.read()
    schema = _schema()
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise UsageError(f"{path} is not a TFLite model (no TFL3 file identifier); give a .tflite file")
    try:
        return schema.ModelT.InitFromPackedBuf(data, 0), data
    except _CORRUPT_FILE_ERRORS + (RecursionError,):
        raise UsageError(f"{path} is truncated or corrupt ({len(data):,} bytes that do not unpack as a "
                         f"TFLite flatbuffer); export it again") from None


def _unpack_main_graph(model, data, path):
    if not model.subgraphs:
        raise ValueError("no subgraph")
    subgraph = model.subgraphs[0]
    buffers = model.buffers or []
    tensors = tuple(_unpack_tensor(index, tensor, buffers, data)
                    for index, tensor in enumerate(subgraph.tensors or []))
    operators = tuple(_unpack_operator(index, operator, model.operatorCodes or [])
                      for index, operator in enumerate(subgraph.operators or []))
    inputs, outputs = _indices(subgraph.inputs), _indices(subgraph.outputs)
    used = [i for op in operators for i in op.inputs + op.outputs if i >= 0] + list(inputs + outputs)
    if any(i >= len(tensors) for i in used):
        raise IndexError("tensor index out of range")
    return Graph(path=path, file_bytes=len(data), subgraph_count=len(model.subgraphs), tensors=tensors,
                 operators=operators, inputs=inputs, outputs=outputs)


def _indices(vector):
    return () if vector is None else tuple(int(i) for i in vector)


def _unpack_tensor(index, tensor, buffers, data):
    import numpy as np
    constant = None
    if tensor.buffer:  # buffer 0 is the schema's empty sentinel
        stored = buffers[tensor.buffer]
        if stored.offset > 1:  # data kept after the flatbuffer (files over 2 GB)
            if stored.offset + stored.size > len(data):
                raise ValueError("buffer data past the end of the file")
            constant = np.frombuffer(data, np.uint8, stored.size, stored.offset)
        elif stored.data is not None and len(stored.data):
            constant = np.asarray(stored.data, dtype=np.uint8)
    quantization = tensor.quantization
    scale = () if quantization is None or quantization.scale is None else quantization.scale
    zero_point = () if quantization is None or quantization.zeroPoint is None else quantization.zeroPoint
    return Tensor(index=index, name=(tensor.name or b"").decode("utf-8", "replace"),
                  shape=_indices(tensor.shape), shape_signature=_indices(tensor.shapeSignature),
                  dtype=_enum_names(_schema().TensorType)[tensor.type].lower(),
                  scale=tuple(float(s) for s in scale), zero_point=tuple(int(z) for z in zero_point),
                  buffer=constant, is_variable=bool(tensor.isVariable))


def _unpack_operator(index, operator, codes):
    code = codes[operator.opcodeIndex]
    # Codes past 127 live in builtinCode; older files only fill deprecatedBuiltinCode.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    custom = builtin == _schema().BuiltinOperator.CUSTOM
    name = (code.customCode or b"").decode("utf-8", "replace") if custom else \
        _enum_names(_schema().BuiltinOperator)[builtin]
    return Operator(index=index, name=name, custom=custom, version=int(code.version),
                    inputs=_indices(operator.inputs), outputs=_indices(operator.outputs),
                    options=operator.builtinOptions)


def describe(path):
    """What `zoo info FILE.tflite` shows: file size, inputs and outputs with their quantization,
    and the operator histogram of the main subgraph (custom operators under their custom code)."""
    graph = read_graph(path)
    return {
        "path": graph.path,
        "bytes": graph.file_bytes,
        "subgraphs": graph.subgraph_count,
        "inputs": [_io_record(graph.tensors[i]) for i in graph.inputs],
        "outputs": [_io_record(graph.tensors[i]) for i in graph.outputs],
        "ops": dict(collections.Counter(op.name for op in graph.operators)),
        "custom_ops": sorted({op.name for op in graph.operators if op.custom}),
    }


def _io_record(tensor):
    """Model inputs and outputs are quantized per tensor, so one scale and zero point each."""
    return {"name": tensor.name, "shape": list(tensor.shape_signature or tensor.shape),
            "dtype": tensor.dtype,
            "scale": tensor.scale[0] if tensor.quantized else None,
            "zero_point": (tensor.zero_point or (0,))[0] if tensor.quantized else None}
