"""Indexing the raw GazeCapture layout (/work/shared/datasets/gazecapture-format.md).

Reads recording folders, their JSON files and checks their JPEGs, with no preparation step.
Keeps the frames where the face, both eyes and the face grid are valid, as the reference tools
do. Boxes are kept as the reference Python tool crops them: truncated to whole pixels, eye boxes
moved by the face box's origin (they are stored relative to it).

Face grid: GazeCapture's faceGrid X and Y are 1-indexed. The public reference code builds the
25x25 mask from them as if they were 0-indexed, which shifts the face one cell right and down;
this reader subtracts 1 and keeps 0-indexed cells (``grid`` below).

Bad input never raises: whatever cannot be read is skipped and counted per kind in
``GazeCaptureIndex.skipped``, and the first case of each kind is logged once with its recording
and frame. Only a path that is not a GazeCapture root at all raises UsageError.

Indexing checks each JPEG by a few bytes at its start and end, so that opening the full dataset
stays quick; ``GazeCaptureIndex.decode_check`` (what `zoo data stats` does) decodes every valid
frame and also drops those whose body is corrupt.
"""
import copy
import dataclasses
import hashlib
import json
import logging
import pathlib
import re

import numpy as np

from zoo.data.progress import Progress
from zoo.data.images import jpeg_problem
from zoo.errors import UsageError

GRID_CELLS = 25
SPLITS = ("train", "val", "test")
DEVICE_TYPES = ("phone", "tablet")
RECORDING_NAME = re.compile(r"^\d{5}$")
JSON_FILES = ("frames", "appleFace", "appleLeftEye", "appleRightEye", "faceGrid", "dotInfo", "info")
BOX_FIELDS = ("X", "Y", "W", "H", "IsValid")
# kind -> (what is counted, what went wrong)
PROBLEMS = {
    "empty_recording": ("recordings", "empty recording (no files or no frames)"),
    "missing_json": ("recordings", "missing JSON file"),
    "malformed_json": ("recordings", "malformed JSON"),
    "length_mismatch": ("recordings", "per-frame arrays of different lengths"),
    "bad_box": ("frames", "valid flags on an empty or out-of-grid box"),
    "missing_jpeg": ("frames", "missing or unreadable JPEG"),
    "corrupt_jpeg": ("frames", "corrupt JPEG"),
}

log = logging.getLogger("zoo.data")


@dataclasses.dataclass(frozen=True)
class Frames:
    """Columns of valid frames. Boxes are int32 (x, y, w, h) pixels of the full frame; ``grid`` is
    the face grid as 0-indexed (column, row, width, height) cells; ``label`` is (XCam, YCam) cm."""
    paths: np.ndarray
    face: np.ndarray
    left_eye: np.ndarray
    right_eye: np.ndarray
    grid: np.ndarray
    label: np.ndarray
    is_tablet: np.ndarray
    split: np.ndarray
    recording: np.ndarray
    frame: np.ndarray

    def __len__(self):
        return len(self.paths)

    def subset(self, keep):
        return Frames(**{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)})

    @staticmethod
    def concatenate(parts):
        fields = [f.name for f in dataclasses.fields(Frames)]
        if not parts:
            empty = {"paths": np.zeros(0, object), "face": np.zeros((0, 4), np.int32),
                     "left_eye": np.zeros((0, 4), np.int32), "right_eye": np.zeros((0, 4), np.int32),
                     "grid": np.zeros((0, 4), np.int32), "label": np.zeros((0, 2), np.float32),
                     "is_tablet": np.zeros(0, bool), "split": np.zeros(0, object),
                     "recording": np.zeros(0, object), "frame": np.zeros(0, np.int32)}
            return Frames(**empty)
        return Frames(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})


@dataclasses.dataclass(frozen=True)
class Recording:
    name: str
    split: str
    device: str
    is_tablet: bool
    frames: int  # all frames listed in frames.json
    valid: int  # frames kept


class _Problems:
    """Counts skipped items per kind; logs the first of each kind."""

    def __init__(self):
        self.counts = {kind: 0 for kind in PROBLEMS}
        self.first = {}

    def add(self, kind, where, detail, count=1):
        """Counts ``count`` cases of ``kind``; the first is kept and logged with ``where`` and ``detail``."""
        self.counts[kind] += count
        if kind not in self.first:
            self.first[kind] = f"{where}: {detail}"
            log.warning("skipping %s: %s (%s); further cases of this kind are only counted",
                        where, detail, PROBLEMS[kind][1])


