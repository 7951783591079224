"""What every operator builder shares: the graph context, constants dequantized as stored, and
the rule that a builder works on Keras tensors (the model MCT gets) and on eager tensors alike
(the exact check runs each operator on LiteRT's own intermediate tensors), so a layer's weights
are set before it is called."""
from zoo.errors import UsageError

PADDING = {0: "same", 1: "valid"}  # the schema's Padding: SAME 0, VALID 1


class UnsupportedOperator(UsageError):
    """An operator (or operand) of the TFLite that the importer cannot express in Keras."""


class Context:
    """What the builders share: the graph, each tensor's value (a Keras or eager tensor, or a
    constant's float numpy array), the file's per-channel quantization axes, and the names of the
    model's inputs and outputs (layers that make an output carry its name)."""

    def __init__(self, graph, axes, names):
        self.graph, self.axes, self.names, self.values = graph, axes, names, {}

    def value(self, op, index):
        """Tensor ``index`` (read by ``op``): a tensor, or a constant's numpy array."""
        if index not in self.values:
            tensor = self.graph.tensors[index]
            if not tensor.is_constant:
                raise self.unsupported(op, f"reads tensor {index}, which no earlier operator makes")
            self.values[index] = dequantize(tensor, self.axes.get(index, 0))
        return self.values[index]

    def live(self, op, position):
        value = self.value(op, op.inputs[position])
        if is_constant(value):
            raise self.unsupported(op, f"takes a constant as input {position}, where it needs a tensor")
        return value

    def constant(self, op, position):
        value = self.value(op, op.inputs[position]) if op.inputs[position] >= 0 else None
        if value is not None and not is_constant(value):
            raise self.unsupported(op, f"takes a non-constant weight, shape or axis (input {position})")
        return value

    def ints(self, op, position):
        """A constant operand (axes, sizes, a permutation) as a list of Python ints."""
        import numpy as np
        return [int(v) for v in np.ravel(self.constant(op, position))]

    def shape(self, index):
        return self.graph.tensors[index].shape

    def axis(self, op, axis, rank):
        """``axis`` of a rank-``rank`` tensor made non-negative; the batch axis is refused."""
        axis = int(axis) % rank
        if axis == 0:
            raise self.unsupported(op, "works along the batch axis, which a Keras model leaves free")
        return axis

    def unsupported(self, op, what):
        return UnsupportedOperator(f"{self.graph.path}: operator {op.index} ({op.name}) {what}")


def is_constant(value):
    import numpy as np
    return isinstance(value, np.ndarray)


def dequantize(tensor, axis):
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


def layers():
    import tensorflow as tf
    return tf.keras.layers


def with_weights(layer, x, kernel, bias):
    """``layer(x)`` with the layer's kernel and bias (None: none) set before the call, so an eager
    call computes with them too."""
    layer.build(x.shape)
    layer.set_weights([kernel] + ([] if bias is None else [bias]))
    return layer(x)
