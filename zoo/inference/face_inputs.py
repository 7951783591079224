"""A face's model inputs at prediction time, in numpy: the training recipes of zoo.data.recipes
(``cut_crops``, then ``finish`` without augmentation) step for step, without a TensorFlow call per
face (`zoo predict` runs at camera rate; BUILD_NOTES, "Face detection", has the cost of each).

- The crop: the (x, y, w, h) box of the RGB frame, zeros where it leaves the frame, resized with
  TensorFlow's antialiased bilinear filter (tf.image.resize(antialias=True), whose kernel is
  ScaleAndTranslate's triangle, widened by the downscale factor, weights normalised per output
  pixel), written here as one weight matrix per axis: rows first, then columns, as the kernel
  does. Recipes that take the same box at the same size (face, face_grid_rgb, face_grid_grey)
  share one resize.
- Rounding to uint8 (half to even, as tf.round), grey by tf.image.rgb_to_grayscale's weights.
- The float inputs: images in [-1, 1], face_grid_* with their two coordinate channels, the
  25x25 grid mask.

tests/test_predict.py feeds a rendered test frame through this and through the training pipeline
and compares the two.
"""
import functools
import typing

import numpy as np

from zoo.data.gazecapture import GRID_CELLS
from zoo.data.recipes import GRID_RECIPES, IMAGE_RECIPES

GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)  # tf.image.rgb_to_grayscale's


@functools.lru_cache(maxsize=512)
def resize_taps(size_in: int, size_out: int) -> tuple:
    """(source index, weight), each (size_out, taps), of TensorFlow's antialiased triangle
    filter from ``size_in`` samples to ``size_out``: ScaleAndTranslate's spans, without the taps
    of weight 0 where every output can do without them."""
    inverse = size_in / size_out
    radius = max(inverse, 1.0)
    taps = min(2 * int(np.ceil(radius)) + 1, size_in)
    sample = (np.arange(size_out) + 0.5) * inverse
    start = np.clip(np.ceil(sample - radius - 0.5), 0, size_in - 1).astype(np.int64)
    index = start[:, None] + np.arange(taps)
    weights = np.clip(1 - np.abs(index + 0.5 - sample[:, None]) / radius, 0, None) * (index < size_in)
    weights /= weights.sum(axis=1, keepdims=True)
    order = np.argsort(weights == 0, axis=1, kind="stable")  # each row's zero-weight taps last ...
    index, weights = np.take_along_axis(index, order, 1), np.take_along_axis(weights, order, 1)
    used = weights.any(axis=0)  # ... and the taps no row uses dropped
    return np.minimum(index[:, used], size_in - 1), weights[:, used].astype(np.float32)


def _taps(start, size, size_out, limit):
    """resize_taps for a box side from ``start`` in a frame side of ``limit`` pixels: the frame
    indices, with weight 0 on those outside the frame (the zeros the box is padded with)."""
    index, weights = resize_taps(size, size_out)
    index = index + start
    outside = (index < 0) | (index >= limit)
    return np.clip(index, 0, limit - 1), np.where(outside, np.float32(0), weights)


def crop(rgb: np.ndarray, box: tuple, size: tuple) -> np.ndarray:
    """``rgb``'s (x, y, w, h) pixel box, zeros outside the frame, resized to ``size`` (height,
    width): float32 (height, width, 3), as zoo.data.recipes.crop. Rows first, then columns, each
    output pixel the weighted sum of its few taps (one vectorised step per tap)."""
    rows, row_weights = _taps(int(box[1]), max(int(box[3]), 1), size[0], rgb.shape[0])
    cols, col_weights = _taps(int(box[0]), max(int(box[2]), 1), size[1], rgb.shape[1])
    first = cols.min()
    band = rgb[:, first:cols.max() + 1]
    tall = sum(row_weights[:, k, None, None] * band[rows[:, k]] for k in range(rows.shape[1]))
    wide = np.ascontiguousarray(tall.transpose(1, 0, 2))  # columns first: the gathers take whole rows
    cols = cols - first
    out = sum(col_weights[:, k, None, None] * wide[cols[:, k]] for k in range(cols.shape[1]))
    return out.transpose(1, 0, 2)


def grid_mask(grid: tuple, cells: int = GRID_CELLS) -> np.ndarray:
    """zoo.data.recipes.grid_mask: 1 in the face's cells, row-major, flat; ``grid`` 0-indexed."""
    index = np.arange(cells)
    cols = (index >= grid[0]) & (index < grid[0] + grid[2])
    rows = (index >= grid[1]) & (index < grid[1] + grid[3])
    return (rows[:, None] & cols[None, :]).astype(np.float32).reshape(-1)


def grid_ramps(grid: tuple, height: int, width: int, cells: int = GRID_CELLS) -> np.ndarray:
    """zoo.data.recipes.grid_ramps: the face box's x and y across the frame, in [-1, 1]."""
    grid = np.asarray(grid, np.float32)
    across = (np.arange(width, dtype=np.float32) + 0.5) / width
    down = (np.arange(height, dtype=np.float32) + 0.5) / height
    x = (grid[0] + across * grid[2]) / cells * 2 - 1
    y = (grid[1] + down * grid[3]) / cells * 2 - 1
    return np.stack([np.broadcast_to(x[None, :], (height, width)),
                     np.broadcast_to(y[:, None], (height, width))], axis=-1)


def make_inputs(specs: list) -> typing.Callable:
    """(RGB uint8 frame, {box name: (x, y, w, h)}, 0-indexed grid) -> {input name: float32
    (1, ...)}: the inputs the training pipeline makes for ``specs``."""
    def inputs(rgb, boxes, grid):
        resized, made = {}, {}
        for spec in specs:
            if spec.recipe in GRID_RECIPES:
                made[spec.name] = grid_mask(grid)[None]
                continue
            box, channels = IMAGE_RECIPES[spec.recipe]
            key = (box, tuple(spec.shape[:2]))
            if key not in resized:
                resized[key] = crop(rgb, boxes[box], key[1])
            pixels = resized[key] if channels == 3 else resized[key] @ GREY_WEIGHTS[:, None]
            image = np.round(pixels)  # weights >= 0 summing to 1 at most: already in [0, 255]
            image *= np.float32(2 / 255)
            image -= 1
            if spec.recipe.startswith("face_grid_"):
                image = np.concatenate([image, grid_ramps(grid, *spec.shape[:2])], axis=-1)
            made[spec.name] = image[None]
        return made
    return inputs
