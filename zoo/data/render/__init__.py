"""`zoo data render`: an offline dataset in exactly the GazeCapture layout, rendered procedurally.

Every recording is one subject holding one device (phones and tablets) and looking at a dot that
jumps every ``FRAMES_PER_DOT`` frames; the device may be turned once mid-recording (all four
orientations occur). The subject's face and eyes follow the eye model in ``zoo.data.render.painter``, so
the gaze target is learnable from the pixels. Split by subject (70/15/15), deterministic from the
seed. Frames are 240x320 (portrait) or 320x240 (landscape) instead of GazeCapture's 480x640 so
that rendering takes seconds; every file and field of the real layout is written.
"""
import dataclasses
import json
import os
import pathlib
import shutil
import sys

import numpy as np
from PIL import Image

from zoo import artifacts
from zoo.data.recipes import face_grid
from zoo.data.render import painter as face
from zoo.data.gazecapture import open_gazecapture
from zoo.data.progress import Progress
from zoo.errors import UsageError

# Bump whenever the rendered output changes: the default data is cached under this version.
RENDER_VERSION = 1
DEFAULT_RENDER = dict(subjects=160, frames=25, seed=0)
# GazeCapture has 1,474 subjects and about 1,700 frames per recording: anything far beyond is a typo.
MAX_SUBJECTS, MAX_FRAMES = 10_000, 10_000
TOOL = artifacts.Tool("zoo data render", "data")  # what it writes, for zoo.artifacts.folders
BYTES_PER_FRAME = 6_000  # about the smallest a rendered JPEG gets: the free-space check's floor
SETTINGS_FILE = "rendered.json"  # at the root, next to the recordings; the reader ignores it
FPS = 30
FRAMES_PER_DOT = 2
HELD_OUT_SHARE = 0.15  # of the subjects, for val and again for test
FRAME_SIZE = {"portrait": (240, 320), "landscape": (320, 240)}  # (width, height) pixels
ORIENTATION_ODDS = {1: 0.45, 2: 0.1, 3: 0.225, 4: 0.225}
# Per-frame detector failures on top of faces that leave the frame.
ABSENT_RATE, BLINK_RATE, EYE_MISS_RATE = 0.10, 0.08, 0.05
MIN_FACE_INSIDE = 0.8  # share of the face box inside the frame for the face to be detected
# Detector boxes: their size and the standard deviations of their centre and size, as shares of it.
# Far steadier than Apple's detector: box jitter hides the iris's offset in the crop, and a
# steady box keeps gaze quick to learn.
FACE_BOX = dict(size=1.05, centre_jitter=0.005, size_jitter=0.01)  # size: x the face's width
EYE_BOX = dict(size=1.3, centre_jitter=0.01, size_jitter=0.02)  # size: x the eye opening's width
HEAD_ROLL_STD, HEAD_TURN_STD = np.radians(2), np.radians(1.0)  # turn: yaw and pitch
# Head position: a subject's distance and offset (from 0.6 x the screen centre) are drawn once,
# then sway a little from frame to frame.
HEAD_DISTANCE_CM = {False: (28, 38), True: (34, 46)}  # by is_tablet
HEAD_OFFSET_STD_CM, HEAD_SWAY_STD_CM = 1.0, 0.3


@dataclasses.dataclass(frozen=True)
class Device:
    """Screen geometry in portrait: size in points and cm, and where the front camera sits
    (cm right of the screen's left edge, cm above its top edge). Approximate Apple figures."""
    name: str
    is_tablet: bool
    points: tuple
    screen_cm: tuple
    camera_cm: tuple


PHONES = (Device("iPhone 6", False, (375, 667), (5.85, 10.40), (1.86, 0.80)),
          Device("iPhone 6s", False, (375, 667), (5.85, 10.40), (1.86, 0.80)),
          Device("iPhone 6 Plus", False, (414, 736), (6.85, 12.17), (2.36, 0.87)),
          Device("iPhone 5S", False, (320, 568), (4.94, 8.78), (2.47, 1.08)))
TABLETS = (Device("iPad Air 2", True, (768, 1024), (15.37, 20.49), (7.69, 0.96)),
           Device("iPad Mini", True, (768, 1024), (12.07, 16.09), (6.04, 1.03)))


def is_landscape(orientation):
    return orientation in (3, 4)


