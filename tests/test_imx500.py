"""compilers/imx500.py (issue: IMX500 package): one real conversion of a tiny `zoo build` with MCT
and imxconv-tf (the session's shared tiny_imx500 conversion), and the bad-input and fault paths,
which fail before any toolchain work (or, for imxconv-tf, within seconds)."""
import hashlib
import json
import math
import shutil
import sys
import zipfile

import numpy as np
import pytest

from conftest import REPO, SHARED, read_manifest

# The conversion the benchmark tests use too, so the suite pays for one: TinyTrackerS has the
# face-grid channels, so it exercises baking them into the package.
MODEL = "tinytracker_s"
PACKER_MEMBERS = {"dnnParams.xml", "dnnParams.xsd", "l2staticData.bin", "manifest.json", "verTable.txt",
                  "sdpsA.bin", "sdpsC.bin", "cfgA.bin", "cfgC.bin"}


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report(folder):
    from compilers.imx500 import read_report
    return read_report(folder)


def test_tiny_build_becomes_an_imx500_package_whose_report_agrees_with_the_converter(tiny_imx500, tiny_build):
    out = tiny_imx500(MODEL)
    build = tiny_build(MODEL, "qat")
    manifest = read_manifest(build)
    report = _report(out)

    with zipfile.ZipFile(out / "packerOut.zip") as packed:
        assert set(packed.namelist()) >= PACKER_MEMBERS
        assert packed.read("dnnParams.xml") == (out / "dnnParams.xml").read_bytes()
    for kind, record in report.files.items():
        path = out / record.path
        assert path.stat().st_size == record.bytes and _sha256(path) == record.sha256, kind

    # The memory figures are the converter's own (its report file, in bytes).
    figures = json.loads((out / f"{MODEL}_imx500_MemoryReport.json").read_text())["Memory Report"]
    memory = report.memory
    assert memory.usage_bytes == int(figures["Memory Usage"].removesuffix("B")) > 0
    assert memory.available_bytes == int(figures["Total Memory Available On Chip"].removesuffix("B"))
    assert memory.fit_in_chip is figures["Fit In Chip"] is True
    assert memory.utilization == pytest.approx(memory.usage_bytes / memory.available_bytes, abs=1e-4)

    # It started from the TFLite: the import's twin agrees with LiteRT within a step at every operator.
    check = report.import_check
    assert check.frames >= 32 and check.passed and 0 < check.max_steps <= check.threshold_steps == 1.0
    assert check.float_output_steps is not None and check.float_mean_steps <= check.float_output_steps
    assert report.split.sensor_operators == report.headline.ops_total == report.headline.ops_on_accelerator
    assert report.split.host == [] and report.split.host_tail is None
    assert report.source.tflite == str(build / manifest.files["int8_tflite"].path)
    assert report.source.model_card is True and report.source.keras is None


def test_the_tiny_package_is_what_the_pi_takes_with_a_16_bit_gaze_output(tiny_imx500, tiny_build):
    """The same conversion: the sensor's input, the precision of the output, the Pi's files."""
    out = tiny_imx500(MODEL)
    manifest = read_manifest(tiny_build(MODEL, "qat"))
    report = _report(out)

    # The sensor feeds its RGB image alone: grey conversion and face-grid channels are inside.
    (trained_input,) = manifest.card.inputs
    (sensor_input,) = report.inputs
    assert trained_input.shape[2] == 3 and sensor_input.shape == trained_input.shape[:2] + [3]
    assert sensor_input.bits == 8 and sensor_input.scale > 0
    assert "RGB to grey inside the network" in report.deployment.in_network_conversion
    # A gaze model is a regression: its output is 16-bit where the IMX500 TPC allows, and the
    # report gives both precisions' per-frame distance from the float model.
    precision = report.precision
    assert precision.asked == precision.packaged == 16 and precision.note is None
    assert [o.shape for o in report.outputs] == [[2]] and report.outputs[0].bits == 16
    assert set(precision.mean_cm_from_float) == {"8", "16"}
    assert precision.mean_cm_from_float[str(precision.packaged)] == report.metrics.mean_cm_from_float
    grid = report.deployment.face_grid
    assert grid.check_max_abs_diff_cm == 0.0
    assert len(grid.cells) == 4 and grid.cells[0] + grid.cells[2] <= 25
    assert report.deployment.sensor_feeds_all_inputs is True
    pi_config = json.loads((out / "pi_config.json").read_text())
    assert pi_config["roi"] == grid.sensor_roi == report.deployment.roi
    assert pi_config["host_tail"] is None
    assert pi_config["gaze_scale_cm"] == manifest.card.output.scale_cm
    assert json.loads((out / "input_format.json").read_text()) == [{"ordinal": 0, "format": "RGB"}]
    assert json.loads((out / "network_intrinsics.json").read_text()) == pi_config["network_intrinsics"]
    assert (out / "run_on_pi.py").read_text() == (REPO / "compilers" / "imx500" / "pi_runner.py").read_text()

    # Evaluated on the build's own test frames: the TFLite reproduces the manifest's figure.
    metrics = report.metrics
    assert metrics.mct.frames == manifest.metrics["int8_tflite"].frames > 0
    assert metrics.tflite.cm == pytest.approx(manifest.metrics["int8_tflite"].cm, rel=1e-5)
    assert math.isfinite(metrics.mct.cm) and metrics.mean_cm_from_float >= 0
    assert len(metrics.float_prediction_std_cm) == 2
    assert report.method == "ptq" and report.toolchain["imx500-converter"]
    assert report.toolchain["tpc"].endswith("v5.0") and report.seconds["imxconv"] > 0
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]


