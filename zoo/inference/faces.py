"""Faces in a frame for `zoo predict`: OpenCV's Haar cascades (shipped in the opencv-python wheel,
``cv2.data.haarcascades``), each face's GazeCapture face grid, and the annotated frame.

Detection runs on a grey copy of the frame scaled down so that its longer side is at most
``DETECT_SIDE`` pixels (320: a 640x480 frame is searched at 320x240, which keeps the detector
within a 30 fps budget on 2 cores), with a 1.2 pyramid step and the cascade's own 24x24 window
as the smallest face (48x48 pixels of a 640x480 frame). Eyes (iTracker's inputs) are searched
with haarcascade_eye.xml in the upper part of each face at full resolution; where it does not
find one eye on each side (glasses, a turned head), the eye boxes are placed where eyes sit in a
frontal face box and the face is marked ``eyes_found=False``.

No TensorFlow here.
"""
import dataclasses

import numpy as np

from zoo.data.recipes import face_grid
from zoo.errors import UsageError

FACE_CASCADE, EYE_CASCADE = "haarcascade_frontalface_default.xml", "haarcascade_eye.xml"
DETECT_SIDE = 320     # longer side of the frame the face detector searches, pixels
SCALE_FACTOR = 1.2    # step between the detector's pyramid levels
MIN_NEIGHBORS = 5     # overlapping hits needed to report a face
MIN_FACE = 24         # smallest face at detection resolution: the cascade's window
# Eyes: searched in the top EYE_BAND of the face box, from 1/8 to 1/2 of the face's width.
EYE_BAND, EYE_MIN, EYE_MAX, EYE_NEIGHBORS = 0.6, 1 / 8, 1 / 2, 5
# Where a frontal face box holds the eyes when the eye cascade misses: centres (as shares of the
# box) of the eye on the image's left (the subject's right eye) and right, and the eye box side.
EYE_CENTRES, EYE_SIDE = ((0.31, 0.38), (0.69, 0.38)), 0.26


@dataclasses.dataclass(frozen=True)
class Face:
    """A face in a frame: (x, y, w, h) pixel boxes of the full frame. ``left_eye`` is the
    subject's left eye (on the right of the image), as in GazeCapture; eye boxes are None when
    they were not searched for."""
    box: tuple
    left_eye: tuple = None
    right_eye: tuple = None
    eyes_found: bool = None

    def boxes(self):
        """{box name: (x, y, w, h)} as the recipes of zoo.data.recipes name them."""
        return {"face": self.box, "left_eye": self.left_eye or self.box,
                "right_eye": self.right_eye or self.box}


def frame_grid(box, frame_size):
    """GazeCapture's faceGrid of ``box`` in a frame of ``frame_size`` (width, height): 25x25 cells
    over the full frame, (X, Y, W, H) with X and Y 1-indexed (as faceGrid.json)."""
    return tuple(int(v) for v in face_grid(box, frame_size))


def zero_indexed(grid):
    """faceGrid (X and Y 1-indexed) -> the 0-indexed grid the recipes take (zoo.data.gazecapture)."""
    return (grid[0] - 1, grid[1] - 1, grid[2], grid[3])


def _cascade(name):
    import cv2
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise UsageError(f"OpenCV's {name} is missing from {cv2.data.haarcascades}; reinstall "
                         "opencv-python-headless (requirements/stack.txt)")
    return cascade


class FaceDetector:
    """Haar-cascade faces (largest first, at most ``max_faces``) of a BGR frame; with ``eyes``
    also each face's eye boxes."""

    def __init__(self, eyes=False, max_faces=None, detect_side=DETECT_SIDE, scale_factor=SCALE_FACTOR,
                 min_neighbors=MIN_NEIGHBORS, min_face=MIN_FACE):
        self.faces = _cascade(FACE_CASCADE)
        self.eyes = _cascade(EYE_CASCADE) if eyes else None
        self.max_faces, self.detect_side = max_faces, detect_side
        self.scale_factor, self.min_neighbors, self.min_face = scale_factor, min_neighbors, min_face

    def detect(self, bgr):
        import cv2
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, self.detect_side / max(grey.shape[:2]))
        small = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale,
                                                     interpolation=cv2.INTER_AREA)
        found = self.faces.detectMultiScale(small, scaleFactor=self.scale_factor,
                                            minNeighbors=self.min_neighbors,
                                            minSize=(self.min_face, self.min_face))
        boxes = sorted((tuple(int(round(v / scale)) for v in box) for box in np.reshape(found, (-1, 4))),
                       key=lambda b: (-b[2] * b[3], b[0], b[1]))[:self.max_faces]
        if self.eyes is None:
            return [Face(box) for box in boxes]
        return [self._with_eyes(grey, box) for box in boxes]

    def _with_eyes(self, grey, box):
        x, y, w, h = box
        band = grey[y:y + int(h * EYE_BAND), x:x + w]
        found = self.eyes.detectMultiScale(band, scaleFactor=1.1, minNeighbors=EYE_NEIGHBORS,
                                           minSize=(int(w * EYE_MIN),) * 2, maxSize=(int(w * EYE_MAX),) * 2)
        sides = [[], []]  # image left (the subject's right eye), image right (the subject's left eye)
        for ex, ey, ew, eh in np.reshape(found, (-1, 4)):
            sides[int(ex + ew / 2 >= w / 2)].append((int(x + ex), int(y + ey), int(ew), int(eh)))
        if all(sides):
            right, left = (max(side, key=lambda b: b[2] * b[3]) for side in sides)
            return Face(box, left, right, True)
        right, left = (_placed(box, centre) for centre in EYE_CENTRES)
        return Face(box, left, right, False)


def _placed(box, centre):
    x, y, w, h = box
    side = int(round(w * EYE_SIDE))
    return (int(round(x + centre[0] * w - side / 2)), int(round(y + centre[1] * h - side / 2)), side, side)


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
