"""Reductions over axes: mean, sum, maximum, the L2 normalization, and the index of the largest
or smallest value (ARG_MAX, ARG_MIN)."""
from compilers.imx500.ops.common import layers


def _axes(ctx, op):
    rank = len(ctx.shape(op.inputs[0]))
    return sorted({ctx.axis(op, a, rank) for a in ctx.ints(op, 1)})


def mean(ctx, op, name):
    import tensorflow as tf
    x, axes, keep = ctx.live(op, 0), _axes(ctx, op), bool(op.options.keepDims)
    if len(ctx.shape(op.inputs[0])) == 4 and axes == [1, 2]:
        return layers().GlobalAveragePooling2D(keepdims=keep, name=name)(x)
    return tf.math.reduce_mean(x, axis=axes, keepdims=keep)


def reduction(function_name):
    """SUM and REDUCE_MAX: tf.math.reduce_sum / reduce_max over constant axes."""
    def build(ctx, op, name):
        import tensorflow as tf
        return getattr(tf.math, function_name)(ctx.live(op, 0), axis=_axes(ctx, op),
                                               keepdims=bool(op.options.keepDims))
    return build


# LiteRT's float L2_NORMALIZATION: x / sqrt(max(sum(x^2), 1e-6)) (kernels/l2norm.cc; OpenVINO's
# TFLite front end, "taken from tfl reference", uses the same epsilon in max mode)
L2_EPSILON = 1e-6


def l2_normalization(ctx, op, name):
    """x / sqrt(max(sum(x^2), eps)) along the last axis, as x * rsqrt(...), the maximum a ReLU
    (ops imxconv-tf takes; it has no l2_normalize)."""
    import tensorflow as tf
    x = ctx.live(op, 0)
    squares = tf.math.reduce_sum(layers().Multiply()([x, x]), axis=-1, keepdims=True)
    floor = L2_EPSILON
    return layers().Multiply(name=name)([x, tf.math.rsqrt(layers().ReLU()(squares - floor) + floor)])


def arg_extreme(ctx, op, name):
    """ARG_MAX, ARG_MIN (the arg max of the negation: the first smallest, as LiteRT) as
    tf.math.argmax, in the file's index type."""
    import tensorflow as tf
    x = ctx.live(op, 0)
    axis = ctx.axis(op, ctx.ints(op, 1)[0], len(ctx.shape(op.inputs[0])))
    output_type = ctx.graph.tensors[op.outputs[0]].dtype
    return tf.math.argmax(x if op.name == "ARG_MAX" else -x, axis=axis, output_type=output_type)


BUILDERS = {"MEAN": mean, "SUM": reduction("reduce_sum"), "REDUCE_MAX": reduction("reduce_max"),
            "L2_NORMALIZATION": l2_normalization, "ARG_MAX": arg_extreme, "ARG_MIN": arg_extreme}