def _as_version(value, version):
    """A version-5 report.json as an earlier version wrote it: the sections' absent fields were
    not written at all, and version 3 kept the MCT model's errors at the top of ``metrics``."""
    value = json.loads(json.dumps(value))
    for section, keys in ((value["agreement"], ("top1_agreement",)),
                          (value["deployment"], ("in_network_conversion", "note")),
                          (value["deployment"]["network_intrinsics"], ("task", "inference_rate", "classes"))):
        for key in keys:
            if section[key] is None:
                del section[key]
    if version == 3:
        metrics = value["metrics"]
        value["metrics"] = {**metrics.pop("mct"), **metrics, "tflite": metrics["tflite"],
                            "float": {**metrics.pop("float_model"),
                                      "prediction_std_cm": metrics.pop("float_prediction_std_cm")}}
    return {**value, "schema_version": version}


def test_reports_of_versions_3_and_4_read_and_a_damaged_section_is_one_line(tiny_imx500, tmp_path):
    """Version 4 held source, calibration, tensors, agreement and deployment as plain objects of
    the same layout: it reads as the typed report, as version 3 does through its metrics' move; a
    damaged field of a section is one line naming it."""
    from compilers.imx500 import read_report
    from zoo.errors import UsageError
    report = _report(tiny_imx500(MODEL))
    value = json.loads((tiny_imx500(MODEL) / "report.json").read_text())
    path = tmp_path / "report.json"
    for version in (3, 4):
        path.write_text(json.dumps(_as_version(value, version)))
        assert read_report(tmp_path) == report, version
    damaged = json.loads(json.dumps(value))
    damaged["deployment"]["face_grid"]["cells"] = "8,6,9,9"
    path.write_text(json.dumps(damaged))
    with pytest.raises(UsageError) as error:
        read_report(tmp_path)
    assert "deployment.face_grid.cells should be a list" in str(error.value) and "\n" not in str(error.value)


def _without_card(source, path):
    """``source`` as a TFLite from outside the zoo: the same graph, no model card."""
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(source.read_bytes()))
    model.metadata = []
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return path


@pytest.fixture(scope="module")
def foreign_tflite(tiny_build, tmp_path_factory):
    """A real int8 TFLite with no model card: a zoo model with its metadata taken out."""
    build = tiny_build(MODEL, "qat")
    return _without_card(build / read_manifest(build).files["int8_tflite"].path,
                         tmp_path_factory.mktemp("foreign") / "copied_out.tflite")


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory):
    """Float TFLite files a photo folder cannot calibrate: one whose height and width are known
    only at run time, one whose input is a 1x1x16 feature vector (a classifier head)."""
    import tensorflow as tf
    folder = tmp_path_factory.mktemp("odd_inputs")
    paths = {}
    for name, shape in (("dynamic", (None, None, 3)), ("features", (1, 1, 16))):
        inputs = tf.keras.Input(shape, batch_size=1, name="x")
        model = tf.keras.Model(inputs, tf.keras.layers.Dense(4)(inputs))
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return paths


def _png_claiming(path, side):
    """A PNG whose header claims ``side`` x ``side`` RGB pixels (and holds none)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def _photo_folders(tmp_path):
    """Folders of photos that must be refused: every JPEG corrupt; a PNG over the pixel limit."""
    corrupt, huge = tmp_path / "corrupt_photos", tmp_path / "huge_photo"
    corrupt.mkdir()
    huge.mkdir()
    for number in range(2):
        (corrupt / f"{number}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    _png_claiming(huge / "huge.png", 100_000)
    return corrupt, huge


def _arrays(tmp_path):
    """An .npz without the model's input name, and an .npy with too few samples."""
    np.savez(tmp_path / "other_name.npz", other=np.zeros((32, 32, 32, 3), np.float32))
    np.save(tmp_path / "four.npy", np.zeros((4, 32, 32, 3), np.float32))
    return tmp_path / "other_name.npz", tmp_path / "four.npy"


