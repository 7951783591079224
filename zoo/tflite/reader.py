"""Reading a TFLite flatbuffer without TensorFlow or an interpreter: the main graph's tensors and
operators, the signature's names and the metadata entries, with the schema that ships with LiteRT."""
import collections
import dataclasses
import functools
import os
import struct

from zoo.errors import UsageError


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
