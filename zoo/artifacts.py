"""The artifact contract: the one reader and writer of build folders, manifests, compiler reports
and the model card embedded in every TFLite file `zoo build` writes.

Each record is a typed dataclass written with its kind and a schema version. Reading checks both
and every field's type, so a malformed, partial or older file gives one UsageError line that says
what to do, never a KeyError in a caller. Publishing goes through one helper: the output is made
in a temporary folder beside its destination and renamed into place, and a folder is replaced
only when it carries the marker this project writes into every output folder; files in it that
this project did not write are kept.

No TensorFlow here: the compiler adapters and benchmark apps read records before importing it.
"""
import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
import typing

from zoo.errors import UsageError

SCHEMA_VERSION = 1
MARKER = ".zoo-output.json"  # in every output folder: proof that this project wrote it, and what
MANIFEST, REPORT = "manifest.json", "report.json"
MODEL_CARD_METADATA = "zoo.model_card"  # the TFLite metadata entry holding the model card
EDGETPU, IMX500 = "edgetpu", "imx500"


class WriteFailed(Exception):
    """Writing an output failed part-way (disk full, folder made read-only, removed): the command
    failed (exit 1) and what was there before is as it was. The message is one line."""


# ---- records ---------------------------------------------------------------------------------

@dataclasses.dataclass
class FileRecord:
    path: str
    bytes: int
    sha256: str


@dataclasses.dataclass
class InputRecord:
    """One model input: how it is made from a frame (recipe), its value range and layout."""
    name: str
    shape: typing.List[int]
    recipe: str
    value_range: typing.List[float]
    layout: str  # "HWC" for images, "flat" for the face-grid mask
    dtype: str
    scale: typing.Optional[float]
    zero_point: typing.Optional[int]


@dataclasses.dataclass
class OutputRecord:
    name: str
    shape: typing.List[int]
    scale_cm: float
    meaning: str


@dataclasses.dataclass
class DataRecord:
    """The data a model was trained on: where, which (fingerprint of the valid frames), how many."""
    root: str
    fingerprint: str
    rendered: typing.Optional[dict]
    valid_frames: typing.Dict[str, int]


@dataclasses.dataclass
class BoxMapRecord:
    """How `zoo predict` frames one face detector's output like the training data's boxes
    (zoo.boxmap): ``face`` (dx, dy, sw, sh), ``left_eye`` and ``right_eye`` (ex, ey, es), fitted
    on ``fitted_frames`` train frames of the card's data; on ``held_out_frames`` test frames
    (``found``: the share of the sampled test frames where the detector found the face), the
    mean IoU with the dataset's face and eye boxes before and after the map."""
    detector: str
    face: typing.List[float]
    left_eye: typing.List[float]
    right_eye: typing.List[float]
    fitted_frames: int
    held_out_frames: int
    found: float
    face_iou_before: float
    face_iou_after: float
    eye_iou_before: float
    eye_iou_after: float


@dataclasses.dataclass
class ModelCard:
    """What a TFLite file of the zoo says about itself (its metadata entry): enough to make its
    inputs from a frame and read its output as gaze, with no file beside it. ``box_maps``: per
    face detector (zoo.faces.DETECTORS), the map of its boxes to the data's; None on a card
    made before the maps."""
    KIND: typing.ClassVar[str] = "zoo.model_card"
    model: str
    builder_args: dict
    mode: str
    seed: int
    inputs: typing.List[InputRecord]
    output: OutputRecord
    data: DataRecord
    box_maps: typing.Optional[typing.Dict[str, BoxMapRecord]] = None


@dataclasses.dataclass
class TrainingRecord:
    """How the build trained. ``batch_size`` is per replica; ``global_batch_size`` is it times
    ``replicas`` (all workers'), the batch of each optimizer step, of which ``steps_per_epoch``
    make an epoch. ``strategy``: zoo.distribute's name of the tf.distribute strategy. The last
    three have defaults (one replica) so that records made in code before them still build."""
    epochs: int
    qat_epochs: int
    batch_size: int
    steps_per_epoch_cap: typing.Optional[int]
    steps_per_epoch: int
    learning_rate: float
    qat_learning_rate: float
    lr_schedule: str
    loss: str
    best_val_loss: typing.Dict[str, float]
    strategy: str = "default"
    replicas: int = 1
    global_batch_size: typing.Optional[int] = None  # None: batch_size x replicas

    def __post_init__(self):
        if self.global_batch_size is None:
            self.global_batch_size = self.batch_size * self.replicas


@dataclasses.dataclass
class BuildManifest:
    """manifest.json of a `zoo build` folder. ``metrics`` maps an artifact kind (and
    zoo.metrics.MEAN_BASELINE) to zoo.metrics.gaze_errors' record."""
    KIND: typing.ClassVar[str] = "zoo.build"
    card: ModelCard
    params: int
    macs: int
    files: typing.Dict[str, FileRecord]
    metrics: typing.Dict[str, dict]
    training: TrainingRecord
    toolchain: dict
    command: typing.List[str]
    seconds: typing.Dict[str, float]

    @property
    def model(self):
        return self.card.model

    @property
    def mode(self):
        return self.card.mode


