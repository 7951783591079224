"""Frames per second of `zoo predict` end to end: decode, detect, crop, infer, draw, on a 640x480
video made from the photos in shared/images (faces that move and change size).

  python -m benchmarks.predict runs/tinytracker                 # a build folder (its int8 TFLite)
  python -m benchmarks.predict model_int8.tflite --thread_counts=1,2 --detector=blazeface,haar

The video is made once in a temporary folder (or give one with --video). Each detector (as
`zoo predict --detector NAME` names them; blazeface on a video is the full-range model) and each
thread count runs the same FramePipeline as `zoo predict --out` (zoo.inference.predict: the detector and the
model card's box map, the training recipes, the interpreter, the annotated frame; encoding the
output video is not timed) with OpenCV, the detector and the interpreter on that many threads,
after --warmup_frames untimed frames. A row names the detector and gives the frames per second of
the whole loop, the milliseconds per frame of each stage (crop and infer summed over the faces
of the frame) and the CPU time the process used per frame (all its threads: on a machine shared
with other work, wall time counts their turns too, CPU time does not; on 1 thread it is what the
frame would take alone, bar cache contention). The Haar detector's settings (--detect_side,
--scale_factor, --min_face, --min_neighbors) default to zoo.inference.faces'.
"""
import dataclasses
import pathlib
import tempfile
import time

import numpy as np
from absl import app, flags

import benchmarks
from benchmarks import CPU, MEASURED
from zoo.inference import faces
from zoo.errors import UsageError

IMAGES = benchmarks.REPO.parent / "shared" / "images"
FRAME_SIZE = (640, 480)  # width, height
STAGE_KEYS = tuple(f"{stage}_ms" for stage in ("decode", "detect", "crop", "infer", "draw"))

flags.DEFINE_string("video", "", "video file to run on (default: one made from shared/images)")
flags.DEFINE_integer("video_frames", 300, "frames of the video made from shared/images", lower_bound=1)
flags.DEFINE_list("thread_counts", ["1", "2"], "OpenCV and interpreter threads, one row each")
flags.DEFINE_integer("warmup_frames", 10, "untimed frames before timing", lower_bound=0)
flags.DEFINE_enum("runtime", "litert", ["litert", "tflite_runtime"], "TFLite runtime")
flags.DEFINE_list("detector", [faces.DEFAULT_DETECTOR, "haar"],
                  f"face detectors, as zoo predict --detector names them ({', '.join(faces.DETECTORS)}): "
                  "rows for each")
flags.DEFINE_integer("detect_side", faces.DETECT_SIDE, "haar: longer side of the frame the detector searches",
                     lower_bound=24)
flags.DEFINE_float("scale_factor", faces.SCALE_FACTOR, "haar: the cascade's pyramid step", lower_bound=1.01)
flags.DEFINE_integer("min_face", faces.MIN_FACE, "haar: smallest face at detection resolution",
                     lower_bound=24)
flags.DEFINE_integer("min_neighbors", faces.MIN_NEIGHBORS, "haar: hits needed for a face", lower_bound=1)
flags.register_validator("thread_counts",
                         lambda counts: bool(counts) and all(c.isdigit() and int(c) > 0 for c in counts),
                         "--thread_counts must be a comma-separated list of positive whole numbers")
flags.register_validator("detector", lambda names: bool(names) and set(names) <= set(faces.DETECTORS),
                         f"--detector must be a comma-separated list of {', '.join(faces.DETECTORS)}")
flags.declare_key_flag("json")
FLAGS = flags.FLAGS

benchmarks.COLUMNS.update({  # this app's own columns, rendered like the shared ones
    "detector": ("detector", str), "frames": ("frames", str), "faces": ("faces", str),
    "e2e_ms": ("ms/frame", lambda v: f"{v:.2f}"), "cpu_ms": ("cpu ms/frame", lambda v: f"{v:.2f}"),
    **{key: (key.replace("_ms", " ms"), lambda v: f"{v:.2f}") for key in STAGE_KEYS}})
TABLE = ("model", "artifact", "detector", "runtime", "threads", "frames", "faces", "fps", "e2e_ms", "cpu_ms",
         *STAGE_KEYS)


def _photos(images=IMAGES):
    import cv2
    photos = [cv2.imread(str(path)) for path in sorted(images.glob("*")) if path.suffix in (".jpg", ".bmp")]
    return [photo for photo in photos if photo is not None]


