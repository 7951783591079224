"""The microcontroller target (compilers/mcu/) end to end, in this process: the zoo's three int8
models and every public reference model, the arena measured by TFLite Micro (and tight), the
resolver against the model's own operator set, the C array against the file, the board table and
the TFLite Micro vs LiteRT figure in the report; bad input as one line with nothing written."""
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import types

import numpy as np
import pytest

from conftest import SHARED, read_manifest

REFERENCE = SHARED / "edgetpu" / "reference-models"
IMAGES = SHARED / "images"
TIGHT_BYTES = 64  # an arena this much under the measured one must fail: the figure is measured, not padded


def _shared():
    """../shared, or a failure under CI (a skip elsewhere)."""
    if not REFERENCE.is_dir() or not IMAGES.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED} is missing")
        pytest.skip(f"{SHARED} is absent")


def _tree(folder: pathlib.Path):
    return {str(p.relative_to(folder)): p.is_dir() or hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def _run(argv, capsys):
    from compilers import mcu
    status = mcu.main([str(a) for a in argv])
    return status, capsys.readouterr()


def _methods(header: str):
    return re.findall(r"resolver\.(Add\w+)\(\)", header)


def _array_bytes(source: str) -> bytes:
    body = source[source.index("{") + 1:source.rindex("}")]
    return bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2})", body))


def _check_build(model: pathlib.Path, out: pathlib.Path):
    """What every report must hold, checked against the file itself and TFLite Micro."""
    from compilers import mcu
    from compilers.mcu import ops, tflm
    from zoo import tflite
    report = mcu.read_report(out)
    data = model.read_bytes()
    # the resolver registers exactly the model's operators (as the TFLite reader lists them), once each
    header = (out / "model_ops.h").read_text()
    by_method = {method: name for name, method in ops.BUILTIN_METHODS.items()}
    registered = [by_method[method] for method in _methods(header)]
    assert sorted(registered) == sorted(tflite.describe(model)["ops"])
    assert "MicroMutableOpResolver<kModelOpCount>" in header
    assert f"kModelOpCount = {len(registered)};" in header and report.operator_count == len(registered)
    assert f"kTensorArenaSize = {report.arena.bytes};" in header
    # the C array is the file, aligned, with its length
    source = (out / "model_data.cc").read_text()
    assert _array_bytes(source) == data and "alignas(16)" in source
    assert f"g_model_data_len = {len(data)};" in source and report.flash_bytes == len(data)
    # the arena is TFLite Micro's: enough to allocate, and a little less is not
    tflm.interpreter(data, report.arena.bytes)
    with pytest.raises(tflm.TflmError):
        tflm.interpreter(data, report.arena.bytes - TIGHT_BYTES)
    assert report.arena.head_bytes + report.arena.tail_bytes == report.arena.bytes and report.arena.verified
    # every board, cited, and the figure that compares TFLite Micro with LiteRT
    assert [fit.board for fit in report.boards] == list(mcu.boards.BOARDS)
    assert all(any("http" in c for c in fit.citations) for fit in report.boards)
    assert set(report.agreement.max_steps) == {"litert_reference", "litert_default"}
    assert report.agreement.frames > 0 and report.headline.target == "mcu"
    assert report.headline.memory["arena_bytes"] == report.arena.bytes
    return report


@pytest.mark.parametrize("name", ["tinytracker", "tinytracker_s", "itracker"])
def test_the_zoos_int8_models_build_with_a_measured_arena(name, tiny_build, tmp_path, capsys):
    build = tiny_build(name, "qat")
    model = build / read_manifest(build).files["int8_tflite"].path
    status, captured = _run([model, "-o", tmp_path / "mcu", "--board", "nano33_ble_sense"], capsys)
    assert status == 0, captured.err
    report = _check_build(model, tmp_path / "mcu")
    assert "GazeCapture" in report.agreement.data and report.board == "nano33_ble_sense"
    assert report.headline.fits == next(f.fits for f in report.boards if f.board == "nano33_ble_sense")
    assert "TFLite Micro vs LiteRT" in captured.out and "MicroMutableOpResolver" in captured.out


def test_the_c_array_compiles_to_the_files_bytes(tiny_build, tmp_path, capsys):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ to compile the generated model_data.cc")
    build = tiny_build("tinytracker_s", "qat")
    model = build / read_manifest(build).files["int8_tflite"].path
    assert _run([model, "-o", tmp_path / "mcu"], capsys)[0] == 0
    (tmp_path / "dump.cc").write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n'
        "int main() {\n  if (reinterpret_cast<std::uintptr_t>(g_model_data) % 16) return 3;\n"
        "  return std::fwrite(g_model_data, 1, g_model_data_len, stdout) == g_model_data_len ? 0 : 4;\n}\n")
    subprocess.run([compiler, "-std=c++17", "-I", tmp_path / "mcu", tmp_path / "mcu" / "model_data.cc",
                    tmp_path / "dump.cc", "-o", tmp_path / "dump"], check=True, timeout=300)
    dumped = subprocess.run([tmp_path / "dump"], capture_output=True, check=True, timeout=60).stdout
    assert dumped == model.read_bytes()


def _reference_models():
    return sorted(path.name for path in REFERENCE.glob("*.tflite")) if REFERENCE.is_dir() else ["(none)"]


