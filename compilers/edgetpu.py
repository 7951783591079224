"""Coral Edge TPU adapter: turns an int8 TFLite into NAME_edgetpu.tflite with Google's
`edgetpu_compiler`, and says before and after exactly what runs on the TPU.

    python compilers/edgetpu.py model.tflite [-o DIR] [--compiler PATH] [--min-runtime-version N]
                                [--timeout S] [--preflight-only] [--json]

Pre-flight (always; no compiler needed): reads the flatbuffer with zoo.tflite.read_graph and checks
what the compiler checks (Coral's published model requirements, summarised in
shared/edgetpu/README.md): 8-bit quantized tensors, constant weights and shape parameters, the
3-innermost-dimensions rule, the operator table with its limits, and the operator versions compiler
16 can read. It then predicts the compiler's single partition: an unsupported operator after the TPU
part, and everything fed by it, stay on the CPU ("More than one subgraph is not supported"), while
unsupported operators before it (e.g. a float input's QUANTIZE) only sit in front of it. Each CPU
operator carries its reason in the compiler's own status words.

Compile (when `edgetpu_compiler` is on PATH or given with --compiler): runs it with a timeout,
parses its stdout and NAME_edgetpu.log into the same report.json, lists the operators left beside
`edgetpu-custom-op` in the compiled file, and warns where compiler and pre-flight disagree.

Output, in DIR (default: MODEL_DIR/NAME_edgetpu): report.json, and when compiled NAME_edgetpu.tflite
and NAME_edgetpu.log. Files are written into a temporary folder beside DIR and moved in complete.

Exit status:
  0  compiled
  1  the compiler ran and failed or timed out (report.json says why)
  2  bad input: one line on stderr, nothing written
  3  pre-flight only: no compiler found (or --preflight-only); report.json has "compiler": null

From Python: compilers.edgetpu.compile(model, ...) returns the report; compiled_model(DIR) is the
NAME_edgetpu.tflite it left there (or None); make_interpreter(path) runs a compiled model on the
Edge TPU through libedgetpu.
"""
import argparse
import collections
import ctypes
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import typing

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from zoo import tflite  # noqa: E402
from zoo.errors import UsageError, one_line_errors, progress  # noqa: E402

__all__ = ["compile", "compiled_model", "make_interpreter"]

_EXIT_CODES = {"compiled": 0, "failed": 1, "preflight-only": 3}  # report["status"] -> exit status

# The compiler's status words (its operation log).
_MAPPED = "Mapped to Edge TPU"
_NOT_SUPPORTED = "Operation not supported"
_UNSUPPORTED_TYPE = "Operation is working on an unsupported data type"
_LIMITATION = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
_RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
_SUBGRAPH = "More than one subgraph is not supported"
_VERSION = "Operation version not supported"

_ON_CHIP_BYTES = 8 * 2**20  # "roughly 8 MB of on-chip SRAM caches parameters"
_CUSTOM_OP = "edgetpu-custom-op"
_COMPILER = "edgetpu_compiler"
_INSTALL_HINT = ("install it on x86-64 Debian/Ubuntu from Coral's apt repository "
                 "(deb https://packages.cloud.google.com/apt coral-edgetpu-stable main; "
                 "apt-get install edgetpu-compiler) or pass --compiler PATH")
_RUNTIME_LIBRARY = {"Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(platform.system(),
                                                                                  "libedgetpu.so.1")

