"""The recipes: how each model input is made from a GazeCapture frame (RECIPES, with value
ranges), the face grid of a face box, and the cm scale of the gaze output.

Two stages, so that the expensive one can be cached: ``decode_crops`` decodes the JPEG and cuts
each image input at its final size as uint8 (what the crop cache stores); ``finish`` makes the
float inputs from those crops and the face grid, augmenting the images when training. The crop
step alone, on an image already decoded (a video or camera frame: `zoo predict`), is ``cut_crops``.

TensorFlow is imported inside the functions: `zoo data stats` must not pay for it, and callers
choose the Keras flavour (tf_keras for QAT) before TensorFlow is first imported.
"""
import numpy as np

from zoo.data.gazecapture import GRID_CELLS

# The networks end in tanh; gaze in cm = output * GAZE_SCALE_CM. GazeCapture's (XCam, YCam)
# stay within about +-25 cm of the camera even on a 12.9" iPad, so 30 cm keeps targets
# off tanh's flat tails.
GAZE_SCALE_CM = 30.0

# The recipes, with the value range of each input they make:
RECIPES = {
    "face": (-1.0, 1.0),            # RGB face crop (iTracker)
    "left_eye": (-1.0, 1.0),        # RGB crop of the subject's left eye (iTracker)
    "right_eye": (-1.0, 1.0),       # RGB crop of the subject's right eye (iTracker)
    "grid_mask": (0.0, 1.0),        # 25x25 face-grid mask, flattened (iTracker)
    "face_grid_rgb": (-1.0, 1.0),   # RGB face + x, y ramps over the face-grid box (TinyTracker)
    "face_grid_grey": (-1.0, 1.0),  # grey face + x, y ramps over the face-grid box (TinyTrackerS)
}

# image recipe -> (box it is cut from, channels stored)
IMAGE_RECIPES = {"face": ("face", 3), "left_eye": ("left_eye", 3), "right_eye": ("right_eye", 3),
                 "face_grid_rgb": ("face", 3), "face_grid_grey": ("face", 1)}
GRID_RECIPES = ("grid_mask",)
# channels of the finished input per recipe: the image plus two coordinate channels for face_grid_*
INPUT_CHANNELS = {"face": 3, "left_eye": 3, "right_eye": 3, "face_grid_rgb": 5, "face_grid_grey": 3}
# Augmentation (training only), as in the TinyTracker training code: contrast and noise for
# every image, saturation and hue for RGB.
CONTRAST = (0.8, 1.2)
SATURATION = (0.8, 1.2)
HUE_DELTA = 0.05
NOISE_STD = 0.02  # on the [0, 1] scale


def check_specs(specs):
    """Raises ValueError for a spec this module cannot make (unknown recipe, wrong shape)."""
    for spec in specs:
        if spec.recipe in GRID_RECIPES:
            if tuple(spec.shape) != (GRID_CELLS * GRID_CELLS,):
                raise ValueError(f"input {spec.name}: grid_mask must have shape ({GRID_CELLS ** 2},), "
                                 f"got {tuple(spec.shape)}")
        elif spec.recipe in IMAGE_RECIPES:
            if len(spec.shape) != 3 or spec.shape[2] != INPUT_CHANNELS[spec.recipe]:
                raise ValueError(f"input {spec.name}: recipe {spec.recipe} needs (height, width, "
                                 f"{INPUT_CHANNELS[spec.recipe]}), got {tuple(spec.shape)}")
        else:
            raise ValueError(f"input {spec.name}: unknown recipe {spec.recipe!r}")


def image_specs(specs):
    return [spec for spec in specs if spec.recipe in IMAGE_RECIPES]


def crop(image, box, size):
    """The (x, y, w, h) pixel box of ``image``, zeros where it leaves the frame (as the reference
    Python tool), resized to ``size`` with antialiased bilinear filtering; float32."""
    import tensorflow as tf
    x, y = box[0], box[1]
    w, h = tf.maximum(box[2], 1), tf.maximum(box[3], 1)
    shape = tf.shape(image)

    def span(start, length, limit):
        before = tf.clip_by_value(-start, 0, length)
        inside = tf.clip_by_value(tf.minimum(start + length, limit) - tf.maximum(start, 0), 0, length)
        return tf.clip_by_value(start, 0, limit), inside, before, length - before - inside

    x0, cols, left, right = span(x, w, shape[1])
    y0, rows, top, bottom = span(y, h, shape[0])
    padded = tf.pad(image[y0:y0 + rows, x0:x0 + cols], [[top, bottom], [left, right], [0, 0]])
    return tf.image.resize(padded, size, antialias=True)


def decode(path):
    """The RGB uint8 (height, width, 3) image of the JPEG file ``path``, decoded as training does."""
    import tensorflow as tf
    return tf.io.decode_jpeg(tf.io.read_file(path), channels=3)


