"""compilers/edgetpu.py (the Coral Edge TPU compiler adapter): the pre-flight against the reference
pairs Google's compiler produced, every rule of its table on a small int8 TFLite that meets it and
one that breaks it, bad input, output handling, and the runtime helper (the compiler's own output
and runs: test_edgetpu_compiler.py). Each tiny model is converted once per session."""
import collections
import dataclasses
import ctypes
import errno
import json
import os

import pytest

from compilers import edgetpu
from compilers.edgetpu import log as edgetpu_log, rules as edgetpu_rules
from compilers.edgetpu.runtime import EDGETPU_LIBRARY
from edgetpu_support import REFERENCE, needs_shared, run_adapter, saved_report
from fake_edgetpu_compiler import edgetpu_cases as cases
from zoo import tflite
from zoo.errors import UsageError


# --- The rule table, rule by rule ----------------------------------------------------------------


def _judged(report, op_name):
    """The pre-flight's row of the first ``op_name`` (or of the first CPU operator)."""
    rows = report.preflight.operators
    return next(row for row in rows if (row.op == op_name if op_name else not row.on_tpu))


def test_every_rule_has_a_case_that_meets_it_and_one_that_breaks_it():
    assert set(cases.RULE_CASES) | {"lstm-constant-weights"} == set(edgetpu_rules.RULES_BY_ID)
    assert all(rule.basis in ("documented", "compiler message", "inferred") for rule in edgetpu_rules.RULES)


@pytest.mark.parametrize("rule_id", sorted(cases.RULE_CASES))
def test_rule_on_a_model_that_meets_it_and_one_that_breaks_it(rule_id, tflite_model, tmp_path):
    meets, breaks, op_name = cases.RULE_CASES[rule_id]
    rule = edgetpu_rules.RULES_BY_ID[rule_id]
    kept = edgetpu.compile(tflite_model(meets), out_dir=tmp_path / "meets", preflight_only=True)
    assert all(row.rule != rule_id for row in kept.preflight.operators)
    if op_name and rule_id != "dequantize":
        assert _judged(kept, op_name).on_tpu
    broken = edgetpu.compile(tflite_model(breaks), out_dir=tmp_path / "breaks", preflight_only=True)
    row = _judged(broken, op_name)
    assert (row.on_tpu, row.rule, row.status, row.basis) == \
        (False, rule_id, rule.status, rule.basis)
    assert broken.preflight.rules[rule_id].source == rule.source


