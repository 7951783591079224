"""BUILD_NOTES ("Perturbed imports" table): the exact check and the float model's distance at the
output on the tests' convs model and on mobilenet_v1, imported correctly and with each of the
tests' perturbations of the first convolution, in its output channel that reaches furthest from
its zero point.

    python experiments/imx500/perturbed_imports.py OUT_FOLDER
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests"))
import tflite_import_models as models  # noqa: E402  (the tests' own models and perturbations)
from _pytest.monkeypatch import MonkeyPatch  # noqa: E402
from compilers.imx500.exact_check import exact_check  # noqa: E402
from compilers.imx500.importer import tflite_to_keras  # noqa: E402
from zoo.tflite import read_graph  # noqa: E402

KINDS = ("none", "weights x1.01", "bias off by one step", "wrong padding")


def main(folder):
    import tensorflow as tf
    folder.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(1)
    convs = folder / "convs.tflite"
    convs.write_bytes(models.convert(models._convs(tf), True, True, False))
    mobilenet_frames = np.random.default_rng(0).uniform(-1, 127 / 128, (32, 128, 128, 3)).astype(np.float32)
    for path, inputs in ((convs, models.inputs(convs)), (models.MOBILENET, {"input": mobilenet_frames})):
        op = read_graph(path).operators[0]
        reach = models.reach(path, op, inputs)
        for kind in KINDS:
            patch = MonkeyPatch()
            if kind != "none":
                models.perturb(patch, path, op, kind, int(np.argmax(reach)))
            check = exact_check(path, inputs, float_model=tflite_to_keras(path))
            patch.undo()
            print(path.name, kind, "| passed", check.passed, "| first failure", check.first_failure,
                  "| worst", check.max_steps, check.worst_operator,
                  "| float at the output max / mean", check.float_output_steps, check.float_mean_steps,
                  flush=True)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
