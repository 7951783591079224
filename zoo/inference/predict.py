"""`zoo predict`: gaze of the faces in photos, video files or a camera, with any zoo model.

    zoo predict MODEL INPUT... [--camera N] [--out DIR] [--max-faces K] [--max-frames N]
                [--runtime litert|tflite_runtime] [--device DEVICE] [--threads N] [--json]

MODEL is a build folder (its deployable int8 TFLite, else its float TFLite), a TFLite file that
`zoo build` wrote (its recipe and output scale come from the model card inside it) or a Keras
.h5 (a build's float model, with its manifest.json beside it, or a model whose Keras name is a
registered model). Per frame, a face detector finds the faces (zoo.inference.faces: BlazeFace by default,
short range for a camera, full range for files; Haar cascades with --detector haar), framed like
the training data's boxes by the model card's box map for that detector (zoo.inference.boxmap); each face
box gives the frame's 25x25 face grid, and the model inputs are cut by the training recipes
(zoo.inference.face_inputs, checked against zoo.data.recipes) from the RGB frame: JPEG files are decoded by
training's own decoder, video and camera frames by OpenCV (BGR, turned to RGB). Gaze is output *
scale_cm, in cm from the camera (x right, y up), as GazeCapture's (XCam, YCam). Reading and
writing frames: zoo.inference.media.

A model whose card says it was trained on the rendered dataset gets one warning line on stderr
when an input is a real photo, video or camera, and every --json record says what the model was
trained on (``trained_on``: rendered, gazecapture, or unknown for a Keras file without a card).

Arguments, the model file and every input are checked before TensorFlow is imported; a problem
is one line `zoo: error: ...` (exit 2) and nothing is written. With --out the annotated images
and videos and predictions.jsonl are made in a temporary folder and moved into place complete.
"""
import dataclasses
import json
import pathlib
import re
import time
import typing

from zoo import artifacts, plugins
from zoo.inference import media
from zoo.errors import UsageError, progress
from zoo.inference.faces import DEFAULT_DETECTOR, DETECTORS

KERAS_SUFFIXES = {".h5", ".keras"}
EYE_RECIPES = {"left_eye", "right_eye"}
STAGES = ("decode", "detect", "crop", "infer", "draw")
TOOL = artifacts.Tool("zoo predict", "predict")  # what --out is, for zoo.artifacts' output rule
DESCRIPTION = ("Finds the faces in each frame (MediaPipe BlazeFace by default, OpenCV's Haar cascades with "
               "--detector haar), frames them like the training data, makes each face's model inputs "
               "with the training recipes (face crop, 25x25 face grid over the frame) and prints the gaze "
               "in cm from the camera (x right, y up: GazeCapture's XCam, YCam). MODEL: a build folder "
               "(its int8 TFLite, else its float TFLite), a TFLite written by `zoo build` (its embedded "
               "model card says how to feed it) or a Keras .h5 (a build's float model, or a model whose "
               "name is registered). Nothing is written unless everything could be read; --out is "
               "written complete or not at all.")


def add_parser(commands):
    p = commands.add_parser(
        "predict", help="gaze of the faces in photos, videos or a camera (BlazeFace face detection)",
        description=DESCRIPTION)
    p.add_argument("model", metavar="MODEL", help="build folder, zoo TFLite file or Keras .h5")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="image or video files")
    p.add_argument("--camera", type=_index, metavar="N", help="also read camera N (cv2.VideoCapture(N)) "
                   "until it stops, --max-frames or Ctrl-C")
    p.add_argument("--out", help="folder for the annotated images/videos and predictions.jsonl (e.g. "
                   "BUILD/predict; never a build, a package or a folder holding an input)")
    p.add_argument("--overwrite", action="store_true", help="with --out: replace zoo predict's earlier "
                   "output of other inputs there, or add to a folder this project did not write (its files "
                   "are kept)")
    p.add_argument("--keep-going", action="store_true", help="use the frames a video cut short or damaged "
                   "holds (it is reported either way; without this flag it is an error)")
    p.add_argument("--max-faces", type=_positive, metavar="K", help="largest K faces per frame (default all)")
    p.add_argument("--max-frames", type=_positive, metavar="N", help="stop each video/camera after N frames")
    p.add_argument("--runtime", choices=("litert", "tflite_runtime"), help="TFLite runtime (default litert)")
    p.add_argument("--device", type=_device, metavar="DEVICE", help="run on an accelerator through its "
                   "runtime (" + "; ".join(f"{d.usage}: {d.title}" for d in plugins.devices()) + "); a build "
                   "folder's compiled model is used")
    p.add_argument("--threads", type=_positive, default=1, help="interpreter and OpenCV threads (default 1)")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                   help="face detector: blazeface (default: short range for --camera, full range for files), "
                        "blazeface_short, blazeface_full, or haar (OpenCV's cascades)")
    p.add_argument("--json", action="store_true", help="one JSON line per face per frame on stdout")
    p.set_defaults(run=cmd_predict)


