"""The tiny models tests/test_tflite_import.py imports: Keras models that together use every
operator compilers.imx500.importer maps, converted to int8 (and float) TFLite, their inputs, what
the converter made of the tricky cases, and the perturbations the exact check must catch. Also
used by experiments/imx500/perturbed_imports.py for the BUILD_NOTES table."""
import warnings

import numpy as np

from conftest import SHARED
from zoo.tflite import converter_for, read_graph
from compilers.imx500 import ops
from compilers.imx500.exact_check import reference_interpreter, stored

REFERENCE = SHARED / "edgetpu" / "reference-models"
MOBILENET = REFERENCE / "mobilenet_v1_0.25_128_quant.tflite"
LSTM = REFERENCE / "keras_lstm_mnist_ptq.tflite"

# The float imports of the tiny int8 models agree with LiteRT at the outputs to "a couple of output
# steps" (measured: 0.5 to 1.5; int8 rounding builds up through the layers, which the twin has).
TINY_MODEL_STEPS = 3
# What the importer must handle; each must appear in at least one test file (checked from the files).
OPERATORS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "PAD", "RESHAPE",
             "CONCATENATION", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX", "TANH", "LOGISTIC",
             "RELU", "RELU6", "HARD_SWISH", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "QUANTIZE",
             "DEQUANTIZE", "CAST", "ARG_MAX", "ARG_MIN", "SQUEEZE", "STRIDED_SLICE", "SPLIT", "SPLIT_V",
             "GATHER", "TRANSPOSE", "PACK", "UNPACK", "L2_NORMALIZATION", "SUM", "REDUCE_MAX", "MAXIMUM",
             "MINIMUM", "SQUARED_DIFFERENCE", "RSQRT", "DIV"}
FEATURES = {"per-channel conv weights", "depth multiplier 2", "dense on a rank-4 input",
            "constant concatenation input", "constant add operand", "constant mul operand",
            "mean with keepdims", "mean without keepdims", "resize with align_corners",
            "fused RELU", "fused RELU6", "fused RELU_N1_TO_1", "fused NONE", "minimum with a constant",
            "cast of a raw uint8 image", "float DIV between int8 operators"}


def _convs(tf):
    """Convolutions, pooling and a classifier head; int8 in and out."""
    layers = tf.keras.layers
    face = tf.keras.Input((16, 16, 3), name="face")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(face)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6")(x)
    x = layers.Conv2D(8, 3)(layers.ZeroPadding2D(((1, 0), (0, 1)))(x))
    x = layers.Multiply()([x, layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)])  # hard swish, as MobileNetV3
    x = layers.AveragePooling2D(2, padding="same")(layers.MaxPooling2D(2)(x))
    x = layers.Dense(6)(layers.GlobalAveragePooling2D(keepdims=True)(x))  # Dense on a rank-4 tensor
    return tf.keras.Model(face, layers.Softmax()(layers.Reshape((6,))(x)))


def _elementwise(tf):
    """Activations, tensor and constant arithmetic, a baked constant image concatenated on the
    channels (the face-grid ramps) and the three resize modes; int8 in, float out."""
    layers = tf.keras.layers
    face = tf.keras.Input((16, 16, 3), batch_size=1, name="face")  # batch 1: tf.concat with a constant
    a = layers.Conv2D(4, 1)(face)
    tanh = layers.Activation("tanh")(a)
    sigmoid = layers.Activation("sigmoid")(layers.Conv2D(4, 3, padding="same")(face))
    x = layers.Multiply()([layers.Subtract()([layers.Add()([tanh, sigmoid]), layers.ReLU()(tanh)]), sigmoid])
    x = x * np.linspace(0.5, 1.5, 4, dtype=np.float32) + 0.25
    x = x - layers.ReLU(6.0)(layers.GlobalAveragePooling2D(keepdims=True)(a))
    x = tf.clip_by_value(layers.Conv2D(4, 1)(x), -1.0, 1.0)
    ramps = np.stack(np.meshgrid(np.linspace(-1, 1, 16), np.linspace(-1, 1, 16)), -1)[None]
    x = layers.Conv2D(4, 3, strides=2, padding="same")(tf.concat([x, ramps.astype(np.float32)], axis=-1))
    x = layers.Concatenate()([layers.UpSampling2D(2, interpolation="bilinear")(x),
                              layers.UpSampling2D(2, interpolation="nearest")(x),
                              tf.compat.v1.image.resize(x, (16, 16), align_corners=True), face])
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 3, strides=2)(x))
    return tf.keras.Model(face, layers.Dense(2, activation="tanh")(x))


