"""Faces in a frame for `zoo predict`: the detectors, the framing of their boxes like the
training data's, each face's GazeCapture face grid, and the annotated frame.

Detectors (``--detector``):

- ``blazeface`` (the default): MediaPipe's BlazeFace through LiteRT (zoo.inference.blazeface), the
  short-range model for a camera (a face at arm's length, within 2 m) and the full-range model
  for photos and video files (faces of any size in the frame); ``blazeface_short`` and
  ``blazeface_full`` choose one for every input. Its eye keypoints place the eye boxes.
- ``haar``: OpenCV's Haar cascades (shipped in the opencv-python wheel, ``cv2.data.haarcascades``),
  as the TinyTracker paper's demo. The frame is searched grey, scaled down so that its longer
  side is at most ``DETECT_SIDE`` pixels, with a 1.2 pyramid step and the cascade's own 24x24
  window as the smallest face. Eyes are searched with haarcascade_eye.xml in the upper part of
  each face at full resolution; where it does not find one eye on each side (glasses, a turned
  head), the eyes are placed where they sit in a frontal face box and ``eyes_found`` is False.

Framing: a detector's box is not the box the model was trained on (GazeCapture's come from
Apple's detector; the rendered set imitates them). A build's model card carries one box map per
detector (zoo.inference.boxmap, fitted on the build's data), applied in ``frame``; without one the
detector's box is used as it is and each eye box is centred on the eye with side
zoo.inference.boxmap.UNMAPPED_EYE_SIDE times the face box's width.

No TensorFlow here, and nothing heavy imported with the module (`zoo --help` lists the detectors).
"""
import dataclasses
import typing

from zoo.errors import UsageError

if typing.TYPE_CHECKING:
    import numpy as np

    from zoo.inference.boxmap import BoxMap

DETECTORS = ("blazeface", "blazeface_short", "blazeface_full", "haar")
DEFAULT_DETECTOR = "blazeface"
FACE_CASCADE, EYE_CASCADE = "haarcascade_frontalface_default.xml", "haarcascade_eye.xml"
DETECT_SIDE = 320     # longer side of the frame the Haar face detector searches, pixels
SCALE_FACTOR = 1.2    # step between the Haar detector's pyramid levels
MIN_NEIGHBORS = 5     # overlapping Haar hits needed to report a face
MIN_FACE = 24         # smallest face at Haar detection resolution: the cascade's window
# Eyes: searched in the top EYE_BAND of the face box, from 1/8 to 1/2 of the face's width.
EYE_BAND, EYE_MIN, EYE_MAX, EYE_NEIGHBORS = 0.6, 1 / 8, 1 / 2, 5
# Where a frontal face box holds the eyes when the eye cascade misses: centres (as shares of the
# box) of the eye on the image's left (the subject's right eye) and right.
EYE_CENTRES = ((0.31, 0.38), (0.69, 0.38))


def detector_name(choice: str, kind: str) -> str:
    """The detector `--detector CHOICE` runs on a source of ``kind`` (image, video, camera)."""
    if choice == "blazeface":
        return "blazeface_short" if kind == "camera" else "blazeface_full"
    return choice


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    """What every detector is asked: eye positions or not, how many faces, threads; the Haar
    cascade's own search settings."""
    eyes: bool = False
    max_faces: int = None
    threads: int = 1
    detect_side: int = DETECT_SIDE
    scale_factor: float = SCALE_FACTOR
    min_neighbors: int = MIN_NEIGHBORS
    min_face: int = MIN_FACE


@dataclasses.dataclass(frozen=True)
class Detection:
    """A face as a detector reports it, in float pixels of the frame: the (x, y, w, h) box and,
    when asked, the centres (x, y) of the subject's left eye (on the right of the image) and
    right eye, with whether they were found (False: placed in the box)."""
    box: tuple
    left_eye: tuple = None
    right_eye: tuple = None
    eyes_found: bool = None


@dataclasses.dataclass(frozen=True)
class Face:
    """A face in a frame: (x, y, w, h) pixel boxes of the full frame, framed for the model.
    ``left_eye`` is the subject's left eye (on the right of the image), as in GazeCapture; eye
    boxes are None when the model takes none."""
    box: tuple
    left_eye: tuple = None
    right_eye: tuple = None
    eyes_found: bool = None

    def boxes(self) -> dict:
        """{box name: (x, y, w, h)} as the recipes of zoo.data.recipes name them."""
        return {"face": self.box, "left_eye": self.left_eye or self.box,
                "right_eye": self.right_eye or self.box}


