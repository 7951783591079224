"""Box maps: a face detector's output turned into boxes framed like the training data's.

A model learns from crops cut by the dataset's boxes (GazeCapture's ``appleFace``,
``appleLeftEye``, ``appleRightEye``: Apple's detector; the rendered set imitates them); a detector
at prediction time frames a face its own way. A map per detector, stored in the model card
(zoo.artifacts.BoxMapRecord), closes the gap. Its form, proportional throughout so that one map
serves any frame size and any distance (it is fitted on 320x240 rendered frames and applied to
photos of any size):

- face: the centre moves by (dx, dy) times the detector box's (width, height), the size scales
  by (sw, sh);
- each eye: a square centred on the detector's eye point moved by (ex, ey) times the detector
  box's width, of side es times that width.

Each term is a linear regression through the origin on the detector box's size (closed-form
least squares). `zoo build` fits the maps on its data root (``fit_maps``): each detector runs on
up to FIT_FRAMES frames of the train split and HELD_OUT_FRAMES of the test split, evenly spread;
a detection matches the dataset's face when its centre lies in the dataset's face box (the
closest centre when several do). The map is fitted on the train frames; the record keeps the
mean IoU with the dataset's boxes on the test frames before (the detector's box, and eye boxes
of side UNMAPPED_EYE_SIDE on the eyes) and after. A detector matching fewer than MIN_FRAMES
frames gets no map.
"""
import dataclasses
import functools
import time
import typing

import numpy as np

if typing.TYPE_CHECKING:
    from zoo import artifacts

UNMAPPED_EYE_SIDE = 0.26  # an eye box's side without a map, as a share of the face box's width
FIT_FRAMES, HELD_OUT_FRAMES, MIN_FRAMES = 400, 200, 5
FITTED = ("blazeface_short", "blazeface_full", "haar")  # every detector zoo.inference.faces runs


@dataclasses.dataclass(frozen=True)
class BoxMap:
    """The terms of one map: face (dx, dy, sw, sh), eyes ((ex, ey, es) subject's left, right)."""
    face_terms: tuple = (0.0, 0.0, 1.0, 1.0)
    eye_terms: tuple = ((0.0, 0.0, UNMAPPED_EYE_SIDE), (0.0, 0.0, UNMAPPED_EYE_SIDE))

    @classmethod
    def of(cls, record: typing.Optional["artifacts.BoxMapRecord"]) -> "BoxMap":
        """The map of a BoxMapRecord; the identity map (eye boxes of the unmapped side) for None."""
        if record is None:
            return cls()
        return cls(tuple(record.face), (tuple(record.left_eye), tuple(record.right_eye)))

    def face(self, box: tuple) -> tuple:
        """The (x, y, w, h) face box for the detector's ``box``."""
        dx, dy, sw, sh = self.face_terms
        x, y, w, h = box
        cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
        return (cx - sw * w / 2, cy - sh * h / 2, sw * w, sh * h)

    def eye(self, side: int, box: tuple, point: tuple) -> tuple:
        """The (x, y, s, s) box of eye ``side`` (0: the subject's left) at the detector's ``point``."""
        ex, ey, es = self.eye_terms[side]
        width = box[2]
        side_px = es * width
        return (point[0] + ex * width - side_px / 2, point[1] + ey * width - side_px / 2, side_px, side_px)


def _centres(boxes):
    return boxes[..., :2] + boxes[..., 2:4] / 2


def _through_origin(x, y):
    """The least-squares slope of y = slope * x."""
    return float(np.sum(x * y) / np.sum(x * x))


def fit(detected: np.ndarray, eyes_detected: np.ndarray, faces: np.ndarray, eyes: np.ndarray) -> BoxMap:
    """The BoxMap of matched frames: ``detected`` (n, 4) detector boxes, ``eyes_detected`` (n, 2, 2)
    eye points, ``faces`` (n, 4) and ``eyes`` (n, 2, 4) the dataset's boxes, (x, y, w, h) pixels."""
    width, height = detected[:, 2], detected[:, 3]
    shift = _centres(faces) - _centres(detected)
    face = (_through_origin(width, shift[:, 0]), _through_origin(height, shift[:, 1]),
            _through_origin(width, faces[:, 2]), _through_origin(height, faces[:, 3]))
    terms = []
    for side in range(2):
        offset = _centres(eyes[:, side]) - eyes_detected[:, side]
        terms.append((_through_origin(width, offset[:, 0]), _through_origin(width, offset[:, 1]),
                      _through_origin(width, eyes[:, side, 2:4].mean(axis=1))))
    return BoxMap(face, tuple(terms))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of (x, y, w, h) boxes, row by row."""
    x0, y0 = np.maximum(a[..., 0], b[..., 0]), np.maximum(a[..., 1], b[..., 1])
    x1 = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y1 = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter / np.maximum(a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter, 1e-12)


def mean_ious(box_map: BoxMap, detected: np.ndarray, eyes_detected: np.ndarray, faces: np.ndarray,
              eyes: np.ndarray) -> tuple:
    """(face IoU, eye IoU): means over the frames (and both eyes) of ``box_map``'s boxes against
    the dataset's."""
    mapped = np.array([box_map.face(box) for box in detected])
    mapped_eyes = np.array([[box_map.eye(side, box, points[side]) for side in range(2)]
                            for box, points in zip(detected, eyes_detected)])
    return float(iou(mapped, faces).mean()), float(iou(mapped_eyes, eyes).mean())


