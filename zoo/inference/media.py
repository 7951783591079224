"""Frames in and out for `zoo predict`, through OpenCV: photos, video files and cameras checked
before any work (one UsageError line for the first that cannot be read, native libraries' own
complaints kept off stderr), read as BGR frames (JPEG files by training's own decoder, so that a
photo gives the model the pixels a GazeCapture frame would), and the annotated frames written as
NAME.png and NAME.mp4 beside predictions.jsonl.

OpenCV is imported inside the functions (`zoo --help` stays instant); TensorFlow only to decode a
JPEG, after every input was checked.
"""
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import sys
import time

from zoo.errors import UsageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
JPEG_MAGIC = b"\xff\xd8\xff"
DEFAULT_FPS = 30.0


@dataclasses.dataclass(frozen=True)
class Source:
    """One input of `zoo predict`."""
    kind: str     # "image", "video" or "camera"
    target: object  # the file path, or the camera index
    label: str    # how output lines name it


@contextlib.contextmanager
def _native_stderr_silenced():
    """Sends what native code writes on file descriptor 2 (libpng's "libpng error: ...", FFmpeg,
    V4L) to /dev/null meanwhile: a bad input is reported in one line of ours."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _opens(target):
    """Whether OpenCV opens video file or camera ``target`` and reads a first frame from it."""
    import cv2
    with _native_stderr_silenced():
        capture = cv2.VideoCapture(target)
        ok = capture.isOpened() and capture.read()[0]
        capture.release()
    return ok


def check_sources(paths, camera=None):
    """The inputs, each opened once to check it (UsageError for the first that cannot be read)."""
    import cv2
    cv2.setLogLevel(0)  # OpenCV's own warnings (no camera, unknown container) would be extra lines
    sources = [_file_source(pathlib.Path(path)) for path in paths]
    if camera is not None:
        if not _opens(camera):
            raise UsageError(f"camera {camera} cannot be opened (no such camera, or it gives no frame)")
        sources.append(Source("camera", camera, f"camera {camera}"))
    if not sources:
        raise UsageError("give at least one INPUT image or video file, or --camera N")
    return sources


def _file_source(path):
    import cv2
    if not path.is_file():
        what = "a folder, not an image or video file" if path.is_dir() else "no such file"
        raise UsageError(f"{path}: {what}")
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        with _native_stderr_silenced():
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            return Source("image", str(path), str(path))
    if suffix not in IMAGE_SUFFIXES and _opens(str(path)):
        return Source("video", str(path), str(path))
    what = ("an image" if suffix in IMAGE_SUFFIXES else "a video" if suffix in VIDEO_SUFFIXES
            else "an image or a video")
    raise UsageError(f"{path}: OpenCV cannot read it as {what} (damaged, empty or not that kind of file)")


def read_frames(source, max_frames=None, seconds=None):
    """(frame number, BGR frame, RGB frame or None) of a source; ``seconds["decode"]`` gathers the
    time spent decoding. JPEG files are decoded by training's decoder (zoo.data.recipes.decode)."""
    import cv2
    seconds = seconds if seconds is not None else {"decode": 0.0}
    started = time.perf_counter()
    if source.kind == "image":
        with open(source.target, "rb") as file:
            jpeg = file.read(3) == JPEG_MAGIC
        rgb = _decode_jpeg(source.target) if jpeg else None
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if jpeg else cv2.imread(source.target, cv2.IMREAD_COLOR)
        seconds["decode"] += time.perf_counter() - started
        yield 0, bgr, rgb
        return
    capture = cv2.VideoCapture(source.target)
    try:
        number = 0
        while max_frames is None or number < max_frames:
            ok, bgr = capture.read()
            seconds["decode"] += time.perf_counter() - started
            if not ok:
                return
            yield number, bgr, None
            number += 1
            started = time.perf_counter()
    finally:
        capture.release()


def _decode_jpeg(path):
    import tensorflow as tf

    from zoo.data import recipes
    try:
        return recipes.decode(path).numpy()
    except tf.errors.OpError as error:
        raise UsageError(f"{path}: the JPEG cannot be decoded ({error.message.splitlines()[0]})") from None


def frames_per_second(source):
    import cv2
    if source.kind != "video":  # a camera is already open: its rate is not asked twice
        return DEFAULT_FPS
    capture = cv2.VideoCapture(source.target)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return fps if 1 <= fps <= 240 else DEFAULT_FPS


class Outputs:
    """Annotated images (NAME.png) and videos (NAME.mp4, mp4v; MJPG .avi where mp4v is missing)
    and predictions.jsonl, written into the staging folder ``work``."""

    def __init__(self, work):
        self.work, self.used, self.writer = pathlib.Path(work), set(), None
        self.lines = open(self.work / "predictions.jsonl", "w")

    def _name(self, source):
        stem = f"camera{source.target}" if source.kind == "camera" else pathlib.Path(source.target).stem
        stem, count = re.sub(r"[^\w.-]", "_", stem) or "input", 1
        name = stem
        while name in self.used:
            count += 1
            name = f"{stem}-{count}"
        self.used.add(name)
        return name

    def start(self, source):
        self.close_video()
        self.name, self.source = self._name(source), source

    def frame(self, image):
        import cv2
        if self.source.kind == "image":
            if not cv2.imwrite(str(self.work / f"{self.name}.png"), image):
                raise UsageError(f"cannot write {self.name}.png in {self.work.parent}")
            return
        if self.writer is None:
            self.writer = _video_writer(self.work / self.name, frames_per_second(self.source), image.shape)
        self.writer.write(image)

    def record(self, record):
        self.lines.write(json.dumps(record) + "\n")

    def close_video(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def close(self):
        self.close_video()
        self.lines.close()


def _video_writer(stem, fps, shape):
    import cv2
    for suffix, codec in ((".mp4", "mp4v"), (".avi", "MJPG")):
        writer = cv2.VideoWriter(str(stem) + suffix, cv2.VideoWriter_fourcc(*codec), fps,
                                 (shape[1], shape[0]))
        if writer.isOpened():
            return writer
        pathlib.Path(str(stem) + suffix).unlink(missing_ok=True)
    raise UsageError(f"OpenCV cannot write a video in {stem.parent.parent} (neither mp4v nor MJPG)")