def synthetic_video(path, frames, photos=None, size=FRAME_SIZE, fps=30, blank=()):
    """Writes a ``size`` video of ``frames`` frames to ``path`` (.avi: MJPG, else mp4v): each
    photo of shared/images in turn (a new one every 2 s), scaled between 0.45 and 0.9 of the
    frame's height and drifting across it; the frame numbers in ``blank`` show no photo."""
    import cv2
    photos = _photos() if photos is None else photos
    codec = "MJPG" if str(path).endswith(".avi") else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise UsageError(f"OpenCV cannot write {path}")
    width, height = size
    backdrop = np.broadcast_to(np.linspace(60, 140, width, dtype=np.uint8)[None, :, None],
                               (height, width, 3)).copy()
    for number in range(frames):
        frame = backdrop.copy()
        if number not in blank:
            photo = photos[(number // (2 * fps)) % len(photos)]
            phase = 2 * np.pi * number / (3 * fps)
            scale = height * (0.675 + 0.225 * np.sin(phase)) / photo.shape[0]
            scaled = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            x = int((width - scaled.shape[1]) / 2 + 0.25 * width * np.sin(phase * 0.7))
            y = int((height - scaled.shape[0]) / 2 + 0.1 * height * np.cos(phase))
            _paste(frame, scaled, x, y)
        writer.write(frame)
    writer.release()
    return pathlib.Path(path)


def _paste(frame, image, x, y):
    """``image`` onto ``frame`` with its top-left at (x, y), clipped to the frame."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + image.shape[1], width), min(y + image.shape[0], height)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = image[y0 - y:y1 - y, x0 - x:x1 - x]


@dataclasses.dataclass(frozen=True)
class Run:
    """One row's settings: the model and video, the detector (a `zoo predict --detector` name),
    threads, runtime, untimed frames, and the detector's settings (zoo.inference.faces.DetectorSettings'
    fields but eyes and threads, which the model and ``threads`` set)."""
    model: str
    video: pathlib.Path
    detector: str = faces.DEFAULT_DETECTOR
    threads: int = 1
    runtime: str = "litert"
    warmup: int = 10
    detector_settings: dict = dataclasses.field(default_factory=dict)


def measure(run: Run) -> dict:
    """One row: `zoo predict`'s pipeline on every frame of ``run.video``."""
    import cv2

    from zoo.inference import media
    from zoo.inference import predict
    file, card = predict.resolve_model(run.model, run.runtime)
    (source,) = media.check_sources([str(run.video)])
    cv2.setNumThreads(run.threads)
    model = predict.load_model(file, card, run.runtime, threads=run.threads)
    settings = faces.DetectorSettings(eyes=model.needs_eyes, threads=run.threads, **run.detector_settings)
    finder = faces.FaceFinder(run.detector, settings, card.box_maps if card else None, model.name)
    pipeline = predict.FramePipeline(model, finder.use(source.kind), draw=True)
    for _, bgr, rgb in media.read_frames(source, run.warmup):
        pipeline.process(bgr, rgb)
    pipeline.seconds = dict.fromkeys(predict.STAGES, 0.0)
    pipeline.frames = pipeline.faces = 0
    started, cpu = time.perf_counter(), time.process_time()
    for _, bgr, rgb in media.read_frames(source, seconds=pipeline.seconds):
        pipeline.process(bgr, rgb)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    frames = max(pipeline.frames, 1)
    return {"model": model.name, "artifact": pathlib.Path(file).name, "detector": finder.name,
            "target": CPU, "runtime": run.runtime, "threads": run.threads, "frames": pipeline.frames,
            "faces": pipeline.faces,
            "fps": pipeline.frames / seconds, "e2e_ms": seconds / frames * 1e3, "cpu_ms": cpu / frames * 1e3,
            "status": MEASURED,
            **{f"{stage}_ms": value / frames * 1e3 for stage, value in pipeline.seconds.items()}}


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("give one build folder (with manifest.json) or zoo .tflite file")
    detector_settings = dict(detect_side=FLAGS.detect_side, scale_factor=FLAGS.scale_factor,
                             min_face=FLAGS.min_face, min_neighbors=FLAGS.min_neighbors)
    with tempfile.TemporaryDirectory(prefix="zoo-predict-bench-") as folder:
        video = FLAGS.video or synthetic_video(pathlib.Path(folder) / "faces.avi", FLAGS.video_frames)
        benchmarks.progress("predict", f"video {video}")
        rows = []
        for detector in FLAGS.detector:
            for threads in map(int, FLAGS.thread_counts):
                rows.append(measure(Run(argv[1], pathlib.Path(video), detector, threads, FLAGS.runtime,
                                        FLAGS.warmup_frames, detector_settings)))
                row = rows[-1]
                stages = ", ".join(f"{key[:-3]} {row[key]:.2f} ms" for key in STAGE_KEYS)
                benchmarks.progress("predict", f"{row['detector']}, {threads} thread(s): "
                                    f"{row['fps']:.1f} fps, {stages}")
    benchmarks.print_rows(rows, TABLE, FLAGS.json)


if __name__ == "__main__":
    benchmarks.run(main)