class GazeCaptureIndex:
    """The valid frames of a GazeCapture root, with per-recording facts and the skip counts."""

    def __init__(self, root, recordings, frames, problems):
        self.root = root
        self.recordings = recordings
        self.frames = frames
        self._problems = problems
        self.skipped = problems.counts
        self.problems = problems.first  # kind -> the first case, "recording/frame: detail"

    def decode_check(self, progress=True):
        """This index without the frames whose JPEG does not decode (each counted as a corrupt
        JPEG): the marker check of indexing cannot see a corrupt body, which training would
        only drop one by one. Decodes every valid frame, so it takes a while on the full data."""
        from PIL import Image
        bad = np.zeros(len(self.frames), bool)
        problems = copy.deepcopy(self._problems)
        bar = Progress(f"decoding the JPEGs of {self.root}", len(bad), enabled=progress)
        for i, path in enumerate(self.frames.paths):
            try:
                with Image.open(path) as image:
                    image.load()
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                bad[i] = True
                where = f"{self.frames.recording[i]}/frames/{pathlib.Path(path).name}"
                problems.add("corrupt_jpeg", where, f"does not decode ({str(error)[:80]})")
            bar.update(i + 1, f"{bad.sum()} corrupt")
        bar.close(f"{bad.sum()} corrupt")
        recording = self.frames.recording
        recordings = [dataclasses.replace(r, valid=r.valid - int(np.sum(bad[recording == r.name])))
                      for r in self.recordings]
        return GazeCaptureIndex(self.root, recordings, self.frames.subset(~bad), problems)

    def select(self, split, limit=None):
        """The frames of ``split``; ``limit`` keeps that many, evenly spread over the split."""
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        frames = self.frames.subset(self.frames.split == split)
        if limit is not None and limit < len(frames):
            spread = np.linspace(0, len(frames) - 1, max(limit, 1)).round().astype(int)
            frames = frames.subset(np.unique(spread))
        return frames

    def fingerprint(self):
        """What the index holds (each valid frame's split, recording, frame number, boxes, grid and
        label) as 16 hex digits of sha256: the same data gives the same value wherever it lies."""
        digest = hashlib.sha256()
        f = self.frames
        digest.update("\n".join(f"{s}/{r}/{n}" for s, r, n in zip(f.split, f.recording, f.frame)).encode())
        for column in (f.face, f.left_eye, f.right_eye, f.grid, f.label):
            digest.update(np.ascontiguousarray(column).tobytes())
        return digest.hexdigest()[:16]

    def split_counts(self):
        return {split: int(np.sum(self.frames.split == split)) for split in SPLITS}

    def stats(self):
        def summary(recordings):
            return {"recordings": len(recordings), "frames": sum(r.frames for r in recordings),
                    "valid_frames": sum(r.valid for r in recordings)}
        return {"root": str(self.root), **summary(self.recordings),
                "splits": {s: summary([r for r in self.recordings if r.split == s]) for s in SPLITS},
                "devices": {d: summary([r for r in self.recordings if r.is_tablet == (d == "tablet")])
                            for d in DEVICE_TYPES},
                "skipped": dict(self.skipped)}


def format_stats(stats):
    """The table `zoo data stats` prints."""
    lines = [f"GazeCapture data at {stats['root']}",
             f"{'':8}{'recordings':>12}{'frames':>10}{'valid frames':>14}"]
    rows = [("all", stats)] + list(stats["splits"].items()) + list(stats["devices"].items())
    for label, row in rows:
        lines.append(f"{label:8}{row['recordings']:>12}{row['frames']:>10}{row['valid_frames']:>14}")
    skipped = [f"{count} {PROBLEMS[kind][0]} ({PROBLEMS[kind][1]})"
               for kind, count in stats["skipped"].items() if count]
    lines.append("skipped: " + ("; ".join(skipped) if skipped else "nothing"))
    return "\n".join(lines)


