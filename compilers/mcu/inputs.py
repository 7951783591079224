"""The real inputs TFLite Micro and LiteRT are compared on, never random data:

- a zoo model (its embedded model card): frames of the GazeCapture root it was trained on (or the
  one given with --calibration-data), made into each input by the card's recipes (zoo.data);
- any other model: photos from a folder (--calibration-data), each and its mirror image, resized to
  the input and scaled linearly from 0..255 onto the input's quantized range (from the file's own
  quantization), or a .npz file holding one array of real values per input.

Everything is checked when the source is resolved (no TensorFlow); frames are made later."""
import dataclasses
import pathlib
import typing

import numpy as np

from zoo.errors import UsageError

FRAMES = 8  # frames compared: enough to meet every output's rounding, few enough for reference kernels


@dataclasses.dataclass(frozen=True)
class Slot:
    """One model input as the runtimes index it: position, name, static shape (batch 1) and type."""
    index: int
    name: str
    shape: tuple
    dtype: str
    scale: typing.Optional[float]
    zero_point: int
    quantize_range: typing.Optional[typing.Tuple[float, float]]  # a float input's first QUANTIZE range


def slots(path: pathlib.Path, graph) -> typing.List[Slot]:
    """The model's inputs, named by its signature when it has one (a zoo file's Keras names)."""
    from zoo.tflite import signature_names
    names = signature_names(path)
    made = []
    for position, index in enumerate(graph.inputs):
        tensor = graph.tensors[index]
        made.append(Slot(index=position, name=names.get(index) or tensor.name,
                         shape=(1,) + tuple(tensor.shape[1:]), dtype=tensor.dtype,
                         scale=tensor.scale[0] if tensor.quantized else None,
                         zero_point=(tensor.zero_point or (0,))[0],
                         quantize_range=_quantize_range(graph, index)))
    return made


def _quantize_range(graph, index):
    """For a float input, the real range of the QUANTIZE that takes it (None when there is none)."""
    for op in graph.operators:
        if op.name == "QUANTIZE" and op.inputs[:1] == (index,):
            return _real_range(graph.tensors[op.outputs[0]])
    return None


def _real_range(tensor):
    info = np.iinfo(np.dtype(tensor.dtype))
    scale, zero_point = tensor.scale[0], (tensor.zero_point or (0,))[0]
    return ((info.min - zero_point) * scale, (info.max - zero_point) * scale)


def to_raw(values: np.ndarray, slot: Slot) -> np.ndarray:
    """Real values as the input tensor holds them: quantized with the file's own scale and zero point,
    rounded for an integer input without quantization, float32 otherwise."""
    dtype = np.dtype(slot.dtype)
    values = np.asarray(values, np.float64).reshape(slot.shape)
    if dtype.kind == "f":
        return values.astype(dtype)
    if slot.scale:
        values = values / slot.scale + slot.zero_point
    info = np.iinfo(dtype)
    return np.clip(np.round(values), info.min, info.max).astype(dtype)


def _photo_range(slot: Slot) -> typing.Tuple[float, float]:
    """The real range photos are scaled onto: the input's quantized range, its integer range, or the
    range of the QUANTIZE that takes a float input."""
    dtype = np.dtype(slot.dtype)
    if slot.scale:
        info = np.iinfo(dtype)
        return ((info.min - slot.zero_point) * slot.scale, (info.max - slot.zero_point) * slot.scale)
    if dtype.kind in "iu":
        return (0.0, 255.0) if dtype.kind == "u" else (-128.0, 127.0)
    if slot.quantize_range is None:
        raise UsageError(f"input {slot.name} is float and no QUANTIZE gives its range, so photos cannot be "
                         "scaled onto it; give --calibration-data FILE.npz with one array of real values per "
                         "input")
    return slot.quantize_range


def _image_layout(slot: Slot) -> int:
    """The channels a photo fills in ``slot`` (1 or 3); UsageError for an input that is no image."""
    shape = slot.shape[1:]
    if len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3)):
        return 1 if len(shape) == 2 else shape[2]
    raise UsageError(f"input {slot.name} has shape {list(slot.shape)}, not an image of 1 or 3 channels, so "
                     "photos cannot feed it; give --calibration-data FILE.npz with one array of real values "
                     "per input (or, for a zoo model, the GazeCapture root it was trained on)")


class Photos:
    """Each photo of a folder and its mirror image, resized to each input."""

    def __init__(self, folder: pathlib.Path, model_slots: typing.List[Slot]):
        from zoo.data.images import image_files
        self.folder, self.slots = folder, model_slots
        self.paths = image_files(folder)
        self.layouts = [_image_layout(slot) for slot in model_slots]
        self.ranges = [_photo_range(slot) for slot in model_slots]

    def describe(self) -> str:
        return f"{len(self.paths)} photos in {self.folder}, each also mirrored"

    def frames(self) -> typing.List[list]:
        from PIL import Image, ImageOps
        views = []
        for path in self.paths:
            with Image.open(path) as image:
                image = image.convert("RGB")
                views += [image, ImageOps.mirror(image)]
        return [[self._fill(view, slot, layout, limits)
                 for slot, layout, limits in zip(self.slots, self.layouts, self.ranges)]
                for view in views[:FRAMES]]

    @staticmethod
    def _fill(view, slot, layout, limits):
        from PIL import Image
        height, width = slot.shape[1], slot.shape[2]
        view = view.convert("L") if layout == 1 else view
        pixels = np.asarray(view.resize((width, height), Image.BILINEAR), np.float64)
        low, high = limits
        return to_raw(low + pixels / 255.0 * (high - low), slot)


