"""Reading what Google's edgetpu_compiler says: its stdout, its operation log NAME_edgetpu.log and
the compiled NAME_edgetpu.tflite, and where they disagree with the pre-flight's prediction.

The formats are those users have posted for compiler 16 (shared/edgetpu/README.md): "Key: value"
lines per compiled model, an "Operator Count Status" table, and one-line failures.
"""
import collections
import re

from compilers.edgetpu.preflight import CUSTOM_OP
from compilers.edgetpu.report import CompiledModel, OperationRow, OperatorCount
from zoo import tflite

_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
FIELDS = {  # stdout "Key: value" lines, per compiled model
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
_SIZE = re.compile(r"([\d.]+)\s*([KMG]?i?B)")


def _value(kind, text):
    """A field's value; None when the compiler printed something this parser does not know."""
    if kind != "size":
        try:
            return kind(text.strip())
        except ValueError:
            return None
    match = _SIZE.fullmatch(text.strip())
    if not match or match.group(2) not in _UNITS:
        return None
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def _parse_table(lines):
    """Rows of the operation table (the .log, or stdout with -s) after its header line."""
    rows, in_table = [], False
    for line in lines:
        if _TABLE_HEADER.match(line):
            in_table = True
        elif in_table and _TABLE_ROW.match(line):
            op, count, status = _TABLE_ROW.match(line).groups()
            rows.append(OperationRow(op=op, count=int(count), status=status))
    return rows


def parse_compiler_output(text):
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
        elif ": " in line and line.split(": ", 1)[0] in FIELDS:
            key, value = line.split(": ", 1)
            field, kind = FIELDS[key]
            if field == "input_model" or not result["models"]:
                result["models"].append({})
            result["models"][-1][field] = _value(kind, value)
    result["operations"] = _parse_table(lines)
    return result


def parse_log(text):
    """NAME_edgetpu.log: the compiler version and the operation table."""
    version = re.search(r"Edge TPU Compiler version (\S+)", text)
    return {"version": version and version.group(1), "operations": _parse_table(text.splitlines())}


def op_counts(rows):
    """Operator -> count over table rows (one operator may have rows of several statuses): the
    compiler's (OperationRow, OperatorCount) or the pre-flight's (CpuOperators)."""
    counts = collections.Counter()
    for row in rows:
        counts[row.op] += row.count
    return counts


def compiled_cpu_ops(path):
    """The operators left beside edgetpu-custom-op in a compiled file: what really runs on the CPU."""
    graph = tflite.read_graph(path)
    counts = collections.Counter(op.name for op in graph.operators if op.name != CUSTOM_OP)
    return CompiledModel(tpu_subgraphs=sum(op.name == CUSTOM_OP for op in graph.operators),
                         cpu_ops=[OperatorCount(op=op, count=count) for op, count in counts.items()])


def _format_counts(counts):
    return ", ".join(f"{op} x{count}" for op, count in sorted(counts.items())) or "none"


def disagreements(preflight, compiler):
    """Where the compiler's figures differ from the pre-flight's prediction, in words."""
    found = []
    if compiler.ops_on_tpu is not None and compiler.ops_on_tpu != preflight.ops_on_tpu:
        found.append(f"compiler maps {compiler.ops_on_tpu} of {compiler.ops_total} operations to the "
                     f"TPU; pre-flight predicted {preflight.ops_on_tpu} of {preflight.ops_total}")
    if compiler.subgraphs is not None and compiler.subgraphs != preflight.subgraphs:
        found.append(f"compiler made {compiler.subgraphs} Edge TPU subgraph(s); "
                     f"pre-flight predicted {preflight.subgraphs}")
    predicted = op_counts(preflight.cpu_ops)
    sources = [("its operation log", compiler.cpu_ops)]
    if compiler.compiled_model:
        sources.append(("the compiled model", compiler.compiled_model.cpu_ops))
    for source, rows in sources:
        if rows is not None and op_counts(rows) != predicted:
            found.append(f"CPU operators in {source}: {_format_counts(op_counts(rows))}; "
                         f"pre-flight predicted: {_format_counts(predicted)}")
    return found
