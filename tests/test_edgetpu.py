"""compilers/edgetpu.py (issue: the Coral Edge TPU compiler adapter): the pre-flight against the
reference pairs Google's compiler produced and against our own int8 models, the compiler's output
parsed from the recorded samples, the subprocess path driven by the stand-in under
tests/fake_edgetpu_compiler, bad input, and the runtime helper."""
import collections
import ctypes
import json
import os
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from compilers import edgetpu
from zoo import tflite
from zoo.errors import UsageError

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
README = SHARED / "edgetpu" / "README.md"
REFERENCE = SHARED / "edgetpu" / "reference-models"
FAKE_COMPILER = REPO / "tests" / "fake_edgetpu_compiler" / "edgetpu_compiler"
needs_shared = pytest.mark.skipif(not README.is_file(),
                                  reason=f"{SHARED} (the shared Edge TPU reference material) is absent")


# --- Models: real int8 conversions, made once per session ---------------------------------------


def _keras_model(name):
    import tensorflow as tf
    layers = tf.keras.layers
    if name == "mobilenet_v3_full":  # the non-minimalistic MobileNetV3: hard-swish activations
        return tf.keras.applications.MobileNetV3Small(
            minimalistic=False, include_preprocessing=False, weights=None, input_shape=(96, 96, 3),
            include_top=False)
    if name == "grouped_conv":
        image = tf.keras.Input((8, 8, 4))
        return tf.keras.Model(image, layers.Conv2D(4, 3, groups=2)(image))
    if name == "dynamic_input":
        image = tf.keras.Input((None, None, 3))
        return tf.keras.Model(image, layers.Conv2D(4, 3)(image))
    from zoo import create_model
    return create_model(name)


def _convert(model, quantize=True, int8_io=True):
    """TFLite bytes of ``model``: full-int8 with a tiny random representative dataset (int8 or
    float input/output), or float. Converting the concrete function directly skips the SavedModel
    export that from_keras_model makes, which is ten times slower and yields the same operators."""
    import tensorflow as tf
    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(2):
            yield [rng.uniform(-1, 1, (1,) + tuple(s or 8 for s in shape)).astype(np.float32)
                   for shape in shapes]
    concrete = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0])).get_concrete_function(
        *[tf.TensorSpec((None,) + shape, tf.float32) for shape in shapes])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


@pytest.fixture(scope="session")
def tflite_model(tmp_path_factory):
    """``tflite_model(name, quantize=True, int8_io=True)`` -> path of a real conversion."""
    folder = tmp_path_factory.mktemp("edgetpu_models")
    made = {}

    def convert(name, quantize=True, int8_io=True):
        key = (name, quantize, int8_io)
        if key not in made:
            path = folder / f"{name}_{'int8' if quantize else 'float'}{'' if int8_io else '_float_io'}.tflite"
            path.write_bytes(_convert(_keras_model(name), quantize, int8_io))
            made[key] = path
        return made[key]
    return convert


