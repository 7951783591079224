"""The rendered subject: a geometric eye model and a procedural face painter (numpy, Pillow).

Eye model. Lengths in cm, in GazeCapture's camera coordinates: x to the right and y up as the
user sees the screen, z from the screen towards the user, camera at the origin.

- The head centre is at ``H`` (``H.z`` is the distance to the screen), turned by
  ``R = Rz(roll) Ry(yaw) Rx(pitch)``. Facial points are fixed in the head's frame, where the face
  looks along -z (towards the screen).
- Each eyeball is a sphere of radius ``EYEBALL_RADIUS`` centred at ``E = H + R e`` with
  ``e = (+-ipd/2, EYE_HEIGHT, -EYEBALL_DEPTH)`` (+x is the subject's right eye).
- Both eyes fixate the dot ``T = (XCam, YCam, 0)``: ``g = (T - E) / |T - E|`` and the iris centre
  is ``P = E + EYEBALL_RADIUS * g``.
- The iris travels ``t = EYEBALL_RADIUS * (g - f)`` from where it sits when the eye looks
  straight ahead, ``f = R (0, 0, -1)``. The eyelid opening belongs to the head, centred at
  ``E + EYEBALL_RADIUS * f``, except that the lids follow the eye up and down by
  ``LID_FOLLOW`` of the iris's vertical travel (along the head's up axis), as real lids do: the
  iris stays in view when the subject looks far down or up.
- A pinhole camera with focal length ``FOCAL_PX`` at the frame centre projects
  ``u = cx - f X / Z``, ``v = cy - f Y / Z``: it faces the user, so the subject's right eye
  (+x) appears on the image's left and the subject's left eye on its right.

The face is a caricature: eyes 5.2 x 3.4 cm with a 5.5 cm eyeball radius (a human's is about
1.2 cm), so that the iris moves several pixels across the gaze range even in a 96-pixel crop.
Head rotation moves every feature (each is a projected 3D point); features are drawn as
ellipses in the image plane, rolled with the head.
"""
import dataclasses

import numpy as np
from PIL import Image, ImageFilter

FOCAL_PX = 220.0
EYEBALL_RADIUS = 5.5
EYEBALL_DEPTH = 3.0  # eyeball centre in front of the head centre
EYE_HEIGHT = 1.5  # eye line above the head centre
EYE_HALF_SIZE = (2.6, 1.7)  # eyelid opening, half width and half height
LID_FOLLOW = 0.5  # share of the iris's vertical travel the eyelid opening follows
IRIS_RADIUS = 0.9
PUPIL_RADIUS = 0.4
SCLERA = (0.93, 0.91, 0.87)
PUPIL = (0.03, 0.03, 0.03)


@dataclasses.dataclass(frozen=True)
class Look:
    """What stays fixed for one subject (and their recording)."""
    face_half_size: tuple  # cm (half width, half height) of the face ellipse
    ipd: float  # cm between the eyeball centres
    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    shirt: np.ndarray
    light: np.ndarray  # (x, y) direction in the image the face is lit from, times its strength
    background: np.ndarray  # (4, 5, 3) colours of a smooth background field
    noise_std: float  # sensor noise, in 8-bit levels
    blur_px: float  # radius of the camera's (box) blur


@dataclasses.dataclass(frozen=True)
class Pose:
    """Where the head is (cm, camera coordinates) and how it is turned (radians)."""
    head: np.ndarray
    yaw: float
    pitch: float
    roll: float

    def rotation(self):
        cy, sy = np.cos(self.yaw), np.sin(self.yaw)
        cp, sp = np.cos(self.pitch), np.sin(self.pitch)
        cr, sr = np.cos(self.roll), np.sin(self.roll)
        rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        return rz @ ry @ rx


@dataclasses.dataclass(frozen=True)
class Eye:
    opening: np.ndarray  # (u, v) pixel centre of the eyelid opening
    iris: np.ndarray  # (u, v) pixel centre of the iris
    gaze: np.ndarray  # unit 3D gaze direction g


@dataclasses.dataclass(frozen=True)
class Geometry:
    """The projected face of one frame: what the painter draws and the detector boxes."""
    frame_size: tuple  # (width, height) pixels
    scale: float  # pixels per cm at the head's distance
    angle: float  # in-image roll of the face, radians
    points: dict  # feature name -> (u, v) pixels
    right_eye: Eye  # the subject's right eye: image left
    left_eye: Eye  # the subject's left eye: image right


