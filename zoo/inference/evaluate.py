"""Evaluating any model file of a registered model (.tflite through LiteRT, .h5/.keras through
Keras) on a GazeCapture split, in cm.

`zoo eval` checks the file before it loads it: a TFLite file by its flatbuffer (zoo.tflite), its
inputs against the model's recipes and its output against one (x, y) gaze point, a Keras file by
its signature; so a file that is empty, truncated, foreign, of another model or with inputs of
no fixed size is one UsageError line, never a runtime's error (or 1x1-pixel crops).
"""
import pathlib

import numpy as np

import zoo  # the registry through zoo's lazy names: TensorFlow is imported only once the file passed
from zoo import artifacts
from zoo.inference import metrics
from zoo import data as zoo_data
from zoo.data.gazecapture import check_root
from zoo.errors import UsageError
from zoo.inference.loader import check_model_file, input_spec, load_predictor


def _specs(path, name, shapes):
    """Input specs of registered model ``name`` with the shapes the file itself declares."""
    model_recipes = zoo.get_entry(name).recipes
    if len(model_recipes) == 1 and len(shapes) == 1:
        (input_name, recipe), = model_recipes.items()
        return [input_spec(path, name, input_name, recipe, next(iter(shapes.values())))]
    if set(model_recipes) != set(shapes):
        like = [other for other in zoo.list_models() if set(zoo.get_entry(other).recipes) == set(shapes)]
        hint = f"they are {like[0]}'s: give --name {like[0]}" if like else "give the model it is with --name"
        raise UsageError(f"{path}: its inputs {sorted(shapes)} are not {name}'s inputs "
                         f"{sorted(model_recipes)}; {hint}")
    return [input_spec(path, name, n, model_recipes[n], shapes[n]) for n in model_recipes]


def check_tflite_io(path, name):
    """Checks from the flatbuffer alone (before any runtime loads it) that TFLite ``path`` can be
    fed by ``name``'s recipes and answers one gaze point: the input count and, for a model of one
    input, its shape; the output's size."""
    from zoo.tflite import read_graph
    graph = read_graph(path)
    model_recipes = zoo.get_entry(name).recipes
    shapes = [graph.tensors[i].shape_signature or graph.tensors[i].shape for i in graph.inputs]
    if len(shapes) != len(model_recipes):
        raise UsageError(f"{path} has {len(shapes)} inputs and {name} takes {len(model_recipes)} "
                         f"({', '.join(model_recipes)}); give the model it is with --name")
    if len(shapes) == 1:
        input_spec(path, name, *next(iter(model_recipes.items())), shapes[0][1:])
    outputs = [graph.tensors[i].shape for i in graph.outputs]
    if len(outputs) != 1 or int(np.prod(outputs[0][1:])) != 2:
        raise UsageError(f"{path}: its outputs {[list(shape) for shape in outputs]} are not one gaze "
                         "point (x, y); give a gaze model of the zoo (zoo list)")


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
        raise UsageError(f"no frame of the {split} split of {root} decodes as a JPEG; "
                         f"see `zoo data stats {root}`")
    return ({key: np.concatenate(values) * zoo.GAZE_SCALE_CM for key, values in predictions.items()},
            np.concatenate(labels), np.concatenate(tablets))


def gaze_errors_of(predictors, root, specs, split="test", limit=None):
    """{key: gaze errors} of each predict function in ``predictors`` and, under
    metrics.MEAN_BASELINE, of the training-mean predictor, all on the same frames of ``split``."""
    predicted, true_cm, is_tablet = predict_cm(predictors, root, specs, split, limit)
    errors = {key: metrics.gaze_errors(values, true_cm, is_tablet) for key, values in predicted.items()}
    errors[metrics.MEAN_BASELINE] = metrics.mean_baseline(zoo_data.training_mean(root), true_cm, is_tablet)
    return errors


def _model_name(path, model):
    """The registered model ``path`` is: ``model`` (--name), else its model card's, else its build's."""
    if model is None and path.suffix == ".tflite":
        card = artifacts.read_model_card(path)
        model = card and card.model
    if model is None and (path.parent / artifacts.MANIFEST).is_file():
        model = artifacts.read_build(path.parent).model
    if model is None:
        raise UsageError(f"{path} has no model card and no {artifacts.MANIFEST} beside it; say which "
                         f"registered model it is with --name (one of {', '.join(zoo.list_models())})")
    zoo.get_entry(model)
    return model


def evaluate_file(path, data=None, model=None, split="test"):
    """cm error of ``path`` and of the training-mean predictor on ``split``."""
    path = check_model_file(path)
    root = pathlib.Path(data).absolute() if data else None
    if root is not None:
        check_root(root)
    name = _model_name(path, model)
    if path.suffix == ".tflite":
        check_tflite_io(path, name)
    root = root or zoo_data.default_data_root()
    zoo_data.open_gazecapture(root)
    predict, shapes = load_predictor(path)
    specs = _specs(path, name, shapes)
    return {"model": name, "file": str(path), "data": str(root), "split": split,
            "metrics": gaze_errors_of({"model": predict}, root, specs, split)}
