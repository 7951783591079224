"""cm error of every artifact of a build on the same test frames: float, tfmot int8 (the Edge TPU
path), PTQ int8 and, when the build was compiled for the IMX500 (BUILD/imx500/), MCT int8 (the
IMX500 path).

  python -m benchmarks.accuracy runs/tinytracker
  python -m benchmarks.accuracy runs/tinytracker runs/tinytracker_s --data=/data/gazecapture --frames=2000

The error is GazeCapture's: mean Euclidean distance between predicted and true gaze point in cm,
over all test frames and over phones and tablets separately. Each TFLite file runs through LiteRT.
The mean predictor (always the training set's mean gaze point) is listed as the floor to beat.
"""
import pathlib

from absl import app, flags

import benchmarks
from benchmarks import MCT_INT8, MEASURED

flags.DEFINE_string("data", None, "GazeCapture root with the test split (default: the data each "
                    "build was trained on; for compare: the rendered default dataset)")
flags.DEFINE_integer("frames", None, "evaluate this many test frames, spread over the split "
                     "(default: all)", lower_bound=1)
FLAGS = flags.FLAGS
MEAN_BASELINE = "mean_baseline"


def _specs(manifest):
    from zoo.registry import InputSpec
    return [InputSpec(i["name"], i["recipe"], tuple(i["shape"])) for i in manifest["input"]]


def accuracy_rows(folder, data=None, frames=None, app_name="accuracy"):
    """One row per artifact of build ``folder`` (cm, cm_phone, cm_tablet, frames), plus the mean
    predictor's, all on the same ``frames`` test frames of ``data`` (default: the build's data)."""
    from zoo import data as zoo_data
    from zoo import metrics
    from zoo.eval import predict_cm

    folder = pathlib.Path(folder)
    manifest = benchmarks.read_manifest(folder)
    root = pathlib.Path(data or manifest["data"]["root"]).absolute()
    specs = _specs(manifest)
    evaluated = [(artifact.facts(), artifact.path, None) for artifact in benchmarks.build_artifacts(folder)]
    mct = mct_model(folder)
    if mct is not None:
        evaluated.append(({"model": manifest["model"], "artifact": MCT_INT8, "file": str(mct),
                           "bytes": mct.stat().st_size, "params": manifest["params"],
                           "macs": manifest["macs"]}, mct, mct_predictor(mct)))
    rows = []
    for facts, path, predict in evaluated:
        predicted, true_cm, is_tablet = predict_cm(path, root, specs, limit=frames, predict=predict)
        rows.append({**facts, **metrics.gaze_errors(predicted, true_cm, is_tablet), "data": str(root),
                     "source": MEASURED})
        benchmarks.progress(app_name, f"{manifest['model']} {facts['artifact']}: {rows[-1]['cm']:.3f} cm "
                            f"on {rows[-1]['frames']} test frames")
    baseline = metrics.mean_baseline(zoo_data.training_mean(root), true_cm, is_tablet)
    rows.append({"model": manifest["model"], "artifact": MEAN_BASELINE, **baseline, "data": str(root),
                 "source": MEASURED})
    return rows


def mct_model(folder):
    """The MCT-quantized Keras model the IMX500 adapter kept in BUILD/imx500/, or None."""
    from compilers import imx500
    return imx500.quantized_model(pathlib.Path(folder) / "imx500")


def mct_predictor(path):
    from compilers import imx500
    return imx500.load_predictor(path)


TABLE = ("model", "artifact", "cm", "cm_phone", "cm_tablet", "frames", "bytes")


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("give one or more build folders (made by `zoo build`, with manifest.json)")
    rows = [row for folder in argv[1:] for row in accuracy_rows(folder, FLAGS.data, FLAGS.frames)]
    benchmarks.print_rows(rows, TABLE, FLAGS.json)


if __name__ == "__main__":
    benchmarks.run(main)
