"""A TFLite file (int8, uint8 or float) turned back into a float Keras functional model, because
Sony's IMX500 toolchain (MCT, then imxconv-tf) only starts from one. Each operator maps onto standard
Keras layers (a tf op on Keras tensors, a TFOpLambda, only where no layer fits), the weights
dequantized with their own scales and zero points. Layers are named after their operator
("op12_conv_2d"; "op12_conv_2d_linear" before a fused activation) so each traces to the file.
compilers.imx500.import_check says in output quantization steps how far an import is from LiteRT.

Never imports tensorflow_model_optimization (it turns tf.keras into tf_keras, which MCT cannot
read); TensorFlow only inside functions, so argument errors stay fast.
"""
import pathlib
import re

from zoo.errors import UsageError
from zoo.tflite import make_interpreter, read_graph, signature_names


_PADDING = {0: "same", 1: "valid"}  # the schema's Padding: SAME 0, VALID 1
# The schema's ActivationFunctionType (SIGN_BIT, 5, has no equivalent). A fused TANH is applied as
# the schema says, though LiteRT's int8 convolution ignores one (the converter never writes it).
_FUSED = {1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


class UnsupportedOperator(UsageError):
    """An operator (or operand) of the TFLite that the importer cannot express in Keras."""


class _Context:
    """What the builders share: the graph, each tensor's Keras tensor or float constant, the file's
    per-channel quantization axes, and the names of the model's inputs and outputs."""

    def __init__(self, graph, axes, names):
        self.graph, self.axes, self.names, self.values = graph, axes, names, {}

    def value(self, op, index):
        """Tensor ``index`` (read by ``op``): a Keras tensor, or a constant's (float) numpy array."""
        if index not in self.values:
            tensor = self.graph.tensors[index]
            if not tensor.is_constant:
                raise self.unsupported(op, f"reads tensor {index}, which no earlier operator makes")
            self.values[index] = _dequantize(tensor, self.axes.get(index, 0))
        return self.values[index]

    def live(self, op, position):
        value = self.value(op, op.inputs[position])
        if _is_constant(value):
            raise self.unsupported(op, f"takes a constant as input {position}, where it needs a tensor")
        return value

    def constant(self, op, position):
        value = self.value(op, op.inputs[position]) if op.inputs[position] >= 0 else None
        if value is not None and not _is_constant(value):
            raise self.unsupported(op, f"takes a non-constant weight or shape (input {position})")
        return value

    def shape(self, index):
        return self.graph.tensors[index].shape

    def unsupported(self, op, what):
        return UnsupportedOperator(f"{self.graph.path}: operator {op.index} ({op.name}) {what}")


def _is_constant(value):
    import numpy as np
    return isinstance(value, np.ndarray)


def _dequantize(tensor, axis):
    """A constant's float values: (q - zero_point) * scale, per channel along ``axis`` when the file
    stores one scale per channel; unquantized constants (shapes, axes) keep their own type."""
    import numpy as np
    values = tensor.values()
    if not tensor.quantized:
        return values.astype(np.float32) if values.dtype.kind == "f" else values
    shape = [1] * values.ndim
    if len(tensor.scale) > 1:
        shape[axis] = -1
    scale = np.reshape(np.asarray(tensor.scale, np.float32), shape)
    zero_point = np.reshape(np.asarray(tensor.zero_point or [0] * len(tensor.scale), np.float32), shape)
    return np.asarray((values.astype(np.float32) - zero_point) * scale, np.float32)  # 0-d stays an array


def _layers():
    import tensorflow as tf
    return tf.keras.layers


def _with_weights(layer, x, kernel, bias):
    """``layer(x)`` with the layer's kernel and bias (None: none) set (the call builds the layer)."""
    y = layer(x)
    layer.set_weights([kernel] + ([] if bias is None else [bias]))
    return y


def _conv_2d(ctx, op, name):
    x, kernel, bias, o = ctx.live(op, 0), ctx.constant(op, 1), ctx.constant(op, 2), op.options
    filters, height, width, depth = kernel.shape  # TFLite's OHWI; Keras wants HWIO
    layer = _layers().Conv2D(filters, (height, width), strides=(o.strideH, o.strideW),
                             padding=_PADDING[o.padding], groups=x.shape[-1] // depth,
                             dilation_rate=(o.dilationHFactor, o.dilationWFactor),
                             use_bias=bias is not None, name=name)
    return _with_weights(layer, x, kernel.transpose(1, 2, 3, 0), bias)


def _depthwise_conv_2d(ctx, op, name):
    x, kernel, bias, o = ctx.live(op, 0), ctx.constant(op, 1), ctx.constant(op, 2), op.options
    _, height, width, channels = kernel.shape  # 1HW(C*M), channel c*M+m as in Keras
    depth = x.shape[-1]
    multiplier = channels // depth  # the stored depthMultiplier is unreliable in newer files
    layer = _layers().DepthwiseConv2D((height, width), strides=(o.strideH, o.strideW),
                                      padding=_PADDING[o.padding], depth_multiplier=multiplier,
                                      dilation_rate=(o.dilationHFactor, o.dilationWFactor),
                                      use_bias=bias is not None, name=name)
    return _with_weights(layer, x, kernel.reshape(height, width, depth, multiplier), bias)


def _fully_connected(ctx, op, name):
    """Dense on the last axis. TFLite folds all leading axes into rows unless keep_num_dims; with
    a rank > 2 input whose last axis is not the weights' depth, the input is first reshaped into
    rows of that depth (what TFLite does), and the result into the TFLite's output shape."""
    import numpy as np
    layers = _layers()
    x, weights, bias = ctx.live(op, 0), ctx.constant(op, 1), ctx.constant(op, 2)
    units, depth = weights.shape
    in_shape, out_shape = ctx.shape(op.inputs[0]), ctx.shape(op.outputs[0])
    if in_shape[0] != out_shape[0]:
        raise ctx.unsupported(op, "folds the batch axis into its rows, which a Keras model cannot")
    if x.shape[-1] != depth:
        rows = int(np.prod(in_shape[1:])) // depth
        x = layers.Reshape((depth,) if rows == 1 else (rows, depth))(x)
    reshape = tuple(x.shape[1:-1]) + (units,) != tuple(out_shape[1:])
    dense = layers.Dense(units, use_bias=bias is not None, name=f"{name}_dense" if reshape else name)
    y = _with_weights(dense, x, weights.T, bias)
    return layers.Reshape(out_shape[1:], name=name)(y) if reshape else y


def _binary(layer_name, function_name):
    """ADD, SUB, MUL: the Keras merge layer (it broadcasts size-1 axes) for two tensors; the tf op
    with a constant operand (``x + c``), which MCT and imxconv-tf take as a constant input."""
    def build(ctx, op, name):
        import tensorflow as tf
        a, b = (ctx.value(op, i) for i in op.inputs)
        if _is_constant(a) and _is_constant(b):
            raise ctx.unsupported(op, "has only constant inputs")
        if not _is_constant(a) and not _is_constant(b):
            return getattr(tf.keras.layers, layer_name)(name=name)([a, b])
        return getattr(tf.math, function_name)(a, b)
    return build


def _pad(ctx, op, name):
    import tensorflow as tf
    x, pads = ctx.live(op, 0), ctx.constant(op, 1).astype(int).tolist()
    if pads[0] != [0, 0]:
        raise ctx.unsupported(op, "pads the batch axis")
    if len(pads) == 4 and pads[3] == [0, 0]:
        return _layers().ZeroPadding2D((tuple(pads[1]), tuple(pads[2])), name=name)(x)
    return tf.pad(x, pads)


def _reshape(ctx, op, name):
    """To the TFLite's own output shape (the shape operand may hold -1s), the batch axis kept."""
    in_shape, out_shape = ctx.shape(op.inputs[0]), ctx.shape(op.outputs[0])
    if out_shape[:1] != in_shape[:1]:
        raise ctx.unsupported(op, "changes the batch axis")
    return _layers().Reshape(out_shape[1:], name=name)(ctx.live(op, 0))


def _concatenation(ctx, op, name):
    """Concatenate for tensors only. With constant inputs (a baked image-sized tensor, say) each
    tensor is zero-padded to the full size along the axis and the constants are added in place:
    the same values, and the pad + add that imxconv-tf maps onto the chip as a constant input
    (a constant of batch 1 cannot be concatenated to a batch of frames in Keras)."""
    import numpy as np
    import tensorflow as tf
    parts = [ctx.value(op, i) for i in op.inputs]
    rank = len(ctx.shape(op.outputs[0]))
    axis = op.options.axis % rank
    if axis == 0:
        raise ctx.unsupported(op, "concatenates along the batch axis")
    if all(_is_constant(p) for p in parts):
        raise ctx.unsupported(op, "has only constant inputs")
    if not any(_is_constant(p) for p in parts):
        return _layers().Concatenate(axis=axis, name=name)(parts)
    sizes = [ctx.shape(i)[axis] for i in op.inputs]
    offsets, total = np.cumsum([0] + sizes), sum(sizes)
    padded = []
    for part, offset, size in zip(parts, offsets, sizes):
        if not _is_constant(part):
            pads = [[0, 0]] * rank
            pads[axis] = [int(offset), int(total - offset - size)]
            padded.append(tf.pad(part, pads))
    joined = padded[0] if len(padded) == 1 else _layers().Add()(padded)
    constant = np.concatenate([p.astype(np.float32) if _is_constant(p) else np.zeros(ctx.shape(i), np.float32)
                               for p, i in zip(parts, op.inputs)], axis=axis)
    return tf.math.add(joined, constant)


def _mean(ctx, op, name):
    import numpy as np
    import tensorflow as tf
    x = ctx.live(op, 0)
    rank, keep = len(ctx.shape(op.inputs[0])), bool(op.options.keepDims)
    axes = sorted({int(a) % rank for a in np.ravel(ctx.constant(op, 1))})
    if 0 in axes:
        raise ctx.unsupported(op, "averages over the batch axis")
    if rank == 4 and axes == [1, 2]:
        return _layers().GlobalAveragePooling2D(keepdims=keep, name=name)(x)
    return tf.math.reduce_mean(x, axis=axes, keepdims=keep)


def _pool(layer_name):
    def build(ctx, op, name):
        o = op.options
        layer = getattr(_layers(), layer_name)((o.filterHeight, o.filterWidth),
                                               strides=(o.strideH, o.strideW), padding=_PADDING[o.padding],
                                               name=name)
        return layer(ctx.live(op, 0))
    return build


def _softmax(ctx, op, name):
    x = ctx.live(op, 0)
    if op.options.beta != 1:
        x = x * op.options.beta
    return _layers().Softmax(name=name)(x)


def _resize(method):
    """Keras's Resizing is TF2's tf.image.resize: half_pixel_centers, no align_corners. The TF1
    modes (align_corners, or neither flag) have no Keras layer; the TF1 op on the Keras tensor keeps
    them exact (tf.compat.v1.image.resize, which imxconv-tf does not take)."""
    def build(ctx, op, name):
        import tensorflow as tf
        x, o = ctx.live(op, 0), op.options
        height, width = (int(v) for v in ctx.constant(op, 1))
        if o.alignCorners or not o.halfPixelCenters:
            return tf.compat.v1.image.resize(x, (height, width), method=method, align_corners=o.alignCorners)
        return _layers().Resizing(height, width, interpolation=method, name=name)(x)
    return build


def _activate(x, kind, name):
    """Activation ``kind`` (an operator name) on ``x``, its last layer called ``name`` (RELU_N1_TO_1
    ends in a tf op, which takes no layer name)."""
    layers = _layers()
    if kind == "HARD_SWISH":  # x * relu6(x + 3) / 6, as keras.applications' MobileNetV3 builds it
        return layers.Multiply(name=name)([x, layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)])
    if kind == "RELU_N1_TO_1":  # clip to [-1, 1] from ops imxconv-tf takes (it has no clip)
        return layers.ReLU(2.0)(x + 1.0) - 1.0
    return {"RELU": lambda: layers.ReLU(name=name), "RELU6": lambda: layers.ReLU(6.0, name=name),
            "TANH": lambda: layers.Activation("tanh", name=name),
            "LOGISTIC": lambda: layers.Activation("sigmoid", name=name)}[kind]()(x)


