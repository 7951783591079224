"""`zoo build` end to end on a tiny rendered dataset: artifacts, int8-ness, manifest, errors,
interrupt and resume (issue: zoo build)."""
import hashlib
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, read_manifest, run_zoo
from zoo.cli import main
from zoo.train.build import RESUMABLE_LINE

MODELS = ("tinytracker", "tinytracker_s", "itracker")


def _assert_manifest_matches_files(out):
    manifest = read_manifest(out)
    for kind, record in manifest.files.items():
        path = out / record.path
        assert path.is_file(), kind
        assert path.stat().st_size == record.bytes
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
    return manifest


def _assert_fully_int8(path, float_output=True):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    output_names = {d["name"] for d in interpreter.get_output_details()}
    for tensor in interpreter.get_tensor_details():
        if float_output and tensor["name"] in output_names:
            assert tensor["dtype"] == np.float32
            continue
        assert tensor["dtype"] in (np.int8, np.int32), (tensor["name"], tensor["dtype"])
    assert all(d["dtype"] == np.int8 for d in interpreter.get_input_details())


@pytest.mark.parametrize("name", MODELS)
def test_qat_build_writes_int8_tflite_and_a_true_manifest(tiny_build, name):
    out = tiny_build(name, "qat")
    manifest = _assert_manifest_matches_files(out)
    assert set(manifest.files) == {"float_h5", "float_tflite", "ptq_int8_tflite", "int8_tflite"}
    for kind in ("int8_tflite", "ptq_int8_tflite"):
        _assert_fully_int8(out / manifest.files[kind].path)
    assert set(manifest.metrics) == set(manifest.files) | {"mean_baseline"}
    test_frames = manifest.card.data.valid_frames["test"]
    for kind in manifest.files:
        assert manifest.metrics[kind].frames == test_frames
        assert manifest.metrics[kind].cm > 0
    assert manifest.model == name and manifest.mode == "qat"
    expected_inputs = ["face", "left_eye", "right_eye", "face_grid"] if name == "itracker" else ["face"]
    assert [i.name for i in manifest.card.inputs] == expected_inputs
    assert all(i.dtype == "int8" and i.scale > 0 for i in manifest.card.inputs)
    assert manifest.toolchain["tensorflow"] == "2.15.1"
    assert manifest.command[:3] == ["zoo", "build", name]
    assert {"train", "convert_float", "ptq", "qat", "evaluate", "total"} <= set(manifest.seconds)
    assert not any(p.name.endswith(".partial") for p in out.parent.iterdir())
    _assert_every_tflite_carries_the_card(out, manifest)


def _assert_every_tflite_carries_the_card(out, manifest):
    """Each TFLite file describes itself: the manifest's card, with its own input quantization."""
    import dataclasses

    from zoo import data
    from zoo.artifacts import read_model_card
    card = manifest.card
    assert card.data.fingerprint == data.load_index(card.data.root).fingerprint()
    assert card.output.scale_cm == 30.0 and card.builder_args["input_size"] in (32, 64)
    for kind, record in manifest.files.items():
        if not record.path.endswith(".tflite"):
            continue
        own = read_model_card(out / record.path)
        assert dataclasses.replace(own, inputs=card.inputs) == card, kind
        assert [i.recipe for i in own.inputs] == [i.recipe for i in card.inputs]
        float_input = kind == "float_tflite"
        assert all((i.dtype == "float32") == float_input and (i.scale is None) == float_input
                   for i in own.inputs), kind


def test_ptq_build_and_int8_output(tiny_data, tmp_path):
    out = tmp_path / "ptq"
    run_zoo("build", "tinytracker_s", "--ptq", "--int8-output", "--data", tiny_data, "--out", out,
            "--epochs", 1, "--steps", 1, "--batch-size", 4, "--input-size", 32)
    manifest = _assert_manifest_matches_files(out)
    assert set(manifest.files) == {"float_h5", "float_tflite", "int8_tflite"}
    int8_path = out / manifest.files["int8_tflite"].path
    _assert_fully_int8(int8_path, float_output=False)
    from compilers import edgetpu
    preflight = edgetpu.compile(int8_path, out_dir=tmp_path / "edgetpu", preflight_only=True).preflight
    assert preflight.ops_on_tpu == preflight.ops_total and preflight.subgraphs == 1


