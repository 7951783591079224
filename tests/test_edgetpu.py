"""compilers/edgetpu.py (the Coral Edge TPU compiler adapter): the pre-flight against the reference
pairs Google's compiler produced, every rule of its table on a small int8 TFLite that meets it and
one that breaks it, the compiler's output parsed from the recorded samples, the subprocess path
driven by the stand-in under tests/fake_edgetpu_compiler, bad input, output handling, and the
runtime helper. Each tiny model is converted once per module."""
import collections
import dataclasses
import ctypes
import errno
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from compilers import edgetpu
from compilers.edgetpu import log as edgetpu_log, rules as edgetpu_rules
from compilers.edgetpu.runtime import EDGETPU_LIBRARY
from fake_edgetpu_compiler import edgetpu_cases as cases
from zoo import tflite
from zoo.errors import UsageError

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
README = SHARED / "edgetpu" / "README.md"
REFERENCE = SHARED / "edgetpu" / "reference-models"
FAKE_COMPILER = REPO / "tests" / "fake_edgetpu_compiler" / "edgetpu_compiler"
needs_shared = pytest.mark.skipif(not README.is_file(),
                                  reason=f"{SHARED} (the shared Edge TPU reference material) is absent")
MOBILENET = REFERENCE / "mobilenet_v1_0.25_128_quant.tflite"


# --- Models: real int8 conversions of the cases in tests/fake_edgetpu_compiler/edgetpu_cases.py,
# each made once per module ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory):
    """``tflite_model(name, quantize=True, io_type="int8")`` -> path of a real conversion of case
    or zoo model ``name`` (an edited case: of its base case, then edited)."""
    folder = tmp_path_factory.mktemp("edgetpu_models")
    made = {}

    def convert(name, quantize=True, io_type="int8"):
        key = (name, quantize, io_type)
        if key not in made:
            path = folder / f"{name}_{'int8' if quantize else 'float'}_{io_type}.tflite"
            edited = cases.edited(name)
            if edited:
                data = cases.edit(convert(edited[0]).read_bytes(), edited[1])
            else:
                data = cases.convert(cases.keras_model(name), quantize, cases.case_io_type(name, io_type))
            path.write_bytes(data)
            made[key] = path
        return made[key]
    return convert


