"""iTracker (Krafka et al., CVPR 2016): face, two eyes and a 25x25 face-grid mask.

Two departures from the Caffe original, both so that every layer quantizes to int8:
- LRN is left out. It has no int8 kernel in TFLite, tfmot or the sensor target's quantizer, and its
  usual stand-in, BatchNormalization, cannot be folded by tfmot into the weight-shared eye tower (tfmot folds
  Conv+BN only in a layer called once, and refuses a BN it cannot fold).
- CONV2's "group 2" is a Conv2D with ``groups=2`` (same weights, same parameter count).
Caffe's explicit padding of CONV2 (2) and CONV3 (1) is "same" padding at stride 1.
"""
import tensorflow as tf


def _conv_tower(prefix):
    """CONV1-CONV4 as a list of layers; calling the same list twice shares the weights.

    A plain list, not a nested Model: tfmot cannot quantize a model inside a model."""
    layers = tf.keras.layers
    return [
        layers.Conv2D(96, 11, strides=4, activation="relu", name=f"{prefix}_conv1"),
        layers.MaxPooling2D(3, strides=2, name=f"{prefix}_pool1"),
        layers.Conv2D(256, 5, padding="same", groups=2, activation="relu", name=f"{prefix}_conv2"),
        layers.MaxPooling2D(3, strides=2, name=f"{prefix}_pool2"),
        layers.Conv2D(384, 3, padding="same", activation="relu", name=f"{prefix}_conv3"),
        layers.Conv2D(64, 1, activation="relu", name=f"{prefix}_conv4"),
    ]


def _apply(tower, x):
    for layer in tower:
        x = layer(x)
    return x


def itracker(input_size=224, grid_size=25):
    """Builds iTracker; outputs (XCam, YCam) scaled to [-1, 1] (see zoo.models.registry.GAZE_RANGE_CM)."""
    layers = tf.keras.layers
    face = tf.keras.Input((input_size, input_size, 3), name="face")
    left_eye = tf.keras.Input((input_size, input_size, 3), name="left_eye")
    right_eye = tf.keras.Input((input_size, input_size, 3), name="right_eye")
    grid = tf.keras.Input((grid_size * grid_size,), name="face_grid")

    eye_tower = _conv_tower("eye")
    eyes = layers.Concatenate(name="eyes")([layers.Flatten()(_apply(eye_tower, left_eye)),
                                            layers.Flatten()(_apply(eye_tower, right_eye))])
    eyes = layers.Dense(128, activation="relu", name="fc_e1")(eyes)

    face_features = layers.Flatten()(_apply(_conv_tower("face"), face))
    face_features = layers.Dense(128, activation="relu", name="fc_f1")(face_features)
    face_features = layers.Dense(64, activation="relu", name="fc_f2")(face_features)

    grid_features = layers.Dense(256, activation="relu", name="fc_fg1")(grid)
    grid_features = layers.Dense(128, activation="relu", name="fc_fg2")(grid_features)

    x = layers.Concatenate(name="features")([eyes, face_features, grid_features])
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    gaze = layers.Dense(2, activation="tanh", name="gaze")(x)
    return tf.keras.Model([face, left_eye, right_eye, grid], gaze, name="itracker")