def _two_inputs(tf):
    """Two inputs, a flatten into a dense and a constant minus a tensor."""
    layers = tf.keras.layers
    image, extra = tf.keras.Input((8, 8, 3), name="image"), tf.keras.Input((4,), name="extra")
    x = layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(image))
    return tf.keras.Model([image, extra], 1.0 - layers.Dense(3)(layers.Concatenate()([x, extra])))


def _shapes(tf):
    """Slices, splits, a gather, a transpose, a stack and unstack and a squeeze (a reshape the
    converter writes; the test turns it into SQUEEZE); int8 throughout."""
    layers = tf.keras.layers
    image = tf.keras.Input((8, 8, 6), batch_size=1, name="image")
    a = layers.Conv2D(6, 3, padding="same")(image)
    first, second = tf.split(a, 2, axis=-1)
    narrow, wide = tf.split(a, [2, 4], axis=-1)
    stacked = tf.stack([second, tf.transpose(first, [0, 2, 1, 3])], axis=3)
    parts = [a[:, 1:7:2, :, 1:5], *tf.unstack(stacked, axis=3), tf.gather(a, [4, 0, 1, 5], axis=-1), wide,
             tf.reduce_max(tf.squeeze(layers.Conv2D(1, 1)(narrow), axis=-1), axis=-1)]
    return tf.keras.Model(image, layers.Dense(4)(layers.Concatenate()([layers.Flatten()(p) for p in parts])))


def _math(tf):
    """Reductions, the L2 norm, maxima and minima, a squared difference, rsqrt, a division (which
    LiteRT has no int8 kernel for: it stays float between int8 operators), and arg max / min of
    a convolution of the input (few roundings before them, so the float model rarely sees a tie
    the int8 file breaks otherwise)."""
    layers = tf.keras.layers
    image = tf.keras.Input((8, 8, 4), batch_size=1, name="image")
    a, b = layers.Conv2D(4, 3, padding="same")(image), layers.Conv2D(4, 1)(image)
    y = layers.Concatenate()([tf.math.l2_normalize(a + 2.0, axis=-1), tf.maximum(a, b), tf.minimum(a, 0.25),
                              tf.math.squared_difference(a, b), tf.math.rsqrt(tf.nn.relu(b) + 0.5),
                              a / (tf.nn.relu(b) + 1.0), a + tf.reduce_sum(a, axis=[1, 2], keepdims=True),
                              tf.reduce_max(b, axis=-1, keepdims=True)])
    scores = layers.Conv2D(3, 1)(image)
    return tf.keras.Model(image, [tf.math.argmax(scores, axis=-1), tf.math.argmin(scores, axis=-1),
                                  layers.Conv2D(6, 1)(y)])


def _cast(tf):
    """A raw uint8 image cast to float at the input, as MoveNet's."""
    image = tf.keras.Input((8, 8, 3), batch_size=1, dtype=tf.uint8, name="image")
    return tf.keras.Model(image, tf.keras.layers.Conv2D(4, 3)(tf.cast(image, tf.float32) * (1 / 255.0) - 0.5))


# name: (model builder, int8 input, int8 output, float kernels allowed in the int8 file). Each is
# converted twice: int8 (NAME) and float (NAME_float), the two sides of the check.
MODELS = {"convs": (_convs, True, True, False), "elementwise": (_elementwise, True, False, False),
          "two_inputs": (_two_inputs, False, False, False), "shapes": (_shapes, True, False, False),
          "math": (_math, True, False, True), "cast": (_cast, False, False, True)}