# The newest version of each operator that compiler 16 can read: those registered by TFLite 2.5
# (the runtime of mid-2021 builds), per tensorflow/lite/tools/versioning/runtime_version.cc.
# A newer version makes the compiler refuse the whole model, e.g. "Didn't find op for builtin
# opcode 'CONV_2D' version '6'" (CONV_2D v6, TF 2.9, is the grouped convolution). Operators not
# listed are not checked.
_KNOWN_VERSIONS = {
    "ADD": 3, "ARG_MAX": 2, "ARG_MIN": 2, "AVERAGE_POOL_2D": 3, "CAST": 1, "CONCATENATION": 3,
    "CONV_2D": 5, "DEPTHWISE_CONV_2D": 6, "DEQUANTIZE": 4, "DIV": 2, "EXPAND_DIMS": 1,
    "FLOOR_DIV": 2, "FULLY_CONNECTED": 9, "GATHER": 5, "GATHER_ND": 3, "HARD_SWISH": 1,
    "L2_NORMALIZATION": 2, "LEAKY_RELU": 2, "LOGISTIC": 3, "LSTM": 4, "MAXIMUM": 4, "MAX_POOL_2D": 3,
    "MEAN": 3, "MINIMUM": 4, "MUL": 4, "PACK": 3, "PAD": 3, "PRELU": 1, "QUANTIZE": 2,
    "REDUCE_MAX": 3, "REDUCE_MIN": 3, "RELU": 3, "RELU6": 3, "RELU_N1_TO_1": 1, "RESHAPE": 1,
    "RESIZE_BILINEAR": 4, "RESIZE_NEAREST_NEIGHBOR": 4, "SLICE": 5, "SOFTMAX": 3, "SPACE_TO_DEPTH": 2,
    "SPLIT": 4, "SQRT": 1, "SQUEEZE": 2, "STRIDED_SLICE": 5, "SUB": 5, "SUM": 2, "TANH": 3,
    "TRANSPOSE": 5, "TRANSPOSE_CONV": 3, "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "UNPACK": 4,
}
_VERSION_MEANING = {("CONV_2D", 6): "a grouped convolution (Conv2D groups > 1): use one Conv2D per group"}


# --- Pre-flight: the published operator table and its limits -------------------------------------


def _tensor(graph, op, position):
    index = op.inputs[position] if position < len(op.inputs) else -1
    return graph.tensors[index] if index >= 0 else None


def _non_unit_dims(tensor):
    return sum(size > 1 for size in tensor.shape)


def _no_fused_activation(graph, op):
    return getattr(op.options, "fusedActivationFunction", 0) == 0


def _same_dilation(graph, op):
    return getattr(op.options, "dilationWFactor", 1) == getattr(op.options, "dilationHFactor", 1)


def _fully_connected(graph, op):
    """Default weight format and a 1-D output (leading 1s aside)."""
    return (getattr(op.options, "weightsFormat", 0) == 0
            and _non_unit_dims(graph.tensors[op.outputs[0]]) <= 1)


def _concatenation(graph, op):
    """No fused activation; a constant input only as all-zero padding with exactly 2 inputs."""
    constants = [graph.tensors[i] for i in op.inputs if graph.tensors[i].is_constant]
    zero_padding = all((c.values() == (c.zero_point or (0,))[0]).all() for c in constants)
    return _no_fused_activation(graph, op) and (not constants or (len(op.inputs) == 2 and zero_padding))


def _axes(graph, op, position=1):
    rank = len(_tensor(graph, op, 0).shape)
    return {int(axis) % rank for axis in _tensor(graph, op, position).values().reshape(-1)}


def _touches_batch(graph, op, axes):
    return len(_tensor(graph, op, 0).shape) == 4 and 0 in axes


def _not_on_batch(graph, op):
    return not _touches_batch(graph, op, _axes(graph, op))


def _mean(graph, op):
    """No reduction over the batch; a z (channel) reduction needs a depth that is a multiple of 4."""
    source, axes = _tensor(graph, op, 0), _axes(graph, op)
    z_reduction = len(source.shape) - 1 in axes
    return not _touches_batch(graph, op, axes) and (not z_reduction or source.shape[-1] % 4 == 0)


def _pad(graph, op):
    paddings = _tensor(graph, op, 1).values()
    return len(_tensor(graph, op, 0).shape) != 4 or not paddings[0].any()


def _pack(graph, op):
    return getattr(op.options, "axis", 0) != 0


def _resize(graph, op):
    """3-D in and out; and a sampling grid the TPU can follow exactly. Coral documents only that
    "depending on input/output size" a resize may stay on the CPU "to avoid loss in precision";
    this rule is fitted to the reference pairs: movenet's 2x half-pixel resizes map, deeplabv3's
    1x1 -> 33x33 align_corners resize does not."""
    source = _tensor(graph, op, 0)
    if len(source.shape) != 4 or source.shape[0] != 1:
        return False
    sizes = list(zip(source.shape[1:3], _tensor(graph, op, 1).values().tolist()))
    if getattr(op.options, "alignCorners", False):
        return all(before > 1 and (after - 1) % (before - 1) == 0 for before, after in sizes)
    return all(after % before == 0 for before, after in sizes)


