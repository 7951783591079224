"""What a TFLite graph costs, read off its tensor shapes: the multiply-accumulates of every
operator that has them and the elements every operator writes. Target-neutral, so that every
target's performance section counts the same way (zoo.models.facts counts a Keras model; this counts any
TFLite file, including one no one here built)."""
import math
import typing

from zoo import tflite

# Operators with a weight tensor as input 1; what one output element costs in MACs is read off
# that tensor's shape (TFLite layouts: CONV_2D [out, kh, kw, in/groups], DEPTHWISE_CONV_2D
# [1, kh, kw, out], FULLY_CONNECTED [units, in]).
_MACS_PER_OUTPUT = {
    "CONV_2D": lambda weights: weights[1] * weights[2] * weights[3],
    "DEPTHWISE_CONV_2D": lambda weights: weights[1] * weights[2],
    "FULLY_CONNECTED": lambda weights: weights[-1],
    "CONV_3D": lambda weights: weights[0] * weights[1] * weights[2] * weights[3],
}


def _elements(tensor: tflite.Tensor) -> int:
    return math.prod(max(size, 1) for size in tensor.shape)


def operator_macs(graph: tflite.Graph, op: tflite.Operator) -> int:
    """Multiply-accumulates of one invocation of ``op`` (0 for operators without weights)."""
    tensors = graph.tensors
    if op.name in _MACS_PER_OUTPUT and len(op.inputs) > 1 and op.inputs[1] >= 0:
        return _elements(tensors[op.outputs[0]]) * _MACS_PER_OUTPUT[op.name](tensors[op.inputs[1]].shape)
    if op.name == "TRANSPOSE_CONV" and len(op.inputs) > 2:  # inputs: output shape, weights, input
        out_channels, kernel_h, kernel_w, _ = tensors[op.inputs[1]].shape
        return _elements(tensors[op.inputs[2]]) * kernel_h * kernel_w * out_channels
    return 0


def graph_macs(graph: tflite.Graph,
               operators: typing.Optional[typing.Iterable[tflite.Operator]] = None) -> int:
    """Multiply-accumulates of ``operators`` (default: every operator of the graph)."""
    return sum(operator_macs(graph, op) for op in (graph.operators if operators is None else operators))


def output_elements(graph: tflite.Graph, operators: typing.Iterable[tflite.Operator]) -> int:
    """Elements ``operators`` write (the work of operators without weights: resize, argmax, ...)."""
    return sum(_elements(graph.tensors[index]) for op in operators for index in op.outputs if index >= 0)
