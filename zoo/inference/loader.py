"""The one loader of model files: what a MODEL argument names (a build folder, a TFLite file the
zoo wrote, a Keras .h5/.keras) resolved to a file and its model card, checked before any runtime
is asked to load it, and loaded as a model that says its name, inputs, output scale and what it
was trained on. `zoo eval`, `zoo predict`, `zoo build`'s evaluation, the benchmarks and a target's
Keras input (compilers/) all load through here."""
import dataclasses
import pathlib
import time
import typing

import numpy as np

import zoo  # the registry through zoo's lazy names: TensorFlow is imported only once the file passed
from zoo import artifacts
from zoo.data import recipes
from zoo.errors import UsageError, progress
from zoo.models import tracing

MODEL_SUFFIXES = (".tflite", ".h5", ".keras")
SIGNATURES = {".h5": (b"\x89HDF\r\n\x1a\n", "an HDF5 (Keras .h5)"),
              ".keras": (b"PK\x03\x04", "a zip (Keras .keras)")}
KERAS_SUFFIXES = {".h5", ".keras"}
EYE_RECIPES = {"left_eye", "right_eye"}


def check_signature(path, suffix, what="the model file"):
    """``path`` when it is an existing file of type ``suffix`` (.h5 or .keras) by its first bytes."""
    path = pathlib.Path(path)
    signature, kind = SIGNATURES[suffix]
    if not path.is_file():
        raise UsageError(f"{what} {path}: no such file; check the path")
    with open(path, "rb") as handle:
        if handle.read(len(signature)) != signature:
            raise UsageError(f"{what} {path} is not {kind} file; give the file Keras saved")
    return path


def check_model_file(path):
    path = pathlib.Path(path)
    if path.suffix not in MODEL_SUFFIXES:
        raise UsageError(f"{path}: not a .tflite, .h5 or .keras model file; give one of those")
    if not path.is_file():
        raise UsageError(f"{path}: no such model file; check the path")
    if path.suffix == ".tflite":
        from zoo.tflite import read_graph
        read_graph(path)  # an empty, truncated or foreign file fails here
    else:
        check_signature(path, path.suffix)
    return path


def load_keras(path):
    """The Keras model saved in ``path``; one UsageError line when Keras cannot load it."""
    import tensorflow as tf
    tracing.leave_keras_code_unconverted()
    try:
        return tf.keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as error:
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(f"{path}: cannot load the Keras model ({detail}); give a .h5 or .keras file "
                         "saved by Keras 2.15") from None


def keras_specs(path, model, name=None):
    """(registered model name, input specs) of Keras ``model`` loaded from ``path`` as registered
    model ``name`` (default: its Keras name). UsageError saying what the file holds when it is
    not that model: a Keras name alone (any model can be named "tinytracker") proves nothing."""
    name = name or model.name
    known = zoo.list_models()
    inputs = {t.name.split(":")[0]: tuple(-1 if d is None else d for d in t.shape[1:]) for t in model.inputs}
    if name in known:
        model_recipes = zoo.get_entry(name).recipes
        if set(inputs) == set(model_recipes) and _gives_one_point(model):
            return name, [input_spec(path, name, n, model_recipes[n], shape) for n, shape in inputs.items()]
    holds = (f"{path} holds a Keras model named {model.name!r} with inputs "
             f"{', '.join(f'{n} {list(shape)}' for n, shape in inputs.items())} and outputs "
             f"{[list(t.shape[1:]) for t in model.outputs]}")
    like = [other for other in known if set(zoo.get_entry(other).recipes) == set(inputs)]
    if name not in known:
        raise UsageError(f"{holds}; that name is not a registered model ({', '.join(known)}) and no "
                         "manifest.json is beside it: give a build folder or a .h5 that `zoo build` wrote")
    raise UsageError(f"{holds}, not this zoo's {name}, which takes {', '.join(zoo.get_entry(name).recipes)} "
                     "and gives one gaze point"
                     + (f" (its inputs are those of {like[0]})" if like and like[0] != name else "")
                     + f"; give a {name} model file, e.g. a build's float .h5")


def _gives_one_point(model):
    return len(model.outputs) == 1 and int(np.prod([d or 1 for d in model.outputs[0].shape[1:]])) == 2


def keras_predictor(model):
    """A predict function on a dict batch for a Keras model; a single-input model takes its one
    array whatever its name, as run_tflite does."""
    if len(model.inputs) == 1:
        return lambda inputs: model(next(iter(inputs.values())), training=False).numpy()
    return lambda inputs: model(inputs, training=False).numpy()


def load_predictor(path):
    """(predict function on a dict batch, {input name: shape}) for a model file."""
    path = check_model_file(path)
    if path.suffix == ".tflite":
        from zoo.tflite import io_details, make_interpreter, run_tflite
        interpreter = make_interpreter(path)
        shapes = {name: tuple(d["shape_signature"][1:]) for name, d in io_details(interpreter)[0].items()}
        return (lambda inputs: run_tflite(interpreter, inputs)), shapes
    model = load_keras(path)
    shapes = {t.name.split(":")[0]: tuple(-1 if d is None else d for d in t.shape[1:]) for t in model.inputs}
    return keras_predictor(model), shapes


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


def input_spec(path, name, input_name, recipe, shape):
    """The input spec of one input of ``path``: a fixed shape that recipe ``recipe`` can make."""
    if any(size < 1 for size in shape):
        raise UsageError(f"{path}: input {input_name} has no fixed size ({list(shape)}, -1 for any); "
                         "export the model with a fixed input size")
    spec = zoo.InputSpec(input_name, recipe, tuple(int(size) for size in shape))
    try:
        recipes.check_specs([spec])
    except ValueError as error:
        raise UsageError(f"{path} is not a {name} model: {error}; give the model it is with --name, "
                         "or a file of this one") from None
    return spec