def _activation(ctx, op, name):
    return _activate(ctx.live(op, 0), op.name, name)


def _identity(ctx, op, name):
    """QUANTIZE and DEQUANTIZE: the float model carries real values throughout."""
    return ctx.value(op, op.inputs[0])


_BUILDERS = {
    "CONV_2D": _conv_2d, "DEPTHWISE_CONV_2D": _depthwise_conv_2d, "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary("Add", "add"), "SUB": _binary("Subtract", "subtract"),
    "MUL": _binary("Multiply", "multiply"), "PAD": _pad, "RESHAPE": _reshape,
    "CONCATENATION": _concatenation, "MEAN": _mean, "AVERAGE_POOL_2D": _pool("AveragePooling2D"),
    "MAX_POOL_2D": _pool("MaxPooling2D"), "SOFTMAX": _softmax,
    "RESIZE_BILINEAR": _resize("bilinear"), "RESIZE_NEAREST_NEIGHBOR": _resize("nearest"),
    "RELU": _activation, "RELU6": _activation, "RELU_N1_TO_1": _activation, "TANH": _activation,
    "LOGISTIC": _activation, "HARD_SWISH": _activation, "QUANTIZE": _identity, "DEQUANTIZE": _identity,
}


def check_supported(graph):
    """UnsupportedOperator for the first operator of ``graph`` (zoo.tflite.read_graph) that has no
    builder; no TensorFlow needed, so a caller can refuse a file before any heavy work. Operators
    that run other subgraphs (WHILE, IF, CALL_ONCE) have none: a file whose other subgraphs matter
    is refused here too."""
    for op in graph.operators:
        if op.custom or op.name not in _BUILDERS:
            kind = f"{op.name}, a custom operator" if op.custom else op.name
            raise UnsupportedOperator(f"{graph.path}: operator {op.index} ({kind}) has no Keras equivalent "
                                      f"in the importer, so this model cannot go to the IMX500 (the "
                                      f"{len(_BUILDERS)} it takes: `python -m compilers.imx500.importer`)")


