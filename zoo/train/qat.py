"""int8 for `zoo build`: the quantizer ranges of a tfmot quantization-aware model: calibrated before
fine-tuning, kept one range across replicas under tf.distribute, copied out of the strategy for
the converter.

TensorFlow and tfmot are imported only inside these functions, tfmot after `zoo build --qat` has
switched tf.keras to tf_keras (zoo.train.build's docstring says why), and no Keras class is defined at
import for the same reason.
"""
import numpy as np

from zoo.data import make_dataset

EMA_DECAY, EMA_START = 0.999, 6.0  # tfmot 0.8.1's MovingAverageQuantizer: fixed decay, [-6, 6] start
_WEIGHT_RANGES = ("kernel_", "depthwise_kernel_")  # LastValueQuantizer's: set from the weights, no EMA
MIN_RANGE = 1e-3  # floor on a calibrated range's width: a dead activation must not get scale 0


def _range_pairs(variables):
    """(index of v_min, index of v_max) of every quantizer range among ``variables``."""
    by_name = {v.name: i for i, v in enumerate(variables)}
    return [(i, by_name[v.name[:-len("_min:0")] + "_max:0"]) for i, v in enumerate(variables)
            if v.name.endswith("_min:0")]


def calibrate_ranges(qat_model, batch, passes=2):
    """Sets every moving-average range of a freshly quantized tfmot model to the activation range
    of ``batch`` (a dict of inputs), before fine-tuning; returns how many ranges it set.

    tfmot starts those ranges at [-6, 6] and moves them by an EMA with decay 0.999 per training
    step, so they need ~1,000 steps to forget the start (tfmot issue #368); the QAT stage takes a
    few hundred, and its int8 model inherited ranges that clipped or coarsened the activations
    of a converged float model. A training-mode call moves each such variable v to
    0.999 v + 0.001 r, r being the batch's range (which holds 0): reading v before and after
    gives r, which is assigned. The second pass repeats it with the upstream ranges already
    right, and from small values, so r is read precisely. The other quantizers' ranges keep what
    the calls set (the weights' ranges and the input's); the BatchNormalization statistics and
    step counters the calls moved are restored. Under a strategy, call it in its scope: every
    replica's copy is then set alike.
    """
    import tensorflow as tf
    variables = qat_model.non_trainable_variables
    saved = [v.numpy() for v in variables]
    pairs = _range_pairs(variables)
    ema_pairs = [(low, high) for low, high in pairs
                 if not variables[low].name.split("/")[-1].startswith(_WEIGHT_RANGES)
                 and np.all(saved[low] == -EMA_START) and np.all(saved[high] == EMA_START)]
    batch = {name: tf.constant(value) for name, value in batch.items()}
    for _ in range(passes):
        before = {i: variables[i].numpy().astype(np.float64) for pair in ema_pairs for i in pair}
        qat_model(batch, training=True)
        for low, high in ema_pairs:
            read = {i: (variables[i].numpy() - EMA_DECAY * before[i]) / (1 - EMA_DECAY) for i in (low, high)}
            lowest = np.minimum(read[low], 0.0)
            variables[low].assign(lowest.astype(np.float32))
            variables[high].assign(np.maximum(read[high], lowest + MIN_RANGE).astype(np.float32))
    ranges = {i for pair in pairs for i in pair}
    for i, (variable, value) in enumerate(zip(variables, saved)):
        if i not in ranges:
            variable.assign(value)
    return len(ema_pairs)


def range_union_callback(strategy):
    """A Keras callback that ends every epoch with each quantizer range of the model set to the
    union of its copies over all replicas (all workers too), before the epoch's backup and best
    weights are saved.

    Under a strategy tfmot keeps the moving-average ranges equal on every replica (the EMA update
    is averaged across them) and the weight ranges follow the mirrored weights, but the input
    quantizer (AllValuesQuantizer: the running min and max of everything seen) assigns in replica
    context a variable without aggregation, so each replica keeps the range of its own share of
    the data, and the converter would read replica 0's (BUILD_NOTES, "Distributed training"). The
    union is what one device would have seen; for ranges already equal it changes nothing.
    """
    import tensorflow as tf

    class RangeUnion(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            variables = self.model.non_trainable_variables
            pairs = _range_pairs(variables)
            ranges = [variables[low] for low, _ in pairs] + [variables[high] for _, high in pairs]

            def local():  # this replica's copies, flattened into one row
                return tf.concat([tf.reshape(v.read_value(), [-1]) for v in ranges], 0)[tf.newaxis]
            every = strategy.gather(strategy.run(local), axis=0)  # (replicas, values)
            lows = sum(variables[low].shape.num_elements() for low, _ in pairs)
            union = tf.concat([tf.reduce_min(every[:, :lows], 0), tf.reduce_max(every[:, lows:], 0)], 0)
            offset = 0
            for variable in ranges:
                size = variable.shape.num_elements()
                variable.assign(tf.reshape(union[offset:offset + size], variable.shape))
                offset += size
    return RangeUnion()


def plain_model(float_model, weights):
    """A QAT model of ``float_model`` with plain variables, holding ``weights`` (a QAT model's
    get_weights()): call it outside any strategy's scope, so that the converter reads one copy of
    each variable. Read ``weights`` in the scope, on every worker: reading the synchronized-on-read
    variables (the BatchNormalization statistics) there is a collective all must join, while
    only the chief converts."""
    import tensorflow_model_optimization as tfmot
    plain = tfmot.quantization.keras.quantize_model(float_model)
    plain.set_weights(weights)
    return plain


def representative_dataset(root, specs, limit, seed):
    """Frames of the training split, one at a time, as dicts keyed by input name."""
    dataset = make_dataset(root, specs, "train", 1, shuffle=True, seed=seed, limit=limit)

    def frames():
        for inputs, _ in dataset:
            yield {name: value.numpy() for name, value in inputs.items()}
    return frames
