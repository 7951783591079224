"""What the IMX500 adapter calibrates on, checked in the parent before any heavy work: the data
a model card names (a GazeCapture root, made into inputs by the card's recipes), a GazeCapture
root with --recipe, a folder of photos (for every image input, whatever its tensor is called,
scaled to the value range the file's own quantization gives it), or real samples as .npy (a
one-input model) or .npz (one array per input, by input name). Never random data."""
import pathlib
import warnings

import numpy as np

from zoo.data.images import image_files
from zoo.errors import UsageError

MIN_SAMPLES = 32  # the import check's frames (compilers.imx500.exact_check.MIN_FRAMES)
ARRAY_SUFFIXES = (".npy", ".npz")


def value_range(graph, tensor):
    """The real values an input can hold: its int8/uint8 quantization's range, an unquantized
    integer type's own range (an image given as raw 0..255), or for a float input the range of
    the QUANTIZE it feeds; None when the file does not say."""
    if not tensor.quantized and tensor.dtype.startswith("float"):
        quantize = next((op for op in graph.operators
                         if op.name == "QUANTIZE" and op.inputs[0] == tensor.index), None)
        if quantize is None:
            return None
        tensor = graph.tensors[quantize.outputs[0]]
    info = np.iinfo(np.dtype(tensor.dtype))
    if not tensor.quantized:
        return [float(info.min), float(info.max)]
    scale, zero_point = tensor.scale[0], (tensor.zero_point or (0,))[0]
    return [(info.min - zero_point) * scale, (info.max - zero_point) * scale]


def is_image(shape):
    """An input a photo can fill: height, width and 1 or 3 channels after the batch."""
    return len(shape) == 4 and shape[3] in (1, 3)


def check_static_shapes(model, graph, names):
    """UsageError for an input whose height, width or channels are only known at run time: the
    IMX500 runs a network of one fixed input size."""
    for index, name in names.items():
        tensor = graph.tensors[index]
        if any(size < 0 for size in (tensor.shape_signature or tensor.shape)[1:]):
            raise UsageError(f"{model}: input {name} has a size known only at run time (shape "
                             f"{list(tensor.shape_signature)}); the IMX500 runs one fixed input size: "
                             "export the model with a fixed height and width")


def kind_of(path):
    """"arrays", "gazecapture" or "images" for --calibration-data ``path``; UsageError otherwise."""
    if path.is_file():
        if path.suffix.lower() not in ARRAY_SUFFIXES:
            raise UsageError(f"--calibration-data {path}: a file must be .npy (one input) or .npz (arrays "
                             "by input name); or give a folder of photos or a GazeCapture root")
        return "arrays"
    if not path.is_dir():
        raise UsageError(f"--calibration-data {path}: no such file or folder")
    if any(p.is_dir() and p.name.isdigit() and len(p.name) == 5 for p in path.iterdir()):
        return "gazecapture"
    return "images"


