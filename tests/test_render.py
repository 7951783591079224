"""The rendered dataset: exact GazeCapture layout, determinism, the eye model, the default data."""
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from zoo.data import render
from zoo.data.render import painter as face
from zoo.errors import UsageError

JSON_FIELDS = {
    "appleFace": {"X", "Y", "W", "H", "IsValid"}, "appleLeftEye": {"X", "Y", "W", "H", "IsValid"},
    "appleRightEye": {"X", "Y", "W", "H", "IsValid"}, "faceGrid": {"X", "Y", "W", "H", "IsValid"},
    "dotInfo": {"DotNum", "XPts", "YPts", "XCam", "YCam", "Time"}, "screen": {"H", "W", "Orientation"},
    "info": {"TotalFrames", "NumFaceDetections", "NumEyeDetections", "Dataset", "DeviceName"},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "gc"
    stats = render.render_dataset(out, subjects=6, frames=10, seed=3, progress=False)
    return out, stats


def _load(folder, name):
    return json.loads((folder / f"{name}.json").read_text())


def test_layout_and_fields_are_gazecapture(rendered):
    out, stats = rendered
    recordings = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(recordings) == 6 and all(len(p.name) == 5 and p.name.isdigit() for p in recordings)
    splits, devices, orientations = set(), set(), set()
    for folder in recordings:
        names = _load(folder, "frames")
        assert names == [f"{i:05d}.jpg" for i in range(10)]
        for file, fields in JSON_FIELDS.items():
            document = _load(folder, file)
            assert set(document) == fields, file
            if file != "info":
                assert all(len(v) == 10 for v in document.values()), file
        assert isinstance(_load(folder, "motion"), list)
        info, screen = _load(folder, "info"), _load(folder, "screen")
        face_valid = np.array(_load(folder, "appleFace")["IsValid"])
        eyes_valid = (np.array(_load(folder, "appleLeftEye")["IsValid"])
                      & np.array(_load(folder, "appleRightEye")["IsValid"]))
        grid_valid = np.array(_load(folder, "faceGrid")["IsValid"])
        assert info["TotalFrames"] == 10 and info["NumFaceDetections"] == face_valid.sum()
        assert info["NumEyeDetections"] == eyes_valid.sum()
        np.testing.assert_array_equal(grid_valid, face_valid & eyes_valid)
        splits.add(info["Dataset"])
        devices.add(info["DeviceName"])
        for name, orientation in zip(names, screen["Orientation"]):
            size = Image.open(folder / "frames" / name).size
            assert size == render.FRAME_SIZE["landscape" if orientation in (3, 4) else "portrait"]
            orientations.add(orientation)
    assert splits == {"train", "val", "test"}
    assert any("iPad" in d for d in devices) and any("iPhone" in d for d in devices)
    assert len(orientations) >= 2
    assert 0.5 < stats["valid_frames"] / stats["frames"] < 0.95  # some IsValid 0, most valid
    assert render.render_settings(out) == dict(renderer_version=render.RENDER_VERSION, subjects=6,
                                               frames=10, seed=3)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        render.render_dataset(tmp_path / name, subjects=3, frames=2, seed=seed, progress=False)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a") != files(tmp_path / "c")


def test_screen_to_camera_puts_the_camera_on_the_right_side_in_every_orientation():
    device = render.PHONES[0]
    for orientation, inside in ((1, lambda x, y: y < 0), (2, lambda x, y: y > 0),
                                (3, lambda x, y: x > 0), (4, lambda x, y: x < 0)):
        width, height = render.screen_points(device, orientation)
        corners = np.array([render.screen_to_camera_cm(device, orientation, x, y)
                            for x, y in ((0, 0), (width, 0), (0, height), (width, height))])
        assert all(inside(x, y) for x, y in corners), orientation
        extent = sorted(corners.max(0) - corners.min(0))
        assert extent == pytest.approx(sorted(device.screen_cm), abs=0.05)


def _test_look():
    look = render._sample_look(np.random.default_rng(0))
    return dataclasses.replace(look, hair=np.array([0.75, 0.62, 0.38], np.float32), blur_px=0.0)


def test_iris_moves_against_the_target_in_the_image():
    look = _test_look()
    pose = face.Pose(np.array([0.0, -5.0, 30.0]), 0.0, 0.0, 0.0)

    def iris_offset(target):
        eye = face.face_geometry(look, pose, target, (240, 320)).right_eye
        return eye.iris - eye.opening
    across = [iris_offset((x, -5.0))[0] for x in (-8, -4, 0, 4, 8)]
    up = [iris_offset((0.0, y))[1] for y in (-12, -8, -5, -2, 0)]
    # the camera faces the user: a target to the user's right moves the iris to the image's left
    assert np.all(np.diff(across) < -1) and np.all(np.diff(up) < -1)


def test_painted_pupil_is_where_the_eye_model_puts_it():
    look = _test_look()
    pose = face.Pose(np.array([1.0, -4.0, 28.0]), 0.02, -0.01, 0.05)
    for target in ((-3.0, -2.0), (2.5, -9.0)):
        geometry = face.face_geometry(look, pose, target, (240, 320))
        background = np.full((320, 240, 3), 0.5, np.float32)
        image = face.paint(look, geometry, background, (True, True), np.zeros((320, 240, 3), np.int16))
        for eye in (geometry.right_eye, geometry.left_eye):
            u, v = eye.opening.astype(int)
            reach = int(face.EYE_HALF_SIZE[0] * geometry.scale) + 2
            window = image[v - reach:v + reach, u - reach:u + reach].mean(axis=2)
            rows, cols = np.nonzero(window < 20)  # the pupil's near-black disc
            centre = np.array([cols.mean() + u - reach + 0.5, rows.mean() + v - reach + 0.5])
            assert np.linalg.norm(centre - eye.iris) < 1.0


def test_render_refuses_bad_arguments_and_leaves_nothing_behind(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="at least 3"):
        render.render_dataset(tmp_path / "x", subjects=2, frames=5, seed=0, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists"):
        render.render_dataset(tmp_path / "full", subjects=3, frames=1, seed=0, progress=False)

    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args)
    original = render._render_recording
    monkeypatch.setattr(render, "_render_recording", failing)
    with pytest.raises(KeyboardInterrupt):
        render.render_dataset(tmp_path / "broken", subjects=3, frames=1, seed=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_default_data_is_rendered_once_per_version_and_size(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(render, "DEFAULT_RENDER", dict(subjects=3, frames=1, seed=0))
    root = render.default_data_root()
    assert root.parent == tmp_path and render.render_settings(root)["subjects"] == 3
    made = root.stat().st_mtime_ns
    assert render.default_data_root() == root and root.stat().st_mtime_ns == made

    monkeypatch.setattr(render, "DEFAULT_RENDER", dict(subjects=4, frames=1, seed=0))
    bigger = render.default_data_root()
    monkeypatch.setattr(render, "RENDER_VERSION", render.RENDER_VERSION + 1)
    newer = render.default_data_root()
    assert len({root, bigger, newer}) == 3 and all(p.is_dir() for p in (root, bigger, newer))
