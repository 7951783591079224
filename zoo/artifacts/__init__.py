"""The artifact contract: the one reader and writer of build folders, manifests, compiler reports
and the model card embedded in every TFLite file `zoo build` writes.

Each record is a typed dataclass written with its kind and a schema version. Reading checks both
and every field's type, so a malformed, partial or older file gives one UsageError line that says
what to do, never a KeyError in a caller. Publishing (zoo.artifacts.folders, its names exported
here) makes every output in a temporary folder beside its destination and renames it into place;
every output folder carries an OutputMarker, the record of which command wrote it, from which
inputs, and what it wrote.

No TensorFlow here: the compiler adapters and benchmark apps read records before importing it.
"""
import dataclasses
import json
import os
import pathlib
import tempfile
import typing

from zoo.artifacts.records import (BoxMapRecord, BuildManifest, DataRecord, FileRecord,  # noqa: F401
                                   GazeErrors, InputRecord, ModelCard, OutputMarker, OutputRecord,
                                   TrainingRecord)
from zoo.errors import UsageError

SCHEMA_VERSION = 1
MARKER = ".zoo-output.json"  # in every output folder: proof that this project wrote it, and what
MANIFEST, REPORT = "manifest.json", "report.json"
MODEL_CARD_METADATA = "zoo.model_card"  # the TFLite metadata entry holding the model card


class WriteFailed(Exception):
    """Writing an output failed part-way (disk full, folder made read-only, removed): the command
    failed (exit 1) and what was there before is as it was. The message is one line; ``errno``
    is the file system's reason (errno.ENOSPC for a full disk), None when unknown."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


# ---- JSON <-> records -------------------------------------------------------------------------

def to_json(record):
    """The record as a JSON-ready dict, with its kind and schema version."""
    return {"kind": record.KIND, "schema_version": schema_version(type(record)), **dataclasses.asdict(record)}


def schema_version(cls) -> int:
    """The schema version of record class ``cls``: its own SCHEMA_VERSION, moved whenever one of its
    fields (or a nested record's) changes, else the project's first."""
    return getattr(cls, "SCHEMA_VERSION", SCHEMA_VERSION)


def from_json(cls, value, source):
    """A ``cls`` record from parsed JSON; UsageError naming ``source`` when the kind, the schema
    version or any field is not what this version of the project writes."""
    if not isinstance(value, dict) or value.get("kind") != cls.KIND:
        raise UsageError(f"{source}: not a {cls.KIND} record; make it again with this project's tools")
    version, current = value.get("schema_version"), schema_version(cls)
    oldest = getattr(cls, "READS_FROM", current)  # the oldest version this reader still takes
    if isinstance(version, int) and oldest <= version < current:
        if hasattr(cls, "upgrade"):  # else an older version has the current layout
            value = cls.upgrade(dict(value), version)
        version = current
    if version != current:
        raise UsageError(f"{source}: written with schema version {version}, this zoo reads "
                         f"{current}; make it again with this version")
    fields = {k: v for k, v in value.items() if k not in ("kind", "schema_version")}
    return _typed(cls, fields, source, cls.KIND)


def record_from(cls, fields, source):
    """A ``cls`` record (any dataclass, nested ones too) from a dict of its fields, each checked
    like from_json's: for records that travel as JSON inside another (a child process's result)."""
    return _typed(cls, fields, source, cls.__name__)


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
        missing = [f.name for f in fields if f.name not in value
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
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
        names = {int: "an integer", str: "text", bool: "true or false", dict: "an object"}
        bad(names.get(kind, kind.__name__))
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


def umask():
    """The process umask (os.umask can only be read by setting it)."""
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
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except OSError as error:
        raise WriteFailed(f"cannot write {path.name} ({error.strerror or error})",
                          error.errno) from None
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


def read_marker(folder):
    """The OutputMarker of ``folder``; None when it has none, or one this project cannot read
    (then nothing in the folder counts as written by this project)."""
    path = pathlib.Path(folder) / MARKER
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(value, dict) and "kind" not in value:
        value = {**value, "kind": OutputMarker.KIND}  # the first format had no kind
    try:
        return from_json(OutputMarker, value, path)
    except UsageError:
        return None


# The publishing half, in its own module; its names are the contract's.
from zoo.artifacts.folders import (Tool, check_output, disk_full, publish, remove_staging,  # noqa: E402,F401
                                   staged, staging_folder)