def sample(rng, spec):
    """A random frame for TensorSpec ``spec``: raw 0..255 for uint8, else uniform in [-1, 1]."""
    import tensorflow as tf
    value = rng.integers(0, 256, spec.shape) if spec.dtype == tf.uint8 else rng.uniform(-1, 1, spec.shape)
    return value.astype(spec.dtype.as_numpy_dtype)


def convert(model, int8_input, int8_output, float_kernels, quantize=True):
    """TFLite bytes of ``model`` at batch 1, the signature named by the Keras inputs; int8 with a
    representative set of random frames unless ``quantize`` is false (a uint8 input stays raw)."""
    import tensorflow as tf
    specs = [tf.TensorSpec((1, *t.shape[1:]), t.dtype, name=name)
             for name, t in zip(model.input_names, model.inputs)]
    function = tf.function(lambda *args: model(list(args) if len(args) > 1 else args[0]))
    concrete = function.get_concrete_function(*specs)
    converter = converter_for(concrete)
    if quantize:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            {s.name: sample(rng, s) for s in specs} for _ in range(32))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
            [tf.lite.OpsSet.TFLITE_BUILTINS] if float_kernels else [])
        if specs[0].dtype != tf.uint8:
            converter.inference_input_type = tf.int8 if int8_input else tf.float32
        converter.inference_output_type = tf.int8 if int8_output else tf.float32
    with warnings.catch_warnings():  # TF warns that float outputs have no statistics: expected
        warnings.simplefilter("ignore")
        return converter.convert()


def with_squeeze(path):
    """The file with its reshape that drops a last axis of 1 written as the SQUEEZE it is (the
    converter writes tf.squeeze as a RESHAPE); LiteRT runs either."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(str(path))
    graph, subgraph = read_graph(path), model.subgraphs[0]
    op = next(op for op in graph.operators if op.name == "RESHAPE"
              and graph.tensors[op.inputs[0]].shape[:-1] == graph.tensors[op.outputs[0]].shape)
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = (schema.BuiltinOperator.SQUEEZE,) * 2 + (1,)
    model.operatorCodes.append(code)
    options = schema.SqueezeOptionsT()
    options.squeezeDims = [len(graph.tensors[op.inputs[0]].shape) - 1]
    target = subgraph.operators[op.index]
    target.opcodeIndex, target.inputs = len(model.operatorCodes) - 1, target.inputs[:1]
    target.builtinOptionsType, target.builtinOptions = schema.BuiltinOptions.SqueezeOptions, options
    flatbuffer_utils.write_model(model, str(path))
    return path


def inputs(path, frames=32, seed=1):
    """Frames of every input of ``path``, by the importer's input names: uniform in [-1, 1], or
    raw 0..255 for a uint8 input that is not quantized."""
    from compilers.imx500.importer import input_names
    graph, rng = read_graph(path), np.random.default_rng(seed)
    arrays = {}
    for index, name in input_names(path).items():
        tensor = graph.tensors[index]
        raw = tensor.dtype == "uint8" and not tensor.quantized
        shape = (frames, *tensor.shape[1:])
        arrays[name] = (rng.integers(0, 256, shape) if raw else rng.uniform(-1, 1, shape)).astype(np.float32)
    return arrays


def features(graph):
    """What the converter made of the tricky cases, read from the file itself."""
    tensors, found = graph.tensors, set()
    for op in graph.operators:
        inputs = [tensors[i] for i in op.inputs if i >= 0]
        fused = getattr(op.options, "fusedActivationFunction", None)
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD"):
            found.add(f"fused {['NONE', 'RELU', 'RELU_N1_TO_1', 'RELU6'][fused]}")
        if op.name == "CONV_2D" and len(inputs[1].scale) > 1:
            found.add("per-channel conv weights")
        if op.name == "DEPTHWISE_CONV_2D" and inputs[1].shape[3] == 2 * inputs[0].shape[3]:
            found.add("depth multiplier 2")
        if op.name == "FULLY_CONNECTED" and len(inputs[0].shape) == 4:
            found.add("dense on a rank-4 input")
        if op.name in ("CONCATENATION", "MINIMUM") and any(t.is_constant for t in inputs):
            found.add("constant concatenation input" if op.name == "CONCATENATION" else
                      "minimum with a constant")
        if op.name in ("ADD", "MUL") and any(t.is_constant for t in inputs):
            found.add(f"constant {op.name.lower()} operand")
        if op.name == "MEAN":
            found.add(f"mean {'with' if op.options.keepDims else 'without'} keepdims")
        if op.name.startswith("RESIZE") and op.options.alignCorners:
            found.add("resize with align_corners")
        if op.name == "CAST" and inputs[0].dtype == "uint8":
            found.add("cast of a raw uint8 image")
        if op.name == "DIV" and tensors[op.outputs[0]].dtype == "float32":
            found.add("float DIV between int8 operators")
    return found


def reach(path, op, inputs):
    """Per output channel of ``op``, the furthest LiteRT's output gets from its zero point, in steps."""
    graph = read_graph(path)
    interpreter = reference_interpreter(path.read_bytes())
    (name, frames), = inputs.items()
    output = graph.tensors[op.outputs[0]]
    reach = np.zeros(output.shape[-1])
    for frame in range(len(frames)):
        source = graph.tensors[graph.inputs[0]]
        interpreter.set_tensor(source.index, stored(source, frames[frame:frame + 1]))
        interpreter.invoke()
        steps = np.abs(interpreter.get_tensor(output.index).astype(float) - output.zero_point[0])
        reach = np.maximum(reach, steps.reshape(-1, output.shape[-1]).max(axis=0))
    return reach


