"""Operators that move values without arithmetic (reshapes, slices, splits, gathers, stacks,
transposes, padding, concatenation) and resizing. Each keeps the batch axis free, as a Keras
model has it; one that works along the batch axis is refused by name."""
from compilers.imx500.ops.common import is_constant, layers


def reshape(ctx, op, name):
    """RESHAPE and SQUEEZE: to the TFLite's own output shape (the shape operand may hold -1s), the
    batch axis kept."""
    in_shape, out_shape = ctx.shape(op.inputs[0]), ctx.shape(op.outputs[0])
    if out_shape[:1] != in_shape[:1]:
        raise ctx.unsupported(op, "changes the batch axis")
    return layers().Reshape(out_shape[1:], name=name)(ctx.live(op, 0))


def transpose(ctx, op, name):
    permutation = ctx.ints(op, 1)
    if permutation[0] != 0:
        raise ctx.unsupported(op, "moves the batch axis")
    return layers().Permute(tuple(permutation[1:]), name=name)(ctx.live(op, 0))


def strided_slice(ctx, op, name):
    """tf.strided_slice with the file's masks; an axis dropped (shrink) by a reshape after it."""
    import tensorflow as tf
    o, x = op.options, ctx.live(op, 0)
    begin, end, strides = (ctx.ints(op, i) for i in (1, 2, 3))
    batch = ctx.shape(op.inputs[0])[0]
    if o.ellipsisMask or o.newAxisMask or getattr(o, "offset", False):
        raise ctx.unsupported(op, "uses an ellipsis, a new axis or offsets")
    whole_batch = (strides[0] == 1 and (o.beginMask & 1 or begin[0] == 0)
                   and (o.endMask & 1 or end[0] >= batch))
    if not whole_batch or o.shrinkAxisMask & 1:
        raise ctx.unsupported(op, "slices the batch axis")
    y = tf.strided_slice(x, begin, end, strides, begin_mask=o.beginMask | 1, end_mask=o.endMask | 1)
    out_shape = ctx.shape(op.outputs[0])
    return layers().Reshape(out_shape[1:], name=name)(y) if o.shrinkAxisMask else y


def split(ctx, op, name):
    """SPLIT (axis, x) into equal parts; SPLIT_V (x, sizes, axis) into the given sizes."""
    import tensorflow as tf
    x_position, axis_position = (1, 0) if op.name == "SPLIT" else (0, 2)
    x = ctx.live(op, x_position)
    axis = ctx.axis(op, ctx.ints(op, axis_position)[0], len(ctx.shape(op.inputs[x_position])))
    sizes = [ctx.shape(index)[axis] for index in op.outputs]
    return list(tf.split(x, len(sizes) if op.name == "SPLIT" else sizes, axis=axis))


def gather(ctx, op, name):
    """GATHER of a tensor at constant indices, as slices of consecutive runs concatenated along
    the axis (imxconv-tf takes a gather only along the last axis with batch_dims there), then
    reshaped to the file's output shape where the indices are not a vector."""
    x, indices = ctx.value(op, op.inputs[0]), ctx.value(op, op.inputs[1])
    if is_constant(x) or not is_constant(indices):
        raise ctx.unsupported(op, "gathers at indices computed by the network (only constant indices "
                                  "into a tensor can be imported)")
    if op.options.batchDims:
        raise ctx.unsupported(op, "has batch dimensions")
    axis = ctx.axis(op, op.options.axis, len(ctx.shape(op.inputs[0])))
    runs = []
    for index in (int(i) for i in indices.ravel()):
        if runs and runs[-1][1] == index:
            runs[-1][1] += 1
        else:
            runs.append([index, index + 1])
    head = (slice(None),) * axis
    pieces = [x[head + (slice(start, stop),)] for start, stop in runs]
    y = pieces[0] if len(pieces) == 1 else layers().Concatenate(axis=axis)(pieces)
    out_shape = ctx.shape(op.outputs[0])
    return y if indices.ndim == 1 else layers().Reshape(out_shape[1:], name=name)(y)