def _softmax(graph, op):
    source = _tensor(graph, op, 0)
    elements = 1
    for size in source.shape:
        elements *= size
    return _non_unit_dims(source) <= 1 and elements <= 16000


def _squeeze(graph, op):
    """Only leading 1s may be squeezed."""
    shape = _tensor(graph, op, 0).shape
    axes = getattr(op.options, "squeezeDims", None)
    axes = [int(a) % len(shape) for a in axes] if axes is not None and len(axes) else \
        [i for i, size in enumerate(shape) if size == 1]
    return all(all(size == 1 for size in shape[:axis + 1]) for axis in axes)


def _strided_slice(graph, op):
    options = op.options
    return ((_tensor(graph, op, 3).values() == 1).all()
            and getattr(options, "ellipsisMask", 0) == 0 and getattr(options, "newAxisMask", 0) == 0)


def _prelu(graph, op):
    return _non_unit_dims(_tensor(graph, op, 1)) <= 1


def _lstm_weights_constant(graph, op):
    """Every input but the sequence and the state variables is a weight, bias or coefficient."""
    return all(graph.tensors[i].is_constant or graph.tensors[i].is_variable
               for i in op.inputs[1:] if i >= 0)


class _Rule(typing.NamedTuple):
    constant_inputs: tuple = ()  # positions that must hold constants (weights, shapes, axes)
    limit: object = None         # graph, op -> True when the op is within the published limits


_SUPPORTED = {
    "ADD": _Rule(), "SUB": _Rule(), "MUL": _Rule(), "MAXIMUM": _Rule(), "MINIMUM": _Rule(),
    "L2_NORMALIZATION": _Rule(), "LOGISTIC": _Rule(), "TANH": _Rule(), "RELU": _Rule(),
    "RELU6": _Rule(), "RELU_N1_TO_1": _Rule(), "QUANTIZE": _Rule(), "SPACE_TO_DEPTH": _Rule(),
    "EXPAND_DIMS": _Rule((1,)), "SLICE": _Rule((1, 2)), "SPLIT": _Rule((0,)), "SUM": _Rule((1,)),
    "TRANSPOSE_CONV": _Rule((0, 1, 3)),
    "CONV_2D": _Rule((1, 2), _same_dilation), "DEPTHWISE_CONV_2D": _Rule((1, 2), _same_dilation),
    "FULLY_CONNECTED": _Rule((1, 2), _fully_connected),
    "CONCATENATION": _Rule((), _concatenation),
    "MEAN": _Rule((1,), _mean),
    "PACK": _Rule((), _pack), "PAD": _Rule((1,), _pad),
    "REDUCE_MAX": _Rule((1,), _not_on_batch), "REDUCE_MIN": _Rule((1,), _not_on_batch),
    "RESHAPE": _Rule((1,)),
    "RESIZE_BILINEAR": _Rule((1,), _resize), "RESIZE_NEAREST_NEIGHBOR": _Rule((1,), _resize),
    "SOFTMAX": _Rule((), _softmax), "SQUEEZE": _Rule((), _squeeze),
    "STRIDED_SLICE": _Rule((1, 2, 3), _strided_slice),
    "AVERAGE_POOL_2D": _Rule((), _no_fused_activation), "MAX_POOL_2D": _Rule((), _no_fused_activation),
    "LSTM": _Rule((), _lstm_weights_constant),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _Rule((), _lstm_weights_constant),
    "PRELU": _Rule((1,), _prelu),
}


def _eight_bit(tensor):
    return tensor.dtype in ("int8", "uint8") and tensor.quantized


def _tpu_data_type(tensor):
    if tensor.dtype in ("int8", "uint8"):
        return tensor.quantized
    if tensor.is_variable:  # an LSTM's 16-bit cell state
        return tensor.dtype == "int16" and tensor.quantized
    return tensor.is_constant and tensor.dtype in ("int32", "int64")  # biases, shapes, axes


def _beyond_three_dims(tensor):
    return any(size != 1 for size in tensor.shape[:-3])


def _version_unknown(op):
    """True when compiler 16 cannot read this operator version (it then refuses the model)."""
    return op.version > _KNOWN_VERSIONS.get(op.name, op.version)