def _keras_name(name):
    """A valid Keras layer name: TFLite tensor names carry '/', ':' and ';'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("_.-")
    return name or "tensor"


def _file_facts(path, graph):
    """({tensor index: quantized axis} from LiteRT, {tensor index: input or output name}): the
    names are the signature's when the file has one (zoo files call their input "face"), else the
    tensor names, as zoo.tflite.io_details gives them to run_tflite."""
    interpreter = make_interpreter(path)
    axes = {d["index"]: d["quantization_parameters"]["quantized_dimension"]
            for d in interpreter.get_tensor_details()}
    return axes, _io_names(graph, signature_names(path), graph.inputs + graph.outputs)


def _io_names(graph, signature, indices):
    return {index: _keras_name(signature.get(index) or graph.tensors[index].name) for index in indices}


def _apply(ctx, op):
    """One operator: its builder, then its fused activation as a layer of its own (which MCT
    pairs with the layer before it as it would in a Keras-built model)."""
    code = getattr(op.options, "fusedActivationFunction", 0)
    if code and code not in _FUSED:
        raise ctx.unsupported(op, f"has fused activation {code} (SIGN_BIT), which Keras has no layer for")
    name = ctx.names.get(op.outputs[0]) or f"op{op.index}_{op.name.lower()}"
    value = _BUILDERS[op.name](ctx, op, f"{name}_linear" if code else name)
    ctx.values[op.outputs[0]] = _activate(value, _FUSED[code], name) if code else value


def _named_output(ctx, index):
    """The Keras tensor of graph output ``index``, its layer carrying the output's name (an
    identity layer is added where the tensor's own layer is named otherwise)."""
    value, name = ctx.values.get(index), ctx.names[index]
    if value is None or _is_constant(value):
        raise UnsupportedOperator(f"{ctx.graph.path}: output {name} is not computed from the inputs")
    if value.node.layer.name != name:
        value = _layers().Activation("linear", name=name)(value)
    return value


def tflite_to_keras(path):
    """The float Keras functional model that computes what TFLite file ``path`` computes: inputs and
    outputs keep the file's names and shapes (the batch axis left free); UnsupportedOperator
    (a UsageError) names the first operator that has no Keras equivalent."""
    graph = read_graph(path)
    check_supported(graph)
    import tensorflow as tf
    axes, names = _file_facts(path, graph)
    ctx = _Context(graph, axes, names)
    inputs = []
    for index in graph.inputs:
        tensor = graph.tensors[index]
        shape = [None if size < 0 else size for size in (tensor.shape_signature or tensor.shape)[1:]]
        inputs.append(tf.keras.Input(shape, name=names[index]))
        ctx.values[index] = inputs[-1]
    for op in graph.operators:
        _apply(ctx, op)
    outputs = [_named_output(ctx, index) for index in graph.outputs]
    return tf.keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs,
                          name=_keras_name(pathlib.Path(path).stem))


def input_names(path):
    """{tensor index: Keras input name} of the model tflite_to_keras makes from ``path``; no
    interpreter, so a caller can check its arguments quietly and fast."""
    graph = read_graph(path)
    return _io_names(graph, signature_names(path), graph.inputs)
