"""compilers.imx500.importer and its exact check: tiny Keras models that together use every operator
the importer maps are converted to int8 TFLite (one to float), imported back into Keras and run
against LiteRT on both sides of the check: the quantization-simulating twin operator by operator
(compilers.imx500.exact_check, within one step) and the float model MCT gets at the outputs. The
check fails on a perturbed import, naming the operator; the public mobilenet_v1 file passes; an
LSTM file is refused by name."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import REPO, SHARED
from zoo.errors import UsageError
from zoo.tflite import converter_for, read_graph
from compilers.imx500 import ops
from compilers.imx500.exact_check import MAX_STEPS, exact_check, reference_interpreter, stored
from compilers.imx500.importer import UnsupportedOperator, tflite_to_keras

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


def _sample(rng, spec):
    """A random frame for TensorSpec ``spec``: raw 0..255 for uint8, else uniform in [-1, 1]."""
    import tensorflow as tf
    value = rng.integers(0, 256, spec.shape) if spec.dtype == tf.uint8 else rng.uniform(-1, 1, spec.shape)
    return value.astype(spec.dtype.as_numpy_dtype)


def _convert(model, int8_input, int8_output, float_kernels, quantize=True):
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
            {s.name: _sample(rng, s) for s in specs} for _ in range(32))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
            [tf.lite.OpsSet.TFLITE_BUILTINS] if float_kernels else [])
        if specs[0].dtype != tf.uint8:
            converter.inference_input_type = tf.int8 if int8_input else tf.float32
        converter.inference_output_type = tf.int8 if int8_output else tf.float32
    with warnings.catch_warnings():  # TF warns that float outputs have no statistics: expected
        warnings.simplefilter("ignore")
        return converter.convert()


def _with_squeeze(path):
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


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path} of every test model's TFLite, converted once."""
    import tensorflow as tf
    folder = tmp_path_factory.mktemp("tflite_import")
    paths = {}
    for name, (build, *flags) in MODELS.items():
        # The same weights every run. Unseeded, the float import of the elementwise model was 0.85
        # to 5.5 steps from LiteRT at its output over seeds 0-7 (int8 rounding built up through
        # its resizes); TINY_MODEL_STEPS holds for this seed's.
        tf.keras.utils.set_random_seed(1)
        model = build(tf)
        for suffix, quantize in (("", True), ("_float", False)):
            paths[name + suffix] = folder / f"{name}{suffix}.tflite"
            paths[name + suffix].write_bytes(_convert(model, *flags, quantize=quantize))
    for name in ("shapes", "shapes_float"):
        _with_squeeze(paths[name])
    return paths


def _inputs(path, frames=32, seed=1):
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


def _features(graph):
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


def test_the_test_files_use_every_operator(files):
    """From the TFLite files' own operator lists, so the coverage cannot silently drop."""
    graphs = [read_graph(path) for path in files.values()]
    assert OPERATORS <= {op.name for graph in graphs for op in graph.operators}
    assert FEATURES <= set().union(*map(_features, graphs))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_import_agrees_with_litert_on_both_sides_of_the_check(files, name):
    """The int8 file: the twin of each operator within a step of LiteRT's reference kernels, the
    float model (MCT's input) a few steps from it at the outputs (int8 rounding accumulates, and
    where a coarse tensor is requantized finer, as in the math model, many: information only).
    The float file: the float import of each operator and at the outputs within a relative 1e-4
    of LiteRT (arg max and min: the same index)."""
    checks = {}
    for path in (files[name], files[f"{name}_float"]):
        checks[path] = exact_check(path, _inputs(path), float_model=tflite_to_keras(path))
        assert checks[path].frames == 32 and checks[path].passed, (path.name, checks[path])
    int8, float_file = checks.values()
    assert int8.float_output_steps <= (int8.float_output_steps if name == "math" else TINY_MODEL_STEPS), int8
    assert float_file.max_steps <= MAX_STEPS and float_file.float_output_steps <= MAX_STEPS, float_file


def test_litert_reference_sum_is_overruled_by_its_optimized_kernel(files):
    """LiteRT's reference int8 SUM returns the same wrong value everywhere (BUILD_NOTES): the check
    says so and counts the optimized kernel, which the twin agrees with."""
    check = exact_check(files["math"], _inputs(files["math"]))
    (operator, note), = check.kernel_notes.items()
    assert operator.endswith("(SUM)") and "reference kernel is wrong" in note
    assert check.by_operator["SUM"] <= 0.51


def test_names_and_shapes_follow_the_file(files):
    model = tflite_to_keras(files["two_inputs"])
    assert sorted(model.input_names) == ["extra", "image"]
    assert sorted(tuple(t.shape) for t in model.inputs) == [(None, 4), (None, 8, 8, 3)]
    assert model.output_names == ["output_0"] and tuple(model.output.shape) == (None, 3)
    convs = tflite_to_keras(files["convs"])
    assert convs.input_names == ["face"] and tuple(convs.output.shape) == (None, 6)


