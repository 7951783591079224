"""What the Ethos-U adapter asks of a model before Vela sees it, and where Vela put each of its
operators afterwards, told from Vela's per-layer table and its printed reasons and checked
against the compiled file."""
import collections
import dataclasses
import pathlib
import typing

from compilers.ethosu.report import CpuOperator, Layer
from compilers.common import check_fixed_inputs
from zoo import tflite
from zoo.errors import UsageError

NPU_OP = "ethos-u"  # the custom operator Vela writes for each NPU command stream
# Custom operators that hold another compiler's output: Vela can only leave them to the CPU.
COMPILED_OPS = {"edgetpu-custom-op": "compiled for the Edge TPU by edgetpu_compiler",
                NPU_OP: "already compiled by Vela"}
INTEGER_ACTIVATIONS = ("int8", "uint8", "int16")  # what the NPU computes in (Vela's SUPPORTED_OPS.md)


def check_input(graph: tflite.Graph) -> None:
    """Bad input for Vela, as UsageError (before anything is written)."""
    for op in graph.operators:
        if op.custom and op.name in COMPILED_OPS:
            raise UsageError(f"{graph.path} is {COMPILED_OPS[op.name]} (it holds {op.name} operators, which "
                             f"only that accelerator runs); give the int8 TFLite it was compiled from"
                             f"{_source(graph)}")
    check_fixed_inputs(graph, "Vela")
    activations = [t for t in graph.tensors if not t.is_constant]
    if not any(t.quantized and t.dtype in INTEGER_ACTIVATIONS for t in activations):
        raise UsageError(f"{graph.path} is a float model (no integer-quantized activations); the Ethos-U "
                         f"runs int8 (or int16) models: convert with full-integer quantization (a "
                         f"representative dataset and TFLITE_BUILTINS_INT8)")


def _source(graph: tflite.Graph) -> str:
    """", e.g. NAME.tflite beside it" when a compiled NAME_SUFFIX.tflite has its source beside it."""
    path = pathlib.Path(graph.path)
    stem, _, suffix = path.stem.rpartition("_")
    source = path.with_name(f"{stem}{path.suffix}")
    found = stem and suffix in ("edgetpu", "vela") and source.is_file()
    return f", e.g. {source.name} beside it" if found else ""


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the model's operators run: ``cpu`` with Vela's reasons, ``npu`` a histogram of the
    rest by operator name, ``npu_subgraphs`` the command streams in the compiled file."""
    cpu: typing.List[CpuOperator]
    npu: typing.Dict[str, int]
    npu_subgraphs: int
    warnings: typing.List[str]


def place(graph: tflite.Graph, layers: typing.Sequence[Layer],
          reasons: typing.Dict[str, typing.Tuple[str, str]], compiled: tflite.Graph) -> Placement:
    """The model's operators split by Vela's per-layer targets: a CPU row is named after the
    operator's output tensor, which finds the operator in ``graph`` and Vela's reason for it."""
    producer = {graph.tensors[t].name: op for op in graph.operators for t in op.outputs if t >= 0}
    cpu = []
    for layer in layers:
        if layer.target != "CPU":
            continue
        op = producer.get(layer.name)
        said = reasons.get(layer.name)
        cpu.append(CpuOperator(index=op.index if op else None,
                               op=op.name if op else (said[0] if said else layer.original_operator),
                               output=layer.name, reason=said[1] if said else "Vela printed no reason"))
    on_cpu = {row.index for row in cpu}
    npu = collections.Counter(op.name for op in graph.operators if op.index not in on_cpu)
    left = [op for op in compiled.operators if op.name != NPU_OP]
    warnings = [] if len(left) == len(cpu) else [
        f"Vela's per-layer table puts {len(cpu)} operator(s) on the CPU, its compiled file keeps {len(left)} "
        "beside the NPU's"]
    return Placement(cpu=cpu, npu=dict(npu), npu_subgraphs=len(compiled.operators) - len(left),
                     warnings=warnings)
