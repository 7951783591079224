"""compilers.imx500.importer and its exact check: tiny Keras models that together use every operator
the importer maps are converted to int8 TFLite (one to float), imported back into Keras and run
against LiteRT on both sides of the check: the quantization-simulating twin operator by operator
(compilers.imx500.exact_check, within one step) and the float model MCT gets at the outputs. The
check fails on a perturbed import, naming the operator; the public mobilenet_v1 file passes; an
models.LSTM file is refused by name."""
import subprocess
import sys

import numpy as np
import pytest

import tflite_import_models as models
from conftest import REPO
from zoo.errors import UsageError
from zoo.tflite import read_graph
from compilers.imx500.exact_check import MAX_STEPS, exact_check
from compilers.imx500.importer import UnsupportedOperator, tflite_to_keras


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path} of every test model's TFLite, converted once."""
    return models.write_models(tmp_path_factory.mktemp("tflite_import"))


def test_the_test_files_use_every_operator(files):
    """From the TFLite files' own operator lists, so the coverage cannot silently drop."""
    graphs = [read_graph(path) for path in files.values()]
    assert models.OPERATORS <= {op.name for graph in graphs for op in graph.operators}
    assert models.FEATURES <= set().union(*map(models.features, graphs))


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_import_agrees_with_litert_on_both_sides_of_the_check(files, name):
    """The int8 file: the twin of each operator within a step of LiteRT's reference kernels, the
    float model (MCT's input) a few steps from it at the outputs (int8 rounding accumulates, and
    where a coarse tensor is requantized finer, as in the math model, many: information only).
    The float file: the float import of each operator and at the outputs within a relative 1e-4
    of LiteRT (arg max and min: the same index)."""
    checks = {}
    for path in (files[name], files[f"{name}_float"]):
        checks[path] = exact_check(path, models.inputs(path), float_model=tflite_to_keras(path))
        assert checks[path].frames == 32 and checks[path].passed, (path.name, checks[path])
    int8, float_file = checks.values()
    if name != "math":  # the math model's float distance is information only (docstring)
        assert int8.float_output_steps <= models.TINY_MODEL_STEPS, int8
    assert float_file.max_steps <= MAX_STEPS and float_file.float_output_steps <= MAX_STEPS, float_file


def test_litert_reference_sum_is_overruled_by_its_optimized_kernel(files):
    """LiteRT's reference int8 SUM returns the same wrong value everywhere (BUILD_NOTES): the check
    says so and counts the optimized kernel, which the twin agrees with."""
    check = exact_check(files["math"], models.inputs(files["math"]))
    (operator, note), = check.kernel_notes.items()
    assert operator.endswith("(SUM)") and "reference kernel is wrong" in note
    assert check.by_operator["SUM"] <= 0.51


def test_names_and_shapes_follow_the_file(files):
    model = tflite_to_keras(files["two_inputs"])
    assert sorted(model.input_names) == ["extra", "image"]
    assert sorted(tuple(t.shape) for t in model.inputs) == [(None, 4), (None, 8, 8, 3)]
    assert model.output_names == ["output_0"] and tuple(model.output.shape) == (None, 3)
    convs = tflite_to_keras(files["convs"])
    assert convs.input_names == ["face"] and tuple(convs.output.shape) == (None, 6)


def test_exact_check_wants_a_named_batch_for_several_inputs(files):
    with pytest.raises(UsageError, match="give a dict"):
        exact_check(files["two_inputs"], np.zeros((32, 8, 8, 3), np.float32))
    with pytest.raises(UsageError, match="at least 32 frames"):
        exact_check(files["two_inputs"], models.inputs(files["two_inputs"], frames=4))


@pytest.mark.parametrize("kind", ["weights x1.01", "bias off by one step", "wrong padding"])
def test_a_perturbed_import_fails_the_check_at_its_operator(files, monkeypatch, kind):
    """The convs model's first convolution (stride 2, SAME), perturbed in the output channel that
    reaches furthest from its zero point (1% of it is over a step): the check fails there, where
    the float model's distance at the output could not have told (it is rounding-sized)."""
    path, inputs = files["convs"], models.inputs(files["convs"])
    op = read_graph(path).operators[0]
    assert op.name == "CONV_2D" and op.options.padding == 0 and op.options.strideH == 2
    reach = models.reach(path, op, inputs)
    assert reach.max() > 100, reach
    models.perturb(monkeypatch, path, op, kind, int(np.argmax(reach)))
    check = exact_check(path, inputs)
    assert not check.passed and check.first_failure.startswith("operator 0 (CONV_2D): "), check
    assert check.max_steps > MAX_STEPS