def perturb(monkeypatch, path, op, kind, channel):
    """The importer made wrong in one place of ``op``: one output channel's weights x1.01, its bias
    one output step off, or its SAME padding put on the wrong side (top-left instead of
    bottom-right, the same output shape)."""
    import dataclasses
    from compilers.imx500.ops import common
    graph = read_graph(path)
    weights, bias, output = (graph.tensors[i] for i in (op.inputs[1], op.inputs[2], op.outputs[0]))
    original_dequantize, original_conv = common.dequantize, ops.BUILDERS["CONV_2D"]

    def dequantize(tensor, axis):
        values = original_dequantize(tensor, axis)
        if kind == "weights x1.01" and tensor.index == weights.index:
            values[channel] *= 1.01
        if kind == "bias off by one step" and tensor.index == bias.index:
            values[channel] += output.scale[0]
        return values

    def conv_2d(ctx, other, name):
        if kind != "wrong padding" or other.index != op.index:
            return original_conv(ctx, other, name)
        source = ctx.values[other.inputs[0]]
        ctx.values[other.inputs[0]] = ops.layers().ZeroPadding2D(((1, 0), (1, 0)))(source)
        options = type(other.options)()
        vars(options).update({**vars(other.options), "padding": 1})  # VALID after the explicit pad
        try:
            return original_conv(ctx, dataclasses.replace(other, options=options), name)
        finally:
            ctx.values[other.inputs[0]] = source
    monkeypatch.setattr(common, "dequantize", dequantize)
    monkeypatch.setitem(ops.BUILDERS, "CONV_2D", conv_2d)


def write_models(folder):
    """{name: path} of every test model's TFLite (int8, and float as NAME_float) written into
    ``folder``."""
    import tensorflow as tf
    paths = {}
    for name, (build, *flags) in MODELS.items():
        # The same weights every run. Unseeded, the float import of the elementwise model was 0.85
        # to 5.5 steps from LiteRT at its output over seeds 0-7 (int8 rounding built up through
        # its resizes); TINY_MODEL_STEPS holds for this seed's.
        tf.keras.utils.set_random_seed(1)
        model = build(tf)
        for suffix, quantize in (("", True), ("_float", False)):
            paths[name + suffix] = folder / f"{name}{suffix}.tflite"
            paths[name + suffix].write_bytes(convert(model, *flags, quantize=quantize))
    for name in ("shapes", "shapes_float"):
        with_squeeze(paths[name])
    return paths