def test_eval_reproduces_the_manifest(tiny_build, tiny_data):
    import json
    out = tiny_build("tinytracker_s", "qat")
    manifest = read_manifest(out)
    result = json.loads(run_zoo("eval", out / manifest.files["int8_tflite"].path,
                                "--data", tiny_data, "--json").stdout)
    assert result["model"] == "tinytracker_s"
    assert result["metrics"]["model"]["cm"] == pytest.approx(manifest.metrics["int8_tflite"].cm)
    assert result["metrics"]["mean_baseline"]["cm"] == pytest.approx(
        manifest.metrics["mean_baseline"].cm)


@pytest.mark.parametrize("args, message", [
    (["build", "nosuchnet"], "unknown model"),
    (["build", "tinytracker", "--data", "/"], "not a GazeCapture root"),
    (["build", "tinytracker", "--out", "/proc/zoo-out"], "cannot write there"),
    (["eval", "model.onnx"], "not a .tflite, .h5 or .keras"),
])
def test_bad_input_is_one_line_exit_2(args, message, capsys):
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and stderr.count("\n") == 1, stderr


def test_qat_with_ptq_is_refused(capsys):
    assert main(["build", "tinytracker", "--qat", "--ptq"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_interrupted_build_leaves_nothing_and_resume_completes(tiny_data, tmp_path):
    out = tmp_path / "run"
    partial = tmp_path / "run.partial"
    args = ["build", "tinytracker_s", "--data", tiny_data, "--out", out, "--epochs", 3,
            "--batch-size", 4, "--steps", 2, "--input-size", 32]
    child = subprocess.Popen([sys.executable, "-m", "zoo", *map(str, args)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said = []
    for line in child.stdout:  # kill on the state the build reports, not on a file that comes and goes
        said.append(line)
        if line.startswith(f"{RESUMABLE_LINE} train epoch 1/3"):
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert said and said[-1].startswith(RESUMABLE_LINE), "".join(said)
    assert not out.exists()
    result = run_zoo(*args, "--resume")
    assert "Epoch 1/3" not in result.stdout  # resumed after the checkpointed epoch
    manifest = _assert_manifest_matches_files(out)
    assert set(manifest.files) == {"float_h5", "float_tflite"}
    assert not partial.exists()


def test_resume_without_an_interrupted_build_is_refused(tiny_data, tmp_path, capsys):
    argv = ["build", "tinytracker_s", "--data", str(tiny_data), "--out", str(tmp_path / "x"), "--resume"]
    assert main(argv) == 2
    assert "nothing to resume" in capsys.readouterr().err


# In the order `zoo build --qat` imports them (zoo.train.build first, tfmot after the tf_keras switch).
CALIBRATION_CHECK = """
import os
import tensorflow  # before TF_USE_LEGACY_KERAS, as zoo build does (BUILD_NOTES, tfmot needs it)
import numpy as np
from zoo.train.qat import calibrate_ranges
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow_model_optimization as tfmot
import tensorflow as tf

tf.keras.utils.set_random_seed(0)
inputs = tf.keras.Input((8,), name="x")
hidden = tf.keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
model = tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="out")(hidden))
qat = tfmot.quantization.keras.quantize_model(model)
batch = {"x": np.random.default_rng(0).normal(0, 3, (64, 8)).astype(np.float32)}
assert calibrate_ranges(qat, batch) == 2
weights = {v.name: v.numpy() for v in qat.non_trainable_variables}
activations = np.maximum(batch["x"] @ model.get_layer("hidden").kernel.numpy()
                         + model.get_layer("hidden").bias.numpy(), 0)
print(float(weights["quant_hidden/post_activation_min:0"]),
      float(weights["quant_hidden/post_activation_max:0"]), float(activations.max()))
"""


def test_qat_ranges_start_from_the_calibration_batch_not_tfmots_default():
    """The activation range after calibration is the batch's (within int8 resolution), not
    tfmot's [-6, 6] start; the int8 model inherits it."""
    result = subprocess.run([sys.executable, "-c", CALIBRATION_CHECK], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    low, high, true_max = map(float, result.stdout.split()[-3:])
    assert low == 0.0  # a ReLU's range starts at 0
    assert true_max > 6.5 and high == pytest.approx(true_max, rel=0.02)