class Arrays:
    """Real-valued arrays from a .npz file: one per input, keyed by input name or arr_0, arr_1, ...
    in input order, each of the input's shape with or without a leading frame axis."""

    def __init__(self, path: pathlib.Path, model_slots: typing.List[Slot]):
        self.path, self.slots = path, model_slots
        try:
            with np.load(path, allow_pickle=False) as archive:
                stored = {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as error:
            raise UsageError(f"--calibration-data {path}: not a readable .npz file ({error})") from None
        self.arrays = [self._array(stored, slot) for slot in model_slots]

    def _array(self, stored, slot):
        array = stored.get(slot.name, stored.get(f"arr_{slot.index}"))
        if array is None:
            raise UsageError(f"--calibration-data {self.path} has no array {slot.name!r} or "
                             f"arr_{slot.index} for input {slot.index}; it holds "
                             f"{', '.join(sorted(stored)) or 'nothing'}")
        shape = tuple(slot.shape[1:])
        if tuple(array.shape) == shape:
            array = array[None]
        if tuple(array.shape[1:]) != shape or not len(array):
            raise UsageError(f"--calibration-data {self.path}: array for input {slot.name} has shape "
                             f"{list(array.shape)}; give [N, {', '.join(map(str, shape))}]")
        return array

    def describe(self) -> str:
        return f"{min(len(a) for a in self.arrays)} frames of arrays in {self.path}"

    def frames(self) -> typing.List[list]:
        count = min(FRAMES, min(len(a) for a in self.arrays))
        return [[to_raw(array[number], slot) for array, slot in zip(self.arrays, self.slots)]
                for number in range(count)]


class GazeFrames:
    """Frames of a GazeCapture root made into each input by the model card's recipes."""

    def __init__(self, root: pathlib.Path, card, model_slots: typing.List[Slot]):
        from zoo.data.gazecapture import check_root
        check_root(root)
        self.root, self.slots = root, model_slots
        self.specs = [(record.name, record.recipe, tuple(record.shape)) for record in card.inputs]
        names = [name for name, _, _ in self.specs]
        if len(names) != len(model_slots) or (len(names) > 1 and set(names) != {s.name for s in model_slots}):
            raise UsageError(f"the model card's inputs {names} are not the file's inputs "
                             f"{[s.name for s in model_slots]}; export the file again with `zoo build`")

    def describe(self) -> str:
        return f"test split of the GazeCapture root {self.root}, through the model card's recipes"

    def frames(self) -> typing.List[list]:
        import zoo
        from zoo.data import make_dataset
        specs = [zoo.InputSpec(name, recipe, shape) for name, recipe, shape in self.specs]
        batch = next(iter(make_dataset(self.root, specs, "test", FRAMES, limit=FRAMES, progress=False)))[0]
        by_name = {name: value.numpy() for name, value in batch.items()}
        if len(self.slots) == 1:
            by_name = {self.slots[0].name: next(iter(by_name.values()))}
        count = len(next(iter(by_name.values())))
        return [[to_raw(by_name[slot.name][number], slot) for slot in self.slots] for number in range(count)]


def resolve(model: pathlib.Path, model_slots: typing.List[Slot], card, calibration_data) -> object:
    """The source of real inputs for ``model`` (see the module), checked; UsageError saying what to
    pass when there is none."""
    if calibration_data is None:
        if card is None:
            raise UsageError(f"{model} carries no zoo model card, so there is no data to compare TFLite "
                             "Micro with LiteRT on; pass --calibration-data with a folder of photos (or a "
                             ".npz file)")
        root = pathlib.Path(card.data.root)
        if not root.is_dir():
            raise UsageError(f"{model} was trained on {root}, which is not here; pass --calibration-data "
                             "with that GazeCapture root")
        return GazeFrames(root, card, model_slots)
    path = pathlib.Path(calibration_data).absolute()
    if path.is_file() and path.suffix == ".npz":
        return Arrays(path, model_slots)
    if not path.is_dir():
        raise UsageError(f"--calibration-data {path}: no such folder (give a folder of photos, a GazeCapture "
                         "root or a .npz file)")
    from zoo.data.gazecapture import RECORDING_NAME
    if any(RECORDING_NAME.match(p.name) and p.is_dir() for p in path.iterdir()):
        if card is None:
            raise UsageError(f"{path} is a GazeCapture root, but {model} has no model card saying how its "
                             "inputs are made from a frame; give a folder of photos or a .npz file")
        return GazeFrames(path, card, model_slots)
    return Photos(path, model_slots)