def _unsupported_reason(graph, op):
    """The compiler's status for ``op`` on its own (None when it can map), before partitioning."""
    rule = None if op.custom else _SUPPORTED.get(op.name)
    if rule is None:
        return _UNSUPPORTED_TYPE if op.name == "DEQUANTIZE" else _NOT_SUPPORTED  # as its logs say
    if _version_unknown(op):
        return _VERSION
    tensors = [graph.tensors[i] for i in op.inputs + op.outputs if i >= 0]
    if op.name == "QUANTIZE" and not _eight_bit(_tensor(graph, op, 0)):
        return _LIMITATION  # a float input's QUANTIZE stays on the CPU, as the compiler's logs show
    if not all(_tpu_data_type(t) for t in tensors):
        return _UNSUPPORTED_TYPE
    if any(_beyond_three_dims(t) for t in tensors if not t.is_constant):
        return _RANK
    constants = [_tensor(graph, op, p) for p in rule.constant_inputs]
    if not all(t is None or t.is_constant for t in constants):
        return _LIMITATION
    if rule.limit is not None and not rule.limit(graph, op):
        return _LIMITATION
    return None


def _check_input(graph):
    """Bad input for the Edge TPU, as UsageError (before anything is written)."""
    if any(op.name == _CUSTOM_OP for op in graph.operators):
        raise UsageError(f"{graph.path} is already compiled for the Edge TPU (it holds {_CUSTOM_OP}); "
                         f"give the int8 model it was compiled from")
    activations = [t for t in graph.tensors if not t.is_constant]
    if not any(_eight_bit(t) for t in activations):
        raise UsageError(f"{graph.path} is a float model (no 8-bit quantized activations); the Edge TPU "
                         f"needs full-integer quantization: convert with a representative dataset and "
                         f"TFLITE_BUILTINS_INT8")
    for index in graph.inputs:
        tensor = graph.tensors[index]
        if any(size < 0 for size in tensor.shape_signature[1:]) or any(s < 0 for s in tensor.shape):
            raise UsageError(f"{graph.path}: input {tensor.name!r} has a dynamic shape "
                             f"{list(tensor.shape_signature)}; the Edge TPU needs fixed sizes: export "
                             f"with a fixed input shape (only the batch may be -1)")


def _preflight(graph):
    """Predicts the compiler's placement of every operator of ``graph``."""
    on_tpu, after_tpu, statuses, producer = [], [], [], {}
    for op in graph.operators:  # TFLite stores operators in execution order
        upstream = [producer[t] for t in op.inputs if t in producer]
        status = _unsupported_reason(graph, op)
        # A CPU operator that the TPU part feeds ends that part: whatever it feeds cannot go
        # back onto the TPU without a second subgraph.
        if status is None and any(after_tpu[u] and not on_tpu[u] for u in upstream):
            status = _SUBGRAPH
        on_tpu.append(status is None)
        after_tpu.append(any(on_tpu[u] or after_tpu[u] for u in upstream))
        statuses.append(status or _MAPPED)
        producer.update((t, op.index) for t in op.outputs)

    operators = [{"index": op.index, "op": op.name, "version": op.version, "on_tpu": tpu, "status": status}
                 for op, tpu, status in zip(graph.operators, on_tpu, statuses)]
    cpu_ops = collections.Counter((op["op"], op["status"]) for op in operators if not op["on_tpu"])
    partition = next((op for op, after in zip(operators, after_tpu) if after and not op["on_tpu"]), None)
    parameters = {i for op, tpu in zip(graph.operators, on_tpu) if tpu
                  for i in op.inputs if i >= 0 and graph.tensors[i].is_constant}
    param_bytes = sum(graph.tensors[i].buffer.nbytes for i in parameters)
    ops_on_tpu = sum(on_tpu)
    return {
        "ops_total": len(operators),
        "ops_on_tpu": ops_on_tpu,
        "ops_on_cpu": len(operators) - ops_on_tpu,
        "subgraphs": 1 if ops_on_tpu else 0,
        "cpu_ops": [{"op": op, "count": count, "status": status} for (op, status), count in cpu_ops.items()],
        "partition_at": partition and {k: partition[k] for k in ("index", "op", "status")},
        "param_bytes": param_bytes,
        "on_chip_budget_bytes": _ON_CHIP_BYTES,
        "param_bytes_on_chip": min(param_bytes, _ON_CHIP_BYTES),
        "param_bytes_streamed": max(0, param_bytes - _ON_CHIP_BYTES),
        "problems": _version_problems(graph),
        "operators": operators,
    }


