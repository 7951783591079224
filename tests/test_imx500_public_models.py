"""compilers/imx500.py on public int8 files no one here wrote (issue #20): the network cut between
the sensor and the Pi (MoveNet's keypoint decoding, DeepLab's TF1 resize and ARG_MAX, a custom
decoder), checked tail against LiteRT on real photos; image ranges from the file's own
quantization; calibration on real samples by the file's own input names; a grey input fed RGB."""
import numpy as np
import pytest

from conftest import SHARED

REFERENCE = SHARED / "edgetpu" / "reference-models"


def _photo_frames(graph, count):
    """``count`` frames of the shared photos at the file's input size, raw 0..255 (the two
    reference models tested here take uint8 images)."""
    from PIL import Image
    _, height, width, _ = graph.tensors[graph.inputs[0]].shape
    photos = [Image.open(SHARED / "images" / name).convert("RGB")
              for name in ("face.jpg", "grace_hopper.bmp")]
    return np.stack([np.asarray(photos[i % 2].resize((width, height)), np.float32) for i in range(count)])


def _run_on_the_pi_side(path, graph, split, frames, folder):
    """What run_on_pi.py makes of the sensor's outputs (here LiteRT's sensor part, dequantized as
    picamera2 hands them over) with the host tail, beside what LiteRT makes of the whole file."""
    from ai_edge_litert.interpreter import Interpreter
    from compilers.imx500 import deployment, pi_runner
    from compilers.imx500.exact_check import real, stored
    from compilers.imx500.host_tail import write_tail
    from compilers.imx500.partition import submodel
    from compilers.imx500.packaging import RASPBERRY_PI
    from compilers.imx500.records import AspectRatio, DeploymentRecord, HostTailRecord, NetworkIntrinsics
    from zoo.artifacts import record_from
    tail = write_tail(path, graph, split, {graph.inputs[0]: frames}, folder)
    record = DeploymentRecord(
        sensor_inputs=[], face_grid=None, roi=[0, 0, 1, 1], gaze_scale_cm=None, task=None, labels=None,
        host_tail=record_from(HostTailRecord, tail, "write_tail"), output="the file's outputs",
        network_intrinsics=NetworkIntrinsics(AspectRatio(1, 1)), sensor_feeds_all_inputs=True,
        raspberry_pi=RASPBERRY_PI)
    config = deployment.pi_config(graph, split, record)
    head, whole = (Interpreter(model_content=content) for content in
                   (submodel(path, split.sensor, graph.inputs, split.sensor_outputs), path.read_bytes()))
    results = []
    for interpreter in (head, whole):
        interpreter.allocate_tensors()
    for frame in frames:
        for interpreter in (head, whole):
            interpreter.set_tensor(graph.inputs[0], stored(graph.tensors[graph.inputs[0]], frame[None]))
            interpreter.invoke()
        sent = [real(graph.tensors[i], head.get_tensor(i))[0] for i in split.sensor_outputs]
        got = pi_runner.results(config, sent, pi_runner.tail_interpreter(config, folder))
        results.append((got, {graph.tensors[i].name: whole.get_tensor(i)[0] for i in graph.outputs}))
    return tail, results


