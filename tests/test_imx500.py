"""compilers/imx500.py (issue: IMX500 package): one real conversion of a tiny `zoo build` with MCT
and imxconv-tf (the session's shared tiny_imx500 conversion), and the bad-input and fault paths,
which fail before any toolchain work (or, for imxconv-tf, within seconds)."""
import hashlib
import json
import math
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, read_manifest

SCRIPT = REPO / "compilers" / "imx500.py"
# The conversion the benchmark tests use too, so the suite pays for one: TinyTrackerS has the
# face-grid channels, so it exercises baking them into the package.
MODEL = "tinytracker_s"
PACKER_MEMBERS = {"dnnParams.xml", "dnnParams.xsd", "l2staticData.bin", "manifest.json", "verTable.txt",
                  "sdpsA.bin", "sdpsC.bin", "cfgA.bin", "cfgC.bin"}


def run_imx500(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=900, cwd=REPO, env={**os.environ, **(env or {})})


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_build_becomes_an_imx500_package_whose_report_agrees_with_the_converter(tiny_imx500, tiny_build):
    out = tiny_imx500(MODEL)
    build = tiny_build(MODEL, "qat")
    manifest = read_manifest(build)
    report = json.loads((out / "report.json").read_text())

    with zipfile.ZipFile(out / "packerOut.zip") as packed:
        assert set(packed.namelist()) >= PACKER_MEMBERS
        assert packed.read("dnnParams.xml") == (out / "dnnParams.xml").read_bytes()
    for kind, record in report["files"].items():
        path = out / os.path.basename(record["path"])
        assert record["path"] == str(path) and path.stat().st_size == record["bytes"], kind
        assert _sha256(path) == record["sha256"], kind

    # The memory figures are the converter's own (its report file, in bytes).
    figures = json.loads((out / f"{MODEL}_imx500_MemoryReport.json").read_text())["Memory Report"]
    memory = report["memory"]
    assert memory["usage_bytes"] == int(figures["Memory Usage"].removesuffix("B")) > 0
    assert memory["available_bytes"] == int(figures["Total Memory Available On Chip"].removesuffix("B"))
    assert memory["fit_in_chip"] is figures["Fit In Chip"] is True
    assert memory["utilization"] == pytest.approx(memory["usage_bytes"] / memory["available_bytes"], abs=1e-4)

    # The sensor feeds the grey face alone: the face-grid channels are inside the package.
    (trained_input,) = manifest["input"]
    (sensor_input,) = report["inputs"]
    assert sensor_input["shape"] == trained_input["shape"][:2] + [1] and trained_input["shape"][2] == 3
    assert sensor_input["bits"] == 8 and sensor_input["scale"] > 0
    assert [o["shape"] for o in report["outputs"]] == [[2]]
    grid = report["deployment"]["face_grid"]
    assert grid["check_max_abs_diff_cm"] == 0.0
    assert len(grid["cells"]) == 4 and grid["cells"][0] + grid["cells"][2] <= 25
    assert report["deployment"]["sensor_feeds_all_inputs"] is True
    pi_script = (out / "run_on_pi.py").read_text()
    compile(pi_script, "run_on_pi.py", "exec")
    assert f"ROI = {tuple(grid['sensor_roi'])}" in pi_script and "network.rpk" in pi_script

    # Evaluated on the same test frames as the build: the float model reproduces the manifest.
    metrics = report["metrics"]
    assert metrics["frames"] == manifest["metrics"]["float_h5"]["frames"] > 0
    assert metrics["float"]["cm"] == pytest.approx(manifest["metrics"]["float_h5"]["cm"], rel=1e-4)
    assert math.isfinite(metrics["cm"]) and metrics["mean_cm_from_float"] >= 0
    assert len(metrics["float"]["prediction_std_cm"]) == 2
    assert metrics["manifest_int8_tflite"] == manifest["metrics"]["int8_tflite"]
    assert report["method"] == "ptq" and report["toolchain"]["imx500-converter"]
    assert report["seconds"]["imxconv"] > 0
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def foreign_tflite(tiny_build, tmp_path_factory):
    """A real int8 TFLite with no manifest.json beside it: a zoo model copied out of its build."""
    build = tiny_build(MODEL, "qat")
    path = tmp_path_factory.mktemp("foreign") / "copied_out.tflite"
    path.write_bytes((build / read_manifest(build)["files"]["int8_tflite"]["path"]).read_bytes())
    return path