def pack(ctx, op, name):
    import tensorflow as tf
    values = [ctx.value(op, i) for i in op.inputs]
    if any(is_constant(v) for v in values):
        raise ctx.unsupported(op, "stacks a constant")
    return tf.stack(values, axis=ctx.axis(op, op.options.axis, len(ctx.shape(op.outputs[0]))))


def unpack(ctx, op, name):
    import tensorflow as tf
    axis = ctx.axis(op, op.options.axis, len(ctx.shape(op.inputs[0])))
    return list(tf.unstack(ctx.live(op, 0), num=len(op.outputs), axis=axis))


def pad(ctx, op, name):
    import tensorflow as tf
    x, pads = ctx.live(op, 0), ctx.constant(op, 1).astype(int).tolist()
    if pads[0] != [0, 0]:
        raise ctx.unsupported(op, "pads the batch axis")
    if len(pads) == 4 and pads[3] == [0, 0]:
        return layers().ZeroPadding2D((tuple(pads[1]), tuple(pads[2])), name=name)(x)
    return tf.pad(x, pads)


def concatenation(ctx, op, name):
    """Concatenate for tensors only. With constant inputs (a baked image-sized tensor, say) each
    tensor is zero-padded to the full size along the axis and the constants are added in place:
    the same values, and the pad + add that imxconv-tf maps onto the chip as a constant input
    (a constant of batch 1 cannot be concatenated to a batch of frames in Keras)."""
    import numpy as np
    import tensorflow as tf
    parts = [ctx.value(op, i) for i in op.inputs]
    rank = len(ctx.shape(op.outputs[0]))
    axis = ctx.axis(op, op.options.axis, rank)
    if all(is_constant(p) for p in parts):
        raise ctx.unsupported(op, "has only constant inputs")
    if not any(is_constant(p) for p in parts):
        return layers().Concatenate(axis=axis, name=name)(parts)
    sizes = [ctx.shape(i)[axis] for i in op.inputs]
    offsets, total = np.cumsum([0] + sizes), sum(sizes)
    padded = []
    for part, offset, size in zip(parts, offsets, sizes):
        if not is_constant(part):
            pads = [[0, 0]] * rank
            pads[axis] = [int(offset), int(total - offset - size)]
            padded.append(tf.pad(part, pads))
    joined = padded[0] if len(padded) == 1 else layers().Add()(padded)
    constant = np.concatenate([p.astype(np.float32) if is_constant(p) else np.zeros(ctx.shape(i), np.float32)
                               for p, i in zip(parts, op.inputs)], axis=axis)
    return tf.math.add(joined, constant)


def resize(method):
    """Keras's Resizing is TF2's tf.image.resize: half_pixel_centers, no align_corners. A resize to
    the same size is the identity and one from a single pixel a copy (UpSampling2D), whatever the
    mode; the other TF1 modes (align_corners, or neither flag) have no Keras layer, and the TF1
    op on the Keras tensor keeps them exact (tf.compat.v1.image.resize)."""
    def build(ctx, op, name):
        import tensorflow as tf
        x, o = ctx.live(op, 0), op.options
        height, width = ctx.ints(op, 1)
        source = tuple(ctx.shape(op.inputs[0])[1:3])
        if source == (height, width):
            return layers().Activation("linear", name=name)(x)
        if source == (1, 1):
            return layers().UpSampling2D((height, width), interpolation="nearest", name=name)(x)
        if o.alignCorners or not o.halfPixelCenters:
            return tf.compat.v1.image.resize(x, (height, width), method=method, align_corners=o.alignCorners)
        return layers().Resizing(height, width, interpolation=method, name=name)(x)
    return build


BUILDERS = {
    "RESHAPE": reshape, "SQUEEZE": reshape, "TRANSPOSE": transpose, "STRIDED_SLICE": strided_slice,
    "SPLIT": split, "SPLIT_V": split, "GATHER": gather, "PACK": pack, "UNPACK": unpack, "PAD": pad,
    "CONCATENATION": concatenation, "RESIZE_BILINEAR": resize("bilinear"),
    "RESIZE_NEAREST_NEIGHBOR": resize("nearest"),
}