def frame(detection: Detection, box_map: typing.Optional["BoxMap"] = None) -> Face:
    """The Face of ``detection`` framed by ``box_map`` (zoo.inference.boxmap.BoxMap; None keeps the
    detector's box and puts eye boxes of side UNMAPPED_EYE_SIDE x its width on the eyes)."""
    if box_map is None:
        from zoo.inference.boxmap import BoxMap
        box_map = BoxMap()
    eyes = [None, None]
    if detection.left_eye is not None:
        eyes = [_whole(box_map.eye(side, detection.box, point))
                for side, point in enumerate((detection.left_eye, detection.right_eye))]
    return Face(_whole(box_map.face(detection.box)), *eyes, detection.eyes_found)


def _whole(box):
    return tuple(int(round(v)) for v in box)


def frame_grid(box: tuple, frame_size: tuple) -> tuple:
    """GazeCapture's faceGrid of ``box`` in a frame of ``frame_size`` (width, height): 25x25 cells
    over the full frame, (X, Y, W, H) with X and Y 1-indexed (as faceGrid.json)."""
    from zoo.data.recipes import face_grid
    return tuple(int(v) for v in face_grid(box, frame_size))


def zero_indexed(grid: tuple) -> tuple:
    """faceGrid (X and Y 1-indexed) -> the 0-indexed grid the recipes take (zoo.data.gazecapture)."""
    return (grid[0] - 1, grid[1] - 1, grid[2], grid[3])


def _largest(detections, max_faces):
    return sorted(detections, key=lambda d: (-d.box[2] * d.box[3], d.box[0], d.box[1]))[:max_faces]


def _cascade(name):
    import cv2
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise UsageError(f"OpenCV's {name} is missing from {cv2.data.haarcascades}; reinstall "
                         "opencv-python-headless (requirements/stack.txt)")
    return cascade


class HaarDetector:
    """Haar-cascade faces (largest first, at most ``max_faces``) of a BGR frame; with ``eyes``
    also each face's eye centres."""

    def __init__(self, settings: DetectorSettings = DetectorSettings()):
        self.settings = settings
        self.faces = _cascade(FACE_CASCADE)
        self.eyes = _cascade(EYE_CASCADE) if settings.eyes else None

    def detect(self, bgr: "np.ndarray") -> list:
        import cv2
        import numpy as np
        settings = self.settings
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, settings.detect_side / max(grey.shape[:2]))
        small = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale,
                                                     interpolation=cv2.INTER_AREA)
        found = self.faces.detectMultiScale(small, scaleFactor=settings.scale_factor,
                                            minNeighbors=settings.min_neighbors,
                                            minSize=(settings.min_face, settings.min_face))
        boxes = [tuple(int(round(v / scale)) for v in box) for box in np.reshape(found, (-1, 4))]
        detections = _largest([Detection(box) for box in boxes], settings.max_faces)
        if self.eyes is None:
            return detections
        return [self._with_eyes(grey, detection.box) for detection in detections]

    def _with_eyes(self, grey, box):
        import numpy as np
        x, y, w, h = box
        band = grey[y:y + int(h * EYE_BAND), x:x + w]
        found = self.eyes.detectMultiScale(band, scaleFactor=1.1, minNeighbors=EYE_NEIGHBORS,
                                           minSize=(int(w * EYE_MIN),) * 2, maxSize=(int(w * EYE_MAX),) * 2)
        sides = [[], []]  # image left (the subject's right eye), image right (the subject's left eye)
        for ex, ey, ew, eh in np.reshape(found, (-1, 4)):
            sides[int(ex + ew / 2 >= w / 2)].append((x + ex + ew / 2, y + ey + eh / 2, ew * eh))
        if all(sides):
            right, left = (max(side, key=lambda eye: eye[2])[:2] for side in sides)
            return Detection(box, tuple(map(float, left)), tuple(map(float, right)), True)
        right, left = ((x + cx * w, y + cy * h) for cx, cy in EYE_CENTRES)
        return Detection(box, left, right, False)


class BlazeFaceDetector:
    """BlazeFace faces (largest first, at most ``max_faces``) of a BGR frame, with the eyes from
    the model's keypoints. ``kind``: short or full range (zoo.inference.blazeface.MODELS)."""

    def __init__(self, kind: str, settings: DetectorSettings = DetectorSettings()):
        from zoo.inference import blazeface
        self.settings = settings
        self.model = blazeface.BlazeFace(kind, settings.threads)
        self.eye_rows = (blazeface.LEFT_EYE, blazeface.RIGHT_EYE)

    def detect(self, bgr: "np.ndarray") -> list:
        boxes, points, _ = self.model.detect(bgr)
        left, right = self.eye_rows
        eyes = self.settings.eyes
        return _largest([Detection(tuple(map(float, box)),
                                   tuple(map(float, point[left])) if eyes else None,
                                   tuple(map(float, point[right])) if eyes else None, True if eyes else None)
                         for box, point in zip(boxes, points)], self.settings.max_faces)