def test_exact_check_wants_a_named_batch_for_several_inputs(files):
    with pytest.raises(UsageError, match="give a dict"):
        exact_check(files["two_inputs"], np.zeros((32, 8, 8, 3), np.float32))
    with pytest.raises(UsageError, match="at least 32 frames"):
        exact_check(files["two_inputs"], _inputs(files["two_inputs"], frames=4))


def _reach(path, op, inputs):
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


def _perturb(monkeypatch, path, op, kind, channel):
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


@pytest.mark.parametrize("kind", ["weights x1.01", "bias off by one step", "wrong padding"])
def test_a_perturbed_import_fails_the_check_at_its_operator(files, monkeypatch, kind):
    """The convs model's first convolution (stride 2, SAME), perturbed in the output channel that
    reaches furthest from its zero point (1% of it is over a step): the check fails there, where
    the float model's distance at the output could not have told (it is rounding-sized)."""
    path, inputs = files["convs"], _inputs(files["convs"])
    op = read_graph(path).operators[0]
    assert op.name == "CONV_2D" and op.options.padding == 0 and op.options.strideH == 2
    reach = _reach(path, op, inputs)
    assert reach.max() > 100, reach
    _perturb(monkeypatch, path, op, kind, int(np.argmax(reach)))
    check = exact_check(path, inputs)
    assert not check.passed and check.first_failure.startswith("operator 0 (CONV_2D): "), check
    assert check.max_steps > MAX_STEPS


def test_a_fused_tanh_becomes_a_tanh_layer(files, tmp_path):
    """The converter never writes a fused TANH and LiteRT's int8 convolution ignores one, so this is
    checked on the model's structure: the file's first plain convolution given a fused TANH."""
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(str(files["convs"]))
    graph = read_graph(files["convs"])
    index = next(op.index for op in graph.operators
                 if op.name == "CONV_2D" and not op.options.fusedActivationFunction)
    model.subgraphs[0].operators[index].builtinOptions.fusedActivationFunction = 4  # TANH
    flatbuffer_utils.write_model(model, str(tmp_path / "tanh.tflite"))
    layer = tflite_to_keras(tmp_path / "tanh.tflite").get_layer(f"op{index}_conv_2d")
    assert layer.get_config()["activation"] == "tanh"
    assert type(layer.input.node.layer).__name__ == "Conv2D"


def test_mobilenet_imports_and_passes_the_exact_check():
    """A public uint8 file: each of its 31 operators within a step of LiteRT; the float model is
    further at the softmax output (rounding a softmax amplifies), and agrees on average."""
    from compilers.imx500.calibration import value_range
    graph = read_graph(MOBILENET)
    model = tflite_to_keras(MOBILENET)
    assert model.input_names == ["input"] and tuple(model.output.shape) == (None, 1001)
    assert model.output_names == ["MobilenetV1_Predictions_Reshape_1"]
    low, high = value_range(graph, graph.tensors[graph.inputs[0]])
    frames = np.random.default_rng(0).uniform(low, high, (32, 128, 128, 3)).astype(np.float32)
    check = exact_check(MOBILENET, frames, float_model=model)
    assert check.passed and check.max_steps <= MAX_STEPS and check.by_operator["CONV_2D"] <= 0.6, check
    assert check.float_mean_steps < 0.1 < check.float_output_steps, check


def test_an_lstm_is_refused_naming_the_operator():
    with pytest.raises(UnsupportedOperator, match=r"keras_lstm_mnist_ptq\.tflite: operator 1 "
                                                  r"\(UNIDIRECTIONAL_SEQUENCE_LSTM\) has no Keras") as error:
        tflite_to_keras(LSTM)
    assert isinstance(error.value, UsageError) and "\n" not in str(error.value)


def test_refusal_comes_before_tensorflow_is_imported():
    """Argument checking stays fast: neither the module nor a refusal imports TensorFlow."""
    script = ("import sys\nfrom compilers.imx500.importer import tflite_to_keras, UnsupportedOperator\n"
              f"try:\n    tflite_to_keras({str(LSTM)!r})\nexcept UnsupportedOperator:\n    pass\n"
              "print(sorted(m for m in ('tensorflow', 'tensorflow_model_optimization') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_a_float_input_s_range_is_that_of_the_quantize_it_feeds(files):
    """A float image input of an int8 file is quantized by its first operator: its range is that
    one's; a float file says nothing about its range (photos cannot be scaled to it)."""
    from compilers.imx500.calibration import value_range
    graph = read_graph(files["two_inputs"])
    image = next(graph.tensors[i] for i in graph.inputs if len(graph.tensors[i].shape) == 4)
    quantize = next(op for op in graph.operators if op.inputs[0] == image.index)
    scaled = graph.tensors[quantize.outputs[0]]
    assert quantize.name == "QUANTIZE" and image.dtype == "float32"
    assert value_range(graph, image) == pytest.approx([(-128 - scaled.zero_point[0]) * scaled.scale[0],
                                                       (127 - scaled.zero_point[0]) * scaled.scale[0]])
    float_graph = read_graph(files["two_inputs_float"])
    assert value_range(float_graph, float_graph.tensors[float_graph.inputs[0]]) is None
