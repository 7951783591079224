"""Writing TFLite files: the one converter set-up (float, or fully int8 from representative
inputs), and the edits the zoo makes to a converted file (internal names dropped, metadata)."""


def convert(model, specs, representative=None, int8_output=False):
    """TFLite bytes: float when ``representative`` is None, else fully int8 (int8 input); PTQ's
    calibration runs here, in the converter's own calibrator, not in TensorFlow's runtime, so no
    tf.distribute strategy reaches it.

    Converts a concrete function with one named input per spec, so the TFLite signature keeps the
    Keras input names.
    """
    import tensorflow as tf

    signature = {s.name: tf.TensorSpec((None, *s.shape), tf.float32, name=s.name) for s in specs}
    function = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(signature)
    converter = converter_for(function)
    if representative is None:
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8 if int8_output else tf.float32
    return strip_internal_names(converter.convert())


def converter_for(function):
    """A TFLiteConverter of concrete ``function`` that keeps its signature. For the signature the
    converter saves a SavedModel of the object it is given: a bare module holding the variables the
    function reads, not the Keras model, whose export would trace every layer's call again (same
    bytes; BUILD_NOTES, "Tracing")."""
    import tensorflow as tf

    variables = tf.Module()
    variables.read = list(function.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([function], variables)


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
