"""TinyTrackerS: the ~86k-parameter greyscale TinyTracker for microcontroller-class chips."""
import tensorflow as tf

# (expansion, output channels, repeats, first stride) after the 8-channel stem.
STAGES = ((1, 8, 1, 1), (6, 16, 1, 2), (6, 24, 1, 2), (4, 32, 3, 2), (4, 64, 1, 2), (2, 128, 1, 1))


def _inverted_residual(x, expansion, channels, stride, name):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, residual if shapes match."""
    layers = tf.keras.layers
    inputs = x
    in_channels = x.shape[-1]
    if expansion != 1:
        x = layers.Conv2D(in_channels * expansion, 1, use_bias=False, name=f"{name}_expand")(x)
        x = layers.BatchNormalization(name=f"{name}_expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_expand_relu")(x)
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_project")(x)
    x = layers.BatchNormalization(name=f"{name}_project_bn")(x)
    if stride == 1 and in_channels == channels:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def tinytracker_s(input_size=96):
    """Builds TinyTrackerS.

    Input: ``face`` (input_size, input_size, 3): grey face in [-1, 1] plus x and y ramps across
    the face-grid box.
    """
    layers = tf.keras.layers
    face = tf.keras.Input((input_size, input_size, 3), name="face")
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(face)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for stage, (expansion, channels, repeats, stride) in enumerate(STAGES):
        for block in range(repeats):
            x = _inverted_residual(x, expansion, channels, stride if block == 0 else 1,
                                   name=f"stage{stage}_block{block}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(64, activation="relu", name="fc1")(x)
    gaze = layers.Dense(2, activation="tanh", name="gaze")(x)
    return tf.keras.Model(face, gaze, name="tinytracker_s")