@dataclasses.dataclass
class MemoryRecord:
    usage_bytes: int
    available_bytes: int
    utilization: float
    fit_in_chip: bool
    runtime_bytes: int
    model_bytes: int
    reserved_bytes: int
    input_persistent: typing.Optional[typing.Any]


@dataclasses.dataclass
class Imx500Report:
    """report.json of compilers/imx500.py. ``metrics``: the MCT model's gaze errors (with "float"
    and "tflite" beside them) when the data has labels, else None; ``agreement``: the MCT model's
    outputs against the float model's on the import check's inputs; ``import_check``: the
    TFLite-to-Keras importer against the TFLite itself."""
    KIND: typing.ClassVar[str] = "zoo.imx500_report"
    model: str
    source: dict
    method: str
    calibration: dict
    import_check: dict
    memory: MemoryRecord
    inputs: typing.List[dict]
    outputs: typing.List[dict]
    metrics: typing.Optional[dict]
    agreement: dict
    deployment: dict
    files: typing.Dict[str, FileRecord]
    toolchain: dict
    seconds: typing.Dict[str, float]


@dataclasses.dataclass
class EdgeTpuReport:
    """report.json of compilers/edgetpu.py: the pre-flight always, the compiler's figures when it
    ran (compilers.edgetpu_log); ``status`` is "compiled", "failed" or "preflight-only"."""
    KIND: typing.ClassVar[str] = "zoo.edgetpu_report"
    model: str
    model_bytes: int
    out_dir: str
    preflight: dict
    compiler: typing.Optional[dict]
    disagreements: typing.List[str]
    status: str
    status_detail: str


# ---- JSON <-> records -------------------------------------------------------------------------

def to_json(record):
    """The record as a JSON-ready dict, with its kind and schema version."""
    return {"kind": record.KIND, "schema_version": SCHEMA_VERSION, **dataclasses.asdict(record)}


def from_json(cls, value, source):
    """A ``cls`` record from parsed JSON; UsageError naming ``source`` when the kind, the schema
    version or any field is not what this version of the project writes."""
    if not isinstance(value, dict) or value.get("kind") != cls.KIND:
        raise UsageError(f"{source}: not a {cls.KIND} record; make it again with this project's tools")
    version = value.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UsageError(f"{source}: written with schema version {version}, this zoo reads "
                         f"{SCHEMA_VERSION}; make it again with this version")
    fields = {k: v for k, v in value.items() if k not in ("kind", "schema_version")}
    return _typed(cls, fields, source, cls.KIND)


