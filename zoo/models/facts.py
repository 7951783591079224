"""Facts read off a built Keras model: parameters, multiply-accumulates, inputs, float size."""
import numpy as np
import tensorflow as tf


def _node_shapes(layer):
    """(input shape, output shape) of every call of ``layer``; shared layers are called more than once."""
    for index in range(len(layer.inbound_nodes)):
        yield layer.get_input_shape_at(index), layer.get_output_shape_at(index)


def _layer_macs(layer):
    layers = tf.keras.layers
    total = 0
    for in_shape, out_shape in _node_shapes(layer):
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(out_shape[1:])) * kh * kw
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(out_shape[1:])) * kh * kw * (in_shape[-1] // layer.groups)
        elif isinstance(layer, layers.Dense):
            total += int(np.prod(out_shape[1:])) * in_shape[-1]
    return total


def count_macs(model):
    """Multiply-accumulates of one forward pass: conv, depthwise conv and dense layers."""
    return sum(_layer_macs(layer) for layer in model.layers)


def model_facts(model):
    """The numbers `zoo list` shows, all derived from the built model."""
    params = int(model.count_params())
    return {
        "params": params,
        "macs": count_macs(model),
        "float_bytes": 4 * params,
        "inputs": [{"name": t.name.split(":")[0], "shape": list(t.shape[1:]), "dtype": t.dtype.name}
                   for t in model.inputs],
        "outputs": [{"name": t.name.split(":")[0], "shape": list(t.shape[1:]), "dtype": t.dtype.name}
                    for t in model.outputs],
    }
