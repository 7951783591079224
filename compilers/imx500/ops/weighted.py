"""Operators with weights, and pooling: convolutions, dense layers, pools."""
from compilers.imx500.ops.common import PADDING, layers, with_weights


def conv_2d(ctx, op, name):
    x, kernel, bias, o = ctx.live(op, 0), ctx.constant(op, 1), ctx.constant(op, 2), op.options
    filters, height, width, depth = kernel.shape  # TFLite's OHWI; Keras wants HWIO
    layer = layers().Conv2D(filters, (height, width), strides=(o.strideH, o.strideW),
                            padding=PADDING[o.padding], groups=x.shape[-1] // depth,
                            dilation_rate=(o.dilationHFactor, o.dilationWFactor),
                            use_bias=bias is not None, name=name)
    return with_weights(layer, x, kernel.transpose(1, 2, 3, 0), bias)


def depthwise_conv_2d(ctx, op, name):
    x, kernel, bias, o = ctx.live(op, 0), ctx.constant(op, 1), ctx.constant(op, 2), op.options
    _, height, width, channels = kernel.shape  # 1HW(C*M), channel c*M+m as in Keras
    depth = x.shape[-1]
    multiplier = channels // depth  # the stored depthMultiplier is unreliable in newer files
    layer = layers().DepthwiseConv2D((height, width), strides=(o.strideH, o.strideW),
                                     padding=PADDING[o.padding], depth_multiplier=multiplier,
                                     dilation_rate=(o.dilationHFactor, o.dilationWFactor),
                                     use_bias=bias is not None, name=name)
    return with_weights(layer, x, kernel.reshape(height, width, depth, multiplier), bias)


def fully_connected(ctx, op, name):
    """Dense on the last axis. TFLite folds all leading axes into rows unless keep_num_dims; with
    a rank > 2 input whose last axis is not the weights' depth, the input is first reshaped into
    rows of that depth (what TFLite does), and the result into the TFLite's output shape."""
    import numpy as np
    x, weights, bias = ctx.live(op, 0), ctx.constant(op, 1), ctx.constant(op, 2)
    units, depth = weights.shape
    in_shape, out_shape = ctx.shape(op.inputs[0]), ctx.shape(op.outputs[0])
    if in_shape[0] != out_shape[0]:
        raise ctx.unsupported(op, "folds the batch axis into its rows, which a Keras model cannot")
    if x.shape[-1] != depth:
        rows = int(np.prod(in_shape[1:])) // depth
        x = layers().Reshape((depth,) if rows == 1 else (rows, depth))(x)
    reshape = tuple(x.shape[1:-1]) + (units,) != tuple(out_shape[1:])
    dense = layers().Dense(units, use_bias=bias is not None, name=f"{name}_dense" if reshape else name)
    y = with_weights(dense, x, weights.T, bias)
    return layers().Reshape(out_shape[1:], name=name)(y) if reshape else y


def pool(layer_name):
    def build(ctx, op, name):
        o = op.options
        layer = getattr(layers(), layer_name)((o.filterHeight, o.filterWidth), strides=(o.strideH, o.strideW),
                                              padding=PADDING[o.padding], name=name)
        return layer(ctx.live(op, 0))
    return build


BUILDERS = {"CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d, "FULLY_CONNECTED": fully_connected,
            "AVERAGE_POOL_2D": pool("AveragePooling2D"), "MAX_POOL_2D": pool("MaxPooling2D")}
