"""The Edge TPU pre-flight: predicts, without Google's compiler, where edgetpu_compiler puts every
operator of an int8 TFLite, in the compiler's own status words, and on what basis.

Each operator is first judged on its own by the rule table (compilers/edgetpu/rules.py); then the
compiler's single partition is applied: an operator that runs on the CPU after the TPU part ends
that part, and whatever it feeds stays on the CPU ("More than one subgraph is not supported"),
while CPU operators in front of the TPU part (a float input's QUANTIZE) only sit before it.
"""
import collections
import typing

from compilers.common import check_fixed_inputs
from compilers.edgetpu import rules
from compilers.edgetpu.report import CpuOperators, OperatorPlacement, PartitionPoint, Preflight
from zoo.errors import UsageError

CUSTOM_OP = "edgetpu-custom-op"
ON_CHIP_BYTES = 8 * 2**20  # "roughly 8 MB of on-chip SRAM caches parameters"
_DYNAMIC_BATCH_SOURCE = ("Coral tutorial fix_conversion_issues_ptq_tf2: with a dynamic batch the compiler "
                         "fails on some models ('Invalid model ... Model not quantized')")


def check_input(graph):
    """Bad input for the Edge TPU, as UsageError (before anything is written)."""
    if any(op.name == CUSTOM_OP for op in graph.operators):
        raise UsageError(f"{graph.path} is already compiled for the Edge TPU (it holds {CUSTOM_OP}); "
                         f"give the int8 model it was compiled from")
    activations = [t for t in graph.tensors if not t.is_constant]
    if not any(rules.eight_bit(t) for t in activations):
        raise UsageError(f"{graph.path} is a float model (no 8-bit quantized activations); the Edge TPU "
                         f"needs full-integer quantization: convert with a representative dataset and "
                         f"TFLITE_BUILTINS_INT8")
    check_fixed_inputs(graph, "the Edge TPU")


class _Placement(typing.NamedTuple):
    rule: object     # the rule that keeps the operator off the TPU, or None
    on_tpu: bool
    after_tpu: bool  # some operator upstream runs on the TPU or after it


def _place(graph):
    """Every operator's placement, in execution order (the order TFLite stores them in)."""
    placed, producer = [], {}
    for op in graph.operators:
        upstream = [placed[producer[t]] for t in op.inputs if t in producer]
        rule = rules.broken_rule(graph, op)
        if rule is None and any(u.after_tpu and not u.on_tpu for u in upstream):
            rule = rules.PARTITION
        placed.append(_Placement(rule, rule is None, any(u.on_tpu or u.after_tpu for u in upstream)))
        producer.update((t, op.index) for t in op.outputs)
    return placed


def _operator_rows(graph, placed):
    rows = []
    for op, place in zip(graph.operators, placed):
        rule = place.rule
        rows.append(OperatorPlacement(index=op.index, op=op.name, version=op.version, on_tpu=place.on_tpu,
                                      status=rule.status if rule else rules.MAPPED,
                                      rule=rule and rule.id, basis=rule and rule.basis))
    return rows


def _cpu_rows(operators):
    """The CPU operators counted by operator, status and the rule behind the prediction."""
    counts = collections.Counter((row.op, row.status, row.rule, row.basis)
                                 for row in operators if not row.on_tpu)
    return [CpuOperators(op=op, count=count, status=status, rule=rule, basis=basis)
            for (op, status, rule, basis), count in counts.items()]


def version_problems(graph):
    """Operator versions compiler 16 cannot read: it refuses the whole model."""
    problems = []
    versions = {(op.name, op.version) for op in graph.operators if not op.custom}
    for name, version in sorted(v for v in versions if v[1] > rules.KNOWN_VERSIONS.get(v[0], v[1])):
        meaning = rules.VERSION_MEANING.get((name, version))
        problems.append(f"compiler 16 reads {name} up to version {rules.KNOWN_VERSIONS[name]} and will "
                        f"refuse this model (\"Didn't find op for builtin opcode '{name}' version "
                        f"'{version}'\"){f'; version {version} is {meaning}' if meaning else ''} "
                        f"[{rules.INFERRED}: op versions of TFLite 2.5]")
    return problems


def _warnings(graph):
    dynamic = [graph.tensors[i].name for i in graph.inputs if graph.tensors[i].shape_signature[:1] == (-1,)]
    return [f"input {name!r} has a dynamic batch (-1); set it to 1 before converting if the compiler "
            f"says 'Model not quantized' [{rules.DOCUMENTED}: {_DYNAMIC_BATCH_SOURCE}]" for name in dynamic]


def preflight(graph) -> Preflight:
    """The prediction for ``graph``: counts, the CPU operators with their status and basis, where
    the TPU part ends, the parameter bytes it caches, and the model-level problems."""
    placed = _place(graph)
    operators = _operator_rows(graph, placed)
    partition = next((row for row, p in zip(operators, placed) if p.after_tpu and not p.on_tpu), None)
    parameters = {i for op, p in zip(graph.operators, placed) if p.on_tpu
                  for i in op.inputs if i >= 0 and graph.tensors[i].is_constant}
    param_bytes = sum(graph.tensors[i].buffer.nbytes for i in parameters)
    fired = {p.rule.id: p.rule for p in placed if p.rule}
    ops_on_tpu = sum(p.on_tpu for p in placed)
    return Preflight(
        ops_total=len(operators),
        ops_on_tpu=ops_on_tpu,
        ops_on_cpu=len(operators) - ops_on_tpu,
        subgraphs=1 if ops_on_tpu else 0,
        cpu_ops=_cpu_rows(operators),
        partition_at=partition and PartitionPoint(index=partition.index, op=partition.op,
                                                  status=partition.status, rule=partition.rule,
                                                  basis=partition.basis),
        rules={rule_id: rules.describe(rule) for rule_id, rule in sorted(fired.items())},
        param_bytes=param_bytes,
        on_chip_budget_bytes=ON_CHIP_BYTES,
        param_bytes_on_chip=min(param_bytes, ON_CHIP_BYTES),
        param_bytes_streamed=max(0, param_bytes - ON_CHIP_BYTES),
        problems=version_problems(graph),
        warnings=_warnings(graph),
        operators=operators)