def _columns(document, fields, dtype):
    return [np.asarray(document[field], dtype) for field in fields]


# What a damaged JSON file raises while it is parsed or read as columns: not JSON, nested too
# deep, a field missing or of the wrong type, a number too large.
_MALFORMED = (KeyError, TypeError, ValueError, RecursionError, OverflowError)


def _read_documents(folder, problems):
    """{JSON file name: parsed document} of one recording, or None (counted) when one is missing
    or not JSON."""
    documents = {}
    for file in JSON_FILES:
        path = folder / f"{file}.json"
        try:
            documents[file] = json.loads(path.read_text())
        except FileNotFoundError:
            problems.add("missing_json", f"{folder.name}/{file}.json", "no such file")
            return None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            detail = "nested too deep" if isinstance(error, RecursionError) else str(error).splitlines()[0]
            problems.add("malformed_json", f"{folder.name}/{file}.json", detail)
            return None
    return documents


def _parse(name, documents, problems):
    """(frame names, face, left, right, grid, label columns, split, device) of one recording's
    documents, or None (counted) when they are malformed or disagree in length."""
    try:
        names = documents["frames"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError("frames.json is not a list of file names")
        face, left, right, grid = (_columns(documents[f], BOX_FIELDS, np.float64)
                                   for f in ("appleFace", "appleLeftEye", "appleRightEye", "faceGrid"))
        label = _columns(documents["dotInfo"], ("XCam", "YCam"), np.float64)
        split, device = documents["info"]["Dataset"], str(documents["info"]["DeviceName"])
        if split not in SPLITS:
            raise ValueError(f"info.json Dataset is {split!r}, not one of {', '.join(SPLITS)}")
    except _MALFORMED as error:
        detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)[:200]
        problems.add("malformed_json", f"{name}/", detail)
        return None
    arrays = face + left + right + grid + label
    if any(a.ndim != 1 for a in arrays):
        problems.add("malformed_json", f"{name}/", "a per-frame field is not a flat list")
        return None
    lengths = {len(names)} | {len(a) for a in arrays}
    if len(lengths) > 1:
        problems.add("length_mismatch", f"{name}/", f"arrays of lengths {sorted(lengths)}")
        return None
    if not names:
        problems.add("empty_recording", f"{name}/", "frames.json lists no frames")
        return None
    return names, face, left, right, grid, label, split, device


def _boxes(face, left, right, grid, label):
    """(face box, (left eye, right eye) boxes, 0-indexed grid cells, label, sane) per frame,
    boxes in whole pixels of the frame as the reference tool cuts them; ``sane``: every box has
    a size, the grid lies inside 25x25 and every value is finite."""
    finite = np.isfinite(np.stack(face + left + right + grid + label, 1)).all(1)
    with np.errstate(invalid="ignore"):  # non-finite values (not sane) cast to garbage
        face_box = np.stack(face[:4], 1).astype(np.int32)  # truncation, as the reference tool
        eyes = [np.stack(eye[:4], 1).astype(np.int32) for eye in (left, right)]
    for eye in eyes:
        eye[:, :2] += face_box[:, :2]  # eye boxes are relative to the face box
    cells = np.stack(grid[:4], 1)
    cells[:, :2] -= 1  # faceGrid X, Y are 1-indexed
    with np.errstate(invalid="ignore"):
        sane = (finite & (face_box[:, 2:] > 0).all(1) & (eyes[0][:, 2:] > 0).all(1)
                & (eyes[1][:, 2:] > 0).all(1) & (cells[:, :2] >= 0).all(1) & (cells[:, 2:] >= 1).all(1)
                & (cells[:, :2] + cells[:, 2:] <= GRID_CELLS).all(1))
    return face_box, eyes, cells, np.stack(label, 1), sane