def screen_points(device, orientation):
    """(W, H) of the screen in points as the UI is drawn in ``orientation``."""
    width, height = device.points
    return (height, width) if is_landscape(orientation) else (width, height)


def screen_to_camera_cm(device, orientation, x_pts, y_pts):
    """GazeCapture's (XCam, YCam): a screen point (points from the UI's top-left) in cm from the
    camera, x right and y up in the UI's frame. Orientation 1 portrait, 2 upside down,
    3 landscape with the home button right (camera left), 4 home button left (camera right)."""
    width_cm, height_cm = device.screen_cm
    cam_x, above = device.camera_cm
    camera = {1: (cam_x, -above), 2: (width_cm - cam_x, height_cm + above),
              3: (-above, width_cm - cam_x), 4: (height_cm + above, cam_x)}[orientation]
    cm_per_point = width_cm / device.points[0]
    return x_pts * cm_per_point - camera[0], camera[1] - y_pts * cm_per_point


def _inside_share(box, frame_size):
    x, y, w, h = box
    width, height = frame_size
    overlap = max(0.0, min(x + w, width) - max(x, 0.0)) * max(0.0, min(y + h, height) - max(y, 0.0))
    return overlap / (w * h)


def _pick(rng, palette, jitter=0.04):
    colour = np.asarray(palette[rng.integers(len(palette))], np.float32)
    return np.clip(colour + rng.uniform(-jitter, jitter, 3), 0, 1).astype(np.float32)


def _sample_look(rng):
    tone = rng.uniform()
    skin = (1 - tone) * np.array([0.96, 0.80, 0.69]) + tone * np.array([0.36, 0.23, 0.16])
    skin = np.clip(skin + rng.uniform(-0.03, 0.03, 3), 0, 1).astype(np.float32)
    light_angle = rng.uniform(0, 2 * np.pi)
    return face.Look(
        face_half_size=(7.0 * rng.uniform(0.9, 1.1), 9.0 * rng.uniform(0.9, 1.1)),
        ipd=rng.uniform(6.4, 7.4), skin=skin,
        hair=_pick(rng, [(0.08, 0.07, 0.06), (0.30, 0.20, 0.12), (0.75, 0.62, 0.38),
                         (0.60, 0.60, 0.60), (0.55, 0.25, 0.12)]),
        iris=_pick(rng, [(0.38, 0.24, 0.12), (0.22, 0.14, 0.08), (0.30, 0.42, 0.55),
                         (0.32, 0.40, 0.22), (0.40, 0.44, 0.47)]),
        lips=(skin * np.array([0.75, 0.5, 0.5])).astype(np.float32),
        shirt=rng.uniform(0.1, 0.9, 3).astype(np.float32),
        light=np.array([np.cos(light_angle), np.sin(light_angle)]) * rng.uniform(0.05, 0.3),
        background=np.clip(rng.uniform(0.2, 0.8, 3) + rng.uniform(-0.15, 0.15, (4, 5, 3)), 0, 1),
        noise_std=rng.uniform(1.5, 5.0), blur_px=rng.uniform(0.3, 0.9))


def _background(look, frame_size):
    """The subject's smooth background field, bilinearly stretched over the frame."""
    width, height = frame_size
    field = look.background
    rows = np.linspace(0, field.shape[0] - 1, height)
    cols = np.linspace(0, field.shape[1] - 1, width)
    r0 = np.minimum(rows.astype(int), field.shape[0] - 2)
    c0 = np.minimum(cols.astype(int), field.shape[1] - 2)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    top = field[r0][:, c0] * (1 - fc) + field[r0][:, c0 + 1] * fc
    bottom = field[r0 + 1][:, c0] * (1 - fc) + field[r0 + 1][:, c0 + 1] * fc
    return (top * (1 - fr) + bottom * fr).astype(np.float32)


def _orientations(rng, frames):
    """Per-frame orientation: one for half of the recordings, turned once halfway for the rest."""
    choices, odds = list(ORIENTATION_ODDS), list(ORIENTATION_ODDS.values())
    first, second = rng.choice(choices, 2, p=odds)
    turn = frames // 2 if rng.uniform() < 0.5 else frames
    return [int(first if i < turn else second) for i in range(frames)]


def _box(centre, side):
    return (float(centre[0] - side / 2), float(centre[1] - side / 2), float(side), float(side))