@needs_shared
def test_lstm_rule_on_the_reference_lstm_and_on_one_with_a_run_time_weight(tmp_path):
    data = cases.edit(REFERENCE.joinpath("keras_lstm_mnist_ptq.tflite").read_bytes(),
                      cases.drop_buffer("UNIDIRECTIONAL_SEQUENCE_LSTM", 2))
    (tmp_path / "lstm.tflite").write_bytes(data)
    row = _judged(edgetpu.compile(tmp_path / "lstm.tflite", out_dir=tmp_path / "out", preflight_only=True),
                  "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert (row.on_tpu, row.rule) == (False, "lstm-constant-weights")


def test_transpose_maps_as_compiler_16_maps_it(tflite_model, tmp_path):
    """Changed rule: compiler 16 maps TRANSPOSE (google-coral/edgetpu#193, #433)."""
    preflight = edgetpu.compile(tflite_model("transpose"), out_dir=tmp_path, preflight_only=True).preflight
    assert [row.op for row in preflight.operators] == ["TRANSPOSE"]
    assert preflight.ops_on_tpu == 1 and preflight.cpu_ops == []


def test_nearest_resize_by_a_fraction_maps_but_bilinear_does_not(tflite_model, tmp_path):
    """Changed rule: EfficientDet-Lite0's 3x3 -> 5x5 nearest upsamplings map (google-coral/edgetpu#560);
    the integer-ratio rule stays for bilinear only (fitted to the deeplabv3 twin)."""
    nearest = edgetpu.compile(tflite_model("nearest_3_to_5"), out_dir=tmp_path / "n", preflight_only=True)
    assert _judged(nearest, "RESIZE_NEAREST_NEIGHBOR").on_tpu
    bilinear = edgetpu.compile(tflite_model("bilinear_3_to_5"), out_dir=tmp_path / "b", preflight_only=True)
    assert _judged(bilinear, "RESIZE_BILINEAR").basis == "inferred"


def test_partition_keeps_what_the_cpu_operator_does_not_feed_on_the_tpu(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("partition"), out_dir=tmp_path, preflight_only=True).preflight
    after, = [row for row in preflight.operators if row.status == edgetpu_rules.SUBGRAPH]
    assert (after.op, after.rule, after.basis) == ("CONV_2D", "partition", "documented")
    assert [row.on_tpu for row in preflight.operators if row.op == "CONV_2D"].count(True) == 2
    assert preflight.partition_at.op == "HARD_SWISH" and preflight.subgraphs == 1


def test_grouped_convolution_is_predicted_to_be_refused_by_compiler_16(tflite_model, tmp_path):
    report = edgetpu.compile(tflite_model("grouped_conv"), out_dir=tmp_path, preflight_only=True)
    (problem,) = report.preflight.problems
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in problem
    assert "grouped convolution" in problem and "[inferred" in problem


def test_summary_gives_each_cpu_prediction_its_basis(tflite_model, tmp_path):
    result = run_adapter(tflite_model("float_io"), "-o", tmp_path, "--preflight-only")
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
    assert edgetpu_log.op_counts(preflight.cpu_ops) == left_on_cpu
    assert preflight.subgraphs == sum(op.name == "edgetpu-custom-op" for op in twin.operators) == 1
    assert preflight.ops_on_tpu + preflight.ops_on_cpu == preflight.ops_total
    if not left_on_cpu:  # "all mapped"
        assert preflight.ops_on_tpu == preflight.ops_total and preflight.partition_at is None
    assert report.status == "preflight-only" and report.compiler is None
    assert saved_report(tmp_path) == dataclasses.asdict(report)


@needs_shared
def test_movenet_partition_ends_at_arg_max_after_a_cpu_input_cast(tmp_path):
    preflight = edgetpu.compile(REFERENCE / "movenet_single_pose_lightning_ptq.tflite", out_dir=tmp_path,
                                preflight_only=True).preflight
    operators = preflight.operators
    assert [op.op for op in operators[:2] if not op.on_tpu] == ["CAST", "QUANTIZE"]
    assert dataclasses.asdict(preflight.partition_at) == {
        "index": 89, "op": "ARG_MAX", "status": "Operation not supported", "rule": "listed",
        "basis": "documented"}
    assert all(operators[i].on_tpu for i in range(100, 105))  # heads the ARG_MAX does not feed


@pytest.mark.parametrize("name", ["tinytracker", "tinytracker_s"])
def test_tinytracker_int8_is_predicted_fully_mapped_in_one_subgraph(name, tflite_model, tmp_path):
    report = edgetpu.compile(tflite_model(name), out_dir=tmp_path, preflight_only=True)
    preflight = report.preflight
    assert preflight.ops_on_tpu == preflight.ops_total > 20
    assert preflight.cpu_ops == [] and preflight.subgraphs == 1 and preflight.problems == []
    graph = tflite.read_graph(tflite_model(name))
    assert preflight.param_bytes == sum(t.buffer.nbytes for t in graph.tensors if t.is_constant)
    assert preflight.param_bytes_streamed == 0


def test_float_input_and_output_leave_only_their_conversions_on_the_cpu(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("tinytracker_s", io_type="float32"), out_dir=tmp_path,
                                preflight_only=True).preflight
    assert [(row.op, row.count, row.rule) for row in preflight.cpu_ops] == [
        ("QUANTIZE", 1, "quantize-from-8-bit"), ("DEQUANTIZE", 1, "dequantize")]
    assert preflight.subgraphs == 1 and preflight.ops_on_tpu == preflight.ops_total - 2


def test_full_mobilenet_v3_is_predicted_to_stop_at_hard_swish(tflite_model, tmp_path):
    preflight = edgetpu.compile(tflite_model("mobilenet_v3_full"), out_dir=tmp_path,
                                preflight_only=True).preflight
    stop = preflight.partition_at
    assert (stop.op, stop.status) == ("HARD_SWISH", "Operation not supported")
    operators = preflight.operators
    assert all(op.on_tpu for op in operators[:stop.index])
    assert not any(op.on_tpu for op in operators[stop.index:])
    assert {op.status for op in operators[stop.index:] if op.op != "HARD_SWISH"} == \
        {"More than one subgraph is not supported"}


def test_a_report_of_the_previous_versions_reads_and_an_older_one_is_one_line(tflite_model, tmp_path):
    """Version 2 held the pre-flight as a plain object of the same layout: it reads as the typed
    Preflight, as version 3 does; version 1 (no headline) is refused, saying what to do."""
    report = edgetpu.compile(tflite_model("partition"), out_dir=tmp_path, preflight_only=True)
    path = tmp_path / "report.json"
    value = json.loads(path.read_text())
    for version in (2, 3):
        path.write_text(json.dumps({**value, "schema_version": version}))
        again = edgetpu.read_report(tmp_path)
        assert again == report and again.preflight.partition_at.op == "HARD_SWISH"
    path.write_text(json.dumps({**value, "schema_version": 1}))
    with pytest.raises(UsageError, match="written with schema version 1, this zoo reads 4; make it again"):
        edgetpu.read_report(tmp_path)


def test_files_the_tool_did_not_write_are_never_removed(tflite_model, tmp_path):
    user_files = {"conv_int8_int8_edgetpu.tflite": b"user's", "conv_int8_int8_edgetpu.log": b"user's"}
    for name, data in user_files.items():
        (tmp_path / name).write_bytes(data)
    report = edgetpu.compile(tflite_model("conv"), out_dir=tmp_path, preflight_only=True, overwrite=True)
    assert report.status == "preflight-only"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in user_files} == user_files


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
    result = run_adapter(model, *(extra if "-o" in extra else ["-o", tmp_path / "out", *extra]))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("compilers/edgetpu.py: error: ")
    assert words in result.stderr and result.stdout == "" and "Traceback" not in result.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_a_missing_model_argument_is_one_line_too():
    result = run_adapter()
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
    assert stderr[-1].startswith("compilers/edgetpu.py: failed: no space left on the device of ")
    assert stderr[-1].endswith("free more space there or choose another -o")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no work folder left
    assert (tmp_path / "out" / "report.json").read_bytes() == earlier


def test_help_explains_the_exit_codes():
    result = run_adapter("--help")  # the script itself: tests/test_targets.py
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