def test_a_fused_tanh_becomes_a_tanh_layer(files, tmp_path):
    """The converter never writes a fused TANH and LiteRT's int8 convolution ignores one, so this is
    checked on the model's structure: the file's first plain convolution given a fused TANH."""
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(str(files["convs"]))
    graph = read_graph(files["convs"])
    index = next(op.index for op in graph.operators
                 if op.name == "CONV_2D" and not op.options.fusedActivationFunction)
    model.subgraphs[0].operators[index].builtinOptions.fusedActivationFunction = 4  # TANH
    flatbuffer_utils.write_model(model, str(tmp_path / "tanh.tflite"))
    layer = tflite_to_keras(tmp_path / "tanh.tflite").get_layer(f"op{index}_conv_2d")
    assert layer.get_config()["activation"] == "tanh"
    assert type(layer.input.node.layer).__name__ == "Conv2D"


def test_mobilenet_imports_and_passes_the_exact_check():
    """A public uint8 file: each of its 31 operators within a step of LiteRT; the float model is
    further at the softmax output (rounding a softmax amplifies), and agrees on average."""
    from compilers.imx500.calibration import value_range
    graph = read_graph(models.MOBILENET)
    model = tflite_to_keras(models.MOBILENET)
    assert model.input_names == ["input"] and tuple(model.output.shape) == (None, 1001)
    assert model.output_names == ["MobilenetV1_Predictions_Reshape_1"]
    low, high = value_range(graph, graph.tensors[graph.inputs[0]])
    frames = np.random.default_rng(0).uniform(low, high, (32, 128, 128, 3)).astype(np.float32)
    check = exact_check(models.MOBILENET, frames, float_model=model)
    assert check.passed and check.max_steps <= MAX_STEPS and check.by_operator["CONV_2D"] <= 0.6, check
    assert check.float_mean_steps < 0.1 < check.float_output_steps, check


def test_an_lstm_is_refused_naming_the_operator():
    with pytest.raises(UnsupportedOperator, match=r"keras_lstm_mnist_ptq\.tflite: operator 1 "
                                                  r"\(UNIDIRECTIONAL_SEQUENCE_LSTM\) has no Keras") as error:
        tflite_to_keras(models.LSTM)
    assert isinstance(error.value, UsageError) and "\n" not in str(error.value)


def test_refusal_comes_before_tensorflow_is_imported():
    """Argument checking stays fast: neither the module nor a refusal imports TensorFlow."""
    script = ("import sys\nfrom compilers.imx500.importer import tflite_to_keras, UnsupportedOperator\n"
              f"try:\n    tflite_to_keras({str(models.LSTM)!r})\nexcept UnsupportedOperator:\n    pass\n"
              "print(sorted(m for m in ('tensorflow', 'tensorflow_model_optimization') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_a_float_input_s_range_is_that_of_the_quantize_it_feeds(files):
    """A float image input of an int8 file is quantized by its first operator: its range is that
    one's; a float file says nothing about its range (photos cannot be scaled to it)."""
    from compilers.imx500.calibration import value_range
    graph = read_graph(files["two_inputs"])
    image = next(graph.tensors[i] for i in graph.inputs if len(graph.tensors[i].shape) == 4)
    quantize = next(op for op in graph.operators if op.inputs[0] == image.index)
    scaled = graph.tensors[quantize.outputs[0]]
    assert quantize.name == "QUANTIZE" and image.dtype == "float32"
    assert value_range(graph, image) == pytest.approx([(-128 - scaled.zero_point[0]) * scaled.scale[0],
                                                       (127 - scaled.zero_point[0]) * scaled.scale[0]])
    float_graph = read_graph(files["two_inputs_float"])
    assert value_range(float_graph, float_graph.tensors[float_graph.inputs[0]]) is None
