"""The GazeCapture reader and the tf.data pipeline, on a tiny rendered dataset read back."""
import json
import logging
import shutil

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo import data
from zoo.data import recipes as inputs
from zoo.errors import UsageError
from zoo.models.registry import InputSpec

VALIDITY = ("appleFace", "appleLeftEye", "appleRightEye", "faceGrid")
ITRACKER_SMALL = [InputSpec("face", "face", (48, 48, 3)), InputSpec("left_eye", "left_eye", (32, 32, 3)),
                  InputSpec("right_eye", "right_eye", (32, 32, 3)),
                  InputSpec("face_grid", "grid_mask", (625,))]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "gc"
    data.render_dataset(out, subjects=5, frames=12, seed=7, progress=False)
    return out


def _json(folder, name):
    return json.loads((folder / f"{name}.json").read_text())


def _expected_frames(root, split):
    """What the renderer wrote, read with plain json: the valid frames of ``split`` in order."""
    frames = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        info = _json(folder, "info")
        if info["Dataset"] != split:
            continue
        documents = {n: _json(folder, n) for n in ("appleFace", "appleLeftEye", "appleRightEye",
                                                   "faceGrid", "dotInfo", "frames", "screen")}
        for i, name in enumerate(documents["frames"]):
            if all(documents[n]["IsValid"][i] for n in VALIDITY):
                frames.append({"path": folder / "frames" / name, "tablet": "iPad" in info["DeviceName"],
                               **{n: {k: v[i] for k, v in documents[n].items()} for n in documents
                                  if n != "frames"}})
    return frames


def _batches(dataset):
    """All batches of a dataset concatenated: {input: array}, labels[, meta]."""
    parts = list(dataset.as_numpy_iterator())
    joined = []
    for position in range(len(parts[0])):
        first = parts[0][position]
        if isinstance(first, dict):
            joined.append({k: np.concatenate([p[position][k] for p in parts]) for k in first})
        else:
            joined.append(np.concatenate([p[position] for p in parts]))
    return joined


def test_index_counts_splits_and_devices_match_what_was_rendered(root):
    index = data.open_gazecapture(root, progress=False)
    expected = {split: _expected_frames(root, split) for split in ("train", "val", "test")}
    assert index.split_counts() == {split: len(frames) for split, frames in expected.items()}
    stats = index.stats()
    assert stats["recordings"] == 5 and stats["frames"] == 60
    assert stats["valid_frames"] == sum(index.split_counts().values())
    tablet_frames = sum(f["tablet"] for frames in expected.values() for f in frames)
    assert stats["devices"]["tablet"]["valid_frames"] == tablet_frames
    assert not any(index.skipped.values())
    text = data.format_stats(stats)
    assert "valid frames" in text and "tablet" in text and "skipped: nothing" in text

    train = expected["train"]
    labels = np.array([[f["dotInfo"]["XCam"], f["dotInfo"]["YCam"]] for f in train])
    np.testing.assert_allclose(data.training_mean(root), labels.mean(0), rtol=1e-5)


def test_labels_meta_and_value_ranges(root):
    model = zoo.create_model("tinytracker_s")
    specs = zoo.input_specs("tinytracker_s", model)
    expected = _expected_frames(root, "train")
    batch_inputs, labels, meta = _batches(data.make_dataset(root, specs, "train", 8, with_meta=True))
    face = batch_inputs["face"]
    assert face.dtype == np.float32 and face.shape == (len(expected), 96, 96, 3)
    assert face.min() >= -1 and face.max() <= 1 and face[..., 0].std() > 0.1
    assert labels.dtype == np.float32 and labels.shape == (len(expected), 2)
    want = [[f["dotInfo"]["XCam"], f["dotInfo"]["YCam"]] for f in expected]
    np.testing.assert_allclose(labels, want, atol=1e-4)
    np.testing.assert_array_equal(meta["is_tablet"], [f["tablet"] for f in expected])


