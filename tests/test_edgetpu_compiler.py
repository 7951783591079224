"""compilers/edgetpu.py with a compiler: its output parsed from the samples recorded in the shared
README, and the subprocess path driven by the stand-in under tests/fake_edgetpu_compiler (the
adapter in this process; the script itself where Ctrl-C and --help are what is tested)."""
import json
import re
import os
import signal
import subprocess
import sys
import time

import pytest

from compilers import edgetpu
from compilers.edgetpu import log as edgetpu_log
from compilers.edgetpu.report import OperationRow
from edgetpu_support import (FAKE_COMPILER, MOBILENET, README, REFERENCE, REPO, listing, needs_shared,
                             run_adapter, saved_report)
from zoo.errors import UsageError


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
    parsed = edgetpu_log.parse_compiler_output(_readme_blocks()[0])
    assert (parsed["version"], parsed["compile_ms"], parsed["errors"]) == ("16.0.384591198", 542, [])
    assert parsed["models"] == [MAPPED_MODEL_FIGURES]


@needs_shared
def test_parser_reads_the_partial_mapping_counts_and_survives_unknown_values():
    (model,) = edgetpu_log.parse_compiler_output(_partial_stdout())["models"]
    assert model == {**MAPPED_MODEL_FIGURES, "ops_on_tpu": 261, "ops_on_cpu": 6}
    odd = _partial_stdout().replace("4.04MiB", "n/a").replace(": 261", ": many")
    (model,) = edgetpu_log.parse_compiler_output(odd)["models"]
    assert (model["input_bytes"], model["ops_on_tpu"]) == (None, None)


@needs_shared
def test_parser_reads_the_operation_log_and_the_same_table_printed_by_dash_s():
    stdout, _, log = _readme_blocks()
    expected = [OperationRow(op="CONV_2D", count=35, status="Mapped to Edge TPU"),
                OperationRow(op="SOFTMAX", count=1, status="Mapped to Edge TPU")]
    assert edgetpu_log.parse_log(log) == {"version": "16.0.384591198", "operations": expected}
    table = log[log.index("Operator"):]
    assert edgetpu_log.parse_compiler_output(stdout + table)["operations"] == expected


@needs_shared
def test_parser_splits_several_models_compiled_together():
    stdout = _readme_blocks()[0].replace("Model compiled", "Models compiled")
    block = stdout[stdout.index("Input model:"):stdout.index("See the operation log")]
    second = block.replace("quantized", "second")
    parsed = edgetpu_log.parse_compiler_output(stdout.replace(block, block + second))
    assert [m["input_model"] for m in parsed["models"]] == ["quantized_model.tflite", "second_model.tflite"]
    assert parsed["compile_ms"] == 542


FAILURE_TEXTS = ["Invalid model: X.tflite", "Model not quantized", "Internal compiler error. Aborting!",
                 "Compilation failed due to large activation tensors in model.",
                 "Didn't find op for builtin opcode 'CONV_2D' version '6'"]


@needs_shared
@pytest.mark.parametrize("text", FAILURE_TEXTS)
def test_parser_reports_each_recorded_failure(text):
    assert text in README.read_text()
    parsed = edgetpu_log.parse_compiler_output(f"Edge TPU Compiler version 16.0.384591198\n{text}\n")
    assert parsed["errors"] == [text] and parsed["models"] == []


# --- The subprocess path, driven by the stand-in ------------------------------------------------


def _fake(scenario, **extra):
    return {"FAKE_EDGETPU_SCENARIO": scenario, "FAKE_EDGETPU_README": str(README), **extra}


@needs_shared
def test_compile_keeps_the_compiled_model_and_reports_the_compilers_figures(tmp_path):
    result = run_adapter(MOBILENET, "-o", tmp_path / "out", "--compiler", FAKE_COMPILER, env=_fake("mapped"))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert listing(out) == [
        "mobilenet_v1_0.25_128_quant_edgetpu.log", "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
        "report.json"]
    assert (out / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").read_bytes() == \
        (REFERENCE / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").read_bytes()
    report = saved_report(out)
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
    assert not [p for p in tmp_path.iterdir() if p.name != "out"]  # no work folder left