def _typed(kind, value, source, where):
    """``value`` checked against type ``kind`` (dataclasses, lists, dicts, optionals, scalars)."""
    def bad(expected):
        raise UsageError(f"{source}: {where} should be {expected}, found {type(value).__name__}; "
                         "the file is damaged: make it again")
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            bad("an object")
        hints = typing.get_type_hints(kind)
        fields = dataclasses.fields(kind)
        missing = [f.name for f in fields if f.name not in value and f.default is dataclasses.MISSING]
        if missing:
            raise UsageError(f"{source}: {where} lacks {', '.join(missing)}; the file is damaged or "
                             "partial: make it again")
        return kind(**{f.name: _typed(hints[f.name], value[f.name], source, f"{where}.{f.name}")
                       for f in fields if f.name in value})  # a field added later takes its default
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        return _typed(next(a for a in args if a is not type(None)), value, source, where)
    if origin is list:
        if not isinstance(value, list):
            bad("a list")
        return [_typed(args[0], item, source, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            bad("an object")
        return {str(k): _typed(args[1], v, source, f"{where}.{k}") for k, v in value.items()}
    return _scalar(kind, value, bad)


def _scalar(kind, value, bad):
    if kind is typing.Any:
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        bad("an integer")
    if not isinstance(value, kind):
        bad({int: "an integer", str: "text", bool: "true or false", dict: "an object"}.get(kind, kind.__name__))
    return value


def read_record(cls, path):
    """The ``cls`` record stored as JSON in ``path``; one UsageError line for any problem."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        value = json.loads(path.read_text(), parse_constant=_no_constants)
    except (OSError, ValueError, RecursionError) as error:
        raise UsageError(f"{path}: not readable as JSON ({str(error)[:120]}); make it again") from None
    return from_json(cls, value, path)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def write_record(record, path):
    """Writes ``record`` to ``path`` through a temporary file (a reader never sees half of it)."""
    write_text(path, json.dumps(to_json(record), indent=2, allow_nan=False) + "\n")


def write_text(path, text):
    """Writes ``text`` (str or bytes) to ``path`` through a temporary file beside it, with the usual
    permissions; WriteFailed when the file system refuses."""
    path = pathlib.Path(path)
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb" if isinstance(text, bytes) else "w") as file:
            file.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as error:
        raise WriteFailed(f"cannot write {path.name} ({error.strerror or error})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


# ---- build folders and model cards -------------------------------------------------------------

def read_build(folder):
    """The manifest of build folder ``folder``."""
    folder = pathlib.Path(folder)
    if not (folder / MANIFEST).is_file():
        raise UsageError(f"{folder}: not a build folder (no {MANIFEST}); make one with `zoo build`")
    return read_record(BuildManifest, folder / MANIFEST)


def build_file(folder, manifest, kind):
    """The path of artifact ``kind`` of a build; UsageError when the build lists none or it is gone."""
    record = manifest.files.get(kind)
    if record is None:
        raise UsageError(f"{folder}: the build made no {kind} (it has {', '.join(manifest.files)})")
    path = pathlib.Path(folder) / record.path
    if not path.is_file() or path.stat().st_size != record.bytes:
        raise UsageError(f"{path}: listed in {pathlib.Path(folder) / MANIFEST} but "
                         f"{'changed since' if path.is_file() else 'missing'}; build again")
    return path


def card_bytes(card):
    return json.dumps(to_json(card), separators=(",", ":"), allow_nan=False).encode()


def read_model_card(tflite_path):
    """The model card embedded in a TFLite file, or None for a file without one (any TFLite)."""
    from zoo.tflite import read_metadata
    raw = read_metadata(tflite_path, MODEL_CARD_METADATA)
    if raw is None:
        return None
    try:
        value = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError(f"{tflite_path}: its {MODEL_CARD_METADATA} metadata is not JSON; "
                         "export the file again") from None
    return from_json(ModelCard, value, f"{tflite_path} ({MODEL_CARD_METADATA} metadata)")


def compiler_output(model_path, target):
    """Where a compiler adapter writes by default, and where the benchmarks look: BUILD/TARGET for
    the deployable int8 file of a build folder, else MODEL_DIR/STEM_TARGET."""
    model_path = pathlib.Path(model_path)
    folder = model_path.parent
    if (folder / MANIFEST).is_file():
        try:
            manifest = read_build(folder)
        except UsageError:
            manifest = None
        record = manifest and manifest.files.get("int8_tflite")
        if record is not None and record.path == model_path.name:
            return folder / target
    return folder / f"{model_path.stem}_{target}"


# ---- publishing ------------------------------------------------------------------------------

def check_output(out, flag="--out", overwrite=False):
    """``out`` as an absolute path, after checking, before any work, that it may be written: it
    is absent, an empty folder, a folder this project wrote (its marker), or ``overwrite`` is set
    (then the files already there are kept). Also checks that it can be made (its nearest
    existing parent is a writable folder), making nothing."""
    out = pathlib.Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file; give a folder path")
    if out.is_dir() and not overwrite and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(f"{flag} {out} exists and was not written by this project (no {MARKER}); "
                         "choose another folder, or pass --overwrite to add to it (nothing of yours "
                         "is removed)")
    existing = next(p for p in out.parents if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{flag} {out}: {existing} is a file, not a folder; choose another {flag}")
    try:  # a real write: permission bits say yes to root, and /proc says yes to everyone
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".zoo-write-test-"))
    except OSError as error:
        raise UsageError(f"{flag} {out}: cannot write there ({error.strerror}); choose another {flag}") from None
    return out


def staging_folder(out):
    """A fresh temporary folder beside ``out`` (its parents made), on the same file system, for the
    work; UsageError when the file system refuses."""
    out = pathlib.Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as error:
        raise UsageError(f"{out}: cannot write there ({error.strerror}); choose another output folder") from None


def _written_by_us(folder):
    """The entry names this project wrote into ``folder`` (from its marker), or None."""
    try:
        entries = json.loads((folder / MARKER).read_text())["entries"]
        return {str(name) for name in entries} if isinstance(entries, list) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def publish(work, out, tool):
    """Moves the finished ``work`` folder to ``out`` in one rename. An earlier output at ``out``
    loses only the entries its marker lists; any other entry (the user's) is moved across."""
    work, out = pathlib.Path(work), pathlib.Path(out)
    os.chmod(work, 0o777 & ~_umask())  # mkdtemp made it private
    entries = sorted(path.name for path in work.iterdir() if path.name != MARKER)
    write_text(work / MARKER, json.dumps({"tool": tool, "schema_version": SCHEMA_VERSION,
                                          "entries": entries}, indent=1) + "\n")
    if not out.exists():
        os.replace(work, out)
        return out
    ours = _written_by_us(out) or set()
    theirs = [path for path in out.iterdir() if path.name not in ours and path.name != MARKER]
    clash = [path.name for path in theirs if path.name in entries]
    if clash:
        raise UsageError(f"{out} holds {', '.join(clash)}, not written by this project, where the new "
                         "output goes; move them away or choose another output folder")
    old = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / "previous")
    os.replace(work, out)
    for path in theirs:
        os.replace(old / "previous" / path.name, out / path.name)
    shutil.rmtree(old)
    return out


def remove_staging(work):
    """Removes a staging folder made by ``staging_folder`` (only ever that)."""
    shutil.rmtree(work, ignore_errors=True)