def test_face_grid_is_one_indexed_without_the_reference_off_by_one(root):
    expected = _expected_frames(root, "train")
    specs = ITRACKER_SMALL[-1:] + [InputSpec("face", "face_grid_rgb", (20, 25, 5))]
    batch_inputs, _ = _batches(data.make_dataset(root, specs, "train", 16))
    for frame, mask, ramps in zip(expected, batch_inputs["face_grid"], batch_inputs["face"][..., 3:]):
        width, height = Image.open(frame["path"]).size
        box = frame["appleFace"]
        # cells the face box covers, from the face box in pixels
        cols = np.arange(int(box["X"] / width * 25), int(np.ceil((box["X"] + box["W"]) / width * 25)))
        rows = np.arange(int(box["Y"] / height * 25), int(np.ceil((box["Y"] + box["H"]) / height * 25)))
        cols, rows = cols[(cols >= 0) & (cols < 25)], rows[(rows >= 0) & (rows < 25)]
        want = np.zeros((25, 25))
        want[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = 1
        np.testing.assert_array_equal(mask.reshape(25, 25), want)
        # the coordinate ramps run over the same cells, left/top edge to right/bottom edge
        x_edges = (np.array([cols[0], cols[-1] + 1]) / 25) * 2 - 1
        y_edges = (np.array([rows[0], rows[-1] + 1]) / 25) * 2 - 1
        assert ramps[0, 0, 0] > x_edges[0] and ramps[0, -1, 0] < x_edges[1]
        assert ramps[0, 0, 1] > y_edges[0] and ramps[-1, 0, 1] < y_edges[1]
        assert ramps[0, 0, 0] - x_edges[0] < 2 / 25 and x_edges[1] - ramps[0, -1, 0] < 2 / 25
        np.testing.assert_allclose(ramps[:, 0, 0], ramps[0, 0, 0])  # x constant down a column


def _reference_crop(image, box, size):
    """The reference tool's crop in numpy (zero fill outside), resized with Pillow."""
    x, y, w, h = (int(v) for v in box)
    out = np.zeros((h, w, 3), np.uint8)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, image.shape[1]), min(y + h, image.shape[0])
    out[y0 - y:y1 - y, x0 - x:x1 - x] = image[y0:y1, x0:x1]
    return np.asarray(Image.fromarray(out).resize(size, Image.BILINEAR), np.float32)


def test_face_and_eye_crops_follow_the_boxes_eyes_relative_to_the_face(root):
    expected = _expected_frames(root, "train")
    batch_inputs, _ = _batches(data.make_dataset(root, ITRACKER_SMALL, "train", 16))
    for i, frame in enumerate(expected):
        image = np.asarray(Image.open(frame["path"]).convert("RGB"))
        face = frame["appleFace"]
        face_box = [face[k] for k in "XYWH"]
        got = (batch_inputs["face"][i] + 1) * 127.5
        assert np.abs(got - _reference_crop(image, face_box, (48, 48))).mean() < 6
        for name, key in (("left_eye", "appleLeftEye"), ("right_eye", "appleRightEye")):
            eye = frame[key]
            absolute = [int(eye["X"]) + int(face["X"]), int(eye["Y"]) + int(face["Y"]), eye["W"], eye["H"]]
            got = (batch_inputs[name][i] + 1) * 127.5
            assert np.abs(got - _reference_crop(image, absolute, (32, 32))).mean() < 6
            # read as if the eye box were in frame coordinates, the crop would be elsewhere
            wrong = [eye["X"], eye["Y"], eye["W"], eye["H"]]
            assert np.abs(got - _reference_crop(image, wrong, (32, 32))).mean() > 20
        # the subject's left eye is on the image's right
        assert frame["appleLeftEye"]["X"] > frame["appleRightEye"]["X"]


def test_crop_fills_outside_the_frame_with_zeros():
    import tensorflow as tf
    image = tf.reshape(tf.range(1, 4 * 6 * 3 + 1, dtype=tf.float32), (4, 6, 3))
    crop = inputs.crop(image, tf.constant([-2, 1, 5, 4]), (4, 5)).numpy()
    np.testing.assert_array_equal(crop[:, :2], 0)  # left of the frame
    np.testing.assert_array_equal(crop[3:], 0)  # below the frame
    np.testing.assert_array_equal(crop[:3, 2:], image.numpy()[1:4, 0:3])
    assert not inputs.crop(image, tf.constant([10, 10, 3, 3]), (3, 3)).numpy().any()


def test_augmentation_changes_images_not_labels_and_is_reproducible(root):
    specs = [InputSpec("face", "face_grid_rgb", (24, 24, 5))]
    plain, labels = _batches(data.make_dataset(root, specs, "val", 4))
    once, once_labels = _batches(data.make_dataset(root, specs, "val", 4, augment=True, seed=1))
    again, _ = _batches(data.make_dataset(root, specs, "val", 4, augment=True, seed=1))
    np.testing.assert_array_equal(labels, once_labels)
    np.testing.assert_array_equal(once["face"], again["face"])
    assert np.abs(once["face"][..., :3] - plain["face"][..., :3]).mean() > 0.01
    np.testing.assert_array_equal(once["face"][..., 3:], plain["face"][..., 3:])  # grid untouched
    assert once["face"].min() >= -1 and once["face"].max() <= 1


