"""A TFLite file (int8, uint8 or float) turned back into a float Keras functional model, because
Sony's IMX500 toolchain (MCT, then imxconv-tf) only starts from one. Each operator maps onto standard
Keras layers (a tf op on Keras tensors, a TFOpLambda, only where no layer fits), the weights
dequantized with their own scales and zero points (compilers.imx500.ops, by operator family).
Layers are named after their operator ("op12_conv_2d"; "op12_conv_2d_linear" before a fused
activation) so each traces to the file. compilers.imx500.exact_check runs the same builders,
operator by operator, against LiteRT.

Never imports tensorflow_model_optimization (it turns tf.keras into tf_keras, which MCT cannot
read); TensorFlow only inside functions, so argument errors stay fast.
"""
import pathlib
import re

from compilers.imx500.ops import BUILDERS, Context, UnsupportedOperator, activate, is_constant, layers
from zoo.tflite import read_graph, signature_names

# The schema's ActivationFunctionType (SIGN_BIT, 5, has no equivalent). A fused TANH is applied as
# the schema says, though LiteRT's int8 convolution ignores one (the converter never writes it).
_FUSED = {1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}

__all__ = ["UnsupportedOperator", "check_supported", "tflite_to_keras", "input_names", "run_operator",
           "file_context", "importable"]


def importable(op):
    """Whether the importer has a builder for ``op`` (its operands are checked when it is built)."""
    return not op.custom and op.name in BUILDERS


def check_supported(graph, operators=None):
    """UnsupportedOperator for the first of ``operators`` (default: all of ``graph``'s) that has
    no builder; no TensorFlow needed, so a caller can refuse a file before any heavy work.
    Operators that run other subgraphs (WHILE, IF, CALL_ONCE) have none."""
    for op in graph.operators if operators is None else operators:
        if not importable(op):
            kind = f"{op.name}, a custom operator" if op.custom else op.name
            raise UnsupportedOperator(f"{graph.path}: operator {op.index} ({kind}) has no Keras equivalent "
                                      f"in the importer, so this model cannot go to the IMX500 (the "
                                      f"{len(BUILDERS)} it takes: `python -m compilers.imx500.importer`)")


def _keras_name(name):
    """A valid Keras layer name: TFLite tensor names carry '/', ':' and ';'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("_.-")
    return name or "tensor"


def _io_names(graph, signature, indices):
    return {index: _keras_name(signature.get(index) or graph.tensors[index].name) for index in indices}


def file_context(path, graph, outputs=None):
    """The builders' Context for ``graph``: LiteRT's per-channel quantization axes, and names for
    the inputs and ``outputs`` (default: the file's): the signature's where the file has one (zoo
    files call their input "face"), else the tensor names, as zoo.tflite.io_details gives them."""
    from ai_edge_litert.interpreter import Interpreter
    # Not allocated: the details are there before, and a file with a custom operator LiteRT lacks
    # (PosenetDecoderOp) fails only at allocation.
    axes = {d["index"]: d["quantization_parameters"]["quantized_dimension"]
            for d in Interpreter(model_path=str(path)).get_tensor_details()}
    outputs = graph.outputs if outputs is None else outputs
    return Context(graph, axes, _io_names(graph, signature_names(path), tuple(graph.inputs) + tuple(outputs)))


def run_operator(ctx, op, name=None):
    """Builds ``op`` on the values in ``ctx`` (Keras or eager tensors), then its fused activation as
    a layer of its own (which MCT pairs with the layer before it); its outputs go into ctx.values
    and are returned as a list."""
    code = getattr(op.options, "fusedActivationFunction", 0)
    if code and code not in _FUSED:
        raise ctx.unsupported(op, f"has fused activation {code} (SIGN_BIT), which Keras has no layer for")
    name = name or ctx.names.get(op.outputs[0]) or f"op{op.index}_{op.name.lower()}"
    value = BUILDERS[op.name](ctx, op, f"{name}_linear" if code else name)
    values = value if isinstance(value, list) else [activate(value, _FUSED[code], name) if code else value]
    if len(values) != len(op.outputs):
        raise ctx.unsupported(op, f"gives {len(values)} outputs where the file has {len(op.outputs)}")
    ctx.values.update(zip(op.outputs, values))
    return values


def _named_output(ctx, index, taken):
    """The Keras tensor of output ``index``, its layer carrying the output's name: the layer that
    makes it is renamed where it makes nothing else (an identity layer after it would be one more
    8-bit quantization point for MCT, and would keep a 16-bit output from being one); else an
    identity layer is added. ``taken``: the layers already renamed."""
    value, name = ctx.values.get(index), ctx.names[index]
    if value is None or is_constant(value):
        raise UnsupportedOperator(f"{ctx.graph.path}: output {name} is not computed from the inputs")
    layer = value.node.layer
    if layer.name == name:
        return value
    if type(layer).__name__ != "TFOpLambda" and len(layer.inbound_nodes) == 1 and layer not in taken:
        layer._name = name  # Keras 2.15 keeps a layer's name here; set before the model is made
        taken.append(layer)
        return value
    return layers().Activation("linear", name=name)(value)


def tflite_to_keras(path, operators=None, outputs=None):
    """The float Keras functional model that computes what TFLite file ``path`` computes: inputs and
    outputs keep the file's names and shapes (the batch axis left free). ``operators`` and
    ``outputs`` (tensor indices) import a part of the graph, the part a partition puts on the
    sensor (default: all of it). UnsupportedOperator (a UsageError) names the first operator that
    has no Keras equivalent."""
    graph = read_graph(path)
    operators = graph.operators if operators is None else operators
    check_supported(graph, operators)
    import tensorflow as tf
    ctx = file_context(path, graph, outputs)
    inputs = []
    for index in graph.inputs:
        tensor = graph.tensors[index]
        shape = [None if size < 0 else size for size in (tensor.shape_signature or tensor.shape)[1:]]
        inputs.append(tf.keras.Input(shape, name=ctx.names[index]))
        ctx.values[index] = inputs[-1]
    for op in operators:
        run_operator(ctx, op)
    taken = []
    outputs = [_named_output(ctx, index, taken) for index in (graph.outputs if outputs is None else outputs)]
    return tf.keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs,
                          name=_keras_name(pathlib.Path(path).stem))


def input_names(path):
    """{tensor index: Keras input name} of the model tflite_to_keras makes from ``path``; no
    interpreter, so a caller can check its arguments quietly and fast."""
    graph = read_graph(path)
    return _io_names(graph, signature_names(path), graph.inputs)


if __name__ == "__main__":
    print("The TFLite operators the importer takes:\n  " + "\n  ".join(sorted(BUILDERS)))
