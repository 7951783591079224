"""TinyTracker (Bonazzi et al., IEEE SENSORS 2023): MobileNetV3-Small minimalistic on a face
crop whose face-grid box rides along as two coordinate channels."""
import tensorflow as tf

# keras.applications' MobileNetV3 uses BatchNormalization momentum 0.999: its moving statistics
# need thousands of steps to settle, far more than a build on a few thousand frames takes, and an
# unsettled network answers a constant at inference. 0.9 settles within tens of steps.
BN_MOMENTUM = 0.9


def tinytracker(input_size=112, alpha=1.0, weights=None):
    """Builds TinyTracker.

    Input: ``face`` (input_size, input_size, 5): RGB in [-1, 1] plus x and y ramps across the
    face-grid box. A 1x1 conv maps the five channels to three for the backbone; ``weights`` is
    a local file of backbone weights (nothing can be downloaded).
    """
    layers = tf.keras.layers
    face = tf.keras.Input((input_size, input_size, 5), name="face")
    x = layers.Conv2D(3, 1, name="channel_mix")(face)
    # input_tensor keeps the backbone's layers in this graph: tfmot cannot quantize nested models.
    x = tf.keras.applications.MobileNetV3Small(
        input_shape=(input_size, input_size, 3), input_tensor=x, alpha=alpha, minimalistic=True,
        include_top=False, include_preprocessing=False, weights=weights).output
    x = layers.Conv2D(2, 1, name="squeeze")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    gaze = layers.Dense(2, activation="tanh", name="gaze")(x)
    model = tf.keras.Model(face, gaze, name="tinytracker")
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model