def test_movenet_runs_its_keypoint_decoding_on_the_pi_and_the_pi_gets_the_file_s_keypoints(tmp_path):
    """MoveNet: the CAST of its uint8 input stays on the sensor (a float model takes the values as
    they are); from FLOOR_DIV on, the keypoint decoding (arg max, gathers, integer arithmetic)
    runs on the Pi, with the weightless operators that only feed it; the sensor sends its four
    head convolutions. run_on_pi.py, given those, returns the file's own keypoints."""
    from compilers.imx500.partition import partition
    from zoo.tflite import read_graph
    path = REFERENCE / "movenet_single_pose_lightning_ptq.tflite"
    graph = read_graph(path)
    split = partition(graph)
    assert 0 in split.sensor and graph.operators[0].name == "CAST"
    assert list(split.reasons) == [90] and "FLOOR_DIV has no Keras equivalent" in split.reasons[90]
    host = {graph.operators[i].name for i in split.host}
    assert host >= {"ARG_MAX", "GATHER_ND", "FLOOR_DIV", "PACK", "DIV"}
    assert not any(graph.operators[i].name in ("CONV_2D", "DEPTHWISE_CONV_2D") for i in split.host)
    assert [graph.tensors[i].shape for i in split.sensor_outputs] == [
        (1, 48, 48, 1), (1, 48, 48, 17), (1, 48, 48, 34), (1, 48, 48, 34)]
    tail, results = _run_on_the_pi_side(path, graph, split, _photo_frames(graph, 2), tmp_path)
    assert tail["check"] == "exact (bit for bit) on 2 of 2 inputs" and tail["custom_operators"] == []
    for got, expected in results:
        (name, keypoints), = got.items()
        assert keypoints.shape == (1, 17, 3) and np.array_equal(keypoints, expected[name])


def test_deeplab_runs_its_tf1_resize_and_arg_max_on_the_pi(tmp_path):
    """DeepLab: its last resize (33 to 513 pixels, align_corners: TF1's, which imxconv-tf refuses)
    and the arg max after it run on the Pi, with the same-size resize before them; the sensor
    sends the 33x33x21 logits and the Pi gets the file's 513x513 class map."""
    from compilers.imx500.partition import partition
    from zoo.tflite import read_graph
    path = REFERENCE / "deeplabv3_mnv2_dm05_pascal_quant.tflite"
    graph = read_graph(path)
    split = partition(graph)
    assert [graph.operators[i].name for i in split.host] == ["RESIZE_BILINEAR", "RESIZE_BILINEAR", "ARG_MAX"]
    assert "imxconv-tf refuses" in split.reasons[70]
    assert [graph.tensors[i].shape for i in split.sensor_outputs] == [(1, 33, 33, 21)]
    tail, results = _run_on_the_pi_side(path, graph, split, _photo_frames(graph, 1), tmp_path)
    assert tail["check"] == "exact (bit for bit) on 1 of 1 inputs"
    (got, expected), = results
    assert got["ArgMax"].shape == (513, 513) and np.array_equal(got["ArgMax"], expected["ArgMax"])


def test_a_custom_decoder_runs_on_the_pi_where_litert_here_cannot_check_it(tmp_path):
    """PoseNet's PosenetDecoderOp (Coral's custom operator) goes to the Pi with the requantizing
    operators before it; LiteRT here has no such operator, and the report says the tail went
    unchecked rather than pretending."""
    from compilers.imx500.host_tail import write_tail
    from compilers.imx500.partition import partition
    from zoo.tflite import read_graph
    path = REFERENCE / "posenet_mobilenet_v1_075_353_481_16_quant_decoder.tflite"
    graph = read_graph(path)
    split = partition(graph)
    assert split.reasons == {37: "PosenetDecoderOp is a custom operator"} and len(split.sensor_outputs) == 4
    tail = write_tail(path, graph, split, {graph.inputs[0]: _photo_frames(graph, 1)}, tmp_path)
    assert tail["custom_operators"] == ["PosenetDecoderOp"] and tail["check"].startswith("not run: ")
    assert (tmp_path / "host_tail.tflite").stat().st_size < path.stat().st_size / 4


def test_run_on_pi_names_a_classifier_s_top_classes():
    from compilers.imx500 import pi_runner
    config = {"gaze_scale_cm": None, "task": "classification", "labels": ["cat", "dog", "owl"]}
    assert pi_runner.describe(config, {"scores": np.array([0.1, 0.7, 0.2])}) == "dog 0.70, owl 0.20, cat 0.10"


def test_an_image_input_s_range_comes_from_the_file_s_own_quantization():
    from compilers.imx500.calibration import value_range
    from zoo.tflite import read_graph
    for name, expected in (("mobilenet_v1_0.25_128_quant", [-1.0, 127 / 128]),  # uint8, 1/128, zero point 128
                           ("movenet_single_pose_lightning_ptq", [0.0, 255.0])):  # raw uint8, cast to float
        graph = read_graph(REFERENCE / f"{name}.tflite")
        assert value_range(graph, graph.tensors[graph.inputs[0]]) == pytest.approx(expected), name