def _bad_inputs(tmp_path, foreign):
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 64)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    return {
        "missing": ([tmp_path / "missing.tflite"], {}, "no such file"),
        "corrupt": ([corrupt], {}, "not a TFLite model"),
        "not from the zoo": ([foreign], {}, "name the float Keras model with --keras"),
        "missing keras": ([foreign, "--keras", tmp_path / "none.h5"], {}, "no such Keras model"),
        "bad face grid": ([foreign, "--keras", a_file, "--face-grid", "3,4,30,2"], {},
                          "--face-grid"),
        "unwritable output": ([foreign, "--keras", a_file, "-o", a_file / "out"], {},
                              "cannot write the output folder"),
        "no java": ([foreign, "--keras", a_file], {"PATH": str(tmp_path / "empty")},
                    "apt-get install openjdk-17-jre-headless"),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "not from the zoo", "missing keras", "bad face grid",
                                  "unwritable output", "no java"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, foreign_tflite):
    args, env, message = _bad_inputs(tmp_path, foreign_tflite)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_imx500(*args, "-o", tmp_path / "package", env=env) if "-o" not in args else \
        run_imx500(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and not result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_help_explains_the_command_and_the_pi_step():
    result = run_imx500("--help")
    assert result.returncode == 0
    for text in ("--method", "--calibration-frames", "--keras", "--face-grid", "imx500-package",
                 "exit status"):
        assert text in result.stdout


def test_imxconv_failure_surfaces_its_own_error_line_and_leaves_no_package(tmp_path):
    from compilers import imx500
    convert_dir = tmp_path / "imxconv"
    with pytest.raises(imx500.CompileError, match=r"imxconv-tf failed \(exit 1\): .*does not exist"):
        imx500._run_imxconv(imx500._imxconv(), tmp_path / "missing.keras", convert_dir, lambda message: None)
    assert not (convert_dir / "packerOut.zip").exists()
    assert "does not exist" in (tmp_path / "imxconv.log").read_text()


def test_a_model_too_big_for_the_chip_fails_with_the_memory_figures(tmp_path):
    from compilers import imx500
    report = tmp_path / "big_MemoryReport.json"
    report.write_text(json.dumps({"Memory Report": {  # imxconv-tf's layout, with --report-size-unit B
        "Runtime Memory Physical Size": "2411520B", "Model Memory Physical Size": "7340032B",
        "Reserved Memory": "1024B", "Memory Usage": "9752576B", "Total Memory Available On Chip": "8388480B",
        "Memory Utilization": "116%", "Fit In Chip": False, "Input Persistent": True}}))
    memory = imx500._memory(report)
    assert (memory["usage_bytes"], memory["available_bytes"]) == (9752576, 8388480)
    assert memory["fit_in_chip"] is False
    with pytest.raises(imx500.CompileError, match=r"does not fit in the IMX500: it needs 9,752,576 bytes .* "
                                                  r"of 8,388,480 on chip"):
        imx500._check_fit(memory, "big")


def _grouped_conv_tflite(path, filters):
    """A float TFLite of one 2-group convolution over 6 channels (3 per group)."""
    import tensorflow as tf
    inputs = tf.keras.Input((8, 8, 6))
    model = tf.keras.Model(inputs, tf.keras.layers.Conv2D(filters, 3, groups=2)(inputs))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_a_grouped_convolution_imxconv_refuses_fails_before_any_toolchain_work(tmp_path):
    from compilers import imx500
    from zoo import tflite
    refused = _grouped_conv_tflite(tmp_path / "refused.tflite", filters=8)  # 4 filters over 3 channels
    taken = _grouped_conv_tflite(tmp_path / "taken.tflite", filters=12)     # 6 over 3: a whole 2
    imx500._check_grouped_convolutions(tflite.read_graph(taken))

    a_file = tmp_path / "a_file"
    a_file.write_text("never loaded: the check comes first")
    result = run_imx500(refused, "--keras", a_file, "-o", tmp_path / "package")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "2 groups of 3 input channels and 4 filters" in result.stderr
    assert "Non-integer depth multiplier (4/3)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "package").exists()