@needs_shared
def test_partial_mapping_counts_and_the_compiled_models_cpu_operators(tmp_path):
    model = REFERENCE / "movenet_single_pose_lightning_ptq.tflite"
    result = run_adapter(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, "--json", env=_fake("partial"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report.pop("kind"), report.pop("schema_version")) == ("zoo.edgetpu_report", 4)
    compiler = report["compiler"]
    assert (compiler["ops_on_tpu"], compiler["ops_on_cpu"]) == (261, 6)
    typed = edgetpu.read_report(tmp_path)
    left_on_cpu = edgetpu_log.op_counts(typed.compiler.compiled_model.cpu_ops)
    assert left_on_cpu == edgetpu_log.op_counts(typed.preflight.cpu_ops)
    assert not any("compiled model" in d for d in report["disagreements"])
    assert saved_report(tmp_path) == report


@needs_shared
def test_a_report_of_versions_2_and_3_reads_with_its_compiler_section_and_a_damaged_one_is_one_line(tmp_path):
    """Versions 2 and 3 held the compiler's run as a plain object of CompilerRun's layout: they read
    as the typed report; a damaged row of its operation table is one line naming the field."""
    model = REFERENCE / "movenet_single_pose_lightning_ptq.tflite"
    result = run_adapter(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, env=_fake("partial"))
    assert result.returncode == 0, result.stderr
    report = edgetpu.read_report(tmp_path)
    assert report.compiler.operations and report.compiler.compiled_model.cpu_ops
    path = tmp_path / "report.json"
    value = json.loads(path.read_text())
    for version in (2, 3):
        path.write_text(json.dumps({**value, "schema_version": version}))
        assert edgetpu.read_report(tmp_path) == report, version
    value["compiler"]["operations"][0]["count"] = "35"
    path.write_text(json.dumps(value))
    with pytest.raises(UsageError) as error:
        edgetpu.read_report(tmp_path)
    assert "compiler.operations[0].count should be an integer" in str(error.value)
    assert "\n" not in str(error.value)


@needs_shared
@pytest.mark.parametrize("scenario, text", [
    ("not-quantized", "Invalid model: mobilenet_v1_0.25_128_quant.tflite; Model not quantized"),
    ("internal", "Internal compiler error. Aborting!"),
    ("large-activations", "Compilation failed due to large activation tensors in model."),
    ("op-version", "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'")])
def test_compiler_failure_exits_1_with_its_message(scenario, text, tmp_path):
    result = run_adapter(MOBILENET, "-o", tmp_path, "--compiler", FAKE_COMPILER, env=_fake(scenario))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == text
    report = saved_report(tmp_path)
    assert report["status"] == "failed" and report["compiler"]["error"] == text
    assert listing(tmp_path) == ["report.json"]


@needs_shared
def test_compiler_timeout_exits_1(tmp_path):
    model = REFERENCE / "split_concat.tflite"
    result = run_adapter(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, "--timeout", "1",
                         env=_fake("hang"))
    assert result.returncode == 1
    assert "timed out after 1.0 s" in result.stderr.splitlines()[-1]


@needs_shared
def test_ctrl_c_stops_the_compiler_and_writes_nothing(tmp_path):
    pid_file = tmp_path / "compiler.pid"
    out = tmp_path / "out"
    env = {**os.environ, **_fake("hang", FAKE_EDGETPU_PIDFILE=str(pid_file))}
    process = subprocess.Popen([sys.executable, str(REPO / "compilers" / "edgetpu.py"), str(MOBILENET),
                                "-o", str(out), "--compiler", str(FAKE_COMPILER)], cwd=REPO, text=True,
                               stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.splitlines()[-1] == "compilers/edgetpu.py: interrupted"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compiler.pid"]


@needs_shared
def test_success_without_a_compiled_model_is_a_failure(tflite_model, tmp_path):
    result = run_adapter(tflite_model("conv"), "-o", tmp_path, "--compiler", FAKE_COMPILER,
                         env=_fake("mapped"))
    assert result.returncode == 1
    assert "wrote no conv_int8_int8_edgetpu.tflite" in result.stderr


@needs_shared
def test_a_rerun_replaces_only_the_files_this_tool_wrote(tmp_path):
    out = tmp_path / "out"
    compiled = run_adapter(MOBILENET, "-o", out, "--compiler", FAKE_COMPILER, env=_fake("mapped"))
    assert compiled.returncode == 0
    (out / "notes.txt").write_text("mine")
    result = run_adapter(MOBILENET, "-o", out, env={"PATH": str(tmp_path)})
    assert result.returncode == 3
    last = result.stderr.splitlines()[-1]
    assert "edgetpu_compiler not found" in last and "apt" in last
    # The earlier run's compiled files would contradict the new report: they are gone; the user's stays.
    assert listing(out) == ["notes.txt", "report.json"]
    assert saved_report(out)["compiler"] is None
    assert edgetpu.compiled_model(out) is None