def _run(*args, env=None):
    """The command line as a user runs it."""
    return subprocess.run([sys.executable, str(REPO / "compilers" / "edgetpu.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **(env or {})})


# --- The rule table, rule by rule ----------------------------------------------------------------


def _judged(report, op_name):
    """The pre-flight's row of the first ``op_name`` (or of the first CPU operator)."""
    rows = report.preflight["operators"]
    return next(row for row in rows if (row["op"] == op_name if op_name else not row["on_tpu"]))


def test_every_rule_has_a_case_that_meets_it_and_one_that_breaks_it():
    assert set(cases.RULE_CASES) | {"lstm-constant-weights"} == set(edgetpu_rules.RULES_BY_ID)
    assert all(rule.basis in ("documented", "compiler message", "inferred") for rule in edgetpu_rules.RULES)


@pytest.mark.parametrize("rule_id", sorted(cases.RULE_CASES))
def test_rule_on_a_model_that_meets_it_and_one_that_breaks_it(rule_id, tflite_model, tmp_path):
    meets, breaks, op_name = cases.RULE_CASES[rule_id]
    rule = edgetpu_rules.RULES_BY_ID[rule_id]
    kept = edgetpu.compile(tflite_model(meets), out_dir=tmp_path / "meets", preflight_only=True)
    assert all(row["rule"] != rule_id for row in kept.preflight["operators"])
    if op_name and rule_id != "dequantize":
        assert _judged(kept, op_name)["on_tpu"]
    broken = edgetpu.compile(tflite_model(breaks), out_dir=tmp_path / "breaks", preflight_only=True)
    row = _judged(broken, op_name)
    assert (row["on_tpu"], row["rule"], row["status"], row["basis"]) == \
        (False, rule_id, rule.status, rule.basis)
    assert broken.preflight["rules"][rule_id]["source"] == rule.source


@needs_shared
def test_lstm_rule_on_the_reference_lstm_and_on_one_with_a_run_time_weight(tmp_path):
    data = cases.edit(REFERENCE.joinpath("keras_lstm_mnist_ptq.tflite").read_bytes(),
                      cases.drop_buffer("UNIDIRECTIONAL_SEQUENCE_LSTM", 2))
    (tmp_path / "lstm.tflite").write_bytes(data)
    row = _judged(edgetpu.compile(tmp_path / "lstm.tflite", out_dir=tmp_path / "out", preflight_only=True),
                  "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert (row["on_tpu"], row["rule"]) == (False, "lstm-constant-weights")


def test_transpose_maps_as_compiler_16_maps_it(tflite_model, tmp_path):
    """Changed rule: compiler 16 maps TRANSPOSE (google-coral/edgetpu#193, #433)."""
    preflight = edgetpu.compile(tflite_model("transpose"), out_dir=tmp_path, preflight_only=True).preflight
    assert [row["op"] for row in preflight["operators"]] == ["TRANSPOSE"]
    assert preflight["ops_on_tpu"] == 1 and preflight["cpu_ops"] == []


def test_nearest_resize_by_a_fraction_maps_but_bilinear_does_not(tflite_model, tmp_path):
    """Changed rule: EfficientDet-Lite0's 3x3 -> 5x5 nearest upsamplings map (google-coral/edgetpu#560);
    the integer-ratio rule stays for bilinear only (fitted to the deeplabv3 twin)."""
    nearest = edgetpu.compile(tflite_model("nearest_3_to_5"), out_dir=tmp_path / "n", preflight_only=True)
    assert _judged(nearest, "RESIZE_NEAREST_NEIGHBOR")["on_tpu"]
    bilinear = edgetpu.compile(tflite_model("bilinear_3_to_5"), out_dir=tmp_path / "b", preflight_only=True)
    assert _judged(bilinear, "RESIZE_BILINEAR")["basis"] == "inferred"


def test_partition_keeps_what_the_cpu_operator_does_not_feed_on_the_tpu(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("partition"), out_dir=tmp_path, preflight_only=True).preflight
    after, = [row for row in preflight["operators"] if row["status"] == edgetpu_rules.SUBGRAPH]
    assert (after["op"], after["rule"], after["basis"]) == ("CONV_2D", "partition", "documented")
    assert [row["on_tpu"] for row in preflight["operators"] if row["op"] == "CONV_2D"].count(True) == 2
    assert preflight["partition_at"]["op"] == "HARD_SWISH" and preflight["subgraphs"] == 1


def test_grouped_convolution_is_predicted_to_be_refused_by_compiler_16(tflite_model, tmp_path):
    report = edgetpu.compile(tflite_model("grouped_conv"), out_dir=tmp_path, preflight_only=True)
    (problem,) = report.preflight["problems"]
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in problem
    assert "grouped convolution" in problem and "[inferred" in problem


def test_summary_gives_each_cpu_prediction_its_basis(tflite_model, tmp_path):
    result = _run(tflite_model("float_io"), "-o", tmp_path, "--preflight-only")
    assert result.returncode == 3, result.stderr
    assert "QUANTIZE x1: Operation is otherwise supported, but not mapped due to some unspecified " \
           "limitation [compiler message: quantize-from-8-bit]" in result.stdout
    assert "DEQUANTIZE x1: Operation is working on an unsupported data type [compiler message: dequantize]" \
        in result.stdout


# --- Pre-flight against the reference pairs and on our models ----------------------------------


def _reference_models():
    if not REFERENCE.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{REFERENCE} is absent"))]
    return sorted(p.stem for p in REFERENCE.glob("*.tflite") if not p.stem.endswith("_edgetpu"))


@pytest.mark.parametrize("name", _reference_models())
def test_preflight_predicts_the_cpu_operators_left_in_the_compiled_twin(name, tmp_path):
    report = edgetpu.compile(REFERENCE / f"{name}.tflite", out_dir=tmp_path, preflight_only=True)
    twin = tflite.read_graph(REFERENCE / f"{name}_edgetpu.tflite")
    left_on_cpu = collections.Counter(op.name for op in twin.operators if op.name != "edgetpu-custom-op")
    preflight = report.preflight
    assert edgetpu_log.op_counts(preflight["cpu_ops"]) == left_on_cpu
    assert preflight["subgraphs"] == sum(op.name == "edgetpu-custom-op" for op in twin.operators) == 1
    assert preflight["ops_on_tpu"] + preflight["ops_on_cpu"] == preflight["ops_total"]
    if not left_on_cpu:  # "all mapped"
        assert preflight["ops_on_tpu"] == preflight["ops_total"] and preflight["partition_at"] is None
    assert report.status == "preflight-only" and report.compiler is None
    assert _saved_report(tmp_path) == dataclasses.asdict(report)


@needs_shared
def test_movenet_partition_ends_at_arg_max_after_a_cpu_input_cast(tmp_path):
    preflight = edgetpu.compile(REFERENCE / "movenet_single_pose_lightning_ptq.tflite", out_dir=tmp_path,
                                preflight_only=True).preflight
    operators = preflight["operators"]
    assert [op["op"] for op in operators[:2] if not op["on_tpu"]] == ["CAST", "QUANTIZE"]
    assert preflight["partition_at"] == {"index": 89, "op": "ARG_MAX", "status": "Operation not supported",
                                         "rule": "listed", "basis": "documented"}
    assert all(operators[i]["on_tpu"] for i in range(100, 105))  # heads the ARG_MAX does not feed


@pytest.mark.parametrize("name", ["tinytracker", "tinytracker_s"])
def test_tinytracker_int8_is_predicted_fully_mapped_in_one_subgraph(name, tflite_model, tmp_path):
    report = edgetpu.compile(tflite_model(name), out_dir=tmp_path, preflight_only=True)
    preflight = report.preflight
    assert preflight["ops_on_tpu"] == preflight["ops_total"] > 20
    assert preflight["cpu_ops"] == [] and preflight["subgraphs"] == 1 and preflight["problems"] == []
    graph = tflite.read_graph(tflite_model(name))
    assert preflight["param_bytes"] == sum(t.buffer.nbytes for t in graph.tensors if t.is_constant)
    assert preflight["param_bytes_streamed"] == 0


def test_float_input_and_output_leave_only_their_conversions_on_the_cpu(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("tinytracker_s", io_type="float32"), out_dir=tmp_path,
                                preflight_only=True).preflight
    assert [(row["op"], row["count"], row["rule"]) for row in preflight["cpu_ops"]] == [
        ("QUANTIZE", 1, "quantize-from-8-bit"), ("DEQUANTIZE", 1, "dequantize")]
    assert preflight["subgraphs"] == 1 and preflight["ops_on_tpu"] == preflight["ops_total"] - 2


def test_full_mobilenet_v3_is_predicted_to_stop_at_hard_swish(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("mobilenet_v3_full"), out_dir=tmp_path,
                                preflight_only=True).preflight
    stop = preflight["partition_at"]
    assert (stop["op"], stop["status"]) == ("HARD_SWISH", "Operation not supported")
    operators = preflight["operators"]
    assert all(op["on_tpu"] for op in operators[:stop["index"]])
    assert not any(op["on_tpu"] for op in operators[stop["index"]:])
    assert {op["status"] for op in operators[stop["index"]:] if op["op"] != "HARD_SWISH"} == \
        {"More than one subgraph is not supported"}


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
    expected = [{"op": "CONV_2D", "count": 35, "status": "Mapped to Edge TPU"},
                {"op": "SOFTMAX", "count": 1, "status": "Mapped to Edge TPU"}]
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
    result = _run(MOBILENET, "-o", tmp_path / "out", "--compiler", FAKE_COMPILER, env=_fake("mapped"))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert _listing(out) == [
        "mobilenet_v1_0.25_128_quant_edgetpu.log", "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
        "report.json"]
    assert (out / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").read_bytes() == \
        (REFERENCE / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").read_bytes()
    report = _saved_report(out)
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
    result = _run(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, "--json", env=_fake("partial"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report.pop("kind"), report.pop("schema_version")) == ("zoo.edgetpu_report", 2)
    compiler = report["compiler"]
    assert (compiler["ops_on_tpu"], compiler["ops_on_cpu"]) == (261, 6)
    left_on_cpu = edgetpu_log.op_counts(compiler["compiled_model"]["cpu_ops"])
    assert left_on_cpu == edgetpu_log.op_counts(report["preflight"]["cpu_ops"])
    assert not any("compiled model" in d for d in report["disagreements"])
    assert _saved_report(tmp_path) == report


@needs_shared
@pytest.mark.parametrize("scenario, text", [
    ("not-quantized", "Invalid model: mobilenet_v1_0.25_128_quant.tflite; Model not quantized"),
    ("internal", "Internal compiler error. Aborting!"),
    ("large-activations", "Compilation failed due to large activation tensors in model."),
    ("op-version", "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'")])
def test_compiler_failure_exits_1_with_its_message(scenario, text, tmp_path):
    result = _run(MOBILENET, "-o", tmp_path, "--compiler", FAKE_COMPILER, env=_fake(scenario))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == text
    report = _saved_report(tmp_path)
    assert report["status"] == "failed" and report["compiler"]["error"] == text
    assert _listing(tmp_path) == ["report.json"]


@needs_shared
def test_compiler_timeout_exits_1(tmp_path):
    model = REFERENCE / "split_concat.tflite"
    result = _run(model, "-o", tmp_path, "--compiler", FAKE_COMPILER, "--timeout", "1", env=_fake("hang"))
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
    result = _run(tflite_model("conv"), "-o", tmp_path, "--compiler", FAKE_COMPILER, env=_fake("mapped"))
    assert result.returncode == 1
    assert "wrote no conv_int8_int8_edgetpu.tflite" in result.stderr


@needs_shared
def test_a_rerun_replaces_only_the_files_this_tool_wrote(tmp_path):
    out = tmp_path / "out"
    compiled = _run(MOBILENET, "-o", out, "--compiler", FAKE_COMPILER, env=_fake("mapped"))
    assert compiled.returncode == 0
    (out / "notes.txt").write_text("mine")
    result = _run(MOBILENET, "-o", out, env={"PATH": str(tmp_path)})
    assert result.returncode == 3
    last = result.stderr.splitlines()[-1]
    assert "edgetpu_compiler not found" in last and "apt" in last
    # The earlier run's compiled files would contradict the new report: they are gone; the user's stays.
    assert _listing(out) == ["notes.txt", "report.json"]
    assert _saved_report(out)["compiler"] is None
    assert edgetpu.compiled_model(out) is None


def test_files_the_tool_did_not_write_are_never_removed(tflite_model, tmp_path):
    user_files = {"conv_int8_int8_edgetpu.tflite": b"user's", "conv_int8_int8_edgetpu.log": b"user's"}
    for name, data in user_files.items():
        (tmp_path / name).write_bytes(data)
    report = edgetpu.compile(tflite_model("conv"), out_dir=tmp_path, preflight_only=True, overwrite=True)
    assert report.status == "preflight-only"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in user_files} == user_files


def _saved_report(folder):
    """report.json as the adapter wrote it, read through the artifact contract (zoo.artifacts)."""
    return dataclasses.asdict(edgetpu.read_report(folder))


def _listing(folder):
    """The files a user sees in ``folder`` (not the project's hidden output marker)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# --- Bad input and failed writes ----------------------------------------------------------------------


def _bad_input(kind, tmp_path, tflite_model):
    """(model, extra arguments) of one kind of bad input."""
    if kind == "missing file":
        return tmp_path / "absent.tflite", []
    if kind == "directory":
        (tmp_path / "folder.tflite").mkdir()
        return tmp_path / "folder.tflite", []
    if kind == "not TFLite":
        (tmp_path / "notes.tflite").write_text("not a model, but long enough to have a header")
        return tmp_path / "notes.tflite", []
    if kind == "truncated":
        data = tflite_model("conv").read_bytes()
        (tmp_path / "cut.tflite").write_bytes(data[:len(data) // 2])
        return tmp_path / "cut.tflite", []
    if kind == "float model":
        return tflite_model("conv", quantize=False), []
    if kind == "dynamic input":
        return tflite_model("dynamic_input"), []
    if kind == "-o is a file":
        (tmp_path / "taken").write_text("x")
        return tflite_model("conv"), ["-o", tmp_path / "taken"]
    if kind == "-o under a file":
        (tmp_path / "taken").write_text("x")
        return tflite_model("conv"), ["-o", tmp_path / "taken" / "out"]
    if kind == "-o not writable":
        return tflite_model("conv"), ["-o", "/proc/edgetpu-out"]
    return tflite_model("conv"), kind.split()


@pytest.mark.parametrize("kind, words", [
    ("missing file", "no such file"), ("directory", "is a directory"), ("not TFLite", "not a TFLite model"),
    ("truncated", "truncated or corrupt"), ("float model", "is a float model"),
    ("dynamic input", "dynamic shape"), ("-o is a file", "is a file"), ("-o under a file", "is a file"),
    ("-o not writable", "cannot write there"), ("--timeout nan", "--timeout nan"),
    ("--timeout inf", "--timeout inf"), ("--timeout -1", "--timeout -1"), ("--timeout 0", "above 0"),
    ("--timeout soon", "--timeout soon"), ("--min-runtime-version 0", "positive whole"),
    ("--min-runtime-version 13.5", "positive whole"), ("--frobnicate", "unrecognized arguments")])
def test_bad_input_is_one_line_exit_2_and_nothing_written(kind, words, tmp_path, tflite_model):
    model, extra = _bad_input(kind, tmp_path, tflite_model)
    before = sorted(tmp_path.iterdir())
    result = _run(model, *(extra if "-o" in extra else ["-o", tmp_path / "out", *extra]))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("compilers/edgetpu.py: error: ")
    assert words in result.stderr and result.stdout == "" and "Traceback" not in result.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_a_missing_model_argument_is_one_line_too():
    result = _run()
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "the following arguments are required: model" in result.stderr


def test_a_write_failing_part_way_is_one_failed_line_and_leaves_the_output_as_it_was(
        tflite_model, tmp_path, monkeypatch, capsys):
    from zoo import artifacts
    edgetpu.compile(tflite_model("conv"), out_dir=tmp_path / "out", preflight_only=True)
    earlier = (tmp_path / "out" / "report.json").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(artifacts.os, "fdopen", disk_full)
    status = edgetpu.main([str(tflite_model("conv")), "-o", str(tmp_path / "out"), "--preflight-only"])
    monkeypatch.undo()
    stderr = capsys.readouterr().err.splitlines()
    assert status == 1
    assert stderr[-1] == "compilers/edgetpu.py: failed: cannot write report.json (No space left on device)"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no work folder left
    assert (tmp_path / "out" / "report.json").read_bytes() == earlier


def test_help_explains_the_exit_codes():
    result = _run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "0 compiled; 1 the compiler failed or timed out, or writing failed; 2 bad input" in text
    assert "3 pre-flight only" in text


# --- Runtime helper --------------------------------------------------------------------------------


def test_make_interpreter_without_the_edge_tpu_runtime_raises_one_clear_error(tflite_model):
    try:
        ctypes.CDLL(EDGETPU_LIBRARY)
        pytest.skip("libedgetpu is installed here; this test covers its absence")
    except OSError:
        pass
    with pytest.raises(UsageError, match=r"Edge TPU runtime not found \(libedgetpu") as error:
        edgetpu.make_interpreter(tflite_model("conv"), device="usb:0")
    assert "\n" not in str(error.value) and "libedgetpu1-std" in str(error.value)