def _match(detections, face):
    """The detection whose centre lies in the dataset's ``face`` box, closest to its centre."""
    centre = _centres(np.asarray(face, np.float64))
    inside = [d for d in detections
              if face[0] <= d.box[0] + d.box[2] / 2 <= face[0] + face[2]
              and face[1] <= d.box[1] + d.box[3] / 2 <= face[1] + face[3]]
    return min(inside, key=lambda d: np.hypot(*(_centres(np.asarray(d.box)) - centre)), default=None)


def run_detector(detector, frames) -> tuple:
    """(matched frame indices, detector boxes (n, 4), eye points (n, 2, 2)) of ``detector`` on
    zoo.data Frames."""
    import cv2
    found, boxes, points = [], [], []
    for number, path in enumerate(frames.paths):
        match = _match(detector.detect(cv2.imread(str(path))), frames.face[number])
        if match is not None:
            found.append(number)
            boxes.append(match.box)
            points.append((match.left_eye, match.right_eye))
    return (np.array(found, int), np.array(boxes, np.float64).reshape(-1, 4),
            np.array(points, np.float64).reshape(-1, 2, 2))


def _dataset_boxes(frames, found):
    return (frames.face[found].astype(np.float64),
            np.stack([frames.left_eye[found], frames.right_eye[found]], axis=1).astype(np.float64))


def fit_detector(name: str, index, say: typing.Callable = functools.partial(print, flush=True)):
    """The BoxMapRecord of detector ``name`` on the frames of ``index`` (a GazeCaptureIndex), or
    None when it matches fewer than MIN_FRAMES frames of a split."""
    from zoo import artifacts
    from zoo.inference import faces
    detector = faces.make_detector(name, faces.DetectorSettings(eyes=True))
    train, test = index.select("train", FIT_FRAMES), index.select("test", HELD_OUT_FRAMES)
    fitted, held = run_detector(detector, train), run_detector(detector, test)
    if min(len(fitted[0]), len(held[0])) < MIN_FRAMES:
        say(f"[zoo build] {name} found the face in {len(fitted[0])} of {len(train)} train and "
            f"{len(held[0])} of {len(test)} test frames, under {MIN_FRAMES}: no box map for it")
        return None
    box_map = fit(fitted[1], fitted[2], *_dataset_boxes(train, fitted[0]))
    truth = _dataset_boxes(test, held[0])
    before = mean_ious(BoxMap(), held[1], held[2], *truth)
    after = mean_ious(box_map, held[1], held[2], *truth)
    say(f"[zoo build] box map for {name}: fitted on {len(fitted[0])} train frames; on {len(held[0])} "
        f"held-out frames the face IoU goes {before[0]:.3f} -> {after[0]:.3f}, eyes {before[1]:.3f} -> "
        f"{after[1]:.3f}")
    return artifacts.BoxMapRecord(
        detector=name, face=[round(v, 5) for v in box_map.face_terms],
        left_eye=[round(v, 5) for v in box_map.eye_terms[0]],
        right_eye=[round(v, 5) for v in box_map.eye_terms[1]],
        fitted_frames=len(fitted[0]), held_out_frames=len(held[0]), found=round(len(held[0]) / len(test), 4),
        face_iou_before=round(before[0], 4), face_iou_after=round(after[0], 4),
        eye_iou_before=round(before[1], 4), eye_iou_after=round(after[1], 4))


def fit_maps(index, say: typing.Callable = functools.partial(print, flush=True)) -> tuple:
    """{detector name: BoxMapRecord} for every detector of FITTED that matches enough frames,
    and the seconds it took."""
    started = time.monotonic()
    records = {name: fit_detector(name, index, say) for name in FITTED}
    kept = {name: record for name, record in records.items() if record is not None}
    return kept, time.monotonic() - started