def _run(*args, env=None):
    """The command line as a user runs it."""
    return subprocess.run([sys.executable, str(REPO / "compilers" / "edgetpu.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **(env or {})})


# --- Pre-flight against the reference pairs -------------------------------------------------------


def _reference_models():
    if not REFERENCE.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{REFERENCE} is absent"))]
    return sorted(p.stem for p in REFERENCE.glob("*.tflite") if not p.stem.endswith("_edgetpu"))


@pytest.mark.parametrize("name", _reference_models())
def test_preflight_predicts_the_cpu_operators_left_in_the_compiled_twin(name, tmp_path):
    report = edgetpu.compile(REFERENCE / f"{name}.tflite", out_dir=tmp_path, preflight_only=True)
    twin = tflite.read_graph(REFERENCE / f"{name}_edgetpu.tflite")
    left_on_cpu = collections.Counter(op.name for op in twin.operators if op.name != "edgetpu-custom-op")
    preflight = report["preflight"]
    assert edgetpu._op_counts(preflight["cpu_ops"]) == left_on_cpu
    assert preflight["subgraphs"] == sum(op.name == "edgetpu-custom-op" for op in twin.operators) == 1
    assert preflight["ops_on_tpu"] + preflight["ops_on_cpu"] == preflight["ops_total"]
    if not left_on_cpu:  # "all mapped"
        assert preflight["ops_on_tpu"] == preflight["ops_total"] and preflight["partition_at"] is None
    assert report["status"] == "preflight-only" and report["compiler"] is None
    assert json.loads((tmp_path / "report.json").read_text()) == report


@needs_shared
def test_movenet_partition_ends_at_arg_max_after_a_cpu_input_cast(tmp_path):
    preflight = edgetpu.compile(REFERENCE / "movenet_single_pose_lightning_ptq.tflite", out_dir=tmp_path,
                                preflight_only=True)["preflight"]
    operators = preflight["operators"]
    assert [op["op"] for op in operators[:2] if not op["on_tpu"]] == ["CAST", "QUANTIZE"]
    assert preflight["partition_at"] == {"index": 89, "op": "ARG_MAX", "status": "Operation not supported"}
    # The heads after the ARG_MAX that it does not feed stay on the TPU.
    assert all(operators[i]["on_tpu"] for i in range(100, 105))


# --- Pre-flight on our models ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tinytracker", "tinytracker_s"])
def test_tinytracker_int8_is_predicted_fully_mapped_in_one_subgraph(name, tflite_model, tmp_path):
    report = edgetpu.compile(tflite_model(name), out_dir=tmp_path, preflight_only=True)
    preflight = report["preflight"]
    assert preflight["ops_on_tpu"] == preflight["ops_total"] > 20
    assert preflight["cpu_ops"] == [] and preflight["subgraphs"] == 1 and preflight["problems"] == []
    graph = tflite.read_graph(tflite_model(name))
    assert preflight["param_bytes"] == sum(t.buffer.nbytes for t in graph.tensors if t.is_constant)
    assert preflight["param_bytes_streamed"] == 0


def test_float_input_and_output_leave_only_their_conversions_on_the_cpu(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("tinytracker_s", int8_io=False), out_dir=tmp_path,
                                preflight_only=True)["preflight"]
    assert preflight["cpu_ops"] == [
        {"op": "QUANTIZE", "count": 1,
         "status": "Operation is otherwise supported, but not mapped due to some unspecified limitation"},
        {"op": "DEQUANTIZE", "count": 1, "status": "Operation is working on an unsupported data type"}]
    assert preflight["subgraphs"] == 1 and preflight["ops_on_tpu"] == preflight["ops_total"] - 2


def test_full_mobilenet_v3_is_predicted_to_stop_at_hard_swish(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("mobilenet_v3_full"), out_dir=tmp_path,
                                preflight_only=True)["preflight"]
    stop = preflight["partition_at"]
    assert (stop["op"], stop["status"]) == ("HARD_SWISH", "Operation not supported")
    operators = preflight["operators"]
    assert all(op["on_tpu"] for op in operators[:stop["index"]])
    assert not any(op["on_tpu"] for op in operators[stop["index"]:])
    assert {op["status"] for op in operators[stop["index"]:] if op["op"] != "HARD_SWISH"} == \
        {"More than one subgraph is not supported"}


def test_grouped_convolution_is_predicted_to_be_refused_by_compiler_16(tflite_model, tmp_path):
    report = edgetpu.compile(tflite_model("grouped_conv"), out_dir=tmp_path, preflight_only=True)
    (problem,) = report["preflight"]["problems"]
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in problem
    assert "grouped convolution" in problem


# --- The compiler's output, from the samples recorded in the shared README ------------------------


def _readme_blocks():
    """Fully mapped stdout, the partial-mapping lines, the operation log."""
    return re.findall(r"```\n(.*?)```", README.read_text(), re.S)[:3]


def _partial_stdout():
    stdout, partial, _ = _readme_blocks()
    return re.sub(r"(Operation log: .*\n)", lambda m: m.group(1) + partial, stdout)


MAPPED_MODEL_FIGURES = {
    "input_model": "quantized_model.tflite", "input_bytes": round(4.04 * 2**20),
    "output_model": "quantized_model_edgetpu.tflite", "output_bytes": round(4.13 * 2**20),
    "on_chip_bytes": round(604.50 * 2**10), "on_chip_remaining_bytes": round(511.50 * 2**10),
    "off_chip_bytes": round(3.45 * 2**20), "subgraphs": 1, "ops_total": 50,
    "operation_log": "quantized_model_edgetpu.log"}


@needs_shared
def test_parser_reads_every_figure_of_the_fully_mapped_stdout():
    parsed = edgetpu._parse_compiler_output(_readme_blocks()[0])
    assert (parsed["version"], parsed["compile_ms"], parsed["errors"]) == ("16.0.384591198", 542, [])
    assert parsed["models"] == [MAPPED_MODEL_FIGURES]


@needs_shared
def test_parser_reads_the_partial_mapping_counts():
    (model,) = edgetpu._parse_compiler_output(_partial_stdout())["models"]
    assert model == {**MAPPED_MODEL_FIGURES, "ops_on_tpu": 261, "ops_on_cpu": 6}


@needs_shared
def test_parser_reads_the_operation_log_and_the_same_table_printed_by_dash_s():
    stdout, _, log = _readme_blocks()
    expected = [{"op": "CONV_2D", "count": 35, "status": "Mapped to Edge TPU"},
                {"op": "SOFTMAX", "count": 1, "status": "Mapped to Edge TPU"}]
    assert edgetpu._parse_log(log) == {"version": "16.0.384591198", "operations": expected}
    table = log[log.index("Operator"):]
    assert edgetpu._parse_compiler_output(stdout + table)["operations"] == expected


@needs_shared
def test_parser_splits_several_models_compiled_together():
    stdout = _readme_blocks()[0].replace("Model compiled", "Models compiled")
    block = stdout[stdout.index("Input model:"):stdout.index("See the operation log")]
    second = block.replace("quantized", "second")
    parsed = edgetpu._parse_compiler_output(stdout.replace(block, block + second))
    assert [m["input_model"] for m in parsed["models"]] == ["quantized_model.tflite", "second_model.tflite"]
    assert parsed["compile_ms"] == 542


FAILURE_TEXTS = ["Invalid model: X.tflite", "Model not quantized", "Internal compiler error. Aborting!",
                 "Compilation failed due to large activation tensors in model.",
                 "Didn't find op for builtin opcode 'CONV_2D' version '6'"]


@needs_shared
@pytest.mark.parametrize("text", FAILURE_TEXTS)
def test_parser_reports_each_recorded_failure(text):
    assert text in README.read_text()
    parsed = edgetpu._parse_compiler_output(f"Edge TPU Compiler version 16.0.384591198\n{text}\n")
    assert parsed["errors"] == [text] and parsed["models"] == []


# --- The subprocess path, driven by the stand-in ------------------------------------------------


def _fake(scenario):
    return {"FAKE_EDGETPU_SCENARIO": scenario, "FAKE_EDGETPU_README": str(README)}


@needs_shared
def test_compile_keeps_the_compiled_model_and_reports_the_compilers_figures(tmp_path):
    model = REFERENCE / "mobilenet_v1_0.25_128_quant.tflite"
    result = _run(model, "-o", tmp_path / "out", "--compiler", FAKE_COMPILER, env=_fake("mapped"))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "mobilenet_v1_0.25_128_quant_edgetpu.log", "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
        "report.json"]
    assert (out / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").read_bytes() == \
        (REFERENCE / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").read_bytes()
    report = json.loads((out / "report.json").read_text())
    compiler = report["compiler"]
    assert report["status"] == "compiled" and compiler["error"] is None
    assert {k: compiler[k] for k in MAPPED_MODEL_FIGURES} == MAPPED_MODEL_FIGURES
    assert (compiler["version"], compiler["ops_on_tpu"], compiler["ops_on_cpu"]) == ("16.0.384591198", 50, 0)
    assert compiler["compiled_model"] == {"tpu_subgraphs": 1, "cpu_ops": []}
    assert compiler["cpu_ops"] == [] and len(compiler["operations"]) == 2
    # The replayed figures belong to another model: the adapter must say they disagree.
    assert report["disagreements"] == [
        "compiler maps 50 of 50 operations to the TPU; pre-flight predicted 31 of 31"]
    assert "warning: compiler maps 50 of 50" in result.stderr
    assert "compiler 16.0.384591198: 50 of 50 operations" in result.stdout
    assert edgetpu.compiled_model(out) == out / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"


@needs_shared
def test_partial_mapping_counts_and_the_compiled_models_cpu_operators(tmp_path):
    model = REFERENCE / "movenet_single_pose_lightning_ptq.tflite"
    result = _run(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, "--json", env=_fake("partial"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    compiler = report["compiler"]
    assert (compiler["ops_on_tpu"], compiler["ops_on_cpu"]) == (261, 6)
    left_on_cpu = edgetpu._op_counts(compiler["compiled_model"]["cpu_ops"])
    assert left_on_cpu == edgetpu._op_counts(report["preflight"]["cpu_ops"])
    assert not any("compiled model" in d for d in report["disagreements"])
    assert json.loads((tmp_path / "report.json").read_text()) == report


@needs_shared
@pytest.mark.parametrize("scenario, text", [
    ("not-quantized", "Invalid model: mobilenet_v1_0.25_128_quant.tflite; Model not quantized"),
    ("internal", "Internal compiler error. Aborting!"),
    ("large-activations", "Compilation failed due to large activation tensors in model."),
    ("op-version", "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'")])
def test_compiler_failure_exits_1_with_its_message(scenario, text, tmp_path):
    model = REFERENCE / "mobilenet_v1_0.25_128_quant.tflite"
    result = _run(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, env=_fake(scenario))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == text
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed" and report["compiler"]["error"] == text
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@needs_shared
def test_compiler_timeout_exits_1(tmp_path):
    model = REFERENCE / "split_concat.tflite"
    result = _run(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, "--timeout", "1", env=_fake("hang"))
    assert result.returncode == 1
    assert "timed out after 1.0 s" in result.stderr.splitlines()[-1]


@needs_shared
def test_success_without_a_compiled_model_is_a_failure(tflite_model, tmp_path):
    result = _run(tflite_model("tinytracker_s"), "-o", tmp_path, "--compiler", FAKE_COMPILER,
                  env=_fake("mapped"))
    assert result.returncode == 1
    assert "wrote no tinytracker_s_int8_edgetpu.tflite" in result.stderr


@needs_shared
def test_missing_compiler_writes_the_preflight_and_exits_3(tmp_path):
    model = REFERENCE / "mobilenet_v1_0.25_128_quant.tflite"
    out = tmp_path / "out"
    compiled = _run(model, "-o", out, "--compiler", FAKE_COMPILER, env=_fake("mapped"))
    assert compiled.returncode == 0
    result = _run(model, "-o", out, env={"PATH": str(tmp_path)})
    assert result.returncode == 3
    last = result.stderr.splitlines()[-1]
    assert "edgetpu_compiler not found" in last and "apt" in last
    # The earlier run's compiled files would contradict the new report: they are gone.
    assert [p.name for p in out.iterdir()] == ["report.json"]
    assert json.loads((out / "report.json").read_text())["compiler"] is None
    assert edgetpu.compiled_model(out) is None


# --- Bad input --------------------------------------------------------------------------------------


def _bad_input(kind, tmp_path, tflite_model):
    if kind == "missing file":
        return tmp_path / "absent.tflite"
    if kind == "directory":
        (tmp_path / "folder.tflite").mkdir()
        return tmp_path / "folder.tflite"
    if kind == "not TFLite":
        (tmp_path / "notes.tflite").write_text("not a model, but long enough to have a header")
        return tmp_path / "notes.tflite"
    if kind == "truncated":
        data = tflite_model("tinytracker_s").read_bytes()
        (tmp_path / "cut.tflite").write_bytes(data[:len(data) // 2])
        return tmp_path / "cut.tflite"
    if kind == "float model":
        return tflite_model("tinytracker_s", quantize=False)
    return tflite_model("dynamic_input")


@pytest.mark.parametrize("kind, words", [
    ("missing file", "no such file"), ("directory", "is a directory"), ("not TFLite", "not a TFLite model"),
    ("truncated", "truncated or corrupt"), ("float model", "is a float model"),
    ("dynamic input", "dynamic shape")])
def test_bad_input_is_one_line_exit_2_and_nothing_written(kind, words, tmp_path, tflite_model):
    model = _bad_input(kind, tmp_path, tflite_model)
    before = sorted(tmp_path.iterdir())
    result = _run(model, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("compilers/edgetpu.py: error: ") and words in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_help_explains_the_exit_codes():
    result = _run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "0 compiled; 1 the compiler failed or timed out; 2 bad input" in text
    assert "3 pre-flight only" in text


# --- Runtime helper --------------------------------------------------------------------------------


def test_make_interpreter_without_the_edge_tpu_runtime_raises_one_clear_error(tflite_model):
    try:
        ctypes.CDLL(edgetpu._RUNTIME_LIBRARY)
        pytest.skip("libedgetpu is installed here; this test covers its absence")
    except OSError:
        pass
    with pytest.raises(UsageError, match=r"Edge TPU runtime not found \(libedgetpu") as error:
        edgetpu.make_interpreter(tflite_model("tinytracker_s"), device="usb:0")
    assert "\n" not in str(error.value) and "libedgetpu1-std" in str(error.value)
