"""The tiny int8 models tests/test_edgetpu.py converts: for every rule of the Edge TPU pre-flight
(compilers/edgetpu/rules.py) one that meets it and one that breaks it, plus a few models of the
changed rules. Most are Keras functions converted with TFLiteConverter (full int8, a random
representative dataset); the cases no converter makes (it folds, fuses or rewrites them) are a
converted case with its flatbuffer edited through ai_edge_litert.tools.flatbuffer_utils.
"""
import warnings

import numpy as np


def keras_model(name):
    """The Keras model of case ``name`` (or of a zoo model: "tinytracker", ...)."""
    import tensorflow as tf
    layers = tf.keras.layers
    if name == "mobilenet_v3_full":  # the non-minimalistic MobileNetV3: hard-swish activations
        return tf.keras.applications.MobileNetV3Small(
            minimalistic=False, include_preprocessing=False, weights=None, input_shape=(96, 96, 3),
            include_top=False)
    if name == "dynamic_input":
        image = tf.keras.Input((None, None, 3))
        return tf.keras.Model(image, layers.Conv2D(4, 3)(image))
    if name in CASES:
        shape, build = CASES[name][:2]
        image = tf.keras.Input(shape, batch_size=1)
        return tf.keras.Model(image, build(image, tf, layers))
    from zoo import create_model
    return create_model(name)