def _positive(value):
    import argparse
    if not re.fullmatch(r"\d+", value) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return int(value)


def _index(value):
    import argparse
    if not re.fullmatch(r"\d+", value):
        raise argparse.ArgumentTypeError(f"must be a camera index (0, 1, ...), got {value!r}")
    return int(value)


def _device(value):
    import argparse
    try:
        return plugins.device_for(value)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# ---- the model -----------------------------------------------------------------------------------

@dataclasses.dataclass
class GazeModel:
    """A model file ready to run: its registered name, input specs, output scale and what it was
    trained on (rendered, gazecapture, or unknown: a Keras file without a card)."""
    name: str
    file: pathlib.Path
    specs: list
    scale_cm: float
    predict: object  # {input name: float (1, ...)} -> model output (1, 2)
    trained_on: str = "unknown"

    @property
    def needs_eyes(self):
        return any(spec.recipe in EYE_RECIPES for spec in self.specs)

    def run(self, inputs):
        """(gaze (x, y) cm from the camera, milliseconds the model took)."""
        import numpy as np
        started = time.perf_counter()
        output = np.asarray(self.predict(inputs), np.float64).reshape(-1)
        return output[:2] * self.scale_cm, (time.perf_counter() - started) * 1e3


def resolve_model(path, runtime=None, device=None):
    """(model file, its ModelCard or None for a Keras file without a build), without TensorFlow."""
    file, card = _model_file(pathlib.Path(path), runtime, device)
    if card is not None:
        _check_card(card, file)
    return file, card


def _model_file(path, runtime, device):
    if not path.exists():
        raise UsageError(f"MODEL {path}: no such build folder or model file")
    if path.is_dir():
        manifest = artifacts.read_build(path)
        kind = "int8_tflite" if "int8_tflite" in manifest.files else "float_tflite"
        file = artifacts.build_file(path, manifest, kind)
        compiled = device.device.compiled(file) if device else None
        return (compiled if compiled and compiled.is_file() else file), manifest.card
    if path.suffix in KERAS_SUFFIXES:
        if runtime or device:
            raise UsageError(f"MODEL {path} is a Keras file: --runtime and --device run TFLite files; "
                             "give the build folder or its .tflite")
        beside = path.parent / artifacts.MANIFEST
        return path, (artifacts.read_build(path.parent).card if beside.is_file() else None)
    if path.suffix != ".tflite":
        raise UsageError(f"MODEL {path}: not a build folder, .tflite or .h5 file")
    card = artifacts.read_model_card(path)
    if card is None:
        raise UsageError(f"MODEL {path}: the file carries no zoo model card ({artifacts.MODEL_CARD_METADATA} "
                         "metadata), so its inputs and output scale are unknown; give a TFLite that "
                         "`zoo build` wrote, or its build folder")
    return path, card


def _check_card(card, source):
    """A card this zoo cannot feed fails here, before any input is read (zoo.models.registry would
    import TensorFlow: the card's input records are checked as they are)."""
    from zoo.data import recipes
    try:
        recipes.check_specs(card.inputs)
    except ValueError as error:
        raise UsageError(f"MODEL {source}: its model card is not one this zoo can feed ({error})") from None


def _card_specs(card, source):
    from zoo.models.registry import InputSpec
    _check_card(card, source)
    return [InputSpec(record.name, record.recipe, tuple(record.shape)) for record in card.inputs]


def load_model(file, card, runtime=None, device=None, threads=1):
    """The GazeModel of ``file`` (from resolve_model); TensorFlow only for a Keras file."""
    if file.suffix in KERAS_SUFFIXES:
        return _keras_model(file, card)
    from zoo import tflite
    if device:
        accelerator = device.device
        interpreter = accelerator.interpreter(file, device.value, runtime or "litert")
        if not accelerator.is_compiled(file):
            progress(f"[zoo predict] {file} is not compiled for the {accelerator.title} "
                     f"({accelerator.compile_hint}): the delegate leaves all of it on the CPU")
    else:
        interpreter = tflite.make_interpreter(file, runtime or "litert", threads)
    specs = _card_specs(card, file)
    shapes = {name: tuple(d["shape"][1:]) for name, d in tflite.io_details(interpreter)[0].items()}
    if sorted(shapes.values()) != sorted(spec.shape for spec in specs):
        raise UsageError(f"MODEL {file}: its inputs {shapes} are not those of its model card; build it again")
    return GazeModel(card.model, file, specs, card.output.scale_cm,
                     lambda inputs: tflite.run_tflite(interpreter, inputs), trained_on(card))


