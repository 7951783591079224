"""The tf.data pipeline: GazeCapture frames -> batches of model inputs and (XCam, YCam) labels.

Stage one decodes the JPEGs in parallel and cuts every image input as uint8 at its final size;
stage two (cheap) makes the float inputs and augments them. Stage one is cached so that only the
first epoch decodes: in memory when the crops fit in ``MEMORY_CACHE_BYTES``, on disk as TFRecord
shards when ``cache_dir`` is given (written once, with a progress line, then reused). Without a
cache (full GazeCapture) the pipeline streams.
"""
import hashlib
import json
import logging
import pathlib

import numpy as np

from zoo import artifacts
from zoo.data import recipes
from zoo.data.gazecapture import load_index
from zoo.data.progress import Progress
from zoo.errors import UsageError

PIPELINE_VERSION = 1  # part of the disk cache's key: bump when the crops change
MEMORY_CACHE_BYTES = 1 << 30
SHUFFLE_BUFFER_BYTES = 256 << 20
SHARD_FRAMES = 1024
CACHE_TOOL = artifacts.Tool("zoo.data.pipeline", "cache")  # what writes the crop cache

log = logging.getLogger("zoo.data")


def _crop_bytes(specs):
    return sum(int(np.prod(s.shape[:2])) * recipes.IMAGE_RECIPES[s.recipe][1]
               for s in recipes.image_specs(specs))


def _frame_table(frames):
    import tensorflow as tf
    return tf.data.Dataset.from_tensor_slices({
        "path": frames.paths.astype(str), "face": frames.face, "left_eye": frames.left_eye,
        "right_eye": frames.right_eye, "grid": frames.grid, "label": frames.label,
        "is_tablet": frames.is_tablet})


def _decoded(table, specs, deterministic=True):
    """Stage one: frames -> {crops, grid, label, is_tablet}. A frame that fails to decode
    (corruption the index's marker check cannot see) is dropped with a logged warning."""
    import tensorflow as tf

    def decode(frame):
        boxes = {name: frame[name] for name in ("face", "left_eye", "right_eye")}
        return {"crops": recipes.decode_crops(frame["path"], boxes, specs), "grid": frame["grid"],
                "label": frame["label"], "is_tablet": frame["is_tablet"]}
    return (table.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
            .ignore_errors(log_warning=True))


