"""cm error of every artifact of a build on the same test frames: float, tfmot int8 (the Edge TPU
path), PTQ int8 and, when the build was compiled for the IMX500 (BUILD/imx500/), MCT int8 (the
IMX500 path).

  python -m benchmarks.accuracy runs/tinytracker
  python -m benchmarks.accuracy runs/tinytracker runs/tinytracker_s --data=/data/gazecapture --frames=2000

The error is GazeCapture's: mean Euclidean distance between predicted and true gaze point in cm,
over all test frames and over phones and tablets separately. Each TFLite file runs through LiteRT.
The MCT int8 figure is the IMX500 adapter's own evaluation of the MCT-quantized model (it needs a
process free of tfmot), shown only where it covers the same test frames. The mean predictor
(always the training set's mean gaze point) is listed as the floor to beat. Every build folder
(its manifest, files and IMX500 report) and --data are checked before anything is evaluated.
"""
import dataclasses
import pathlib

from absl import flags

import benchmarks
from benchmarks import IMX500, MCT_INT8, MEASURED
from zoo import artifacts
from zoo.inference import metrics
from zoo.errors import UsageError

for _name in ("data", "frames", "json"):
    flags.declare_key_flag(_name)
FLAGS = flags.FLAGS
MEAN_BASELINE = metrics.MEAN_BASELINE
ERRORS = tuple(field.name for field in dataclasses.fields(artifacts.GazeErrors))


def _specs(manifest):
    from zoo.models.registry import InputSpec
    return [InputSpec(i.name, i.recipe, tuple(i.shape)) for i in manifest.card.inputs]


def accuracy_rows(folder, data=None, frames=None, app_name="accuracy", reuse_build_figures=False):
    """One row per artifact of build ``folder`` (cm, cm_phone, cm_tablet, frames), plus the mean
    predictor's, all on the same ``frames`` test frames of ``data`` (default: the build's data).

    ``reuse_build_figures``: where those frames are the whole test split of the build's own data,
    take the figures `zoo build` measured on them (the same files through the same code) from its
    manifest instead of evaluating again, as compare does with the IMX500 adapter's figure."""
    folder = pathlib.Path(folder)
    manifest = artifacts.read_build(folder)
    built_on = pathlib.Path(manifest.card.data.root).absolute()
    root = pathlib.Path(data).absolute() if data else built_on
    artifact_list = benchmarks.build_artifacts(folder)
    report = imx500_report(folder)
    own_data = frames is None and root == built_on
    figures = reuse_build_figures and own_data and _build_figures(manifest, artifact_list)
    if figures:
        benchmarks.progress(app_name, f"{manifest.model}: the errors `zoo build` measured on the "
                            "whole test split (manifest.json)")
    else:
        figures = _evaluate(manifest, artifact_list, root, frames)
    rows = []
    for artifact in artifact_list:
        rows.append({**artifact.facts(), **dataclasses.asdict(figures[artifact.artifact]), "data": str(root),
                     "source": MEASURED})
        benchmarks.progress(app_name, f"{manifest.model} {artifact.artifact}: {rows[-1]['cm']:.3f} cm "
                            f"on {rows[-1]['frames']} test frames")
    mct = report and mct_row(folder, report, manifest, root, rows[-1]["frames"])
    return rows + ([mct] if mct else []) + [
        {"model": manifest.model, "artifact": MEAN_BASELINE, **dataclasses.asdict(figures[MEAN_BASELINE]),
         "data": str(root), "source": MEASURED}]


def _evaluate(manifest, artifact_list, root, frames):
    """{artifact name: errors} of every artifact and the mean predictor, in one decode pass."""
    from zoo.inference.evaluate import gaze_errors_of
    from zoo.inference.loader import load_predictor

    predictors = {artifact.artifact: load_predictor(artifact.path)[0] for artifact in artifact_list}
    return gaze_errors_of(predictors, root, _specs(manifest), limit=frames)


def _build_figures(manifest, artifact_list):
    """{artifact name: errors} from the build's manifest (`zoo build` evaluates every file and the
    mean predictor on the whole test split), or None where it lacks one."""
    kinds = {record.path: kind for kind, record in manifest.files.items()}
    figures = {artifact.artifact: manifest.metrics.get(kinds.get(artifact.path.name))
               for artifact in artifact_list}
    figures[MEAN_BASELINE] = manifest.metrics.get(MEAN_BASELINE)
    return None if None in figures.values() else figures


def imx500_report(folder):
    """The IMX500 adapter's report of a build (BUILD/imx500/report.json, compilers.imx500.Report)
    or None when it was not compiled; UsageError for a damaged one."""
    path = pathlib.Path(folder) / IMX500 / artifacts.REPORT
    if not path.is_file():
        return None
    from compilers import imx500
    report = imx500.read_report(path.parent)
    if "packer_zip" not in report.files:
        raise UsageError(f"{path} lists no packer_zip; compile again with compilers/imx500.py")
    return report


def mct_row(folder, report, manifest, root, frames):
    """The MCT int8 row of build ``folder`` from the IMX500 adapter's report.

    compilers/imx500.py evaluates the MCT-quantized model (with MCT's own quantizers, in a process
    free of tfmot) on the whole test split of its data (``source.data_root``); its figure is
    used only when that is the same frames as the other rows, otherwise the row says why it has none."""
    errors = (dataclasses.asdict(report.metrics.mct) if report.metrics else dict.fromkeys(ERRORS))
    package = report.files["packer_zip"]
    evaluated_on = report.source.data_root
    row = {"model": manifest.model, "artifact": MCT_INT8,
           "file": str(pathlib.Path(folder) / IMX500 / package.path), "bytes": package.bytes,
           "params": manifest.params, "macs": manifest.macs, **errors, "data": evaluated_on,
           "source": MEASURED}
    if report.metrics is None:
        row["note"] = "compilers/imx500.py had no labelled test frames to evaluate it on"
    elif evaluated_on is None or pathlib.Path(evaluated_on).absolute() != root or errors["frames"] != frames:
        row.update(cm=None, cm_phone=None, cm_tablet=None,
                   note=f"compilers/imx500.py evaluated it on {errors['frames']} test frames of "
                        f"{evaluated_on or 'data its report does not name'}, not these {frames} of {root}")
    return row


TABLE = ("model", "artifact", "cm", "cm_phone", "cm_tablet", "frames", "bytes")


def main(argv):
    if len(argv) < 2:
        raise UsageError("give one or more build folders (made by `zoo build`, with manifest.json)")
    if FLAGS.data:
        from zoo.data.gazecapture import check_root
        check_root(pathlib.Path(FLAGS.data).absolute())
    for folder in argv[1:]:  # every folder checked before the first evaluation
        benchmarks.build_artifacts(folder)
        imx500_report(folder)
    rows = [row for folder in argv[1:] for row in accuracy_rows(folder, FLAGS.data, FLAGS.frames)]
    benchmarks.print_rows(rows, TABLE, FLAGS.json)


if __name__ == "__main__":
    benchmarks.run(main)