# The one line each public model that TFLite Micro cannot run ends with: the operator and its index.
REFUSALS = {"_edgetpu.tflite": "is the custom operator edgetpu-custom-op",
            "posenet_mobilenet_v1_075_353_481_16_quant_decoder.tflite": "operator 37 is the custom operator "
                                                                        "PosenetDecoderOp",
            "deeplabv3_mnv2_dm05_pascal_quant.tflite": "operator 0 (CONV_2D) fails to prepare",
            "mobilenet_v1_0.25_128_quant.tflite": "operator 0 (CONV_2D) fails to prepare",
            "movenet_single_pose_lightning_ptq.tflite": "operator 0 (CAST) fails to invoke",
            "split_concat.tflite": "operator 0 (CONCATENATION) fails to prepare"}


@pytest.mark.parametrize("name", _reference_models())
def test_every_public_reference_model_gives_a_report_or_one_line(name, tmp_path, capsys):
    _shared()
    model = REFERENCE / name
    status, captured = _run([model, "-o", tmp_path / "mcu", "--calibration-data", IMAGES], capsys)
    refusal = next((line for suffix, line in REFUSALS.items() if name.endswith(suffix)), None)
    if refusal is None:
        assert status == 0, captured.err
        report = _check_build(model, tmp_path / "mcu")
        assert "photos" in report.agreement.data
        return
    assert status == 2 and refusal in captured.err and "Traceback" not in captured.err
    assert captured.err.strip().count("\n") == 0 and not (tmp_path / "mcu").exists()


def _bad_inputs(tmp_path, lstm):
    from hostile import tiny_tflite
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    (tmp_path / "empty").mkdir()
    users = tmp_path / "users"
    users.mkdir()
    (users / "mine.txt").write_text("keep")
    np.savez(tmp_path / "wrong.npz", other=np.zeros((1, 3)))
    return {
        "missing": ([tmp_path / "missing.tflite"], "no such file"),
        "not tflite": ([text], "not a TFLite model"),
        "float": ([tiny_tflite(tmp_path / "float.tflite")], "is a float model"),
        "unknown board": ([lstm, "--board", "uno"], "invalid choice: 'uno'"),
        "no card, no data": ([lstm], "carries no zoo model card"),
        "no photos": ([lstm, "--calibration-data", tmp_path / "empty"], "holds no images"),
        "wrong arrays": ([lstm, "--calibration-data", tmp_path / "wrong.npz"], "has no array"),
        "not ours": ([lstm, "--calibration-data", IMAGES, "-o", users], "not written by this project"),
    }


@pytest.mark.parametrize("case", ["missing", "not tflite", "float", "unknown board", "no card, no data",
                                  "no photos", "wrong arrays", "not ours"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    _shared()
    lstm = tmp_path / "lstm.tflite"
    shutil.copy(REFERENCE / "keras_lstm_mnist_ptq.tflite", lstm)
    argv, message = _bad_inputs(tmp_path, lstm)[case]
    argv = argv + ([] if "-o" in argv else ["-o", tmp_path / "out"])
    before = _tree(tmp_path)
    status, captured = _run(argv, capsys)
    assert status == 2 and message in captured.err, captured.err
    assert captured.err.strip().count("\n") == 0 and "Traceback" not in captured.err
    assert _tree(tmp_path) == before


def test_published_latency_only_for_the_measured_architecture_board_and_size():
    from compilers.mcu import performance

    def card(model, size):
        return types.SimpleNamespace(model=model, inputs=[types.SimpleNamespace(shape=[size, size, 3])])
    published = performance.estimate(card("tinytracker_s", 96), "spresense")
    assert published.kind == "published" and published.fps == 3.0 and "2308.12313" in published.citations[0]
    assert performance.estimate(card("tinytracker_s", 32), "spresense").kind == "none"
    assert performance.estimate(card("tinytracker_s", 96), "esp32s3").kind == "none"
    assert performance.estimate(card("tinytracker", 112), "spresense").kind == "none"
    assert performance.estimate(None, "spresense").latency_ms is None


def test_the_model_counts_in_ram_only_where_the_board_keeps_it_there():
    from compilers.mcu import boards
    spresense, nano = boards.BOARDS["spresense"], boards.BOARDS["nano33_ble_sense"]
    assert boards.fit(spresense, 1000, 500).ram_needed_bytes == 1500
    assert boards.fit(nano, 1000, 500).ram_needed_bytes == 1000
    assert not boards.fit(nano, nano.ram_bytes + 1, 10).fits
    assert not boards.fit(nano, 10, nano.flash_bytes + 1).fits
    over = boards.fit(spresense, spresense.ram_bytes, 1)
    assert over.fits_at_max and not over.fits


def test_every_resolver_method_names_a_kernel_of_the_installed_tflite_micro():
    from compilers.mcu import ops
    from tflite_micro.python.tflite_micro import _runtime
    library = pathlib.Path(_runtime.__file__).read_bytes()
    operators = ([(name, False) for name in ops.BUILTIN_METHODS] +
                 [(name, True) for name in ops.CUSTOM_METHODS])
    missing = [name for name, custom in operators
               if ops.register_function(name, custom).encode() + b"E" not in library]
    assert not missing
    methods = list(ops.BUILTIN_METHODS.values()) + [method for method, _ in ops.CUSTOM_METHODS.values()]
    assert len(set(methods)) == len(methods) and all(m.startswith("Add") for m in methods)