def _version_problems(graph):
    """Operator versions compiler 16 cannot read: it refuses the model outright."""
    problems = []
    for name, version in sorted({(op.name, op.version) for op in graph.operators if _version_unknown(op)}):
        meaning = _VERSION_MEANING.get((name, version))
        problems.append(f"compiler 16 reads {name} up to version {_KNOWN_VERSIONS[name]} and will refuse "
                        f"this model (\"Didn't find op for builtin opcode '{name}' version '{version}'\")"
                        + (f"; version {version} is {meaning}" if meaning else ""))
    return problems


# --- The compiler's output --------------------------------------------------------------------

_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
_FIELDS = {  # stdout "Key: value" lines, per compiled model
    "Input model": ("input_model", str),
    "Input size": ("input_bytes", "size"),
    "Output model": ("output_model", str),
    "Output size": ("output_bytes", "size"),
    "On-chip memory used for caching model parameters": ("on_chip_bytes", "size"),
    "On-chip memory remaining for caching model parameters": ("on_chip_remaining_bytes", "size"),
    "Off-chip memory used for streaming uncached model parameters": ("off_chip_bytes", "size"),
    "Number of Edge TPU subgraphs": ("subgraphs", int),
    "Total number of operations": ("ops_total", int),
    "Operation log": ("operation_log", str),
    "Number of operations that will run on Edge TPU": ("ops_on_tpu", int),
    "Number of operations that will run on CPU": ("ops_on_cpu", int),
}
_FAILURE = re.compile(r"^(ERROR:.*|Didn't find op .*|Invalid model:.*|Model not quantized.*|"
                      r"Internal compiler error.*|Compilation failed.*)$")
_TABLE_HEADER = re.compile(r"^Operator\s+Count\s+Status\s*$")
_TABLE_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")


def _size(text):
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMG]?i?B)", text.strip()).groups()
    return round(float(number) * _UNITS[unit])


def _parse_table(lines):
    """Rows of the operation table (the .log, or stdout with -s) after its header line."""
    rows, in_table = [], False
    for line in lines:
        if _TABLE_HEADER.match(line):
            in_table = True
        elif in_table and _TABLE_ROW.match(line):
            op, count, status = _TABLE_ROW.match(line).groups()
            rows.append({"op": op, "count": int(count), "status": status})
    return rows


def _parse_compiler_output(text):
    """The figures of the compiler's stdout (and stderr): version, time, one block of sizes and
    counts per compiled model, the operation table when printed (-s), and any failure lines."""
    result = {"version": None, "compile_ms": None, "models": [], "operations": [], "errors": []}
    lines = text.splitlines()
    for line in lines:
        line = line.strip()
        if match := re.match(r"Edge TPU Compiler version (\S+)", line):
            result["version"] = match.group(1)
        elif match := re.match(r"Models? compiled successfully in (\d+) ms", line):
            result["compile_ms"] = int(match.group(1))
        elif _FAILURE.match(line):
            result["errors"].append(line)
        elif ": " in line and line.split(": ", 1)[0] in _FIELDS:
            key, value = line.split(": ", 1)
            field, kind = _FIELDS[key]
            if field == "input_model" or not result["models"]:
                result["models"].append({})
            result["models"][-1][field] = _size(value) if kind == "size" else kind(value.strip())
    result["operations"] = _parse_table(lines)
    return result


def _parse_log(text):
    """NAME_edgetpu.log: the compiler version and the operation table."""
    version = re.search(r"Edge TPU Compiler version (\S+)", text)
    return {"version": version and version.group(1), "operations": _parse_table(text.splitlines())}


def _op_counts(rows):
    counts = collections.Counter()
    for row in rows:
        counts[row["op"]] += row["count"]
    return counts


def _compiled_cpu_ops(path):
    """The operators left beside edgetpu-custom-op in a compiled file: what really runs on the CPU."""
    graph = tflite.read_graph(path)
    counts = collections.Counter(op.name for op in graph.operators if op.name != _CUSTOM_OP)
    return {"tpu_subgraphs": sum(op.name == _CUSTOM_OP for op in graph.operators),
            "cpu_ops": [{"op": op, "count": count} for op, count in counts.items()]}