def _load_arrays(path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = np.load(path, allow_pickle=False)
            return dict(loaded) if isinstance(loaded, np.lib.npyio.NpzFile) else {None: loaded}
    except (OSError, ValueError, EOFError) as error:
        raise UsageError(f"--calibration-data {path}: not a readable {path.suffix} file ({error}); save it "
                         "with numpy.save / numpy.savez") from None


def _array_keys(arrays, graph, names):
    """{input name: the key of its array}: the importer's name of the input or the file's own
    (its signature's or tensor's, "inputs/rnn1" for "inputs_rnn1"); one .npy for a one-input model."""
    from zoo.tflite import signature_names
    if None in arrays:
        return {name: None for name in names.values()} if len(names) == 1 else {}
    own = signature_names(graph.path)
    keys = {}
    for index, name in names.items():
        for key in (name, own.get(index), graph.tensors[index].name):
            if key in arrays:
                keys[name] = key
                break
    return keys


def check_arrays(path, graph, names):
    """{input name: the key of its array in .npy/.npz ``path``}, each array checked against its
    input's shape (``names``: {input tensor index: the importer's name})."""
    arrays = _load_arrays(path)
    keys = _array_keys(arrays, graph, names)
    if None in arrays and not keys:
        raise UsageError(f"--calibration-data {path}: one .npy array for a model with {len(names)} "
                         f"inputs; give an .npz with one array per input ({', '.join(names.values())})")
    missing = [name for name in names.values() if name not in keys]
    if missing:
        raise UsageError(f"--calibration-data {path} has no array named {', '.join(missing)} (it has "
                         f"{', '.join(sorted(arrays)) or 'none'}); name each array after its input")
    for index, name in names.items():
        shape, array = tuple(graph.tensors[index].shape[1:]), arrays[keys[name]]
        if array.dtype.kind not in "fiub" or array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
            raise UsageError(f"--calibration-data {path}: array {name} has shape {list(array.shape)} and "
                             f"type {array.dtype}; input {name} takes numbers of shape "
                             f"[N, {', '.join(map(str, shape))}]")
        if len(array) < MIN_SAMPLES or not np.all(np.isfinite(array)):
            raise UsageError(f"--calibration-data {path}: array {name} needs at least {MIN_SAMPLES} "
                             f"samples, all finite (it has {len(array)})")
    return keys


def check_image_inputs(path, graph, names, card):
    """UsageError unless a folder of photos can feed every input of a file (no model card)."""
    if card is not None:
        return
    for index, name in names.items():
        tensor = graph.tensors[index]
        if not is_image(tensor.shape):
            raise UsageError(f"--calibration-data {path} holds photos, but input {name} (shape "
                             f"{list(tensor.shape)}) is not an image; give an .npz with real samples for it "
                             "(arrays by input name)")
        if value_range(graph, tensor) is None:
            raise UsageError(f"--calibration-data {path} holds photos, but input {name} is float with no "
                             "quantization to say its value range; give real samples as .npy/.npz")


def _recipe_names():
    from zoo.models.registry import RECIPES
    return sorted(RECIPES)


def _card_data(model, card):
    if card is None:
        raise UsageError(f"{model} carries no zoo model card, so its calibration data is unknown; pass "
                         "--calibration-data with a folder of photos, an .npy/.npz of real inputs, or a "
                         "GazeCapture root (and --recipe)")
    if not pathlib.Path(card.data.root).is_dir():
        raise UsageError(f"{model} was trained on {card.data.root}, which is not here; pass "
                         "--calibration-data with that data (a GazeCapture root)")
    return card.data.root


def _check_photos_fit(path, graph, names, card):
    """Photos feed image inputs only: a card's face-grid input (its grid channels come from
    GazeCapture's labels) or an input that is not an image needs other data."""
    from zoo.data.recipes import IMAGE_RECIPES, INPUT_CHANNELS
    for recipe in (i.recipe for i in card.inputs) if card else ():
        if recipe in IMAGE_RECIPES and INPUT_CHANNELS[recipe] != IMAGE_RECIPES[recipe][1]:
            raise UsageError(f"--calibration-data {path} holds photos, but recipe {recipe} adds face-grid "
                             "channels that only GazeCapture's labels give; pass the GazeCapture root")
    if card is None:
        check_image_inputs(path, graph, names, card)


def _check_gazecapture(path, recipes):
    """UsageError without recipes, or when no training frame of the root is valid (its JPEGs do
    not decode, say): in a second here, not after the child has loaded TensorFlow."""
    from zoo.data import load_index
    if recipes is None:
        raise UsageError(f"{path} is a GazeCapture root: say how the inputs are made with --recipe "
                         f"({', '.join(_recipe_names())})")
    if not load_index(path).split_counts()["train"]:
        raise UsageError(f"{path} has no valid training frames to calibrate on; check the data with "
                         f"`zoo data stats {path}`")


def plan(model, graph, names, card, calibration_data, recipe, frames):
    """(data {kind, path}, {input name: recipe} or None, {input name: value range}) for the MCT
    child, after every check of --calibration-data and --recipe. ``names``: {input tensor index:
    the Keras input name}."""
    check_static_shapes(model, graph, names)
    if recipe is not None and recipe not in _recipe_names():
        raise UsageError(f"--recipe {recipe}: choose one of {', '.join(_recipe_names())}")
    ranges = ({i.name: list(i.value_range) for i in card.inputs} if card else
              {name: value_range(graph, graph.tensors[index]) for index, name in names.items()})
    recipes = {i.name: i.recipe for i in card.inputs} if card else None
    path = calibration_data if calibration_data is not None else _card_data(model, card)
    path = pathlib.Path(path).absolute()
    kind = kind_of(path)
    if recipe is not None:
        if kind != "gazecapture":
            what = "an array file" if kind == "arrays" else "a folder of photos"
            raise UsageError("--recipe says how a GazeCapture frame becomes the input, and "
                             f"--calibration-data {path} is {what}; leave --recipe out (photos fill every "
                             "image input, arrays give each input)")
        if len(names) != 1:
            raise UsageError(f"--recipe names one recipe, but {model} has {len(names)} inputs")
        recipes = {next(iter(names.values())): recipe}
    if kind == "gazecapture":
        _check_gazecapture(path, recipes)
    if kind == "arrays":
        return {"kind": kind, "path": str(path), "keys": check_arrays(path, graph, names)}, None, ranges
    elif kind == "images":
        _check_photos_fit(path, graph, names, card)
        image_files(path, max(frames, MIN_SAMPLES))
        recipes = None
    return {"kind": kind, "path": str(path)}, recipes, ranges