def project(points, frame_size):
    """Pinhole projection of (N, 3) camera-space points to (N, 2) pixels."""
    points = np.atleast_2d(points)
    width, height = frame_size
    return np.stack([width / 2 - FOCAL_PX * points[:, 0] / points[:, 2],
                     height / 2 - FOCAL_PX * points[:, 1] / points[:, 2]], axis=1)


def face_geometry(look, pose, target_cm, frame_size):
    """Projects the subject's face and eyes for a head ``pose`` fixating ``target_cm`` (XCam, YCam)."""
    rotation = pose.rotation()
    forward = rotation @ np.array([0.0, 0.0, -1.0])
    up = rotation @ np.array([0.0, 1.0, 0.0])
    half_w, half_h = look.face_half_size

    def at(x, y, depth):
        return pose.head + rotation @ np.array([x, y, -depth])

    front = EYEBALL_DEPTH + EYEBALL_RADIUS
    named = {
        "head": at(0, 0, 0), "hair": at(0, 1.8, -1.0), "neck": at(0, -0.9 * half_h, -1.0),
        "brow_right": at(look.ipd / 2, EYE_HEIGHT + EYE_HALF_SIZE[1] + 0.8, front - 0.4),
        "brow_left": at(-look.ipd / 2, EYE_HEIGHT + EYE_HALF_SIZE[1] + 0.8, front - 0.4),
        "nose": at(0, -2.0, front + 1.6), "nostril_right": at(0.5, -3.0, front + 1.1),
        "nostril_left": at(-0.5, -3.0, front + 1.1), "mouth": at(0, -5.5, front),
        "face_box": at(0, 0.5, front),
    }
    names = list(named)
    uv = project(np.array([named[n] for n in names]), frame_size)
    points = dict(zip(names, uv))

    target = np.array([target_cm[0], target_cm[1], 0.0])
    eyes = []
    for side in (1, -1):
        centre = at(side * look.ipd / 2, EYE_HEIGHT, EYEBALL_DEPTH)
        gaze = (target - centre) / np.linalg.norm(target - centre)
        travel = EYEBALL_RADIUS * (gaze - forward)
        lids = centre + EYEBALL_RADIUS * forward + LID_FOLLOW * (travel @ up) * up
        opening, iris = project(np.array([lids, centre + EYEBALL_RADIUS * gaze]), frame_size)
        eyes.append(Eye(opening, iris, gaze))
    right, left = eyes
    along = left.opening - right.opening
    return Geometry(frame_size=frame_size, scale=FOCAL_PX / pose.head[2],
                    angle=float(np.arctan2(along[1], along[0])), points=points,
                    right_eye=right, left_eye=left)


class Canvas:
    """A float RGB image in [0, 1] with anti-aliased ellipses."""

    def __init__(self, background):
        self.image = background.copy()

    def ellipse_alpha(self, centre, half_axes, angle):
        """(region, alpha) of a soft-edged ellipse; region is None when it misses the frame."""
        height, width = self.image.shape[:2]
        a, b = max(half_axes[0], 0.3), max(half_axes[1], 0.3)
        reach = max(a, b) + 1.5
        u0, u1 = int(max(np.floor(centre[0] - reach), 0)), int(min(np.ceil(centre[0] + reach), width))
        v0, v1 = int(max(np.floor(centre[1] - reach), 0)), int(min(np.ceil(centre[1] + reach), height))
        if u1 <= u0 or v1 <= v0:
            return None, None
        du = (np.arange(u0, u1, dtype=np.float32) + 0.5 - centre[0])[None, :]
        dv = (np.arange(v0, v1, dtype=np.float32) + 0.5 - centre[1])[:, None]
        cos, sin = np.cos(angle), np.sin(angle)
        x, y = du * cos + dv * sin, dv * cos - du * sin
        # signed distance to the outline, to first order: f / |grad f| for f = (x/a)^2 + (y/b)^2 - 1
        inside = (x / a) ** 2 + (y / b) ** 2 - 1
        distance = inside / np.maximum(2 * np.sqrt((x / a ** 2) ** 2 + (y / b ** 2) ** 2), 1e-3)
        return (slice(v0, v1), slice(u0, u1)), np.clip(0.5 - distance, 0.0, 1.0)

    def fill(self, region, alpha, colour):
        if region is not None:
            patch = self.image[region]
            patch += alpha[..., None] * (np.asarray(colour, np.float32) - patch)

    def ellipse(self, centre, half_axes, angle, colour):
        region, alpha = self.ellipse_alpha(centre, half_axes, angle)
        self.fill(region, alpha, colour)
        return region, alpha