def _split_concat_samples(graph, path):
    """32 real samples of each of split_concat's three 8x8 inputs (3, 1 and 2 channels) cut from
    the shared photos, saved under the file's own input names (inputs/rnn1, ...)."""
    from compilers.imx500.calibration import value_range
    from PIL import Image
    photos = [np.asarray(Image.open(SHARED / "images" / name).convert("RGB").resize((64, 64)), np.float32)
              / 255 for name in ("face.jpg", "grace_hopper.bmp")]
    arrays = {}
    for index in graph.inputs:
        tensor = graph.tensors[index]
        low, high = value_range(graph, tensor)
        channels = tensor.shape[3]
        tiles = [photo[y:y + 8, x:x + 8, :channels]
                 for photo in photos for y in range(0, 64, 16) for x in (0, 32)]
        arrays[tensor.name] = np.stack(tiles * 2)[:32] * (high - low) + low
    np.savez(path, **arrays)
    return path


def test_real_samples_calibrate_every_input_by_the_file_s_own_input_names(tmp_path):
    """split_concat has three inputs, two of them not images: an .npz whose arrays carry the file's
    own names (inputs/rnn1 where the importer says inputs_rnn1) feeds each, through the child's
    own path (plan, ArraySource, the exact check)."""
    from compilers.imx500.calibration import plan
    from compilers.imx500.data import ArraySource
    from compilers.imx500.exact_check import exact_check
    from compilers.imx500.graph import Spec
    from compilers.imx500.importer import input_names
    from zoo.tflite import read_graph
    path = REFERENCE / "split_concat.tflite"
    graph, names = read_graph(path), input_names(path)
    samples = _split_concat_samples(graph, tmp_path / "samples.npz")
    data, recipes, _ = plan(path, graph, names, None, samples, None, 200)
    assert data["keys"] == {"input1": "input1", "inputs_rnn1": "inputs/rnn1", "inputs_rnn2": "inputs/rnn2"}
    specs = [Spec(name, None, graph.tensors[index].shape[1:]) for index, name in names.items()]
    source = ArraySource(data, specs, specs, 200)
    assert source.calibration_count == source.check_count == 32 and recipes is None
    assert [batch[0].shape for batch in source.calibration_batches()] == [(16, 8, 8, 3)] * 2
    check = exact_check(path, source.check_inputs())
    assert check.passed and check.max_steps == 0.0  # concatenations and a split: nothing to round


def test_a_grey_input_calibrated_on_photos_takes_the_sensor_s_rgb():
    """The sensor gives RGB: a one-channel image input of a file calibrated on photos is marked
    GREY_PHOTO by the child, and its deployment graph takes RGB and converts it with the luma
    weights (PIL's "L", which made the grey check inputs, uses the same to 3 decimals)."""
    import tensorflow as tf
    from compilers.imx500.child import _specs
    from compilers.imx500.graph import GREY_PHOTO, LUMA, deployment_graph, sensor_spec
    inputs = tf.keras.Input((8, 8, 1), name="gray")
    model = tf.keras.Model(inputs, tf.keras.layers.Conv2D(2, 3)(inputs))
    (spec,) = _specs({"recipes": None, "data": {"kind": "images"}}, model)
    assert spec.recipe == GREY_PHOTO and sensor_spec(spec).shape == (8, 8, 3)
    assert _specs({"recipes": None, "data": {"kind": "arrays"}}, model)[0].recipe is None
    graph = deployment_graph(model, [spec])
    rgb = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    expected = model(np.tensordot(rgb, np.asarray(LUMA, np.float32), axes=1)[..., None])
    assert tuple(graph.input.shape) == (None, 8, 8, 3)
    assert np.allclose(graph(rgb), expected, atol=1e-5)