def _bad_inputs(tmp_path, foreign, tiny_data, odd_inputs):
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 64)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    photos, arrays = _photo_folders(tmp_path), _arrays(tmp_path)
    corrupt_root = shutil.copytree(tiny_data, tmp_path / "corrupt_root")
    for frame in corrupt_root.glob("*/frames/*.jpg"):
        frame.write_bytes(b"\xff\xd8 not a JPEG")
    lstm = SHARED / "edgetpu" / "reference-models" / "keras_lstm_mnist_ptq.tflite"
    return {
        "missing": ([tmp_path / "missing.tflite"], {}, "no such file"),
        "corrupt": ([corrupt], {}, "not a TFLite model"),
        "no card, no data": ([foreign], {}, "carries no zoo model card"),
        "no images": ([foreign, "--calibration-data", empty], {}, "holds no images"),
        "gazecapture without recipe": ([foreign, "--calibration-data", tiny_data], {}, "--recipe"),
        "unknown recipe": ([foreign, "--calibration-data", tiny_data, "--recipe", "nose"], {},
                           "--recipe nose"),
        "missing keras": ([foreign, "--keras", tmp_path / "none.h5"], {}, "no such Keras model"),
        "bad face grid": ([foreign, "--face-grid", "3,4,30,2"], {}, "--face-grid"),
        "unwritable output": ([foreign, "--calibration-data", tiny_data, "--recipe", "face_grid_grey",
                               "-o", a_file / "out"], {}, "is a file, not a folder"),
        "no java": ([foreign, "--calibration-data", tiny_data, "--recipe", "face_grid_grey"],
                    {"PATH": str(tmp_path / "empty")}, "apt-get install openjdk-17-jre-headless"),
        "unsupported operator": ([lstm, "--calibration-data", SHARED / "images"], {},
                                 "UNIDIRECTIONAL_SEQUENCE_LSTM has no Keras equivalent in the importer "
                                 "(operator 1), and it has weights itself: it is in the middle"),
        "recipe with photos": ([foreign, "--calibration-data", SHARED / "images", "--recipe", "face"], {},
                               "--recipe says how a GazeCapture frame becomes the input"),
        "corrupt photos": ([foreign, "--calibration-data", photos[0]], {}, "not a readable image"),
        "photo over the pixel limit": ([foreign, "--calibration-data", photos[1]], {},
                                       "more than 89,478,485 pixels, the limit"),
        "size known at run time": ([odd_inputs["dynamic"], "--calibration-data", tiny_data, "--recipe",
                                    "face"], {}, "has a size known only at run time"),
        "photos for a feature input": ([odd_inputs["features"], "--calibration-data", SHARED / "images"], {},
                                       "is not an image; give an .npz"),
        "npz without the input": ([foreign, "--calibration-data", arrays[0]], {}, "has no array named face"),
        "too few samples": ([foreign, "--calibration-data", arrays[1]], {}, "needs at least 32 samples"),
        "bad labels": ([foreign, "--calibration-data", SHARED / "images", "--labels", a_file], {},
                       "labels are for a classifier"),
        "corrupt gazecapture root": ([foreign, "--calibration-data", corrupt_root, "--recipe",
                                      "face_grid_grey"], {}, "has no valid training frames"),
    }