def test_shuffle_and_limit(root):
    specs = [InputSpec("face", "face_grid_grey", (16, 16, 3))]
    _, labels = _batches(data.make_dataset(root, specs, "train", 5))
    _, shuffled = _batches(data.make_dataset(root, specs, "train", 5, shuffle=True, seed=2))
    _, limited = _batches(data.make_dataset(root, specs, "train", 5, limit=7))
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, labels)) and not np.array_equal(shuffled, labels)
    assert len(limited) == 7 and {tuple(x) for x in limited} <= {tuple(x) for x in labels}


def test_disk_cache_serves_later_epochs_without_the_jpegs(root, tmp_path):
    copy = tmp_path / "gc"
    shutil.copytree(root, copy)
    index = data.open_gazecapture(copy, progress=False)
    cache = tmp_path / "cache"
    first = _batches(data.make_dataset(index, ITRACKER_SMALL, "train", 8, cache_dir=cache, progress=False))
    assert list(cache.glob("crops-train-*/*.tfrecord"))
    for jpeg in copy.glob("*/frames/*.jpg"):
        jpeg.unlink()
    second = _batches(data.make_dataset(index, ITRACKER_SMALL, "train", 8, cache_dir=cache, progress=False))
    uncached = _batches(data.make_dataset(root, ITRACKER_SMALL, "train", 8))
    for name in first[0]:
        np.testing.assert_array_equal(first[0][name], second[0][name])
        np.testing.assert_array_equal(first[0][name], uncached[0][name])
    np.testing.assert_array_equal(first[1], uncached[1])


def _valid_frame_names(folder):
    names = _json(folder, "frames")
    valid = [all(_json(folder, n)["IsValid"][i] for n in VALIDITY)
             for i in range(len(names))]
    return [n for n, ok in zip(names, valid) if ok]


def test_broken_recordings_are_skipped_counted_and_reported_once(root, tmp_path, caplog):
    broken = tmp_path / "gc"
    shutil.copytree(root, broken)
    folders = sorted(p for p in broken.iterdir() if p.is_dir())
    good = folders[0]

    def clone(number):
        target = broken / f"{number:05d}"
        shutil.copytree(good, target)
        return target
    (clone(90) / "appleFace.json").unlink()  # missing JSON
    (clone(91) / "dotInfo.json").write_text('{"XCam": [1, 2,')  # malformed JSON
    short = clone(92)
    dots = _json(short, "dotInfo")
    dots["XCam"] = dots["XCam"][:-1]
    (short / "dotInfo.json").write_text(json.dumps(dots))  # arrays of different lengths
    (broken / "00093").mkdir()  # empty folder
    frames = clone(94)
    names = _valid_frame_names(frames)
    (frames / "frames" / names[0]).unlink()  # missing JPEG
    jpeg = (frames / "frames" / names[1]).read_bytes()
    (frames / "frames" / names[1]).write_bytes(jpeg[:len(jpeg) // 2])  # truncated JPEG
    (frames / "frames" / names[2]).write_bytes(b"not a jpeg at all")  # foreign file
    # passes the marker check, fails to decode: dropped inside tf.data without ending the epoch
    (frames / "frames" / names[3]).write_bytes(b"\xff\xd8\xff" + bytes(200) + b"\xff\xd9")

    with caplog.at_level(logging.WARNING, logger="zoo.data"):
        index = data.open_gazecapture(broken, progress=False)
    assert index.skipped == {"empty_recording": 1, "missing_json": 1, "malformed_json": 1,
                             "length_mismatch": 1, "bad_box": 0, "missing_jpeg": 1, "corrupt_jpeg": 2}
    reports = [r.getMessage() for r in caplog.records]
    assert len(reports) == 6  # one per kind seen, naming recording and frame
    assert any(f"00094/frames/{names[1]}" in r for r in reports)
    assert any("00092/" in r for r in reports)
    assert index.stats()["recordings"] == len(folders) + 1
    assert "1 recordings (missing JSON file)" in data.format_stats(index.stats())

    split = _json(frames, "info")["Dataset"]
    count = index.split_counts()[split]
    specs = [InputSpec("face", "face_grid_grey", (16, 16, 3))]
    _, labels = _batches(data.make_dataset(index, specs, split, 8))
    assert len(labels) == count - 1


@pytest.mark.parametrize("make, why", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "it is a file"),
    (lambda p: p, "it holds no recording folders"),
])
def test_a_path_that_is_not_a_root_gets_one_clear_error(tmp_path, make, why):
    with pytest.raises(UsageError, match=f"is not a GazeCapture root: {why}"):
        data.open_gazecapture(make(tmp_path), progress=False)


def test_one_recording_instead_of_the_root_is_named(root):
    recording = next(p for p in root.iterdir() if p.is_dir())
    with pytest.raises(UsageError, match="looks like one recording"):
        data.open_gazecapture(recording, progress=False)