def _run_compiler(compiler, model, work_dir, min_runtime_version, timeout_s):
    """Runs the compiler into ``work_dir``; returns its combined output and exit status, or None
    for the output when it timed out (its whole process group is killed)."""
    command = [compiler, "-o", str(work_dir)]
    if min_runtime_version is not None:
        command += ["-m", str(min_runtime_version)]
    command.append(str(model))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # its own group, so a timeout stops its children too
    output = None
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    finally:  # also on Ctrl-C: never leave a compiler running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return command, output, process.returncode if output is not None else None


def _compile(compiler, model, work_dir, min_runtime_version, timeout_s):
    command, output, returncode = _run_compiler(compiler, model, work_dir, min_runtime_version, timeout_s)
    report = {"path": compiler, "command": command, "returncode": returncode, "output": output,
              "version": None, "error": None, "edgetpu_model": None, "log": None}
    if output is None:
        report["error"] = f"{_COMPILER} timed out after {timeout_s} s"
        return report
    parsed = _parse_compiler_output(output)
    block = parsed["models"][0] if parsed["models"] else {}
    report.update(version=parsed["version"], compile_ms=parsed["compile_ms"],
                  **{field: block.get(field) for field, _ in _FIELDS.values()})
    compiled = work_dir / f"{model.stem}_edgetpu.tflite"
    log = work_dir / f"{model.stem}_edgetpu.log"
    operations = parsed["operations"]
    if log.is_file():
        report["log"] = log.name
        operations = _parse_log(log.read_text(errors="replace"))["operations"] or operations
    report["operations"] = operations
    report["cpu_ops"] = [row for row in operations if row["status"] != _MAPPED]
    if report["ops_on_tpu"] is None and report["ops_total"] is not None:
        # Only a partial mapping prints the two counts; otherwise every operation is mapped.
        report["ops_on_tpu"], report["ops_on_cpu"] = report["ops_total"], 0
    if parsed["errors"] or returncode != 0:
        report["error"] = "; ".join(parsed["errors"]) or f"{_COMPILER} exited with status {returncode}"
        compiled.unlink(missing_ok=True)  # whatever a failed run left is not a compiled model
    elif not compiled.is_file():
        report["error"] = f"{_COMPILER} reported success but wrote no {compiled.name}"
    else:
        report["edgetpu_model"] = compiled.name
        report["compiled_model"] = _compiled_cpu_ops(compiled)
    return report


def _disagreements(preflight, compiler):
    """Where the compiler's figures differ from the pre-flight's prediction."""
    found = []
    if compiler["ops_on_tpu"] is not None and compiler["ops_on_tpu"] != preflight["ops_on_tpu"]:
        found.append(f"compiler maps {compiler['ops_on_tpu']} of {compiler['ops_total']} operations to the "
                     f"TPU; pre-flight predicted {preflight['ops_on_tpu']} of {preflight['ops_total']}")
    if compiler["subgraphs"] is not None and compiler["subgraphs"] != preflight["subgraphs"]:
        found.append(f"compiler made {compiler['subgraphs']} Edge TPU subgraph(s); "
                     f"pre-flight predicted {preflight['subgraphs']}")
    predicted = _op_counts(preflight["cpu_ops"])
    sources = [("its operation log", compiler.get("cpu_ops"))]
    if compiler.get("compiled_model"):
        sources.append(("the compiled model", compiler["compiled_model"]["cpu_ops"]))
    for source, rows in sources:
        if rows is not None and _op_counts(rows) != predicted:
            found.append(f"CPU operators in {source}: {_format_counts(_op_counts(rows))}; "
                         f"pre-flight predicted: {_format_counts(predicted)}")
    return found


def _format_counts(counts):
    return ", ".join(f"{op} x{count}" for op, count in sorted(counts.items())) or "none"


# --- The entry point ------------------------------------------------------------------------


def _find_compiler(compiler):
    if compiler is None:
        return shutil.which(_COMPILER)
    found = shutil.which(str(compiler))
    if found is None:
        raise UsageError(f"--compiler {compiler}: not an executable file; give the path of {_COMPILER}")
    return found