def _keras_model(file, card):
    from zoo.models import registry
    from zoo.inference.evaluate import keras_predictor, keras_specs, load_keras
    model = load_keras(file)
    if card is not None:
        name, specs, scale = card.model, _card_specs(card, file), card.output.scale_cm
    else:
        (name, specs), scale = keras_specs(file, model), registry.GAZE_SCALE_CM
    return GazeModel(name, file, specs, scale, keras_predictor(model), trained_on(card))


def trained_on(card: typing.Optional[artifacts.ModelCard]) -> str:
    """What a model card says the model learnt from: rendered, gazecapture; unknown without a card."""
    if card is None:
        return "unknown"
    return "rendered" if card.data.rendered is not None else "gazecapture"


# ---- one frame -----------------------------------------------------------------------------------

def make_preparer(specs: list) -> typing.Callable:
    """(RGB uint8 frame, Face, faceGrid) -> {input name: float (1, ...)}: the training recipes
    (zoo.inference.face_inputs: one resize per box and size, whatever the recipes made from it)."""
    from zoo.inference.face_inputs import make_inputs
    from zoo.inference.faces import zero_indexed
    inputs = make_inputs(specs)
    return lambda rgb, face, grid: inputs(rgb, face.boxes(), zero_indexed(grid))


@dataclasses.dataclass(frozen=True)
class FaceResult:
    face: object   # zoo.inference.faces.Face
    grid: tuple    # faceGrid: X, Y 1-indexed
    gaze_cm: tuple
    latency_ms: float


class FramePipeline:
    """detect -> grid -> crop -> infer (-> draw) on one frame; ``seconds`` sums each stage.
    ``finder``: a zoo.inference.faces.FaceFinder, its detector chosen for the source (``finder.use``)."""

    def __init__(self, model, finder, draw=False):
        self.model, self.finder, self.draw = model, finder, draw
        self.prepare = make_preparer(model.specs)
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.frames = self.faces = 0

    def process(self, bgr, rgb=None):
        """([FaceResult], the annotated frame or None)."""
        import cv2

        from zoo.inference.faces import annotate, frame_grid
        started = time.perf_counter()
        faces = self.finder.find(bgr)
        self._add("detect", started)
        results = []
        for face in faces:
            started = time.perf_counter()
            if rgb is None:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # the recipes take RGB, as training decodes
            grid = frame_grid(face.box, (bgr.shape[1], bgr.shape[0]))
            inputs = self.prepare(rgb, face, grid)
            self._add("crop", started)
            started = time.perf_counter()
            gaze, ms = self.model.run(inputs)
            self._add("infer", started)
            results.append(FaceResult(face, grid, tuple(float(v) for v in gaze), ms))
        annotated = None
        if self.draw:
            started = time.perf_counter()
            annotated = annotate(bgr, [(r.face, r.gaze_cm) for r in results], self.model.scale_cm)
            self._add("draw", started)
        self.frames += 1
        self.faces += len(results)
        return results, annotated

    def _add(self, stage, started):
        self.seconds[stage] += time.perf_counter() - started


# ---- output --------------------------------------------------------------------------------------

def records(source: media.Source, number: int, results: list, pipeline: "FramePipeline") -> list:
    """The JSON records of one frame: one per face, or {"frame": N, "faces": 0}; each names the
    model, what it was trained on and the detector."""
    model = pipeline.model
    about = {"model": model.name, "trained_on": model.trained_on, "detector": pipeline.finder.name}
    if not results:
        return [{"input": source.label, "frame": number, "faces": 0, **about}]
    out = []
    for index, result in enumerate(results):
        record = {"input": source.label, "frame": number, "face": index, "box": list(result.face.box),
                  "grid": list(result.grid), "gaze_cm": [round(v, 4) for v in result.gaze_cm],
                  **about, "latency_ms": round(result.latency_ms, 3)}
        if result.face.left_eye is not None:
            record["eyes"] = {"left_eye": list(result.face.left_eye),
                              "right_eye": list(result.face.right_eye), "found": result.face.eyes_found}
        out.append(record)
    return out