def _cache_key(frames, specs, split):
    described = [(s.name, s.recipe, list(s.shape)) for s in specs]
    digest = hashlib.sha256(json.dumps([PIPELINE_VERSION, split, described]).encode())
    digest.update("\n".join(frames.paths).encode())
    for column in (frames.face, frames.left_eye, frames.right_eye, frames.grid, frames.label):
        digest.update(np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()[:16]


def _shard_cache(frames, specs, split, cache_dir, progress, root):
    """The TFRecord shards of stage one's output, written on first use (to a temp folder renamed
    when complete) under ``cache_dir``; later calls with the same frames and specs reuse them.
    UsageError when not one frame decodes (training on nothing would fail obscurely later)."""
    import tensorflow as tf
    folder = pathlib.Path(cache_dir) / f"crops-{split}-{_cache_key(frames, specs, split)}"
    if not folder.is_dir():
        with artifacts.staged(folder, CACHE_TOOL) as work:  # over another process's, if it was first
            written = _write_shards(_decoded(_frame_table(frames), specs), work, specs,
                                    Progress(f"caching decoded {split} crops", len(frames), enabled=progress))
            if not written:
                raise UsageError(f"none of the {len(frames)} {split} frames of {root} decodes as a JPEG; "
                                 f"see `zoo data stats {root}`")
            if written < len(frames):
                log.warning("%d of %d %s frames could not be decoded and were skipped",
                            len(frames) - written, len(frames), split)
    names = [s.name for s in recipes.image_specs(specs)]
    features = {name: tf.io.FixedLenFeature([], tf.string) for name in names}
    features.update(grid=tf.io.FixedLenFeature([4], tf.int64), label=tf.io.FixedLenFeature([2], tf.float32),
                    is_tablet=tf.io.FixedLenFeature([], tf.int64))
    shapes = {s.name: (*s.shape[:2], recipes.IMAGE_RECIPES[s.recipe][1]) for s in recipes.image_specs(specs)}

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        return {"crops": {n: tf.reshape(tf.io.decode_raw(example[n], tf.uint8), shapes[n]) for n in names},
                "grid": tf.cast(example["grid"], tf.int32), "label": example["label"],
                "is_tablet": tf.cast(example["is_tablet"], tf.bool)}
    shards = sorted(str(p) for p in folder.glob("*.tfrecord"))
    return tf.data.TFRecordDataset(shards).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def _write_shards(decoded, folder, specs, bar):
    import tensorflow as tf
    feature = tf.train.Feature
    written = 0
    writer = None
    for element in decoded.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        if written % SHARD_FRAMES == 0:
            if writer:
                writer.close()
            writer = tf.io.TFRecordWriter(str(folder / f"{written // SHARD_FRAMES:05d}.tfrecord"))
        values = {name: feature(bytes_list=tf.train.BytesList(value=[crop.tobytes()]))
                  for name, crop in element["crops"].items()}
        values.update(grid=feature(int64_list=tf.train.Int64List(value=element["grid"])),
                      label=feature(float_list=tf.train.FloatList(value=element["label"])),
                      is_tablet=feature(int64_list=tf.train.Int64List(value=[int(element["is_tablet"])])))
        writer.write(tf.train.Example(features=tf.train.Features(feature=values)).SerializeToString())
        written += 1
        bar.update(written, "frames decoded")
    if writer:
        writer.close()
    bar.close("frames decoded")
    return written


def make_dataset(root, specs, split, batch_size, *, augment=False, shuffle=False, seed=0, with_meta=False,
                 cache_dir=None, limit=None, progress=True):
    """Batches of ``(inputs, labels)`` (or ``(inputs, labels, meta)`` with ``with_meta``) for the
    model inputs ``specs`` (zoo.input_specs) from ``split`` of the GazeCapture ``root`` (a path or
    an index). inputs: {name: float32 (B, ...)}; labels: (XCam, YCam) cm, float32 (B, 2);
    meta: {"is_tablet": bool (B,)}. ``limit`` keeps that many frames, spread over the split."""
    import tensorflow as tf
    specs = list(specs)
    recipes.check_specs(specs)
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    index = load_index(root)
    frames = index.select(split, limit)
    if not len(frames):
        raise UsageError(f"{index.root} has no valid frames in the {split} split")
    frame_bytes = max(_crop_bytes(specs), 1)
    if cache_dir is not None:
        dataset = _shard_cache(frames, specs, split, cache_dir, progress, index.root)
    elif len(frames) * frame_bytes <= MEMORY_CACHE_BYTES:
        dataset = _decoded(_frame_table(frames), specs).cache()
    else:  # streams: shuffle the (small) frame table, not the decoded crops
        table = _frame_table(frames)
        if shuffle:
            table = table.shuffle(len(frames), seed=seed, reshuffle_each_iteration=True)
        dataset = _decoded(table, specs, deterministic=not shuffle)
        shuffle = False
    if shuffle:
        buffer = int(min(len(frames), max(1024, SHUFFLE_BUFFER_BYTES // frame_bytes)))
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    def to_inputs(element, random=None):
        seed_pair = None if random is None else tf.stack([random, tf.constant(seed, tf.int64)])
        outputs = (recipes.finish(element["crops"], element["grid"], specs, seed_pair), element["label"])
        return outputs + ({"is_tablet": element["is_tablet"]},) if with_meta else outputs

    if augment:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, randoms))
    dataset = dataset.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
