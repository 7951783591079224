"""Frames in and out for `zoo predict`, through OpenCV: photos, video files and cameras checked
before any work (one UsageError line for the first that cannot be read, native libraries' own
complaints kept off stderr), read as BGR frames (JPEG files by training's own decoder, so that a
photo gives the model the pixels a GazeCapture frame would; photos turned upright by their EXIF
orientation), and the annotated frames written as NAME.png and NAME.mp4 beside predictions.jsonl.

Photos are checked against the project's one pixel limit and turned upright by their EXIF
orientation through zoo.data.images. A video that ends before the frame count its header declares
is reported (how many frames were read of how many) and is an error unless the caller keeps going.

OpenCV is imported inside the functions (`zoo --help` stays instant); TensorFlow only to decode a
JPEG, after every input was checked.
"""
import contextlib
import dataclasses
import errno
import json
import os
import pathlib
import re
import shutil
import sys
import time

from zoo.artifacts import WriteFailed
from zoo.data.images import IMAGE_SUFFIXES, JPEG_MAGIC, check_image, exif_orientation, upright
from zoo.errors import UsageError, progress

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
DEFAULT_FPS = 30.0
FULL_DISK_BYTES = 1 << 20  # less free space than this after a video came out short: the disk filled


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
            raise UsageError(f"camera {camera} cannot be opened (no such camera, or it gives no frame); give "
                             "another --camera N (0 is the first) or video files")
        sources.append(Source("camera", camera, f"camera {camera}"))
    if not sources:
        raise UsageError("give at least one INPUT image or video file, or --camera N")
    return sources


def _file_source(path):
    import cv2
    if not path.is_file():
        what = "a folder, not an image or video file" if path.is_dir() else "no such file"
        raise UsageError(f"{path}: {what}; give image or video files")
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES and check_image(path) is not None:
        with _native_stderr_silenced():
            try:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            except cv2.error:
                image = None
        if image is not None:
            return Source("image", str(path), str(path))
    if suffix not in IMAGE_SUFFIXES and _opens(str(path)):
        return Source("video", str(path), str(path))
    what = ("an image" if suffix in IMAGE_SUFFIXES else "a video" if suffix in VIDEO_SUFFIXES
            else "an image or a video")
    raise UsageError(f"{path}: OpenCV cannot read it as {what} (damaged, empty or not that kind of file); "
                     "convert it (e.g. to PNG or MP4) or give another file")


def read_frames(source, max_frames=None, seconds=None, keep_going=False):
    """(frame number, BGR frame, RGB frame or None) of a source; ``seconds["decode"]`` gathers the
    time spent decoding. JPEG files are decoded by training's decoder (zoo.data.recipes.decode),
    photos turned upright by their EXIF orientation. A video that ends before the frame count
    its header declares is a UsageError after its last frame, unless ``keep_going`` (a warning)."""
    import cv2
    seconds = seconds if seconds is not None else {"decode": 0.0}
    started = time.perf_counter()
    if source.kind == "image":
        bgr, rgb = _read_image(source.target)
        seconds["decode"] += time.perf_counter() - started
        yield 0, bgr, rgb
        return
    capture = cv2.VideoCapture(source.target)
    declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if source.kind == "video" else 0
    number = 0
    try:
        while max_frames is None or number < max_frames:
            ok, bgr = capture.read()
            seconds["decode"] += time.perf_counter() - started
            if not ok:
                break
            yield number, bgr, None
            number += 1
            started = time.perf_counter()
    finally:
        capture.release()
    if number < declared and (max_frames is None or number < max_frames):
        _cut_short(source, number, declared, keep_going)


def _read_image(path):
    """(BGR, RGB or None) of a photo, upright."""
    import cv2
    orientation = exif_orientation(path)
    with open(path, "rb") as file:
        jpeg = file.read(3) == JPEG_MAGIC
    if not jpeg:
        return upright(cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION), orientation), None
    rgb = upright(_decode_jpeg(path), orientation)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), rgb


def _cut_short(source, number, declared, keep_going):
    message = (f"{source.label}: read {number} of the {declared} frames its header declares (the file is cut "
               "short or damaged)")
    if not keep_going:
        raise UsageError(f"{message}; nothing was written: repair or re-encode it, or keep going on the "
                         "frames it holds with zoo predict --keep-going")
    progress(f"warning: {message}; kept the {number} frames read (--keep-going)")


def _decode_jpeg(path):
    import tensorflow as tf

    from zoo.data import recipes
    try:
        return recipes.decode(path).numpy()
    except tf.errors.OpError as error:
        raise UsageError(f"{path}: the JPEG cannot be decoded ({error.message.splitlines()[0]}); save it "
                         "again, e.g. as PNG") from None


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
    and predictions.jsonl, written into the staging folder ``work``; a context manager that closes
    them. A write the file system refuses is an OSError (zoo.artifacts.staged reports a full disk);
    a video OpenCV did not write whole is a WriteFailed (its writer does not say why)."""

    def __init__(self, work):
        self.work, self.used, self.writer = pathlib.Path(work), set(), None
        self.lines = open(self.work / "predictions.jsonl", "w")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

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
            encoded, png = cv2.imencode(".png", image)
            if not encoded:
                raise WriteFailed(f"OpenCV cannot encode {self.name}.png")
            (self.work / f"{self.name}.png").write_bytes(png.tobytes())
            return
        if self.writer is None:
            self.writer = _video_writer(self.work / self.name, frames_per_second(self.source), image.shape)
            self.frames = 0
        self.writer.write(image)
        self.frames += 1

    def record(self, record):
        self.lines.write(json.dumps(record) + "\n")

    def close_video(self):
        """Closes the video being written, and checks that it holds every frame written to it."""
        import cv2
        if self.writer is None:
            return
        self.writer.release()
        path, self.writer = next(self.work.glob(f"{self.name}.*")), None
        capture = cv2.VideoCapture(str(path))
        held = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        capture.release()
        if held < self.frames:
            full = shutil.disk_usage(self.work).free < FULL_DISK_BYTES
            raise WriteFailed(f"OpenCV wrote {held} of the {self.frames} frames of {path.name}"
                              + ("; the disk is full" if full else ""), errno.ENOSPC if full else None)

    def close(self):
        try:
            self.close_video()
        finally:
            self.lines.close()


def _video_writer(stem, fps, shape):
    import cv2
    for suffix, codec in ((".mp4", "mp4v"), (".avi", "MJPG")):
        writer = cv2.VideoWriter(str(stem) + suffix, cv2.VideoWriter_fourcc(*codec), fps,
                                 (shape[1], shape[0]))
        if writer.isOpened():
            return writer
        pathlib.Path(str(stem) + suffix).unlink(missing_ok=True)
    raise WriteFailed(f"OpenCV cannot write a video in {stem.parent.parent} (neither mp4v nor MJPG)")