def convert(model, quantize=True, io_type="int8"):
    """TFLite bytes of ``model``: full-int8 with a tiny random representative dataset and ``io_type``
    input/output ("int8", "uint8" or "float32"), or float. Converting the concrete function skips
    the SavedModel export that from_keras_model makes, which is ten times slower."""
    import tensorflow as tf
    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(2):
            yield [rng.uniform(-1, 1, (1,) + tuple(s or 8 for s in shape)).astype(np.float32)
                   for shape in shapes]
    concrete = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0])).get_concrete_function(
        *[tf.TensorSpec((model.inputs[0].shape[0],) + shape, tf.float32) for shape in shapes])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_type)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def edit(data, change):
    """``data`` (TFLite bytes) with ``change(model, schema)`` applied to its object form: the cases
    no converter makes (a converter folds, fuses or rewrites them)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    change(model, schema)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _first_op(model, name):
    return next(op for op in model.subgraphs[0].operators
                if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                       model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == name)


def _set_option(op_name, **values):
    def edit(model, schema):
        op = _first_op(model, getattr(schema.BuiltinOperator, op_name))
        for key, value in values.items():
            setattr(op.builtinOptions, key, value)
    return edit


def drop_buffer(op_name, position):
    """Makes input ``position`` of the first ``op_name`` a run-time tensor (no constant data)."""
    def edit(model, schema):
        op = _first_op(model, getattr(schema.BuiltinOperator, op_name))
        model.subgraphs[0].tensors[op.inputs[position]].buffer = 0
    return edit


def _set_values(op_name, position, values):
    """Rewrites the constant at input ``position`` of the first ``op_name``."""
    def edit(model, schema):
        op = _first_op(model, getattr(schema.BuiltinOperator, op_name))
        buffer = model.buffers[model.subgraphs[0].tensors[op.inputs[position]].buffer]
        buffer.data = np.asarray(values, np.int32).view(np.uint8)
    return edit


def _recode(op_name, new_name, options=None, inputs=None):
    """Turns the first ``op_name`` into ``new_name`` (keeping ``inputs`` of its inputs) with
    ``options`` ((type name, {field: value}) or None)."""
    def edit(model, schema):
        op = _first_op(model, getattr(schema.BuiltinOperator, op_name))
        code = model.operatorCodes[op.opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = getattr(schema.BuiltinOperator, new_name)
        code.version = 1
        op.inputs = [op.inputs[i] for i in (inputs or range(len(op.inputs)))]
        op.builtinOptionsType, op.builtinOptions = 0, None
        if options:
            op.builtinOptionsType = getattr(schema.BuiltinOptions, options[0])
            op.builtinOptions = getattr(schema, f"{options[0]}T")()
            for key, value in options[1].items():
                setattr(op.builtinOptions, key, value)
    return edit


# name -> (input shape, build(x, tf, layers)[, io type]) or (base case, edit)
CASES = {
    "transpose": ((6, 6, 8), lambda x, tf, L: tf.transpose(x, [0, 2, 1, 3])),
    "hard_swish": ((6, 6, 8), lambda x, tf, L: x * tf.nn.relu6(x + 3) / 6),
    "float_io": ((6, 6, 8), lambda x, tf, L: L.Conv2D(4, 3)(x), "float32"),
    "uint8_io": ((6, 6, 8), lambda x, tf, L: L.Conv2D(4, 3)(x), "uint8"),
    "conv": ((6, 6, 8), lambda x, tf, L: L.Conv2D(4, 3)(x)),
    "grouped_conv": ((8, 8, 4), lambda x, tf, L: L.Conv2D(4, 3, groups=2)(x)),
    "reshape": ((6, 6, 8), lambda x, tf, L: tf.reshape(x, [1, 1, 36, 8])),
    "reshape_int64": ((6, 6, 8), lambda x, tf, L: tf.reshape(tf.argmax(x, -1), [1, 36])),
    "reshape_5d": ((6, 6, 8), lambda x, tf, L: tf.reshape(x, [1, 6, 6, 2, 4])),
    "depthwise": ((6, 6, 8), lambda x, tf, L: L.DepthwiseConv2D(3)(x)),
    "depthwise_dynamic_filter": ("depthwise", drop_buffer("DEPTHWISE_CONV_2D", 1)),
    "dilated": ((8, 8, 4), lambda x, tf, L: L.Conv2D(4, 3, dilation_rate=2, padding="same")(x)),
    "dilated_xy": ((8, 8, 4), lambda x, tf, L: L.Conv2D(4, 3, dilation_rate=(1, 2), padding="same")(x)),
    "dense": ((8,), lambda x, tf, L: L.Dense(5)(x)),
    "dense_shuffled": ("dense", _set_option("FULLY_CONNECTED", weightsFormat=1)),
    "dense_2d_output": ((6, 8), lambda x, tf, L: L.Dense(5)(x)),
    "max_pool": ((6, 6, 8), lambda x, tf, L: L.MaxPool2D(2)(x)),
    "max_pool_relu": ((6, 6, 8), lambda x, tf, L: L.ReLU()(L.MaxPool2D(2)(x))),
    "concat_zeros": ((6, 6, 8), lambda x, tf, L: tf.concat([x, tf.zeros((1, 6, 6, 2))], -1)),
    "concat_halves": ((6, 6, 8), lambda x, tf, L: tf.concat([x, tf.fill((1, 6, 6, 2), 0.5)], -1)),
    "mean_xy": ((6, 6, 8), lambda x, tf, L: tf.reduce_mean(x, [1, 2], keepdims=True)),
    "mean_batch": ("mean_xy", _set_values("MEAN", 1, [0, 1])),
    "mean_z8": ((6, 6, 8), lambda x, tf, L: tf.reduce_mean(x, -1, keepdims=True)),
    "mean_z6": ((6, 6, 6), lambda x, tf, L: tf.reduce_mean(x, -1, keepdims=True)),
    "pack_1": ((8,), lambda x, tf, L: tf.stack([x, x], axis=1)),
    "pack_0": ((8,), lambda x, tf, L: tf.stack([x, x], axis=0)),
    "bilinear_2x": ((3, 3, 8), lambda x, tf, L: tf.image.resize(x, [6, 6])),
    "bilinear_3_to_5": ((3, 3, 8), lambda x, tf, L: tf.image.resize(x, [5, 5])),
    "nearest_3_to_5": ((3, 3, 8), lambda x, tf, L: tf.image.resize(x, [5, 5], method="nearest")),
    "softmax_1d": ((8,), lambda x, tf, L: tf.nn.softmax(x)),
    "softmax_2d": ((6, 8), lambda x, tf, L: tf.nn.softmax(x)),
    "to_squeeze": ((1, 6, 8), lambda x, tf, L: tf.reshape(x + 1, [1, 6, 8])),
    "squeeze_leading": ("to_squeeze", _recode("RESHAPE", "SQUEEZE", ("SqueezeOptions", {"squeezeDims": [1]}),
                                              [0])),
    "to_squeeze_middle": ((6, 1, 8), lambda x, tf, L: tf.reshape(x + 1, [1, 6, 8])),
    "squeeze_middle": ("to_squeeze_middle", _recode("RESHAPE", "SQUEEZE",
                                                    ("SqueezeOptions", {"squeezeDims": [2]}), [0])),
    "slice_unit": ((6, 6, 8), lambda x, tf, L: x[:, 1:5]),
    "slice_stride_2": ((6, 6, 8), lambda x, tf, L: x[:, ::2]),
    "slice_ellipsis": ("slice_unit", _set_option("STRIDED_SLICE", ellipsisMask=1)),
    "alpha_1d": ((6, 6, 8), lambda x, tf, L: x * tf.constant(np.linspace(0.1, 0.8, 8), tf.float32)),
    "prelu_1d": ("alpha_1d", _recode("MUL", "PRELU")),
    "alpha_3d": ((6, 6, 8), lambda x, tf, L: x * tf.constant(
        np.linspace(0.1, 0.8, 288).reshape(6, 6, 8), tf.float32)),
    "prelu_3d": ("alpha_3d", _recode("MUL", "PRELU")),
    "partition": ((6, 6, 8), lambda x, tf, L: [  # conv -> hard-swish -> conv, and a conv beside them
        L.Conv2D(4, 1)((lambda h: h * tf.nn.relu6(h + 3) / 6)(L.Conv2D(8, 1)(x))), L.Conv2D(4, 1)(x)]),
}

# rule id -> (case that meets it, case that breaks it, the operator judged)
RULE_CASES = {
    "dequantize": ("conv", "float_io", "DEQUANTIZE"),
    "listed": ("transpose", "hard_swish", None),
    "version": ("conv", "grouped_conv", "CONV_2D"),
    "quantize-from-8-bit": ("uint8_io", "float_io", "QUANTIZE"),
    "data-types": ("reshape", "reshape_int64", "RESHAPE"),
    "rank": ("reshape", "reshape_5d", "RESHAPE"),
    "constant-parameters": ("depthwise", "depthwise_dynamic_filter", "DEPTHWISE_CONV_2D"),
    "same-dilation": ("dilated", "dilated_xy", "CONV_2D"),
    "fc-weights-format": ("dense", "dense_shuffled", "FULLY_CONNECTED"),
    "fc-1d-output": ("dense", "dense_2d_output", "FULLY_CONNECTED"),
    "no-fused-activation": ("max_pool", "max_pool_relu", "MAX_POOL_2D"),
    "concat-constant": ("concat_zeros", "concat_halves", "CONCATENATION"),
    "not-on-batch": ("mean_xy", "mean_batch", "MEAN"),
    "mean-z-depth": ("mean_z8", "mean_z6", "MEAN"),
    "pack-not-on-batch": ("pack_1", "pack_0", "PACK"),
    "bilinear-grid": ("bilinear_2x", "bilinear_3_to_5", "RESIZE_BILINEAR"),
    "softmax-1d": ("softmax_1d", "softmax_2d", "SOFTMAX"),
    "squeeze-leading-ones": ("squeeze_leading", "squeeze_middle", "SQUEEZE"),
    "unit-strides": ("slice_unit", "slice_stride_2", "STRIDED_SLICE"),
    "slice-masks": ("slice_unit", "slice_ellipsis", "STRIDED_SLICE"),
    "prelu-1d-alpha": ("prelu_1d", "prelu_3d", "PRELU"),
}


def edited(name):
    """(base case, edit) when case ``name`` is an edited flatbuffer, else None."""
    case = CASES.get(name, ())
    return case if len(case) == 2 and isinstance(case[0], str) else None


def case_io_type(name, default):
    """The input/output type case ``name`` is converted with."""
    case = CASES.get(name, ())
    return case[2] if len(case) > 2 else default
