"""Element-wise operators: arithmetic between tensors or with a constant, activations, softmax,
casts. Each is written with layers and tf ops that MCT and imxconv-tf take (a maximum with a
constant is a ReLU, a squared difference a product of differences), in float."""
from compilers.imx500.ops.common import is_constant, layers


def _operands(ctx, op):
    """The two operands; a scalar constant as a 1-element vector (MCT searches a constant's
    quantization per channel, and a 0-d array has no channel: "argmin of an empty sequence")."""
    import numpy as np
    a, b = (ctx.value(op, i) for i in op.inputs)
    if is_constant(a) and is_constant(b):
        raise ctx.unsupported(op, "has only constant inputs")
    return tuple(np.atleast_1d(v) if is_constant(v) else v for v in (a, b))


def binary(layer_name, function_name):
    """ADD, SUB, MUL: the Keras merge layer (it broadcasts size-1 axes) for two tensors; the tf op
    with a constant operand (``x + c``), which MCT and imxconv-tf take as a constant input."""
    def build(ctx, op, name):
        import tensorflow as tf
        a, b = _operands(ctx, op)
        if not is_constant(a) and not is_constant(b):
            return getattr(tf.keras.layers, layer_name)(name=name)([a, b])
        return getattr(tf.math, function_name)(a, b)
    return build


def div(ctx, op, name):
    import tensorflow as tf
    a, b = _operands(ctx, op)
    return tf.math.truediv(a, b)


def extreme(kind):
    """MAXIMUM, MINIMUM: the Keras layer for two tensors; with a constant c, max(x, c) is
    relu(x - c) + c and min(x, c) is x - relu(x - c) (imxconv-tf has no tf.maximum)."""
    def build(ctx, op, name):
        a, b = _operands(ctx, op)
        if not is_constant(a) and not is_constant(b):
            return getattr(layers(), kind)(name=name)([a, b])
        x, c = (b, a) if is_constant(a) else (a, b)
        if kind == "Maximum":
            return layers().ReLU()(x - c) + c
        return layers().Subtract(name=name)([x, layers().ReLU()(x - c)])
    return build


def squared_difference(ctx, op, name):
    a, b = _operands(ctx, op)
    difference = layers().Subtract()([a, b]) if not (is_constant(a) or is_constant(b)) else a - b
    return layers().Multiply(name=name)([difference, difference])


def rsqrt(ctx, op, name):
    import tensorflow as tf
    return tf.math.rsqrt(ctx.live(op, 0))


def activate(x, kind, name):
    """Activation ``kind`` (an operator name) on ``x``, its last layer called ``name`` (RELU_N1_TO_1
    ends in a tf op, which takes no layer name)."""
    keras = layers()
    if kind == "HARD_SWISH":  # x * relu6(x + 3) / 6, as keras.applications' MobileNetV3 builds it
        return keras.Multiply(name=name)([x, keras.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)])
    if kind == "RELU_N1_TO_1":  # clip to [-1, 1] from ops imxconv-tf takes (it has no clip)
        return keras.ReLU(2.0)(x + 1.0) - 1.0
    return {"RELU": lambda: keras.ReLU(name=name), "RELU6": lambda: keras.ReLU(6.0, name=name),
            "TANH": lambda: keras.Activation("tanh", name=name),
            "LOGISTIC": lambda: keras.Activation("sigmoid", name=name)}[kind]()(x)


def activation(ctx, op, name):
    return activate(ctx.live(op, 0), op.name, name)


def softmax(ctx, op, name):
    x = ctx.live(op, 0)
    if op.options.beta != 1:
        x = x * op.options.beta
    return layers().Softmax(name=name)(x)


def identity(ctx, op, name):
    """QUANTIZE and DEQUANTIZE: the float model carries real values throughout."""
    return ctx.value(op, op.inputs[0])


def cast(ctx, op, name):
    """To a float type: the integer's value (a quantized integer's stored value, as LiteRT's CAST
    ignores the scale), so an image input cast to float passes through. To an integer type:
    truncation toward zero, as LiteRT casts."""
    import tensorflow as tf
    source, target = (ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]])
    x = ctx.live(op, 0)
    if source.quantized:
        x = x * (1.0 / source.scale[0]) + float((source.zero_point or (0,))[0])
    if target.dtype.startswith("float"):
        return x
    return tf.cast(x, target.dtype)


BUILDERS = {
    "ADD": binary("Add", "add"), "SUB": binary("Subtract", "subtract"), "MUL": binary("Multiply", "multiply"),
    "DIV": div, "MAXIMUM": extreme("Maximum"), "MINIMUM": extreme("Minimum"),
    "SQUARED_DIFFERENCE": squared_difference, "RSQRT": rsqrt, "SOFTMAX": softmax, "CAST": cast,
    "RELU": activation, "RELU6": activation, "RELU_N1_TO_1": activation, "TANH": activation,
    "LOGISTIC": activation, "HARD_SWISH": activation, "QUANTIZE": identity, "DEQUANTIZE": identity,
}