class _Columns(dict):
    """JSON files as dicts of per-frame lists."""

    def add(self, file, **values):
        for key, value in values.items():
            self.setdefault(file, {}).setdefault(key, []).append(value)


@dataclasses.dataclass(frozen=True)
class _Subject:
    """One subject and their recording: looks, device, habits."""
    look: face.Look
    device: Device
    distance: float  # cm, mean head distance
    offset: np.ndarray  # cm, mean head position relative to 0.6 x the screen centre
    orientations: list  # per frame
    dots: np.ndarray  # (dots, 2) positions as shares of the screen
    jpeg_quality: int


@dataclasses.dataclass(frozen=True)
class _Frame:
    orientation: int
    frame_size: tuple
    dot: int
    dot_pts: tuple
    target: tuple  # (XCam, YCam) cm
    geometry: face.Geometry
    present: bool  # the subject is in view
    eyes_open: bool
    face_box: tuple  # detector boxes, (x, y, w, h) pixels of the frame
    face_valid: bool
    eye_boxes: tuple  # (subject's left, subject's right)
    eye_valid: tuple


def _sample_subject(rng, device, frames):
    return _Subject(look=_sample_look(rng), device=device,
                    distance=rng.uniform(*HEAD_DISTANCE_CM[device.is_tablet]),
                    offset=rng.normal(0, HEAD_OFFSET_STD_CM, 2), orientations=_orientations(rng, frames),
                    dots=rng.uniform(0.05, 0.95, (frames // FRAMES_PER_DOT + 1, 2)),
                    jpeg_quality=int(rng.integers(80, 94)))


def _sample_frame(subject, i, rng):
    """Frame ``i``: the dot, the head pose, the projected face and what the detector reports."""
    device, look = subject.device, subject.look
    orientation = subject.orientations[i]
    frame_size = FRAME_SIZE["landscape" if is_landscape(orientation) else "portrait"]
    width_pts, height_pts = screen_points(device, orientation)
    dot = i // FRAMES_PER_DOT
    x_pts, y_pts = subject.dots[dot] * (width_pts, height_pts)
    target = screen_to_camera_cm(device, orientation, x_pts, y_pts)
    centre = np.array(screen_to_camera_cm(device, orientation, width_pts / 2, height_pts / 2))
    head = (np.append(0.6 * centre + subject.offset, subject.distance)
            + rng.normal(0, HEAD_SWAY_STD_CM, 3))
    yaw, pitch = np.clip(rng.normal(0, HEAD_TURN_STD, 2), -3 * HEAD_TURN_STD, 3 * HEAD_TURN_STD)
    roll = float(np.clip(rng.normal(0, HEAD_ROLL_STD), -3 * HEAD_ROLL_STD, 3 * HEAD_ROLL_STD))
    geometry = face.face_geometry(look, face.Pose(head, yaw, pitch, roll), target, frame_size)
    present = rng.uniform() >= ABSENT_RATE
    eyes_open = rng.uniform() >= BLINK_RATE
    missed_eye = rng.integers(2) if rng.uniform() < EYE_MISS_RATE else None

    scale = geometry.scale
    face_side = (2 * look.face_half_size[0] * FACE_BOX["size"] * scale
                 * (1 + rng.normal(0, FACE_BOX["size_jitter"])))
    face_box = _box(geometry.points["face_box"] + rng.normal(0, FACE_BOX["centre_jitter"] * face_side, 2),
                    face_side)
    face_valid = present and _inside_share(face_box, frame_size) >= MIN_FACE_INSIDE
    eye_boxes, eye_valid = [], []
    for side, eye in enumerate((geometry.left_eye, geometry.right_eye)):
        eye_side = (2 * face.EYE_HALF_SIZE[0] * EYE_BOX["size"] * scale
                    * (1 + rng.normal(0, EYE_BOX["size_jitter"])))
        box = _box(eye.opening + rng.normal(0, EYE_BOX["centre_jitter"] * eye_side, 2), eye_side)
        eye_boxes.append(box)
        inside = 0 <= box[0] + box[2] / 2 < frame_size[0] and 0 <= box[1] + box[3] / 2 < frame_size[1]
        eye_valid.append(face_valid and eyes_open and missed_eye != side and inside)
    return _Frame(orientation, frame_size, dot, (float(x_pts), float(y_pts)), target, geometry, present,
                  eyes_open, face_box, face_valid, tuple(eye_boxes), tuple(eye_valid))


def _render_recording(folder, device, split, frames, seed):
    """Writes one recording (frames/*.jpg and the JSON files) of one subject."""
    rng = np.random.default_rng(seed)
    subject = _sample_subject(rng, device, frames)
    look = subject.look
    backgrounds = {}
    # Sensor noise: each frame takes a window at a random start of a bank twice a frame's size.
    noise = np.round(rng.standard_normal(6 * int(np.prod(FRAME_SIZE["portrait"])), dtype=np.float32)
                     * look.noise_std).astype(np.int16)
    columns = _Columns()
    (folder / "frames").mkdir(parents=True)
    empty_box = dict(X=0.0, Y=0.0, W=0.0, H=0.0, IsValid=0)
    for i in range(frames):
        frame = _sample_frame(subject, i, rng)
        if frame.frame_size not in backgrounds:
            backgrounds[frame.frame_size] = _background(look, frame.frame_size)
        background = backgrounds[frame.frame_size]
        height, width = background.shape[:2]
        start = rng.integers(len(noise) - height * width * 3)
        frame_noise = noise[start:start + height * width * 3].reshape(height, width, 3)
        image = face.paint(look, frame.geometry if frame.present else None, background,
                           (frame.eyes_open, frame.eyes_open), frame_noise)
        name = f"{i:05d}.jpg"
        Image.fromarray(image).save(folder / "frames" / name, quality=subject.jpeg_quality)

        columns.setdefault("frames", []).append(name)
        x, y, w, h = frame.face_box
        columns.add("appleFace", **(dict(X=x, Y=y, W=w, H=h, IsValid=1) if frame.face_valid else empty_box))
        for file, box, valid in zip(("appleLeftEye", "appleRightEye"), frame.eye_boxes, frame.eye_valid):
            relative = dict(X=box[0] - x, Y=box[1] - y, W=box[2], H=box[3], IsValid=1)
            columns.add(file, **(relative if valid else empty_box))
        all_valid = frame.face_valid and all(frame.eye_valid)
        grid = face_grid(frame.face_box, frame.frame_size) if all_valid else (0, 0, 0, 0)
        columns.add("faceGrid", **dict(zip("XYWH", grid)), IsValid=int(all_valid))
        columns.add("dotInfo", DotNum=frame.dot, XPts=frame.dot_pts[0], YPts=frame.dot_pts[1],
                    XCam=float(frame.target[0]), YCam=float(frame.target[1]),
                    Time=(i % FRAMES_PER_DOT + 1) / FPS)
        width_pts, height_pts = screen_points(device, frame.orientation)
        columns.add("screen", H=height_pts, W=width_pts, Orientation=frame.orientation)

    columns["info"] = {"TotalFrames": frames,
                       "NumFaceDetections": int(sum(columns["appleFace"]["IsValid"])),
                       "NumEyeDetections": int(sum(np.logical_and(columns["appleLeftEye"]["IsValid"],
                                                                  columns["appleRightEye"]["IsValid"]))),
                       "Dataset": split, "DeviceName": device.name}
    columns["motion"] = _motion(rng, subject.orientations)
    for file, content in columns.items():
        (folder / f"{file}.json").write_text(json.dumps(_rounded(content), separators=(",", ":")))


def _motion(rng, orientations):
    """Device motion at 60 Hz (GazeCapture's motion.json); gravity follows the orientation."""
    gravity = {1: (0, -1, 0), 2: (0, 1, 0), 3: (-1, 0, 0), 4: (1, 0, 0)}
    samples = []
    for k in range(2 * len(orientations)):
        frame = k // 2
        tilt = rng.normal(0, 0.05, 3)
        samples.append({"Time": k / 60, "DotNum": frame // FRAMES_PER_DOT,
                        "GravityX": gravity[orientations[frame]][0] + tilt[0],
                        "GravityY": gravity[orientations[frame]][1] + tilt[1], "GravityZ": -0.3 + tilt[2],
                        "UserAcceleration": list(rng.normal(0, 0.02, 3)),
                        "RotationRate": list(rng.normal(0, 0.05, 3))})
    return samples


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (np.floating, np.integer)):
        return _rounded(value.item())
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _plan(subjects, seed):
    """(folder number, split, device) per subject: split 70/15/15 by subject; within each split,
    every fourth subject from the second on holds a tablet; folder numbers have gaps."""
    rng = np.random.default_rng(seed)
    held_out = max(1, round(HELD_OUT_SHARE * subjects))
    order = rng.permutation(subjects)
    splits = ["train"] * subjects
    for position, subject in enumerate(order[:2 * held_out]):
        splits[subject] = "test" if position < held_out else "val"
    folders = 1 + np.cumsum(rng.integers(1, 4, subjects))
    seen = {"train": 0, "val": 0, "test": 0}
    plan = []
    for subject, split in enumerate(splits):
        is_tablet = seen[split] % 4 == 1
        seen[split] += 1
        devices = TABLETS if is_tablet else PHONES
        plan.append((int(folders[subject]), split, devices[rng.integers(len(devices))]))
    return plan


def _check_request(out, subjects, frames, overwrite=False):
    """``out`` as an absolute path, once the request is known to be possible: sane counts, an
    absent or empty ``out`` (with ``overwrite``: any folder zoo.artifacts lets it replace) in a
    writable folder with room for at least the JPEGs."""
    if subjects < 3:
        raise UsageError(f"--subjects must be at least 3 (one each for train, val and test), got {subjects}")
    for flag, value, most in (("--subjects", subjects, MAX_SUBJECTS), ("--frames", frames, MAX_FRAMES)):
        if not 1 <= value <= most:
            raise UsageError(f"{flag} must be 1 to {most:,}, got {value:,}")
    out = artifacts.check_output(out, TOOL, (), overwrite=True)  # never a build, a package, ...
    if out.exists() and any(out.iterdir()) and not overwrite:  # and, here, nothing else unasked
        raise UsageError(f"{out} already exists; choose a new --out, or pass --overwrite to replace an "
                         "earlier rendering there (files of yours are kept)")
    existing = next(folder for folder in out.parents if folder.exists())
    needed, free = subjects * frames * BYTES_PER_FRAME, shutil.disk_usage(existing).free
    if needed > free:
        raise UsageError(f"{subjects} x {frames} frames need at least {needed // 1000:,} kB and "
                         f"{existing} has {free // 1000:,} kB free; free some space or choose another --out")
    return out


def render_dataset(out, subjects, frames, seed, progress=True, overwrite=False):
    """Renders ``subjects`` recordings of ``frames`` frames into ``out`` (which must not exist or
    be empty, unless ``overwrite``) through a temporary folder next to it; returns the stats of
    what was written."""
    out = _check_request(out, subjects, frames, overwrite)
    try:
        with artifacts.staged(out, TOOL, (), overwrite) as work:
            bar = Progress(f"rendering {out.name}", subjects, enabled=progress)
            for done, (number, split, device) in enumerate(_plan(subjects, seed), 1):
                _render_recording(work / f"{number:05d}", device, split, frames,
                                  np.random.SeedSequence([seed, number]))
                bar.update(done, f"{done * frames} frames")
            bar.close(f"{subjects * frames} frames")
            settings = dict(renderer_version=RENDER_VERSION, subjects=subjects, frames=frames, seed=seed)
            (work / SETTINGS_FILE).write_text(json.dumps(settings, indent=1) + "\n")
    except OSError as error:  # e.g. the folder was made read-only: nothing is left behind
        raise artifacts.WriteFailed(f"cannot write the dataset next to {out} ({error.strerror or error}); "
                                    "nothing was written", error.errno) from None
    return open_gazecapture(out).stats()


def render_settings(root):
    """The settings a rendered dataset was made with (``rendered.json``), or None for real data."""
    path = pathlib.Path(root) / SETTINGS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cache_root():
    return pathlib.Path(os.environ.get("ZOO_CACHE") or pathlib.Path.home() / ".cache" / "zoo")


def default_data_root():
    """The rendered default dataset, rendered on first use into the cache folder; its name holds
    the renderer version and DEFAULT_RENDER, so a change of either renders anew."""
    settings = DEFAULT_RENDER
    root = cache_root() / (f"gazecapture-render-v{RENDER_VERSION}-{settings['subjects']}x"
                           f"{settings['frames']}-seed{settings['seed']}")
    if not root.is_dir():
        print(f"rendering the default dataset into {root} (first use only)", file=sys.stderr)
        try:
            render_dataset(root, **settings, progress=True)
        except (UsageError, OSError):
            if not root.is_dir():  # another process finishing first is fine
                raise
    return root