def make_detector(name: str, settings: DetectorSettings = DetectorSettings()):
    """The detector called ``name`` (one of DETECTORS but ``blazeface``: detector_name first)."""
    if name == "haar":
        return HaarDetector(settings)
    return BlazeFaceDetector(name.split("_")[1], settings)


class FaceFinder:
    """The faces of each frame, framed for a model: `--detector CHOICE`, the detector for the
    source being read (``use``), and the box map the model card holds for it (``box_maps``: the
    card's, None for a model without a card or from before maps). A detector without a map is
    noted once in ``notes``, which zoo predict prints after a run that went through (a refused
    input stays one line)."""

    def __init__(self, choice: str, settings: DetectorSettings = DetectorSettings(),
                 box_maps: typing.Optional[dict] = None, model_name: str = "the model"):
        self.choice, self.settings, self.box_maps = choice, settings, box_maps
        self.model_name, self.detectors, self.maps, self.name = model_name, {}, {}, None
        self.notes: typing.List[str] = []

    def use(self, kind: str) -> "FaceFinder":
        """Picks the detector for a source of ``kind`` (image, video, camera); made on first use."""
        from zoo.inference import boxmap
        self.name = detector_name(self.choice, kind)
        if self.name not in self.detectors:
            self.detectors[self.name] = make_detector(self.name, self.settings)
            record = (self.box_maps or {}).get(self.name)
            self.maps[self.name] = boxmap.BoxMap.of(record)
            if record is None:
                held = "no box maps" if not self.box_maps else f"box maps for {', '.join(self.box_maps)} only"
                self.notes.append(f"{self.model_name} carries {held}: {self.name}'s boxes are used as it "
                                  "gives them, not framed like the training data's (zoo build fits the maps)")
        return self

    def find(self, bgr: "np.ndarray") -> list:
        """[Face] of ``bgr``."""
        box_map = self.maps[self.name]
        return [frame(detection, box_map) for detection in self.detectors[self.name].detect(bgr)]


# ---- the annotated frame -------------------------------------------------------------------------

COLOURS = ((80, 220, 80), (60, 160, 255), (255, 120, 60), (220, 80, 220), (60, 220, 220))  # BGR
EYE_COLOUR, PANEL_COLOUR, AXIS_COLOUR = (255, 220, 0), (40, 40, 40), (150, 150, 150)


def annotate(bgr, results, scale_cm):
    """A copy of ``bgr`` with each face's box, eye boxes and gaze, and a small diagram of the
    screen plane around the camera (the camera at its centre, x right, y up, +-``scale_cm``
    across) with each face's gaze point in its box's colour. ``results``: (Face, (x, y) cm)."""
    import cv2
    image = bgr.copy()
    for number, (face, gaze) in enumerate(results):
        colour = COLOURS[number % len(COLOURS)]
        x, y, w, h = face.box
        thickness = max(1, min(image.shape[:2]) // 240)
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, thickness)
        for eye in (face.left_eye, face.right_eye):
            if eye is not None:  # placed (not found) eye boxes in grey
                cv2.rectangle(image, eye[:2], (eye[0] + eye[2], eye[1] + eye[3]),
                              EYE_COLOUR if face.eyes_found else AXIS_COLOUR, 1)
        label = f"{gaze[0]:+.1f}, {gaze[1]:+.1f} cm"
        width = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0]
        cv2.putText(image, label, (max(0, min(x, image.shape[1] - width)), max(12, y - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    _screen_diagram(image, [gaze for _, gaze in results], scale_cm)
    return image


def _screen_diagram(image, points, scale_cm):
    import cv2
    import numpy as np
    side = max(64, min(image.shape[:2]) // 4)
    x0, y0, half = 4, 4, side // 2
    cv2.rectangle(image, (x0, y0), (x0 + side, y0 + side), PANEL_COLOUR, -1)
    centre = (x0 + half, y0 + half)
    cv2.line(image, (x0, centre[1]), (x0 + side, centre[1]), AXIS_COLOUR, 1)
    cv2.line(image, (centre[0], y0), (centre[0], y0 + side), AXIS_COLOUR, 1)
    cv2.rectangle(image, (centre[0] - 3, centre[1] - 2), (centre[0] + 3, centre[1] + 2), (255, 255, 255), -1)
    cv2.putText(image, f"+-{scale_cm:g} cm", (x0 + 2, y0 + side - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                AXIS_COLOUR, 1, cv2.LINE_AA)
    for number, (gx, gy) in enumerate(points):
        px = centre[0] + int(round(np.clip(gx / scale_cm, -1, 1) * (half - 3)))
        py = centre[1] - int(round(np.clip(gy / scale_cm, -1, 1) * (half - 3)))
        cv2.circle(image, (px, py), 3, COLOURS[number % len(COLOURS)], -1, cv2.LINE_AA)