def readable(record, faces):
    if "face" not in record:
        return f"{record['input']} frame {record['frame']}: no face"
    gx, gy = record["gaze_cm"]
    return (f"{record['input']} frame {record['frame']} face {record['face'] + 1}/{faces} "
            f"box {tuple(record['box'])} grid {tuple(record['grid'])}: gaze x {gx:+.2f} y {gy:+.2f} cm "
            f"from the camera ({record['latency_ms']:.1f} ms)")


# ---- the command ---------------------------------------------------------------------------------

def rendered_frame(source: media.Source) -> bool:
    """Whether a file input is a frame of a rendered dataset (ROOT/NNNNN/frames/N.jpg beside
    ROOT/rendered.json): what a model trained on rendered data may be shown without a warning."""
    from zoo.data.render import SETTINGS_FILE
    if source.kind == "camera":
        return False
    parents = pathlib.Path(source.target).absolute().parents[:3]
    return any((parent / SETTINGS_FILE).is_file() for parent in parents)


def warn_if_rendered(model: GazeModel, sources: list) -> None:
    """One line on stderr when a model trained on the rendered set is shown real faces."""
    if model.trained_on == "rendered" and not all(map(rendered_frame, sources)):
        progress(f"[zoo predict] warning: {model.name} was trained on the rendered dataset (drawn faces), "
                 "so on real faces its gaze in cm is not a measurement; for real faces build it on "
                 f"GazeCapture: zoo build {model.name} --data GAZECAPTURE_ROOT")


def cmd_predict(args):
    import cv2

    from zoo.inference.faces import DetectorSettings, FaceFinder
    inputs = [args.model, *args.inputs]
    out = artifacts.check_output(args.out, TOOL, inputs, args.overwrite) if args.out else None
    file, card = resolve_model(args.model, args.runtime, args.device)
    sources = media.check_sources(args.inputs, args.camera)
    _check_flags(args, sources)
    cv2.setNumThreads(args.threads)
    model = load_model(file, card, args.runtime, args.device, args.threads)
    finder = FaceFinder(args.detector, DetectorSettings(eyes=model.needs_eyes, max_faces=args.max_faces,
                                                        threads=args.threads),
                        card.box_maps if card else None, model.name)
    for source in sources:  # every detector made (and its file checked) before anything is written
        finder.use(source.kind)
    warn_if_rendered(model, sources)
    pipeline = FramePipeline(model, finder, draw=out is not None)
    started = time.perf_counter()
    if out:
        with artifacts.staged(out, TOOL, inputs, args.overwrite) as work, media.Outputs(work) as written:
            for source in sources:
                _run_source(source, pipeline, written, args)
    else:
        for source in sources:
            _run_source(source, pipeline, None, args)
    seconds = time.perf_counter() - started
    for note in finder.notes:
        progress(f"[zoo predict] {note}")
    progress(f"[zoo predict] {pipeline.frames} frames, {pipeline.faces} faces in {seconds:.1f} s "
             f"({pipeline.frames / max(seconds, 1e-9):.1f} frames/s) with {model.file}"
             + (f"; wrote {out}" if out else ""))


def _check_flags(args, sources):
    """Refuses a flag that none of the inputs takes (it would be ignored)."""
    kinds = {source.kind for source in sources}
    if args.max_frames is not None and kinds == {"image"}:
        raise UsageError("--max-frames stops a video or camera, and every INPUT is a photo; drop it")
    if args.keep_going and "video" not in kinds:
        raise UsageError("--keep-going is for a video file cut short or damaged, and no INPUT is a video "
                         "file; drop it")
    if args.overwrite and not args.out:
        raise UsageError("--overwrite is about the --out folder, and there is none; add --out or drop it")


def _run_source(source, pipeline, outputs, args):
    if outputs:
        outputs.start(source)
    pipeline.finder.use(source.kind)
    frames = media.read_frames(source, args.max_frames, pipeline.seconds, args.keep_going)
    try:
        for number, bgr, rgb in frames:
            results, annotated = pipeline.process(bgr, rgb)
            for record in records(source, number, results, pipeline):
                print(json.dumps(record) if args.json else readable(record, len(results)), flush=True)
                if outputs:
                    outputs.record(record)
            if outputs:
                outputs.frame(annotated)
    except KeyboardInterrupt:
        if source.kind != "camera":
            raise
        frames.close()  # Ctrl-C ends a camera stream: what was recorded is kept
