"""Evaluating any model file of a registered model (.tflite through LiteRT, .h5/.keras through
Keras) on a GazeCapture split, in cm."""
import json
import pathlib

import numpy as np

from zoo import data as zoo_data
from zoo import metrics, registry
from zoo.errors import UsageError

MODEL_SUFFIXES = (".tflite", ".h5", ".keras")


def _check_model_file(path):
    path = pathlib.Path(path)
    if path.suffix not in MODEL_SUFFIXES:
        raise UsageError(f"{path}: not a .tflite, .h5 or .keras model file")
    if not path.is_file():
        raise UsageError(f"{path}: no such model file")
    return path


def load_predictor(path):
    """(predict function on a dict batch, {input name: shape}) for a model file."""
    path = _check_model_file(path)
    if path.suffix == ".tflite":
        from zoo.tflite import io_details, make_interpreter, run_tflite
        interpreter = make_interpreter(path)
        shapes = {name: tuple(d["shape"][1:]) for name, d in io_details(interpreter)[0].items()}
        return (lambda inputs: run_tflite(interpreter, inputs)), shapes
    import tensorflow as tf
    try:
        model = tf.keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: cannot load Keras model: {str(error).splitlines()[0]}") from None
    shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
    if len(model.inputs) == 1:
        return (lambda inputs: model(next(iter(inputs.values())), training=False).numpy()), shapes
    return (lambda inputs: model(inputs, training=False).numpy()), shapes


def _specs(name, shapes):
    """Input specs of registered model ``name`` with the shapes the file itself declares."""
    recipes = registry.get_entry(name).recipes
    if len(recipes) == 1 and len(shapes) == 1:
        (input_name, recipe), = recipes.items()
        (shape,) = shapes.values()
        return [registry.InputSpec(input_name, recipe, shape)]
    missing = set(recipes) - set(shapes)
    if missing:
        raise UsageError(f"the file's inputs {sorted(shapes)} are not {name}'s inputs {sorted(recipes)}")
    return [registry.InputSpec(n, recipes[n], shapes[n]) for n in recipes]


def predict_cm(predictors, root, specs, split="test", limit=None):
    """({key: predicted cm}, true cm, is_tablet) of each predict function in ``predictors``
    ({key: function on a dict batch}) on ``split`` of dataset ``root``. The frames are decoded
    once, in one pass that feeds every predictor, so comparing artifacts costs one decode."""
    dataset = zoo_data.make_dataset(root, specs, split, 32, with_meta=True, limit=limit)
    predictions = {key: [] for key in predictors}
    labels, tablets = [], []
    for inputs, batch_labels, meta in dataset:
        batch = {name: value.numpy() for name, value in inputs.items()}
        for key, predict in predictors.items():
            predictions[key].append(predict(batch))
        labels.append(batch_labels.numpy())
        tablets.append(meta["is_tablet"].numpy())
    if not labels:
        raise UsageError(f"the {split} split of {root} holds no valid frames")
    return ({key: np.concatenate(values) * registry.GAZE_SCALE_CM for key, values in predictions.items()},
            np.concatenate(labels), np.concatenate(tablets))


def gaze_errors_of(predictors, root, specs, split="test", limit=None):
    """{key: gaze errors} of each predict function in ``predictors`` and, under
    metrics.MEAN_BASELINE, of the training-mean predictor, all on the same frames of ``split``."""
    predicted, true_cm, is_tablet = predict_cm(predictors, root, specs, split, limit)
    errors = {key: metrics.gaze_errors(values, true_cm, is_tablet) for key, values in predicted.items()}
    errors[metrics.MEAN_BASELINE] = metrics.mean_baseline(zoo_data.training_mean(root), true_cm, is_tablet)
    return errors


def evaluate_file(path, data=None, model=None, split="test"):
    """cm error of ``path`` and of the training-mean predictor on ``split``."""
    path = _check_model_file(path)
    manifest_path = path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    name = model or (manifest or {}).get("model")
    if name is None:
        raise UsageError(f"{path} has no manifest.json beside it; say which registered model it is "
                         f"with --name (one of {', '.join(registry.list_models())})")
    registry.get_entry(name)
    predict, shapes = load_predictor(path)
    specs = _specs(name, shapes)
    root = pathlib.Path(data).absolute() if data else zoo_data.default_data_root()
    zoo_data.open_gazecapture(root)
    return {"model": name, "file": str(path), "data": str(root), "split": split,
            "metrics": gaze_errors_of({"model": predict}, root, specs, split)}
