"""cm error of every artifact of a build on the same test frames: float, tfmot int8 (the Edge TPU
path), PTQ int8 and, when the build was compiled for the IMX500 (BUILD/imx500/), MCT int8 (the
IMX500 path).

  python -m benchmarks.accuracy runs/tinytracker
  python -m benchmarks.accuracy runs/tinytracker runs/tinytracker_s --data=/data/gazecapture --frames=2000

The error is GazeCapture's: mean Euclidean distance between predicted and true gaze point in cm,
over all test frames and over phones and tablets separately. Each TFLite file runs through LiteRT.
The MCT int8 figure is the IMX500 adapter's own evaluation of the MCT-quantized model (it needs a
process free of tfmot), shown only where it covers the same test frames. The mean predictor
(always the training set's mean gaze point) is listed as the floor to beat.
"""
import json
import pathlib

from absl import app, flags

import benchmarks
from benchmarks import IMX500, MCT_INT8, MEASURED
from zoo import metrics

flags.DEFINE_string("data", None, "GazeCapture root with the test split (default: the data each "
                    "build was trained on; for compare: the rendered default dataset)")
flags.DEFINE_integer("frames", None, "evaluate this many test frames, spread over the split "
                     "(default: all)", lower_bound=1)
flags.declare_key_flag("json")
FLAGS = flags.FLAGS
MEAN_BASELINE = metrics.MEAN_BASELINE
ERRORS = ("cm", "cm_phone", "cm_tablet", "frames")


def _specs(manifest):
    from zoo.registry import InputSpec
    return [InputSpec(i["name"], i["recipe"], tuple(i["shape"])) for i in manifest["input"]]


def accuracy_rows(folder, data=None, frames=None, app_name="accuracy", reuse_build_figures=False):
    """One row per artifact of build ``folder`` (cm, cm_phone, cm_tablet, frames), plus the mean
    predictor's, all on the same ``frames`` test frames of ``data`` (default: the build's data).

    ``reuse_build_figures``: where those frames are the whole test split of the build's own data,
    take the figures `zoo build` measured on them (the same files through the same code) from its
    manifest instead of evaluating again, as compare does with the IMX500 adapter's figure."""
    folder = pathlib.Path(folder)
    manifest = benchmarks.read_manifest(folder)
    root = pathlib.Path(data or manifest["data"]["root"]).absolute()
    artifacts = benchmarks.build_artifacts(folder)
    own_data = frames is None and root == pathlib.Path(manifest["data"]["root"]).absolute()
    figures = reuse_build_figures and own_data and _build_figures(manifest, artifacts)
    if figures:
        benchmarks.progress(app_name, f"{manifest['model']}: the errors `zoo build` measured on the "
                            "whole test split (manifest.json)")
    else:
        figures = _evaluate(manifest, artifacts, root, frames)
    rows = []
    for artifact in artifacts:
        rows.append({**artifact.facts(), **figures[artifact.artifact], "data": str(root), "source": MEASURED})
        benchmarks.progress(app_name, f"{manifest['model']} {artifact.artifact}: {rows[-1]['cm']:.3f} cm "
                            f"on {rows[-1]['frames']} test frames")
    mct = mct_row(folder, manifest, root, rows[-1]["frames"])
    return rows + ([mct] if mct else []) + [
        {"model": manifest["model"], "artifact": MEAN_BASELINE, **figures[MEAN_BASELINE], "data": str(root),
         "source": MEASURED}]


def _evaluate(manifest, artifacts, root, frames):
    """{artifact name: errors} of every artifact and the mean predictor, in one decode pass."""
    from zoo.eval import gaze_errors_of, load_predictor

    predictors = {artifact.artifact: load_predictor(artifact.path)[0] for artifact in artifacts}
    return gaze_errors_of(predictors, root, _specs(manifest), limit=frames)


def _build_figures(manifest, artifacts):
    """{artifact name: errors} from the build's manifest (`zoo build` evaluates every file and the
    mean predictor on the whole test split), or None where it lacks one."""
    kinds = {record["path"]: kind for kind, record in manifest["files"].items()}
    metrics = manifest.get("metrics", {})
    figures = {artifact.artifact: metrics.get(kinds.get(artifact.path.name)) for artifact in artifacts}
    figures[MEAN_BASELINE] = metrics.get(MEAN_BASELINE)
    if any(not errors or set(ERRORS) - set(errors) for errors in figures.values()):
        return None
    return {name: {key: errors[key] for key in ERRORS} for name, errors in figures.items()}


def mct_row(folder, manifest, root, frames):
    """The MCT int8 row from the IMX500 adapter's report (BUILD/imx500/report.json), or None.

    compilers/imx500.py evaluates the MCT-quantized model (with MCT's own quantizers, in a process
    free of tfmot) on the whole test split of its data; its figure is used only when that is the
    same frames as the other rows, otherwise the row says why it has none."""
    report_path = pathlib.Path(folder) / IMX500 / "report.json"
    if not report_path.is_file():
        return None
    report = json.loads(report_path.read_text())
    errors = {key: report["metrics"].get(key) for key in ERRORS}
    package = report["files"]["packer_zip"]
    row = {"model": manifest["model"], "artifact": MCT_INT8, "file": package["path"],
           "bytes": package["bytes"], "params": manifest["params"], "macs": manifest["macs"],
           **errors, "data": report["source"]["data"], "source": MEASURED}
    if pathlib.Path(row["data"]).absolute() != root or errors["frames"] != frames:
        row.update(cm=None, cm_phone=None, cm_tablet=None,
                   note=f"compilers/imx500.py evaluated it on {errors['frames']} test frames of "
                        f"{row['data']}, not these {frames} of {root}")
    return row


TABLE = ("model", "artifact", "cm", "cm_phone", "cm_tablet", "frames", "bytes")


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("give one or more build folders (made by `zoo build`, with manifest.json)")
    rows = [row for folder in argv[1:] for row in accuracy_rows(folder, FLAGS.data, FLAGS.frames)]
    benchmarks.print_rows(rows, TABLE, FLAGS.json)


if __name__ == "__main__":
    benchmarks.run(main)