def _publish(work_dir, out_dir, model_stem):
    """Moves the finished files into ``out_dir``, dropping this model's compiled files from an
    earlier run that this run did not produce (they would contradict report.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (f"{model_stem}_edgetpu.tflite", f"{model_stem}_edgetpu.log"):
        if not (work_dir / stale).exists() and (out_dir / stale).exists():
            (out_dir / stale).unlink()
    for path in sorted(work_dir.iterdir(), key=lambda p: p.name == "report.json"):  # report last
        os.replace(path, out_dir / path.name)


def compile(model, out_dir=None, compiler=None, min_runtime_version=None, timeout_s=600,
            preflight_only=False, progress=None):
    """Pre-flight check of int8 TFLite ``model`` and, when a compiler is found, the compile.

    ``compiler``: path of edgetpu_compiler (default: looked up on PATH). Writes report.json (and
    NAME_edgetpu.tflite/.log when compiled) into ``out_dir`` (default MODEL_DIR/NAME_edgetpu) and
    returns the report; report["status"] is "compiled", "failed" or "preflight-only". Bad input
    raises zoo.errors.UsageError before anything is written.
    """
    say = progress or (lambda message: None)
    model = pathlib.Path(model)
    graph = tflite.read_graph(model)
    _check_input(graph)
    out_dir = pathlib.Path(out_dir) if out_dir is not None else model.with_name(f"{model.stem}_edgetpu")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir} is a file; give a folder for report.json and the compiled model")
    if min_runtime_version is not None and int(min_runtime_version) < 1:
        raise UsageError(f"--min-runtime-version {min_runtime_version}: give a positive runtime "
                         f"version, e.g. 13")
    if timeout_s <= 0:
        raise UsageError(f"--timeout {timeout_s}: give a positive number of seconds")
    compiler_path = None if preflight_only else _find_compiler(compiler)

    say(f"pre-flight: {len(graph.operators)} operators in {model.name}")
    preflight = _preflight(graph)
    report = {"model": str(model), "model_bytes": graph.file_bytes, "out_dir": str(out_dir),
              "preflight": preflight, "compiler": None, "disagreements": []}
    if compiler_path is None:
        report["status"] = "preflight-only"
        report["status_detail"] = ("pre-flight only (--preflight-only)" if preflight_only else
                                   f"{_COMPILER} not found on PATH: pre-flight only; {_INSTALL_HINT}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        if compiler_path is not None:
            say(f"compiling with {compiler_path} (timeout {timeout_s} s)")
            result = _compile(compiler_path, model.resolve(), work_dir, min_runtime_version, timeout_s)
            report["compiler"] = result
            report["status"] = "failed" if result["error"] else "compiled"
            report["status_detail"] = result["error"] or f"compiled {result['edgetpu_model']}"
            if not result["error"]:
                report["disagreements"] = _disagreements(preflight, result)
        (work_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        _publish(work_dir, out_dir, model.stem)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return report


def compiled_model(out_dir):
    """The NAME_edgetpu.tflite that compile() left in ``out_dir`` (as its report.json says), or None."""
    report = pathlib.Path(out_dir) / "report.json"
    if not report.is_file():
        return None
    name = (json.loads(report.read_text()).get("compiler") or {}).get("edgetpu_model")
    return pathlib.Path(out_dir) / name if name else None


def make_interpreter(path, device=None, runtime="litert"):
    """An allocated interpreter running compiled ``path`` on the Edge TPU through libedgetpu.

    ``device``: "usb", "usb:0", "pci:0", ... (None: the first Edge TPU found). Raises UsageError
    when the runtime library or the device is absent."""
    try:  # loading it here first spares the user the runtime's own half-built-delegate noise
        ctypes.CDLL(_RUNTIME_LIBRARY)
    except OSError as error:
        raise UsageError(f"Edge TPU runtime not found ({error}); install libedgetpu1-std from Coral's "
                         f"apt repository (coral-edgetpu-stable)") from None
    try:
        delegate = tflite.load_delegate(_RUNTIME_LIBRARY, {"device": device} if device else {}, runtime)
    except ValueError as error:
        raise UsageError(f"no Edge TPU found{f' at {device}' if device else ''} ({error}); plug in the "
                         f"Coral accelerator and check that lsusb or lspci lists it") from None
    return tflite.make_interpreter(path, runtime=runtime, delegates=[delegate])


# --- Command line -------------------------------------------------------------------------------


def _human_bytes(count):
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1024


def _cpu_lines(rows):
    return [f"    {row['op']} x{row['count']}: {row['status']}" for row in rows]


def _summary(report):
    """The short human summary printed after a run."""
    pre = report["preflight"]
    lines = [f"{pathlib.Path(report['model']).name}: pre-flight predicts {pre['ops_on_tpu']} of "
             f"{pre['ops_total']} operators on the Edge TPU in {pre['subgraphs']} subgraph(s), "
             f"{pre['ops_on_cpu']} on the CPU"]
    if pre["partition_at"]:
        lines.append(f"  the TPU part ends at operator #{pre['partition_at']['index']} "
                     f"{pre['partition_at']['op']} ({pre['partition_at']['status']})")
    lines += _cpu_lines(pre["cpu_ops"])
    lines.append(f"  parameters on the TPU: {_human_bytes(pre['param_bytes'])}; estimate "
                 f"{_human_bytes(pre['param_bytes_on_chip'])} cached on chip, "
                 f"{_human_bytes(pre['param_bytes_streamed'])} streamed "
                 f"(~{_human_bytes(pre['on_chip_budget_bytes'])} SRAM, shared with activations)")
    lines += [f"  problem: {problem}" for problem in pre["problems"]]
    compiler = report["compiler"]
    if compiler and not compiler["error"]:
        lines.append(f"compiler {compiler['version']}: {compiler['ops_on_tpu']} of {compiler['ops_total']} "
                     f"operations on the Edge TPU in {compiler['subgraphs']} subgraph(s); parameters "
                     f"{_human_bytes(compiler['on_chip_bytes'] or 0)} on chip, "
                     f"{_human_bytes(compiler['off_chip_bytes'] or 0)} streamed")
        lines += _cpu_lines(compiler["cpu_ops"])
    elif compiler:
        lines.append(f"compiler {compiler['version'] or ''} failed: {compiler['error']}")
    lines.append(f"wrote {pathlib.Path(report['out_dir']) / 'report.json'}"
                 + (f" and {compiler['edgetpu_model']}" if compiler and compiler["edgetpu_model"] else ""))
    return "\n".join(lines)


@one_line_errors("compilers/edgetpu.py")
def _main(argv=None):
    parser = argparse.ArgumentParser(
        prog="compilers/edgetpu.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compile an int8 TFLite for the Coral Edge TPU, with a pre-flight check "
                    "(no compiler needed) that predicts which operators run on the TPU and why "
                    "the others stay on the CPU.",
        epilog="exit status: 0 compiled; 1 the compiler failed or timed out; 2 bad input "
               "(nothing written); 3 pre-flight only (no compiler found, or --preflight-only)")
    parser.add_argument("model", help="int8 (full-integer) TFLite model")
    parser.add_argument("-o", "--out", help="output folder for report.json and the compiled model "
                                            "(default: MODEL_DIR/NAME_edgetpu)")
    parser.add_argument("--compiler", help=f"path of {_COMPILER} (default: found on PATH)")
    parser.add_argument("--min-runtime-version", type=int, metavar="N",
                        help="oldest Edge TPU runtime the model must run on (the compiler's -m), e.g. 13")
    parser.add_argument("--timeout", type=float, default=600, metavar="S",
                        help="seconds before the compiler is stopped (default 600)")
    parser.add_argument("--preflight-only", action="store_true", help="do not run the compiler")
    parser.add_argument("--json", action="store_true", help="print report.json instead of the summary")
    args = parser.parse_args(argv)
    report = compile(args.model, out_dir=args.out, compiler=args.compiler,
                     min_runtime_version=args.min_runtime_version, timeout_s=args.timeout,
                     preflight_only=args.preflight_only, progress=progress)
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    for disagreement in report["disagreements"]:
        print(f"warning: {disagreement}", file=sys.stderr)
    if report["status"] != "compiled":
        print(report["status_detail"], file=sys.stderr)
    return _EXIT_CODES[report["status"]]


if __name__ == "__main__":
    sys.exit(_main())