def _paint_eye(canvas, eye, geometry, look, is_open):
    scale, angle = geometry.scale, geometry.angle
    half_w, half_h = EYE_HALF_SIZE[0] * scale, EYE_HALF_SIZE[1] * scale
    lash = look.hair * 0.4
    if not is_open:  # a blink: the lid line only
        canvas.ellipse(eye.opening, (half_w, 0.12 * scale), angle, lash)
        return
    canvas.ellipse(eye.opening, (half_w + 1.0, half_h + 1.0), angle, lash)
    region, opening = canvas.ellipse(eye.opening, (half_w, half_h), angle, SCLERA)
    if region is None:
        return
    for radius, colour in ((IRIS_RADIUS, look.iris), (PUPIL_RADIUS, PUPIL)):
        disc_region, disc = canvas.ellipse_alpha(eye.iris, (radius * scale, radius * scale), angle)
        if disc_region is None:
            continue
        clipped = np.zeros_like(opening)
        _paste(clipped, region, disc, disc_region)
        canvas.fill(region, clipped * opening, colour)


def _paste(target, target_region, source, source_region):
    """target[overlap] = source[overlap] for two regions of the same image."""
    (tv, tu), (sv, su) = target_region, source_region
    v0, v1 = max(tv.start, sv.start), min(tv.stop, sv.stop)
    u0, u1 = max(tu.start, su.start), min(tu.stop, su.stop)
    if v1 > v0 and u1 > u0:
        target[v0 - tv.start:v1 - tv.start, u0 - tu.start:u1 - tu.start] = \
            source[v0 - sv.start:v1 - sv.start, u0 - su.start:u1 - su.start]


def paint(look, geometry, background, eyes_open, noise):
    """The frame as uint8 (height, width, 3): body, hair, face, brows, eyes, nose, mouth and
    lighting, then camera blur and ``noise`` (int16, the frame's shape). ``geometry=None`` paints
    the empty scene."""
    canvas = Canvas(background)
    if geometry is not None:
        s, angle, p = geometry.scale, geometry.angle, geometry.points
        half_w, half_h = look.face_half_size
        body = p["head"] + np.array([0.0, (half_h + 9.0) * s])
        canvas.ellipse(body, (16.0 * s, 9.0 * s), 0.0, look.shirt)
        canvas.ellipse(p["neck"], (0.45 * half_w * s, 0.5 * half_h * s), angle, look.skin * 0.85)
        canvas.ellipse(p["hair"], (1.1 * half_w * s, 0.95 * half_h * s), angle, look.hair)
        face_region, face_alpha = canvas.ellipse(p["head"], (half_w * s, half_h * s), angle, look.skin)
        for brow in ("brow_right", "brow_left"):
            canvas.ellipse(p[brow], (EYE_HALF_SIZE[0] * s, 0.32 * s), angle, look.hair * 0.8)
        for eye, is_open in zip((geometry.right_eye, geometry.left_eye), eyes_open):
            _paint_eye(canvas, eye, geometry, look, is_open)
        canvas.ellipse(p["nose"], (0.9 * s, 1.4 * s), angle, look.skin * 0.82)
        for nostril in ("nostril_right", "nostril_left"):
            canvas.ellipse(p[nostril], (0.3 * s, 0.18 * s), angle, look.skin * 0.45)
        canvas.ellipse(p["mouth"], (2.3 * s, 0.45 * s), angle, look.lips)
        if face_region is not None:
            _light(canvas.image, face_region, face_alpha, p["head"], (half_w * s, half_h * s), look.light)
    image = Image.fromarray((np.clip(canvas.image, 0, 1) * 255 + 0.5).astype(np.uint8))
    image = image.filter(ImageFilter.BoxBlur(look.blur_px))
    return np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8)


def _light(image, region, alpha, centre, half_axes, light):
    """Directional light on the face: brighter on the side ``light`` points to."""
    rows, cols = region
    du = (np.arange(cols.start, cols.stop, dtype=np.float32) + 0.5 - centre[0]) / half_axes[0]
    dv = (np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5 - centre[1]) / half_axes[1]
    shade = np.clip(light[0] * du[None, :] + light[1] * dv[:, None], -0.5, 0.5)
    image[region] *= (1.0 + alpha * shade)[..., None]