BAD_INPUTS = ["missing", "corrupt", "no card, no data", "no images", "gazecapture without recipe",
              "unknown recipe", "missing keras", "bad face grid", "unwritable output", "no java",
              "unsupported operator", "recipe with photos", "corrupt photos", "photo over the pixel limit",
              "size known at run time", "photos for a feature input", "npz without the input",
              "too few samples", "bad labels", "corrupt gazecapture root"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, foreign_tflite, tiny_data,
                                                         odd_inputs, capsys, monkeypatch):
    from compilers import imx500
    args, env, message = _bad_inputs(tmp_path, foreign_tflite, tiny_data, odd_inputs)[case]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [*map(str, args)] + ([] if "-o" in args else ["-o", str(tmp_path / "package")])
    assert imx500.main(args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err and not captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_help_explains_the_command_and_the_pi_step(capsys):
    from compilers import imx500
    with pytest.raises(SystemExit) as exit_status:
        imx500.main(["--help"])
    assert exit_status.value.code == 0
    out = capsys.readouterr().out
    for text in ("--calibration-data", "--recipe", "--method", "--calibration-frames", "--keras",
                 "--face-grid", "--output-bits", "--labels", "imx500-package", "exit status", "model card"):
        assert text in out


def test_imxconv_failure_surfaces_its_own_error_line_and_leaves_no_package(tmp_path):
    from compilers.imx500 import tools
    convert_dir = tmp_path / "imxconv"
    with pytest.raises(tools.CompileError, match=r"imxconv-tf failed \(exit 1\): .*does not exist"):
        tools.run_imxconv(tools.imxconv(), tmp_path / "missing.keras", convert_dir, lambda message: None)
    assert not (convert_dir / "packerOut.zip").exists()
    assert "does not exist" in (tmp_path / "imxconv.log").read_text()


def test_a_hung_tool_is_stopped_at_its_time_limit(tmp_path):
    from compilers.imx500 import tools
    returncode, timed_out = tools.run_logged([sys.executable, "-c", "import time; time.sleep(60)"],
                                             tmp_path / "log", lambda line: None, timeout_s=1)
    assert timed_out and returncode != 0


def test_a_model_too_big_for_the_chip_fails_with_the_memory_figures(tmp_path):
    from compilers.imx500 import tools
    report = tmp_path / "big_MemoryReport.json"
    report.write_text(json.dumps({"Memory Report": {  # imxconv-tf's layout, with --report-size-unit B
        "Runtime Memory Physical Size": "2411520B", "Model Memory Physical Size": "7340032B",
        "Reserved Memory": "1024B", "Memory Usage": "9752576B", "Total Memory Available On Chip": "8388480B",
        "Memory Utilization": "116%", "Fit In Chip": False, "Input Persistent": True}}))
    memory = tools.memory(report)
    assert (memory["usage_bytes"], memory["available_bytes"]) == (9752576, 8388480)
    assert memory["fit_in_chip"] is False
    with pytest.raises(tools.CompileError, match=r"does not fit in the IMX500: it needs 9,752,576 bytes .* "
                                                 r"of 8,388,480 on chip"):
        tools.check_fit(memory, "big")


def _grouped_conv_tflite(path, filters):
    """A float TFLite of one 2-group convolution over 6 channels (3 per group)."""
    import tensorflow as tf
    inputs = tf.keras.Input((8, 8, 6))
    model = tf.keras.Model(inputs, tf.keras.layers.Conv2D(filters, 3, groups=2)(inputs))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_a_grouped_convolution_imxconv_refuses_fails_before_any_toolchain_work(tmp_path, capsys):
    from compilers import imx500
    from compilers.imx500.packaging import _check_grouped_convolutions
    from zoo import tflite
    refused = _grouped_conv_tflite(tmp_path / "refused.tflite", filters=8)  # 4 filters over 3 channels
    taken = _grouped_conv_tflite(tmp_path / "taken.tflite", filters=12)     # 6 over 3: a whole 2
    graph = tflite.read_graph(taken)
    _check_grouped_convolutions(graph, graph.operators)

    assert imx500.main([str(refused), "-o", str(tmp_path / "package")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "2 groups of 3 input channels and 4 filters" in err
    assert "Non-integer depth multiplier (4/3)" in err and "Traceback" not in err
    assert not (tmp_path / "package").exists()


def _renamed_input(source, path, name):
    """``source`` with its input tensor called ``name`` and no signature (so the tensor name is
    the input's name), as TF1 converters left some files."""
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(str(source))
    subgraph = model.subgraphs[0]
    subgraph.tensors[subgraph.inputs[0]].name = name.encode()
    model.signatureDefs = []
    flatbuffer_utils.write_model(model, str(path))
    return path


def test_photos_feed_an_image_input_whatever_its_tensor_is_called(foreign_tflite, tmp_path):
    """A one-image model whose input tensor is called map/TensorArrayStack/TensorArrayGatherV3 is
    calibrated and checked on photos like any other (the child's own path: plan, ImageSource, the
    exact check)."""
    from compilers.imx500.calibration import plan
    from compilers.imx500.data import ImageSource
    from compilers.imx500.exact_check import exact_check
    from compilers.imx500.graph import Spec
    from compilers.imx500.importer import input_names
    from zoo.tflite import read_graph
    path = _renamed_input(foreign_tflite, tmp_path / "odd.tflite", "map/TensorArrayStack/TensorArrayGatherV3")
    graph, names = read_graph(path), input_names(path)
    assert list(names.values()) == ["map_TensorArrayStack_TensorArrayGatherV3"]
    data, recipes, ranges = plan(path, graph, names, None, SHARED / "images", None, 200)
    assert data["kind"] == "images" and recipes is None
    specs = [Spec(name, None, graph.tensors[index].shape[1:]) for index, name in names.items()]
    source = ImageSource(data["path"], specs, specs, ranges, 200)
    check = exact_check(path, source.check_inputs())
    assert check.frames == 32 and check.passed
