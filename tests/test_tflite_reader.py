"""zoo.tflite's flatbuffer reader (read_graph, describe): checked against LiteRT's own interpreter on
real files, and its errors on files that are missing, not TFLite, or cut short."""
import collections
import pathlib
import warnings

import numpy as np
import pytest

from zoo import tflite
from zoo.errors import UsageError

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "shared" / "edgetpu" / "reference-models"


@pytest.fixture(scope="module")
def two_input_int8(tmp_path_factory):
    """A real int8 conversion of a tiny two-input Keras model (int8 input, float output)."""
    import tensorflow as tf
    image = tf.keras.Input((8, 8, 3), name="image")
    extra = tf.keras.Input((4,), name="extra")
    x = tf.keras.layers.Conv2D(4, 3)(image)
    x = tf.keras.layers.Concatenate()([tf.keras.layers.Flatten()(x), extra])
    model = tf.keras.Model([image, extra], tf.keras.layers.Dense(2)(x))
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(2):
            yield [rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32),
                   rng.uniform(-1, 1, (1, 4)).astype(np.float32)]
    concrete = tf.function(lambda a, b: model([a, b])).get_concrete_function(
        tf.TensorSpec((1, 8, 8, 3), tf.float32), tf.TensorSpec((1, 4), tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    path = tmp_path_factory.mktemp("reader") / "two_input.tflite"
    with warnings.catch_warnings():  # TF warns that float outputs have no statistics: expected
        warnings.simplefilter("ignore")
        path.write_bytes(converter.convert())
    return path


def _reference_files():
    if not REFERENCE.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{REFERENCE} is absent"))]
    return sorted(path.name for path in REFERENCE.glob("*.tflite"))


def _assert_matches_litert(path):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path))
    info = tflite.describe(path)
    assert info["bytes"] == path.stat().st_size
    for records, details in ((info["inputs"], interpreter.get_input_details()),
                             (info["outputs"], interpreter.get_output_details())):
        assert [r["name"] for r in records] == [d["name"] for d in details]
        for record, detail in zip(records, details):
            assert record["shape"] == detail["shape_signature"].tolist()
            assert record["dtype"] == np.dtype(detail["dtype"]).name
            scale, zero_point = detail["quantization"]
            assert (record["scale"], record["zero_point"]) == ((scale, zero_point) if scale else (None, None))
    assert info["ops"] == dict(collections.Counter(op["op_name"] for op in interpreter._get_ops_details()))
    return info


@pytest.mark.parametrize("name", _reference_files())
def test_describe_agrees_with_litert_on_reference_models(name):
    info = _assert_matches_litert(REFERENCE / name)
    if name.endswith("_edgetpu.tflite"):
        assert "edgetpu-custom-op" in info["custom_ops"]


def test_describe_agrees_with_litert_on_a_fresh_int8_conversion(two_input_int8):
    info = _assert_matches_litert(two_input_int8)
    assert [i["dtype"] for i in info["inputs"]] == ["int8", "int8"]
    assert info["outputs"][0]["dtype"] == "float32" and info["outputs"][0]["scale"] is None
    assert info["custom_ops"] == [] and info["subgraphs"] == 1


def test_constants_read_from_the_file_equal_the_interpreters_tensors(two_input_int8):
    interpreter = tflite.make_interpreter(two_input_int8)
    graph = tflite.read_graph(two_input_int8)
    constants = [t for t in graph.tensors if t.is_constant]
    assert constants, "a converted conv/dense model has weights"
    for tensor in constants:
        np.testing.assert_array_equal(tensor.values(), interpreter.get_tensor(tensor.index))
    conv = next(op for op in graph.operators if op.name == "CONV_2D")
    weights = graph.tensors[conv.inputs[1]]
    assert weights.dtype == "int8" and len(weights.scale) == 4  # per-channel, one scale per filter


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        tflite.describe(tmp_path / "absent.tflite")


def test_directory(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        tflite.read_graph(tmp_path)


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("just some text, long enough to hold a header")
    with pytest.raises(UsageError, match="not a TFLite model"):
        tflite.describe(path)


def test_every_truncation_is_caught(two_input_int8, tmp_path):
    data = two_input_int8.read_bytes()
    cut = tmp_path / "cut.tflite"
    for length in list(range(8, len(data), max(1, len(data) // 150))) + [len(data) - 1]:
        cut.write_bytes(data[:length])
        with pytest.raises(UsageError, match="truncated or corrupt"):
            tflite.read_graph(cut)
