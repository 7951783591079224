"""compilers/ethosu.py (Arm's Vela for the Ethos-U): the report's figures against Vela's own
summary for the same configuration, the zoo's three int8 models, every public reference model
(and their Edge TPU twins, refused), bad input, Vela failing, and the name: Vela's top-level
package `ethosu` beside this project's `compilers.ethosu`."""
import csv
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHARED, read_manifest
from compilers import ethosu
from compilers.ethosu import config, run as vela_run
from compilers.report import ESTIMATED, NO_ESTIMATE
from zoo import artifacts, tflite
from zoo.errors import UsageError

REFERENCE = SHARED / "edgetpu" / "reference-models"
# Without ../shared the reference tests skip, except under CI, where they must fail.
needs_shared = pytest.mark.skipif(not REFERENCE.is_dir() and os.environ.get("CI") != "true",
                                  reason=f"{REFERENCE} (public reference models) is absent")
CONFIGURATIONS = [(None, None, None), ("ethos-u65-256", "Ethos_U65_High_End", "Dedicated_Sram_256KB")]


def int8_model(path, op="FULLY_CONNECTED", shape=(1, 16), signature=None, units=4):
    """A one-operator int8 TFLite written with the schema (no TensorFlow): ``op`` (a builtin name,
    else a custom operator of that name) from an int8 input of ``shape`` to ``units`` outputs."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    def tensor(name, dims, buffer=0, scale=0.1):
        made = schema.TensorT()
        made.name, made.type, made.shape = name.encode(), schema.TensorType.INT8, list(dims)
        made.buffer = buffer
        made.quantization = schema.QuantizationParametersT()
        made.quantization.scale, made.quantization.zeroPoint = [scale], [0]
        return made

    custom = not hasattr(schema.BuiltinOperator, op)
    code = schema.OperatorCodeT()
    code.version = 1
    builtin = getattr(schema.BuiltinOperator, "CUSTOM" if custom else op)
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.customCode = op.encode() if custom else None
    weights = schema.BufferT()
    weights.data = np.ones((units, shape[-1]), np.int8).view(np.uint8).ravel()
    tensors = [tensor("x", shape), tensor("w", (units, shape[-1]), buffer=1, scale=0.01),
               tensor("y", (shape[0], units), scale=0.2)]
    tensors[0].shapeSignature = list(signature) if signature else None
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0, 1, -1], [2]
    if not custom:
        operator.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        operator.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    graph.tensors, graph.operators, graph.inputs, graph.outputs = tensors, [operator], [0], [2]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [schema.BufferT(), weights]
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return path


def int8_file(tiny_build, name):
    build = tiny_build(name, "qat")
    return build / read_manifest(build).files["int8_tflite"].path


def vela_itself(model, folder, setup):
    """Vela's own command line on ``model`` (not through the adapter): its summary CSV row,
    per-layer CSV lines and what it printed."""
    folder.mkdir()
    arguments = ["--accelerator-config", setup.accelerator, "--config", "Arm/vela.ini", "--system-config",
                 setup.system_config, "--memory-mode", setup.memory_mode, "--verbose-performance"]
    result = subprocess.run([sys.executable, "-m", "ethosu.vela", str(model), "--output-dir", str(folder),
                             *arguments], capture_output=True, text=True, cwd=folder, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = next(csv.DictReader((folder / f"{model.stem}_summary_{setup.system_config}.csv").open()))
    per_layer = (folder / f"{model.stem}_per-layer.csv").read_text().splitlines()[1:]
    return summary, per_layer, result.stdout


# --- Vela's figures ------------------------------------------------------------------------------

@pytest.mark.parametrize("accelerator,system_config,memory_mode", CONFIGURATIONS)
def test_the_report_holds_vela_own_summary_for_the_same_configuration(
        tiny_build, tmp_path, accelerator, system_config, memory_mode):
    model = int8_file(tiny_build, "tinytracker")
    report = ethosu.compile(model, tmp_path / "out", accelerator=accelerator, system_config=system_config,
                            memory_mode=memory_mode)
    setup = report.configuration
    summary, per_layer, printed = vela_itself(model, tmp_path / "vela", setup)
    assert (summary["accelerator_configuration"], summary["system_config"], summary["memory_mode"]) == \
        (report.summary.accelerator, setup.system_config, setup.memory_mode)
    assert report.summary.inference_time_s == float(summary["inference_time"])
    assert report.summary.cycles["total"] == int(summary["cycles_total"])
    assert report.summary.cycles["npu"] == int(summary["cycles_npu"])
    assert setup.core_clock_hz == float(summary["core_clock"])
    assert report.headline.performance.kind == ESTIMATED
    assert report.headline.performance.latency_ms == round(float(summary["inference_time"]) * 1000, 4)
    assert report.headline.performance.fps == round(float(summary["inferences_per_second"]), 1)
    for area in ("sram", "dram", "on_chip_flash", "off_chip_flash"):
        used = round(float(summary[f"{area}_memory_used"]) * 1024)
        assert report.summary.memory_used_bytes[area] == used
        assert report.headline.memory.get(f"{area}_bytes", 0) == used
    assert f"{int(summary['cycles_total']):,} cycles" in report.headline.performance.basis
    for said in (report.vela_version, setup.accelerator, setup.system_config, setup.memory_mode, "MHz"):
        assert said in report.headline.performance.basis
    # Vela's own count of CPU operators; the zoo's float output leaves its DEQUANTIZE there
    assert len(report.cpu_operators) == int(re.search(r"CPU operators = (\d+)", printed)[1])
    assert [(row.op, row.reason) for row in report.cpu_operators] == [("DEQUANTIZE", "Unsupported opType")]
    assert sum(layer.repeat for layer in report.layers) == len(per_layer)
    assert report.summary.original_weights_bytes == int(summary["total_original_weights"])
    if setup.arena_limit_bytes is not None:  # the memory mode's limit, and Vela kept to it
        assert report.headline.fits is True
        assert report.summary.memory_used_bytes["sram"] <= setup.arena_limit_bytes


@pytest.mark.parametrize("name", ["tinytracker", "tinytracker_s", "itracker"])
def test_each_zoo_model_compiles_with_a_complete_report(tiny_build, tmp_path, capsys, name):
    model = int8_file(tiny_build, name)
    assert ethosu.main([str(model), "-o", str(tmp_path / "out"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = ethosu.read_report(tmp_path / "out")
    assert printed == artifacts.to_json(report)
    graph = tflite.read_graph(model)
    assert report.ops_total == report.headline.ops_total == len(graph.operators)
    assert report.ops_on_npu == sum(report.npu_operators.values())
    assert report.ops_on_npu == report.ops_total - len(report.cpu_operators)
    assert all(row.index is not None and graph.operators[row.index].name == row.op
               for row in report.cpu_operators)
    compiled = tflite.read_graph(ethosu.compiled_model(tmp_path / "out"))
    assert sum(op.name == "ethos-u" for op in compiled.operators) == report.npu_subgraphs >= 1
    assert report.headline.performance.latency_ms > 0 and report.warnings == []
    assert {path.name for path in (tmp_path / "out").iterdir()} == {
        artifacts.REPORT, artifacts.MARKER, *report.files.values()}


def test_a_build_default_output_is_build_ethosu_and_the_summary_says_what_runs_where(
        tiny_build, tmp_path, capsys):
    build = shutil.copytree(tiny_build("tinytracker_s", "qat"), tmp_path / "build")
    model = build / read_manifest(build).files["int8_tflite"].path
    assert ethosu.main([str(model)]) == 0
    out = capsys.readouterr().out
    report = ethosu.read_report(build / "ethosu")
    assert f"{report.ops_on_npu} of {report.ops_total} operators on the NPU" in out
    assert "CPU: DEQUANTIZE" in out and "estimated: Vela" in out and str(build / "ethosu") in out
    assert ethosu.main([str(model), "--accelerator", "ethos-u85-256"]) == 0  # replaces its own output
    assert ethosu.read_report(build / "ethosu").configuration.accelerator == "ethos-u85-256"


def test_nothing_on_the_npu_is_no_estimate(tmp_path):
    report = ethosu.compile(int8_model(tmp_path / "custom.tflite", op="MyOp"), tmp_path / "out")
    assert (report.ops_on_npu, report.npu_subgraphs, report.headline.memory) == (0, 0, {})
    assert report.cpu_operators[0].op == "MyOp" and report.cpu_operators[0].reason == "Unsupported opType"
    assert report.headline.performance.kind == NO_ESTIMATE and report.summary.inferences_per_second is None


# --- public models ----------------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("model", sorted(p.name for p in REFERENCE.glob("*.tflite")) or ["missing"])
def test_every_reference_model_gives_a_report_or_one_line(tmp_path, capsys, model):
    path = REFERENCE / model
    status = ethosu.main([str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    if path.stem.endswith("_edgetpu"):  # compiled Edge TPU files: refused, the source named
        assert status == 2 and len(err) == 1 and not (tmp_path / "out").exists()
        assert "compiled for the Edge TPU" in err[0]
        assert f"{path.stem.removesuffix('_edgetpu')}.tflite beside it" in err[0]
        return
    assert status == 0, err
    report = ethosu.read_report(tmp_path / "out")
    assert report.ops_total == len(tflite.read_graph(path).operators) and report.warnings == []
    assert all(row.index is not None and row.reason != "Vela printed no reason"
               for row in report.cpu_operators)
    assert (tmp_path / "out" / "report.json").stat().st_size < 2_000_000  # runs of equal rows kept once


# --- bad input and Vela failing ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """Inputs the adapter must refuse, by name."""
    from hostile import tiny_tflite
    root = tmp_path_factory.mktemp("ethosu_bad")
    (root / "text.tflite").write_text("not a model at all, but long enough")
    return {"root": root, "text": root / "text.tflite", "float": tiny_tflite(root / "float.tflite"),
            "dynamic": int8_model(root / "dynamic.tflite", shape=(1, 16), signature=(1, -1)),
            "int8": int8_model(root / "fc.tflite")}


@pytest.mark.parametrize("argv,message", [
    ("{text}", "not a TFLite model"),
    ("{root}/missing.tflite", "no such file"),
    ("{float}", "is a float model"),
    ("{dynamic}", "has a dynamic shape [1, -1]"),
    ("{int8} --accelerator ethos-u99-1", "--accelerator ethos-u99-1: Vela 5.2.0 does not know it; choose"),
    ("{int8} --system-config Nope", "--system-config Nope: Vela 5.2.0 does not know it"),
    ("{int8} --memory-mode Nope", "--memory-mode Nope: Vela 5.2.0 does not know it"),
    ("{int8} --timeout 0", "give a number of seconds above 0"),
    ("", "required: model"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(bad, tmp_path, capsys, argv, message):
    before = sorted(bad["root"].rglob("*"))
    status = ethosu.main([arg.format(**bad) for arg in argv.split()] + ["-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists() and sorted(bad["root"].rglob("*")) == before
    assert list(tmp_path.iterdir()) == []  # no staging folder left either


def test_an_already_compiled_model_is_refused(bad, tmp_path, capsys):
    ethosu.compile(bad["int8"], tmp_path / "out")
    compiled = ethosu.compiled_model(tmp_path / "out")
    assert ethosu.main([str(compiled), "-o", str(tmp_path / "again")]) == 2
    assert "already compiled by Vela" in capsys.readouterr().err and not (tmp_path / "again").exists()


def test_vela_failing_on_a_model_is_one_line_exit_1_and_nothing_written(tmp_path, capsys):
    # A fully-connected layer too wide for the NPU passes Vela's operator checks, then its core gives up.
    model = int8_model(tmp_path / "wide.tflite", shape=(1, 1 << 18), units=2)
    assert ethosu.main([str(model), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "failed: Vela 5.2.0 failed on wide.tflite" in err[-1] and "could not run on NPU" in err[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.tflite"]


def test_vela_timing_out_is_exit_1(bad, tmp_path, capsys):
    assert ethosu.main([str(bad["int8"]), "-o", str(tmp_path / "out"), "--timeout", "0.01"]) == 1
    assert "did not finish on fc.tflite within 0.01 s" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_vela_own_error_about_the_configuration_is_exit_2(bad, tmp_path):
    """What Vela prints when one of its own error classes stops it, from a real run of Vela."""
    result = subprocess.run([sys.executable, "-m", "ethosu.vela", str(bad["int8"]), "--output-dir",
                             str(tmp_path), "--system-config", "Nope"], capture_output=True, text=True,
                            timeout=120)
    error = vela_run._failure(bad["int8"], config.resolve(), result.stdout + result.stderr, result.returncode)
    assert isinstance(error, UsageError)
    assert "cannot compile fc.tflite for ethos-u55-128: Incorrect argument to CLI option --system-config" \
        in str(error)


# --- the name ethosu ---------------------------------------------------------------------------------

def test_vela_is_its_own_package_beside_compilers_ethosu():
    import compilers.ethosu
    import ethosu.vela
    assert pathlib.Path(compilers.ethosu.__file__).parent == REPO / "compilers" / "ethosu"
    assert REPO / "compilers" not in pathlib.Path(ethosu.vela.__file__).parents  # the wheel's
    assert all(pathlib.Path(folder) != REPO / "compilers" / "ethosu" for folder in ethosu.__path__)
    assert "ethos-u55-128" in config.accelerators()


def test_the_script_runs_from_inside_compilers(bad, tmp_path):
    # There a plain `import ethosu` would find compilers/ethosu/; the script puts the repository first.
    result = subprocess.run([sys.executable, "ethosu.py", str(bad["int8"]), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=REPO / "compilers", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 of 1 operators on the NPU" in result.stdout


def test_the_vela_child_ignores_pythonpath(bad, tmp_path, monkeypatch):
    # PYTHONPATH=compilers/ would make `ethosu` this project's package in a Python that reads it.
    monkeypatch.setenv("PYTHONPATH", str(REPO / "compilers"))
    report = ethosu.compile(bad["int8"], tmp_path / "out")
    assert report.ops_on_npu == 1