def decode_crops(path, boxes, specs):
    """{input name: uint8 crop at its final size} for the image inputs of ``specs``; ``boxes``
    maps a box name (face, left_eye, right_eye) to its int32 (x, y, w, h)."""
    return cut_crops(decode(path), boxes, specs)


def cut_crops(image, boxes, specs):
    """decode_crops on an already-decoded RGB uint8 (height, width, 3) ``image`` (a tensor or an
    array), e.g. a camera frame: the one implementation of the crop step."""
    import tensorflow as tf
    image = tf.convert_to_tensor(image, tf.uint8)
    crops = {}
    for spec in image_specs(specs):
        box, channels = IMAGE_RECIPES[spec.recipe]
        pixels = crop(image, boxes[box], spec.shape[:2])
        if channels == 1:
            pixels = tf.image.rgb_to_grayscale(pixels)
        crops[spec.name] = tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
    return crops


def grid_mask(grid, cells=GRID_CELLS):
    """iTracker's face-grid input: 1 in the face's cells of the 25x25 grid, row-major, flattened.
    ``grid`` is 0-indexed (column, row, width, height)."""
    import tensorflow as tf
    index = tf.range(cells)
    cols = (index >= grid[0]) & (index < grid[0] + grid[2])
    rows = (index >= grid[1]) & (index < grid[1] + grid[3])
    return tf.reshape(tf.cast(rows[:, None] & cols[None, :], tf.float32), [cells * cells])


def grid_ramps(grid, height, width, cells=GRID_CELLS):
    """TinyTracker's coordinate channels (height, width, 2): x and y run linearly from the face
    box's left/top edge to its right/bottom edge on the grid, mapped from [0, 1] to [-1, 1]."""
    import tensorflow as tf
    grid = tf.cast(grid, tf.float32)
    across = (tf.range(width, dtype=tf.float32) + 0.5) / width
    down = (tf.range(height, dtype=tf.float32) + 0.5) / height
    x = (grid[0] + across * grid[2]) / cells * 2 - 1
    y = (grid[1] + down * grid[3]) / cells * 2 - 1
    return tf.stack([tf.broadcast_to(x[None, :], [height, width]),
                     tf.broadcast_to(y[:, None], [height, width])], axis=-1)


def _offset(seed, first, second):
    """A distinct stateless seed per input and per random operation."""
    import tensorflow as tf
    return seed + tf.constant([first, second], dtype=seed.dtype)


def augment(image, seed):
    """Random contrast, saturation and hue (RGB only) and Gaussian noise on a [0, 1] image;
    ``seed`` is a stateless (2,) seed, so a run is reproducible."""
    import tensorflow as tf
    image = tf.image.stateless_random_contrast(image, *CONTRAST, seed=_offset(seed, 0, 0))
    if image.shape[-1] == 3:
        image = tf.image.stateless_random_saturation(image, *SATURATION, seed=_offset(seed, 0, 1))
        image = tf.image.stateless_random_hue(image, HUE_DELTA, seed=_offset(seed, 0, 2))
    image += tf.random.stateless_normal(tf.shape(image), seed=_offset(seed, 0, 3), stddev=NOISE_STD)
    return tf.clip_by_value(image, 0.0, 1.0)


def finish(crops, grid, specs, seed=None):
    """{input name: float32 input}: images in [-1, 1], coordinate channels in [-1, 1], the grid
    mask in {0, 1}. ``seed`` (a stateless (2,) seed) turns augmentation on."""
    import tensorflow as tf
    inputs = {}
    for number, spec in enumerate(specs):
        if spec.recipe in GRID_RECIPES:
            inputs[spec.name] = grid_mask(grid)
            continue
        image = tf.cast(crops[spec.name], tf.float32) / 255.0
        if seed is not None:
            image = augment(image, _offset(seed, number, 0))
        image = image * 2 - 1
        if spec.recipe.startswith("face_grid_"):
            image = tf.concat([image, grid_ramps(grid, spec.shape[0], spec.shape[1])], axis=-1)
        inputs[spec.name] = image
    return inputs


def face_grid(box, frame_size):
    """GazeCapture's faceGrid of a face box (x, y, w, h pixels): cells of a 25x25 grid over the
    frame, X and Y 1-indexed."""
    x, y, w, h = box
    width, height = frame_size
    col0 = int(np.clip(np.floor(x / width * GRID_CELLS), 0, GRID_CELLS - 1))
    col1 = int(np.clip(np.ceil((x + w) / width * GRID_CELLS), col0 + 1, GRID_CELLS))
    row0 = int(np.clip(np.floor(y / height * GRID_CELLS), 0, GRID_CELLS - 1))
    row1 = int(np.clip(np.ceil((y + h) / height * GRID_CELLS), row0 + 1, GRID_CELLS))
    return col0 + 1, row0 + 1, col1 - col0, row1 - row0