def _read_recording(folder, problems):
    """(Recording, Frames) of one recording folder, or None when it must be skipped."""
    name = folder.name
    try:
        if not any(folder.iterdir()):
            problems.add("empty_recording", f"{name}/", "empty folder")
            return None
    except OSError as error:
        problems.add("empty_recording", f"{name}/", error.strerror or str(error))
        return None
    documents = _read_documents(folder, problems)
    parsed = documents and _parse(name, documents, problems)
    if not parsed:
        return None
    names, face, left, right, grid, label, split, device = parsed
    valid = (face[4] == 1) & (left[4] == 1) & (right[4] == 1) & (grid[4] == 1)
    face_box, eyes, cells, labels, sane = _boxes(face, left, right, grid, label)
    keep = []
    for i in np.flatnonzero(valid):
        where = f"{name}/frames/{names[i]}"
        if not sane[i]:
            problems.add("bad_box", where, "box of zero size or outside the 25x25 grid")
            continue
        problem = jpeg_problem(folder / "frames" / names[i])
        if problem:
            problems.add(problem[0], where, problem[1])
            continue
        keep.append(i)
    keep = np.asarray(keep, int)
    is_tablet = "ipad" in device.lower()
    count = len(keep)
    frames = Frames(paths=np.array([str(folder / "frames" / names[i]) for i in keep], object),
                    face=face_box[keep], left_eye=eyes[0][keep], right_eye=eyes[1][keep],
                    grid=cells[keep].astype(np.int32), label=labels[keep].astype(np.float32),
                    is_tablet=np.full(count, is_tablet), split=np.full(count, split, object),
                    recording=np.full(count, name, object), frame=keep.astype(np.int32))
    return Recording(name, split, device, is_tablet, len(names), count), frames


def _not_a_root(root, why):
    return UsageError(f"{root} is not a GazeCapture root: {why}")


def check_root(root):
    """The recording folders of GazeCapture root ``root`` (an absolute path); UsageError that says
    what the path is instead when it is not one. Cheap: commands check --data with it first."""
    if not root.exists():
        raise _not_a_root(root, "no such folder")
    if not root.is_dir():
        raise _not_a_root(root, "it is a file; point at the folder that holds the recordings")
    try:
        entries = list(root.iterdir())
    except OSError as error:
        raise _not_a_root(root, f"it cannot be read ({error.strerror})") from None
    folders = sorted(p for p in entries if RECORDING_NAME.match(p.name) and p.is_dir())
    if folders:
        return folders
    if (root / "frames").is_dir() or (root / "info.json").exists():
        raise _not_a_root(root, "it looks like one recording; point at the folder that holds the recordings")
    if any(re.match(r"^\d{5}\.tar\.gz$", p.name) for p in entries):
        raise _not_a_root(root, "its recordings are still packed (00002.tar.gz, ...); "
                                "unpack them there first")
    raise _not_a_root(root, "it holds no recording folders (00002/, 00003/, ...)")


# root -> (its mtime when indexed, the index): the latest index of each root in this process
_OPENED = {}


def open_gazecapture(root, progress=True):
    """Indexes a GazeCapture root (the folder holding 00002/, 00003/, ...)."""
    root = pathlib.Path(root).absolute()
    folders = check_root(root)
    mtime_ns = root.stat().st_mtime_ns
    problems = _Problems()
    recordings, parts = [], []
    bar = Progress(f"indexing {root}", len(folders), enabled=progress)
    for done, folder in enumerate(folders, 1):
        read = _read_recording(folder, problems)
        if read:
            recordings.append(read[0])
            parts.append(read[1])
        bar.update(done, f"{sum(r.valid for r in recordings)} valid frames")
    bar.close(f"{sum(r.valid for r in recordings)} valid frames")
    index = GazeCaptureIndex(root, recordings, Frames.concatenate(parts), problems)
    _OPENED[root] = (mtime_ns, index)
    return index


def load_index(root):
    """``root`` as an index: an index is passed through; a path reuses this process's latest
    index of it unless the root folder changed since, so the splits of a root share one index
    (and its problems are reported once)."""
    if isinstance(root, GazeCaptureIndex):
        return root
    path = pathlib.Path(root).absolute()
    check_root(path)  # the clear error for a wrong path
    mtime_ns, index = _OPENED.get(path, (None, None))
    return index if mtime_ns == path.stat().st_mtime_ns else open_gazecapture(path)


def training_mean(root):
    """Mean (XCam, YCam) in cm of the train split: the prediction of the mean-predictor baseline."""
    index = load_index(root)
    labels = index.select("train").label
    if not len(labels):
        raise UsageError(f"{index.root} has no valid frames in the train split")
    return labels.mean(axis=0)
